"""SiLU and its derivative on the GPU: one fused CuPy elementwise kernel each, for float32
and float64 CuPy arrays, computed in the array's own precision. The same signatures as
cpu.py.

As in cpu.py (kernels/fastmath.py's sigmoids): with e = exp(-|x|) and r = 1 / (1 + e),
sigmoid(|x|) = r and sigmoid(-|x|) = e r, so s = sigmoid(x) and c = sigmoid(-x) come
without the cancellation of 1 - s, and e never overflows:

    silu(x)  = x s
    silu'(x) = s (1 + x c)

Infinities and NaN come out as in reference.py (silu(-inf) and silu'(+-inf) are NaN there
too: inf times 0).
"""
from .. import cudasource
from ..sigmoid.cuda import SIGMOID

_DERIVATIVE = SIGMOID + """
T c = x >= T(0) ? e * r : r;  // sigmoid(-x)
y = s * (T(1) + x * c);
"""


def forward(x):
    """silu(x) = x sigmoid(x), like x."""
    cudasource.check("silu", x)
    return cudasource.elementwise("T x", "T y", SIGMOID + "y = x * s;",
                                  "minigen_silu_forward")(x)


def derivative(x):
    """silu'(x) = sigmoid(x) (1 + x sigmoid(-x)), like x."""
    cudasource.check("silu", x)
    return cudasource.elementwise("T x", "T y", _DERIVATIVE, "minigen_silu_derivative")(x)
