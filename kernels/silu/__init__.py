"""SiLU, x sigmoid(x), and its derivative: `cpu` (the default, one fused Numba pass with a
vectorised float32 exp) and `reference` (NumPy and scipy's expit), one signature.

    from minigen.kernels import silu
    y = silu.forward(x)          # x sigmoid(x)
    dy_dx = silu.derivative(x)   # sigmoid(x) (1 + x sigmoid(-x))
"""
import numpy as np

from . import cpu, reference
from .cpu import derivative, forward

__all__ = ["cpu", "reference", "forward", "derivative"]

# for minigen.backend.kernel: both versions take float32 and float64 NumPy arrays only (the
# reference needs scipy's expit), so other dtypes and CuPy arrays compose SiLU from sigmoid
DTYPES = (np.float32, np.float64)
REFERENCE_ON_CUPY = False
