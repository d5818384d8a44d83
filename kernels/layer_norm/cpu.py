"""Layer normalisation without its affine part on the CPU: one Numba pass per row and
direction, in one thread. forward returns xhat and keeps rstd per row for backward
(as PyTorch does), so backward reads xhat, rstd and g once and writes dx.

Why a kernel: composed from engine ops, LayerNorm was a mean, a variance (a mean, a
subtraction, a square and a sum), a sum, a square root and a division forward and about
twice that backward, each a full pass over the (batch * T, d) activations; on the M5
transformer's (6400, 64) rows that was 10 ms for forward and backward under load.

The row sums are accumulated in float64 in helpers compiled with fastmath={"reassoc"}
alone, which lets LLVM add in vector lanes (as kernels/coupling/cpu.py's _sum64): with 29
more bits than the float32 values, the order of the additions cannot show. The
elementwise passes keep fastmath off, so results round as NumPy's do.

Why one thread: a pass over the M5 rows takes 0.47 ms in one thread, so a second could save
at most 0.25 ms; under load (other processes on the 2 cores) the parallel driver took 4 to
8 ms, waiting a scheduler slice for its other thread. The same signatures as reference.py.
"""
import numpy as np
from numba import njit


@njit(cache=True, fastmath={"reassoc"})
def _mean_and_variance(x):
    total = 0.0
    for i in range(x.size):
        total += np.float64(x[i])
    mean = total / x.size
    squares = 0.0
    for i in range(x.size):
        d = np.float64(x[i]) - mean
        squares += d * d
    return mean, squares / x.size


@njit(cache=True, fastmath={"reassoc"})
def _means_of_g_and_gx(g, xhat):
    total, weighted = 0.0, 0.0
    for i in range(g.size):
        total += np.float64(g[i])
        weighted += np.float64(g[i]) * np.float64(xhat[i])
    return total / g.size, weighted / g.size


@njit(cache=True)
def _forward_rows(x, eps, xhat, rstd):
    for n in range(x.shape[0]):
        mean, variance = _mean_and_variance(x[n])
        m, r = x.dtype.type(mean), x.dtype.type(1.0 / np.sqrt(variance + eps))
        rstd[n] = r
        for i in range(x.shape[1]):
            xhat[n, i] = (x[n, i] - m) * r


@njit(cache=True)
def _backward_rows(xhat, rstd, g, dx):
    for n in range(g.shape[0]):
        mean_g, mean_gx = _means_of_g_and_gx(g[n], xhat[n])
        a, b = g.dtype.type(mean_g), g.dtype.type(mean_gx)
        for i in range(g.shape[1]):
            dx[n, i] = rstd[n] * (g[n, i] - a - xhat[n, i] * b)


def _check(op, *arrays):
    x = arrays[0]
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.shape != x.shape:
            raise ValueError(f"layer_norm {op}: expected (N, D) arrays of one shape, got "
                             f"{[getattr(b, 'shape', type(b).__name__) for b in arrays]}")
        if a.dtype != x.dtype or x.dtype not in (np.float32, np.float64):
            raise TypeError(f"layer_norm {op}: dtypes {[str(b.dtype) for b in arrays]}; "
                            f"expected one dtype, float32 or float64")
    return [np.ascontiguousarray(a) for a in arrays]


def forward(x, eps):
    """-> (xhat, rstd): x normalised per row, and 1 / sqrt(var + eps) per row."""
    (x,) = _check("forward", x)
    xhat, rstd = np.empty_like(x), np.empty(x.shape[0], dtype=x.dtype)
    _forward_rows(x, float(eps), xhat, rstd)
    return xhat, rstd


def backward(xhat, rstd, g):
    """dx for the output gradient g, from forward's xhat and rstd."""
    xhat, g = _check("backward", xhat, g)
    dx = np.empty_like(g)
    _backward_rows(xhat, np.ascontiguousarray(rstd, dtype=g.dtype), g, dx)
    return dx
