"""Exact GELU and its derivative on the GPU: one fused CuPy elementwise kernel each, for
float32 and float64 CuPy arrays, computed in the array's own precision. The same
signatures as cpu.py.

Phi is CUDA's normcdf (normcdff for float), which keeps its relative accuracy far into the
lower tail, as scipy's ndtr does for reference.py: no 1 + erf cancellation to 0 (CUDA's
math API gives its error as 5 ulps over the whole range). Infinities and NaN come out as
in reference.py: gelu(-inf) and gelu'(+-inf) are NaN there too (inf times 0).
"""
from .. import cudasource

_INV_SQRT_2PI = "0.398942280401432677939946059934"  # 1 / sqrt(2 pi), rounded to T
_DERIVATIVE = f"y = normcdf(x) + x * (exp(T(-0.5) * x * x) * T({_INV_SQRT_2PI}))"


def forward(x):
    """gelu(x) = x Phi(x), like x."""
    cudasource.check("gelu", x)
    return cudasource.elementwise("T x", "T y", "y = x * normcdf(x)",
                                  "minigen_gelu_forward")(x)


def derivative(x):
    """gelu'(x) = Phi(x) + x phi(x), like x."""
    cudasource.check("gelu", x)
    return cudasource.elementwise("T x", "T y", _DERIVATIVE, "minigen_gelu_derivative")(x)
