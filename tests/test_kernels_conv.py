"""The 2-d convolution kernels: conv2d (and conv_transpose2d, its input gradient) and
PixelCNN's masked conv2d.

Each CPU kernel equals its plain NumPy reference on hypothesis-drawn shapes, kernel sizes,
strides, paddings, dilations, masks and colour groups, with the threading and grouping
constants forced both ways. Tolerances: float64 to rounding; float32 scaled with the length
of the longest sum behind an entry. The reference itself is checked against a direct loop
and against PyTorch where it is installed. The engine ops pass gradcheck and gradgradcheck;
masked weights are never read (a NaN there changes nothing) and get exactly zero gradient;
a stack of masked convolutions sees only pixels before the output pixel in raster order,
with the blind spot of the PixelCNN paper.
"""
import contextlib

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import assume, given, settings

import minigen as mg
from minigen.kernels import conv2d, masked_conv2d, parallel
from minigen.ops.conv import conv2d as conv2d_op
from minigen.ops.conv import conv_transpose2d as conv_transpose2d_op
from minigen.ops.conv import masked_conv2d as masked_conv2d_op

from kernelcheck import assert_close, patched

DTYPES = st.sampled_from([np.float32, np.float64])
# (parallel.MIN_WORK, GROUP_COLUMNS): the defaults (tiny cases run in one thread, several
# images per product), every call in threads with one image per product, and in threads
# with as many images per product as a piece has
KNOBS = st.sampled_from([(parallel.MIN_WORK, 256), (0, 1), (0, 1 << 30)])


@contextlib.contextmanager
def knobs(values):
    """Set the kernels' threading threshold and conv2d.cpu's grouping for the duration."""
    min_work, group_columns = values
    with patched(parallel, MIN_WORK=min_work), patched(conv2d.cpu, GROUP_COLUMNS=group_columns):
        yield


def strided_copy(a):
    """The same values in an array that is not C-contiguous."""
    return np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)


# ---------------------------------------------------------------- conv2d kernels

@st.composite
def conv_cases(draw):
    dtype = draw(DTYPES)
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    out = conv2d.output_size(size, kernel, stride, padding, dilation)
    assume(min(out) >= 1)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in
                   [(n, c) + size, (o, c) + kernel, (o,), (n, o) + out])
    if draw(st.booleans()):
        x, gy = strided_copy(x), strided_copy(gy)
    params = dict(stride=stride, padding=padding, dilation=dilation)
    return (x, w, b if draw(st.booleans()) else None, gy), params


@given(conv_cases(), KNOBS)
@settings(max_examples=150)
def test_conv2d_cpu_matches_reference(case, knob_values):
    (x, w, b, gy), params = case
    c, kh, kw = w.shape[1:]
    n, o, oh, ow = gy.shape
    ref = conv2d.reference
    with knobs(knob_values):
        y = conv2d.cpu.forward(x, w, b, **params)
        gx = conv2d.cpu.grad_input(gy, w, x.shape[2:], **params)
        gw = conv2d.cpu.grad_weight(x, gy, (kh, kw), **params)
    assert_close(y, ref.forward(x, w, b, **params), c * kh * kw + 1, "y")
    assert_close(gx, ref.grad_input(gy, w, x.shape[2:], **params), o * kh * kw, "dx")
    assert_close(gw, ref.grad_weight(x, gy, (kh, kw), **params), n * oh * ow, "dw")


def test_conv2d_reference_is_the_definition():
    """The reference against the sum written out pixel by pixel, on one small case with
    every parameter different along the two axes."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    (sh, sw), (ph, pw), (dh, dw) = (2, 1), (1, 2), (1, 2)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = conv2d.output_size((7, 6), (3, 2), (sh, sw), (ph, pw), (dh, dw))
    want = np.zeros((2, 4, oh, ow))
    for n, o, p, q, c, i, j in np.ndindex(2, 4, oh, ow, 3, 3, 2):
        want[n, o, p, q] += w[o, c, i, j] * xpad[n, c, p * sh + i * dh, q * sw + j * dw]
    got = conv2d.reference.forward(x, w, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv2d_gradients_are_adjoints():
    """<gy, conv(x, w)> = <grad_input(gy, w), x> = <grad_weight(x, gy), w> for both kernels,
    with a stride that leaves the last input rows unread."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 8, 9)), rng.standard_normal((5, 3, 3, 3))
    params = dict(stride=(3, 2), padding=(0, 1), dilation=(1, 2))
    for kernel in (conv2d.cpu, conv2d.reference):
        y = kernel.forward(x, w, **params)
        gy = rng.standard_normal(y.shape)
        inner = np.vdot(gy, y)
        np.testing.assert_allclose(np.vdot(kernel.grad_input(gy, w, (8, 9), **params), x),
                                   inner, rtol=1e-12)
        np.testing.assert_allclose(np.vdot(kernel.grad_weight(x, gy, 3, **params), w),
                                   inner, rtol=1e-12)


# ---------------------------------------------------------------- masked conv2d kernels

@st.composite
def masked_cases(draw):
    dtype, groups = draw(DTYPES), draw(st.sampled_from([1, 1, 2, 3]))
    n = draw(st.integers(1, 3))
    c, o = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k, mask_type = draw(st.sampled_from([1, 3, 5, 7])), draw(st.sampled_from(["A", "B"]))
    size = (draw(st.integers(1, 10)), draw(st.integers(1, 10)))
    padding = draw(st.one_of(st.none(), st.integers(0, k)))
    out = conv2d.output_size(size, k, 1, k // 2 if padding is None else padding)
    assume(min(out) >= 1)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in
                   [(n, c) + size, (o, c, k, k), (o,), (n, o) + out])
    # a masked weight must never be read: a NaN there would spread to every output
    w[masked_conv2d.mask(o, c, k, mask_type, groups, dtype=bool) == 0] = np.nan
    params = dict(mask_type=mask_type, padding=padding, color_groups=groups)
    return (x, w, b if draw(st.booleans()) else None, gy), params


@given(masked_cases(), KNOBS)
@settings(max_examples=150)
def test_masked_conv2d_cpu_matches_reference(case, knob_values):
    (x, w, b, gy), params = case
    o, c, k = w.shape[:3]
    n, _, oh, ow = gy.shape
    keep = masked_conv2d.mask(o, c, k, params["mask_type"], params["color_groups"], bool)
    ref = masked_conv2d.reference
    with knobs(knob_values):
        y = masked_conv2d.cpu.forward(x, w, b, **params)
        gx = masked_conv2d.cpu.grad_input(gy, w, x.shape[2:], **params)
        gw = masked_conv2d.cpu.grad_weight(x, gy, k, **params)
    assert np.isfinite(y).all() and np.isfinite(gx).all()
    assert_close(y, ref.forward(x, w, b, **params), c * k * k + 1, "y")
    assert_close(gx, ref.grad_input(gy, w, x.shape[2:], **params), o * k * k, "dx")
    assert_close(gw, ref.grad_weight(x, gy, k, **params), n * oh * ow, "dw")
    assert (gw[~keep] == 0).all()


def test_mask_keeps_the_pixels_before_the_centre():
    m = masked_conv2d.mask(1, 1, 7, "A")[0, 0]
    assert m.sum() == 24 and masked_conv2d.mask(1, 1, 7, "B")[0, 0].sum() == 25
    np.testing.assert_array_equal(m[:3], 1)
    np.testing.assert_array_equal(m[3], [1, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(m[4:], 0)
    np.testing.assert_array_equal(masked_conv2d.mask(1, 1, 1, "A"), [[[[0]]]])
    np.testing.assert_array_equal(masked_conv2d.mask(1, 1, 1, "B"), [[[[1]]]])


def test_mask_colour_groups_at_the_centre():
    """R, G, B groups of two channels each: at the centre, type A lets G see R and B see R
    and G; type B lets each group see itself too. Everywhere else all pairs are kept."""
    groups_seen_a = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0]])
    for mask_type, seen in (("A", groups_seen_a), ("B", groups_seen_a + np.eye(3, dtype=int))):
        m = masked_conv2d.mask(6, 6, 3, mask_type, color_groups=3)
        np.testing.assert_array_equal(m[:, :, 1, 1], np.kron(seen, np.ones((2, 2))))
        np.testing.assert_array_equal(m[:, :, 0], 1)
        np.testing.assert_array_equal(m[:, :, 1, 0], 1)
        np.testing.assert_array_equal(m[:, :, 1, 2], 0)
        np.testing.assert_array_equal(m[:, :, 2], 0)


# ---------------------------------------------------------------- engine ops

def _leaves(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [mg.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("params", [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
])
def test_conv2d_gradcheck_and_gradgradcheck(params):
    x, w, b = _leaves(0, (2, 2, 5, 6), (3, 2, 3, 2), (3,))
    fn = lambda x, w, b: conv2d_op(x, w, b, **params)  # noqa: E731
    assert mg.gradcheck(fn, [x, w, b])
    assert mg.gradgradcheck(fn, [x, w, b])


@pytest.mark.parametrize("params", [
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(1, 2), padding=(0, 1), dilation=(2, 1)),
    dict(stride=1, output_padding=1, dilation=2),  # more windows than input pixels
])
def test_conv_transpose2d_gradcheck_and_gradgradcheck(params):
    x, w, b = _leaves(1, (2, 3, 3, 4), (3, 2, 3, 3), (2,))
    fn = lambda x, w, b: conv_transpose2d_op(x, w, b, **params)  # noqa: E731
    assert mg.gradcheck(fn, [x, w, b])
    assert mg.gradgradcheck(fn, [x, w, b])


@pytest.mark.parametrize("mask_type, k, groups", [("A", 3, 1), ("B", 3, 1), ("A", 3, 3),
                                                  ("B", 5, 3)])
def test_masked_conv2d_gradcheck_and_gradgradcheck(mask_type, k, groups):
    x, w, b = _leaves(2, (2, 3, 4, 5), (6, 3, k, k), (6,))
    fn = lambda x, w, b: masked_conv2d_op(x, w, b, mask_type, color_groups=groups)  # noqa
    assert mg.gradcheck(fn, [x, w, b])
    assert mg.gradgradcheck(fn, [x, w, b])


def test_conv2d_gradient_penalty_differentiates_the_gradient():
    """WGAN-GP: d/dw of |d critic / dx|^2 through two convolutions, against finite
    differences of the penalty itself."""
    x, w1, w2 = _leaves(3, (2, 2, 6, 6), (3, 2, 3, 3), (1, 3, 4, 4))

    def penalty(w1, w2):
        h = mg.tanh(conv2d_op(x, w1, padding=1))
        critic = conv2d_op(h, w2, stride=2).sum()
        (gx,) = mg.grad(critic, x, create_graph=True)
        return (gx * gx).sum()
    assert mg.gradcheck(penalty, [w1, w2])


@pytest.mark.parametrize("op, w_shape", [(conv2d_op, (3, 2, 4, 4)),
                                         (conv_transpose2d_op, (2, 3, 4, 4))])
def test_dcgan_windows_through_leaky_relu_to_second_order(op, w_shape):
    """The 4x4, stride 2, padding 1 windows of the DCGAN discriminator (conv2d) and
    generator (conv_transpose2d), followed by LeakyReLU(0.2) as in the networks: first and
    second derivatives with respect to the input and the weight (a WGAN-GP critic's
    penalty differentiates d critic / dx again with respect to w)."""
    x, w, b = _leaves(6, (2, 2, 6, 6), w_shape, (w_shape[1] if op is conv_transpose2d_op
                                                 else w_shape[0],))
    fn = lambda x, w, b: mg.leaky_relu(op(x, w, b, stride=2, padding=1), 0.2)  # noqa: E731
    assert mg.gradcheck(fn, [x, w, b])
    assert mg.gradgradcheck(fn, [x, w, b])


def test_gradient_penalty_through_the_dcgan_critic_layers():
    """The WGAN-GP penalty of a critic built like minigen's DCGAN critic (conv k4 s2 p1,
    LeakyReLU 0.2, conv k4 s2 p1, LeakyReLU 0.2, linear): its gradient with respect to
    every weight, a second derivative through both convolutions and both LeakyReLUs,
    against finite differences of the penalty."""
    x, w1, w2, head = _leaves(7, (2, 1, 8, 8), (3, 1, 4, 4), (4, 3, 4, 4), (16,))

    def penalty(w1, w2, head):
        xl = x.detach()
        xl.requires_grad = True
        h = mg.leaky_relu(conv2d_op(xl, w1, stride=2, padding=1), 0.2)
        h = mg.leaky_relu(conv2d_op(h, w2, stride=2, padding=1), 0.2)
        (gx,) = mg.grad((h.reshape(2, -1) @ head).sum(), xl, create_graph=True)
        norms = mg.sqrt((gx * gx).reshape(2, -1).sum(axis=1))
        return ((norms - 1.0) ** 2).mean()
    assert mg.gradcheck(penalty, [w1, w2, head])


@pytest.mark.parametrize("mask_type, groups", [("A", 1), ("B", 3)])
def test_masked_weights_get_exactly_zero_gradient(mask_type, groups):
    rng = np.random.default_rng(4)
    keep = masked_conv2d.mask(6, 3, 5, mask_type, groups, dtype=bool)
    w0 = rng.standard_normal((6, 3, 5, 5)).astype(np.float32)
    w0[~keep] = np.nan
    x = mg.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = mg.tensor(w0, requires_grad=True)
    y = masked_conv2d_op(x, w, mask_type=mask_type, color_groups=groups)
    gx, gw = mg.grad((y * y).sum(), [x, w])
    assert np.isfinite(y.numpy()).all() and np.isfinite(gx.numpy()).all()
    assert (gw.numpy()[~keep] == 0).all()
    assert (gw.numpy()[keep] != 0).all()


def test_masked_conv_stack_sees_only_the_past_with_a_blind_spot():
    """Type A 3x3 then two type B 3x3: output pixel (r, s) depends on input pixels strictly
    before it in raster order only, and not on all of them: each layer reaches at most one
    column further right per row up, so row r - j sees columns up to s + j only. The pixels
    above and to the right beyond that are the blind spot (van den Oord et al., 2016,
    "Conditional Image Generation with PixelCNN Decoders", figure 1)."""
    rng = np.random.default_rng(5)
    size, (r, s) = 10, (6, 4)
    x = mg.tensor(rng.standard_normal((1, 1, size, size)), requires_grad=True)
    ws = [mg.tensor(rng.uniform(0.5, 1.5, shape)) for shape in
          [(4, 1, 3, 3), (4, 4, 3, 3), (1, 4, 3, 3)]]
    h = mg.tanh(masked_conv2d_op(x, ws[0], mask_type="A"))
    h = mg.tanh(masked_conv2d_op(h, ws[1], mask_type="B"))
    y = masked_conv2d_op(h, ws[2], mask_type="B")
    (gx,) = mg.grad(y[0, 0, r, s], x)
    seen = gx.numpy()[0, 0] != 0
    before = np.arange(size * size).reshape(size, size) < r * size + s
    assert not (seen & ~before).any()
    reach = np.zeros((size, size), bool)  # the staircase: 3 rows up, 3 columns either way
    for i in range(size):
        for j in range(size):
            up, right = r - i, j - s
            reach[i, j] = (0 < up <= 3 and -3 <= right <= up) or (up == 0 and -3 <= right < 0)
    np.testing.assert_array_equal(seen, reach)
    assert not seen[r - 1, s + 2] and before[r - 1, s + 2]  # in the blind spot


def test_ops_match_torch():
    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install -e '.[bench]')")
    import torch.nn.functional as TF
    rng = np.random.default_rng(6)
    cases = [
        (conv2d_op, TF.conv2d, (2, 3, 7, 8), (4, 3, 3, 2),
         dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1))),
        (conv_transpose2d_op, TF.conv_transpose2d, (2, 3, 4, 5), (3, 4, 4, 4),
         dict(stride=2, padding=1, output_padding=1)),
    ]
    for ours, theirs, x_shape, w_shape, params in cases:
        x0, w0 = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        b0 = rng.standard_normal(w_shape[1] if ours is conv_transpose2d_op else w_shape[0])
        x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y, yt = ours(x, w, b, **params), theirs(xt, wt, bt, **params)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        g0 = rng.standard_normal(y.shape)
        for got, want in zip(mg.grad(y, [x, w, b], mg.tensor(g0)),
                             torch.autograd.grad(yt, [xt, wt, bt], torch.tensor(g0))):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mask_type, k, groups", [("A", 7, 1), ("B", 3, 1), ("A", 3, 3)])
def test_masked_conv2d_matches_torch_with_the_masked_weight(mask_type, k, groups):
    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install -e '.[bench]')")
    import torch.nn.functional as TF
    rng = np.random.default_rng(7)
    x0, w0 = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((6, 3, k, k))
    b0 = rng.standard_normal(6)
    m = masked_conv2d.mask(6, 3, k, mask_type, groups, dtype=np.float64)
    y = masked_conv2d_op(mg.tensor(x0), mg.tensor(w0), mg.tensor(b0), mask_type,
                         color_groups=groups)
    want = TF.conv2d(torch.tensor(x0), torch.tensor(w0 * m), torch.tensor(b0), padding=k // 2)
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-10, atol=1e-10)


def test_errors_name_the_op_and_shapes():
    x, w = mg.zeros((2, 3, 8, 8)), mg.zeros((4, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: the weight \(4, 2, 3, 3\), laid out \(O, C, "
                                         r"kh, kw\), expects 2 input channels; the input "
                                         r"\(2, 3, 8, 8\) has 3"):
        conv2d_op(x, w)
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, C, H, W\)"):
        conv2d_op(mg.zeros((3, 8, 8)), w)
    with pytest.raises(ValueError, match=r"conv2d: bias of shape \(3,\) for 4 output"):
        conv2d_op(x, mg.zeros((4, 3, 3, 3)), mg.zeros(3))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        conv2d_op(x, mg.zeros((4, 3, 3, 3)), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: the kernel spans \(9, 9\) pixels"):
        conv2d_op(x, mg.zeros((4, 3, 5, 5)), dilation=2)
    with pytest.raises(TypeError, match=r"conv2d: input, weight and bias need one dtype"):
        conv2d_op(x, mg.zeros((4, 3, 3, 3), dtype=np.float64))
    with pytest.raises(ValueError, match=r"conv_transpose2d: the weight \(4, 2, 3, 3\), laid "
                                         r"out \(C_in, C_out, kh, kw\), expects 4"):
        conv_transpose2d_op(x, w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\)"):
        conv_transpose2d_op(x, mg.zeros((3, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"masked_conv2d: mask_type must be 'A' or 'B'"):
        masked_conv2d_op(x, mg.zeros((4, 3, 3, 3)), mask_type="C")
    with pytest.raises(ValueError, match=r"masked_conv2d: the kernel must be square with an "
                                         r"odd size.*\(4, 3, 4, 4\)"):
        masked_conv2d_op(x, mg.zeros((4, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"masked_conv2d: color_groups=3 must .* divides the "
                                         r"input channels \(3\) and the output channels \(4\)"):
        masked_conv2d_op(x, mg.zeros((4, 3, 3, 3)), color_groups=3)


@pytest.mark.slow
@pytest.mark.parametrize("mask_type, k, c", [("A", 7, 1), ("B", 3, 64)])
def test_benchmark_shapes_match_reference(mask_type, k, c):
    """K1 and K2 at a quarter of their batch, float32, in threads with the default
    grouping."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, c, 28, 28), dtype=np.float32)
    w = rng.standard_normal((64, c, k, k), dtype=np.float32)
    gy = rng.standard_normal((8, 64, 28, 28), dtype=np.float32)
    cpu, ref = masked_conv2d.cpu, masked_conv2d.reference
    assert_close(cpu.forward(x, w, None, mask_type), ref.forward(x, w, None, mask_type),
                 c * k * k, "y")
    assert_close(cpu.grad_input(gy, w, (28, 28), mask_type),
                 ref.grad_input(gy, w, (28, 28), mask_type), 64 * k * k, "dx")
    assert_close(cpu.grad_weight(x, gy, k, mask_type), ref.grad_weight(x, gy, k, mask_type),
                 8 * 28 * 28, "dw")
