"""2-d convolutions as engine ops, on the kernels in minigen.kernels: conv2d, its adjoint
conv_transpose2d, and PixelCNN's masked_conv2d.

Three Functions serve all three ops, each the other two's backward. With y = F(x, w)
bilinear, the gradients are its adjoints G_x(gy, w) = d<gy, F(x, w)>/dx and
G_w(x, gy) = d<gy, F(x, w)>/dw, which are bilinear too, so their gradients are F, G_x and
G_w again:

    F(x, w)     ->  dx = G_x(g, w),   dw = G_w(x, g)
    G_x(gy, w)  ->  dgy = F(u, w),    dw = G_w(u, gy)      (u: the gradient of dx)
    G_w(x, gy)  ->  dx = G_x(gy, u),  dgy = F(x, u)        (u: the gradient of dw)

so every backward is built from differentiable ops and derivatives of any order follow
(WGAN-GP differentiates a gradient of a conv net). conv_transpose2d is G_x run forward.
`kind` names the kernel: "conv2d" (any stride, padding, dilation) or "masked_conv2d"
(only the taps the mask keeps; its G_w is exactly zero at masked weights, so the masked
weights never receive anything, at any order).
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..kernels.conv2d.reference import output_size, pair
from .elementwise import constant
from .linalg import matmul


def _fit(y, size):
    """y cut to spatial `size`: an output_padding of at least the stride leaves windows at
    the far edge that the (smaller) gradient never had."""
    return y if y.shape[2:] == tuple(size) else y[:, :, :size[0], :size[1]]


def _bias_grad(g):
    # a product with a vector of ones lets BLAS do the long sum over pixels, where a
    # float32 sum over axes (0, 2, 3) goes through float64 at several times the cost
    ones = constant(backend.xp_of(g.data).ones(g.shape[2] * g.shape[3], g.dtype))
    return matmul(g.reshape(g.shape[0], g.shape[1], -1), ones).sum(axis=0)


class Conv2d(Function):
    """F(x, w) + b."""

    @staticmethod
    def forward(ctx, x, w, b=None, *, kind, params):
        ctx.kind, ctx.params = kind, params
        return backend.kernel(kind, x).forward(x, w, b, **params)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.inputs[:2]
        need = ctx.needs_input_grad
        gx = Conv2dGradInput.apply(g, w, input_size=x.shape[2:], kind=ctx.kind,
                                   params=ctx.params) if need[0] else None
        gw = Conv2dGradWeight.apply(x, g, kernel_size=w.shape[2:], kind=ctx.kind,
                                    params=ctx.params) if need[1] else None
        if len(ctx.inputs) == 2:
            return gx, gw
        return gx, gw, _bias_grad(g) if need[2] else None


class Conv2dGradInput(Function):
    """G_x(gy, w) + b: the gradient of conv2d with respect to its input, for an input of
    spatial size `input_size`; with a bias, conv_transpose2d."""

    @staticmethod
    def forward(ctx, gy, w, b=None, *, input_size, kind, params):
        ctx.kind, ctx.params = kind, params
        gx = backend.kernel(kind, gy).grad_input(gy, w, input_size, **params)
        if b is not None:
            gx += b[:, None, None]
        return gx

    @staticmethod
    def backward(ctx, u):
        gy, w = ctx.inputs[:2]
        need = ctx.needs_input_grad
        ggy = _fit(Conv2d.apply(u, w, kind=ctx.kind, params=ctx.params),
                   gy.shape[2:]) if need[0] else None
        gw = Conv2dGradWeight.apply(u, gy, kernel_size=w.shape[2:], kind=ctx.kind,
                                    params=ctx.params) if need[1] else None
        if len(ctx.inputs) == 2:
            return ggy, gw
        return ggy, gw, _bias_grad(u) if need[2] else None


class Conv2dGradWeight(Function):
    """G_w(x, gy): the gradient of conv2d with respect to its weight."""

    @staticmethod
    def forward(ctx, x, gy, *, kernel_size, kind, params):
        ctx.kind, ctx.params = kind, params
        return backend.kernel(kind, x).grad_weight(x, gy, kernel_size, **params)

    @staticmethod
    def backward(ctx, u):
        x, gy = ctx.inputs
        need = ctx.needs_input_grad
        gx = Conv2dGradInput.apply(gy, u, input_size=x.shape[2:], kind=ctx.kind,
                                   params=ctx.params) if need[0] else None
        ggy = _fit(Conv2d.apply(x, u, kind=ctx.kind, params=ctx.params),
                   gy.shape[2:]) if need[1] else None
        return gx, ggy


def _check(op, x, w, b, channels_axis, weight_layout):
    """The checks every conv op shares: 4-d input and weight, channels, bias, dtypes."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input of shape (N, C, H, W), got {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{op}: expected weight of shape ({weight_layout}), got {w.shape}")
    if w.shape[channels_axis] != x.shape[1]:
        raise ValueError(f"{op}: the weight {w.shape}, laid out ({weight_layout}), expects "
                         f"{w.shape[channels_axis]} input channels; the input {x.shape} has "
                         f"{x.shape[1]}")
    out_channels = w.shape[1 - channels_axis]
    if b is not None and b.shape != (out_channels,):
        raise ValueError(f"{op}: bias of shape {b.shape} for {out_channels} output "
                         f"channels; expected ({out_channels},)")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"{op}: input, weight and bias need one dtype, got {x.dtype}, "
                        f"{w.dtype}" + ("" if b is None else f", {b.dtype}"))


def _output_size(op, x, kernel_size, params):
    size = output_size(x.shape[2:], kernel_size, **params)
    if min(size) < 1:
        span = tuple(d * (k - 1) + 1 for d, k in zip(params["dilation"], kernel_size))
        raise ValueError(f"{op}: the kernel spans {span} pixels (kernel {tuple(kernel_size)}, "
                         f"dilation {params['dilation']}), more than the input {x.shape} "
                         f"padded by {params['padding']}")
    return size


def _inputs(x, w, b):
    return (x, w) if b is None else (x, w, b)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-d cross-correlation of x (N, C, H, W) with w (O, C, kh, kw), as torch's conv2d:

        y[n, o, p, q] = b[o] + sum_{c,i,j} w[o,c,i,j] x[n, c, p*sh + i*dh - ph, q*sw + j*dw - pw]

    with x zero in the padding. stride, padding and dilation are ints or (h, w) pairs.
    """
    op = "conv2d"
    _check(op, x, w, b, 1, "O, C, kh, kw")
    params = {"stride": pair(stride, "stride", op, 1),
              "padding": pair(padding, "padding", op, 0),
              "dilation": pair(dilation, "dilation", op, 1)}
    _output_size(op, x, w.shape[2:], params)
    return Conv2d.apply(*_inputs(x, w, b), kind="conv2d", params=params)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1):
    """The adjoint of conv2d in its input (its gradient with respect to x), with w of shape
    (C_in, C_out, kh, kw) as torch's conv_transpose2d: each input pixel adds w times itself
    onto a window of the output, whose size along each axis is

        (H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    _check(op, x, w, b, 0, "C_in, C_out, kh, kw")
    params = {"stride": pair(stride, "stride", op, 1),
              "padding": pair(padding, "padding", op, 0),
              "dilation": pair(dilation, "dilation", op, 1)}
    extra = pair(output_padding, "output_padding", op, 0)
    for e, s, d in zip(extra, params["stride"], params["dilation"]):
        if e >= s and e >= d:
            raise ValueError(f"{op}: output_padding {extra} must be smaller than the stride "
                             f"{params['stride']} or the dilation {params['dilation']}")
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in
                 zip(x.shape[2:], params["stride"], params["padding"], params["dilation"],
                     w.shape[2:], extra))
    if min(size) < 1:
        raise ValueError(f"{op}: input {x.shape} with weight {w.shape} and padding "
                         f"{params['padding']} gives an empty output {size}")
    return Conv2dGradInput.apply(*_inputs(x, w, b), input_size=size, kind="conv2d",
                                 params=params)


def masked_conv2d(x, w, b=None, mask_type="A", padding=None, color_groups=1):
    """PixelCNN's masked convolution: conv2d (stride 1) with w (O, C, k, k) masked so that
    output pixel (r, s) sees only input pixels before it in raster order. Type A (the first
    layer) also hides the centre pixel; type B (later layers) shows it. With colour groups
    (3 for R, G, B) the channels split into groups in order, and at the centre output group
    g sees input groups < g (type A) or <= g (type B). `padding` defaults to k // 2 (output
    the input's size). Only the kept taps are computed; masked weights are never read and
    get exactly zero gradient. The mask itself: minigen.kernels.masked_conv2d.mask.
    """
    op = "masked_conv2d"
    _check(op, x, w, b, 1, "O, C, k, k")
    if mask_type not in ("A", "B"):
        raise ValueError(f"{op}: mask_type must be 'A' or 'B', not {mask_type!r}")
    k = w.shape[2]
    if w.shape[3] != k or k % 2 == 0:
        raise ValueError(f"{op}: the kernel must be square with an odd size (the mask needs "
                         f"a centre); the weight {w.shape} has a {w.shape[2]}x{w.shape[3]} "
                         f"kernel")
    if isinstance(color_groups, bool) or not isinstance(color_groups, (int, np.integer)) \
            or color_groups < 1 or x.shape[1] % color_groups or w.shape[0] % color_groups:
        raise ValueError(f"{op}: color_groups={color_groups!r} must be an int >= 1 that "
                         f"divides the input channels ({x.shape[1]}) and the output "
                         f"channels ({w.shape[0]})")
    pad = pair(k // 2 if padding is None else padding, "padding", op, 0)
    _output_size(op, x, (k, k), {"stride": (1, 1), "padding": pad, "dilation": (1, 1)})
    params = {"mask_type": mask_type, "padding": pad, "color_groups": int(color_groups)}
    return Conv2d.apply(*_inputs(x, w, b), kind="masked_conv2d", params=params)
