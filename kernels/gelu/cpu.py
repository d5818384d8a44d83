"""Exact GELU and its derivative on the CPU: one fused Numba pass each, over two threads.

Why a kernel. Composed from engine ops, gelu(x) = x (1 + erf(x / sqrt 2)) / 2 is four
passes forward and, with its gradient, about ten more; scipy's erf alone took 8 ms on the
(6400, 256) float32 activations of the M5 transformer, while PyTorch's whole GELU forward
and backward took 2.6 ms. Numba calling `math.erf` took 9.5 ms: without Intel's SVML LLVM
cannot vectorise a call to the C library's erf, as for exp (kernels/coupling/cpu.py).

How float32 is computed. With z = |x| / sqrt 2, Phi(-|x|) = erfc(z) / 2 and
Phi(|x|) = 1 - erfc(z) / 2, so one erfc serves both signs and the lower tail keeps its
relative accuracy (no 1 - erf cancellation). erfc is Numerical Recipes' Chebyshev fit
(Press et al., Numerical Recipes in C, 2nd ed., section 6.2, erfcc; fractional error below
1.2e-7 for every z >= 0):

    erfc(z) = t exp(-z^2 + P(t)),   t = 1 / (1 + z / 2),   P of degree 9 (_P below),

in float32 arithmetic with the coupling kernel's vectorisable exp. exp(-z^2) = exp(-x^2 / 2)
is taken from x itself as exp(-ah^2 / 2) exp(-(a - ah)(a + ah) / 2), with a = |x| and ah = a
rounded down to 1/128: ah has at most 12 significant bits, so ah^2 is exact, and the second
argument is below 0.2. Rounding z = a / sqrt 2 or z^2 instead would cost up to |x|^2 / 2
ulps (1e-5 relative at x = -13, measured); z's rounding still enters t and P(t), which the
result barely feels. Beyond a = 14.8 Phi(-a) is below float32's smallest subnormal and is
set to 0. Measured against float64 on every 2^-10 step of [-14.9, 14.9] and two million
random points (tests/test_kernels_gelu.py checks the same): gelu within 8 ulps of its value
for |x| < 9 and 12 where it nears float32's subnormals; gelu' within 12 ulps of
|Phi| + |x phi| (near its zero at x = -0.75 the two terms cancel, as in any formula).

Speed on M5's (6400, 256) float32 activations, one thread, measured under load (other
processes on both cores, where scipy's erf took 26 ms instead of its quiet 8): forward 3.1
to 3.5 ms, derivative 4.0 ms (three exps instead of two). The drivers need Numba's "numpy"
error model: Python's checks the division for t for zero and raises, and that branch kept
the loop from vectorising (40 ms).

float64 arrays (gradient checks) go to reference.py, where speed does not matter. A Numba
loop over the C library's erfc(-x / sqrt 2) was no better: both lose about z^2 ulps to the
rounding of z = x / sqrt 2 (scipy's ndtr, against mpmath: 6 ulps at x = -3.26, 44 at -8,
about 1000, or 1e-13 relative, at -37), which is far below float32's resolution.

Below PARALLEL_MIN elements a serial driver runs the same loop (see kernels/coupling/cpu.py:
waking the pool costs about what a pass over that many values does). fastmath stays off, so
infinities and NaNs pass through as in reference.py. The same signatures as reference.py.
"""
import math

import numpy as np
from numba import njit, prange
from numba.extending import overload

# a shared building block, not a copy: Cephes' expf that LLVM vectorises
from ..fastmath import fast_exp
from .. import unary
from . import reference

PARALLEL_MIN = 1 << 14  # elements

_SQRT1_2 = np.float32(1 / math.sqrt(2))
_INV_SQRT_2PI = np.float32(1 / math.sqrt(2 * math.pi))
_TAIL_ZERO = np.float32(14.8)  # Phi(-14.8) = 7e-50: below float32's smallest subnormal
_P = tuple(np.float32(c) for c in (
    -1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398,
    1.48851587, -0.82215223, 0.17087277))


def _tail(a):
    """For float32 a >= 0 (or NaN): (Phi(-a), exp(-a^2 / 2)), both 0 beyond _TAIL_ZERO."""


# overloads, not njit functions, so that they compile into each kernel, inlined: a cached
# njit function is linked as object code, which LLVM can neither inline nor vectorise
@overload(_tail, inline="always", jit_options={"error_model": "numpy"})
def _tail_float32(a):
    def tail(a):
        z = a * _SQRT1_2  # its rounding moves t and P(t) only, which the result barely feels
        t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.5) * z)
        p = _P[9]
        p = p * t + _P[8]
        p = p * t + _P[7]
        p = p * t + _P[6]
        p = p * t + _P[5]
        p = p * t + _P[4]
        p = p * t + _P[3]
        p = p * t + _P[2]
        p = p * t + _P[1]
        p = p * t + _P[0]
        ah = np.floor(a * np.float32(128.0)) * np.float32(1 / 128)
        low = np.float32(-0.5) * (a - ah) * (a + ah)
        gauss_high = fast_exp(np.float32(-0.5) * (ah * ah))
        # exp(low) twice rather than once and a third exp(p): forward, which needs no
        # gauss, then does two exps, not three
        cdf = np.float32(0.5) * t * gauss_high * fast_exp(low + p)
        gauss = gauss_high * fast_exp(low)
        if a > _TAIL_ZERO:  # also keeps a = inf's inf - inf out of the results
            cdf = np.float32(0.0)
            gauss = np.float32(0.0)
        return cdf, gauss
    return tail


def _gelu(x):
    """x Phi(x) for float32 x."""


def _gelu_derivative(x):
    """Phi(x) + x phi(x) for float32 x."""


@overload(_gelu, inline="always", jit_options={"error_model": "numpy"})
def _gelu_float32(x):
    def gelu(x):
        lower, _ = _tail(abs(x))
        return x * (lower if x < 0 else np.float32(1.0) - lower)
    return gelu


@overload(_gelu_derivative, inline="always", jit_options={"error_model": "numpy"})
def _gelu_derivative_float32(x):
    def gelu_derivative(x):
        lower, gauss = _tail(abs(x))
        return (lower if x < 0 else np.float32(1.0) - lower) + x * (gauss * _INV_SQRT_2PI)
    return gelu_derivative


@njit(parallel=True, cache=True, error_model="numpy")
def _forward_parallel(x, out):
    for i in prange(x.size):
        out[i] = _gelu(x[i])


@njit(cache=True, error_model="numpy")
def _forward_serial(x, out):
    for i in range(x.size):
        out[i] = _gelu(x[i])


@njit(parallel=True, cache=True, error_model="numpy")
def _derivative_parallel(x, out):
    for i in prange(x.size):
        out[i] = _gelu_derivative(x[i])


@njit(cache=True, error_model="numpy")
def _derivative_serial(x, out):
    for i in range(x.size):
        out[i] = _gelu_derivative(x[i])


def forward(x):
    """gelu(x) = x Phi(x), like x."""
    if reference.check(x) == np.float64:
        return reference.forward(x)
    return unary.run(_forward_parallel, _forward_serial, x, PARALLEL_MIN)


def derivative(x):
    """gelu'(x) = Phi(x) + x phi(x), like x."""
    if reference.check(x) == np.float64:
        return reference.derivative(x)
    return unary.run(_derivative_parallel, _derivative_serial, x, PARALLEL_MIN)
