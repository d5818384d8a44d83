"""The sigmoid on the GPU: one CuPy elementwise kernel, for float32 and float64 CuPy arrays,
computed in the array's own precision. The same signature as cpu.py.

As in cpu.py (kernels/fastmath.py's sigmoids): with e = exp(-|x|) and r = 1 / (1 + e),
sigmoid(x) = r for x >= 0 and e r below, so the lower tail keeps its relative accuracy and
e never overflows (1 / (1 + e^-x) overflows e^-x below x = -88 in float32). NaN stays NaN.
"""
import functools

from minigen import backend

from .. import cudasource


@functools.cache
def _kernel():
    return backend.cupy().ElementwiseKernel(
        "T x", "T y",
        """
        T e = exp(-fabs(x));
        T r = T(1) / (T(1) + e);
        y = x >= T(0) ? r : e * r;
        """,
        "minigen_sigmoid_forward")


def forward(x):
    """sigmoid(x) = 1 / (1 + e^-x), like x."""
    cudasource.check("sigmoid", x)
    return _kernel()(x)
