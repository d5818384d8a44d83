"""The add kernel: the Numba version equals NumPy's a + b bit for bit on hypothesis-drawn
shapes, dtypes and layouts (contiguous, broadcast, sliced, transposed), through its
parallel loop and its NumPy fallback; its (rows, columns) view is the array's own memory
where one exists; the engine adds two paths' gradients with it, and with create_graph
keeps the sum in the graph.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen import autograd
from minigen.kernels import add

from kernelcheck import patched


def layouts(a, rng):
    """a itself and views of other layouts with a's shape: broadcast along the axes after
    the first, sliced out of a larger array, transposed from the reversed shape."""
    yield a
    if a.ndim == 0:
        return
    yield np.broadcast_to(a[(slice(None),) + (slice(0, 1),) * (a.ndim - 1)], a.shape)
    big = rng.standard_normal([2 * n for n in a.shape]).astype(a.dtype)
    yield big[tuple(slice(None, None, 2) for _ in a.shape)]
    yield np.ascontiguousarray(a.transpose()).transpose()


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.integers(1, 7), min_size=0, max_size=4), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([1, 1 << 30]))
@settings(max_examples=60, deadline=None)
def test_cpu_matches_reference(dtype, shape, seed, parallel_min):
    rng = np.random.default_rng(seed)
    a, b = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    with patched(add.cpu, PARALLEL_MIN=parallel_min):  # 1: the parallel loop
        for x in layouts(a, rng):
            for y in layouts(b, rng):
                got, want = add.cpu.add(x, y), add.reference.add(x, y)
                assert got.dtype == want.dtype == dtype and got.shape == want.shape
                np.testing.assert_array_equal(got, want)


def test_special_values_pass_through():
    a = np.array([[np.inf, -np.inf, np.nan, 1.0], [np.inf, 0.0, -0.0, 3e38]], np.float32)
    b = np.array([[1.0, -np.inf, 0.0, np.nan], [-np.inf, -0.0, -0.0, 3e38]], np.float32)
    with patched(add.cpu, PARALLEL_MIN=1):
        got = add.cpu.add(a, b)
    np.testing.assert_array_equal(got, a + b)
    assert np.array_equal(np.signbit(got), np.signbit(a + b))


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data())
@settings(max_examples=60, deadline=None)
def test_rows_view_is_the_arrays_own_memory(shape, data):
    full = [2 * n for n in shape] + [2]
    a = np.arange(np.prod(full), dtype=np.float32).reshape(full)
    steps = data.draw(st.lists(st.integers(1, 2), min_size=a.ndim, max_size=a.ndim))
    view = a[tuple(slice(None, None, s) for s in steps)]
    rows = add.cpu.as_rows(view)
    if rows is None:  # then NumPy too must copy to make the (rows, columns) view
        assert not np.shares_memory(view.reshape(view.shape[0], -1), view)
        return
    assert rows.shape == (view.shape[0], view.size // view.shape[0])
    assert np.shares_memory(rows, view)
    np.testing.assert_array_equal(rows, view.reshape(rows.shape))


def test_mismatched_operands_are_refused():
    for module in (add.cpu, add.reference):
        with pytest.raises(ValueError, match="one shape and one dtype"):
            module.add(np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32))
        with pytest.raises(ValueError, match="one shape and one dtype"):
            module.add(np.zeros(3, np.float32), np.zeros(3, np.float64))


def test_backward_adds_two_paths_on_the_kernel(monkeypatch):
    calls = []
    kernel = add.cpu.add
    monkeypatch.setattr(add.cpu, "add", lambda a, b: calls.append(a.shape) or kernel(a, b))
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((64, 3, 16, 16)).astype(np.float32), requires_grad=True)
    s = mg.tensor(rng.standard_normal(64).astype(np.float32))
    (gx,) = mg.grad([(x * x).sum() + (x.sum(axis=(1, 2, 3)) * s).sum()], [x])
    want = 2 * x.numpy() + s.numpy().reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(gx.numpy(), want, rtol=1e-6)
    assert calls == [x.shape] * 2  # the two factors of x * x, then the second path


def test_create_graph_keeps_the_sum_differentiable():
    x = mg.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    (gx,) = mg.grad([(x * x * x).sum() + (x * x).sum()], [x], create_graph=True)
    assert gx.requires_grad  # 3 x^2 + 2 x, from two paths, still in the graph
    (ggx,) = mg.grad([gx.sum()], [x])
    np.testing.assert_allclose(ggx.numpy(), 6 * x.numpy() + 2)
    assert autograd.is_grad_enabled()
