"""Normalisation over the trailing axes, (x - mean) / sqrt(var + eps), as an engine op on
the layer_norm kernel (minigen.kernels.layer_norm); F.layer_norm adds the affine part.
Composed, this was about 8 passes over x forward and 16 backward.
"""
import math

from .. import backend
from ..autograd import Function, enable_grad, grad, is_grad_enabled
from .attention import Slot
from .elementwise import sqrt
from .reduce import mean, var


class Normalize(Function):
    """(x - mean) / sqrt(var + eps) over the last `trailing` axes of x, on the kernel,
    which keeps 1 / sqrt(var + eps) per row for backward."""

    @staticmethod
    def forward(ctx, x, trailing, eps):
        ctx.trailing, ctx.eps = trailing, eps
        ctx.xhat, ctx.rstd = backend.kernel("layer_norm", x).forward(_rows(x, trailing), eps)
        return ctx.xhat.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        return NormalizeBackward.apply(ctx.inputs[0], g, xhat=ctx.xhat, rstd=ctx.rstd,
                                       trailing=ctx.trailing, eps=ctx.eps)


class NormalizeBackward(Function):
    """(x, g) -> dx of Normalize for the output gradient g, on the kernel. Its own gradient
    (a second derivative) differentiates the same dx written with ops, as attention's
    backward node does (ops/attention.py)."""

    @staticmethod
    def forward(ctx, x, g, xhat, rstd, trailing, eps):
        ctx.trailing, ctx.eps = trailing, eps
        dx = backend.kernel("layer_norm", x).backward(xhat, rstd, _rows(g, trailing))
        return dx.reshape(x.shape)

    @staticmethod
    def backward(ctx, u):
        create_graph = is_grad_enabled()
        needs = ctx.needs_input_grad
        with enable_grad():
            # stand-ins, so that grad gives each input's own partial derivative (g may
            # itself depend on x)
            x, g = (Slot.apply(t) if need else t for t, need in zip(ctx.inputs, needs))
            axes = tuple(range(x.ndim - ctx.trailing, x.ndim))
            centered = x - mean(x, axes, keepdims=True)
            rstd = 1.0 / sqrt(mean(centered * centered, axes, keepdims=True) + ctx.eps)
            xhat = centered * rstd
            dx = rstd * (g - mean(g, axes, keepdims=True)
                         - xhat * mean(g * xhat, axes, keepdims=True))
        found = iter(grad([dx], [t for t, need in zip((x, g), needs) if need],
                          grad_outputs=[u], retain_graph=True, create_graph=create_graph))
        return tuple(next(found) if need else None for need in needs)


def _rows(x, trailing):
    """x as a matrix with one row per example: the last `trailing` axes flattened."""
    return x.reshape(-1, math.prod(x.shape[x.ndim - trailing:]))


def normalize(x, trailing, eps):
    """(x - mean) / sqrt(var + eps) over the last `trailing` axes of the Tensor x: on the
    kernel where one takes x, else composed from engine ops."""
    if backend.kernel("layer_norm", x.data) is not None:
        return Normalize.apply(x, trailing=trailing, eps=float(eps))
    axes = tuple(range(x.ndim - trailing, x.ndim))
    return (x - mean(x, axes, keepdims=True)) / sqrt(var(x, axes, keepdims=True) + eps)
