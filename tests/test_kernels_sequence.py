"""The sequence kernels: causal dilated conv1d (WaveNet) and softmax attention.

Each CPU kernel equals its plain NumPy reference on hypothesis-drawn shapes, kernel sizes,
dilations, shifts, causal flags and masks, including queries that may attend nothing.
Tolerances: float64 to rounding; float32 scaled with the length of the longest sum behind an
entry. The engine ops pass gradcheck (and gradgradcheck: conv to any order, attention
through its plain-op second derivative), the conv sees only the past, attention agrees with
PyTorch where it is installed, and the online softmax never holds a T x T matrix.
"""
import tracemalloc

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen.kernels import attention, causal_conv1d, parallel
from minigen.ops.attention import attention as attention_op
from minigen.ops.causal import causal_conv1d as causal_conv1d_op

from kernelcheck import assert_close, patched

DTYPES = st.sampled_from([np.float32, np.float64])


# ---------------------------------------------------------------- causal conv1d kernels

@st.composite
def conv_cases(draw):
    dtype = draw(DTYPES)
    n, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    length, k = draw(st.integers(1, 40)), draw(st.integers(1, 4))
    dilation = draw(st.integers(1, 12))  # often so long that some taps miss the sequence
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    arrays = [rng.standard_normal(s).astype(dtype) for s in
              [(n, c_in, length), (c_out, c_in, k), (c_out,), (n, c_out, length)]]
    return arrays, dict(dilation=dilation, shift=draw(st.booleans())), draw(st.booleans())


@given(conv_cases(), st.sampled_from([1 << 20, 64]), st.sampled_from([0, 1 << 23]))
@settings(max_examples=150)
def test_conv_cpu_matches_reference(case, chunk_bytes, min_work):
    (x, w, b, gy), params, with_bias = case
    b = b if with_bias else None
    n, c_in, length = x.shape
    c_out, _, k = w.shape
    # CHUNK_BYTES 64: one sample per chunk; MIN_WORK 0: chunks in threads however small
    with patched(causal_conv1d.cpu, CHUNK_BYTES=chunk_bytes), \
            patched(parallel, MIN_WORK=min_work):
        assert_close(causal_conv1d.cpu.forward(x, w, b, **params),
                     causal_conv1d.reference.forward(x, w, b, **params), c_in * k + 1, "y")
        assert_close(causal_conv1d.cpu.grad_input(gy, w, **params),
                     causal_conv1d.reference.grad_input(gy, w, **params), c_out * k, "dx")
        assert_close(causal_conv1d.cpu.grad_weight(x, gy, k, **params),
                     causal_conv1d.reference.grad_weight(x, gy, k, **params), n * length,
                     "dw")


def test_conv_reference_by_hand():
    """The reference itself, on numbers worked out by hand: k = 2, dilation 2."""
    x = np.arange(1.0, 7.0).reshape(1, 1, 6)            # 1 2 3 4 5 6
    w = np.array([[[10.0, 1.0]]])                       # 10 * x[t - 2] + 1 * x[t]
    y = causal_conv1d.reference.forward(x, w, dilation=2)
    np.testing.assert_array_equal(y[0, 0], [1, 2, 13, 24, 35, 46])
    y = causal_conv1d.reference.forward(x, w, dilation=2, shift=True)  # everything 1 later
    np.testing.assert_array_equal(y[0, 0], [0, 1, 2, 13, 24, 35])


# ---------------------------------------------------------------- causal conv1d op

def _conv_inputs(seed, n=2, c_in=3, c_out=2, length=7, k=3):
    rng = np.random.default_rng(seed)
    return [mg.tensor(rng.standard_normal(s), requires_grad=True)
            for s in [(n, c_in, length), (c_out, c_in, k), (c_out,)]]


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("dilation", [1, 2, 5])
def test_conv_gradcheck_and_gradgradcheck(shift, dilation):
    x, w, b = _conv_inputs(dilation)
    fn = lambda x, w, b: causal_conv1d_op(x, w, b, dilation=dilation, shift=shift)  # noqa: E731
    assert mg.gradcheck(fn, [x, w, b])
    assert mg.gradgradcheck(fn, [x, w, b])


def test_conv_third_derivative():
    """The three conv Functions are each other's backward, so any order is exact: here
    d/dx of d/dw of d/dx of sum(y^3) against finite differences of the second."""
    x, w, _ = _conv_inputs(0, n=1, c_in=2, c_out=2, length=5, k=2)

    def second(x):
        y = causal_conv1d_op(x, w, dilation=2)
        (gx,) = mg.grad((y * y * y).sum(), x, create_graph=True)
        (gw,) = mg.grad((gx * gx).sum(), w, create_graph=True)
        return gw
    assert mg.gradcheck(second, [x])


@pytest.mark.parametrize("shift", [False, True])
def test_conv_sees_only_the_past(shift):
    """d y[:, :, t] / d x is zero at every step > t (>= t with shift), and non-zero exactly
    at the taps: t - (k - 1 - j) * dilation - shift."""
    length, k, dilation = 20, 3, 3
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((1, 2, length)), requires_grad=True)
    w = mg.tensor(rng.uniform(0.5, 1.5, (2, 2, k)))  # no tap weight near zero
    y = causal_conv1d_op(x, w, dilation=dilation, shift=shift)
    for t in range(length):
        (gx,) = mg.grad(y[0, :, t].sum(), x, retain_graph=True)
        hit = np.flatnonzero(np.abs(gx.numpy()).sum(axis=(0, 1)))
        taps = [t - (k - 1 - j) * dilation - shift for j in range(k)]
        assert hit.tolist() == sorted(s for s in taps if s >= 0), t
        assert hit.max(initial=-1) < t if shift else hit.max(initial=-1) <= t


def test_conv_stack_receptive_field():
    """A WaveNet stack, a shifted layer (offsets 1, 2) then dilations 1, 2, 4 (offsets 0 ..
    7 together): output t depends on exactly the steps t - 9 .. t - 1."""
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((1, 2, 24)), requires_grad=True)
    ws = [mg.tensor(rng.uniform(0.5, 1.5, (2, 2, 2))) for _ in range(4)]
    h = causal_conv1d_op(x, ws[0], dilation=1, shift=True)
    for w, d in zip(ws[1:], [1, 2, 4]):
        h = mg.tanh(causal_conv1d_op(h, w, dilation=d))
    t = 20
    (gx,) = mg.grad(h[0, :, t].sum(), x)
    hit = np.flatnonzero(np.abs(gx.numpy()).sum(axis=(0, 1)))
    assert hit.tolist() == list(range(t - 9, t))


def test_conv_errors_name_the_op_and_shapes():
    x, w = mg.zeros((2, 3, 5)), mg.zeros((4, 2, 2))
    with pytest.raises(ValueError, match=r"causal_conv1d.*\(4, 2, 2\).*\(2, 3, 5\)"):
        causal_conv1d_op(x, w)
    with pytest.raises(ValueError, match=r"causal_conv1d.*\(N, C_in, T\)"):
        causal_conv1d_op(mg.zeros((3, 5)), w)
    with pytest.raises(ValueError, match=r"causal_conv1d: bias of shape \(3,\)"):
        causal_conv1d_op(x, mg.zeros((4, 3, 2)), mg.zeros(3))
    with pytest.raises(ValueError, match="causal_conv1d: dilation"):
        causal_conv1d_op(x, mg.zeros((4, 3, 2)), dilation=0)


# ---------------------------------------------------------------- attention kernels

@st.composite
def attention_cases(draw):
    dtype = draw(DTYPES)
    b, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    tq, tk = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    d, dv = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    arrays = [rng.standard_normal(s).astype(dtype) for s in
              [(b, h, tq, d), (b, h, tk, d), (b, h, tk, dv), (b, h, tq, dv)]]
    mask_shape = draw(st.sampled_from([None, (tq, tk), (b, 1, 1, tk), (1, h, tq, tk),
                                       (b, h, tq, tk), (tq, 1)]))
    mask = None
    if mask_shape is not None:
        mask = rng.random(mask_shape) < draw(st.sampled_from([0.1, 0.5, 0.9]))
        if draw(st.booleans()):
            mask[..., 0, :] = False  # a query that may attend nothing
    params = dict(causal=draw(st.booleans()), mask=mask,
                  scale=draw(st.sampled_from([None, 0.3])))
    blocks = dict(BLOCK_Q=draw(st.sampled_from([1, 3, 8, 128])),
                  BLOCK_K=draw(st.sampled_from([1, 5, 8, 128])),
                  CHUNK_HEADS=draw(st.sampled_from([1, 3, 32])))
    return arrays, params, blocks, draw(st.sampled_from([0, 1 << 23]))


def assert_attention_matches_reference(q, k, v, g, **params):
    """The CPU kernel's out, lse and gradients (for the output gradient g) against the
    reference's: -inf lse (queries that may attend nothing) in the same places."""
    out, lse = attention.cpu.forward(q, k, v, **params)
    grads = attention.cpu.backward(q, k, v, out, lse, g, **params)
    want_out, want_lse = attention.reference.forward(q, k, v, **params)
    want_grads = attention.reference.backward(q, k, v, want_out, want_lse, g, **params)
    tq, tk, d = q.shape[2], k.shape[2], q.shape[3]
    assert_close(out, want_out, tk + d, "out")
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(want_lse))
    finite = np.isfinite(want_lse)
    assert_close(lse[finite], want_lse[finite], tk + d, "lse")
    for name, got, want in zip(["dq", "dk", "dv"], grads, want_grads):
        assert_close(got, want, tq + tk + d, name)


@given(attention_cases())
@settings(max_examples=200)
def test_attention_cpu_matches_reference(case):
    (q, k, v, g), params, blocks, min_work = case
    with patched(attention.cpu, **blocks), patched(parallel, MIN_WORK=min_work):
        assert_attention_matches_reference(q, k, v, g, **params)


def test_attention_fully_masked_rows_give_zero_not_nan():
    rng = np.random.default_rng(3)
    q, k, v, g = (rng.standard_normal((2, 2, 6, 4)) for _ in range(4))
    mask = np.ones((6, 6), bool)
    mask[2] = False
    for kernel in (attention.cpu, attention.reference):
        out, lse = kernel.forward(q, k, v, causal=True, mask=mask)
        dq, dk, dv = kernel.backward(q, k, v, out, lse, g, causal=True, mask=mask)
        assert not any(np.isnan(a).any() for a in (out, lse, dq, dk, dv))
        np.testing.assert_array_equal(out[:, :, 2], 0)
        assert np.isneginf(lse[:, :, 2]).all() and np.isfinite(np.delete(lse, 2, 2)).all()
        np.testing.assert_array_equal(dq[:, :, 2], 0)
        assert np.abs(out[:, :, 3]).sum() > 0
    out, _ = attention.cpu.forward(q, k, v, mask=np.zeros((6, 6), bool))
    np.testing.assert_array_equal(out, 0)


def test_attention_reference_matches_the_softmax_formula():
    """The reference against softmax(q k^T / sqrt(d)) v written out, with the causal mask."""
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((1, 1, 5, 3)) for _ in range(3))
    s = q[0, 0] @ k[0, 0].T / np.sqrt(3)
    s[np.triu_indices(5, 1)] = -np.inf
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    out, lse = attention.reference.forward(q, k, v, causal=True)
    np.testing.assert_allclose(out[0, 0], p @ v[0, 0], rtol=1e-12)
    np.testing.assert_allclose(lse[0, 0], np.log(np.exp(s).sum(axis=1)), rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_threads_split_batch_or_heads(causal):
    """Enough work for the threaded path, split over the batch and over heads (batch 1)."""
    rng = np.random.default_rng(5)
    for shape in [(4, 2, 96, 16), (1, 4, 96, 16)]:
        q, k, v, g = (rng.standard_normal(shape).astype(np.float32) for _ in range(4))
        mask = rng.random((shape[0], 1, 96, 96)) < 0.7
        with patched(attention.cpu, BLOCK_Q=32, BLOCK_K=64), \
                patched(parallel, MIN_WORK=0):
            assert_attention_matches_reference(q, k, v, g, causal=causal, mask=mask)


def test_attention_takes_strided_views_as_a_transformer_makes_them():
    """q, k, v sliced from one (N, T, 3, H, d) array and the output gradient transposed from
    (N, T, H, d), in runs of one batch entry of heads, as the reference computes them."""
    rng = np.random.default_rng(7)
    qkv = rng.standard_normal((3, 40, 3, 2, 8)).astype(np.float32)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    g = rng.standard_normal((3, 40, 2, 8)).astype(np.float32).transpose(0, 2, 1, 3)
    with patched(attention.cpu, BLOCK_Q=8, BLOCK_K=16, CHUNK_HEADS=2), \
            patched(parallel, MIN_WORK=0):
        assert_attention_matches_reference(q, k, v, g, causal=True)


def _peak_bytes(t, causal, mask, d=32):
    rng = np.random.default_rng(6)
    q, k, v, g = (rng.standard_normal((1, 1, t, d)).astype(np.float32) for _ in range(4))
    mask = None if mask is None else rng.random((t, t)) < mask
    tracemalloc.start()
    try:
        out, lse = attention.cpu.forward(q, k, v, causal=causal, mask=mask)
        attention.cpu.backward(q, k, v, out, lse, g, causal=causal, mask=mask)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("causal, mask", [(False, None), (True, None), (True, 0.5)])
def test_attention_memory_grows_with_t_not_t_squared(causal, mask):
    """One head, forward and backward: at T = 4096 one float64 T x T matrix would be 128 MiB;
    the peak must stay under a sixteenth of that, and doubling T must not quadruple it."""
    peak = _peak_bytes(4096, causal, mask)
    assert peak < 4096 * 4096 * 8 / 16, f"peak {peak / 2 ** 20:.1f} MiB at T = 4096"
    assert peak < 3 * _peak_bytes(2048, causal, mask), "peak memory grows faster than T"


# ---------------------------------------------------------------- attention op

def _attention_inputs(seed, b=1, h=2, tq=4, tk=5, d=3, dv=2):
    rng = np.random.default_rng(seed)
    return [mg.tensor(rng.standard_normal(s), requires_grad=True)
            for s in [(b, h, tq, d), (b, h, tk, d), (b, h, tk, dv)]]


ATTENTION_CASES = {
    "plain": dict(),
    "causal": dict(causal=True),
    "mask": dict(mask=np.random.default_rng(7).random((4, 5)) < 0.6),
    "causal, a masked-out query, scale": dict(
        causal=True, mask=np.array([[1, 1, 0, 1, 1]] * 2 + [[0] * 5] + [[1] * 5], bool),
        scale=0.7),
}


@pytest.mark.parametrize("name", list(ATTENTION_CASES))
def test_attention_gradcheck_and_gradgradcheck(name):
    params = ATTENTION_CASES[name]
    fn = lambda q, k, v: attention_op(q, k, v, **params)  # noqa: E731
    inputs = _attention_inputs(8)
    assert mg.gradcheck(fn, inputs)
    assert mg.gradgradcheck(fn, inputs)


def test_attention_self_attention_gradients():
    """One tensor as q, k and v: its gradient counts all three uses, once each."""
    (x,) = _attention_inputs(9)[:1]
    fn = lambda x: attention_op(x, x, x, causal=True)  # noqa: E731
    assert mg.gradcheck(fn, [x])
    assert mg.gradgradcheck(fn, [x])


def test_attention_gradient_of_a_gradient_penalty():
    """Second order where the output gradient depends on the inputs (g = 3 out^2), as in a
    gradient penalty: each input's share must be counted once, not again through g."""
    q, k, v = _attention_inputs(12)

    def penalty_gradient(q, k, v):
        out = attention_op(q, k, v, causal=True)
        (gq,) = mg.grad((out * out * out).sum(), q, create_graph=True)
        return gq
    assert mg.gradcheck(penalty_gradient, [q, k, v])


def test_attention_third_derivative():
    """Self-attention, third order: d/dx of d/dx (sum (d/dx sum out^3)^3)."""
    (x,) = _attention_inputs(13, tq=3, tk=3, d=2, dv=2)[:1]

    def second(x):
        out = attention_op(x, x, x, causal=True)
        (g1,) = mg.grad((out * out * out).sum(), x, create_graph=True)
        (g2,) = mg.grad((g1 * g1 * g1).sum(), x, create_graph=True)
        return g2
    assert mg.gradcheck(second, [x])


def test_attention_op_float32():
    q, k, v = (mg.tensor(a.numpy().astype(np.float32)) for a in _attention_inputs(10))
    out = attention_op(q, k, v, causal=True)
    want, _ = attention.reference.forward(q.data, k.data, v.data, causal=True)
    assert out.dtype == np.float32
    assert_close(out.numpy(), want, 8, "out")


def test_attention_errors_name_the_op_and_shapes():
    q, k, v = _attention_inputs(11)
    with pytest.raises(ValueError, match=r"attention: q \(1, 2, 4, 3\), k \(1, 2, 5, 3\), "
                                         r"v \(1, 2, 4, 2\)"):
        attention_op(q, k, q[..., :2])
    with pytest.raises(ValueError, match=r"attention: expected q of shape"):
        attention_op(q[0], k, v)
    with pytest.raises(ValueError, match=r"attention: mask of shape \(4, 4\)"):
        attention_op(q, k, v, mask=np.ones((4, 4), bool))
    with pytest.raises(TypeError, match="attention: mask must be boolean"):
        attention_op(q, k, v, mask=np.ones((4, 5)))


# ---------------------------------------------------------------- against PyTorch

@pytest.mark.parametrize("case", ["causal", "mask", "causal, t_q < t_k, scale"])
def test_attention_matches_torch(case):
    torch = pytest.importorskip("torch", reason="needs PyTorch (pip install -e '.[bench]')")
    rng = np.random.default_rng(12)
    tq, tk = (6, 9) if "t_q < t_k" in case else (9, 9)
    q, k, v = (rng.standard_normal((2, 3, t, 4)) for t in (tq, tk, tk))
    g = rng.standard_normal((2, 3, tq, 4))
    mask = None
    if case == "mask":
        mask = rng.random((2, 1, tq, tk)) < 0.5
        mask[..., 0] = True  # PyTorch gives nan for a query that may attend nothing
    causal, scale = "causal" in case, 0.45 if "scale" in case else None
    ours = [mg.tensor(a, requires_grad=True) for a in (q, k, v)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = attention_op(*ours, causal=causal, mask=mask, scale=scale)
    out_t = torch.nn.functional.scaled_dot_product_attention(
        *theirs, attn_mask=None if mask is None else torch.tensor(mask), is_causal=causal,
        scale=scale)
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    grads = mg.grad(out, ours, grad_outputs=mg.tensor(g))
    grads_t = torch.autograd.grad(out_t, theirs, torch.tensor(g))
    for name, a, b in zip("qkv", grads, grads_t):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"d{name}")


# ---------------------------------------------------------------- benchmark shapes

@pytest.mark.slow
@pytest.mark.parametrize("dilation", [1, 512])
def test_conv_k3_shape_matches_reference(dilation):
    rng = np.random.default_rng(13)
    x, gy = (rng.standard_normal((16, 64, 4096), dtype=np.float32) for _ in range(2))
    w = rng.standard_normal((64, 64, 2), dtype=np.float32)
    b = rng.standard_normal(64, dtype=np.float32)
    for name, args, terms in [("forward", (x, w, b), 129), ("grad_input", (gy, w), 128),
                              ("grad_weight", (x, gy, 2), 16 * 4096)]:
        assert_close(getattr(causal_conv1d.cpu, name)(*args, dilation=dilation),
                     getattr(causal_conv1d.reference, name)(*args, dilation=dilation),
                     terms, name)


@pytest.mark.slow
def test_attention_k4_shape_matches_reference():
    rng = np.random.default_rng(14)
    q, k, v, g = (rng.standard_normal((8, 4, 1024, 32), dtype=np.float32) for _ in range(4))
    assert_attention_matches_reference(q, k, v, g, causal=True)
