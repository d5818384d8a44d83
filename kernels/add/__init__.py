"""The sum of two gradients of one shape, a + b: `cpu` (the default for NumPy float arrays:
a Numba loop that splits the rows over the threads as the kernels do) and `reference`
(NumPy's or CuPy's own +), one signature.

    from minigen.kernels import add
    total = add.cpu.add(a, b)

The engine adds with it where two paths' gradients meet in backward (autograd._accumulate),
without create_graph. Why a kernel for an addition: see cpu.py.
"""
import numpy as np

from . import cpu, reference

__all__ = ["cpu", "reference"]

# for minigen.backend.kernel: other dtypes keep the engine's own Add; CuPy arrays get the
# reference, which is a + b on either
DTYPES = (np.float32, np.float64)
