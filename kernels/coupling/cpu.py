"""Affine coupling on the CPU: one fused Numba pass per direction, parallel over the batch.

forward reads x, s and t once and writes out, scale = exp(+-s) and the float64
log-determinant; backward reads x, scale, t and grad_out once and writes grad_x, grad_s and
grad_t into one stacked array. Keeping exp(s) for backward, as PyTorch's autograd does,
halves backward's time (46 us instead of 90 us in two threads for the K5 shape, where
recomputing it took as long as the forward pass) and costs forward nothing measurable:
the store hides behind the exp. The same signatures as reference.py.

Why Numba, and why its own exp. Measured on the development machine (2 cores, K5 shape
x (256, 1, 28, 28), float32, medians of 200 calls on a quiet machine):
- NumPy op by op (reference.py's forward: exp, multiply, add, a float64 sum): 265 us, in
  one thread; np.exp alone takes 110 us and the float64 row sums 91 us;
- Numba calling `math.exp`: 700 us for the fused forward in one thread, 394 us in two.
  Without Intel's SVML (absent here) LLVM cannot vectorise a call to the C library's expf,
  so it computes one value at a time;
- Numba with `exp_float32` (kernels/fastmath.py), Cephes' expf in plain float32 arithmetic that LLVM does
  vectorise: the fused forward takes 166 us in one thread and 87 us in two; backward 169
  and 93 us. It is within one ulp of the exact exp (0.53 ulp at worst over two million
  points; the tests check the whole float32 range).
The float64 sum goes in a helper compiled with `fastmath={"reassoc"}` alone, which lets
LLVM add in vector lanes (18 us instead of 163 us in one thread for the K5 shape): with 29
more bits than the float32 values it adds, the order of the additions cannot show at
float32 precision. The kernels themselves keep fastmath=False: no contraction into FMAs,
so results round as NumPy's do, and infinities and NaNs pass through.

Below PARALLEL_MIN elements a serial driver runs the same row function: there a pass takes
a few microseconds, about what waking the thread pool costs (8 x 784 values: 8 us serial,
7 us parallel), and a pool whose other thread has lost its core to another process would
stall it for a whole scheduler slice.
"""
import numpy as np
from numba import njit, prange

from ..fastmath import fast_exp

PARALLEL_MIN = 1 << 14  # elements


@njit(cache=True, fastmath={"reassoc"})
def _sum64(a):
    total = 0.0
    for i in range(a.size):
        total += np.float64(a[i])
    return total


@njit(cache=True)
def _forward_row(x, s, t, reverse, out, scale):
    """One sample: out and scale from x, s, t; returns the log-determinant."""
    if reverse:
        for i in range(x.size):
            e = fast_exp(-s[i])
            scale[i] = e
            out[i] = (x[i] - t[i]) * e
        return -_sum64(s)
    for i in range(x.size):
        e = fast_exp(s[i])
        scale[i] = e
        out[i] = x[i] * e + t[i]
    return _sum64(s)


@njit(cache=True)
def _backward_row(x, scale, t, g, g_logdet, reverse, gx, gs, gt):
    """One sample: gradients for output gradient g and log-determinant gradient g_logdet."""
    if reverse:
        for i in range(x.size):
            dx = g[i] * scale[i]
            gx[i] = dx
            gs[i] = -dx * (x[i] - t[i]) - g_logdet
            gt[i] = -dx
    else:
        for i in range(x.size):
            dx = g[i] * scale[i]
            gx[i] = dx
            gs[i] = dx * x[i] + g_logdet
            gt[i] = g[i]


@njit(parallel=True, cache=True)
def _forward_parallel(x, s, t, reverse, out, scale, logdet):
    for n in prange(x.shape[0]):
        logdet[n] = _forward_row(x[n], s[n], t[n], reverse, out[n], scale[n])


@njit(cache=True)
def _forward_serial(x, s, t, reverse, out, scale, logdet):
    for n in range(x.shape[0]):
        logdet[n] = _forward_row(x[n], s[n], t[n], reverse, out[n], scale[n])


@njit(parallel=True, cache=True)
def _backward_parallel(x, scale, t, g, g_logdet, reverse, grads):
    for n in prange(x.shape[0]):
        _backward_row(x[n], scale[n], t[n], g[n], g_logdet[n], reverse, grads[0, n],
                      grads[1, n], grads[2, n])


@njit(cache=True)
def _backward_serial(x, scale, t, g, g_logdet, reverse, grads):
    for n in range(x.shape[0]):
        _backward_row(x[n], scale[n], t[n], g[n], g_logdet[n], reverse, grads[0, n],
                      grads[1, n], grads[2, n])


def row_shape(*arrays):
    """(N, D), the arrays as rows, after checking that they fit together: one shape with a
    batch axis, one dtype, float32 or float64 (cuda.py checks its arrays here too)."""
    x = arrays[0]
    if x.ndim == 0:
        raise ValueError("affine coupling needs a batch axis; got a 0-d array")
    for a in arrays:
        if a.shape != x.shape:
            raise ValueError(f"affine coupling: shapes {[b.shape for b in arrays]} differ; "
                             f"x, s, t (and the gradient) need one shape")
        if a.dtype != x.dtype or x.dtype not in (np.float32, np.float64):
            raise TypeError(f"affine coupling: dtypes {[str(b.dtype) for b in arrays]}; "
                            f"expected one dtype, float32 or float64")
    n = x.shape[0]
    return n, (x.size // n if n else 0)


def _as_rows(*arrays):
    """The arrays as C-contiguous (N, D) matrices, after checking they fit together."""
    n, d = row_shape(*arrays)
    return [np.ascontiguousarray(a).reshape(n, d) for a in arrays]


def forward(x, s, t, reverse=False):
    """-> (out, logdet, scale): out like x; logdet float64 of shape (N,); scale = exp(s)
    (reverse: exp(-s)), the factor each entry of x was multiplied by, for backward."""
    x2, s2, t2 = _as_rows(x, s, t)
    out, scale = np.empty_like(x2), np.empty_like(x2)
    logdet = np.empty(x2.shape[0], dtype=np.float64)
    run = _forward_parallel if x2.size >= PARALLEL_MIN else _forward_serial
    run(x2, s2, t2, bool(reverse), out, scale, logdet)
    return out.reshape(x.shape), logdet, scale.reshape(x.shape)


def backward(x, scale, t, grad_out, grad_logdet=None, reverse=False):
    """The gradients of sum(grad_out * out) + sum(grad_logdet * logdet) with respect to x, s
    and t, stacked in one array of shape (3,) + x.shape that unpacks as
    grad_x, grad_s, grad_t. scale is forward's third result; grad_logdet (float64, (N,))
    may be None for zero."""
    x2, scale2, t2, g2 = _as_rows(x, scale, t, grad_out)
    n = x2.shape[0]
    g_logdet = (np.zeros(n, dtype=x.dtype) if grad_logdet is None
                else np.asarray(grad_logdet).reshape(n).astype(x.dtype))
    grads = np.empty((3,) + x2.shape, dtype=x.dtype)
    run = _backward_parallel if x2.size >= PARALLEL_MIN else _backward_serial
    run(x2, scale2, t2, g2, g_logdet, bool(reverse), grads)
    return grads.reshape((3,) + x.shape)
