"""The CUDA causal conv1d (kernels/causal_conv1d/cuda.py) against its NumPy reference on the
GPU: forward, grad_input and grad_weight for kernel sizes 1 to 4, dilations whose taps fall
inside, across and past the sequence's end, with and without shift and bias, float32 and
float64; channels and steps that fill the gather's 32 x 32 tiles partly; non-contiguous
inputs; WaveNet's shape; no tap inside the sequence at all. The engine op on the GPU gives
the CPU's values and gradients."""
import numpy as np
import pytest

import minigen as mg
import minigen.functional as F
from minigen.kernels.causal_conv1d import cuda, reference

from cudacheck import close, cupy, needs_gpu, to_gpu

pytestmark = needs_gpu

DTYPES = [np.float32, np.float64]
SHAPES = [  # N, C_in, C_out, T, k
    (2, 3, 4, 37, 2),
    (3, 5, 2, 64, 3),
    (1, 64, 64, 300, 2),
    (4, 33, 40, 129, 4),  # 33 channels, 129 steps: partial tiles in the gather
    (2, 6, 5, 50, 1),
]
DILATIONS = [1, 2, 7, 64, 1000]  # 64 and 1000: some or all past taps beyond the end


def _draw(seed, dtype, n, c_in, c_out, length, k):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype)
            for s in [(n, c_in, length), (c_out, c_in, k), (c_out,), (n, c_out, length)]]


def _close(got, want, dtype, terms):
    """cudacheck.close with the absolute tolerance grown with the length of the sums behind
    an entry, relative to the largest: cuBLAS adds in another order than NumPy."""
    size = max(1.0, float(np.abs(want).max(initial=0.0)))
    atol = 4 * np.finfo(dtype).eps * terms * size
    close(got, want, dtype, atol32=atol, atol64=atol)


def _check_all(x, w, b, gy, dilation, shift, device_arrays=None):
    """cuda.py on the device copies (or on `device_arrays`, the same values laid out
    otherwise) against reference.py on the host."""
    dtype = x.dtype
    n, c_in, length = x.shape
    c_out, _, k = w.shape
    x_d, w_d, b_d, gy_d = device_arrays or to_gpu(x, w, b, gy)
    params = dict(dilation=dilation, shift=shift)
    for bias, bias_d in ((b, b_d), (None, None)):
        _close(cuda.forward(x_d, w_d, bias_d, **params),
               reference.forward(x, w, bias, **params), dtype, c_in * k + 1)
    _close(cuda.grad_input(gy_d, w_d, **params), reference.grad_input(gy, w, **params),
           dtype, c_out * k)
    _close(cuda.grad_weight(x_d, gy_d, k, **params),
           reference.grad_weight(x, gy, k, **params), dtype, n * length)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shift", [False, True], ids=["no-shift", "shift"])
@pytest.mark.parametrize("dilation", DILATIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cuda_matches_reference(shape, dilation, shift, dtype):
    _check_all(*_draw(sum(shape) + dilation, dtype, *shape), dilation, shift)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("dilation", [1, 8, 64, 512])
def test_cuda_matches_reference_at_wavenet_size(dilation, dtype):
    x, w, b, gy = _draw(dilation, dtype, 2, 64, 64, 4096, 2)
    _check_all(x, w, b, gy, dilation, shift=dilation == 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shift", [False, True], ids=["no-shift", "shift"])
def test_non_contiguous_inputs(shift, dtype):
    """Strided and reversed views on the device: the kernels index flat memory, so cuda.py
    must make them contiguous (or let cupy.matmul do it) first."""
    x, w, b, gy = _draw(5, dtype, 3, 7, 6, 90, 3)
    cp = cupy()
    wide = [cp.asarray(np.repeat(a, 2, axis=-1)) for a in (x, w, b, gy)]
    views = [a[..., ::2] for a in wide]
    views[1] = cp.ascontiguousarray(views[1][:, :, ::-1])[:, :, ::-1]  # negative strides
    views[0] = cp.asarray(x.transpose(0, 2, 1).copy()).transpose(0, 2, 1)  # time-major
    assert not any(v.flags.c_contiguous for v in views)
    _check_all(x, w, b, gy, 2, shift, device_arrays=views)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_no_tap_inside_the_sequence(dtype):
    """One step with shift: every tap reads before the start, so y is the bias and both
    gradients are zero."""
    x, w, b, gy = _draw(7, dtype, 2, 3, 4, 1, 2)
    _check_all(x, w, b, gy, 1, True)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_empty_batch(dtype):
    x, w, b, gy = _draw(8, dtype, 0, 3, 4, 10, 2)
    _check_all(x, w, b, gy, 2, False)


@pytest.mark.parametrize("shift", [False, True], ids=["no-shift", "shift"])
def test_op_on_the_gpu_matches_the_cpu(shift):
    """F.causal_conv1d forward and backward (the three kernels and the bias gradient) on
    device tensors against the same op on host tensors."""
    x, w, b, gy = _draw(9, np.float64, 3, 5, 4, 40, 2)
    results = []
    for device in ("cpu", "cuda"):
        xt, wt, bt = (mg.tensor(a, requires_grad=True, device=device) for a in (x, w, b))
        y = F.causal_conv1d(xt, wt, bt, dilation=3, shift=shift)
        (y * mg.tensor(gy, device=device)).sum().backward()
        results.append([y.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()])
    for got, want in zip(*results[::-1]):
        close(got, want, np.float64)
