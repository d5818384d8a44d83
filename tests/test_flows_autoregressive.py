"""MAF and IAF: the affine autoregressive layer both ways, the permutation, whole flows and
the registered models.

Each layer and each small flow is inverted exactly (float64 tight, float32 scaled), its
log-determinant equals log|det J| of the engine's own Jacobian, and each autoregressive
layer's Jacobian is lower triangular (output d never depends on inputs after d). The 2-D
models' densities integrate to 1 on a fine grid; samples carry the log-density that the
forward evaluation gives them; MAF's density and IAF's sampling take one MADE pass per
layer, the other directions D; and both models train, sample and evaluate from the CLI.
"""
import json

import numpy as np
import pytest
from scipy.special import ndtri

import minigen as mg
from flowcheck import assert_invertible, assert_logdet_matches_jacobian, jacobian
from minigen import cli, models, trainer
from minigen.flows import Chain, Inverse, eval_generator, standard_normal_log_prob
from minigen.flows.autoregressive import (AffineAutoregressive, MADEConditioner,
                                          Permutation, affine_autoregressive_flow)
from minigen.models import DataSpec
from minigen.random import Generator

MOONS_SPEC = DataSpec("toy-moons", (2,), "continuous", box=((-2.0, 3.0), (-1.5, 2.0)))
SMALL_IMAGE_SPEC = DataSpec("digits", (1, 2, 3), "discrete", levels=17)  # D = 6
DIGITS_SPEC = DataSpec("digits", (1, 8, 8), "discrete", levels=17)
SMALL = dict(layers=3, hidden=(24, 24))


def make_model(name, spec, seed=0, **config):
    entry = models.get(name)
    full = models.model_config(models.make_config(entry, {**SMALL, **config}))
    return entry.cls(spec, generator=Generator(seed), **full)


def normal64(shape, seed=1):
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape))


def affine_layer(dims=5, seed=0):
    layer = AffineAutoregressive(dims, (16, 16), Generator(seed))
    # the checks below are only worth something if the layer is far from the identity
    _, alpha = layer.shift_and_log_scale(normal64((8, dims)))
    assert alpha.numpy()[:, 1:].std() > 0.05
    return layer


LAYERS = {
    "maf layer": lambda: affine_layer(),
    "iaf layer": lambda: Inverse(affine_layer()),
    "reversal": lambda: Permutation(np.arange(5)[::-1]),
    "permutation": lambda: Permutation([2, 0, 4, 1, 3]),
    "maf flow": lambda: affine_autoregressive_flow(5, 3, (16, 16), Generator(0), "random"),
    "iaf flow": lambda: affine_autoregressive_flow(5, 3, (16, 16), Generator(0), "reverse",
                                                   inverted=True),
}


# ----------------------------------------------------------------------------------------
# layers and small flows


@pytest.mark.parametrize("name", LAYERS)
def test_invertible_float64_and_float32(name):
    layer = LAYERS[name]()
    x = normal64((7, 5))
    assert_invertible(layer, x)
    assert_invertible(layer, x.astype("float32"))


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("inverse", [False, True])
def test_logdet_matches_engine_jacobian(name, inverse):
    assert_logdet_matches_jacobian(LAYERS[name](), normal64((3, 5), seed=2), inverse=inverse)


@pytest.mark.parametrize("name", ["maf layer", "iaf layer"])
@pytest.mark.parametrize("inverse", [False, True])
def test_jacobian_is_lower_triangular_in_the_ordering(name, inverse):
    layer = LAYERS[name]()
    fn = layer.inverse if inverse else layer
    jac = jacobian(lambda t: fn(t)[0], normal64((4, 5), seed=3))
    assert np.all(jac[:, np.triu_indices(5, k=1)[0], np.triu_indices(5, k=1)[1]] == 0)
    assert np.all(np.abs(np.diagonal(jac, axis1=1, axis2=2)) > 0)
    assert np.abs(jac[:, np.tril_indices(5, k=-1)[0], np.tril_indices(5, k=-1)[1]]).max() > 1e-3


def test_maf_layer_is_the_papers_affine_map():
    """z_d = (x_d - mu_d) exp(-alpha_d) with |alpha| soft-clamped below the bound, and
    logdet = -sum alpha."""
    layer = affine_layer()
    x = normal64((6, 5), seed=4)
    mu, alpha = layer.shift_and_log_scale(x)
    z, logdet = layer(x)
    np.testing.assert_allclose(z.numpy(), (x.numpy() - mu.numpy()) * np.exp(-alpha.numpy()))
    np.testing.assert_allclose(logdet.numpy(), -alpha.numpy().sum(1))
    big = mg.tensor(np.full((2, 5), 1e4))
    assert np.abs(layer.shift_and_log_scale(big)[1].numpy()).max() <= layer.log_scale_bound


def test_conditioner_outputs_of_dimension_d_see_only_earlier_inputs():
    net = MADEConditioner(6, (20, 20), 2, Generator(3))
    for k in range(2):
        jac = jacobian(lambda t: net(t)[:, :, k], normal64((3, 6), seed=5))
        assert np.all(jac[:, np.triu_indices(6)[0], np.triu_indices(6)[1]] == 0)


def count_passes(monkeypatch):
    calls = []
    original = MADEConditioner.forward
    monkeypatch.setattr(MADEConditioner, "forward",
                        lambda self, x: calls.append(1) or original(self, x))
    return calls


@pytest.mark.parametrize("name, density_passes, sample_passes", [("maf", 1, 6),
                                                                 ("iaf", 6, 1)])
def test_maf_density_in_one_pass_iaf_sampling_in_one_pass(monkeypatch, name, density_passes,
                                                         sample_passes):
    model = make_model(name, SMALL_IMAGE_SPEC)
    calls = count_passes(monkeypatch)
    model.nll(mg.tensor(np.zeros((2, 1, 2, 3), np.uint8)))
    assert len(calls) == density_passes * SMALL["layers"]
    calls.clear()
    model.sample(2, Generator(0))
    assert len(calls) == sample_passes * SMALL["layers"]


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="ordering must be one of reverse, random"):
        affine_autoregressive_flow(3, 2, (8,), Generator(0), "natural")
    with pytest.raises(ValueError, match=r"not a permutation"):
        Permutation([0, 0, 1])
    with pytest.raises(ValueError, match=r"Permutation.forward: expected input of shape"):
        Permutation([1, 0])(normal64((2, 3)))
    with pytest.raises(ValueError, match=r"MADEConditioner: expected input of shape \(N, 5\)"):
        affine_layer()(normal64((2, 4)))
    with pytest.raises(ValueError, match="applies to discrete data only"):
        make_model("maf", MOONS_SPEC, dequant="variational")


# ----------------------------------------------------------------------------------------
# whole models


@pytest.mark.parametrize("name", ["maf", "iaf"])
@pytest.mark.parametrize("spec", [MOONS_SPEC, SMALL_IMAGE_SPEC], ids=["2-D", "levels"])
def test_whole_model_flow_invertible_with_exact_logdet(name, spec):
    """Logit transform included for discrete data: y in (0, 1)."""
    model = make_model(name, spec)
    rng = np.random.default_rng(6)
    y = mg.tensor(rng.uniform(0.02, 0.98, (3, spec.dims)) if spec.kind == "discrete"
                  else rng.standard_normal((3, 2)))
    assert_invertible(model.flow, y)
    assert_invertible(model.flow, y.astype("float32"))
    for inverse in (False, True):
        probe = model.flow(y)[0] if inverse else y
        assert_logdet_matches_jacobian(model.flow, probe, inverse=inverse)


def integral_on_grid(model, box, cells):
    """Midpoint rule for the integral of the model's density over box = ((lo, hi), ...)."""
    (x0, x1), (y0, y1) = box
    xs = x0 + (x1 - x0) * (np.arange(cells) + 0.5) / cells
    ys = y0 + (y1 - y0) * (np.arange(cells) + 0.5) / cells
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
    with mg.no_grad():
        log_p = model.log_density(mg.tensor(grid.astype(np.float32))).numpy()
    return np.exp(log_p).sum() * (x1 - x0) * (y1 - y0) / cells ** 2


def widened(box, by):
    return tuple((lo - by * (hi - lo), hi + by * (hi - lo)) for lo, hi in box)


@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_2d_density_integrates_to_one(tmp_path, name):
    """Trained briefly on toy-moons (two bent ridges already), integrated on a 400 x 400
    grid over the data's box widened by its own size each side: after 300 steps the flow
    still puts 2-3% of its mass just outside the data's box (1% after 1000 steps)."""
    run = trainer.Run(name, "toy-moons", out=tmp_path, config=dict(
        SMALL, steps=300, batch_size=64))
    run.train(progress=False)
    assert run.model.nll(mg.tensor(run.x_test)).numpy().mean() < 3.2  # it learned something
    assert abs(integral_on_grid(run.model, widened(run.spec.box, 1.0), 400) - 1) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_2d_density_of_the_default_run_integrates_to_one_over_the_data_box(tmp_path, name):
    """The registered default config trained on toy-moons, over the trainer's data box
    (10% margin): no more than 1% of the mass outside it."""
    run = trainer.Run(name, "toy-moons", out=tmp_path)
    run.train(progress=False)
    assert abs(integral_on_grid(run.model, run.spec.box, 400) - 1) < 0.01


@pytest.mark.parametrize("name", ["maf", "iaf"])
@pytest.mark.parametrize("spec", [MOONS_SPEC, DIGITS_SPEC], ids=["2-D", "digits"])
def test_samples_carry_the_log_density_of_forward_evaluation(name, spec):
    model = make_model(name, spec)
    with mg.no_grad():
        y, log_p = model.sample_with_log_density(64, Generator(7))
        forward = model.log_density(y).numpy()
    assert np.all(np.isfinite(forward))
    np.testing.assert_allclose(log_p.numpy(), forward, rtol=1e-4, atol=1e-3 * spec.dims)


@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_from_uniform_is_the_inverse_cdf_then_the_inverse_flow(name):
    model = make_model(name, MOONS_SPEC)
    u = np.random.default_rng(8).uniform(0.001, 0.999, (20, 2))
    points = model.from_uniform(u)
    assert points.shape == (20, 2) and points.dtype == np.float64
    z, _ = model.flow(mg.tensor(points))
    np.testing.assert_allclose(z.numpy(), ndtri(u), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_discrete_nll_is_deterministic_and_counts_every_term(name):
    """Uniform dequantization: nll = D log K - log p(y), log p(y) with the logit's term."""
    model = make_model(name, SMALL_IMAGE_SPEC)
    x = mg.tensor(np.random.default_rng(9).integers(0, 17, (5, 1, 2, 3)).astype(np.uint8))
    first, again = model.nll(x).numpy(), model.nll(x).numpy()
    np.testing.assert_array_equal(first, again)
    y, _ = model.dequantizer.dequantize(x, eval_generator(x))
    flat = y.reshape(5, 6)
    z, logdet = model.flow(flat)
    np.testing.assert_allclose(first, 6 * np.log(17) - (standard_normal_log_prob(z)
                                                        + logdet).numpy(), rtol=1e-10)
    samples = model.sample(10, Generator(1))
    assert samples.dtype == np.uint8 and samples.shape == (10, 1, 2, 3)
    assert samples.max() <= 16


@pytest.mark.parametrize("name", ["maf", "iaf"])
def test_variational_dequantizer_is_trained_with_the_flow(name):
    pytest.importorskip("minigen.flows.dequant")
    model = make_model(name, SMALL_IMAGE_SPEC, dequant="variational")
    names = [n for n, _ in model.named_parameters()]
    assert any(n.startswith("dequantizer.") for n in names)
    x = mg.tensor(np.random.default_rng(10).integers(0, 17, (4, 1, 2, 3)).astype(np.uint8))
    loss = model.loss(x, Generator(2))
    loss.backward()
    assert np.isfinite(loss.item())
    assert all(p.grad is not None for n, p in model.named_parameters()
               if n.startswith("dequantizer."))
    np.testing.assert_array_equal(model.nll(x).numpy(), model.nll(x).numpy())


def test_chain_of_layers_without_permutation_stays_autoregressive():
    """Two MAF layers composed, no reordering: still triangular, log-dets add."""
    flow = Chain(affine_layer(seed=1), affine_layer(seed=2))
    jac = jacobian(lambda t: flow(t)[0], normal64((2, 5), seed=11))
    assert np.all(jac[:, np.triu_indices(5, k=1)[0], np.triu_indices(5, k=1)[1]] == 0)
    assert_logdet_matches_jacobian(flow, normal64((2, 5), seed=11))


# ----------------------------------------------------------------------------------------
# end to end


# on digits IAF's density takes 64 MADE passes a layer, at every step and evaluation
TINY = {"toy-moons": dict(steps=6, layers=2), "digits": dict(steps=4, layers=1)}


@pytest.mark.parametrize("name", ["maf", "iaf"])
@pytest.mark.parametrize("data", ["toy-moons", "digits"])
def test_cli_trains_samples_and_evaluates(tmp_path, capsys, name, data):
    out = tmp_path / "run"
    config = dict(TINY[data], batch_size=32, hidden="16,16", eval_batch_size=400)
    assert cli.main(["train", name, "--data", data, "--out", str(out), "--quiet", "--config",
                     *(f"{key}={value}" for key, value in config.items())]) == 0
    for file in ("metrics.json", "checkpoint.npz", "samples.png", "log.csv"):
        assert (out / file).is_file(), file
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["steps"] == config["steps"]
    assert np.isfinite(metrics["test_nll_nats"])
    if data == "digits":
        assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"]
                                                    / (64 * np.log(2)))
    assert cli.main(["sample", str(out), "--n", "9", "--out", str(tmp_path / "more.png")]) == 0
    assert (tmp_path / "more.png").is_file()
    capsys.readouterr()
    assert cli.main(["eval", str(out)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_nll_nats"] == pytest.approx(metrics["test_nll_nats"], rel=1e-6)
