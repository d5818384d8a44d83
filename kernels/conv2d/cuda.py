"""conv2d on the GPU: im2col by a CUDA gather (conv2d.cu), the sums by cuBLAS through
CuPy's matmul, and col2im as a gather for the input gradient; float32 and float64 CuPy
arrays, the same signatures as cpu.py and reference.py.

A convolution is a sum over kernel taps. Tap t reads the input shifted by (a_t, b_t)
(a_t = i * dh - ph for kernel row i), so with the columns of image n

    cols[n, c * T + t, p * ow + q] = x[n, c, p * sh + a_t, q * sw + b_t]     (0 outside x)

and the weight as the matrix W (O, C*T) that w (O, C, kh, kw) already is in memory:

- forward: y[n] = W @ cols[n], one batched product over the images, written straight into
  y: with rows between image and pixel, the product's (image, O, pixel) is y's own layout,
  so nothing is transposed afterwards. The bias rides along as one more row of ones in the
  columns and one more column b of W: the product adds it, where a broadcast add would read
  and write all of y again.
- input gradient: dcols[n] = W^T @ grad_y[n], batched likewise, then col2im, a gather:
  each input pixel adds up the entries of dcols that read it, in a fixed order, without
  atomics, so the result has the same bits on every run.
- weight gradient: the sum over images n of grad_y[n] @ cols[n]^T. A product sums along
  one stride, and grad_y's (image, pixel) pairs are not one stride apart, so one of two
  intermediates is paid, whichever is smaller an image. With fewer column rows than
  pixels (C*T < P = oh*ow: the masked 7x7 first layer has 24 rows and 784 pixels), a
  batched product grad_y[n] @ cols[n] on columns gathered pixel-major (P, C*T), then the
  sum over the images (O*C*T partial sums an image); otherwise grad_y transposed to
  (O, N*P) and the columns gathered as one (C*T, N*P) matrix, for one long product over
  all images and pixels (O*P copied an image: the 3x3 and 4x4 stride-2 layers on 16 x 16
  images have 576 rows for 256 pixels and 1024 for 64).

The tap list is explicit (a small int device array of shifts), so masked_conv2d runs these
passes on the kept taps only (forward_taps, grad_input_taps, grad_weight_taps); its
weights come as (O, C, T). The products run in the arrays' precision: CuPy's matmul uses
no TF32 for float32 unless CUPY_TF32=1 is set.

The batch is cut into chunks whose buffers (the columns, and the partial sums or grad_y's
copy) take at most COLUMN_BYTES: the columns hold each input pixel once for every tap
that reads it, more than the GPU holds for a large batch. A chunk is a few launches (a
gather and a product or two), and at 512 MiB the benchmark shapes run in one or two chunks
(x (256, 64, 28, 28), masked 3x3 type B: about 250 MiB of float32 columns), so that the
launches do not add up. Each buffer is allocated once a call; the last, shorter chunk uses
its beginning.
"""
import functools

import numpy as np

from minigen import backend

from .. import cudasource
from .cpu import tap_offsets
from .reference import output_size, pair

COLUMN_BYTES = 512 << 20  # a chunk's buffers at most (see the module docstring)
INDEX_LIMIT = 2 ** 31  # the kernels index with int


@functools.lru_cache(maxsize=None)
def _device_ints(values, device):
    return backend.cupy().asarray(np.array(values, dtype=np.int32))


def device_ints(values):
    """`values` (ints) as an int32 array on the current device, kept for the next call: the
    tap lists are few and the same on every call, and a fresh copy to the device would wait
    on the host each time."""
    return _device_ints(tuple(values), backend.cupy().cuda.Device().id)


def _shifts(kernel_size, padding, dilation):
    return tuple((a, b) for _, _, a, b in tap_offsets(kernel_size, padding, dilation))


def _shift_array(shifts):
    """The (a, b) pairs as the flat int array the kernels read."""
    return device_ints(v for shift in shifts for v in shift)


def _chunk(n, itemsize, buffer_entries, *indexed):
    """Images per chunk: as many as keep the chunk's buffers (`buffer_entries` an image)
    within COLUMN_BYTES, and each array a kernel indexes (`indexed`: entries an image)
    within its int; at least one, at most n."""
    fit = COLUMN_BYTES // max(1, itemsize * buffer_entries)
    fit = min([fit] + [(INDEX_LIMIT - 1) // max(1, e) for e in indexed])
    return max(1, min(n, fit))


def _chunks(n, images):
    """(first, count) of each chunk of `images` images that covers range(n)."""
    return [(first, min(images, n - first)) for first in range(0, n, images)]


def _int32s(*values):
    return tuple(cudasource.int32(v) for v in values)


def _im2col(x, shifts, cols, out_size, stride, steps, rows_fastest=False):
    """The columns of the images x (a C-contiguous chunk) into cols, entry (n, k, pixel) at
    n * steps[0] + k * steps[1] + pixel * steps[2]; threads run along the rows where
    rows_fastest (for steps[1] == 1), else along the pixels."""
    n, c, h, w = x.shape
    taps = len(shifts)
    count = n * c * taps * out_size[0] * out_size[1]
    kernel = cudasource.function(__file__, "conv2d.cu", "im2col", x.dtype)
    kernel(cudasource.grid(count), (cudasource.THREADS,),
           (x, _shift_array(shifts), cols,
            *_int32s(count, c, h, w, taps, *out_size, *stride, *steps, rows_fastest)))


def forward_taps(x, shifts, weight, out_size, stride=(1, 1), bias=None):
    """y (N, O, oh, ow) = bias + the sum over taps t of weight[:, :, t] @ (x read at
    shifts[t]), for x (N, C, H, W), weight (O, C, T), the T taps' shifts ((a, b) pairs)
    and out_size (oh, ow)."""
    cp = backend.cupy()
    (x,) = cudasource.contiguous(x)
    n, c, h, w = x.shape
    o, (oh, ow), (sh, sw) = weight.shape[0], out_size, stride
    pixels, rows = oh * ow, c * len(shifts)
    y = cp.empty((n, o, oh, ow), dtype=x.dtype)
    if n == 0 or rows == 0:
        y[...] = 0 if bias is None else bias[:, None, None]
        return y
    matrix, height = weight.reshape(o, rows), rows
    if bias is not None:
        matrix, height = cp.concatenate([matrix, bias.reshape(o, 1)], axis=1), rows + 1
    matrix = cp.ascontiguousarray(matrix)
    images = _chunk(n, x.itemsize, height * pixels, c * h * w, height * pixels)
    cols = cp.empty((images, height, pixels), dtype=x.dtype)
    if bias is not None:
        cols[:, rows] = 1  # the gathers write the rows above it only
    for first, k in _chunks(n, images):
        _im2col(x[first:first + k], shifts, cols[:k], (oh, ow), (sh, sw),
                (height * pixels, pixels, 1))
        cp.matmul(matrix, cols[:k], out=y[first:first + k].reshape(k, o, pixels))
    return y


def grad_input_taps(grad_y, shifts, weight, in_size, stride=(1, 1)):
    """The adjoint of forward_taps in x: (N, C, H, W) for in_size (H, W)."""
    cp = backend.cupy()
    (grad_y,) = cudasource.contiguous(grad_y)
    n, o, oh, ow = grad_y.shape
    c, taps, (h, w), (sh, sw) = weight.shape[1], len(shifts), in_size, stride
    pixels, rows = oh * ow, c * taps
    gx = cp.empty((n, c, h, w), dtype=grad_y.dtype)
    if n == 0 or rows == 0 or o == 0:
        gx.fill(0)
        return gx
    matrix_t = cp.ascontiguousarray(weight.reshape(o, rows).T)
    images = _chunk(n, grad_y.itemsize, rows * pixels, rows * pixels, c * h * w)
    cols = cp.empty((images, rows, pixels), dtype=grad_y.dtype)
    col2im = cudasource.function(__file__, "conv2d.cu", "col2im", grad_y.dtype)
    shift_array = _shift_array(shifts)
    for first, k in _chunks(n, images):
        cp.matmul(matrix_t, grad_y[first:first + k].reshape(k, o, pixels), out=cols[:k])
        count = k * c * h * w
        col2im(cudasource.grid(count), (cudasource.THREADS,),
               (cols[:k], shift_array, gx[first:first + k],
                *_int32s(count, c, h, w, taps, oh, ow, sh, sw)))
    return gx


def grad_weight_taps(x, shifts, grad_y, stride=(1, 1)):
    """The adjoint of forward_taps in its weight: (O, C, T), by per-image products or one
    long product, whichever needs the smaller intermediate (see the module docstring)."""
    cp = backend.cupy()
    x, grad_y = cudasource.contiguous(x, grad_y)
    n, c, h, w = x.shape
    o, oh, ow = grad_y.shape[1:]
    taps, pixels = len(shifts), oh * ow
    rows = c * taps
    total = cp.zeros((o, rows), dtype=x.dtype)
    if n == 0 or rows == 0 or o == 0:
        return total.reshape(o, c, taps)
    if rows < pixels:
        images = _chunk(n, x.itemsize, pixels * rows + o * rows, c * h * w, pixels * rows)
        cols = cp.empty((images, pixels, rows), dtype=x.dtype)
        parts = cp.empty((images, o, rows), dtype=x.dtype)
        ones = cp.ones(images, dtype=x.dtype)
        for first, k in _chunks(n, images):
            _im2col(x[first:first + k], shifts, cols[:k], (oh, ow), stride,
                    (pixels * rows, 1, rows), rows_fastest=True)
            images_y = grad_y[first:first + k].reshape(k, o, pixels)
            cp.matmul(images_y, cols[:k], out=parts[:k])
            # the sum over images as a product with ones: one cuBLAS pass over the parts
            total += cp.matmul(ones[:k], parts[:k].reshape(k, o * rows)).reshape(o, rows)
    else:
        images = _chunk(n, x.itemsize, (rows + o) * pixels, c * h * w, rows * pixels)
        buffer = cp.empty(images * rows * pixels, dtype=x.dtype)
        for first, k in _chunks(n, images):
            cols = buffer[:k * rows * pixels].reshape(rows, k * pixels)
            _im2col(x[first:first + k], shifts, cols, (oh, ow), stride,
                    (pixels, k * pixels, 1))
            grad_rows = cp.ascontiguousarray(
                grad_y[first:first + k].reshape(k, o, pixels).transpose(1, 0, 2))
            # cols.T is cols read transposed by cuBLAS, not a copy
            total += cp.matmul(grad_rows.reshape(o, k * pixels), cols.T)
    return total.reshape(o, c, taps)


def _taps_of(w):
    """The weight (O, C, kh, kw) as (O, C, T), taps in raster order (a view where w is
    C-contiguous)."""
    return w.reshape(w.shape[0], w.shape[1], w.shape[2] * w.shape[3])


def _check(*arrays):
    cudasource.check("conv2d", *(a for a in arrays if a is not None))


def forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, oh, ow)."""
    _check(x, w, b)
    size = output_size(x.shape[2:], w.shape[2:], stride, padding, dilation)
    return forward_taps(x, _shifts(w.shape[2:], padding, dilation), _taps_of(w), size,
                        pair(stride), b)


def grad_input(grad_y, w, input_size, stride=1, padding=0, dilation=1):
    """d(sum grad_y * y)/dx for an input of spatial size `input_size` (H, W)."""
    _check(grad_y, w)
    return grad_input_taps(grad_y, _shifts(w.shape[2:], padding, dilation), _taps_of(w),
                           pair(input_size), pair(stride))


def grad_weight(x, grad_y, kernel_size, stride=1, padding=0, dilation=1):
    """d(sum grad_y * y)/dw, (O, C, kh, kw)."""
    _check(x, grad_y)
    kh, kw = pair(kernel_size)
    taps = grad_weight_taps(x, _shifts((kh, kw), padding, dilation), grad_y, pair(stride))
    return taps.reshape(grad_y.shape[1], x.shape[1], kh, kw)
