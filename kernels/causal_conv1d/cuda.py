"""Causal dilated conv1d (WaveNet) on the GPU: one cuBLAS product for all the taps
(cupy.matmul) and one pass of causal_conv1d.cu that moves each tap's share in time, for
float32 and float64 CuPy arrays. The same signatures as cpu.py.

    forward:      p = W @ x, W the taps' weights stacked, (k C_out, C_in);
                  y[:, o, t] = b[o] + sum_j p[:, j C_out + o, t - s_j]
    grad_input:   p = W' @ grad_y, W' stacked from w[:, :, j]^T, (k C_in, C_out);
                  dx[:, i, t] = sum_j p[:, j C_in + i, t + s_j]
    grad_weight:  cols[n, t, j C_in + i] = x[n, i, t - s_j]  (a gather, transposed);
                  dw[:, :, j] from the sum over samples of grad_y[n] @ cols[n]

with terms outside the sequence left out, and only the taps that reach inside it (s_j < T)
stacked, as in cpu.py.

Why this and not cpu.py's product per tap, or an im2col gather and one product. Counted in
reads and writes of one activation, U = N C T values (134 MB for x (128, 64, 4096) in
float32, C_in = C_out), for k = 2; the dilation changes none of it, only where the second
tap reads, until s_j >= T drops the tap:
- per tap with cupy.matmul: CuPy's batched matmul copies an operand that is not
  C-contiguous, so the past tap's view x[:, :, :T - s] is copied (2U), its product goes to
  a temporary (2U) and is added into y[:, :, s:] (3U); with the current tap's product
  straight into y (2U) and a bias pass (2U), forward moves 11U in some 13 launches;
- im2col: a gather of x's k shifted copies (1U + 2U), one product with inner dimension
  k C_in (2U + 1U) and a bias pass (2U): 8U (folding the bias into the product as a row of
  ones would save the pass but make the inner dimension odd, off the alignment of
  cuBLAS's fastest kernels);
- here: the product of every tap at once (1U + 2U), then one pass that adds the taps'
  shares at their lags with the bias (2U + 1U): 6U in six launches (the stacked weights'
  copy, CuPy's three small kernels that point the broadcast weight at each sample, the
  product, the pass). grad_input is the same two steps in the other direction: 6U, as
  im2col's gather and product would be, with one kernel serving both directions. The
  price, as im2col's, is a temporary of kU (every tap's product).
grad_weight contracts over time, the contiguous axis of both x and grad_y, which CuPy's
batched matmul cannot do without a transposed copy: per tap, grad_y's slice and x's
transposed slice are copied (4U) and multiplied (2U), 12U in all. Here the gather writes the
shifted copies already transposed (1U + 2U), through shared memory so that both its reads
and its writes are consecutive; one strided batched product reads them with grad_y (3U) and
leaves a product per sample, N C_out k C_in values (4 MB here), that a sum over samples
reduces: 6U. These are counts, not yet measurements on the device.

When the only tap is the current step (k = 1 without shift, as WaveNet's 1x1 residual and
skip convolutions, or a dilation past the sequence's end), the product is already the
result and the second pass is skipped.
"""
import numpy as np

from minigen import backend

from .. import cudasource
from .reference import offsets

TILE, ROWS = 32, 8  # causal_conv1d.cu's gather: TILE x TILE tiles, TILE x ROWS threads


def _reaching(kernel_size, dilation, shift, length):
    """(first, taps): the taps that reach inside the sequence are the last `taps`, from
    tap `first` on, as the offsets shrink with j."""
    taps = sum(1 for s in offsets(kernel_size, dilation, shift) if s < length)
    return kernel_size - taps, taps


def _lag_args(length, taps, dilation, shift):
    """The kernels' (length, taps, dilation, shift). With more than one tap reaching inside,
    dilation < length; with one, its lag is `shift` whatever the dilation, which is then
    passed as at most the length so that it fits the kernels' int."""
    return (cudasource.int32(length), np.int32(taps),
            cudasource.int32(min(dilation, length)), np.int32(bool(shift)))


def _sum_taps(products, channels, taps, dilation, shift, sign, bias=None):
    """(N, channels, T) from products (N, taps * channels, T), every tap's product at once:
    out[:, c, t] = sum over taps q of products[:, q * channels + c, t - sign * lag_q]
    (+ bias[c]), lag_q = (taps - 1 - q) * dilation + shift; sign -1 moves each tap's share
    back in time, the adjoint of sign 1."""
    cp = backend.cupy()
    n, _, length = products.shape
    if taps == 1 and not shift:  # the current step alone: the product is the result
        if bias is not None:
            products += bias[:, None]
        return products
    out = cp.empty((n, channels, length), dtype=products.dtype)
    if not out.size:
        return out
    lags = _lag_args(length, taps, dilation, shift)
    size = (cudasource.int32(out.size), cudasource.int32(channels))
    launch = (cudasource.grid(out.size), (cudasource.THREADS,))
    if bias is None:
        kernel = cudasource.function(__file__, "causal_conv1d.cu", "causal_conv1d_sum_taps",
                                     products.dtype)
        kernel(*launch, (products, out, *size, *lags, np.int32(sign)))
    else:
        (bias,) = cudasource.contiguous(bias)
        kernel = cudasource.function(__file__, "causal_conv1d.cu",
                                     "causal_conv1d_sum_taps_bias", products.dtype)
        kernel(*launch, (products, bias, out, *size, *lags))
    return out


def forward(x, w, b=None, dilation=1, shift=False):
    """x (N, C_in, T), w (C_out, C_in, k), b (C_out,) or None -> y (N, C_out, T)."""
    cudasource.check("causal_conv1d", *((x, w) if b is None else (x, w, b)))
    cp = backend.cupy()
    c_out, c_in, k = w.shape
    first, taps = _reaching(k, dilation, shift, x.shape[2])
    stacked = w[:, :, first:].transpose(2, 0, 1).reshape(taps * c_out, c_in)
    return _sum_taps(cp.matmul(stacked, x), c_out, taps, dilation, shift, 1, b)


def grad_input(grad_y, w, dilation=1, shift=False):
    """d(sum grad_y * y)/dx: each tap sends grad_y s_j steps back through w[:, :, j]^T."""
    cudasource.check("causal_conv1d", grad_y, w)
    cp = backend.cupy()
    c_out, c_in, k = w.shape
    first, taps = _reaching(k, dilation, shift, grad_y.shape[2])
    stacked = w[:, :, first:].transpose(2, 1, 0).reshape(taps * c_in, c_out)
    return _sum_taps(cp.matmul(stacked, grad_y), c_in, taps, dilation, shift, -1)


def grad_weight(x, grad_y, kernel_size, dilation=1, shift=False):
    """d(sum grad_y * y)/dw: per tap, grad_y times x shifted by s_j, over samples and steps,
    as one product per sample with every tap's shifted x, summed over samples."""
    dtype = cudasource.check("causal_conv1d", x, grad_y)
    cp = backend.cupy()
    (x,) = cudasource.contiguous(x)
    n, c_in, length = x.shape
    c_out = grad_y.shape[1]
    first, taps = _reaching(kernel_size, dilation, shift, length)
    cols = cp.empty((n, length, taps * c_in), dtype=dtype)
    if cols.size:
        tiles_t, tiles_c = -(-length // TILE), -(-c_in // TILE)
        blocks = cudasource.int32(n * taps * tiles_c * tiles_t)
        kernel = cudasource.function(__file__, "causal_conv1d.cu",
                                     "causal_conv1d_gather_transposed", dtype)
        kernel((int(blocks),), (TILE, ROWS),
               (x, cols, cudasource.int32(c_in), *_lag_args(length, taps, dilation, shift),
                cudasource.int32(tiles_t), cudasource.int32(tiles_c)))
    per_sample = cp.matmul(grad_y, cols)  # (N, C_out, taps * C_in)
    gw = cp.zeros((c_out, c_in, kernel_size), dtype=dtype)
    gw[:, :, first:] = per_sample.sum(axis=0).reshape(c_out, taps, c_in).transpose(0, 2, 1)
    return gw
