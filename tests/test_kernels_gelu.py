"""The exact GELU kernels: the Numba CPU version equals its plain NumPy reference on
hypothesis-drawn shapes and values, through both its serial and its parallel driver
(float64 to rounding; float32 to the accuracy cpu.py states, measured here on a dense sweep
of the range where GELU is neither 0 nor x itself), special values pass through as in the
reference, and the engine op runs on it in float32 and float64.
"""

import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings

import minigen as mg
from minigen.kernels import gelu

from kernelcheck import patched


def exact(x):
    """gelu and gelu' in float64, with the sizes their errors are measured against: the
    value itself for gelu, and |Phi| + |x phi| for gelu', whose two terms cancel near
    x = -0.75 (an error of a few ulps of the terms is all any formula can promise there)."""
    x = x.astype(np.float64)
    cdf = scipy.special.ndtr(x)
    x_density = x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    return x * cdf, cdf + x_density, np.abs(x * cdf), cdf + np.abs(x_density)


def assert_ulps(got, want, size, ulps, what):
    """|got - want| within `ulps` ulps of `size`, or both equal (infinities, NaN, zeros)."""
    spacing = np.spacing(size.astype(got.dtype)).astype(np.float64)
    tiny = np.finfo(got.dtype).smallest_subnormal  # subnormal results keep fewer bits
    bad = ~(np.abs(got - want) <= ulps * np.maximum(spacing, tiny)) & ~(got == want)
    bad &= ~(np.isnan(got) & np.isnan(want))
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} entries differ, first at "
                           f"x = {np.argwhere(bad)[0]}: {got[bad][0]} vs {want[bad][0]}")


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.integers(1, 9), min_size=0, max_size=3),
       st.sampled_from([0.01, 1.0, 5.0]), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([1, 1 << 30]))
@settings(max_examples=50, deadline=None)
def test_cpu_matches_reference(dtype, shape, spread, seed, parallel_min):
    x = np.asarray(spread * np.random.default_rng(seed).standard_normal(shape), dtype)
    # parallel_min 1: the parallel driver, 2^30: the serial one
    with patched(gelu.cpu, PARALLEL_MIN=parallel_min):
        y, dy = gelu.cpu.forward(x), gelu.cpu.derivative(x)
    want_y, want_dy = gelu.reference.forward(x), gelu.reference.derivative(x)
    _, _, y_size, dy_size = exact(x)
    ulps = 13 if dtype == np.float32 else 1  # cpu.py's 12, and the reference's rounding
    for got, want, size, what in [(y, want_y, y_size, "gelu"), (dy, want_dy, dy_size, "gelu'")]:
        assert got.dtype == want.dtype == dtype and got.shape == want.shape == x.shape, what
        assert_ulps(got, want, size, ulps, what)


@pytest.mark.parametrize("parallel_min", [1, 1 << 30])
def test_float32_accuracy_over_its_range(parallel_min):
    """cpu.py's stated accuracy: within 12 ulps of the exact values, on every 2^-10 step
    from -14.9 (below which gelu rounds to -0) to 14.9 (above which it is x), and on small
    values down to float32's smallest normal."""
    steps = np.arange(-14.9, 14.9, 2.0 ** -10)
    small = np.geomspace(np.finfo(np.float32).tiny, 1.0, 2000)
    x = np.concatenate([steps, small, -small]).astype(np.float32)
    with patched(gelu.cpu, PARALLEL_MIN=parallel_min):
        y, dy = gelu.cpu.forward(x), gelu.cpu.derivative(x)
    want_y, want_dy, y_size, dy_size = exact(x)
    assert_ulps(y, want_y, y_size, 12, "gelu")
    assert_ulps(dy, want_dy, dy_size, 12, "gelu'")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_pass_through_as_in_the_reference(dtype):
    x = np.array([0.0, -0.0, 1e-30, -1e-30, 1e-42, 1e4, -1e4, 40.0, -40.0,
                  np.inf, -np.inf, np.nan], dtype=dtype)
    for kernel in ("forward", "derivative"):
        with np.errstate(invalid="ignore"):  # -inf * Phi(-inf) = -inf * 0 is NaN
            want = getattr(gelu.reference, kernel)(x)
            got = getattr(gelu.cpu, kernel)(x)
        np.testing.assert_array_equal(got, want, err_msg=kernel)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=kernel)


def test_cpu_keeps_shape_and_reads_strided_input():
    x = np.linspace(-4, 4, 60, dtype=np.float32).reshape(3, 4, 5).transpose(2, 0, 1)
    np.testing.assert_array_equal(gelu.cpu.forward(x),
                                  gelu.cpu.forward(np.ascontiguousarray(x)))
    assert gelu.cpu.forward(np.zeros((2, 0, 3), np.float32)).shape == (2, 0, 3)


def test_errors_name_the_op_and_dtype():
    with pytest.raises(TypeError, match="gelu: .*int64"):
        gelu.cpu.forward(np.arange(3))
    with pytest.raises(TypeError, match="gelu: .*float16"):
        gelu.reference.derivative(np.zeros(3, np.float16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_op_runs_on_the_kernel(dtype):
    x = mg.tensor(np.linspace(-6, 6, 101).astype(dtype), requires_grad=True)
    y = mg.gelu(x)
    (dx,) = mg.grad(y.sum(), [x], create_graph=True)
    (ddx,) = mg.grad(dx.sum(), [x])
    want_y, want_dy, _, _ = exact(x.numpy())
    x64 = x.numpy().astype(np.float64)
    want_ddy = np.exp(-0.5 * x64 * x64) / np.sqrt(2 * np.pi) * (2 - x64 * x64)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in [(y, want_y), (dx, want_dy), (ddx, want_ddy)]:
        assert got.dtype == dtype
        np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=rtol)
