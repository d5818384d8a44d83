"""The sigmoid kernels: the Numba CPU version equals its reference (scipy's expit) on
hypothesis-drawn shapes and values (float64 exactly, the reference itself; float32 to the accuracy cpu.py states, measured
here on a dense sweep of the range), special values pass through as in the reference, and
the engine op runs on it with first and second derivatives.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings

import minigen as mg
from minigen import backend
from minigen.kernels import sigmoid

NORMAL_FROM = -87.0  # below it exp(-|x|) is a subnormal float32 (cpu.py)
TINY = np.finfo(np.float32).smallest_subnormal


def assert_accuracy(x, got, ulps):
    """Within `ulps` ulps of the float64 sigmoid where x >= NORMAL_FROM; below, within the
    smallest subnormal (the rounding of exp(-|x|) to a subnormal)."""
    want = scipy.special.expit(x.astype(np.float64))
    err = np.abs(got.astype(np.float64) - want)
    spacing = np.spacing(want.astype(np.float32)).astype(np.float64)
    normal = x >= NORMAL_FROM
    bad = normal & ~(err <= ulps * spacing) | ~normal & ~(err <= TINY)
    bad &= ~(got == want) & ~(np.isnan(got) & np.isnan(want))
    assert not bad.any(), (f"{bad.sum()} of {bad.size} entries off, first at x = "
                           f"{x[bad][0]}: {got[bad][0]} vs {want[bad][0]}")


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.integers(1, 9), min_size=0, max_size=3),
       st.sampled_from([0.01, 1.0, 10.0, 60.0]), st.integers(0, 2 ** 32 - 1))
@settings(max_examples=50, deadline=None)
def test_cpu_matches_reference(dtype, shape, spread, seed):
    x = np.asarray(spread * np.random.default_rng(seed).standard_normal(shape), dtype)
    y = sigmoid.cpu.forward(x)
    want = sigmoid.reference.forward(x)
    assert y.dtype == want.dtype == dtype and y.shape == want.shape == x.shape
    if dtype == np.float64:
        np.testing.assert_array_equal(y, want)
    else:
        assert_accuracy(x, y, 3)


def test_float32_accuracy_over_its_range():
    """cpu.py's stated accuracy on every 2^-8 step of [-110, 20] (where the sigmoid is
    neither 0 nor 1) and on a million random points."""
    x = np.concatenate([np.arange(-110, 20, 2 ** -8),
                        np.random.default_rng(0).standard_normal(1_000_000) * 20])
    x = x.astype(np.float32)
    assert_accuracy(x, sigmoid.cpu.forward(x), 3)


def test_special_values_as_the_reference():
    x = np.array([-np.inf, -1e30, -1e4, -200, -104.5, 0.0, -0.0, 1e-30, 17, 1e4, 3e38,
                  np.inf, np.nan], np.float32)
    np.testing.assert_array_equal(sigmoid.cpu.forward(x), sigmoid.reference.forward(x))


def test_non_contiguous_input_and_bad_input():
    x = np.random.default_rng(1).standard_normal((40, 30)).astype(np.float32).T
    np.testing.assert_allclose(sigmoid.cpu.forward(x), scipy.special.expit(x), rtol=1e-6)
    with pytest.raises(TypeError, match="sigmoid: expected a float32 or float64"):
        sigmoid.cpu.forward(np.zeros(3, np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_op_runs_on_the_kernel_with_its_derivatives(dtype):
    """mg.sigmoid: the kernel's value, y (1 - y) as the gradient and its own derivative
    y (1 - y) (1 - 2y), as differentiating the formula gives them. The value to a few ulps;
    the derivatives, formed from y, to float32's resolution at 1 (1 - y cancels where y
    nears 1)."""
    assert backend.kernel("sigmoid", np.zeros(1, dtype)) is sigmoid.cpu
    values = np.linspace(-30, 30, 121).astype(dtype)
    x = mg.tensor(values, requires_grad=True)
    y = mg.sigmoid(x)
    (dy,) = mg.grad(y.sum(), x, create_graph=True)
    (d2y,) = mg.grad(dy.sum(), x)
    s = scipy.special.expit(values.astype(np.float64))
    eps = np.finfo(dtype).eps
    for got, want, atol in [(y, s, 0), (dy, s * (1 - s), eps),
                            (d2y, s * (1 - s) * (1 - 2 * s), 2 * eps)]:
        assert got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), want, rtol=4 * eps, atol=atol)
