"""Causal dilated conv1d (WaveNet) as an engine op, on the kernel in minigen.kernels.

Three Functions, each the other two's backward. With y = F(x, w) bilinear, the gradients
are its adjoints, G_x(gy, w) = d<gy, F(x, w)>/dx and G_w(x, gy) = d<gy, F(x, w)>/dw, and
both are bilinear too, so their own gradients are F, G_x and G_w again:

    F(x, w)     ->  dx = G_x(g, w),   dw = G_w(x, g)
    G_x(gy, w)  ->  dgy = F(u, w),    dw = G_w(u, gy)      (u: the gradient of dx)
    G_w(x, gy)  ->  dx = G_x(gy, u),  dgy = F(x, u)        (u: the gradient of dw)

so every backward is built from differentiable ops and derivatives of any order follow.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from .elementwise import constant
from .linalg import matmul


class CausalConv1d(Function):
    @staticmethod
    def forward(ctx, x, w, b=None, dilation=1, shift=False):
        ctx.dilation, ctx.shift = dilation, shift
        return backend.kernel("causal_conv1d", x).forward(x, w, b, dilation, shift)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.inputs[:2]
        params = dict(dilation=ctx.dilation, shift=ctx.shift)
        need = ctx.needs_input_grad
        gx = CausalConv1dGradInput.apply(g, w, **params) if need[0] else None
        gw = CausalConv1dGradWeight.apply(x, g, kernel_size=w.shape[2], **params) \
            if need[1] else None
        if len(ctx.inputs) == 2:
            return gx, gw
        # the bias gradient sums g over samples and steps; a product with a vector of ones
        # lets BLAS do the long sum over steps (a tenth of the time of a float64 sum here)
        gb = matmul(g, constant(backend.xp_of(g.data).ones(g.shape[2], g.dtype))).sum(
            axis=0) if need[2] else None
        return gx, gw, gb


class CausalConv1dGradInput(Function):
    """G_x(gy, w): the gradient of causal_conv1d with respect to its input."""

    @staticmethod
    def forward(ctx, gy, w, dilation, shift):
        ctx.dilation, ctx.shift = dilation, shift
        return backend.kernel("causal_conv1d", gy).grad_input(gy, w, dilation, shift)

    @staticmethod
    def backward(ctx, u):
        gy, w = ctx.inputs
        params = dict(dilation=ctx.dilation, shift=ctx.shift)
        need = ctx.needs_input_grad
        return (CausalConv1d.apply(u, w, **params) if need[0] else None,
                CausalConv1dGradWeight.apply(u, gy, kernel_size=w.shape[2], **params)
                if need[1] else None)


class CausalConv1dGradWeight(Function):
    """G_w(x, gy): the gradient of causal_conv1d with respect to its weight."""

    @staticmethod
    def forward(ctx, x, gy, kernel_size, dilation, shift):
        ctx.dilation, ctx.shift = dilation, shift
        return backend.kernel("causal_conv1d", x).grad_weight(x, gy, kernel_size, dilation, shift)

    @staticmethod
    def backward(ctx, u):
        x, gy = ctx.inputs
        params = dict(dilation=ctx.dilation, shift=ctx.shift)
        need = ctx.needs_input_grad
        return (CausalConv1dGradInput.apply(gy, u, **params) if need[0] else None,
                CausalConv1d.apply(x, u, **params) if need[1] else None)


def causal_conv1d(x, w, b=None, dilation=1, shift=False):
    """WaveNet's causal dilated convolution: x (N, C_in, T), w (C_out, C_in, k), optional
    bias b (C_out,) -> (N, C_out, T), with

        y[:, :, t] = b + sum_j w[:, :, j] @ x[:, :, t - (k - 1 - j) * dilation - shift]

    and x zero before the start. Output t sees inputs t, t - d, ..., t - (k - 1) d; with
    shift=True every tap moves one step further back, so output t sees only steps before t
    (the first layer of an autoregressive stack). Only those past taps are computed.
    """
    op = "causal_conv1d"
    if x.ndim != 3:
        raise ValueError(f"{op}: expected input of shape (N, C_in, T), got {x.shape}")
    if w.ndim != 3:
        raise ValueError(f"{op}: expected weight of shape (C_out, C_in, k), got {w.shape}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(f"{op}: weight {w.shape} expects {w.shape[1]} input channels, the "
                         f"input {x.shape} has {x.shape[1]}")
    if w.shape[2] < 1:
        raise ValueError(f"{op}: the weight {w.shape} has no taps (k = 0)")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{op}: bias of shape {b.shape} for {w.shape[0]} output channels; "
                         f"expected ({w.shape[0]},)")
    if isinstance(dilation, bool) or not isinstance(dilation, (int, np.integer)) \
            or dilation < 1:
        raise ValueError(f"{op}: dilation must be an int >= 1, got {dilation!r}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{op}: input, weight and bias need one dtype, got {x.dtype}, "
                        f"{w.dtype}" + ("" if b is None else f", {b.dtype}"))
    inputs = (x, w) if b is None else (x, w, b)
    return CausalConv1d.apply(*inputs, dilation=int(dilation), shift=bool(shift))
