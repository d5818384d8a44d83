"""Tensor constructors. float32 unless a dtype is given; `device` is "cpu" or "cuda"."""
import numpy as np

from . import backend
from .autograd import Tensor


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


def linspace(start, stop, num=50, dtype=None, device=None, requires_grad=False):
    return _new(lambda xp, dt: xp.linspace(start, stop, num, dtype=dt), dtype, device,
                requires_grad)


def zeros_like(x, dtype=None, requires_grad=False):
    return zeros(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)


def ones_like(x, dtype=None, requires_grad=False):
    return ones(x.shape, dtype=dtype or x.dtype, device=x.device, requires_grad=requires_grad)
