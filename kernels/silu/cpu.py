"""SiLU and its derivative on the CPU: one fused Numba pass each, over two threads.

Why a kernel. Composed, silu(x) = x * sigmoid(x) is scipy's expit and a product forward and
three more passes for the gradient; in the DDPM U-Net (20 SiLUs a call) the sigmoids alone
took a tenth of a sampling call's time.

How float32 is computed (kernels/fastmath.py's sigmoids). With e = exp(-|x|) (its
vectorisable expf) and r = 1 / (1 + e), sigmoid(|x|) = r and sigmoid(-|x|) = e r, so both
sigmoid(x) and sigmoid(-x) = 1 - sigmoid(x) come without cancellation and e never
overflows:

    silu(x)  = x s,                 s = r (x >= 0) or e r (x < 0)
    silu'(x) = s (1 + x c),         c = sigmoid(-x) = e r (x >= 0) or r (x < 0)

tests/test_kernels_silu.py measures the error against float64 over the whole float32 range
where SiLU is neither 0 nor x (and at random points): silu within 4 ulps of its value;
silu' within 4 ulps of s + |x s c| (near silu's minimum at x = -1.28, where silu' crosses
0, the two terms cancel, as in any formula).

float64 arrays (gradient checks) go to reference.py. Below PARALLEL_MIN elements a serial
driver runs the same loop (kernels/coupling/cpu.py: waking the pool costs about what a pass
over that many values does). fastmath stays off, so infinities and NaNs pass through as in
reference.py. The same signatures as reference.py.
"""
import numpy as np
from numba import njit, prange

from ..fastmath import sigmoids as _sigmoids  # (sigmoid(x), sigmoid(-x)), inlined
from .. import unary
from . import reference

PARALLEL_MIN = 1 << 14  # elements


@njit(parallel=True, cache=True, error_model="numpy")
def _forward_parallel(x, out):
    for i in prange(x.size):
        out[i] = x[i] * _sigmoids(x[i])[0]


@njit(cache=True, error_model="numpy")
def _forward_serial(x, out):
    for i in range(x.size):
        out[i] = x[i] * _sigmoids(x[i])[0]


@njit(parallel=True, cache=True, error_model="numpy")
def _derivative_parallel(x, out):
    for i in prange(x.size):
        s, c = _sigmoids(x[i])
        out[i] = s * (np.float32(1.0) + x[i] * c)


@njit(cache=True, error_model="numpy")
def _derivative_serial(x, out):
    for i in range(x.size):
        s, c = _sigmoids(x[i])
        out[i] = s * (np.float32(1.0) + x[i] * c)


def forward(x):
    """silu(x) = x sigmoid(x), like x."""
    if reference.check(x) == np.float64:
        return reference.forward(x)
    return unary.run(_forward_parallel, _forward_serial, x, PARALLEL_MIN)


def derivative(x):
    """silu'(x) = sigmoid(x) (1 + x sigmoid(-x)), like x."""
    if reference.check(x) == np.float64:
        return reference.derivative(x)
    return unary.run(_derivative_parallel, _derivative_serial, x, PARALLEL_MIN)
