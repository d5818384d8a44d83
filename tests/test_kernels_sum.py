"""The float64-accumulated float32 sum: the Numba version equals its NumPy reference on
hypothesis-drawn shapes (size-1 and empty axes included) and axes, to float32 rounding of
two float64 sums; non-contiguous input, special values and the engine's Sum (value and
gradients, which sum back over broadcast axes through it) behave as the reference.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen import backend
from minigen.kernels import sum as sum_kernel


def assert_as_reference(x, axes, keepdims):
    got = sum_kernel.cpu.sum_axes(x, axes, keepdims)
    want = sum_kernel.reference.sum_axes(x, axes, keepdims)
    assert got.dtype == want.dtype == x.dtype and got.shape == want.shape
    # both sums are float64 (their difference a float64 rounding of the terms' size), each
    # then rounded once to float32
    scale = np.abs(x.astype(np.float64)).sum(axis=axes, keepdims=keepdims)
    tol = np.spacing(np.abs(want)).astype(np.float64) + 1e-12 * scale
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol), (x.shape, axes, keepdims)


@st.composite
def shapes_and_axes(draw):
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=6)))
    axes = tuple(i for i in range(len(shape)) if draw(st.booleans()))
    return shape, axes


@given(shapes_and_axes(), st.booleans(), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([1e-3, 1.0, 1e4]))
@settings(max_examples=200, deadline=None)
def test_cpu_matches_reference(shape_axes, keepdims, seed, spread):
    shape, axes = shape_axes
    x = np.asarray(spread * np.random.default_rng(seed).standard_normal(shape), np.float32)
    assert_as_reference(x, axes, keepdims)


@pytest.mark.parametrize("shape, axes", [
    ((128, 128, 4, 2, 4, 2), (3, 5)),  # nearest upsampling's gradient
    ((64, 32, 8, 8), (0, 2, 3)),  # a norm's scale, a conv's bias
    ((6400, 64), (0,)),  # a linear layer's bias
    ((3, 1, 50_000), (0, 1, 2)),  # one long sum
    ((2, 3, 4, 5, 6), (0, 2, 4)), ((2, 3, 4, 5, 6), (1, 3)), ((1, 1, 1), (0, 2)),
])
def test_the_shapes_it_serves(shape, axes):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for keepdims in (False, True):
        assert_as_reference(x, axes, keepdims)


def test_float64_accumulation():
    """A float32 accumulator would lose the 1s beside 2^24; both versions keep them."""
    x = np.ones((3, 40_000), np.float32)
    x[:, 0] = 2.0 ** 24
    for version in (sum_kernel.cpu, sum_kernel.reference):
        assert version.sum_axes(x, (1,))[0] == np.float32(2.0 ** 24 + 39_999)
        assert version.sum_axes(x.T.copy(), (0,))[0] == np.float32(2.0 ** 24 + 39_999)


def test_views_and_special_values_as_the_reference():
    x = np.random.default_rng(2).standard_normal((5, 6, 7)).astype(np.float32)
    for view in (x.transpose(2, 0, 1), x[:, ::2], np.broadcast_to(x[:1], (4, 6, 7))):
        for axes in [(0,), (1, 2), (0, 1, 2)]:
            np.testing.assert_array_equal(sum_kernel.cpu.sum_axes(view, axes),
                                          sum_kernel.reference.sum_axes(view, axes))
    y = np.array([[1.0, np.inf, 2.0], [np.nan, 1.0, 1.0], [np.inf, -np.inf, 0.0],
                  [3e38, 3e38, 0.0]], np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        for axes in [(1,), (0,), (0, 1)]:
            np.testing.assert_array_equal(sum_kernel.cpu.sum_axes(y, axes),
                                          sum_kernel.reference.sum_axes(y, axes))


def test_engine_sum_runs_on_it():
    """Tensor.sum of float32 picks the kernel; its value and the gradient of a broadcast
    add (summed back through Sum) are the reference's."""
    assert backend.kernel("sum", np.zeros(3, np.float32)) is sum_kernel.cpu
    assert backend.kernel("sum", np.zeros(3, np.float64)) is None
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal((8, 4, 3, 3)).astype(np.float32), requires_grad=True)
    b = mg.tensor(rng.standard_normal((1, 4, 1, 1)).astype(np.float32), requires_grad=True)
    g = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    y = x + b
    (gb,) = mg.grad((y * mg.tensor(g)).sum(), b)
    np.testing.assert_array_equal(
        gb.numpy(), sum_kernel.reference.sum_axes(g, (0, 2, 3), keepdims=True))
    np.testing.assert_array_equal(x.sum(axis=(0, 2)).numpy(),
                                  sum_kernel.reference.sum_axes(x.numpy(), (0, 2)))
