"""Layer normalisation of each row, without the affine part: `cpu` (the default, one fused
Numba pass) and `reference` (plain NumPy), one signature.

    from minigen.kernels import layer_norm
    xhat, rstd = layer_norm.forward(x, eps)      # x (N, D): each row to mean 0, variance 1
    dx = layer_norm.backward(xhat, rstd, grad_xhat)
"""
from . import cpu, reference
from .cpu import backward, forward

__all__ = ["cpu", "reference", "forward", "backward"]
