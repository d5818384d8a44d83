"""Exact GELU, x Phi(x), and its derivative: `cpu` (the default, one fused Numba pass with a
vectorised float32 erfc) and `reference` (NumPy and scipy's ndtr), one signature.

    from minigen.kernels import gelu
    y = gelu.forward(x)          # x Phi(x)
    dy_dx = gelu.derivative(x)   # Phi(x) + x phi(x)
"""
import numpy as np

from . import cpu, reference
from .cpu import derivative, forward

__all__ = ["cpu", "reference", "forward", "derivative"]

# for minigen.backend.kernel: both versions take float32 and float64 NumPy arrays only (the
# reference needs scipy's ndtr), so other dtypes and CuPy arrays compose GELU from erf
DTYPES = (np.float32, np.float64)
REFERENCE_ON_CUPY = False
