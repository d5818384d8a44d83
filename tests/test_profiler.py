"""minigen's op profiler (minigen/profiler.py, `minigen profile`): it times every op and
backward node while open, attributes each op's time once (self time), counts what no op
accounts for, and leaves the engine exactly as it found it."""
import numpy as np
import pytest

import minigen as mg
from minigen import autograd, cli, profiler


def _graph():
    x = mg.tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    y = (x * 2.0).sum()
    y.backward()
    return x


def test_every_op_and_backward_node_is_counted_once_per_call():
    with profiler.profile() as prof:
        _graph()
    calls = {key: entry[0] for key, entry in prof.records.items()}
    assert calls[("Mul", "forward")] == 1 and calls[("Sum", "forward")] == 1
    assert calls[("Mul.backward", "backward")] == 1
    assert calls[("Sum.backward", "backward")] == 1
    # the ops a backward runs are in the backward phase, under their own names
    assert all(phase == "backward" for (name, phase) in prof.records
               if name.endswith(".backward"))


def test_self_times_and_outside_add_up_to_the_wall_time():
    with profiler.profile() as prof:
        for _ in range(3):
            _graph()
    rows = prof.rows(steps=3)
    assert rows[-1][0] == "outside ops"
    assert sum(r[3] for r in rows) == pytest.approx(prof.wall_s * 1e3 / 3, rel=1e-9)
    for name, phase, calls, self_ms, share, total_ms in rows[:-1]:
        assert 0 <= self_ms <= total_ms + 1e-12  # self never exceeds inclusive
    # a node's backward frame includes the ops it runs
    backward = {r[0]: r for r in rows if r[0].endswith(".backward")}
    assert backward["Mul.backward"][5] >= backward["Mul.backward"][3]


def test_the_engine_is_restored_and_gradients_unchanged():
    apply, hook, backprop = (autograd.Function.__dict__["apply"], autograd._backward_hook,
                             autograd._backprop)
    plain = _graph().grad.numpy()
    with profiler.profile():
        profiled = _graph().grad.numpy()
    np.testing.assert_array_equal(plain, profiled)
    assert autograd.Function.__dict__["apply"] is apply
    assert autograd._backward_hook is hook and autograd._backprop is backprop
    with pytest.raises(ZeroDivisionError):  # restored on an error too
        with profiler.profile():
            1 / 0
    assert autograd.Function.__dict__["apply"] is apply and autograd._backward_hook is hook


def test_second_order_gradients_through_the_profiler():
    x = mg.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with profiler.profile() as prof:
        (g,) = mg.grad((x ** 3).sum(), x, create_graph=True)
        (h,) = mg.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())
    assert prof.records[("Pow.backward", "backward")][0] >= 2


def test_minigen_profile_prints_the_table(capsys):
    assert cli.main(["profile", "made", "--data", "digits-bin", "--steps", "2", "--warmup",
                     "1", "--config", "hidden=16,16", "--top", "5"]) in (0, None)
    out = capsys.readouterr().out
    assert "made on digits-bin" in out and "outside ops" in out and "Matmul" in out
    assert "per step:" in out


def test_minigen_profile_refuses_bad_arguments(capsys):
    assert cli.main(["profile", "made", "--data", "digits-bin", "--steps", "0"]) == 2
    assert "steps" in capsys.readouterr().err
