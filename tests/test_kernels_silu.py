"""The SiLU kernels: the Numba CPU version equals its plain NumPy reference on
hypothesis-drawn shapes and values, through both its serial and its parallel driver
(float64 exactly, the reference itself; float32 to the accuracy cpu.py states, measured
here on a dense sweep of the range), special values pass through as in the reference, and
the engine op runs on it with first and second derivatives.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings

import minigen as mg
import minigen.functional as F
from minigen.kernels import silu

from kernelcheck import patched

NORMAL_FROM = -87.0  # below it exp(-|x|) is a subnormal float32 (cpu.py)
TINY = np.finfo(np.float32).smallest_subnormal


def exact(x):
    """silu and silu' in float64, and the sizes their errors are measured against: the
    value for silu, s + |x s c| for silu' (whose terms cancel near x = -1.28)."""
    x = x.astype(np.float64)
    s, c = scipy.special.expit(x), scipy.special.expit(-x)
    return x * s, s * (1 + x * c), np.abs(x * s), s + np.abs(x * s * c)


def assert_accuracy(x, got, want, size, ulps, what):
    """Within `ulps` ulps of `size` where x >= NORMAL_FROM; below, within |x| times the
    smallest subnormal (the rounding of exp(-|x|) to a subnormal, times x)."""
    err = np.abs(got.astype(np.float64) - want)
    spacing = np.spacing(size.astype(np.float32)).astype(np.float64)
    normal = x >= NORMAL_FROM
    bad = normal & ~(err <= ulps * spacing) | ~normal & ~(err <= np.abs(x) * TINY)
    bad &= ~(got == want) & ~(np.isnan(got) & np.isnan(want))
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} entries off, first at x = "
                           f"{x[bad][0]}: {got[bad][0]} vs {want[bad][0]}")


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.integers(1, 9), min_size=0, max_size=3),
       st.sampled_from([0.01, 1.0, 10.0, 60.0]), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([1, 1 << 30]))
@settings(max_examples=50, deadline=None)
def test_cpu_matches_reference(dtype, shape, spread, seed, parallel_min):
    x = np.asarray(spread * np.random.default_rng(seed).standard_normal(shape), dtype)
    with patched(silu.cpu, PARALLEL_MIN=parallel_min):  # 1: the parallel driver
        y, dy = silu.cpu.forward(x), silu.cpu.derivative(x)
    want_y, want_dy = silu.reference.forward(x), silu.reference.derivative(x)
    for got, want in [(y, want_y), (dy, want_dy)]:
        assert got.dtype == want.dtype == dtype and got.shape == want.shape == x.shape
    if dtype == np.float64:
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(dy, want_dy)
        return
    _, _, y_size, dy_size = exact(x)
    assert_accuracy(x, y, want_y, y_size, 4, "silu")
    assert_accuracy(x, dy, want_dy, dy_size, 5, "silu'")


@pytest.mark.parametrize("parallel_min", [1, 1 << 30])
def test_float32_accuracy_over_its_range(parallel_min):
    """cpu.py's stated accuracy on every 2^-8 step of [-110, 90] (where silu is neither 0
    nor x) and on a million random points."""
    x = np.concatenate([np.arange(-110, 90, 2 ** -8),
                        np.random.default_rng(0).standard_normal(1_000_000) * 20])
    x = x.astype(np.float32)
    want_y, want_dy, y_size, dy_size = exact(x)
    with patched(silu.cpu, PARALLEL_MIN=parallel_min):
        assert_accuracy(x, silu.cpu.forward(x), want_y, y_size, 4, "silu")
        assert_accuracy(x, silu.cpu.derivative(x), want_dy, dy_size, 5, "silu'")


def test_special_values_as_the_reference():
    x = np.array([-np.inf, -1e30, -1e4, -200, 0.0, -0.0, 1e-30, 1e4, 3e38, np.inf,
                  np.nan], np.float32)
    with np.errstate(invalid="ignore"):
        for got, want in [(silu.cpu.forward(x), silu.reference.forward(x)),
                          (silu.cpu.derivative(x), silu.reference.derivative(x))]:
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_op_and_its_derivatives(dtype):
    """F.silu on the kernel: value, gradient and second derivative as the composed
    x sigmoid(x) gives them."""
    values = np.linspace(-8, 8, 41).astype(dtype)
    x = mg.tensor(values, requires_grad=True)
    y = F.silu(x)
    (dy,) = mg.grad(y.sum(), x, create_graph=True)
    (d2y,) = mg.grad(dy.sum(), x)
    xc = mg.tensor(values, requires_grad=True)
    yc = xc * mg.sigmoid(xc)
    (dyc,) = mg.grad(yc.sum(), xc, create_graph=True)
    (d2yc,) = mg.grad(dyc.sum(), xc)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    for got, want in [(y, yc), (dy, dyc), (d2y, d2yc)]:
        assert got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), want.numpy(), **tol)
