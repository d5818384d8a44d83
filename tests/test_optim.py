"""Optimisers, gradient clipping, schedules and EMA: first steps against arithmetic written
out by hand, twenty steps against torch.optim (when PyTorch is installed), and checkpoint
round trips that must continue training bit for bit."""
import json
import math

import numpy as np
import pytest

import minigen as mg
from minigen import optim


def _param(values, dtype=np.float64):
    return mg.tensor(np.array(values, dtype=dtype), requires_grad=True)


def _steps(opt, params, loss_fn, n):
    """n optimiser steps on loss_fn(params); the parameter values after each step."""
    history = []
    for _ in range(n):
        opt.zero_grad()
        loss_fn(params).backward()
        opt.step()
        history.append([p.numpy().copy() for p in params])
    return history


def _square_loss(params):
    (p,) = params
    return (p * p).sum()  # gradient 2p


# ---- first steps by hand ------------------------------------------------------------------

def test_sgd_momentum_by_hand():
    p = _param([1.0, -2.0])
    history = _steps(optim.SGD([p], lr=0.1, momentum=0.9), [p], _square_loss, 3)
    # step 1: g = 2p = [2, -4], buf = g, p = [1, -2] - 0.1 [2, -4] = [0.8, -1.6]
    np.testing.assert_allclose(history[0][0], [0.8, -1.6], rtol=1e-15)
    # step 2: g = [1.6, -3.2], buf = 0.9 [2, -4] + g = [3.4, -6.8], p = [0.46, -0.92]
    np.testing.assert_allclose(history[1][0], [0.8 - 0.34, -1.6 + 0.68], rtol=1e-15)
    # step 3: g = [0.92, -1.84], buf = 0.9 [3.4, -6.8] + g = [3.98, -7.96], p = [0.062, -0.124]
    np.testing.assert_allclose(history[2][0], [0.46 - 0.398, -0.92 + 0.796], rtol=1e-14)


def test_sgd_nesterov_weight_decay_dampening_by_hand():
    p = _param([1.0])
    history = _steps(optim.SGD([p], lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.5),
                     [p], _square_loss, 2)
    # step 1: g = 2p + 0.5p = 2.5, buf = 2.5, nesterov g = 2.5 + 0.5 * 2.5 = 3.75
    #         p = 1 - 0.375 = 0.625
    np.testing.assert_allclose(history[0][0], [0.625], rtol=1e-15)
    # step 2: g = 2.5 * 0.625 = 1.5625, buf = 0.5 * 2.5 + 1.5625 = 2.8125,
    #         nesterov g = 1.5625 + 0.5 * 2.8125 = 2.96875, p = 0.625 - 0.296875 = 0.328125
    np.testing.assert_allclose(history[1][0], [0.328125], rtol=1e-15)

    q = _param([1.0])
    history = _steps(optim.SGD([q], lr=0.1, momentum=0.5, dampening=0.5), [q],
                     _square_loss, 2)
    # step 1: buf = g = 2 (dampening is not applied to the first step), q = 0.8
    # step 2: g = 1.6, buf = 0.5 * 2 + 0.5 * 1.6 = 1.8, q = 0.8 - 0.18 = 0.62
    np.testing.assert_allclose([history[0][0], history[1][0]], [[0.8], [0.62]], rtol=1e-15)


def test_adam_by_hand():
    p = _param([1.0])
    history = _steps(optim.Adam([p], lr=0.1), [p], _square_loss, 3)
    # step 1: g = 2, m = 0.1 * 2 = 0.2, v = 0.001 * 4 = 0.004,
    #         m_hat = 0.2 / 0.1 = 2, sqrt(v_hat) = sqrt(0.004 / 0.001) = 2,
    #         p = 1 - 0.1 * 2 / (2 + 1e-8)
    p1 = 1 - 0.1 * 2 / (2 + 1e-8)
    np.testing.assert_allclose(history[0][0], [p1], rtol=1e-15)
    # step 2: g = 2 p1, m = 0.9 * 0.2 + 0.1 g, v = 0.999 * 0.004 + 0.001 g^2,
    #         p = p1 - 0.1 * (m / (1 - 0.9^2)) / (sqrt(v / (1 - 0.999^2)) + 1e-8)
    g = 2 * p1
    m, v = 0.9 * 0.2 + 0.1 * g, 0.999 * 0.004 + 0.001 * g * g
    p2 = p1 - 0.1 * (m / 0.19) / (math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)
    np.testing.assert_allclose(history[1][0], [p2], rtol=1e-14)
    # step 3: the same with t = 3
    g = 2 * p2
    m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
    p3 = p2 - 0.1 * (m / (1 - 0.9 ** 3)) / (math.sqrt(v / (1 - 0.999 ** 3)) + 1e-8)
    np.testing.assert_allclose(history[2][0], [p3], rtol=1e-14)


def test_adam_l2_against_adamw_decoupled_decay_by_hand():
    def zero_loss(params):
        return (params[0] * 0.0).sum()  # gradient exactly 0: only weight decay acts

    p, q = _param([1.0]), _param([1.0])
    adam = _steps(optim.Adam([p], lr=0.1, weight_decay=0.5), [p], zero_loss, 1)
    adamw = _steps(optim.AdamW([q], lr=0.1, weight_decay=0.5), [q], zero_loss, 1)
    # Adam: g = 0 + 0.5 * 1 = 0.5, m_hat = 0.5, sqrt(v_hat) = 0.5, p = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    np.testing.assert_allclose(adam[0][0], [1 - 0.1 * 0.5 / (0.5 + 1e-8)], rtol=1e-15)
    # AdamW: q = 1 * (1 - 0.1 * 0.5) = 0.95, then m = v = 0: the Adam step is 0 / (0 + eps)
    np.testing.assert_allclose(adamw[0][0], [0.95], rtol=1e-15)


def test_rmsprop_by_hand():
    p = _param([1.0])
    history = _steps(optim.RMSprop([p], lr=0.01), [p], _square_loss, 2)
    # step 1: g = 2, v = 0.01 * 4 = 0.04, p = 1 - 0.01 * 2 / (0.2 + 1e-8)
    p1 = 1 - 0.01 * 2 / (0.2 + 1e-8)
    np.testing.assert_allclose(history[0][0], [p1], rtol=1e-15)
    # step 2: g = 2 p1, v = 0.99 * 0.04 + 0.01 g^2, p = p1 - 0.01 g / (sqrt(v) + 1e-8)
    g = 2 * p1
    v = 0.99 * 0.04 + 0.01 * g * g
    np.testing.assert_allclose(history[1][0], [p1 - 0.01 * g / (math.sqrt(v) + 1e-8)],
                               rtol=1e-14)

    q = _param([1.0])
    history = _steps(optim.RMSprop([q], lr=0.01, momentum=0.5), [q], _square_loss, 2)
    # step 1: buf = 0.5 * 0 + 2 / (0.2 + 1e-8), q = 1 - 0.01 buf
    buf = 2 / (0.2 + 1e-8)
    q1 = 1 - 0.01 * buf
    # step 2: g = 2 q1, v = 0.99 * 0.04 + 0.01 g^2, buf = 0.5 buf + g / (sqrt(v) + 1e-8)
    g = 2 * q1
    buf = 0.5 * buf + g / (math.sqrt(0.99 * 0.04 + 0.01 * g * g) + 1e-8)
    np.testing.assert_allclose([history[0][0], history[1][0]], [[q1], [q1 - 0.01 * buf]],
                               rtol=1e-14)


# ---- behaviour ----------------------------------------------------------------------------

def test_parameters_without_grad_are_skipped_and_dtype_is_kept():
    used, unused = _param([1.0, 2.0], np.float32), _param([3.0], np.float32)
    opt = optim.Adam([used, unused], lr=0.1)
    (used * used).sum().backward()
    opt.step()
    np.testing.assert_array_equal(unused.numpy(), [3.0])
    assert unused not in opt.state and used in opt.state
    assert used.dtype == np.float32 and opt.state[used]["exp_avg"].dtype == np.float32
    np.testing.assert_allclose(used.numpy(), [0.9, 1.9], rtol=1e-6)
    opt.zero_grad()
    assert used.grad is None


def test_param_groups_override_defaults():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    ((a * a).sum() + (b * b).sum()).backward()
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [1 - 0.1 * 2, 1 - 0.5 * 2])
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_closure_is_evaluated_and_returned():
    p = _param([2.0])
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with mg.no_grad():  # the closure still gets a graph: step turns gradients on for it
        loss = opt.step(closure)
    assert loss.item() == 4.0 and p.item() == 2.0 - 0.25 * 4.0


def test_bad_arguments_are_named():
    p = _param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.SGD([p], lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="not a Tensor"):
        optim.SGD([np.zeros(2)], lr=0.1)


# ---- against torch.optim ------------------------------------------------------------------

def _mlp_problem(seed, dtype):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal((4, 8)) * 0.5, rng.standard_normal(8) * 0.1,
            rng.standard_normal((8, 1)) * 0.5]
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    return [a.astype(dtype) for a in init], x.astype(dtype), y.astype(dtype)


def _mlp_loss(params, x, y, lib):
    w1, b1, w2 = params
    return ((lib.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=3e-2, weight_decay=0.5)),
    ("RMSprop", dict(lr=1e-2)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, momentum=0.8, weight_decay=1e-2)),
]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_matches_torch_optim_over_20_steps(name, kwargs, dtype, rtol):
    torch = pytest.importorskip("torch")
    init, x, y = _mlp_problem(0, dtype)
    ours = [mg.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = getattr(optim, name)(ours, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    xm, ym, xt, yt = mg.tensor(x), mg.tensor(y), torch.tensor(x), torch.tensor(y)
    for step in range(20):
        opt.zero_grad()
        _mlp_loss(ours, xm, ym, mg).backward()
        opt.step()
        topt.zero_grad()
        _mlp_loss(theirs, xt, yt, torch).backward()
        topt.step()
        for p, tp in zip(ours, theirs):
            assert p.dtype == dtype
            np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=rtol,
                                       atol=rtol * 1e-2, err_msg=f"step {step}")


def test_param_groups_and_schedule_match_torch():
    torch = pytest.importorskip("torch")
    init, x, y = _mlp_problem(1, np.float64)
    ours = [mg.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = optim.Adam([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.05}], lr=0.02)
    topt = torch.optim.Adam([{"params": theirs[:2]}, {"params": theirs[2:], "lr": 0.05}],
                            lr=0.02)
    schedule = optim.LambdaLR(opt, lambda s: 0.9 ** s)
    tschedule = torch.optim.lr_scheduler.LambdaLR(topt, lambda s: 0.9 ** s)
    for _ in range(15):
        opt.zero_grad()
        _mlp_loss(ours, mg.tensor(x), mg.tensor(y), mg).backward()
        opt.step()
        schedule.step()
        topt.zero_grad()
        _mlp_loss(theirs, torch.tensor(x), torch.tensor(y), torch).backward()
        topt.step()
        tschedule.step()
        np.testing.assert_allclose(schedule.get_last_lr(), tschedule.get_last_lr(), rtol=1e-15)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-9)


# ---- checkpoints --------------------------------------------------------------------------

def _through_json(state):
    """The state as a JSON + arrays checkpoint gives it back: tuples become lists."""
    arrays = []

    def split(tree):
        if isinstance(tree, dict):
            assert all(isinstance(k, str) for k in tree), "checkpoint keys must be strings"
            return {k: split(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return [split(v) for v in tree]
        if isinstance(tree, np.ndarray):
            arrays.append(tree.copy())
            return {"__array__": len(arrays) - 1}
        return tree

    def join(tree):
        if isinstance(tree, dict):
            return arrays[tree["__array__"]] if "__array__" in tree else \
                {k: join(v) for k, v in tree.items()}
        return [join(v) for v in tree] if isinstance(tree, list) else tree

    return join(json.loads(json.dumps(split(state))))


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=1e-2, weight_decay=1e-3),
    lambda ps: optim.AdamW(ps, lr=1e-2),
    lambda ps: optim.RMSprop(ps, lr=1e-3, momentum=0.5),
], ids=["SGD", "Adam", "AdamW", "RMSprop"])
def test_state_dict_round_trip_continues_bit_for_bit(make):
    init, x, y = _mlp_problem(2, np.float32)
    xm, ym = mg.tensor(x), mg.tensor(y)
    params = [mg.tensor(a.copy(), requires_grad=True) for a in init]
    opt = make(params)
    schedule = optim.warmup_cosine(opt, warmup_steps=3, total_steps=12, min_lr=1e-4)

    def train(opt, schedule, params, n):
        for _ in range(n):
            opt.zero_grad()
            _mlp_loss(params, xm, ym, mg).backward()
            opt.step()
            schedule.step()

    train(opt, schedule, params, 5)
    saved = _through_json({"params": [p.numpy().copy() for p in params],
                           "optimizer": opt.state_dict(), "schedule": schedule.state_dict()})
    train(opt, schedule, params, 6)

    restored = [mg.tensor(a, requires_grad=True) for a in saved["params"]]
    opt2 = make(restored)
    schedule2 = optim.warmup_cosine(opt2, warmup_steps=3, total_steps=12, min_lr=1e-4)
    opt2.load_state_dict(saved["optimizer"])
    schedule2.load_state_dict(saved["schedule"])
    train(opt2, schedule2, restored, 6)
    for a, b in zip(params, restored):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert schedule2.get_last_lr() == schedule.get_last_lr()


def test_state_dict_is_a_snapshot_and_load_checks_sizes():
    p = _param([1.0, 2.0])
    opt = optim.Adam([p], lr=0.1)
    _steps(opt, [p], _square_loss, 1)
    state = opt.state_dict()
    exp_avg = state["state"][0]["exp_avg"].copy()
    _steps(opt, [p], _square_loss, 1)
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], exp_avg)
    assert state["state"][0]["step"] == 1 and opt.state[p]["step"] == 2
    with pytest.raises(ValueError, match="hold"):
        optim.Adam([p, _param([0.0])]).load_state_dict(state)
    with pytest.raises(ValueError, match="shape"):
        optim.Adam([_param([0.0, 1.0, 2.0])]).load_state_dict(state)


# ---- clipping -----------------------------------------------------------------------------

def test_clip_grad_norm_value_and_effect():
    a, b, c = _param([3.0, 4.0]), _param([12.0]), _param([5.0])
    (a * a * 0.5).sum().backward()   # grad = a = [3, 4]
    (b * b * 0.5).sum().backward()   # grad = [12]; c has no grad and is ignored
    total = optim.clip_grad_norm_([a, b, c], max_norm=6.5)
    assert total == pytest.approx(13.0, rel=1e-15)  # sqrt(9 + 16 + 144)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 * scale, 4 * scale], rtol=1e-15)
    np.testing.assert_allclose(b.grad.numpy(), [12 * scale], rtol=1e-15)
    assert c.grad is None
    assert optim.clip_grad_norm_([a, b], max_norm=100.0) == pytest.approx(6.5, rel=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), [12 * scale], rtol=1e-15)  # below: untouched


def test_clip_grad_norm_with_shared_and_read_only_gradients():
    x, y = _param([3.0, 0.0]), _param([0.0, 4.0])
    # the engine may hand both the same gradient array, and a read-only broadcast view at
    # that: clipping must neither scale it twice nor write into it
    (x + y).sum().backward()
    total = optim.clip_grad_norm_([x, y], max_norm=1.0)
    assert total == pytest.approx(2.0)
    np.testing.assert_allclose(x.grad.numpy(), [1 / (2 + 1e-6)] * 2)
    np.testing.assert_allclose(y.grad.numpy(), [1 / (2 + 1e-6)] * 2)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) for s in [(3, 4), (5,), ()]]
    ours = [_param(np.zeros_like(g)) for g in grads]
    for p, g in zip(ours, grads):
        p.grad = mg.tensor(g)
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(theirs, grads):
        p.grad = torch.tensor(g)
    total = optim.clip_grad_norm_(ours, 0.7)
    assert total == pytest.approx(torch.nn.utils.clip_grad_norm_(theirs, 0.7).item(),
                                  rel=1e-14)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-14)


# ---- schedules ----------------------------------------------------------------------------

def test_warmup_cosine_values():
    groups = [{"params": [_param([0.0])], "lr": 1.0}, {"params": [_param([0.0])], "lr": 0.5}]
    opt = optim.SGD(groups, lr=0.1)
    schedule = optim.warmup_cosine(opt, warmup_steps=4, total_steps=12, min_lr=0.1)
    lrs = [schedule.get_last_lr()]
    for _ in range(20):
        schedule.step()
        lrs.append(schedule.get_last_lr())
    first = [lr[0] for lr in lrs]
    # warmup: (s + 1) / 5 for s = 0..3, then the base lr at s = 4
    np.testing.assert_allclose(first[:5], [0.2, 0.4, 0.6, 0.8, 1.0], rtol=1e-15)
    # s = 6: a quarter of the way down: 0.1 + 0.9 (1 + cos(pi / 4)) / 2
    assert first[6] == pytest.approx(0.1 + 0.9 * (1 + math.sqrt(0.5)) / 2, rel=1e-15)
    assert first[8] == pytest.approx(0.1 + 0.9 * 0.5, rel=1e-15)  # halfway: the midpoint
    assert first[12] == pytest.approx(0.1, rel=1e-15) and first[20] == pytest.approx(0.1)
    # the second group follows its own base lr: 0.5 at s = 4, 0.1 + 0.4 / 2 at s = 8
    assert lrs[4][1] == 0.5 and lrs[8][1] == pytest.approx(0.3, rel=1e-15)
    assert all(a >= b for a, b in zip(first[4:], first[5:]))


def test_schedule_state_dict_and_lambda():
    p = _param([0.0])
    opt = optim.SGD([p], lr=2.0)
    schedule = optim.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    assert schedule.get_last_lr() == [2.0]
    for _ in range(3):
        schedule.step()
    assert schedule.get_last_lr() == [0.5] and opt.param_groups[0]["lr"] == 0.5
    state = schedule.state_dict()
    fresh = optim.LambdaLR(optim.SGD([p], lr=2.0), lambda s: 1.0 / (s + 1))
    fresh.load_state_dict(state)
    fresh.step()
    assert fresh.get_last_lr() == [2.0 / 5]
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.warmup_cosine(opt, warmup_steps=5, total_steps=3)


# ---- EMA ----------------------------------------------------------------------------------

def test_ema_arithmetic_copy_and_context():
    p = _param([2.0, -1.0])
    ema = optim.EMA([p], decay=0.75)
    p.data[...] = [6.0, -1.0]
    ema.update()  # 2 + 0.25 (6 - 2) = 3; -1 stays exactly -1
    np.testing.assert_array_equal(ema.shadow[0], [3.0, -1.0])
    p.data[...] = [-1.0, -1.0]
    ema.update()  # 3 + 0.25 (-1 - 3) = 2
    np.testing.assert_array_equal(ema.shadow[0], [2.0, -1.0])

    with ema.average_parameters():
        np.testing.assert_array_equal(p.numpy(), [2.0, -1.0])
    np.testing.assert_array_equal(p.numpy(), [-1.0, -1.0])
    with pytest.raises(RuntimeError), ema.average_parameters():
        raise RuntimeError("evaluation failed")
    np.testing.assert_array_equal(p.numpy(), [-1.0, -1.0])

    q = _param([0.0, 0.0])
    ema.copy_to([q])
    np.testing.assert_array_equal(q.numpy(), [2.0, -1.0])
    with pytest.raises(ValueError, match="shape"):
        ema.copy_to([_param([0.0])])


def test_ema_state_dict_round_trip_and_training_use():
    init, x, y = _mlp_problem(4, np.float32)
    params = [mg.tensor(a.copy(), requires_grad=True) for a in init]
    opt = optim.SGD(params, lr=0.1)
    ema = optim.EMA(params, decay=0.9)
    expected = [a.astype(np.float64) for a in init]
    for _ in range(5):
        opt.zero_grad()
        _mlp_loss(params, mg.tensor(x), mg.tensor(y), mg).backward()
        opt.step()
        ema.update()
        expected = [0.9 * e + 0.1 * p.numpy() for e, p in zip(expected, params)]
    for s, e in zip(ema.shadow, expected):
        np.testing.assert_allclose(s, e, rtol=1e-5, atol=1e-6)
    state = _through_json(ema.state_dict())
    other = optim.EMA([mg.tensor(a.copy(), requires_grad=True) for a in init])
    other.load_state_dict(state)
    assert other.decay == 0.9
    for s, t in zip(ema.shadow, other.shadow):
        np.testing.assert_array_equal(s, t)
        assert t.dtype == np.float32
