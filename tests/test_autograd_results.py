"""Ops of several results (Function.outputs > 1; affine coupling's output and
log-determinant): the node runs once, after every consumer of each result, with None for a
result that got no gradient; gradients of every order, retained graphs, targets, results
that are dropped or never used, and no_grad."""
import gc

import numpy as np
import pytest

import minigen as mg
from minigen.autograd import Function


class SinCos(Function):
    """x -> (sin x, cos x), counting its backward calls and recording what they got."""
    outputs = 2
    calls = []

    @staticmethod
    def forward(ctx, x):
        return np.sin(x), np.cos(x)

    @staticmethod
    def backward(ctx, grads):
        SinCos.calls.append(tuple(g is not None for g in grads))
        g_sin, g_cos = grads
        (x,) = ctx.inputs
        total = 0.0
        if g_sin is not None:
            total = total + g_sin * mg.cos(x)
        if g_cos is not None:
            total = total - g_cos * mg.sin(x)
        return total


@pytest.fixture(autouse=True)
def fresh_calls():
    SinCos.calls = []


def x_of(*values):
    return mg.tensor(np.array(values, dtype=np.float64), requires_grad=True)


def test_both_results_meet_in_one_backward_call():
    x = x_of(0.3, -1.2, 2.0)
    s, c = SinCos.apply(x)
    # c is used first and again after s: the node waits for every consumer of both
    loss = (c * 2.0).sum() + (s * s).sum() + (c * s).sum()
    loss.backward()
    v = x.numpy()
    want = -2 * np.sin(v) + 2 * np.sin(v) * np.cos(v) + np.cos(2 * v)
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)
    assert SinCos.calls == [(True, True)]


@pytest.mark.parametrize("used", ["sin", "cos"])
def test_a_result_not_used_gets_none(used):
    x = x_of(0.5, 1.5)
    s, c = SinCos.apply(x)
    (s if used == "sin" else c).sum().backward()
    v = x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(v) if used == "sin" else -np.sin(v),
                               rtol=1e-12)
    assert SinCos.calls == [(used == "sin", used == "cos")]


def test_a_dropped_result_does_not_hold_the_node_back():
    x = x_of(0.5, 1.5)
    s, c = SinCos.apply(x)
    del c
    gc.collect()
    s.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.cos(x.numpy()), rtol=1e-12)
    assert SinCos.calls == [(True, False)]


def test_grad_of_targets_and_retained_graphs():
    x = x_of(0.2, 0.7)
    y = x * 3.0
    s, c = SinCos.apply(y)
    loss = (s * c).sum()
    (gx,) = mg.grad(loss, [x], retain_graph=True)
    (gy,) = mg.grad(loss, [y])  # the retained graph walked again, to an inner target
    v = 3.0 * x.numpy()
    np.testing.assert_allclose(gy.numpy(), np.cos(2 * v), rtol=1e-12)
    np.testing.assert_allclose(gx.numpy(), 3.0 * np.cos(2 * v), rtol=1e-12)
    assert len(SinCos.calls) == 2
    with pytest.raises(RuntimeError, match="already freed"):
        loss.backward()


def test_results_as_roots_of_grad():
    x = x_of(0.4, -0.9)
    s, c = SinCos.apply(x)
    (gx,) = mg.grad([s, c], [x], grad_outputs=[mg.tensor(np.ones(2)),
                                               mg.tensor(np.full(2, 2.0))])
    v = x.numpy()
    np.testing.assert_allclose(gx.numpy(), np.cos(v) - 2 * np.sin(v), rtol=1e-12)


def test_second_and_third_order():
    x = x_of(0.3, 1.1, -2.4)
    s, c = SinCos.apply(x)
    (g,) = mg.grad((s * c).sum(), [x], create_graph=True)  # cos 2x
    (gg,) = mg.grad(g.sum(), [x], create_graph=True)  # -2 sin 2x
    (ggg,) = mg.grad(gg.sum(), [x])  # -4 cos 2x
    v = x.numpy()
    np.testing.assert_allclose(g.numpy(), np.cos(2 * v), rtol=1e-12)
    np.testing.assert_allclose(gg.numpy(), -2 * np.sin(2 * v), rtol=1e-12)
    np.testing.assert_allclose(ggg.numpy(), -4 * np.cos(2 * v), rtol=1e-12)
    assert mg.gradcheck(lambda t: SinCos.apply(t), [x])
    assert mg.gradgradcheck(lambda t: SinCos.apply(t), [x])


def test_no_grad_and_inputs_without_grad_give_plain_results():
    x = x_of(0.1, 0.2)
    with mg.no_grad():
        s, c = SinCos.apply(x)
    assert not s.requires_grad and not c.requires_grad
    s, c = SinCos.apply(mg.tensor(np.array([0.1, 0.2])))
    assert not s.requires_grad and s.is_leaf
    np.testing.assert_allclose(c.numpy(), np.cos([0.1, 0.2]))


class Wrong(Function):
    outputs = 2

    @staticmethod
    def forward(ctx, x):
        return (x, x, x)

    @staticmethod
    def backward(ctx, grads):
        return None


def test_a_forward_with_the_wrong_number_of_results_is_refused():
    with pytest.raises(RuntimeError, match="Wrong.forward must return a tuple of 2 arrays"):
        Wrong.apply(x_of(1.0))
