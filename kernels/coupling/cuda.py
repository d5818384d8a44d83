"""Affine coupling on the GPU: coupling.cu's two kernels, one each way, for float32 and
float64 CuPy arrays. The same signatures as cpu.py.

forward reads x, s and t once: a block takes a slice of one sample's row, writes out and
scale = exp(+-s) (kept for backward, as cpu.py does) and adds the slice's s into one
double, which its warps reduce with shuffles (coupling.cu's block_sum). The double sum is
what keeps a float32 log-determinant as accurate as reference.py's float64 one: a 784-pixel
row with s near 10 sums to about 8000, where float32 steps by 0.0005. Blocks add in a fixed
order and never through atomics, so the log-determinant is the same on every run.

A sample's row goes to one block while there are samples enough to fill the GPU (BLOCKS);
with fewer, each row is split over several blocks, whose partial sums one more (small,
float64) reduction adds: a batch of two large images would otherwise keep two of an H100's
132 multiprocessors busy. Rows shorter than a block get a block of the next power of two
from 32 on, so a 2-D toy flow (rows of 1 or 2) does not launch 256 threads for each value.

backward is elementwise: one thread an entry, writing grad_x, grad_s and grad_t straight
into the three parts of the stacked result.
"""
import numpy as np

from minigen import backend

from .. import cudasource
from .cpu import row_shape

BLOCKS = 256  # about two blocks per multiprocessor of an H100 (132): enough to fill it
WARP = 32


def _rows(op, *arrays):
    """The arrays as C-contiguous (N, D) matrices, after checking they fit together."""
    n, d = row_shape(*arrays)
    cudasource.check(f"affine coupling {op}", *arrays)
    return [a.reshape(n, d) for a in cudasource.contiguous(*arrays)]


def _layout(n, d):
    """(threads a block, blocks a row) for n rows of d entries."""
    threads = min(cudasource.THREADS, max(WARP, 1 << (d - 1).bit_length()))
    return threads, min(-(-d // threads), max(1, BLOCKS // n))


def forward(x, s, t, reverse=False):
    """-> (out, logdet, scale): out like x; logdet float64 of shape (N,); scale = exp(s)
    (reverse: exp(-s)), the factor each entry of x was multiplied by, for backward."""
    x2, s2, t2 = _rows("forward", x, s, t)
    cp = backend.cupy()
    n, d = x2.shape
    out, scale = cp.empty_like(x2), cp.empty_like(x2)
    if not x2.size:
        return out.reshape(x.shape), cp.zeros(n, dtype=np.float64), scale.reshape(x.shape)
    threads, parts = _layout(n, d)
    partial = cp.empty((n, parts), dtype=np.float64)
    kernel = cudasource.function(__file__, "coupling.cu", "coupling_forward", x2.dtype)
    kernel((n, parts), (threads,), (x2, s2, t2, out, scale, partial, cudasource.int32(d),
                                    np.int32(bool(reverse))))
    logdet = partial.reshape(n) if parts == 1 else partial.sum(axis=1)
    return out.reshape(x.shape), logdet, scale.reshape(x.shape)


def backward(x, scale, t, grad_out, grad_logdet=None, reverse=False):
    """The gradients of sum(grad_out * out) + sum(grad_logdet * logdet) with respect to x, s
    and t, stacked in one array of shape (3,) + x.shape that unpacks as
    grad_x, grad_s, grad_t. scale is forward's third result; grad_logdet (float64, (N,))
    may be None for zero."""
    x2, scale2, t2, g2 = _rows("backward", x, scale, t, grad_out)
    cp = backend.cupy()
    n, d = x2.shape
    grads = cp.empty((3,) + x2.shape, dtype=x2.dtype)
    if x2.size:
        # cast to x's dtype before it is added, as cpu.py and reference.py do
        g_logdet = (cp.zeros(n, dtype=x2.dtype) if grad_logdet is None
                    else cp.asarray(grad_logdet).reshape(n).astype(x2.dtype))
        kernel = cudasource.function(__file__, "coupling.cu", "coupling_backward", x2.dtype)
        kernel(cudasource.grid(x2.size), (cudasource.THREADS,),
               (x2, scale2, t2, g2, g_logdet, grads[0], grads[1], grads[2],
                cudasource.int32(x2.size), cudasource.int32(d), np.int32(bool(reverse))))
    return grads.reshape((3,) + x.shape)
