"""A float32 sum over axes in float64, as reference.py, in one or two Numba passes.

Why a kernel. NumPy's float32 sum with a float64 accumulator casts the input through a
small buffer and, along axes that are not the innermost, adds rows one at a time; short
axes are worst. Measured on one thread, min of 40, with two other processes busy on the
2-core machine (so only the ratios mean much), float32 inputs:

    shape, axes                              what it is                   NumPy    here
    (128, 128, 4, 2, 4, 2), (3, 5)           upsample_nearest's gradient  11.0     1.74 ms
    (128, 128, 4, 4), (0, 2, 3)              a group norm's scale grad     0.35    0.046
    (6400, 256), (0,)                        a linear layer's bias grad    0.53    0.14
    (32, 64, 28, 28), (0, 2, 3)              channel sums, 28x28 batch     0.52    0.13
    (16, 64, 4096), (0, 2)                   channel sums, K3's sequences  1.81    0.31
    (64,) or (4, 4), all                     tiny: no gain, no loss        0.003   0.003

How. Adjacent axes that are both summed, or both kept, are one axis to a C-contiguous array,
so the reduction is a list of groups that alternate (size, summed?). Two loops do all of
it, innermost group first, each on the previous one's float64 result:

    summed last:   out[a] = sum_l x[a, l]             x as (A, L)
    kept last:     out[p, l] = sum_m x[p, m, l]       x as (P, M, L); the kept groups on
                                                      either side of m then merge

Each accumulates in float64 in the order LLVM vectorises (fastmath "reassoc" only: NaN and
infinities keep their IEEE meaning), so the result differs from the reference's only by
float64 rounding, well below float32's last place, before the one rounding to float32.
Arrays that are not C-contiguous (broadcast or transposed views, whose copy would cost as
much as the sum) and empty ones go to reference.py. The same signature as reference.py.
"""
import numpy as np
from numba import njit

from . import reference


@njit(cache=True, fastmath={"reassoc"})
def _sum_last(x, out):
    """out[a] = sum over l of x[a, l], in float64."""
    for a in range(x.shape[0]):
        total = 0.0
        for i in range(x.shape[1]):
            total += np.float64(x[a, i])
        out[a] = total


@njit(cache=True, fastmath={"reassoc"})
def _sum_middle(x, out):
    """out[p, l] = sum over m of x[p, m, l], in float64."""
    for p in range(x.shape[0]):
        for i in range(x.shape[2]):
            out[p, i] = 0.0
        for m in range(x.shape[1]):
            for i in range(x.shape[2]):
                out[p, i] += np.float64(x[p, m, i])


def groups(shape, axes):
    """[[size, summed], ...] for `shape`: adjacent axes of one kind merged, size-1 axes
    left out (they change neither the layout nor the sum)."""
    merged = []
    for i, n in enumerate(shape):
        if n == 1:
            continue
        summed = i in axes
        if merged and merged[-1][1] == summed:
            merged[-1][0] *= n
        else:
            merged.append([n, summed])
    return merged


def sum_axes(x, axes, keepdims=False):
    """x summed over `axes` (a tuple of non-negative ints, sorted), float64 inside, x.dtype
    out."""
    if (not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.size == 0
            or not x.flags.c_contiguous):
        return reference.sum_axes(x, axes, keepdims)
    left = groups(x.shape, axes)
    part = x
    while any(summed for _, summed in left):
        size = left[-1][0]
        if left[-1][1]:
            out = np.empty(part.size // size)
            _sum_last(part.reshape(-1, size), out)
            left.pop()
        else:
            rows = left[-2][0]
            out = np.empty((part.size // (rows * size), size))
            _sum_middle(part.reshape(-1, rows, size), out)
            del left[-2]
            if len(left) > 1 and not left[-2][1]:
                left[-2][0] *= left.pop()[0]
        part = out
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape)) if keepdims else \
        tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return part.reshape(kept).astype(x.dtype)
