"""A sum over axes accumulated in float64 and rounded once to float32: `cpu` (Numba, the
default for NumPy float32 arrays) and `reference` (NumPy's or CuPy's own sum with a float64
accumulator), one signature.

    from minigen.kernels import sum as sum_kernel
    y = sum_kernel.cpu.sum_axes(x, axes=(0, 2, 3), keepdims=True)

The engine's Sum runs on it for float32 tensors: every reduction of a bias, a norm's scale
and every gradient summed back over broadcast axes goes through it.
"""
import numpy as np

from . import cpu, reference

__all__ = ["cpu", "reference"]

# for minigen.backend.kernel: float32 only (other dtypes need no float64 accumulator and keep
# NumPy's own sum); CuPy arrays get the reference, written with xp_of
DTYPES = (np.float32,)
