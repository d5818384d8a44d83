"""Affine coupling with its log-determinant: `cpu` (the default, one fused Numba pass) and
`reference` (plain NumPy), one signature: forward returns (out, logdet, scale), backward
returns grad_x, grad_s, grad_t stacked in one array.

    from minigen.kernels import coupling
    y, logdet, scale = coupling.forward(x, s, t)        # y = x * exp(s) + t, scale = exp(s)
    grad_x, grad_s, grad_t = coupling.backward(x, scale, t, grad_y, grad_logdet)
    x, logdet_inverse, _ = coupling.forward(y, s, t, reverse=True)
"""
from . import cpu, reference
from .cpu import backward, forward

__all__ = ["cpu", "reference", "forward", "backward"]
