"""Causal dilated conv1d (WaveNet) on the CPU: one BLAS product per tap over shifted views.

Tap j reads x s_j = (k - 1 - j) * d + shift steps in the past, so its contribution is
w[:, :, j] @ x[n, :, :T - s_j] added onto y[n, :, s_j:]. Only these past taps are computed:
no padded copy of x, no products with the zeros before the start, and a tap whose offset
reaches past the whole sequence is skipped. The same signatures as reference.py.

Why BLAS and not Numba. Measured on the (shared, so +-30% noisy) development machine, 2
cores, K3's shape: x (16, 64, 4096), k = 2, 64 -> 64 channels, float32, medians:
- BLAS products per tap, OpenBLAS's 2 threads: forward 9-12 ms, grad_input 9-11 ms,
  grad_weight 9.5-12.5 ms (about 100 GFLOP/s in each, half the machine's float32 peak);
- a Numba `@njit(parallel=True, cache=True)` direct loop (parallel over samples and time
  chunks, four output channels per pass over the input, time innermost, no BLAS): forward
  120-200 ms. Each multiply-add loads an input and loads and stores an accumulator, where
  BLAS keeps a block of outputs in registers and reuses every load many times;
- the same products as one batched `np.matmul` over all 16 samples: forward 12-20 ms, as
  each tap's 16 MB temporary falls out of cache before it is added.
So samples go in chunks of about one megabyte of output (one sample at K3's size, many at
once for short sequences, where one batched call saves Python's per-call cost), and the
product of the tap with offset 0 is written straight into y without a temporary. The
chunks run in Python threads with BLAS held to one thread each (kernels/parallel.py):
forward and both gradients took 58 ms against 66 ms with OpenBLAS's threads,
and with one core busy elsewhere 82-99 ms against 720-1150 ms, because OpenBLAS's two
threads wait for each other at every product and one of them then waits for a core.
"""
import numpy as np

from .. import parallel
from .reference import offsets

CHUNK_BYTES = 1 << 20  # about what one core's L2 holds: a chunk's output stays in cache


def _chunks(n, per_sample_bytes):
    step = max(1, CHUNK_BYTES // max(per_sample_bytes, 1))
    return [slice(start, min(start + step, n)) for start in range(0, n, step)]


def _shifted_products(taps, src, out, bias=None):
    """out[:, :, t] = sum over taps (m, s) of m @ src[:, :, t - s], zero where t - s falls
    outside the sequence; s > 0 reads the past, s < 0 the future (the adjoint). Chunks of
    samples go to the threads of kernels/parallel.py."""
    n, c_out, length = out.shape
    first = next((i for i, (_, s) in enumerate(taps) if s == 0), None)

    def chunk(rows):
        o, x = out[rows], src[rows]
        if first is None:
            o[...] = 0
        else:
            np.matmul(taps[first][0], x, out=o)
        for i, (m, s) in enumerate(taps):
            if i == first:
                continue
            if s > 0:
                o[:, :, s:] += np.matmul(m, x[:, :, :length - s])
            else:
                o[:, :, :length + s] += np.matmul(m, x[:, :, -s:])
        if bias is not None:
            o += bias[:, None]

    parallel.run(chunk, _chunks(n, c_out * length * out.itemsize),
                 n * c_out * src.shape[1] * length * len(taps))
    return out


def _taps(kernel_size, dilation, shift, length):
    """(j, s_j) for the taps that reach inside a sequence of this length."""
    return [(j, s) for j, s in enumerate(offsets(kernel_size, dilation, shift)) if s < length]


def forward(x, w, b=None, dilation=1, shift=False):
    """x (N, C_in, T), w (C_out, C_in, k), b (C_out,) or None -> y (N, C_out, T)."""
    n, _, length = x.shape
    y = np.empty((n, w.shape[0], length), dtype=x.dtype)
    taps = [(np.ascontiguousarray(w[:, :, j]), s)
            for j, s in _taps(w.shape[2], dilation, shift, length)]
    return _shifted_products(taps, x, y, b)


def grad_input(grad_y, w, dilation=1, shift=False):
    """d(sum grad_y * y)/dx: each tap sends grad_y s_j steps back through w[:, :, j]^T."""
    n, _, length = grad_y.shape
    gx = np.empty((n, w.shape[1], length), dtype=grad_y.dtype)
    taps = [(np.ascontiguousarray(w[:, :, j].T), -s)
            for j, s in _taps(w.shape[2], dilation, shift, length)]
    return _shifted_products(taps, grad_y, gx)


def grad_weight(x, grad_y, kernel_size, dilation=1, shift=False):
    """d(sum grad_y * y)/dw: per tap, grad_y times x shifted by s_j, over samples and steps.
    Each chunk of samples gives a partial sum; they are added in a fixed order, so the
    result does not depend on which thread finished first."""
    n, c_in, length = x.shape
    c_out = grad_y.shape[1]
    taps = _taps(kernel_size, dilation, shift, length)

    def chunk(rows):
        gw = np.zeros((c_out, c_in, kernel_size), dtype=x.dtype)
        for j, s in taps:
            gw[:, :, j] = np.matmul(grad_y[rows, :, s:],
                                    x[rows, :, :length - s].transpose(0, 2, 1)).sum(axis=0)
        return gw

    gw = np.zeros((c_out, c_in, kernel_size), dtype=x.dtype)
    for part in parallel.run(chunk, _chunks(n, (c_out + c_in) * length * x.itemsize),
                             n * c_out * c_in * length * len(taps)):
        gw += part
    return gw
