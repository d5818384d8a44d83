"""The small CUDA kernels (kernels/<name>/cuda.py of gelu, silu, sigmoid, relu, layer_norm,
adam and sum) against their NumPy references on the same values, moved to the host: shapes
from 0-d and empty to transposed and strided views, float32 and float64, infinities and NaN
(float32 subnormals aside: see SUBNORMAL); layer_norm over row lengths on both sides of a
warp and a block, to the error bounds of tests/test_kernels_layer_norm.py; Adam bit for
bit over several steps; and the engine's ops on the device against the same ops on the
host (that CuPy arrays get each cuda.py: tests/test_kernel_dispatch.py). Run only where
CuPy and a GPU are (tests/cudacheck.py)."""
import importlib

import numpy as np
import pytest

import minigen as mg
import minigen.functional as F
from cudacheck import close, cupy, needs_gpu, to_gpu
from kernelcheck import assert_layer_norm_close
from minigen import backend

pytestmark = needs_gpu

KERNELS = ("adam", "gelu", "layer_norm", "relu", "sigmoid", "silu", "sum")
DTYPES = (np.float32, np.float64)
# zeros, infinities, NaN, values far out in both tails (where Phi, sigmoid and exp
# underflow), around the derivatives' zeros, and float32's extremes
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 1e-30, -1e-30, 0.75, -0.75,
           -1.28, 5.0, -5.0, 9.0, -9.0, 13.5, -13.5, 20.0, -20.0, 38.0, -38.0, 88.0, -88.0,
           104.0, -104.0, 700.0, -700.0, 746.0, -746.0, 1e20, -1e20, 3e38, -3e38]
# float32 subnormals: CuPy compiles every kernel with -ftz=true, which flushes them to zero
# (its own kernels too), so they are compared to close's tolerance, never bit for bit
SUBNORMAL = [1e-40, -1e-40]
# (shape of the array made, the view of it that the kernels get), the same on both sides
LAYOUTS = {
    "0-d": ((), lambda a: a),
    "empty": ((3, 0), lambda a: a),
    "flat": ((1000,), lambda a: a),
    "3-d": ((4, 5, 6), lambda a: a),
    "transposed": ((6, 7), lambda a: a.T),
    "strided": ((8, 9), lambda a: a[::2, 1::3]),
}
UNARY = [("gelu", "forward"), ("gelu", "derivative"), ("silu", "forward"),
         ("silu", "derivative"), ("sigmoid", "forward"), ("relu", "forward")]


def version(name, which):
    return importlib.import_module(f"minigen.kernels.{name}.{which}")


def values(rng, shape, dtype, scale=4.0, subnormal=False):
    """Normal values times `scale`, led by SPECIAL (and SUBNORMAL) where there is room."""
    x = np.asarray(scale * rng.standard_normal(shape))
    special = SPECIAL + SUBNORMAL if subnormal else SPECIAL
    flat = x.reshape(-1)
    n = min(flat.size, len(special))
    flat[:n] = special[:n]
    return x.astype(dtype)


def both(host, layout):
    """`host`'s view under `layout`, on the host and on the device."""
    view = LAYOUTS[layout][1]
    (device,) = to_gpu(host)
    return view(host), view(device)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, function", UNARY, ids=[".".join(u) for u in UNARY])
def test_unary_kernels_match_the_reference(name, function, dtype, layout):
    rng = np.random.default_rng(0)
    x, x_device = both(values(rng, LAYOUTS[layout][0], dtype, subnormal=True), layout)
    got = getattr(version(name, "cuda"), function)(x_device)
    assert got.shape == x.shape
    close(got, np.asarray(getattr(version(name, "reference"), function)(x)), dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_grad_matches_the_reference_exactly(dtype, layout):
    rng = np.random.default_rng(1)
    shape = LAYOUTS[layout][0]
    g, g_device = both(values(rng, shape, dtype), layout)
    x, x_device = both(-values(rng, shape, dtype), layout)  # g's infinities meet x <= 0
    got = version("relu", "cuda").grad(g_device, x_device)
    want = version("relu", "reference").grad(g, x)
    np.testing.assert_array_equal(backend.to_numpy(got), want)  # NaN where g has inf or NaN
    assert got.dtype == dtype


def test_relu_grad_of_other_shapes_takes_the_reference():
    rng = np.random.default_rng(2)
    g, x = rng.standard_normal((4, 5)), rng.standard_normal(5)
    got = version("relu", "cuda").grad(*to_gpu(g, x))
    want = version("relu", "reference").grad(g, x)
    np.testing.assert_array_equal(backend.to_numpy(got), want)


def check_layer_norm(x, xhat, rstd, g, dx):
    """The device's xhat, rstd and dx against the reference, to the bounds that the CPU
    version is held to (the same arithmetic)."""
    assert_layer_norm_close(x, g, *(backend.to_numpy(a) for a in (xhat, rstd, dx)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1, 7, 31, 32, 33, 255, 257, 1000, 1024, 1025, 4099])
@pytest.mark.parametrize("rows", [1, 9, 17])
def test_layer_norm_matches_the_reference(rows, cols, dtype):
    """Rows of a warp (up to 1024 columns, 8 to a block: 9 and 17 rows leave the last block
    part empty) and of a block, with lengths on both sides of 32 and 256."""
    rng = np.random.default_rng(cols)
    x = (3.0 + 2.0 * rng.standard_normal((rows, cols))).astype(dtype)
    if rows > 1:
        x[-1] = 5.0  # a constant row: xhat 0, rstd 1 / sqrt(eps)
    g = rng.standard_normal((rows, cols)).astype(dtype)
    cuda = version("layer_norm", "cuda")
    xhat, rstd = cuda.forward(*to_gpu(x), 1e-5)
    dx = cuda.backward(xhat, rstd, *to_gpu(g))
    check_layer_norm(x, xhat, rstd, g, dx)
    if rows > 1:
        np.testing.assert_array_equal(backend.to_numpy(xhat)[-1], 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_takes_views_far_offsets_and_no_rows(dtype):
    rng = np.random.default_rng(3)
    cuda = version("layer_norm", "cuda")
    base = (1000.0 + rng.standard_normal((40, 12))).astype(dtype)
    for layout in ("transposed", "strided"):
        x, x_device = both(base, layout)
        g, g_device = both(rng.standard_normal(base.shape).astype(dtype), layout)
        xhat, rstd = cuda.forward(x_device, 1e-5)
        check_layer_norm(np.ascontiguousarray(x), xhat, rstd, np.ascontiguousarray(g),
                         cuda.backward(xhat, rstd, g_device))
    xhat, rstd = cuda.forward(cupy().zeros((0, 5), dtype), 1e-5)
    assert xhat.shape == (0, 5) and rstd.shape == (0,)
    assert cuda.backward(xhat, rstd, cupy().zeros((0, 5), dtype)).shape == (0, 5)


def test_layer_norm_errors_name_the_op_shapes_and_dtypes():
    cuda = version("layer_norm", "cuda")
    cp = cupy()
    with pytest.raises(ValueError, match=r"layer_norm backward: .*\(2, 3\).*\(2, 4\)"):
        cuda.backward(cp.zeros((2, 3)), cp.ones(2), cp.zeros((2, 4)))
    with pytest.raises(TypeError, match="int64"):
        cuda.forward(cp.zeros((2, 3), np.int64), 1e-5)


@pytest.mark.parametrize("layout", ["0-d", "empty", "flat", "3-d", "strided"])
@pytest.mark.parametrize("weight_decay, decoupled", [(0, False), (0.1, False), (0.1, True)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_equals_the_reference_bit_for_bit(dtype, weight_decay, decoupled, layout):
    """Several steps, p a view where the layout is one (m and v made like p, as
    optim.Adam makes them), with a large lr and small betas so that each step shows."""
    rng = np.random.default_rng(4)
    shape, view = LAYOUTS[layout]
    host = values(rng, shape, dtype, scale=1.0)
    if layout == "flat":
        host[:2] = np.inf, 0.0  # an infinite and a zero parameter
    (device,) = to_gpu(host)
    p, p_device = view(host), view(device)
    m, v = np.zeros_like(p), np.zeros_like(p)
    m_device, v_device = to_gpu(m, v)
    settings = [(1e-3, 0.9, 0.999), (0.3, 0.5, 0.9)]
    for step in range(1, 7):
        g = values(rng, p.shape, dtype, scale=1.0)
        lr, beta1, beta2 = settings[step % 2]
        args = (lr, beta1, beta2, 1e-8, step, weight_decay, decoupled)
        version("adam", "reference").update(p, g, m, v, *args)
        version("adam", "cuda").update(p_device, *to_gpu(g), m_device, v_device, *args)
        for got, want in ((p_device, p), (m_device, m), (v_device, v)):
            np.testing.assert_array_equal(backend.to_numpy(got), want, f"step {step}")
    np.testing.assert_array_equal(backend.to_numpy(device), host)  # and nothing else moved


def test_adam_with_a_gradient_of_another_dtype_takes_the_reference():
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6)
    m, v = np.zeros_like(p), np.zeros_like(p)
    p_device, g_device, m_device, v_device = to_gpu(p, g, m, v)
    version("adam", "reference").update(p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, 1)
    version("adam", "cuda").update(p_device, g_device, m_device, v_device, 1e-2, 0.9, 0.999,
                                   1e-8, 1)
    close(p_device, p, np.float32, rtol32=1e-6, atol32=0)


SUMS = [((6, 5, 4), (0,)), ((6, 5, 4), (1,)), ((6, 5, 4), (2,)), ((6, 5, 4), (0, 2)),
        ((6, 5, 4), (1, 2)), ((6, 5, 4), (0, 1, 2)), ((6, 5, 4), ()), ((), ()),
        ((0, 3), (0,)), ((3, 0), (1,)), ((20000, 3), (0,)), ((3, 20000), (1,)),
        ((32, 16, 7, 7), (0, 2, 3)), ((128, 4, 2, 4, 2), (2, 4))]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axes", SUMS, ids=[f"{s}-{a}" for s, a in SUMS])
def test_sum_matches_the_float64_reference(shape, axes, keepdims):
    """Positive values, so that no total cancels: the float64 totals of both sides then
    round to the same float32 or the next one (one ulp of the result, 1.2e-7 at most)."""
    rng = np.random.default_rng(6)
    x = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    got = version("sum", "cuda").sum_axes(*to_gpu(x), axes, keepdims)
    want = np.asarray(version("sum", "reference").sum_axes(x, axes, keepdims))
    close(got, want, np.float32, rtol32=1.2e-7, atol32=0)


def test_sum_takes_views_and_keeps_nan_and_inf():
    rng = np.random.default_rng(7)
    cuda, reference = version("sum", "cuda"), version("sum", "reference")
    for layout in ("transposed", "strided"):
        x, x_device = both(rng.standard_normal((50, 30)).astype(np.float32), layout)
        for axes in ((0,), (1,), (0, 1)):
            close(cuda.sum_axes(x_device, axes), np.asarray(reference.sum_axes(x, axes)),
                  np.float32, rtol32=1.2e-7, atol32=1e-6)
    x = np.array([[1, np.inf], [np.nan, 2], [np.inf, -np.inf]], np.float32)
    got = cuda.sum_axes(*to_gpu(x), (1,))
    np.testing.assert_array_equal(backend.to_numpy(got), [np.inf, np.nan, np.nan])
    assert got.dtype == np.float32


def test_sum_of_float64_takes_the_reference():
    x = np.random.default_rng(8).standard_normal((5, 4))
    got = version("sum", "cuda").sum_axes(*to_gpu(x), (0,))
    close(got, x.sum(axis=0), np.float64)


@pytest.mark.parametrize("name, call", [
    ("gelu", lambda k, x: k.forward(x)), ("silu", lambda k, x: k.derivative(x)),
    ("sigmoid", lambda k, x: k.forward(x)), ("relu", lambda k, x: k.grad(x, x)),
    ("layer_norm", lambda k, x: k.forward(x, 1e-5)),
    ("sum", lambda k, x: k.sum_axes(x, (0,))),
    ("adam", lambda k, x: k.update(x, x, x, x, 1e-3, 0.9, 0.999, 1e-8, 1))])
def test_host_arrays_are_refused(name, call):
    with pytest.raises(TypeError, match="CuPy"):
        call(version(name, "cuda"), np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_ops_on_the_device_agree_with_the_host(dtype):
    """What the ops hand the kernels, and take back, on both devices: activations, layer
    norm and a sum forward and backward; then an Adam and an AdamW step from one gradient
    on both (the kernels' gradients differ in their last bits, and Adam's first step,
    about lr sign(g), would magnify that where g is near 0)."""
    rng = np.random.default_rng(9)
    data = (2.0 * rng.standard_normal((4, 3, 10))).astype(dtype)
    common = rng.standard_normal(data.shape).astype(dtype)

    def run(device):
        x = mg.tensor(data, requires_grad=True, device=device)
        outputs = [mg.gelu(x), F.silu(x), mg.sigmoid(x), mg.relu(x),
                   F.layer_norm(x, (3, 10)), x.sum(axis=(0, 2))]
        sum((y * y).sum() for y in outputs).backward()
        found = [y.numpy() for y in outputs] + [x.grad.numpy()]
        x.grad = mg.tensor(common, device=device)
        for optimizer in (mg.optim.Adam([x], lr=0.1), mg.optim.AdamW([x], lr=0.1)):
            optimizer.step()
            found.append(x.numpy().copy())  # on the host, numpy() is x's own array
        return found

    on_host, on_device = run("cpu"), run("cuda")
    for got, want in zip(on_device[:-2], on_host[:-2]):
        close(got, want, dtype)
    for got, want in zip(on_device[-2:], on_host[-2:]):  # both Adam kernels: the reference
        np.testing.assert_array_equal(got, want)
