"""The CUDA affine coupling (kernels/coupling/cuda.py) against its NumPy reference on the
GPU: forward (out, the float64 log-determinant, scale) and backward in both directions,
float32 and float64, with and without the log-determinant's gradient, for rows shorter than
a warp, rows that are not a multiple of the block, rows split over many blocks (few
samples) and one block a row (many samples); non-contiguous inputs; a float32
log-determinant that only a double accumulator gets exactly; the same log-determinant on
every run. The engine op on the GPU gives the CPU's values and gradients."""
import numpy as np
import pytest

import minigen as mg
import minigen.functional as F
from minigen.kernels.coupling import cuda, reference

from cudacheck import close, cupy, needs_gpu, to_gpu

pytestmark = needs_gpu

DTYPES = [np.float32, np.float64]
EPS64 = np.finfo(np.float64).eps
SHAPES = [
    (1,),             # one value: a block of one warp
    (5, 1),
    (7, 2),           # a 2-D toy flow's rows
    (3, 33),          # one past a warp
    (4, 1, 28, 28),   # 784 a row, over four blocks each
    (2, 3, 64, 64),   # few samples of many values: each row over 48 blocks
    (1, 100003),      # a prime length over 256 blocks
    (300, 5),         # more samples than cuda.BLOCKS: a block a row
    (600, 7, 11),
]


def _draw(seed, dtype, shape, spread=0.5):
    rng = np.random.default_rng(seed)
    x, t, g = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    s = (spread * rng.standard_normal(shape)).astype(dtype)
    return x, s, t, g, rng.standard_normal(shape[0])


def _close_logdet(got, want, s):
    """float64 sums of the same terms in another order: d * eps of the sum of |terms|."""
    row_sums = np.abs(s.astype(np.float64)).sum(axis=tuple(range(1, s.ndim)))
    d = s.size // len(s) if len(s) else 0
    close(got, want, np.float64, rtol64=0,
          atol64=max(d, 1) * EPS64 * row_sums.max(initial=0.0))


def _check_all(x, s, t, g, g_logdet, reverse, device_arrays=None):
    """cuda.py on the device copies (or on `device_arrays`, the same values laid out
    otherwise) against reference.py on the host."""
    dtype = x.dtype
    x_d, s_d, t_d, g_d, gl_d = device_arrays or to_gpu(x, s, t, g, g_logdet)
    out, logdet, scale = cuda.forward(x_d, s_d, t_d, reverse=reverse)
    want_out, want_logdet, want_scale = reference.forward(x, s, t, reverse=reverse)
    close(out, want_out, dtype)
    close(scale, want_scale, dtype)
    _close_logdet(logdet, want_logdet, s)
    for gl, gl_d_ in ((g_logdet, gl_d), (None, None)):
        close(cuda.backward(x_d, scale, t_d, g_d, gl_d_, reverse=reverse),
              reference.backward(x, want_scale, t, g, gl, reverse=reverse), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cuda_matches_reference(shape, reverse, dtype):
    _check_all(*_draw(len(shape) + shape[-1], dtype, shape), reverse)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_wide_scales(reverse, dtype):
    """s up to about +-20: exp(s) from 1e-9 to 5e8, every product finite in float32."""
    _check_all(*_draw(3, dtype, (6, 3, 17, 5), spread=6.0), reverse)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_non_contiguous_inputs(reverse, dtype):
    """Strided, reversed and transposed views: the kernels index flat memory, so cuda.py
    must make them contiguous first. grad_logdet is strided too."""
    x, s, t, g, gl = _draw(4, dtype, (5, 6, 7))
    cp = cupy()
    views = [cp.asarray(np.repeat(a, 2, axis=-1))[..., ::2] for a in (x, s, t, g, gl)]
    views[1] = cp.ascontiguousarray(views[1][:, ::-1])[:, ::-1]
    views[2] = cp.asarray(t.transpose(2, 1, 0).copy()).transpose(2, 1, 0)
    assert not any(v.flags.c_contiguous for v in views)
    _check_all(x, s, t, g, gl, reverse, device_arrays=views)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0,)], ids=str)
def test_empty(shape, dtype):
    _check_all(*_draw(5, dtype, shape), False)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("n", [1, 260])  # over 256 blocks a row; one block a row
def test_float32_logdet_is_accumulated_in_double(n, reverse):
    """Rows of 65537 values of 64 + 2^-10, each exact in float32, whose sum needs 33
    significant bits: exact in double whatever the order of the additions, while any sum
    kept in float32 (24 bits) rounds it, here by about 0.001."""
    d = (1 << 16) + 1
    s = np.full((n, d), 64 + 2.0 ** -10, dtype=np.float32)
    exact = s.astype(np.float64).sum(axis=1)
    assert (s.sum(axis=1, dtype=np.float32) != exact).all()
    x = np.zeros_like(s)
    _, logdet, _ = cuda.forward(*to_gpu(x, s, x), reverse=reverse)
    assert logdet.dtype == np.float64 and logdet.shape == (n,)
    np.testing.assert_array_equal(logdet.get(), -exact if reverse else exact)


def test_logdet_is_the_same_on_every_run():
    """Partial sums added in a fixed order, never by atomics: bit for bit the same."""
    x, s, t, _, _ = _draw(6, np.float32, (2, 3, 64, 64), spread=10.0)
    x, s, t = to_gpu(x, s, t)
    first = cuda.forward(x, s, t)[1].get()
    for _ in range(5):
        np.testing.assert_array_equal(cuda.forward(x, s, t)[1].get(), first)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_op_on_the_gpu_matches_the_cpu(reverse):
    """F.affine_coupling forward and backward, the log-determinant's gradient included, on
    device tensors against the same op on host tensors."""
    x, s, t, g, gl = _draw(7, np.float64, (4, 3, 5, 5))
    results = []
    for device in ("cpu", "cuda"):
        xt, st, tt = (mg.tensor(a, requires_grad=True, device=device) for a in (x, s, t))
        y, logdet = F.affine_coupling(xt, st, tt, reverse=reverse)
        ((y * mg.tensor(g, device=device)).sum()
         + (logdet * mg.tensor(gl, device=device)).sum()).backward()
        results.append([y.numpy(), logdet.numpy(), xt.grad.numpy(), st.grad.numpy(),
                        tt.grad.numpy()])
    for got, want in zip(*results[::-1]):
        close(got, want, np.float64)
