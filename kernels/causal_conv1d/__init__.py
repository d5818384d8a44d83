"""Causal dilated conv1d for WaveNet: `cpu` (the default, BLAS per tap) and `reference`
(plain NumPy), with one signature: forward, grad_input, grad_weight.

    from minigen.kernels import causal_conv1d
    y = causal_conv1d.forward(x, w, b, dilation=4, shift=False)
"""
from . import cpu, reference
from .cpu import forward, grad_input, grad_weight

__all__ = ["cpu", "reference", "forward", "grad_input", "grad_weight"]
