"""Checks that every flow layer and flow model must pass, shared by the flow tests.

    from flowcheck import assert_invertible, assert_logdet_matches_jacobian

The log-determinant is checked against log|det J| of the Jacobian computed with the engine
itself, one row at a time with mg.grad, on small float64 inputs.
"""
import numpy as np

import minigen as mg


def _run(fn, x, cond):
    return fn(x) if cond is None else fn(x, cond)


def assert_invertible(layer, x, cond=None, rtol=None):
    """inverse(forward(x)) == x and forward(inverse(y)) == y; the two log-determinants are
    each other's negatives. float64 tight, float32 scaled."""
    tight = x.dtype == np.float64
    rtol = rtol if rtol is not None else (1e-9 if tight else 2e-4)
    y, logdet = _run(layer, x, cond)
    back, logdet_inverse = _run(layer.inverse, y, cond)
    np.testing.assert_allclose(back.numpy(), x.numpy(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(logdet_inverse.numpy(), -logdet.numpy(), rtol=rtol,
                               atol=rtol * max(1.0, float(np.abs(logdet.numpy()).max())))
    assert logdet.shape == (len(x),) and logdet.dtype == np.float64
    again, _ = _run(layer, back, cond)
    np.testing.assert_allclose(again.numpy(), y.numpy(), rtol=rtol, atol=rtol)


def jacobian(fn, x):
    """(N, D_out, D_in): the per-example Jacobian of fn (which maps (N, ...) -> (N, ...),
    each example independently) at x, row by row with mg.grad."""
    x = mg.tensor(x.numpy(), requires_grad=True)
    y = fn(x)
    n = len(x)
    flat = y.reshape(n, -1)
    rows = []
    for i in range(flat.shape[1]):
        (g,) = mg.grad(flat[:, i].sum(), [x], retain_graph=True)
        rows.append(g.numpy().reshape(n, -1))
    return np.stack(rows, axis=1)


def assert_logdet_matches_jacobian(layer, x, cond=None, inverse=False, atol=1e-8):
    """The layer's log-determinant equals log|det J| of its Jacobian, per example (float64
    input expected; batch statistics such as ActNorm's initialisation must already be set,
    and a layer in training mode whose output mixes examples would fail, as it should)."""
    fn = layer.inverse if inverse else layer
    _, logdet = _run(fn, x, cond)
    jac = jacobian(lambda t: _run(fn, t, cond)[0], x)
    sign, want = np.linalg.slogdet(jac)
    assert np.all(sign != 0), "the Jacobian is singular"
    np.testing.assert_allclose(logdet.numpy(), want, rtol=1e-7, atol=atol)
