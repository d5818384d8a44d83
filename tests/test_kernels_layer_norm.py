"""The layer-norm kernels: the Numba CPU version equals its plain NumPy reference on
hypothesis-drawn shapes and values (float32 to a few ulps of each row's size, float64 to
the worst case of summing a row in another order), constant rows come out 0 with
rstd = 1 / sqrt(eps), and F.layer_norm on the kernel has the gradients of every order of
the composed formula (checked in test_functional.py for one axis; here over two axes with
the gradient depending on x).
"""
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
import minigen.functional as F
from minigen.kernels import layer_norm

from kernelcheck import assert_layer_norm_close


@given(st.sampled_from([np.float32, np.float64]), st.integers(1, 9), st.integers(1, 70),
       st.sampled_from([1e-3, 1.0, 1e3]), st.floats(-50, 50), st.integers(0, 2 ** 32 - 1))
@settings(max_examples=100, deadline=None)
def test_cpu_matches_reference(dtype, rows, d, spread, offset, seed):
    rng = np.random.default_rng(seed)
    x = (offset + spread * rng.standard_normal((rows, d))).astype(dtype)
    g = rng.standard_normal((rows, d)).astype(dtype)
    xhat, rstd = layer_norm.cpu.forward(x, 1e-5)
    assert_layer_norm_close(x, g, xhat, rstd, layer_norm.cpu.backward(xhat, rstd, g))


@pytest.mark.parametrize("kernel", [layer_norm.cpu, layer_norm.reference])
def test_constant_rows_normalise_to_zero(kernel):
    x = np.full((2, 5), 3.0, np.float32)
    xhat, rstd = kernel.forward(x, 1e-4)
    np.testing.assert_array_equal(xhat, 0.0)
    np.testing.assert_allclose(rstd, 100.0, rtol=1e-6)


def test_errors_name_the_op_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"layer_norm backward: .*\(2, 3\).*\(2, 4\)"):
        layer_norm.cpu.backward(np.zeros((2, 3)), np.ones(2), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="layer_norm forward: .*int64"):
        layer_norm.cpu.forward(np.zeros((2, 3), np.int64), 1e-5)


def test_layer_norm_on_the_kernel_has_second_and_third_derivatives():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((2, 3, 4)) * 2 + 1, requires_grad=True)
    w = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = mg.tensor(rng.standard_normal((3, 4)), requires_grad=True)

    def penalty(x, w, b):  # a gradient that depends on x itself, as in a gradient penalty
        y = F.layer_norm(x, (3, 4), w, b)
        (dx,) = mg.grad((y * y * y).sum(), [x], create_graph=True)
        return dx

    assert mg.gradcheck(lambda x, w, b: F.layer_norm(x, (3, 4), w, b), [x, w, b])
    assert mg.gradcheck(penalty, [x, w, b])
    assert mg.gradgradcheck(penalty, [x, w, b])


def test_layer_norm_float32_matches_the_composed_formula():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 6, 8)) * 3 + 2).astype(np.float32)
    y = F.layer_norm(mg.tensor(x), 8).numpy()
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-5)
