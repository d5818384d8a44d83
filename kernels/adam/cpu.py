"""Adam's update of one parameter in place on the CPU: one fused Numba pass.

Why a kernel. reference.py's update is nine array passes, each reading and writing whole
arrays and four of them allocating a temporary; on MADE's 329k parameters (the M1 train
step) they took about a fifth of minigen's step. One loop reads p, g, m and v once and
writes p, m and v once.

Bit for bit the reference. Each element goes through the reference's operations in its
order, in the array's dtype, with the scalars rounded to that dtype once as NumPy rounds a
Python scalar (float32(1 - beta1), not 1 - float32(beta1)); fastmath stays off, so LLVM
neither contracts a multiply and an add into one rounding nor reorders them, and sqrt is
IEEE's correctly rounded one on both sides. tests/test_kernels_adam.py checks equality over
many steps, both drivers and both dtypes.

Below PARALLEL_MIN elements the serial driver runs (waking the thread pool costs about
what a pass over that many values does; see kernels/coupling/cpu.py).
"""
import math

import numpy as np
from numba import njit, prange

from . import reference

PARALLEL_MIN = 1 << 16  # elements


@njit(inline="always", error_model="numpy")
def _one(p, g, m, v, i, keep, wd, c1, beta2, c2, bias2, eps, step_size):
    """Element i; keep != 1 is the decoupled decay, wd != 0 the L2 one (skipped, not
    multiplied by 1 or added as 0, so that an infinite p or a -0 gradient stays as the
    reference leaves it)."""
    pi = p[i]
    if keep != 1:
        pi = pi * keep
    gi = g[i]
    if wd != 0:
        gi = gi + wd * pi
    mi = m[i] + c1 * (gi - m[i])
    vi = v[i] * beta2 + c2 * gi * gi
    m[i] = mi
    v[i] = vi
    p[i] = pi - step_size * (mi / (np.sqrt(vi) / bias2 + eps))


@njit(parallel=True, cache=True, error_model="numpy")
def _parallel(p, g, m, v, keep, wd, c1, beta2, c2, bias2, eps, step_size):
    for i in prange(p.size):
        _one(p, g, m, v, i, keep, wd, c1, beta2, c2, bias2, eps, step_size)


@njit(cache=True, error_model="numpy")
def _serial(p, g, m, v, keep, wd, c1, beta2, c2, bias2, eps, step_size):
    for i in range(p.size):
        _one(p, g, m, v, i, keep, wd, c1, beta2, c2, bias2, eps, step_size)


def update(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0, decoupled=False):
    """Change p, m and v in place for Adam step `step` (1 for the first) from gradient g:
    reference.update's result, bit for bit. The fused loop takes C-contiguous p, m and v
    of one float dtype (g is made one: a copy only where it is not); other arrays, or a g
    of another dtype, go to reference.update itself."""
    if g.dtype != p.dtype or not all(a.flags.c_contiguous for a in (p, m, v)):
        return reference.update(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay,
                                decoupled)
    dtype = p.dtype.type
    g = np.ascontiguousarray(g, dtype=dtype)
    flat = [a.reshape(-1) for a in (p, g, m, v)]
    keep = dtype(1 - lr * weight_decay) if weight_decay and decoupled else dtype(1)
    wd = dtype(weight_decay) if weight_decay and not decoupled else dtype(0)
    scalars = (keep, wd, dtype(1 - beta1), dtype(beta2), dtype(1 - beta2),
               dtype(math.sqrt(1 - beta2 ** step)), dtype(eps),
               dtype(lr / (1 - beta1 ** step)))
    (_parallel if p.size >= PARALLEL_MIN else _serial)(*flat, *scalars)
