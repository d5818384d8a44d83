"""a + b on the CPU, the rows split over the threads the way the other kernels split them.

Why a kernel for an addition. The development machine is a 2-core virtual machine, and for
stretches of seconds to a minute (a fifth to two fifths of the time in some 4-minute
samples) a core reads what the other core has just written several times slower than
usual. Then a one-thread NumPy pass over the output of a kernel that ran on both cores
waits for the other core's half. Measured on K5's shape (x (256, 1, 28, 28), float32,
benchmarks/flow.py), microseconds per call, median of 200, in one process that ran through
both kinds of stretch:

    coupling forward (2 threads)                         85  in either stretch
    the same, then NumPy's out + scale                  112  usual    500-600  slow
    the same, then this kernel's out + scale            110  usual    100-110  slow
    coupling forward (1 thread), then NumPy's add       183  in either stretch

K5's whole step (forward, backward, inverse) went from 0.33 to 0.9-1.3 ms in those
stretches, while PyTorch's, whose every op splits its work over the threads alike, kept
its speed: minigen's backward adds the log-determinant's gradient to the coupling's
gradient for s in one such NumPy pass. Here each thread adds the rows that the same
thread wrote: Numba's prange gives thread k the k-th of equal contiguous blocks of the
rows, as in the kernels' own prange over the batch, and a flat prange over the same array
(kernels/unary.py) splits its elements at the same places.

Below PARALLEL_MIN elements, with a single row, and where an array cannot be viewed as
(rows, columns) without a copy, NumPy adds (kernels/coupling/cpu.py: waking the pool costs
about what a pass over 16k values does). The float addition is the same as NumPy's, so the
results are equal bit for bit. The same signature as reference.py.
"""
import numpy as np
from numba import njit, prange

from .reference import check

PARALLEL_MIN = 1 << 14  # elements


@njit(parallel=True, cache=True)
def _add_rows(a, b, out):
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] + b[i, j]


def as_rows(a):
    """a viewed as (len(a), -1) without a copy, or None where its strides forbid that: the
    axes after the first must step over each other whole (size-1 axes aside)."""
    dims = [(size, step) for size, step in zip(a.shape[1:], a.strides[1:]) if size != 1]
    for (_, step), (size, inner) in zip(dims, dims[1:]):
        if step != inner * size:
            return None
    inner = dims[-1][1] if dims else a.itemsize
    return np.lib.stride_tricks.as_strided(a, (a.shape[0], a.size // a.shape[0]),
                                           (a.strides[0], inner), writeable=False)


def add(a, b):
    """a + b, a new C-contiguous array; either may be a view (broadcast, sliced)."""
    check(a, b)
    if (a.size < PARALLEL_MIN or a.ndim == 0 or a.shape[0] < 2
            or a.dtype not in (np.float32, np.float64)):
        return a + b
    a2, b2 = as_rows(a), as_rows(b)
    if a2 is None or b2 is None:
        return a + b
    out = np.empty(a.shape, a.dtype)
    _add_rows(a2, b2, out.reshape(a2.shape))
    return out
