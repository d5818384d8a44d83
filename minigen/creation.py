"""Tensor constructors. float32 unless a dtype is given; `device` is "cpu" or "cuda"."""
import numpy as np

from . import backend
from .autograd import Tensor, is_float
from .ops.elementwise import lift
from .ops.shape import broadcast_to, concatenate, moveaxis, reshape


def _new(make, dtype, device, requires_grad):
    xp = backend.array_module(device)
    return Tensor(make(xp, np.dtype(dtype or np.float32)), requires_grad=requires_grad)


def shape_arg(shape):
    """Accept both f(2, 3) and f((2, 3))."""
    return tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, dt: xp.zeros(shape_arg(shape), dt), dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, dt: xp.ones(shape_arg(shape), dt), dtype, device, requires_grad)


def full(shape, value, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, dt: xp.full(shape, value, dt), dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, dt: xp.eye(n, m, dtype=dt), dtype, device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    """Like np.arange; integer arguments give int64 unless a dtype is asked for."""
    if stop is None:
        start, stop = 0, start
    if dtype is None and all(isinstance(v, (int, np.integer)) for v in (start, stop, step)):
        dtype = np.int64
    return _new(lambda xp, dt: xp.arange(start, stop, step, dtype=dt), dtype, device,
                requires_grad)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0,
             device=None, requires_grad=False):
    """Like np.linspace. With a Tensor end point the result is part of the graph,
    differentiable in start and stop (out[i] = start + i * step, the last entry stop
    itself, as in NumPy); otherwise a new leaf tensor."""
    if not isinstance(start, Tensor) and not isinstance(stop, Tensor):
        values, step = backend.array_module(device).linspace(
            start, stop, num, endpoint=endpoint, retstep=True, dtype=np.dtype(dtype or np.float32),
            axis=axis)
        out = Tensor(values, requires_grad=requires_grad)
        return (out, step) if retstep else out
    like = start if isinstance(start, Tensor) else stop
    start, stop = lift(start, like), lift(stop, like)
    if not is_float(like.dtype):
        start, stop = start.astype(np.float64), stop.astype(np.float64)
    div = (num - 1) if endpoint else num
    shape = np.broadcast_shapes(start.shape, stop.shape)
    start, stop = broadcast_to(start, shape), broadcast_to(stop, shape)
    steps = lift(np.arange(num, dtype=start.dtype).reshape((-1,) + (1,) * len(shape)), start)
    step = (stop - start) / div if div > 0 else (stop - start) * np.nan
    out = steps * step + start if div > 0 else steps * (stop - start) + start
    if endpoint and num > 1:
        out = concatenate([out[:-1], reshape(stop, (1,) + shape)], axis=0)
    if axis != 0:
        out = moveaxis(out, 0, axis)
    if dtype is not None:
        out = out.astype(dtype)
    return (out, step) if retstep else out


def zeros_like(x, dtype=None, requires_grad=False):
    return zeros(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return ones(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)
