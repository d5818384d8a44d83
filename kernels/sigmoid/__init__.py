"""The logistic sigmoid, 1 / (1 + e^-x): `cpu` (the default, one Numba pass with a
vectorised float32 exp) and `reference` (scipy's expit), one signature.

    from minigen.kernels import sigmoid
    y = sigmoid.forward(x)

Its gradient, y (1 - y), is left to engine ops (minigen.ops.elementwise.Sigmoid), which
keeps it differentiable again.
"""
import numpy as np

from . import cpu, reference
from .cpu import forward

__all__ = ["cpu", "reference", "forward"]

# for minigen.backend.kernel: both versions take float32 and float64 NumPy arrays only (the
# reference is scipy's expit), so other dtypes and CuPy arrays take the op's own expit
DTYPES = (np.float32, np.float64)
REFERENCE_ON_CUPY = False
