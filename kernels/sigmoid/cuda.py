"""The sigmoid on the GPU: one CuPy elementwise kernel, for float32 and float64 CuPy arrays,
computed in the array's own precision. The same signature as cpu.py.

As in cpu.py (kernels/fastmath.py's sigmoids): with e = exp(-|x|) and r = 1 / (1 + e),
sigmoid(x) = r for x >= 0 and e r below, so the lower tail keeps its relative accuracy and
e never overflows (1 / (1 + e^-x) overflows e^-x below x = -88 in float32). NaN stays NaN.
"""
from .. import cudasource

# s = sigmoid(x), leaving e = exp(-|x|) and r = 1 / (1 + e) for silu's kernels, which
# start from it too
SIGMOID = """
T e = exp(-fabs(x));
T r = T(1) / (T(1) + e);
T s = x >= T(0) ? r : e * r;
"""


def forward(x):
    """sigmoid(x) = 1 / (1 + e^-x), like x."""
    cudasource.check("sigmoid", x)
    return cudasource.elementwise("T x", "T y", SIGMOID + "y = s;",
                                  "minigen_sigmoid_forward")(x)
