"""minigen.functional: every op against a plain NumPy reference written here with loops,
against torch.nn.functional where PyTorch is installed, and through gradcheck and
gradgradcheck (float64) on hypothesis-drawn shapes, strides, paddings and dilations."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.functional as F
from minigen.ops.unfold import Fold, Unfold


def t64(a, requires_grad=False):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def torch_or_skip():
    return pytest.importorskip("torch", reason="parity with torch.nn.functional needs PyTorch")


def assert_gradients(fn, inputs):
    """gradcheck and gradgradcheck of fn, in float64."""
    assert mg.gradcheck(fn, inputs)
    assert mg.gradgradcheck(fn, inputs)


def pairs(low, high):
    return st.tuples(st.integers(low, high), st.integers(low, high))


# ---------------------------------------------------------------- NumPy references


def out_len(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def conv2d_ref(x, w, b, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = out_len(x.shape[2], kh, sh, ph, dh), out_len(x.shape[3], kw, sw, pw, dw)
    out = np.zeros((x.shape[0], o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for p in range(kh):
                for q in range(kw):
                    out[:, :, i, j] += xp[:, :, i * sh + p * dh, j * sw + q * dw] @ w[:, :, p, q].T
    return out if b is None else out + b[None, :, None, None]


def conv_transpose2d_ref(x, w, b, stride, padding, output_padding, dilation):
    """Scatter: input pixel (i, j) adds x[i, j] * w[:, :, p, q] at (i*s + p*d, j*s + q*d)."""
    (sh, sw), (ph, pw), (eh, ew), (dh, dw) = stride, padding, output_padding, dilation
    n, _, h, wd = x.shape
    _, o, kh, kw = w.shape
    full = np.zeros((n, o, (h - 1) * sh + dh * (kh - 1) + 1 + eh,
                     (wd - 1) * sw + dw * (kw - 1) + 1 + ew))
    for i in range(h):
        for j in range(wd):
            for p in range(kh):
                for q in range(kw):
                    full[:, :, i * sh + p * dh, j * sw + q * dw] += x[:, :, i, j] @ w[:, :, p, q]
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    return out if b is None else out + b[None, :, None, None]


def unfold_ref(x, kernel, stride, padding, dilation):
    """Columns (C*kh*kw, N*oh*ow) by direct indexing."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = out_len(h, kh, sh, ph, dh), out_len(w, kw, sw, pw, dw)
    cols = np.zeros((c, kh, kw, n, oh, ow))
    for p in range(kh):
        for q in range(kw):
            for i in range(oh):
                for j in range(ow):
                    cols[:, p, q, :, i, j] = xp[:, :, i * sh + p * dh, j * sw + q * dw].T
    return cols.reshape(c * kh * kw, n * oh * ow)


def pool_ref(x, kernel, stride, padding, reduce, pad_value):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    oh, ow = out_len(x.shape[2], kh, sh, ph, 1), out_len(x.shape[3], kw, sw, pw, 1)
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = reduce(xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(2, 3))
    return out


def log_softmax_ref(z, axis):
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def reduce_ref(loss, reduction):
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


# ---------------------------------------------------------------- drawn geometries


@st.composite
def conv_cases(draw, max_channels=2):
    """Input, weight and bias for a conv2d whose output is at least 1x1."""
    kernel, stride = draw(pairs(1, 3)), draw(pairs(1, 3))
    padding, dilation = draw(pairs(0, 2)), draw(pairs(1, 2))
    size = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        size.append(draw(st.integers(smallest, smallest + 3)))
    n, c, o = (draw(st.integers(1, 2)), draw(st.integers(1, max_channels)),
               draw(st.integers(1, max_channels)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = rng.standard_normal((n, c) + tuple(size))
    w = rng.standard_normal((o, c) + kernel)
    b = rng.standard_normal(o) if draw(st.booleans()) else None
    return x, w, b, stride, padding, dilation


@st.composite
def conv_transpose_cases(draw):
    kernel, stride = draw(pairs(1, 3)), draw(pairs(1, 3))
    dilation = draw(pairs(1, 2))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    size = draw(pairs(1, 3))
    padding = tuple(draw(st.integers(0, ((n - 1) * s + d * (k - 1) + e) // 2))
                    for n, s, d, k, e in zip(size, stride, dilation, kernel, output_padding))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = rng.standard_normal((n, c) + size)
    w = rng.standard_normal((c, o) + kernel)
    b = rng.standard_normal(o) if draw(st.booleans()) else None
    return x, w, b, stride, padding, output_padding, dilation


@st.composite
def pool_cases(draw):
    kernel = draw(pairs(1, 3))
    stride = draw(st.one_of(st.none(), pairs(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(draw(st.integers(k, k + 3)) for k in kernel)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    x = rng.standard_normal((draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size)
    return x, kernel, stride, padding


def conv_inputs(x, w, b):
    """The tensors a convolution takes, leaving out a bias the case has not drawn."""
    return [t64(x), t64(w)] + ([] if b is None else [t64(b)])


# ---------------------------------------------------------------- Unfold and Fold


@settings(max_examples=25)
@given(conv_cases())
def test_unfold_matches_direct_indexing(case):
    x, w, _, stride, padding, dilation = case
    cols = Unfold.apply(t64(x), kernel_size=w.shape[2:], stride=stride, padding=padding,
                        dilation=dilation)
    np.testing.assert_array_equal(cols.numpy(), unfold_ref(x, w.shape[2:], stride, padding,
                                                           dilation))


@settings(max_examples=25)
@given(conv_cases(), st.integers(0, 2 ** 16))
def test_fold_is_the_adjoint_of_unfold(case, seed):
    x, w, _, stride, padding, dilation = case
    params = dict(kernel_size=w.shape[2:], stride=stride, padding=padding, dilation=dilation)
    cols = Unfold.apply(t64(x), **params)
    c = np.random.default_rng(seed).standard_normal(cols.shape)
    folded = Fold.apply(t64(c), output_size=x.shape[2:], **params)
    assert folded.shape == x.shape
    np.testing.assert_allclose((cols.numpy() * c).sum(), (x * folded.numpy()).sum(), rtol=1e-10)


@settings(max_examples=25)
@given(conv_cases(max_channels=1))
def test_unfold_and_fold_gradients_of_first_and_second_order(case):
    x, w, _, stride, padding, dilation = case
    params = dict(kernel_size=w.shape[2:], stride=stride, padding=padding, dilation=dilation)

    def unfold(x):
        return Unfold.apply(x, **params)

    def fold(c):
        return Fold.apply(c, output_size=x.shape[2:], **params)

    cols = np.random.default_rng(0).standard_normal(unfold(t64(x)).shape)
    for fn, arg in ((unfold, x), (fold, cols)):
        assert_gradients(fn, [t64(arg)])


def test_fold_rejects_columns_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"do not fit output size \(4, 4\)"):
        Fold.apply(mg.zeros(9, 7), output_size=(4, 4), kernel_size=(3, 3), stride=(1, 1),
                   padding=(0, 0), dilation=(1, 1))


# ---------------------------------------------------------------- convolutions


@settings(max_examples=30)
@given(conv_cases())
def test_conv2d_matches_numpy_reference(case):
    x, w, b, stride, padding, dilation = case
    y = F.conv2d(*conv_inputs(x, w, b), stride=stride, padding=padding, dilation=dilation)
    np.testing.assert_allclose(y.numpy(), conv2d_ref(x, w, b, stride, padding, dilation),
                               rtol=1e-10, atol=1e-12)


@settings(max_examples=25)
@given(conv_cases())
def test_conv2d_gradients_of_first_and_second_order(case):
    x, w, b, stride, padding, dilation = case

    def conv(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation)

    assert_gradients(conv, conv_inputs(x, w, b))


@settings(max_examples=30)
@given(conv_transpose_cases())
def test_conv_transpose2d_matches_numpy_reference(case):
    x, w, b, stride, padding, output_padding, dilation = case
    y = F.conv_transpose2d(*conv_inputs(x, w, b), stride=stride, padding=padding,
                           output_padding=output_padding, dilation=dilation)
    ref = conv_transpose2d_ref(x, w, b, stride, padding, output_padding, dilation)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12)


@settings(max_examples=25)
@given(conv_transpose_cases())
def test_conv_transpose2d_gradients_of_first_and_second_order(case):
    x, w, b, *geometry = case

    def conv_t(x, w, b=None):
        return F.conv_transpose2d(x, w, b, *geometry)

    assert_gradients(conv_t, conv_inputs(x, w, b))


@settings(max_examples=20)
@given(conv_cases(), st.integers(0, 2 ** 16))
def test_conv_transpose2d_is_the_adjoint_of_conv2d_in_its_input(case, seed):
    x, w, _, stride, padding, dilation = case
    y = F.conv2d(t64(x), t64(w), None, stride, padding, dilation)
    v = np.random.default_rng(seed).standard_normal(y.shape)
    # the rows and columns that conv2d's last window never reached come back as output_padding
    extra = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, p, d, k, s in
                  zip(x.shape[2:], padding, dilation, w.shape[2:], stride))
    back = F.conv_transpose2d(t64(v), t64(w), None, stride, padding, extra, dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose((y.numpy() * v).sum(), (x * back.numpy()).sum(), rtol=1e-10)


@settings(max_examples=25)
@given(conv_cases())
def test_conv1d_matches_numpy_reference_and_has_second_derivatives(case):
    """conv1d on the last axis of a drawn 2-d case, against the height-1 conv2d reference."""
    x, w, b, stride, padding, dilation = case
    x, w = x[:, :, 0], w[:, :, 0]
    args = conv_inputs(x, w, b)

    def conv(x, w, b=None):
        return F.conv1d(x, w, b, stride[1], padding[1], dilation[1])

    ref = conv2d_ref(x[:, :, None], w[:, :, None], b, (1, stride[1]), (0, padding[1]),
                     (1, dilation[1]))[:, :, 0]
    np.testing.assert_allclose(conv(*args).numpy(), ref, rtol=1e-10, atol=1e-12)
    assert_gradients(conv, args)


def test_conv_errors_name_the_shapes():
    x = mg.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"conv2d: the weight \(4, 2, 3, 3\).* expects 2 input "
                       r"channels; the input \(1, 3, 8, 8\) has 3"):
        F.conv2d(x, mg.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="conv2d: expected input"):
        F.conv2d(mg.zeros(3, 8, 8), mg.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="spans"):
        F.conv2d(x, mg.zeros(4, 3, 5, 5), dilation=3)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv2d(x, mg.zeros(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(x, mg.zeros(3, 4, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: the weight \(4, 3, 3, 3\).* expects 4 input "
                       r"channels; the input \(1, 3, 8, 8\) has 3"):
        F.conv_transpose2d(x, mg.zeros(4, 3, 3, 3))


def test_wgan_gradient_penalty_differentiates_through_conv_twice():
    """d/dw of (|d critic / dx| - 1)^2: the double backward that WGAN-GP needs, checked
    against finite differences of the penalty itself."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 5, 5))
    w1, w2 = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((1, 2, 2, 2))

    def penalty(w1, w2):
        xs = t64(x, requires_grad=True)
        h = mg.tanh(F.conv2d(xs, w1, stride=1, padding=1))
        critic = F.conv2d(h, w2, stride=2).sum()
        (g,) = mg.grad(critic, xs, create_graph=True)
        norm = mg.sqrt((g * g).sum(axis=(1, 2, 3)))
        return ((norm - 1.0) ** 2).mean()

    assert mg.gradcheck(penalty, [t64(w1), t64(w2)])


# ---------------------------------------------------------------- pooling, upsampling


@settings(max_examples=30)
@given(pool_cases())
def test_pools_match_numpy_reference(case):
    x, kernel, stride, padding = case
    s = kernel if stride is None else stride
    np.testing.assert_allclose(F.avg_pool2d(t64(x), kernel, stride, padding).numpy(),
                               pool_ref(x, kernel, s, padding, np.mean, 0.0), rtol=1e-12)
    np.testing.assert_array_equal(F.max_pool2d(t64(x), kernel, stride, padding).numpy(),
                                  pool_ref(x, kernel, s, padding, np.max, -np.inf))


@settings(max_examples=25)
@given(pool_cases())
def test_pool_gradients_of_first_and_second_order(case):
    x, kernel, stride, padding = case
    for pool in (F.avg_pool2d, F.max_pool2d):
        def fn(x):
            return pool(x, kernel, stride, padding)

        assert_gradients(fn, [t64(x)])


def test_max_pool_sends_the_gradient_to_the_maximum():
    x = t64([[[[1.0, 5.0], [3.0, 2.0]]]], requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_pool_errors():
    with pytest.raises(ValueError, match="at most half the kernel"):
        F.max_pool2d(mg.zeros(1, 1, 4, 4), 2, padding=2)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        F.avg_pool2d(mg.zeros(1, 1, 2, 2), 3)


def test_upsample_nearest_repeats_pixels_and_sums_gradients():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 3))
    y = F.upsample_nearest(t64(x), 2)
    np.testing.assert_array_equal(y.numpy(), x.repeat(2, axis=2).repeat(2, axis=3))
    y = F.upsample_nearest(t64(x), (3, 1))
    np.testing.assert_array_equal(y.numpy(), x.repeat(3, axis=2))
    y1 = F.upsample_nearest(t64(x[:, :, 0]), 2)
    np.testing.assert_array_equal(y1.numpy(), x[:, :, 0].repeat(2, axis=2))
    assert_gradients(lambda x: F.upsample_nearest(x, (2, 3)), [t64(x)])
    with pytest.raises(ValueError, match="spatial axes"):
        F.upsample_nearest(t64(x), (2, 2, 2))


# ---------------------------------------------------------------- linear, dropout


def test_linear_matches_numpy_and_gradcheck():
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    np.testing.assert_allclose(F.linear(t64(x), t64(w), t64(b)).numpy(), x @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(F.linear(t64(x), t64(w)).numpy(), x @ w.T, rtol=1e-12)
    assert_gradients(F.linear, [t64(x), t64(w), t64(b)])
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3, 4\)"):
        F.linear(t64(x), t64(w.T))


def test_dropout_zeroes_a_fraction_p_and_keeps_the_mean():
    x = mg.ones(200, 500)
    y = F.dropout(x, 0.3, generator=mg.random.Generator(0)).numpy()
    assert abs((y == 0).mean() - 0.3) < 0.01
    np.testing.assert_allclose(y[y != 0], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.01
    assert y.dtype == np.float32


def test_dropout_is_reproducible_and_off_in_evaluation():
    x = mg.randn(10, 10)
    a = F.dropout(x, 0.5, generator=mg.random.Generator(7)).numpy()
    b = F.dropout(x, 0.5, generator=mg.random.Generator(7)).numpy()
    np.testing.assert_array_equal(a, b)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).numpy(), 0.0)
    mg.random.seed(3)
    c = F.dropout(x, 0.5).numpy()
    mg.random.seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), c)
    with pytest.raises(ValueError, match=r"dropout: p must be in \[0, 1\]"):
        F.dropout(x, 1.5)


def test_dropout_gradient_is_the_scaled_mask():
    x = mg.randn(50, 20, requires_grad=True)
    y = F.dropout(x, 0.25, generator=mg.random.Generator(1))
    y.sum().backward()
    kept = y.numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), kept / 0.75, rtol=1e-6)


# ---------------------------------------------------------------- normalisation


def layer_norm_ref(x, k, w, b, eps):
    axes = tuple(range(x.ndim - k, x.ndim))
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return y * w + b


def test_layer_norm_matches_numpy_and_has_second_derivatives():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4, 5)) * 3 + 1
    w, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    y = F.layer_norm(t64(x), (4, 5), t64(w), t64(b))
    np.testing.assert_allclose(y.numpy(), layer_norm_ref(x, 2, w, b, 1e-5), rtol=1e-10)
    y = F.layer_norm(t64(x), 5)
    np.testing.assert_allclose(y.numpy(), layer_norm_ref(x, 1, 1.0, 0.0, 1e-5), rtol=1e-10)
    small = [t64(x[:2, :2]), t64(w[0]), t64(b[0])]

    def ln(x, w, b):
        return F.layer_norm(x, 5, w, b)

    assert_gradients(ln, small)
    with pytest.raises(ValueError, match=r"normalized_shape \(4,\) must match"):
        F.layer_norm(t64(x), 4)


def batch_norm_train_ref(x, w, b, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + eps)
    return y * w.reshape(shape) + b.reshape(shape)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 4)])
def test_batch_norm_training_normalises_and_updates_running_stats(shape):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) * 2 + 3
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, 0.5])
    running_mean, running_var = t64(rm), t64(rv)
    y = F.batch_norm(t64(x), running_mean, running_var, t64(w), t64(b), training=True,
                     momentum=0.2)
    np.testing.assert_allclose(y.numpy(), batch_norm_train_ref(x, w, b, 1e-5), rtol=1e-10)
    axes = (0,) + tuple(range(2, x.ndim))
    np.testing.assert_allclose(running_mean.numpy(), 0.8 * rm + 0.2 * x.mean(axes), rtol=1e-12)
    np.testing.assert_allclose(running_var.numpy(), 0.8 * rv + 0.2 * x.var(axes, ddof=1),
                               rtol=1e-12)


def test_batch_norm_evaluation_uses_running_stats_and_leaves_them_alone():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3, 2, 2))
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    running_mean, running_var = t64(rm), t64(rv)
    y = F.batch_norm(t64(x), running_mean, running_var, training=False, eps=1e-3)
    ref = (x - rm[None, :, None, None]) / np.sqrt(rv[None, :, None, None] + 1e-3)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)
    np.testing.assert_array_equal(running_mean.numpy(), rm)
    np.testing.assert_array_equal(running_var.numpy(), rv)
    with pytest.raises(ValueError, match="needs running_mean"):
        F.batch_norm(t64(x), None, None)
    with pytest.raises(ValueError, match=r"running_mean has shape \(2,\), expected \(3,\)"):
        F.batch_norm(t64(x), t64(rm[:2]), running_var)


@pytest.mark.parametrize("shape", [(4, 2), (3, 2, 3), (2, 2, 2, 3)])
def test_batch_norm_training_gradients_of_first_and_second_order(shape):
    rng = np.random.default_rng(8)
    inputs = [t64(rng.standard_normal(shape)), t64(rng.standard_normal(2)),
              t64(rng.standard_normal(2))]

    def bn(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True)

    assert_gradients(bn, inputs)


# ---------------------------------------------------------------- embedding, one_hot


def test_embedding_picks_rows_and_scatters_gradients():
    rng = np.random.default_rng(9)
    w = t64(rng.standard_normal((5, 3)), requires_grad=True)
    idx = np.array([[0, 4], [4, 2]])
    y = F.embedding(idx, w)
    np.testing.assert_array_equal(y.numpy(), w.numpy()[idx])
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1, 0, 1, 0, 2])
    np.testing.assert_array_equal(F.embedding(mg.tensor(idx), w).numpy(), w.numpy()[idx])
    with pytest.raises(IndexError, match=r"embedding: indices must lie in \[0, 5\)"):
        F.embedding(np.array([5]), w)
    with pytest.raises(TypeError, match="must be integers"):
        F.embedding(np.array([1.0]), w)


def test_one_hot_is_a_float32_constant():
    y = F.one_hot(mg.tensor([[0, 2], [1, 1]]), 3)
    assert y.dtype == np.float32 and not y.requires_grad and y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y.numpy(), np.eye(3, dtype=np.float32)[[[0, 2], [1, 1]]])
    with pytest.raises(IndexError, match=r"one_hot: indices must lie in \[0, 3\)"):
        F.one_hot(np.array([3]), 3)


# ---------------------------------------------------------------- losses


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction):
    rng = np.random.default_rng(10)
    z, t = rng.standard_normal((3, 4)) * 3, rng.random((3, 4))
    p = 1 / (1 + np.exp(-z))
    ref = reduce_ref(-(t * np.log(p) + (1 - t) * np.log(1 - p)), reduction)
    y = F.binary_cross_entropy_with_logits(t64(z), t64(t), reduction)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10)
    fn = lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction)  # noqa: E731
    assert_gradients(fn, [t64(z), t64(t)])


def test_binary_cross_entropy_with_logits_is_finite_for_huge_logits():
    y = F.binary_cross_entropy_with_logits(mg.tensor([1000.0, -1000.0]), mg.tensor([0.0, 1.0]),
                                           reduction="none")
    np.testing.assert_allclose(y.numpy(), [1000.0, 1000.0])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
def test_cross_entropy_and_nll_loss(reduction, shape):
    rng = np.random.default_rng(11)
    z = rng.standard_normal(shape) * 2
    target = rng.integers(0, shape[1], shape[:1] + shape[2:])
    logp = log_softmax_ref(z, 1)
    picked = -np.take_along_axis(logp, target[:, None], axis=1)[:, 0]
    ref = reduce_ref(picked, reduction)
    np.testing.assert_allclose(F.cross_entropy(t64(z), target, reduction).numpy(), ref,
                               rtol=1e-10)
    np.testing.assert_allclose(F.nll_loss(t64(logp), mg.tensor(target), reduction).numpy(),
                               ref, rtol=1e-10)
    fn = lambda z: F.cross_entropy(z, target, reduction)  # noqa: E731
    assert_gradients(fn, [t64(z)])


def test_cross_entropy_is_finite_for_huge_logits():
    y = F.cross_entropy(mg.tensor([[1e4, 0.0, -1e4]]), np.array([2]))
    np.testing.assert_allclose(y.numpy(), 2e4, rtol=1e-6)


def test_class_losses_reject_bad_targets():
    z = mg.zeros(4, 3)
    with pytest.raises(IndexError, match=r"nll_loss: indices must lie in \[0, 3\)"):
        F.cross_entropy(z, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"target of shape \(3,\) does not fit"):
        F.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="must be integers"):
        F.nll_loss(z, np.zeros(4))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    np.testing.assert_allclose(F.mse_loss(t64(a), t64(b), reduction).numpy(),
                               reduce_ref((a - b) ** 2, reduction), rtol=1e-12)
    fn = lambda a, b: F.mse_loss(a, b, reduction)  # noqa: E731
    assert_gradients(fn, [t64(a), t64(b)])


@pytest.mark.parametrize("loss", [F.mse_loss, F.binary_cross_entropy_with_logits,
                                  F.cross_entropy, F.nll_loss])
def test_losses_reject_unknown_reductions(loss):
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\)"):
        loss(mg.zeros(2, 3), mg.zeros(2, 3) if loss in (F.mse_loss,
             F.binary_cross_entropy_with_logits) else np.array([0, 1]), reduction="average")


def test_kl_normal_matches_the_closed_form_and_a_monte_carlo_estimate():
    rng = np.random.default_rng(13)
    mq, lq, mp, lp = (rng.standard_normal(5) for _ in range(4))
    sq, sp = np.exp(lq / 2), np.exp(lp / 2)
    ref = np.log(sp / sq) + (sq ** 2 + (mq - mp) ** 2) / (2 * sp ** 2) - 0.5
    kl = F.kl_normal(t64(mq), t64(lq), t64(mp), t64(lp))
    np.testing.assert_allclose(kl.numpy(), ref, rtol=1e-10)
    standard = F.kl_normal(t64(mq), t64(lq))
    np.testing.assert_allclose(standard.numpy(), 0.5 * (np.exp(lq) + mq ** 2 - 1 - lq),
                               rtol=1e-10)
    z = mq[0] + sq[0] * rng.standard_normal(400_000)
    log_ratio = (-0.5 * ((z - mq[0]) / sq[0]) ** 2 - np.log(sq[0])
                 + 0.5 * ((z - mp[0]) / sp[0]) ** 2 + np.log(sp[0]))
    assert abs(log_ratio.mean() - ref[0]) < 5 * log_ratio.std() / np.sqrt(z.size)
    args = [t64(v) for v in (mq, lq, mp, lp)]
    assert_gradients(F.kl_normal, args)


# ---------------------------------------------------------------- parity with PyTorch


def test_convolutions_match_torch():
    torch = torch_or_skip()
    tf = torch.nn.functional
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 9, 8))
    b = rng.standard_normal(4)
    for stride, padding, dilation, output_padding in [
            (1, 0, 1, 0), (2, 1, 1, 1), ((2, 1), (1, 2), (2, 1), (1, 0)), (3, 2, 2, 2),
            (1, 1, 3, (2, 1))]:
        w = rng.standard_normal((4, 3, 3, 2))
        np.testing.assert_allclose(
            F.conv2d(t64(x), t64(w), t64(b), stride, padding, dilation).numpy(),
            tf.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), stride, padding,
                      dilation).numpy(), rtol=1e-10, atol=1e-12)
        wt = rng.standard_normal((3, 4, 3, 2))
        np.testing.assert_allclose(
            F.conv_transpose2d(t64(x), t64(wt), t64(b), stride, padding, output_padding,
                               dilation).numpy(),
            tf.conv_transpose2d(torch.tensor(x), torch.tensor(wt), torch.tensor(b), stride,
                                padding, output_padding, 1, dilation).numpy(),
            rtol=1e-10, atol=1e-12)
    x1, w1 = rng.standard_normal((2, 3, 10)), rng.standard_normal((4, 3, 3))
    np.testing.assert_allclose(
        F.conv1d(t64(x1), t64(w1), t64(b), 2, 1, 2).numpy(),
        tf.conv1d(torch.tensor(x1), torch.tensor(w1), torch.tensor(b), 2, 1, 2).numpy(),
        rtol=1e-10, atol=1e-12)


def test_conv_gradients_and_double_backward_match_torch():
    torch = torch_or_skip()
    tf = torch.nn.functional
    rng = np.random.default_rng(15)
    x, w = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((3, 2, 3, 3))
    wt = rng.standard_normal((3, 2, 4, 4))

    def mg_side():
        xs, ws, wts = t64(x, True), t64(w, True), t64(wt, True)
        y = F.conv2d(xs, ws, stride=2, padding=1, dilation=(1, 2))
        z = F.conv_transpose2d(mg.tanh(y), wts, stride=2, padding=1)
        (gx,) = mg.grad((z * z).sum(), xs, create_graph=True)
        return mg.grad((gx * gx).sum(), [ws, wts])

    def torch_side():
        xs, ws, wts = (torch.tensor(a, requires_grad=True) for a in (x, w, wt))
        y = tf.conv2d(xs, ws, stride=2, padding=1, dilation=(1, 2))
        z = tf.conv_transpose2d(torch.tanh(y), wts, stride=2, padding=1)
        (gx,) = torch.autograd.grad((z * z).sum(), xs, create_graph=True)
        return torch.autograd.grad((gx * gx).sum(), [ws, wts])

    for ours, theirs in zip(mg_side(), torch_side()):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-9, atol=1e-10)


def test_pools_and_upsampling_match_torch():
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = np.random.default_rng(16).standard_normal((2, 3, 7, 6))
    xt = torch.tensor(x)
    for kernel, stride, padding in [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))]:
        np.testing.assert_allclose(F.avg_pool2d(t64(x), kernel, stride, padding).numpy(),
                                   tf.avg_pool2d(xt, kernel, stride, padding).numpy(),
                                   rtol=1e-12)
        np.testing.assert_array_equal(F.max_pool2d(t64(x), kernel, stride, padding).numpy(),
                                      tf.max_pool2d(xt, kernel, stride, padding).numpy())
    np.testing.assert_array_equal(F.upsample_nearest(t64(x), 2).numpy(),
                                  tf.interpolate(xt, scale_factor=2, mode="nearest").numpy())


def test_norms_match_torch():
    torch = torch_or_skip()
    tf = torch.nn.functional
    rng = np.random.default_rng(17)
    x = rng.standard_normal((4, 3, 5, 2)) * 2 + 1
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = t64(np.zeros(3)), t64(np.ones(3))
    rmt, rvt = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    for training in (True, True, False):
        y = F.batch_norm(t64(x), rm, rv, t64(w), t64(b), training=training, momentum=0.3)
        yt = tf.batch_norm(torch.tensor(x), rmt, rvt, torch.tensor(w), torch.tensor(b),
                           training=training, momentum=0.3)
        np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rm.numpy(), rmt.numpy(), rtol=1e-12)
        np.testing.assert_allclose(rv.numpy(), rvt.numpy(), rtol=1e-12)
    lw, lb = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    np.testing.assert_allclose(
        F.layer_norm(t64(x), (5, 2), t64(lw), t64(lb)).numpy(),
        tf.layer_norm(torch.tensor(x), (5, 2), torch.tensor(lw), torch.tensor(lb)).numpy(),
        rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_match_torch(reduction):
    torch = torch_or_skip()
    tf = torch.nn.functional
    rng = np.random.default_rng(18)
    z, t = rng.standard_normal((4, 3, 2)), rng.random((4, 3, 2))
    target = rng.integers(0, 3, (4, 2))
    cases = [
        (F.binary_cross_entropy_with_logits(t64(z), t64(t), reduction),
         tf.binary_cross_entropy_with_logits(torch.tensor(z), torch.tensor(t),
                                             reduction=reduction)),
        (F.cross_entropy(t64(z), target, reduction),
         tf.cross_entropy(torch.tensor(z), torch.tensor(target), reduction=reduction)),
        (F.nll_loss(t64(z), target, reduction),
         tf.nll_loss(torch.tensor(z), torch.tensor(target), reduction=reduction)),
        (F.mse_loss(t64(z), t64(t), reduction),
         tf.mse_loss(torch.tensor(z), torch.tensor(t), reduction=reduction)),
    ]
    for ours, theirs in cases:
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_kl_normal_matches_torch_distributions():
    torch = torch_or_skip()
    rng = np.random.default_rng(19)
    mq, lq, mp, lp = (rng.standard_normal(6) for _ in range(4))
    Normal = torch.distributions.Normal
    ref = torch.distributions.kl_divergence(Normal(torch.tensor(mq), torch.tensor(np.exp(lq / 2))),
                                            Normal(torch.tensor(mp), torch.tensor(np.exp(lp / 2))))
    np.testing.assert_allclose(F.kl_normal(t64(mq), t64(lq), t64(mp), t64(lp)).numpy(),
                               ref.numpy(), rtol=1e-10)
