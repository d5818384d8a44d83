"""Reproducible random draws on both devices.

Every draw is made by NumPy's PCG64 on the host and then moved to the device, so the same
seed gives the same numbers on the CPU and on the GPU.
"""
import numpy as np

from . import backend
from .autograd import Tensor
from .creation import shape_arg


class Generator:
    """A seeded stream of random tensors (float32 unless a dtype is given)."""

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def _out(self, array, dtype, device, requires_grad=False):
        if dtype is not None or array.dtype == np.float64:
            array = array.astype(dtype or np.float32)
        return Tensor(backend.to_device(array, backend.check_device(device)),
                      requires_grad=requires_grad)

    def normal(self, shape, mean=0.0, std=1.0, dtype=None, device=None, requires_grad=False):
        return self._out(self.rng.normal(mean, std, shape), dtype, device, requires_grad)

    def uniform(self, shape, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False):
        return self._out(self.rng.uniform(low, high, shape), dtype, device, requires_grad)

    def integers(self, low, high=None, shape=None, device=None):
        return self._out(self.rng.integers(low, high, shape), None, device)

    def bernoulli(self, p, shape=None, device=None):
        shape = np.shape(p) if shape is None else shape
        return self._out((self.rng.random(shape) < p).astype(np.float32), None, device)

    def permutation(self, n, device=None):
        return self._out(self.rng.permutation(n), None, device)

    def get_state(self):
        return self.rng.bit_generator.state

    def set_state(self, state):
        self.rng.bit_generator.state = state


default_generator = Generator(0)


def seed(s):
    """Reseed the global generator behind mg.randn, mg.rand and mg.random.*."""
    default_generator.rng = np.random.default_rng(s)


def normal(shape, mean=0.0, std=1.0, dtype=None, device=None, requires_grad=False):
    return default_generator.normal(shape, mean, std, dtype, device, requires_grad)


def uniform(shape, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False):
    return default_generator.uniform(shape, low, high, dtype, device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    return normal(shape_arg(shape), dtype=dtype, device=device, requires_grad=requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    return uniform(shape_arg(shape), dtype=dtype, device=device, requires_grad=requires_grad)
