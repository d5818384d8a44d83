"""Variational dequantization (Flow++, section 3.1): y stays in x's cell, log q(y | x) is the
change of variables of the noise flow (checked against the engine's Jacobian), q integrates
to 1 over the cell, it starts close to uniform noise, and it trains with a flow."""
import math

import numpy as np
import pytest
from flowcheck import assert_invertible, assert_logdet_matches_jacobian, jacobian

import minigen as mg
from minigen import backend, data
from minigen.flows import Chain, Logit, UniformDequantizer, eval_generator, make_dequantizer
from minigen.flows.base import standard_normal_log_prob
from minigen.flows.dequant import ElementwiseAffine, VariationalDequantizer
from minigen.models import DataSpec

KL_START = 0.0095  # KL(sigmoid(1.75 eps) || U(0, 1)) per dimension, in nats (dequant.py)


def spec(shape, levels):
    return DataSpec("test", tuple(shape), "discrete", levels=levels)


def levels_batch(shape, levels, n, seed=0):
    """n examples of K-level data, with the extreme levels 0 and K - 1 always present."""
    x = np.random.default_rng(seed).integers(0, levels, (n,) + tuple(shape))
    x.reshape(n, -1)[0], x.reshape(n, -1)[1] = 0, levels - 1
    return mg.tensor(x.astype(np.uint8))


def scramble(module, seed, scale=0.1):
    """Random values for every parameter: the zero-initialised last layers make a fresh
    dequantizer's couplings identities, which would test nothing."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        noise = backend.to_device(scale * rng.standard_normal(p.shape), p.device)
        p.data = (p.data + noise).astype(p.dtype)
    return module


def to_float64(module):
    for t in list(module.parameters()) + list(module.buffers()):
        t.data = t.data.astype(np.float64)
    return module


SHAPES = [((2, 4, 4), 17), ((3,), 256)]  # an image (conv nets) and a vector (MLPs)


@pytest.mark.parametrize("shape,levels", SHAPES)
def test_every_y_lies_in_its_cell(shape, levels):
    deq = make_dequantizer("variational", spec(shape, levels), mg.random.Generator(0),
                           layers=2, channels=8)
    assert isinstance(deq, VariationalDequantizer)
    x = levels_batch(shape, levels, 64)
    for log_scale in (None, math.log(30.0)):  # also with u pushed hard against 0 and 1
        if log_scale is not None:
            deq.flow.layers[0].log_scale.data[...] = log_scale
        y, log_q = deq.dequantize(x, mg.random.Generator(1))
        assert y.shape == x.shape and y.dtype == np.float32
        assert log_q.shape == (64,) and log_q.dtype == np.float64
        assert np.all(np.isfinite(log_q.numpy()))
        y64, x64 = y.numpy().astype(np.float64), x.numpy().astype(np.float64)
        assert np.all(y64 > x64 / levels) and np.all(y64 < (x64 + 1) / levels)
    with pytest.raises(ValueError, match="VariationalDequantizer.dequantize.*expected"):
        deq.dequantize(mg.tensor(np.zeros((2, 5), np.uint8)), mg.random.Generator(0))


@pytest.mark.parametrize("shape,levels", SHAPES)
def test_log_q_is_the_change_of_variables_of_the_noise_flow(shape, levels):
    deq = scramble(VariationalDequantizer(spec(shape, levels), mg.random.Generator(0),
                                          layers=3, channels=4), seed=1)
    x = levels_batch(shape, levels, 3)
    y, log_q = deq.dequantize(x, mg.random.Generator(7))
    eps = mg.random.Generator(7).normal(x.shape, dtype="float32")  # the same draw

    to_float64(deq)
    eps64 = eps.astype("float64")
    context = deq.features(x.astype("float64"))
    assert_invertible(deq.flow, eps64, cond=context)
    assert_logdet_matches_jacobian(deq.flow, eps64, cond=context)
    # and dequantize's log q(y | x) is log N(eps) - log|det du/deps| + D log K, with the
    # Jacobian of eps -> u taken by the engine
    jac = jacobian(lambda e: deq.flow(e, context)[0], eps64)
    sign, log_det = np.linalg.slogdet(jac)
    assert np.all(sign != 0)
    dims = math.prod(shape)
    want = standard_normal_log_prob(eps64).numpy() - log_det + dims * math.log(levels)
    np.testing.assert_allclose(log_q.numpy(), want, rtol=1e-5, atol=1e-4)
    u = deq.flow(eps64, context)[0].numpy()
    np.testing.assert_allclose(y.numpy(), (x.numpy() + u) / levels, rtol=1e-6, atol=1e-7)


# scramble scales that keep q far from uniform (the last assert) yet resolved by the grid
@pytest.mark.parametrize("levels,cell,points,scale", [(5, [2], 20000, 0.3),
                                                      (3, [0, 2], 400, 0.15)])
def test_q_integrates_to_one_over_the_cell(levels, cell, points, scale):
    """The midpoint rule over a grid of the cell in y. The density at each grid point comes
    from inverting the flow: u = K y - x, eps = g^-1(u), and
    q(y | x) = N(eps) |det deps/du| K^D. q vanishes at the cell's faces faster than any
    power (logit-normal tails), so the rule needs no special care there."""
    dims = len(cell)
    deq = to_float64(scramble(VariationalDequantizer(spec((dims,), levels),
                                                     mg.random.Generator(0), layers=4,
                                                     channels=16), seed=2, scale=scale))
    mid = (np.arange(points) + 0.5) / points  # midpoints in u, each of width 1 / points
    u = np.stack(np.meshgrid(*[mid] * dims, indexing="ij"), axis=-1).reshape(-1, dims)
    x = np.broadcast_to(np.array(cell, np.float64), u.shape)
    y = (x + u) / levels
    with mg.no_grad():
        context = deq.features(mg.tensor(x))
        eps, log_det_inverse = deq.flow.inverse(mg.tensor(levels * y - x), context)
        log_q = (standard_normal_log_prob(eps) + log_det_inverse
                 + dims * math.log(levels)).numpy()
    cell_volume = levels ** -dims
    total = np.exp(log_q).sum() * cell_volume / len(u)
    assert total == pytest.approx(1.0, abs=0.01)
    # the scrambled flow is far from uniform, so the check above is not a triviality
    assert np.exp(log_q - dims * math.log(levels)).max() > 1.5


def tiny_flow(shape):
    """p(y): RealNVP's logit transform, a learned affine per dimension, N(0, I)."""
    return Chain(Logit(0.05), ElementwiseAffine(shape))


def nll_bound(model, dequantizer, x, generator):
    """log q(y | x) - log p(y) per example, every change-of-variables term included."""
    y, log_q = dequantizer.dequantize(x, generator)
    z, log_det = model(y)
    return log_q - (standard_normal_log_prob(z) + log_det)


@pytest.fixture(scope="module")
def digits():
    x, _ = data.load("digits", "train")
    return mg.tensor(x[:128])


def test_bound_at_the_start_is_within_the_logit_normal_gap_of_uniform(digits):
    """A fresh dequantizer is u = sigmoid(1.75 eps) whatever x: its entropy is
    KL_START = 0.0095 nats per dimension below uniform noise's, so the bound is about that
    much worse (the model's log-density changes little across a cell)."""
    shape, levels = (1, 8, 8), 17
    dims = math.prod(shape)
    model = tiny_flow(shape)
    var = VariationalDequantizer(spec(shape, levels), mg.random.Generator(0))
    uniform = UniformDequantizer(levels)
    with mg.no_grad():
        draws = [(nll_bound(model, var, digits, mg.random.Generator(s)).numpy(),
                  var.dequantize(digits, mg.random.Generator(s))[1].numpy(),
                  nll_bound(model, uniform, digits, mg.random.Generator(s)).numpy())
                 for s in range(4)]
    var_nll, var_log_q, uniform_nll = (np.mean([d[i] for d in draws]) for i in range(3))
    # E[log q(u | x)] = KL(q || U) per dimension, by Monte Carlo over 4 x 128 x 64 draws
    assert (var_log_q - dims * math.log(levels)) / dims == pytest.approx(KL_START, abs=0.002)
    assert (var_nll - uniform_nll) / dims < KL_START + 0.01


def test_training_with_variational_noise_lowers_the_bound_and_moves_q(digits):
    shape, levels = (1, 8, 8), 17
    model = tiny_flow(shape)
    deq = VariationalDequantizer(spec(shape, levels), mg.random.Generator(0), layers=2,
                                 channels=8)
    start = {name: p.numpy().copy() for name, p in deq.named_parameters()}
    params = list(model.parameters()) + list(deq.parameters())
    opt = mg.optim.Adam(params, lr=1e-2)

    def test_bound():
        with mg.no_grad():
            return nll_bound(model, deq, digits, eval_generator(digits)).numpy().mean()

    before = test_bound()
    generator = mg.random.Generator(1)
    for _ in range(40):
        opt.zero_grad()
        nll_bound(model, deq, digits, generator).mean().backward()
        for name, p in deq.named_parameters():
            assert p.grad is not None and np.all(np.isfinite(p.grad.numpy())), name
        opt.step()
    after = test_bound()
    assert after < before - 0.05 * math.prod(shape)  # at least 0.05 nats per dimension
    for name, p in deq.named_parameters():
        assert not np.allclose(p.numpy(), start[name]), f"{name} did not train"


def test_q_alone_learns_to_beat_uniform_noise_under_a_fixed_model(digits):
    """With p fixed to a density that changes sharply inside the cells (the per-dimension
    affine scales the logits by e), the best q puts its noise where p is high: training q
    alone must take the bound well below uniform noise's for the same p. This checks that the
    gradient reaches q's parameters through the sampled y (the reparameterisation)."""
    shape, levels = (1, 8, 8), 17
    dims = math.prod(shape)
    model = tiny_flow(shape)
    model.layers[1].log_scale.data[...] = 1.0
    deq = VariationalDequantizer(spec(shape, levels), mg.random.Generator(0), layers=2,
                                 channels=8)
    opt = mg.optim.Adam(list(deq.parameters()), lr=1e-2)
    generator = mg.random.Generator(1)
    for _ in range(40):
        opt.zero_grad()
        nll_bound(model, deq, digits, generator).mean().backward()
        opt.step()
    with mg.no_grad():
        uniform = nll_bound(model, UniformDequantizer(levels), digits, eval_generator(digits))
        learned = nll_bound(model, deq, digits, eval_generator(digits))
    # measured: 16.74 nats per dimension with uniform noise, 14.93 with q after 40 steps
    assert learned.numpy().mean() < uniform.numpy().mean() - 0.5 * dims


def test_uniform_log_q_is_d_log_k():
    x = levels_batch((1, 3, 3), 17, 4)
    np.testing.assert_allclose(
        UniformDequantizer(17).dequantize(x, mg.random.Generator(0))[1].numpy(),
        9 * math.log(17))
