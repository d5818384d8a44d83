"""conv2d on the CPU: im2col a few images at a time in Numba, one BLAS product per group.

A convolution is a sum over kernel taps. Tap t reads the input shifted by (a_t, b_t) pixels
(a_t = i * dh - ph for kernel row i), so with the columns

    cols[t * C + c, p * ow + q] = x[n, c, p * sh + a_t, q * sw + b_t]     (0 outside x)

the forward pass is y[n] = W (O, T*C) @ cols (T*C, oh*ow), the weight gradient is
sum_n grad_y[n] @ cols^T, and the input gradient is again a product of this kind (below).
The tap list is explicit, so masked_conv2d runs the same functions on only the taps its
mask keeps: masked taps are never gathered, read or multiplied.

The batch is cut into pieces, run by as many Python threads as BLAS would use, each with
BLAS held to one thread. A piece goes through its images a group at a time: a Numba
function gathers the group's columns side by side (a few hundred kilobytes, still in cache
when the product reads them; no padded copy of x is made, the part of a window in the
padding stays zero), one NumPy matmul multiplies, and another Numba function puts the
result in place. A group has enough images for GROUP_COLUMNS output pixels: one image of
16 x 16 or more, four of K6's 8 x 8 stride-2 outputs.

Why this, measured on the development machine (2 cores, float32, K6 3x3: x (64, 64, 16,
16), 64 -> 64, best of 15 to 25 on a quiet machine):
- The products must be BLAS: per pass they are 1.2 GFLOP, which NumPy's OpenBLAS runs at
  about 90 GFLOP/s on one core (13 ms); a direct Numba loop cannot keep a block of outputs
  in registers as BLAS does. PyTorch's own forward pass took 14 to 21 ms on one thread.
- The gathers must not be NumPy: one strided copy per tap cost 2.9 to 5.3 ms per pass, and
  two Python threads each copying half of the batch took as long as one (speedup 0.8 to
  1.0, while the products scaled 1.87x): every short NumPy call hands the GIL over, and on
  this virtual machine each hand-over waits for a thread to wake. A Numba `nogil` loop holds
  no GIL: the whole forward pass then scaled 1.8x. Its copies index with unsigned integers
  (with signed ones Numba must allow for an index counting from the end, and does not
  vectorise the loop): 1.2 ms per pass, against 6.7 ms with slice assignments in Numba.
- The products are NumPy's matmul, not Numba's np.dot, which reaches SciPy's older
  OpenBLAS: forward 16.0 against 17.7 ms on one thread, 8.9 against 9.6 ms on two. The
  weight gradient is summed transposed, cols @ grad_y^T (13 against 18 ms per pass).
- Pieces in threads, not BLAS's own two threads on one big product over the whole batch:
  the products alone took 10.1 to 14.7 ms that way against 9.1 to 9.9 ms, and the batch's
  38 MB of columns does not fit in cache.

The input gradient. Output pixel Y of phase ry = Y mod sh receives tap t from grad_y row
(Y - a_t) / sh when that is a whole number, i.e. when a_t = ry (mod sh). So each phase is
the product above, on grad_y, with the taps of its phase reflected and their weights
transposed (for stride 1 there is one phase: a correlation with the flipped kernel), stored
into every sh-th row and column of the gradient: no scatter-add. Where the input has fewer
than half as many channels as the output (K1: 1 -> 64), that would gather T copies of the
large grad_y; there col2im is cheaper: one product W^T @ grad_y[n] per image, then each
tap's rows added onto its window (K1's input gradient: 1.3 ms against 5.7 ms by phases).

The same signatures as reference.py.
"""
import numpy as np
from numba import njit, uint64

from .. import parallel
from .reference import output_size, pair

PIECES_PER_THREAD = 2  # more pieces than threads: one slowed by the machine is not waited on
GROUP_COLUMNS = 256  # output pixels per product at least (images are not split)


def in_parallel(task, n, flops):
    """[task(start, stop), ...] for pieces of range(n) that cover it, run in the threads of
    kernels/parallel.py (each with BLAS held to one thread) where `flops` pays for them."""
    work = flops // 2  # multiply-adds
    threads = min(n, parallel.threads(work))
    pieces = 1 if threads < 2 else min(n, threads * PIECES_PER_THREAD)
    cuts = np.linspace(0, n, pieces + 1).round().astype(int)
    return parallel.run(lambda piece: task(*piece), list(zip(cuts[:-1], cuts[1:])), work)


def tap_offsets(kernel_size, padding=0, dilation=1, keep=None):
    """(i, j, a, b) for each tap (i, j) of the kernel, raster order, that `keep` (a boolean
    (kh, kw) array, or None for all) keeps; (a, b) is the shift it reads the input at."""
    (kh, kw), (ph, pw), (dh, dw) = pair(kernel_size), pair(padding), pair(dilation)
    return [(i, j, i * dh - ph, j * dw - pw) for i in range(kh) for j in range(kw)
            if keep is None or keep[i, j]]


@njit(nogil=True, cache=True)
def _window(size, out, shift, stride):
    """The outputs lo:hi whose tap at `shift` reads inside an axis of `size` pixels."""
    lo = min(out, max(0, -(shift // stride)))
    hi = max(lo, min(out, (size - 1 - shift) // stride + 1))
    return lo, hi


@njit(nogil=True, cache=True, inline="always")
def _copy(dst, at, dst_step, src, start, src_step, length, plus):
    """dst[at + i * dst_step] = src[start + i * src_step] + plus for i < length, on flat
    arrays, with unsigned indices (see the module docstring)."""
    at, dst_step, start, src_step = uint64(at), uint64(dst_step), uint64(start), uint64(src_step)
    if dst_step == 1 and src_step == 1:
        for i in range(uint64(length)):
            dst[at + i] = src[start + i] + plus
    else:
        for i in range(uint64(length)):
            dst[at + i * dst_step] = src[start + i * src_step] + plus


@njit(nogil=True, cache=True)
def _gather(x, first, k, shifts, stride, out_size, cols):
    """The columns of images first:first + k side by side in cols (T*C, k*oh*ow). Entries in
    the padding are left alone: the caller zeroes cols once, and every image has the same
    windows."""
    c_in, h, w = x.shape[1], x.shape[2], x.shape[3]
    (sh, sw), (oh, ow) = stride, out_size
    xf, cf, pitch, zero = x.ravel(), cols.ravel(), cols.shape[1], x.dtype.type(0)
    for i in range(k):
        for t in range(shifts.shape[0]):
            a, b = shifts[t, 0], shifts[t, 1]
            p0, p1 = _window(h, oh, a, sh)
            q0, q1 = _window(w, ow, b, sw)
            if p1 == p0 or q1 == q0:
                continue
            for c in range(c_in):
                plane = ((first + i) * c_in + c) * h * w
                row = (t * c_in + c) * pitch + i * oh * ow
                if sh == 1 and sw == 1 and ow == w:
                    # the window's rows lie end to end in x as in cols: one long copy (rows
                    # of 16 copy at half the speed), then zero again the few entries between
                    # rows, which are padding
                    _copy(cf, row + p0 * ow + q0, 1, xf, plane + (p0 + a) * w + b + q0, 1,
                          (p1 - 1 - p0) * ow + q1 - q0, zero)
                    for p in range(p0, p1 - 1):
                        for q in range(row + p * ow + q1, row + (p + 1) * ow + q0):
                            cf[q] = 0
                else:
                    for p in range(p0, p1):
                        _copy(cf, row + p * ow + q0, 1, xf,
                              plane + (p * sh + a) * w + q0 * sw + b, sw, q1 - q0, zero)


@njit(nogil=True, cache=True)
def _store(result, out, first, k, out_size, phase, bias):
    """out[first + i, j, ry + sy*p, rx + sx*q] = result[j, i*oh*ow + p*ow + q] + bias[j]:
    the product of k images side by side, back into the batch at phase (ry, rx, sy, sx)."""
    o, (oh, ow), (ry, rx, sy, sx) = result.shape[0], out_size, phase
    height, width = out.shape[2], out.shape[3]
    of, rf = out.ravel(), result.ravel()
    for i in range(k):
        for j in range(o):
            plane = ((first + i) * o + j) * height
            for p in range(oh):
                _copy(of, (plane + ry + sy * p) * width + rx, sx,
                      rf, (j * k + i) * oh * ow + p * ow, 1, ow, bias[j])


@njit(nogil=True, cache=True)
def _side_by_side(grad_y, first, k, rows):
    """rows (O, k*oh*ow) = grad_y[first + i] for i < k, side by side."""
    o, size = grad_y.shape[1], grad_y.shape[2] * grad_y.shape[3]
    gf, rf, zero = grad_y.ravel(), rows.ravel(), grad_y.dtype.type(0)
    for j in range(o):
        for i in range(k):
            _copy(rf, (j * k + i) * size, 1, gf, ((first + i) * o + j) * size, 1, size, zero)


@njit(nogil=True, cache=True)
def _scatter(cols, shifts, stride, out_size, out, n):
    """out[n] = the sum over taps t of tap t's rows of cols (T*C, oh*ow) placed on its
    window (col2im)."""
    c_in, h, w = out.shape[1], out.shape[2], out.shape[3]
    (sh, sw), (oh, ow) = stride, out_size
    cf, of = cols.ravel(), out.ravel()
    of[n * c_in * h * w:(n + 1) * c_in * h * w] = 0
    for t in range(shifts.shape[0]):
        a, b = shifts[t, 0], shifts[t, 1]
        p0, p1 = _window(h, oh, a, sh)
        q0, q1 = _window(w, ow, b, sw)
        for c in range(c_in):
            plane, row = (n * c_in + c) * h * w, (t * c_in + c) * oh * ow
            for p in range(p0, p1):
                at = uint64(plane + (p * sh + a) * w + q0 * sw + b)
                start = uint64(row + p * ow + q0)
                for q in range(uint64(q1 - q0)):
                    of[at + q * uint64(sw)] += cf[start + q]


def _group(size, n):
    """Images per product: enough for GROUP_COLUMNS output pixels."""
    return max(1, min(n, -(-GROUP_COLUMNS // size)))


def _shift_array(shifts):
    return np.array(shifts, dtype=np.int64).reshape(-1, 2)


def _groups(start, stop, group):
    return [(first, min(group, stop - first)) for first in range(start, stop, group)]


def tap_products(x, shifts, weight, out_size, stride=1, bias=None, out=None, phase=None):
    """y[n] = sum_t weight[:, t] @ (x[n] read at shifts[t]) + bias, (N, O, oh, ow) for
    x (N, C, H, W), weight (O, T, C) for the T taps and out_size (oh, ow).

    With `out` and phase (ry, rx, sy, sx), the result goes to out[:, :, ry::sy, rx::sx]
    instead (the input gradient's phases)."""
    n, c = x.shape[:2]
    o, (oh, ow), taps = weight.shape[0], tuple(out_size), len(shifts)
    if out is None:
        out, phase = np.empty((n, o, oh, ow), dtype=x.dtype), (0, 0, 1, 1)
    if n == 0 or taps == 0 or c == 0:
        view = out[:, :, phase[0]::phase[2], phase[1]::phase[3]]
        view[...] = 0 if bias is None else bias[:, None, None]
        return out
    x = np.ascontiguousarray(x)
    matrix = np.ascontiguousarray(weight.reshape(o, taps * c))
    direct = bias is None and phase == (0, 0, 1, 1)  # the product can go straight to out
    bias = np.zeros(o, x.dtype) if bias is None else np.ascontiguousarray(bias, x.dtype)
    shifts, stride, size = _shift_array(shifts), pair(stride), oh * ow
    group = _group(size, n)

    def task(start, stop):
        cols = result = None
        for first, k in _groups(start, stop, group):
            if cols is None or cols.shape[1] != k * size:
                cols = np.zeros((taps * c, k * size), x.dtype)
                result = np.empty((o, k * size), x.dtype)
            _gather(x, first, k, shifts, stride, (oh, ow), cols)
            if direct and k == 1:
                np.matmul(matrix, cols, out=out[first].reshape(o, size))
                continue
            np.matmul(matrix, cols, out=result)
            _store(result, out, first, k, (oh, ow), phase, bias)

    in_parallel(task, n, 2 * n * o * taps * c * size)
    return out


def tap_products_grad_weight(x, shifts, grad_y, stride=1):
    """(O, T, C): sum_n grad_y[n] @ (x[n] read at shifts[t])^T for each tap t, the adjoint
    of tap_products in its weight."""
    n, c = x.shape[:2]
    o, oh, ow = grad_y.shape[1:]
    taps = len(shifts)
    if n == 0 or taps == 0 or c == 0:
        return np.zeros((o, taps, c), x.dtype)
    x, grad_y = np.ascontiguousarray(x), np.ascontiguousarray(grad_y)
    shifts, stride, size = _shift_array(shifts), pair(stride), oh * ow
    group = _group(size, n)

    def task(start, stop):
        # summed transposed, cols @ grad_y^T: BLAS ran that 25% faster than grad_y @ cols^T
        total = np.zeros((taps * c, o), x.dtype)
        product = np.empty_like(total)
        cols = rows = None
        for first, k in _groups(start, stop, group):
            if cols is None or cols.shape[1] != k * size:
                cols = np.zeros((taps * c, k * size), x.dtype)
                rows = np.empty((o, k * size), x.dtype)
            _gather(x, first, k, shifts, stride, (oh, ow), cols)
            if k == 1:
                np.matmul(cols, grad_y[first].reshape(o, size).T, out=product)
            else:
                _side_by_side(grad_y, first, k, rows)
                np.matmul(cols, rows.T, out=product)
            total += product
        return total

    parts = in_parallel(task, n, 2 * n * o * taps * c * size)
    return sum(parts).T.reshape(o, taps, c)


def tap_products_grad_input(grad_y, shifts, weight, in_size, stride=1):
    """The adjoint of tap_products in x: (N, C, H, W) for in_size (H, W), weight (O, T, C),
    by phases or, for few input channels and many output channels, by col2im (see the
    module docstring)."""
    sh, sw = pair(stride)
    n, o, oh, ow = grad_y.shape
    c, (h, w), taps = weight.shape[2], tuple(in_size), len(shifts)
    gx = np.empty((n, c, h, w), dtype=grad_y.dtype)
    grad_y = np.ascontiguousarray(grad_y)
    if 2 * c < o and n and taps and o:
        matrix_t = np.ascontiguousarray(weight.reshape(o, taps * c).T)
        shift_array = _shift_array(shifts)

        def task(start, stop):
            cols = np.empty((taps * c, oh * ow), gx.dtype)
            for image in range(start, stop):
                np.matmul(matrix_t, grad_y[image].reshape(o, oh * ow), out=cols)
                _scatter(cols, shift_array, (sh, sw), (oh, ow), gx, image)

        in_parallel(task, n, 2 * n * o * taps * c * oh * ow)
        return gx
    for ry in range(min(sh, h)):
        for rx in range(min(sw, w)):
            phase = [t for t, (a, b) in enumerate(shifts)
                     if (ry - a) % sh == 0 and (rx - b) % sw == 0]
            reflected = [((ry - shifts[t][0]) // sh, (rx - shifts[t][1]) // sw) for t in phase]
            size = (len(range(ry, h, sh)), len(range(rx, w, sw)))
            tap_products(grad_y, reflected, weight[:, phase, :].transpose(2, 1, 0), size,
                         out=gx, phase=(ry, rx, sh, sw))
    return gx


def _taps_of(w):
    """The weight (O, C, kh, kw) as (O, T, C), taps in raster order."""
    return w.reshape(w.shape[0], w.shape[1], -1).transpose(0, 2, 1)


def forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, oh, ow)."""
    size = output_size(x.shape[2:], w.shape[2:], stride, padding, dilation)
    shifts = [(a, b_) for _, _, a, b_ in tap_offsets(w.shape[2:], padding, dilation)]
    return tap_products(x, shifts, _taps_of(w), size, stride, b)


def grad_input(grad_y, w, input_size, stride=1, padding=0, dilation=1):
    """d(sum grad_y * y)/dx for an input of spatial size `input_size` (H, W)."""
    shifts = [(a, b) for _, _, a, b in tap_offsets(w.shape[2:], padding, dilation)]
    return tap_products_grad_input(grad_y, shifts, _taps_of(w), pair(input_size), stride)


def grad_weight(x, grad_y, kernel_size, stride=1, padding=0, dilation=1):
    """d(sum grad_y * y)/dw, (O, C, kh, kw)."""
    kh, kw = pair(kernel_size)
    shifts = [(a, b) for _, _, a, b in tap_offsets((kh, kw), padding, dilation)]
    taps = tap_products_grad_weight(x, shifts, grad_y, stride)  # (O, T, C)
    return np.ascontiguousarray(taps.transpose(0, 2, 1)).reshape(
        grad_y.shape[1], x.shape[1], kh, kw)
