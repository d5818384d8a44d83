"""Layer normalisation of each row, without the affine part: `cpu` (the default, one fused
Numba pass) and `reference` (plain NumPy), one signature.

    from minigen.kernels import layer_norm
    xhat, rstd = layer_norm.forward(x, eps)      # x (N, D): each row to mean 0, variance 1
    dx = layer_norm.backward(xhat, rstd, grad_xhat)
"""
import numpy as np

from . import cpu, reference
from .cpu import backward, forward

__all__ = ["cpu", "reference", "forward", "backward"]

# for minigen.backend.kernel: the Numba version takes float32 and float64 only, and the
# reference is written for NumPy, so other dtypes and CuPy arrays compose the normalisation
# from engine ops
DTYPES = (np.float32, np.float64)
REFERENCE_ON_CUPY = False
