"""The sigmoid on the CPU: one Numba pass, on one thread.

Why a kernel. scipy's expit computes one value at a time: 5.8-8.9 ms on the (32, 64, 28, 28)
float32 gates of the gated PixelCNN, where this kernel takes 1.0 ms, NumPy's tanh 0.65 ms
and PyTorch's sigmoid 1.0 ms (development machine, 2 threads for PyTorch). In
benchmarks.breakdown's profile of the M3 train step the sigmoids took 60 of minigen's 614
ms, PyTorch's 5 of its 602; in M4's (WaveNet) 23 of 196 ms against 1.3 of 117.

How float32 is computed: kernels/fastmath.py's sigmoids, with e = exp(-|x|) (its
vectorisable expf) and r = 1 / (1 + e), sigmoid(x) = r for x >= 0 and e r below, so the
lower tail keeps its relative accuracy and e never overflows. tests/test_kernels_sigmoid.py
measures it against float64 over the whole float32 range where the sigmoid is neither 0
nor 1 (and at random points): within 3 ulps of its value.

One thread, on purpose. A parallel version over Numba's thread pool (the "omp" layer here)
was faster alone (0.56 against 1.0 ms on the gates above), but inside a train step its
workers spin after each loop and take the cores from the convolutions that follow, whose
threads are the kernels' own (kernels/parallel.py): minigen's M2 step (PixelCNN, with the
ReLU kernel built the same way) took 202 ms against 139 ms before either kernel, and 122 to
148 ms with both run serially (single steps' medians, one run each, so a direction, not a
figure). M2's step used no Numba pool before (its Adam updates are below the Adam kernel's
PARALLEL_MIN).

float64 arrays (gradient checks) go to reference.py. fastmath stays off, so infinities and
NaNs pass through as in reference.py. The same signature as reference.py.
"""
import numpy as np
from numba import njit

from ..fastmath import sigmoids
from .. import unary
from . import reference


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(x, out):
    for i in range(x.size):
        out[i] = sigmoids(x[i])[0]


def forward(x):
    """sigmoid(x) = 1 / (1 + e^-x), like x."""
    if reference.check(x) == np.float64:
        return reference.forward(x)
    return unary.one_pass(_forward, x)
