"""The image flows (nice, realnvp, glow) and their layers: every layer and every small model
is invertible (float64 tight, float32 scaled), its log-determinant equals log|det J| of the
engine's own Jacobian, samples drawn through the inverse have the log-density that the
forward pass gives them, ActNorm's data-dependent initialisation does what Glow says and
survives a checkpoint, and each model trains, samples and evaluates from the command line.
"""
import math

import numpy as np
import pytest
from clicheck import train_sample_eval
from flowcheck import assert_invertible, assert_logdet_matches_jacobian

import minigen as mg
from minigen import backend, data, models
from minigen.flows import Bijector, Chain, Logit
from minigen.flows.coupling import (AdditiveCoupling, ChannelSplitCoupling, MaskedCoupling,
                                    checkerboard_mask)
from minigen.flows.layers import (ActNorm, BatchNormFlow, DiagonalScaling, FactorOut, Inverse,
                                  InvertibleConv1x1, Squeeze)
from minigen.random import Generator
from minigen.trainer import data_spec

DIGITS = data_spec("digits", *data.load("digits"))


def to_float64(module):
    """Every parameter and buffer in float64, for tight checks."""
    for t in list(module.parameters()) + list(module.buffers()):
        t.data = t.data.astype(np.float64)
    return module


def perturb(module, seed=0, std=0.3):
    """Move every parameter off its initial value: zero-initialised output layers make
    fresh couplings the identity, which would check nothing."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p.data = p.data + backend.to_device((std * rng.standard_normal(p.shape)).astype(p.dtype),
                                            p.device)
    return module


def images(shape, seed=0, dtype=np.float64):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def check_layer(layer, x):
    """Invertible in float64 and log-det == log|det J| both ways."""
    layer = to_float64(layer)
    assert_invertible(layer, x)
    assert_logdet_matches_jacobian(layer, x)
    y, _ = layer(x)
    assert_logdet_matches_jacobian(layer, y, inverse=True)


def model(name, **config):
    entry = models.get(name)
    return entry.cls(DIGITS, generator=Generator(0),
                     **models.model_config(models.make_config(entry, config)))


TINY = {"realnvp": dict(couplings=2, channels=8, hidden_layers=1),
        "realnvp-multiscale": dict(channels=4, hidden_layers=1, scales=2, norm="batchnorm"),
        "realnvp-actnorm": dict(channels=4, hidden_layers=1, scales=2, norm="actnorm"),
        "glow": dict(levels=2, steps_per_level=2, channels=8),
        "glow-normal-prior": dict(levels=2, steps_per_level=1, channels=8, prior="normal",
                                  logit=True),
        "nice": dict(couplings=4, hidden=(16, 16)),
        "nice-normal-logit": dict(couplings=2, hidden=(16,), prior="normal", logit=True)}


def tiny_model(key, dtype=np.float64):
    """A small model, its ActNorms initialised on real digits and its batch norms holding
    running statistics, then in evaluation mode with every parameter moved off its start."""
    m = model(key.split("-")[0], **TINY[key])
    m.loss(mg.tensor(data.load("digits")[0][:64]), Generator(1))
    m.eval()
    perturb(m, std=0.05)
    return to_float64(m) if dtype == np.float64 else m


class WholeFlow(Bijector):
    """A model's pre-processing and flow as one Bijector on (N, C, H, W) images."""

    def __init__(self, m):
        super().__init__()
        self.m = m
        layers = ([m.preprocess] if m.preprocess is not None else []) + [m.flow]
        self.chain = Chain(*layers)

    def forward(self, y, cond=None):
        z, logdet = self.chain(y.reshape((len(y),) + self.m.latent_shape))
        return z.reshape(y.shape), logdet

    def inverse(self, z, cond=None):
        y, logdet = self.chain.inverse(z.reshape((len(z),) + self.m.latent_shape))
        return y.reshape(z.shape), logdet


def unit_images(n, seed=0, dtype=np.float64):
    """Dequantized-looking y in (0, 1), (n, 1, 8, 8)."""
    return mg.tensor(np.random.default_rng(seed).uniform(0.02, 0.98, (n, 1, 8, 8))
                     .astype(dtype))


# ---------------------------------------------------------------------------------------
# layers


def test_checkerboard_mask_is_the_papers():
    b = checkerboard_mask(3, 4, 0)[0, 0]
    assert b[0, 0] == 1 and b[0, 1] == 0 and b[1, 0] == 0 and b[1, 1] == 1
    np.testing.assert_array_equal(checkerboard_mask(3, 4, 1)[0, 0], 1 - b)


@pytest.mark.parametrize("mask,parity", [("checkerboard", 0), ("checkerboard", 1),
                                         ("channel", 0), ("channel", 1)])
def test_masked_coupling(mask, parity):
    layer = perturb(MaskedCoupling(2, mask, parity, hidden_channels=4, hidden_layers=1,
                                   generator=Generator(0)))
    x = images((2, 2, 4, 4))
    check_layer(layer, x)
    # the half that the mask lets through comes out unchanged
    b = layer.mask_for(x)[0].numpy()
    y, _ = layer(x)
    np.testing.assert_array_equal((y.numpy() * b), (x.numpy() * b))


def test_fresh_couplings_are_the_identity():
    x = images((2, 2, 4, 4), dtype=np.float32)
    for layer in (MaskedCoupling(2, "checkerboard", 0, 4, 1, Generator(0)),
                  ChannelSplitCoupling(2, 4, Generator(0))):
        y, logdet = layer(x)
        if isinstance(layer, MaskedCoupling):
            np.testing.assert_array_equal(y.numpy(), x.numpy())
            np.testing.assert_array_equal(logdet.numpy(), 0)
        else:  # Glow's scale starts at sigmoid(2)
            np.testing.assert_allclose(y.numpy()[:, 1], x.numpy()[:, 1] / (1 + math.exp(-2)),
                                       rtol=1e-6)


def test_channel_split_coupling():
    check_layer(perturb(ChannelSplitCoupling(4, 6, Generator(0))), images((2, 4, 2, 2)))


def test_additive_coupling_and_diagonal_scaling():
    for parity in (0, 1):
        layer = perturb(AdditiveCoupling(7, parity, hidden=(5, 5), generator=Generator(0)))
        x = images((3, 7))
        check_layer(layer, x)
        y, _ = layer(x)
        kept = np.arange(parity, 7, 2)
        np.testing.assert_array_equal(y.numpy()[:, kept], x.numpy()[:, kept])
    check_layer(perturb(DiagonalScaling(5)), images((3, 5)))


def test_squeeze_moves_each_2x2_block_into_channels():
    x = images((2, 3, 4, 6))
    y, _ = Squeeze()(x)
    assert y.shape == (2, 12, 2, 3)
    xs, ys = x.numpy(), y.numpy()
    for c in range(3):
        for a in range(2):
            for b in range(2):
                np.testing.assert_array_equal(ys[:, 4 * c + 2 * a + b], xs[:, c, a::2, b::2])
    check_layer(Squeeze(), images((2, 1, 4, 4)))
    check_layer(Inverse(Squeeze()), images((2, 4, 2, 2)))
    with pytest.raises(ValueError, match="Squeeze: height and width must be even"):
        Squeeze()(images((1, 1, 3, 4)))


def test_actnorm_data_dependent_init_and_invertibility():
    layer = to_float64(ActNorm(3))
    x = images((16, 3, 4, 4)) * 3.0 + 2.0
    y, _ = layer(x)
    assert layer.is_initialized
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(y.numpy().std(axis=(0, 2, 3)), 1, atol=1e-5)
    # later batches do not re-initialise it
    before = layer.log_scale.numpy().copy()
    layer(images((16, 3, 4, 4), seed=1))
    np.testing.assert_array_equal(layer.log_scale.numpy(), before)
    check_layer(layer, images((2, 3, 2, 2), seed=2))


def test_actnorm_in_evaluation_mode_waits_for_training_data():
    layer = ActNorm(2).eval()
    x = images((4, 2, 2, 2), dtype=np.float32)
    y, _ = layer(x)
    assert not layer.is_initialized
    np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_invertible_conv1x1():
    layer = perturb(InvertibleConv1x1(4, Generator(0)), std=0.1)
    check_layer(layer, images((2, 4, 2, 2)))


def test_batchnorm_flow_in_evaluation_mode():
    layer = to_float64(BatchNormFlow(3))
    layer(images((32, 3, 4, 4)) * 2.0 + 1.0)  # a training pass moves the running statistics
    assert np.all(layer.running_mean.numpy() > 0.01)
    layer.eval()
    perturb(layer, std=0.2)
    check_layer(layer, images((2, 3, 2, 2), seed=1))


def test_batchnorm_flow_in_training_normalises_with_the_batch():
    layer = to_float64(BatchNormFlow(2))
    x = images((16, 2, 3, 3)) * 4.0 - 1.0
    y, logdet = layer(x)
    np.testing.assert_allclose(y.numpy().mean(axis=(0, 2, 3)), 0, atol=1e-9)
    var = x.numpy().var(axis=(0, 2, 3))
    np.testing.assert_allclose(logdet.numpy(), -0.5 * 9 * np.log(var + 1e-5).sum())


@pytest.mark.parametrize("prior", ["normal", "learned"])
def test_factor_out(prior):
    inner = Chain(MaskedCoupling(2, "checkerboard", 0, 4, 1, Generator(1)),
                  MaskedCoupling(2, "channel", 1, 4, 1, Generator(2)))
    layer = perturb(FactorOut(4, inner, prior=prior, generator=Generator(0)))
    x = images((2, 4, 2, 2))
    check_layer(layer, x)
    y, _ = layer(x)
    if prior == "normal":  # the factored-out half is left as it is
        np.testing.assert_array_equal(y.numpy()[:, 2:], x.numpy()[:, 2:])


@pytest.mark.parametrize("layer", [
    MaskedCoupling(4, "checkerboard", 1, 8, 2, Generator(0)),
    ChannelSplitCoupling(4, 8, Generator(0)),
    InvertibleConv1x1(4, Generator(0)),
    DiagonalScaling(4)], ids=lambda layer: type(layer).__name__)
def test_layers_invert_in_float32(layer):
    perturb(layer, std=0.1)
    x = images((4, 4, 4, 4) if not isinstance(layer, DiagonalScaling) else (4, 4),
               dtype=np.float32)
    assert_invertible(layer, x)


# ---------------------------------------------------------------------------------------
# whole models


def test_realnvp_is_the_identity_on_the_logit_at_init():
    m = model("realnvp")
    y = unit_images(3, dtype=np.float32)
    z, logdet = m.flow(m.preprocess(y)[0])
    np.testing.assert_array_equal(z.numpy(), Logit(0.05)(y)[0].numpy())
    np.testing.assert_array_equal(logdet.numpy(), 0)
    assert all(k.startswith("flow.layers.") for k in m.state_dict())
    assert len(m.state_dict()) == 6 * 7


@pytest.mark.parametrize("key", list(TINY))
def test_whole_flow_is_invertible_and_its_logdet_is_the_jacobians(key):
    whole = WholeFlow(tiny_model(key))
    y = unit_images(2)
    assert_invertible(whole, y)
    assert_logdet_matches_jacobian(whole, y, atol=1e-7)


@pytest.mark.parametrize("key", ["realnvp", "glow", "nice"])
def test_whole_flow_inverts_in_float32(key):
    assert_invertible(WholeFlow(tiny_model(key, dtype=np.float32)),
                      unit_images(4, dtype=np.float32), rtol=1e-3)


@pytest.mark.parametrize("key", list(TINY))
def test_samples_have_the_log_density_of_the_forward_pass(key):
    m = tiny_model(key)
    y, log_p = m.sample_with_log_prob(8, Generator(3))
    assert y.shape == (8, 1, 8, 8)
    np.testing.assert_allclose(m.log_prob(y).numpy(), log_p.numpy(), rtol=1e-9, atol=1e-7)
    x = m.sample(5, Generator(3))
    assert x.dtype == np.uint8 and x.shape == (5, 1, 8, 8) and x.max() <= 16


@pytest.mark.parametrize("key", ["realnvp", "glow", "nice"])
def test_nll_is_the_dequantized_bound_and_deterministic(key):
    m = tiny_model(key, dtype=np.float32)
    x = mg.tensor(data.load("digits", "test")[0][:16])
    nll = m.nll(x).numpy()
    np.testing.assert_array_equal(m.nll(x).numpy(), nll)
    y, _ = m.dequantizer.dequantize(x, Generator(5))
    np.testing.assert_allclose(m.nll(x, Generator(5)).numpy(),
                               64 * math.log(17) - m.log_prob(y).numpy(), rtol=1e-6)


def test_checkpoint_keeps_actnorm_initialisation():
    m = model("glow", **TINY["glow"])
    m.loss(mg.tensor(data.load("digits")[0][:64]), Generator(1))
    state = m.state_dict()
    norms = [k for k in state if k.endswith("initialized")]
    assert norms and all(state[k][0] == 1 for k in norms)
    fresh = model("glow", **TINY["glow"])
    fresh.load_state_dict(state)
    x = mg.tensor(data.load("digits")[0][64:128])
    fresh.loss(x, Generator(2))  # a training step on new data must not re-initialise
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(value, state[key], err_msg=key)


# ---------------------------------------------------------------------------------------
# end to end


E2E = {"realnvp": ["couplings=2", "channels=8", "hidden_layers=1"],
       "glow": ["levels=2", "steps_per_level=1", "channels=8"],
       "nice": ["couplings=2", "hidden=16"]}


@pytest.mark.parametrize("name", list(E2E))
def test_cli_trains_samples_and_evaluates(name, tmp_path, capsys):
    metrics = train_sample_eval(name, "digits", ["--config", "steps=4", "batch_size=32",
                                                 "eval_batch_size=180", *E2E[name]],
                                tmp_path, capsys)
    assert metrics["steps"] == 4
    assert np.isfinite(metrics["test_bpd"]) and 0 < metrics["test_bpd"] < 20
