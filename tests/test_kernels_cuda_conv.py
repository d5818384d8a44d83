"""The CUDA versions of the 2-d convolution kernels (kernels/conv2d/cuda.py and
kernels/masked_conv2d/cuda.py) against their NumPy references on the same values: the
forward pass and both gradients, float32 and float64, over strides, paddings, dilations,
odd and even kernels, with and without bias, on non-contiguous operands, with the batch
cut into chunks, for both ways of summing the weight gradient (per-image products where the
columns have fewer rows than pixels, one long product otherwise), and masks A and B with
one and three colour groups. Tolerances are kernelcheck's, as for the CPU kernels.

They run where CuPy and a GPU are, and are skipped with the reason elsewhere;
tests/test_kernels_cuda_sources.py compiles conv2d.cu on any machine with nvcc.
"""
import numpy as np
import pytest

from minigen import backend
from minigen.kernels import conv2d, masked_conv2d
from minigen.kernels.conv2d import cuda as conv2d_cuda
from minigen.kernels.masked_conv2d import cuda as masked_cuda

from cudacheck import needs_gpu, to_gpu
from kernelcheck import assert_close, patched

pytestmark = needs_gpu

DTYPES = [np.float32, np.float64]

# n, c, o, input size, kernel, stride, padding, dilation, bias
CONV_CASES = [
    (2, 3, 4, (7, 6), 3, 1, 1, 1, True),
    (2, 3, 4, (7, 6), 3, 1, 0, 1, False),
    (3, 2, 5, (8, 9), 3, 2, 1, 1, True),
    (2, 4, 3, (8, 8), 4, 2, 1, 1, True),                  # even kernel, stride 2
    (2, 3, 2, (9, 7), (3, 2), (2, 1), (1, 2), (1, 2), True),  # every pair unequal
    (2, 2, 3, (8, 9), 3, (3, 2), (0, 1), (1, 2), False),
    (1, 1, 6, (10, 10), 7, 1, 3, 1, True),                # one input channel, 7x7
    (2, 2, 2, (5, 5), 2, 1, 0, 2, True),                  # dilation 2
    (2, 3, 2, (5, 6), 5, 3, 3, 1, True),                  # padding 3, stride 3
    (3, 1, 2, (10, 10), 1, 1, 0, 1, True),                # 1x1
    (2, 8, 4, (6, 6), 3, 2, 0, 1, True),                  # 72 column rows, 4 pixels
    (2, 16, 8, (16, 16), 3, 1, 1, 1, True),
    (2, 16, 8, (16, 16), 4, 2, 1, 1, True),
]


def _ids(case):
    n, c, o, size, k, s, p, d, bias = case
    return f"n{n}c{c}o{o}-{size}-k{k}s{s}p{p}d{d}" + ("-bias" if bias else "")


def conv_operands(case, dtype, seed=0):
    n, c, o, size, kernel, stride, padding, dilation, bias = case
    kernel = conv2d.reference.pair(kernel)
    params = dict(stride=stride, padding=padding, dilation=dilation)
    out = conv2d.output_size(size, kernel, **params)
    rng = np.random.default_rng(seed)
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in
                   [(n, c) + tuple(size), (o, c) + kernel, (o,), (n, o) + tuple(out)])
    return x, w, b if bias else None, gy, params


def check_conv(x, w, b, gy, params, input_size=None):
    """The three passes of conv2d.cuda on the GPU against conv2d.reference on the host."""
    input_size = x.shape[2:] if input_size is None else input_size
    (n, o, oh, ow), (c, kh, kw) = gy.shape, w.shape[1:]
    ref = conv2d.reference
    dx, dw, dgy = to_gpu(x, w, gy)
    db = None if b is None else to_gpu(b)[0]
    y = conv2d_cuda.forward(dx, dw, db, **params)
    gx = conv2d_cuda.grad_input(dgy, dw, input_size, **params)
    gw = conv2d_cuda.grad_weight(dx, dgy, (kh, kw), **params)
    assert_close(backend.to_numpy(y), ref.forward(x, w, b, **params), c * kh * kw + 1, "y")
    assert_close(backend.to_numpy(gx), ref.grad_input(gy, w, input_size, **params),
                 o * kh * kw, "dx")
    assert_close(backend.to_numpy(gw), ref.grad_weight(x, gy, (kh, kw), **params),
                 n * oh * ow, "dw")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=_ids)
def test_conv2d_matches_reference(case, dtype):
    check_conv(*conv_operands(case, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [CONV_CASES[2], CONV_CASES[10]], ids=_ids)
def test_conv2d_batch_in_chunks(case, dtype):
    """One image a chunk, and chunks of two to four with a shorter last one (5 images), for
    both ways of summing the weight gradient."""
    x, w, b, gy, params = conv_operands((5,) + case[1:], dtype)
    columns = (w[0].size + 1) * gy[0, 0].size * x.itemsize  # an image's, forward
    for budget in (1, 3 * columns + 1):
        with patched(conv2d_cuda, COLUMN_BYTES=budget):
            check_conv(x, w, b, gy, params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_non_contiguous_operands(dtype):
    x, w, b, gy, params = conv_operands(CONV_CASES[3], dtype)

    def strided(a):
        """a on the device, in an array that is not C-contiguous"""
        return to_gpu(np.ascontiguousarray(a.swapaxes(-1, -2)))[0].swapaxes(-1, -2)

    ref = conv2d.reference
    dx, dw, dgy = (strided(a) for a in (x, w, gy))
    assert not dx.flags.c_contiguous and not dgy.flags.c_contiguous
    (db,) = to_gpu(b)
    c, kh, kw = w.shape[1:]
    assert_close(backend.to_numpy(conv2d_cuda.forward(dx, dw, db, **params)),
                 ref.forward(x, w, b, **params), c * kh * kw + 1, "y")
    assert_close(backend.to_numpy(conv2d_cuda.grad_input(dgy, dw, x.shape[2:], **params)),
                 ref.grad_input(gy, w, x.shape[2:], **params), w.shape[0] * kh * kw, "dx")
    assert_close(backend.to_numpy(conv2d_cuda.grad_weight(dx, dgy, (kh, kw), **params)),
                 ref.grad_weight(x, gy, (kh, kw), **params), gy[0, 0].size * len(x), "dw")


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_input_gradient_past_the_windows(dtype):
    """conv_transpose2d with output_padding asks for an input one pixel larger than the
    windows cover: the uncovered pixels get 0."""
    x, w, b, gy, params = conv_operands((2, 3, 4, (8, 8), 4, 2, 1, 1, True), dtype)
    check_conv(x, w, b, gy, params, input_size=(9, 9))


# every kernel size, mask type and grouping on a small image; then PixelCNN's two benchmark
# layers at batch 4 (7x7 type A 1 -> 64, 3x3 type B 64 -> 64) and paddings besides k // 2
MASKED_CASES = [(2, 3, 6, (6, 7), k, mask_type, groups, None, True)
                for k in (1, 3, 5, 7) for mask_type in "AB" for groups in (1, 3)] + [
    (4, 1, 64, (28, 28), 7, "A", 1, 3, True),
    (4, 64, 64, (28, 28), 3, "B", 1, 1, True),
    (3, 6, 6, (5, 5), 3, "B", 3, 0, False),
    (3, 3, 3, (6, 5), 5, "A", 3, (1, 2), True),
]


def _masked_ids(case):
    n, c, o, size, k, mask_type, groups, padding, bias = case
    return (f"n{n}c{c}o{o}-{size}-k{k}{mask_type}-g{groups}-p{padding}"
            + ("-bias" if bias else ""))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MASKED_CASES, ids=_masked_ids)
def test_masked_conv2d_matches_reference(case, dtype):
    n, c, o, size, k, mask_type, groups, padding, bias = case
    rng = np.random.default_rng(1)
    pad = k // 2 if padding is None else padding
    out = conv2d.output_size(size, k, 1, pad)
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in
                   [(n, c) + size, (o, c, k, k), (o,), (n, o) + out])
    b = b if bias else None
    keep = masked_conv2d.mask(o, c, k, mask_type, groups, dtype=bool)
    w[~keep] = np.nan  # never read: a NaN there would spread to every output
    params = dict(mask_type=mask_type, padding=padding, color_groups=groups)
    dx, dw, dgy = to_gpu(x, w, gy)
    db = None if b is None else to_gpu(b)[0]
    y = masked_cuda.forward(dx, dw, db, **params)
    gx = masked_cuda.grad_input(dgy, dw, size, **params)
    gw = backend.to_numpy(masked_cuda.grad_weight(dx, dgy, k, **params))
    ref = masked_conv2d.reference
    assert_close(backend.to_numpy(y), ref.forward(x, w, b, **params), c * k * k + 1, "y")
    assert_close(backend.to_numpy(gx), ref.grad_input(gy, w, size, **params), o * k * k,
                 "dx")
    assert_close(gw, ref.grad_weight(x, gy, k, **params), n * out[0] * out[1], "dw")
    assert (gw[~keep] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_conv2d_in_chunks(dtype):
    rng = np.random.default_rng(2)
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in
                   [(5, 2, 6, 6), (4, 2, 5, 5), (4,), (5, 4, 6, 6)])
    ref = masked_conv2d.reference
    dx, dw, db, dgy = to_gpu(x, w, b, gy)
    columns = (12 * 2 + 1) * 36 * x.itemsize  # an image's: 12 kept taps, 2 channels, bias
    for budget in (1, 3 * columns + 1):
        with patched(conv2d_cuda, COLUMN_BYTES=budget):
            y = masked_cuda.forward(dx, dw, db, "A")
            gx = masked_cuda.grad_input(dgy, dw, (6, 6), "A")
            gw = masked_cuda.grad_weight(dx, dgy, 5, "A")
        assert_close(backend.to_numpy(y), ref.forward(x, w, b, "A"), 51, "y")
        assert_close(backend.to_numpy(gx), ref.grad_input(gy, w, (6, 6), "A"), 100, "dx")
        assert_close(backend.to_numpy(gw), ref.grad_weight(x, gy, 5, "A"), 180, "dw")





def test_host_arrays_are_refused():
    x, w = np.zeros((1, 1, 3, 3), np.float32), np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(TypeError, match="CuPy arrays"):
        conv2d_cuda.forward(x, w)
    with pytest.raises(TypeError, match="CuPy arrays"):
        masked_cuda.forward(x, w)
