"""Reductions and normalisations along axes: sum, mean, var, max, prod, cumsum,
logsumexp, softmax, log_softmax, argmax."""
import builtins

import numpy as np

from .. import backend
from ..autograd import Function
from .elementwise import ZeroGradient, constant, root_of_squares


def normalize_axes(axis, ndim, op):
    """`axis` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(
                f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def _kept_shape(shape, axes):
    """The shape a reduction over `axes` has with keepdims=True."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        ctx.axes = normalize_axes(axis, x.ndim, "sum")
        if x.dtype == np.float32:
            # NumPy adds rows one by one along a non-contiguous axis: in float32 a batch of
            # 20,000 already loses four digits, so accumulate in float64, which
            # kernels/sum does several times faster than NumPy's casting sum
            return backend.kernel("sum", x).sum_axes(x, ctx.axes, keepdims)
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        return g.reshape(_kept_shape(x.shape, ctx.axes)).broadcast_to(x.shape)


class Extremum(Function):
    """max or min along axes; the gradient is shared equally among tied extremes."""

    @staticmethod
    def forward(ctx, x, axis, keepdims, largest):
        ctx.axes = normalize_axes(axis, x.ndim, "max" if largest else "min")
        if x.size == 0:
            raise ValueError("zero-size tensor has no maximum or minimum")
        reduce = x.max if largest else x.min
        return reduce(axis=ctx.axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        kept = _kept_shape(x.shape, ctx.axes)
        hit = x.data == ctx.output.data.reshape(kept)
        share = hit / hit.sum(axis=ctx.axes, keepdims=True)
        return g.reshape(kept) * constant(share.astype(x.dtype))


class Cumsum(Function):
    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = normalize_axes(axis, x.ndim, "cumsum")[0]
        return backend.xp_of(x).cumsum(x, axis=ctx.axis)

    @staticmethod
    def backward(ctx, g):
        # each input adds to every later output, so its gradient is the reversed cumsum
        return g.flip(ctx.axis).cumsum(ctx.axis).flip(ctx.axis)


class Logsumexp(Function):
    @staticmethod
    def forward(ctx, x, axis, keepdims):
        xp = backend.xp_of(x)
        ctx.axes = normalize_axes(axis, x.ndim, "logsumexp")
        m = x.max(axis=ctx.axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        out = xp.log(xp.exp(x - m).sum(axis=ctx.axes, keepdims=True)) + m
        return out if keepdims else out.reshape(
            tuple(n for i, n in enumerate(x.shape) if i not in ctx.axes))

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        kept = _kept_shape(x.shape, ctx.axes)
        # softmax(x), not exp(x - out): an out near 1e4 keeps only three digits in float32
        return g.reshape(kept) * Softmax.apply(x, axis=ctx.axes)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, axis):
        xp = backend.xp_of(x)
        ctx.axis = normalize_axes(axis, x.ndim, "softmax")
        e = xp.exp(x - x.max(axis=ctx.axis, keepdims=True))
        return e / e.sum(axis=ctx.axis, keepdims=True)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return y * (g - (g * y).sum(axis=ctx.axis, keepdims=True))


def sum(x, axis=None, keepdims=False):
    return Sum.apply(x, axis=axis, keepdims=keepdims)


def _count(x, axis, op):
    axes = normalize_axes(axis, x.ndim, op)
    return int(np.prod([x.shape[a] for a in axes]))


def mean(x, axis=None, keepdims=False):
    return sum(x, axis, keepdims) * (1.0 / builtins.max(_count(x, axis, "mean"), 1))


def var(x, axis=None, ddof=0, keepdims=False):
    n = _count(x, axis, "var")
    centered = x - mean(x, axis, keepdims=True)
    squares = sum(centered * centered, axis, keepdims)
    if n - ddof <= 0:
        # no degrees of freedom left: nan or inf, as in NumPy and PyTorch, and where the
        # function is undefined its gradient is 0 (not 0 / 0)
        return ZeroGradient.apply(squares, fn=lambda s: s / 0)
    return squares / (n - ddof)


def std(x, axis=None, ddof=0, keepdims=False):
    """sqrt(var); over equal values (or one value) the gradient is the subgradient 0."""
    return root_of_squares(var(x, axis, ddof, keepdims))


def max(x, axis=None, keepdims=False):
    return Extremum.apply(x, axis=axis, keepdims=keepdims, largest=True)


def min(x, axis=None, keepdims=False):
    return Extremum.apply(x, axis=axis, keepdims=keepdims, largest=False)


def prod(x, axis=None, keepdims=False):
    """Product along axes, as a tree of pairwise multiplies.

    Written with Mul alone, its gradients of every order are exact even where entries are
    zero (the usual out / x formula is not), at log2(n) ops.
    """
    axes = normalize_axes(axis, x.ndim, "prod")
    rest = [a for a in range(x.ndim) if a not in axes]
    out_shape = tuple(x.shape[a] for a in rest)
    n = _count(x, axes, "prod")
    y = x.transpose(rest + list(axes)).reshape(out_shape + (n,))
    if n == 0:
        y = (y.sum(-1) * 0.0 + 1.0).reshape(out_shape + (1,))
    while y.shape[-1] > 1:
        if y.shape[-1] % 2:
            y = y.pad([(0, 0)] * (y.ndim - 1) + [(0, 1)], value=1.0)
        y = y[..., 0::2] * y[..., 1::2]
    y = y.reshape(out_shape)
    return y.reshape(_kept_shape(x.shape, axes)) if keepdims else y


def cumsum(x, axis=None):
    if axis is None:
        return Cumsum.apply(x.reshape(-1), axis=0)
    return Cumsum.apply(x, axis=axis)


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) with the max taken out first: finite for inputs of any size."""
    return Logsumexp.apply(x, axis=axis, keepdims=keepdims)


def softmax(x, axis=-1):
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """x - logsumexp(x), with the max taken out of x first: for x near 1e4 in float32 the
    plain difference of two large numbers would keep only three digits. The max is
    detached (log_softmax does not change when x shifts), so gradients are exact."""
    shifted = x - max(x, axis=axis, keepdims=True).detach()
    return shifted - logsumexp(shifted, axis=axis, keepdims=True)


def argmax(x, axis=None, keepdims=False):
    return constant(backend.xp_of(x.data).asarray(x.data.argmax(axis=axis, keepdims=keepdims)))


def argmin(x, axis=None, keepdims=False):
    return constant(backend.xp_of(x.data).asarray(x.data.argmin(axis=axis, keepdims=keepdims)))
