"""A float32 sum over axes in float64 on the GPU, as reference.py, in one CuPy reduction
kernel: each value is widened to float64 as it is read, and each total is rounded once to
float32 as it is written, so no float64 array of the results is made and cast after (two
launches and a temporary in reference.py's sum(dtype="float64").astype). CuPy's reduction
takes any axes and any layout, so there is no copy. The same signature as cpu.py.
"""
import functools

import numpy as np

from minigen import backend

from .. import cudasource
from . import reference


@functools.cache
def _kernel():
    return backend.cupy().ReductionKernel(
        "T x", "T y", "x", "a + b", "y = (T) a", "0", "minigen_sum_float64",
        reduce_type="double")


def sum_axes(x, axes, keepdims=False):
    """x summed over `axes` (a tuple of non-negative ints, sorted), float64 inside, x.dtype
    out."""
    if x.dtype != np.float32:
        return reference.sum_axes(x, axes, keepdims)
    cudasource.check("sum", x)
    return _kernel()(x, axis=axes, keepdims=keepdims)
