"""The CUDA attention kernels (kernels/attention/cuda.py) against the NumPy reference, on
the GPU: forward (out, lse) and backward (dq, dk, dv) where lengths are not multiples of the
tiles, for one query or key, T_q != T_k, causal or not, every padding of the head size (to
16, 32, 64 or 128), float32 and float64; the cases that fall back to the reference (a mask,
d > 128, d_v != d); inputs that are strided views or start off a 16-byte boundary; the
engine op on device tensors. Skipped without CuPy and a GPU."""
import numpy as np
import pytest

import minigen as mg
from cudacheck import close, cupy, needs_gpu, to_gpu
from minigen import backend
from minigen.kernels.attention import cuda, reference
from minigen.ops.attention import attention as attention_op

pytestmark = needs_gpu


def _arrays(b, h, tq, tk, d, dv=None, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in
            [(b, h, tq, d), (b, h, tk, d), (b, h, tk, dv or d), (b, h, tq, dv or d)]]


def _assert_matches(got, q, k, v, g, **params):
    """got = (out, lse, dq, dk, dv) from the device against the reference on the host, run
    in float64 so that a float32 comparison sees the kernel's rounding alone."""
    dtype = q.dtype
    q, k, v, g = (a.astype(np.float64) for a in (q, k, v, g))
    out, lse = reference.forward(q, k, v, **params)
    want = (out, lse) + tuple(reference.backward(q, k, v, out, lse, g, **params))
    for name, a, b in zip(["out", "lse", "dq", "dk", "dv"], got, want):
        assert a.shape == b.shape, name
        close(a, b.astype(dtype), dtype)


def _run(q, k, v, g, **params):
    """(out, lse, dq, dk, dv) from the CUDA kernels."""
    q, k, v, g = to_gpu(q, k, v, g)
    out, lse = cuda.forward(q, k, v, **params)
    return (out, lse) + tuple(cuda.backward(q, k, v, out, lse, g, **params))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tq, tk", [(1, 1), (1, 70), (70, 1), (64, 64), (65, 63), (63, 130),
                                    (130, 63), (200, 200)])
def test_lengths_against_the_reference(tq, tk, causal, dtype):
    arrays = _arrays(2, 3, tq, tk, 32, dtype=dtype, seed=tq * 1000 + tk)
    _assert_matches(_run(*arrays, causal=causal), *arrays, causal=causal)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [7, 16, 32, 33, 64, 100, 128])
def test_head_sizes_against_the_reference(d, dtype):
    """Each padding (to 16, 32, 64, 128 columns), with sizes that are not a multiple of the
    16-byte loads (7, 33: loaded a value at a time) and float64's 2 x 2 tiles (d > 64)."""
    arrays = _arrays(1, 2, 90, 75, d, dtype=dtype, seed=d)
    for params in (dict(causal=False), dict(causal=True, scale=0.3)):
        _assert_matches(_run(*arrays, **params), *arrays, **params)


@pytest.mark.parametrize("causal", [False, True])
def test_a_long_sequence_against_the_reference(causal):
    """Many tiles each way: the running maximum over 16 key tiles, dq summed from 16."""
    arrays = _arrays(2, 4, 1024, 1024, 64, seed=11)
    _assert_matches(_run(*arrays, causal=causal), *arrays, causal=causal)


def test_views_and_misaligned_starts():
    """q, k, v sliced from one (N, T, 3, H, d) array, as a Transformer makes them, and an
    output gradient that starts 4 bytes into its allocation."""
    cp = cupy()
    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((2, 70, 3, 2, 64)).astype(np.float32)
    g = rng.standard_normal((2, 2, 70, 64)).astype(np.float32)
    qkv_gpu = cp.asarray(qkv)
    views = [qkv_gpu[:, :, i].transpose(0, 2, 1, 3) for i in range(3)]
    g_gpu = cp.empty(g.size + 1, np.float32)[1:].reshape(g.shape)
    g_gpu[...] = cp.asarray(g)
    assert g_gpu.data.ptr % 16 != 0
    out, lse = cuda.forward(*views, causal=True)
    got = (out, lse) + tuple(cuda.backward(*views, out, lse, g_gpu, causal=True))
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    _assert_matches(got, q, k, v, g, causal=True)


def test_no_keys_gives_zeros_as_the_cpu_kernel_does():
    q, k, v, g = _arrays(1, 2, 5, 0, 16)
    out, lse, dq, dk, dv = (backend.to_numpy(a) for a in _run(q, k, v, g, causal=True))
    assert (out == 0).all() and np.isneginf(lse).all() and (dq == 0).all()
    assert dk.shape == k.shape and dv.shape == v.shape


@pytest.mark.parametrize("case", ["mask", "d > 128", "d_v != d"])
def test_what_the_kernels_do_not_take_goes_to_the_reference(case, monkeypatch):
    def no_kernel(*args):
        raise AssertionError("the CUDA kernel ran")

    monkeypatch.setattr(cuda, "_kernel", no_kernel)
    arrays = _arrays(1, 2, 12, 10, 160 if case == "d > 128" else 16,
                     dv=8 if case == "d_v != d" else None, seed=3)
    mask = None
    if case == "mask":
        mask = np.random.default_rng(4).random((12, 10)) < 0.6
        mask[2] = False  # a query that may attend nothing
    got = _run(*arrays, mask=None if mask is None else to_gpu(mask)[0])
    _assert_matches(got, *arrays, mask=mask)


def test_the_op_on_device_tensors_matches_the_host():
    """minigen's attention op on CUDA tensors, forward and gradients, against the same op on
    the host (the CPU kernel)."""
    q, k, v, g = _arrays(2, 2, 50, 50, 32, seed=8)
    results = []
    for device in ("cpu", "cuda"):
        ts = [mg.tensor(a, requires_grad=True, device=device) for a in (q, k, v)]
        out = attention_op(*ts, causal=True)
        (out * mg.tensor(g, device=device)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in ts])
    for got, want in zip(results[1], results[0]):
        close(got, want, np.float32)
