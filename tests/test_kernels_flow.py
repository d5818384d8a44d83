"""The flow layers: the affine coupling kernels, and affine_coupling, actnorm and
invertible_conv1x1 as engine ops.

The Numba coupling kernel equals its plain NumPy reference on hypothesis-drawn shapes,
directions and values, through both its serial and its parallel driver (float32 to a few
ulps of each entry's size, float64 to rounding), and its vectorised float32 exp is within
one ulp of the correctly rounded exp over its whole range. Every layer inverts exactly, its
log-determinant equals log|det J| of the Jacobian built with the engine itself, and its
gradients pass gradcheck and gradgradcheck in both directions. The coupling's float64
log-determinant keeps differences that a float32 sum would round away.
"""

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen.kernels import coupling
from minigen.ops.flow import (actnorm, actnorm_init, affine_coupling, invertible_conv1x1,
                              lu_init, lu_weight)

from kernelcheck import patched

EPS64 = np.finfo(np.float64).eps


def assert_entries_close(got, want, size, what):
    """|got - want| within a few ulps of `size`, each entry's magnitude before rounding
    (an exp, a product and a sum round once each; NumPy's exp is itself within 2 ulps)."""
    assert got.dtype == want.dtype and got.shape == want.shape, what
    tol = 8 * np.finfo(want.dtype).eps * size
    bad = ~(np.abs(got.astype(np.float64) - want) <= tol) & ~(got == want)
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} entries differ, first at "
                           f"{np.argwhere(bad)[0]}: {got[bad][0]} vs {want[bad][0]}")


def assert_logdet_close(got, want, s, what):
    """float64 sums of the same terms in another order: n * eps of the sum of |terms|."""
    assert got.dtype == np.float64 and got.shape == want.shape, what
    terms = np.abs(s.astype(np.float64)).reshape(len(s), -1)
    np.testing.assert_allclose(got, want, rtol=0, err_msg=what,
                               atol=terms.shape[1] * EPS64 * terms.sum(axis=1).max(initial=0))


# ---------------------------------------------------------------- kernels

@st.composite
def coupling_cases(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (draw(st.integers(1, 5)),) + tuple(draw(st.lists(st.integers(1, 7), max_size=3)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    spread = draw(st.sampled_from([0.1, 3.0, 25.0]))
    x, t, g = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    # |s| <= 80: exp(s) spans 1e-35 .. 1e35 and every product stays finite in float32
    # (test_exp_float32_within_one_ulp covers overflow, underflow and NaN)
    s = np.clip(spread * rng.standard_normal(shape), -80, 80).astype(dtype)
    grad_logdet = rng.standard_normal(shape[0]) if draw(st.booleans()) else None
    return (x, s, t, g, grad_logdet), draw(st.booleans())


@given(coupling_cases(), st.sampled_from([1, 1 << 30]))
@settings(max_examples=120)
def test_coupling_cpu_matches_reference(case, parallel_min):
    (x, s, t, g, grad_logdet), reverse = case
    wide = [a.astype(np.float64) for a in (x, s, t, g)]
    x64, s64, t64, g64 = wide
    e = np.exp(-s64 if reverse else s64)
    # parallel_min 1: the parallel driver, 2^30: the serial one
    with patched(coupling.cpu, PARALLEL_MIN=parallel_min):
        out, logdet, scale = coupling.cpu.forward(x, s, t, reverse)
        grads = coupling.cpu.backward(x, scale, t, g, grad_logdet, reverse)
    want_out, want_logdet, want_scale = coupling.reference.forward(x, s, t, reverse)
    want_grads = coupling.reference.backward(x, want_scale, t, g, grad_logdet, reverse)
    assert_entries_close(out, want_out, np.abs(x64 - t64 if reverse else x64) * e
                         + (0 if reverse else np.abs(t64)), "out")
    assert_entries_close(scale, want_scale, e, "scale")
    assert_logdet_close(logdet, want_logdet, s, "logdet")
    logdet_term = 0 if grad_logdet is None else np.abs(grad_logdet).reshape(
        (-1,) + (1,) * (x.ndim - 1))
    sizes = [np.abs(g64) * e,
             np.abs(g64 * e * (x64 - t64 if reverse else x64)) + logdet_term,
             np.abs(g64) * (e if reverse else 1)]
    assert grads.shape == (3,) + x.shape
    for name, got, want, size in zip(["grad x", "grad s", "grad t"], grads, want_grads,
                                     sizes):
        assert_entries_close(got, want, size, name)


def test_coupling_reference_by_hand():
    x = np.array([[1.0, 2.0]])
    s = np.array([[0.0, np.log(2.0)]])
    t = np.array([[1.0, 1.0]])
    y, logdet, scale = coupling.reference.forward(x, s, t)
    np.testing.assert_allclose(y, [[2.0, 5.0]])
    np.testing.assert_allclose(logdet, [np.log(2.0)])
    np.testing.assert_allclose(scale, [[1.0, 2.0]])
    back, logdet_inverse, scale_inverse = coupling.reference.forward(y, s, t, reverse=True)
    np.testing.assert_allclose(back, x)
    np.testing.assert_allclose(logdet_inverse, [-np.log(2.0)])
    np.testing.assert_allclose(scale_inverse, [[1.0, 0.5]])
    # d/dx = g e^s, d/ds = g x e^s + dlogdet, d/dt = g
    grad_x, grad_s, grad_t = coupling.reference.backward(x, scale, t, np.array([[1.0, 3.0]]),
                                                         np.array([0.5]))
    np.testing.assert_allclose(grad_x, [[1.0, 6.0]])
    np.testing.assert_allclose(grad_s, [[1.5, 12.5]])
    np.testing.assert_allclose(grad_t, [[1.0, 3.0]])
    # the inverse, x = (y - t) e^-s: d/dy = g e^-s, d/ds = -g (y - t) e^-s - dlogdet,
    # d/dt = -g e^-s
    grad_y, grad_s, grad_t = coupling.reference.backward(y, scale_inverse, t,
                                                         np.array([[1.0, 3.0]]),
                                                         np.array([0.5]), reverse=True)
    np.testing.assert_allclose(grad_y, [[1.0, 1.5]])
    np.testing.assert_allclose(grad_s, [[-1.5, -6.5]])
    np.testing.assert_allclose(grad_t, [[-1.0, -1.5]])


def test_exp_float32_within_one_ulp():
    """The CPU kernel's exp, as forward's `scale`, against the exact exp."""
    s = np.concatenate([
        np.linspace(-110.0, 95.0, 2_000_001, dtype=np.float32),
        np.float32([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-30, 88.72283,
                    88.72284, -87.33655, -103.97208, -103.97209])]).reshape(1, -1)
    with patched(coupling.cpu, PARALLEL_MIN=1 << 30):
        got = coupling.cpu.forward(np.zeros_like(s), s, np.zeros_like(s))[2]
    exact = np.exp(s.astype(np.float64))
    with np.errstate(over="ignore"):
        rounded = exact.astype(np.float32)
    normal = np.isfinite(rounded) & (rounded >= np.finfo(np.float32).tiny)
    ulps = np.abs(got[normal] - exact[normal]) / np.spacing(rounded[normal])
    assert ulps.max() <= 1.0, f"exp off by {ulps.max():.2f} ulp at s = {s[normal][ulps.argmax()]}"
    # subnormal results carry fewer digits: within one step of the smallest subnormal
    subnormal = (rounded < np.finfo(np.float32).tiny) & (rounded > 0)
    assert subnormal.sum() > 1000
    smallest = np.finfo(np.float32).smallest_subnormal
    assert np.abs(got[subnormal] - rounded[subnormal]).max() <= smallest
    # overflow to inf, underflow to 0, NaN to NaN, as the exact exp rounds
    special = ~normal & ~subnormal
    np.testing.assert_array_equal(got[special], rounded[special])


def test_kernel_shape_and_dtype_errors():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"shapes.*\(2, 3\).*\(3, 2\)"):
        coupling.cpu.forward(a, a.T, a)
    with pytest.raises(TypeError, match="float32.*float64"):
        coupling.cpu.forward(a, a.astype(np.float64), a)


# ---------------------------------------------------------------- the engine ops

def coupling_layer(reverse):
    return lambda x, s, t: affine_coupling(x, s, t, reverse=reverse)


def actnorm_layer(reverse):
    return lambda x, log_scale, bias: actnorm(x, log_scale, bias, reverse=reverse)


def conv_layer(reverse, perm, sign_s):
    return lambda x, lower, upper, log_s: invertible_conv1x1(x, perm, lower, upper, log_s,
                                                             sign_s, reverse=reverse)


def layers(dtype=np.float64, shape=(2, 3, 2, 2), seed=0):
    """(name, layer(reverse) -> fn(x, *params), x, params) for each of the three layers,
    with parameters away from the identity so that every term of the gradients shows."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    draw = lambda *s, scale=1.0: mg.tensor((scale * rng.standard_normal(s)).astype(dtype))
    x = draw(*shape)
    lu = lu_init(c, generator=mg.random.Generator(seed), dtype=dtype)
    conv_params = [lu["lower"] + draw(c, c, scale=0.3), lu["upper"] + draw(c, c, scale=0.3),
                   lu["log_s"] + draw(c, scale=0.3)]
    return [
        ("affine_coupling", coupling_layer, x, [draw(*shape, scale=0.7), draw(*shape)]),
        ("actnorm", actnorm_layer, x, [draw(c, scale=0.7), draw(c)]),
        ("invertible_conv1x1", lambda reverse: conv_layer(reverse, lu["perm"], lu["sign_s"]),
         x, conv_params),
    ]


LAYER_NAMES = [name for name, *_ in layers()]


def layer(name, **kwargs):
    return next(case for case in layers(**kwargs) if case[0] == name)


@pytest.mark.parametrize("name", LAYER_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layers_invert(name, dtype):
    _, make, x, params = layer(name, dtype=dtype, shape=(4, 3, 5, 5))
    y, logdet = make(False)(x, *params)
    back, logdet_back = make(True)(y, *params)
    assert y.dtype == back.dtype == dtype and logdet.dtype == logdet_back.dtype == np.float64
    assert logdet.shape == logdet_back.shape == (4,)
    size = np.abs(x.numpy()).max() + np.abs(y.numpy()).max()
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(back.numpy(), x.numpy(), rtol=0, atol=tol * size)
    np.testing.assert_array_equal(logdet_back.numpy(), -logdet.numpy())


def jacobian_logdets(fn, x):
    """log|det dy_n/dx_n| for each sample n, from the Jacobian built row by row with the
    engine's own grad (samples do not mix, so one backward pass gives row r of all)."""
    n = x.shape[0]
    d = x.size // n
    x = mg.tensor(x.numpy(), requires_grad=True)
    y = fn(x)[0]
    jac = np.zeros((n, d, d))
    for r in range(d):
        seed = np.zeros((n, d))
        seed[:, r] = 1.0
        (row,) = mg.grad(y, [x], grad_outputs=mg.tensor(seed.reshape(y.shape)),
                         retain_graph=True)
        jac[:, r] = row.numpy().reshape(n, d)
    sign, logabsdet = np.linalg.slogdet(jac)
    assert (sign != 0).all()
    return logabsdet


@pytest.mark.parametrize("name", LAYER_NAMES)
@pytest.mark.parametrize("reverse", [False, True])
def test_logdet_is_log_abs_det_jacobian(name, reverse):
    _, make, x, params = layer(name)
    fn = make(reverse)
    _, logdet = fn(x, *params)
    np.testing.assert_allclose(logdet.numpy(), jacobian_logdets(lambda v: fn(v, *params), x),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", LAYER_NAMES)
@pytest.mark.parametrize("reverse", [False, True])
def test_gradients(name, reverse):
    _, make, x, params = layer(name, shape=(2, 2, 2, 2))
    fn = make(reverse)
    assert mg.gradcheck(fn, [x] + params)
    assert mg.gradgradcheck(fn, [x] + params)


def test_coupling_third_derivative():
    """AffineCouplingGrad's backward is plain ops, so the order does not stop at two."""
    rng = np.random.default_rng(3)
    x, s, t = (mg.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(3))
    for reverse in (False, True):
        y, logdet = affine_coupling(x, s, t, reverse=reverse)
        (gs,) = mg.grad((y * y).sum() + logdet.sum(), [s], create_graph=True)
        (gss,) = mg.grad(gs.sum(), [s], create_graph=True)
        (gsss,) = mg.grad(gss.sum(), [s])
        x_, s_, t_ = x.numpy(), s.numpy(), t.numpy()
        if reverse:  # y^2 = (x - t)^2 e^(-2s)
            want = (-2) ** 3 * (x_ - t_) ** 2 * np.exp(-2 * s_)
        else:  # y^2 = x^2 e^(2s) + 2 x t e^s + t^2
            want = 2 ** 3 * x_ ** 2 * np.exp(2 * s_) + 2 * x_ * t_ * np.exp(s_)
        np.testing.assert_allclose(gsss.numpy(), want, rtol=1e-12)


def test_coupling_matches_plain_ops_in_float32():
    """The fused op against the same formula written with the engine's primitives: values,
    gradients (the output's and the log-determinant's shares of grad s added) and dtypes."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((3, 2, 4, 4)).astype(np.float32) for _ in range(4)]
    arrays[1] *= 0.5
    grad_logdet = mg.tensor(rng.standard_normal(3))
    results = []
    for fused in (True, False):
        x, s, t = (mg.tensor(a, requires_grad=True) for a in arrays[:3])
        if fused:
            y, logdet = affine_coupling(x, s, t)
        else:
            y, logdet = x * mg.exp(s) + t, s.astype(np.float64).sum(axis=(1, 2, 3))
        grads = mg.grad([y, logdet], [x, s, t], grad_outputs=[mg.tensor(arrays[3]),
                                                               grad_logdet])
        results.append([y, logdet, *grads])
    for fused, plain in zip(*results):
        assert fused.dtype == plain.dtype
        np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)


def test_coupling_under_no_grad():
    x = mg.tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with mg.no_grad():
        y, logdet = affine_coupling(x, x, x)
    assert not y.requires_grad and not logdet.requires_grad
    np.testing.assert_allclose(y.numpy(), np.e + 1, rtol=1e-6)
    np.testing.assert_array_equal(logdet.numpy(), [3.0, 3.0])


def test_logdet_keeps_float64_precision():
    """s near 1e3 over 784 pixels: the per-sample sum is near 8e5, where float32 keeps
    steps of 0.06. The float64 accumulation matches a float64 sum of the same float32
    values (and resolves a 1e-3 change in one pixel); a float32 sum does not."""
    rng = np.random.default_rng(5)
    s = rng.uniform(999.0, 1001.0, (4, 1, 28, 28)).astype(np.float32)
    x, t = np.ones_like(s), np.zeros_like(s)  # y = exp(1e3) = inf; not the point here
    exact = s.astype(np.float64).sum(axis=(1, 2, 3))
    float32_sum = s.sum(axis=(1, 2, 3), dtype=np.float32)
    nudged = s.copy()
    nudged[:, 0, 5, 5] += np.float32(1e-3)
    change = np.float64(nudged[0, 0, 5, 5]) - np.float64(s[0, 0, 5, 5])  # 1e-3 to float32
    # what the test guards against: float32 sums are off by 1e-3 and more, and move in
    # steps of 0.06 when one pixel changes by 1e-3
    float32_sum = s.sum(axis=(1, 2, 3), dtype=np.float32)
    assert np.abs(float32_sum - exact).max() > 1e-3
    float32_change = nudged.sum(axis=(1, 2, 3), dtype=np.float32) - float32_sum
    assert not np.allclose(float32_change, change, rtol=0.1)
    for parallel_min in (1, 1 << 30):
        with patched(coupling.cpu, PARALLEL_MIN=parallel_min):
            logdet = coupling.cpu.forward(x, s, t)[1]
            nudged_logdet = coupling.cpu.forward(x, nudged, t)[1]
        np.testing.assert_allclose(logdet, exact, rtol=1e-12)
        np.testing.assert_allclose(nudged_logdet - logdet, change, rtol=1e-6)
    _, logdet = affine_coupling(mg.tensor(x), mg.tensor(s), mg.tensor(t))
    with np.errstate(over="ignore"):
        reference = coupling.reference.forward(x, s, t)[1]
    assert logdet.dtype == np.float64
    np.testing.assert_allclose(logdet.numpy(), exact, rtol=1e-12)
    np.testing.assert_allclose(reference, exact, rtol=1e-12)


def test_engine_op_errors_name_the_op_and_shapes():
    a = mg.tensor(np.zeros((2, 3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"affine_coupling: .*\(2, 3, 4, 4\).*\(2, 3\)"):
        affine_coupling(a, a, a[:, :, 0, 0])
    with pytest.raises(TypeError, match="affine_coupling: x, s, t need one dtype"):
        affine_coupling(a, a.astype(np.float64), a)
    with pytest.raises(ValueError, match=r"actnorm: log_scale has shape \(4,\); expected "
                                         r"\(3,\)"):
        actnorm(a, mg.zeros(4), mg.zeros(3))
    with pytest.raises(ValueError, match=r"invertible_conv1x1: expected x of shape "
                                         r"\(N, C, H, W\)"):
        invertible_conv1x1(a[0], **lu_init(3))


def test_actnorm_init_normalises_the_batch():
    rng = np.random.default_rng(6)
    x = mg.tensor((3.0 + 5.0 * rng.standard_normal((16, 3, 8, 8))).astype(np.float32))
    log_scale, bias = actnorm_init(x)
    assert log_scale.dtype == bias.dtype == np.float32 and not log_scale.requires_grad
    y = actnorm(x, log_scale, bias)[0].numpy().astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1.0, rtol=1e-5)


def test_lu_init_is_an_orthogonal_weight():
    params = lu_init(5, generator=mg.random.Generator(7), dtype=np.float64)
    perm, lower, upper = (params[k].numpy() for k in ("perm", "lower", "upper"))
    assert set(np.unique(perm)) <= {0.0, 1.0}
    np.testing.assert_array_equal(perm.sum(axis=0), np.ones(5))
    np.testing.assert_array_equal(perm.sum(axis=1), np.ones(5))
    np.testing.assert_array_equal(lower, np.tril(lower, -1))
    np.testing.assert_array_equal(upper, np.triu(upper, 1))
    assert set(np.unique(params["sign_s"].numpy())) <= {-1.0, 1.0}
    weight = lu_weight(**params).numpy()
    np.testing.assert_allclose(weight @ weight.T, np.eye(5), atol=1e-12)
    # |det W| = 1 for an orthogonal W: the log-determinant starts at zero
    x = mg.tensor(np.ones((2, 5, 3, 3)))
    np.testing.assert_allclose(invertible_conv1x1(x, **params)[1].numpy(), 0.0, atol=1e-12)


def test_lu_weight_ignores_the_masked_triangles():
    params = lu_init(4, generator=mg.random.Generator(8), dtype=np.float64)
    lower = mg.tensor(params["lower"].numpy() + np.triu(np.ones((4, 4))), requires_grad=True)
    upper = mg.tensor(params["upper"].numpy() + np.tril(np.ones((4, 4))), requires_grad=True)
    weight = lu_weight(params["perm"], lower, upper, params["log_s"], params["sign_s"])
    np.testing.assert_allclose(weight.numpy(), lu_weight(**params).numpy(), atol=1e-15)
    grad_lower, grad_upper = mg.grad(weight.sum(), [lower, upper])
    assert (grad_lower.numpy()[np.triu_indices(4)] == 0).all()
    assert (grad_upper.numpy()[np.tril_indices(4)] == 0).all()
