"""The fused Adam kernel: the Numba CPU version changes p, m and v exactly as its NumPy
reference does (bit for bit, over many steps), through both drivers, in float32 and
float64, with either kind of weight decay; special values pass through as there; and
minigen.optim.Adam uses it without changing a trained model's weights.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import minigen as mg
from minigen import backend, optim
from minigen.kernels import adam

from kernelcheck import patched


def run_steps(version, p, grads, **hyper):
    p = p.copy()
    m, v = np.zeros_like(p), np.zeros_like(p)
    for step, g in enumerate(grads, 1):
        version.update(p, g, m, v, step=step, **hyper)
    return p, m, v


@given(st.sampled_from([np.float32, np.float64]),
       st.lists(st.integers(1, 9), min_size=0, max_size=3),
       st.sampled_from([(0.0, False), (0.1, False), (0.01, True)]),
       st.sampled_from([(1e-3, 0.9, 0.999, 1e-8), (0.5, 0.0, 0.5, 1e-3)]),
       st.integers(0, 2 ** 32 - 1), st.sampled_from([1, 1 << 30]))
@settings(max_examples=60, deadline=None)
def test_cpu_matches_reference_bit_for_bit(dtype, shape, decay, hyper, seed, parallel_min):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape).astype(dtype)
    grads = [(rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 3)).astype(dtype)
             for _ in range(7)]
    lr, beta1, beta2, eps = hyper
    kw = dict(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=decay[0],
              decoupled=decay[1])
    with patched(adam.cpu, PARALLEL_MIN=parallel_min):  # 1: the parallel driver
        got = run_steps(adam.cpu, p, grads, **kw)
    want = run_steps(adam.reference, p, grads, **kw)
    for a, b, name in zip(got, want, "pmv"):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert (np.signbit(a) == np.signbit(b)).all(), name


@pytest.mark.parametrize("decay", [(0.0, False), (0.1, False), (0.1, True)])
def test_special_values_as_the_reference(decay):
    values = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-45, 3e38],
                      np.float32)
    p = np.repeat(values, len(values))
    g = np.tile(values, len(values))
    kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=decay[0],
              decoupled=decay[1])
    with np.errstate(all="ignore"):
        got = run_steps(adam.cpu, p, [g, g[::-1].copy()], **kw)
        want = run_steps(adam.reference, p, [g, g[::-1].copy()], **kw)
    for a, b, name in zip(got, want, "pmv"):
        np.testing.assert_array_equal(a, b, err_msg=name)  # NaN where NaN
        numbers = ~np.isnan(b)  # a NaN's sign bit means nothing
        assert (np.signbit(a) == np.signbit(b))[numbers].all(), name


def test_non_contiguous_gradient():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((6, 5)).astype(np.float32)
    g = rng.standard_normal((5, 6)).astype(np.float32).T  # a transposed view
    kw = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8)
    for a, b in zip(run_steps(adam.cpu, p, [g, g], **kw),
                    run_steps(adam.reference, p, [g, g], **kw)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("opt", [optim.Adam, optim.AdamW])
def test_optimiser_trains_as_with_the_reference(opt):
    """A small model trained with the optimiser (the kernel) ends with the weights the
    reference update gives, bit for bit; a non-contiguous parameter uses the reference."""
    def train():
        rng = np.random.default_rng(1)
        w = mg.tensor(rng.standard_normal((8, 4)).astype(np.float32), requires_grad=True)
        b = mg.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
        b.data = np.asfortranarray(b.data)  # F-ordered: never the kernel
        x = mg.tensor(rng.standard_normal((16, 8)).astype(np.float32))
        assert not b.data.flags.c_contiguous
        o = opt([w, b], lr=1e-2, weight_decay=0.05)
        for _ in range(20):
            o.zero_grad()
            ((x @ w) @ b).tanh().sum().backward()
            o.step()
        return w.numpy(), b.numpy()

    assert backend.kernel("adam", np.zeros(1, np.float32)) is adam.cpu
    with_kernel = train()
    with patched(adam.cpu, update=adam.reference.update):
        without = train()
    for a, b in zip(with_kernel, without):
        np.testing.assert_array_equal(a, b)
