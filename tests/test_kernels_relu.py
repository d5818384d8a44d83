"""The ReLU kernels: the Numba CPU version equals its plain NumPy reference exactly on
hypothesis-drawn shapes, dtypes and layouts, special values included (NaN kept forward;
NaN and inf in the gradient's g still show where x <= 0), and the engine op runs on it
with first and second derivatives.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen import backend
from minigen.kernels import relu


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.integers(1, 9), min_size=0, max_size=3), st.integers(0, 2 ** 32 - 1), st.booleans())
@settings(max_examples=50, deadline=None)
def test_cpu_matches_reference(dtype, shape, seed, transposed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape), dtype)
    g = np.asarray(rng.standard_normal(shape), dtype)
    if transposed:
        x, g = x.T, g.T
    if x.ndim:
        x[..., ::3] = 0  # the kink: its gradient is 0
    y, gx = relu.cpu.forward(x), relu.cpu.grad(g, x)
    want_y, want_gx = relu.reference.forward(x), relu.reference.grad(g, x)
    for got, want in [(y, want_y), (gx, want_gx)]:
        assert got.dtype == want.dtype == dtype and got.shape == want.shape == x.shape
        np.testing.assert_array_equal(got, want)


def test_special_values_as_the_reference():
    x = np.array([-np.inf, -1.0, -0.0, 0.0, 1e-40, 2.0, np.inf, np.nan, 3.0, -5.0],
                 np.float32)
    g = np.array([1.0, np.nan, np.inf, 2.0, 3.0, np.nan, 4.0, 5.0, -np.inf, 6.0],
                 np.float32)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(relu.cpu.forward(x), relu.reference.forward(x))
        np.testing.assert_array_equal(relu.cpu.grad(g, x), relu.reference.grad(g, x))
    assert np.isnan(relu.cpu.forward(x)[7])


def test_gradient_of_other_shape_or_dtype_takes_the_reference():
    x = np.array([[-1.0, 2.0]], np.float32)
    g = np.array([[3.0, 4.0]], np.float64)
    np.testing.assert_array_equal(relu.cpu.grad(g, x), [[0.0, 4.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_op_and_its_derivatives(dtype):
    """mg.relu: the value, the gradient (1 where x > 0) and the gradient's own gradient,
    linear in the incoming g: through a square, d/dx sum(relu(x)^2) = 2 relu(x) and its
    derivative 2 (x > 0). float16 takes the reference."""
    kernel = backend.kernel("relu", np.zeros(1, dtype))
    assert kernel is (None if dtype == np.float16 else relu.cpu)
    values = np.linspace(-3, 3, 13).astype(dtype) + dtype(0.125)
    x = mg.tensor(values, requires_grad=True)
    y = mg.relu(x)
    (dy,) = mg.grad((y * y).sum(), x, create_graph=True)
    (d2y,) = mg.grad(dy.sum(), x)
    positive = (values > 0).astype(dtype)
    for got, want in [(y, np.maximum(values, 0)), (dy, 2 * np.maximum(values, 0)),
                      (d2y, 2 * positive)]:
        assert got.dtype == dtype
        np.testing.assert_array_equal(got.numpy(), want)
