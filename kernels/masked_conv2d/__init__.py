"""PixelCNN's masked conv2d (mask types A and B, odd kernels, colour groups): `cpu` (the
default, computes only the kept taps), `reference` (plain NumPy, the masked weight) and,
for CuPy arrays, `cuda` (the kept taps on conv2d's CUDA passes; imported by
minigen.backend.kernel), with one signature: forward, grad_input, grad_weight; and `mask`,
the mask itself.

    from minigen.kernels import masked_conv2d
    y = masked_conv2d.forward(x, w, b, mask_type="A")
    m = masked_conv2d.mask(64, 1, 7, "A")          # (64, 1, 7, 7), 24 of 49 taps kept
"""
from . import cpu, reference
from .cpu import forward, grad_input, grad_weight
from .reference import mask

__all__ = ["cpu", "reference", "forward", "grad_input", "grad_weight", "mask"]
