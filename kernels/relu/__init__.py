"""ReLU and its gradient: `cpu` (the default, one Numba pass each) and `reference` (plain
NumPy), one signature.

    from minigen.kernels import relu
    y = relu.forward(x)            # max(x, 0), NaN kept
    gx = relu.grad(g, x)           # g where x > 0, else g * 0
"""
import numpy as np

from . import cpu, reference
from .cpu import forward, grad

__all__ = ["cpu", "reference", "forward", "grad"]

# for minigen.backend.kernel: the Numba version takes float32 and float64 NumPy arrays,
# CuPy arrays of those take the reference (written with xp_of), and other dtypes get no
# kernel, so the op (minigen.ops.elementwise.Relu) takes the reference itself
DTYPES = (np.float32, np.float64)
