"""conv2d (stride, padding, dilation): `cpu` (the default, im2col and BLAS), `reference`
(plain NumPy) and, for CuPy arrays, `cuda` (im2col in CUDA and cuBLAS; imported by
minigen.backend.kernel), with one signature: forward, grad_input (also conv_transpose2d's
forward), grad_weight.

    from minigen.kernels import conv2d
    y = conv2d.forward(x, w, b, stride=2, padding=1)
"""
from . import cpu, reference
from .cpu import forward, grad_input, grad_weight
from .reference import output_size

__all__ = ["cpu", "reference", "forward", "grad_input", "grad_weight", "output_size"]
