"""The CDF flows of issue 6: cdf-flow (1-D) and ar-flow-2d (2-D autoregressive), with the
mixture-CDF bijection they share (minigen.flows.cdf) and the toy-1d data.

Every check is on the bijection the model uses (model.flow): invertibility, the
log-determinant against the engine's own Jacobian, the density integrating to one, the
sampler's log-density against the forward one, and finiteness far in the tails.
"""
import json

import numpy as np
import pytest
from flowcheck import assert_invertible, assert_logdet_matches_jacobian, jacobian

import minigen as mg
from minigen import backend, cli, data, models, trainer
from minigen.flows.cdf import (MixtureCDF, inverse_mixture_logit_cdf, log_normal_cdf,
                               mixture_logit_cdf, standard_logistic_log_prob)
from minigen.random import Generator

MIXTURES = ("gaussian", "logistic")


def build(name, data_name, **config):
    """A model as the trainer builds it, for `data_name`'s train split."""
    x, y = data.load(data_name)
    entry = models.get(name)
    spec = trainer.data_spec(data_name, x, y)
    return entry.cls(spec, generator=Generator(0),
                     **models.model_config(models.make_config(entry, config))), x


def perturb(model, seed=0, scale=0.3):
    """Random parameters: an untrained model has equal weights and, for ar-flow-2d, a
    conditioner whose last layer is zero, which would hide any error in the x1 -> x2 path."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] += backend.to_device(rng.normal(0, scale, p.shape).astype(p.dtype),
                                         p.device)
    return model


def points(n, dims, seed=0, spread=2.0):
    return mg.tensor(np.random.default_rng(seed).normal(0, spread, (n, dims)))


def cdf_flow(mixture="gaussian", components=4):
    return perturb(build("cdf-flow", "toy-1d", components=components, mixture=mixture)[0])


def ar_flow(mixture="gaussian", components=5, hidden=(16, 16)):
    return perturb(build("ar-flow-2d", "toy-moons", components=components, mixture=mixture,
                         hidden=hidden)[0])


# --- the data ----------------------------------------------------------------------------

def test_toy_1d_is_a_fixed_three_mode_mixture_with_different_splits():
    parts = {split: data.load("toy-1d", split)[0] for split in ("train", "test", "valid")}
    assert {s: x.shape for s, x in parts.items()} == {
        "train": (10_000, 1), "test": (2_000, 1), "valid": (2_000, 1)}
    assert all(x.dtype == np.float32 for x in parts.values())
    np.testing.assert_array_equal(data.load("toy-1d", "test")[0], parts["test"])
    assert not set(parts["train"].ravel()) & set(parts["test"].ravel())
    # Kolmogorov-Smirnov against weights 0.25 / 0.5 / 0.25, means -2, 0.5, 3, sds 0.4, 0.9,
    # 0.3, at the 1% level
    from scipy.stats import norm
    x = np.sort(parts["train"].ravel().astype(np.float64))
    cdf = 0.25 * norm.cdf(x, -2, 0.4) + 0.5 * norm.cdf(x, 0.5, 0.9) + 0.25 * norm.cdf(x, 3, 0.3)
    assert np.abs(cdf - np.arange(1, len(x) + 1) / len(x)).max() < 1.63 / np.sqrt(len(x))


# --- the pieces ----------------------------------------------------------------------------

def test_log_normal_cdf_is_accurate_in_the_tails_and_twice_differentiable():
    mpmath = pytest.importorskip("mpmath")
    xs = np.array([-1e4, -200.0, -40.0, -9.0, -1.0, 0.0, 3.0, 9.0, 40.0])
    got = log_normal_cdf(mg.tensor(xs)).numpy()
    with mpmath.workdps(60):  # log(1 - 1e-19) needs more than double's digits
        want = [float(mpmath.log(mpmath.ncdf(mpmath.mpf(v)))) for v in xs]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    x = mg.tensor(np.array([-30.0, -5.0, -0.3, 0.7, 6.0]), requires_grad=True)
    assert mg.gradcheck(log_normal_cdf, [x])
    assert mg.gradgradcheck(log_normal_cdf, [x])


@pytest.mark.parametrize("mixture", MIXTURES)
def test_mixture_logit_cdf_is_the_logit_of_the_mixture_cdf(mixture):
    rng = np.random.default_rng(1)
    w, m, s = (mg.tensor(rng.normal(0, 1, 3)) for _ in range(3))
    x = mg.tensor(np.linspace(-4, 4, 9))
    z, log_dz = mixture_logit_cdf(x, w, m, s, mixture)
    weights = np.exp(w.numpy()) / np.exp(w.numpy()).sum()
    t = (x.numpy()[:, None] - m.numpy()) / np.exp(s.numpy())
    if mixture == "gaussian":
        from scipy.stats import norm
        cdf, pdf = norm.cdf(t), norm.pdf(t)
    else:
        cdf = 1 / (1 + np.exp(-t))
        pdf = cdf * (1 - cdf)
    F = (weights * cdf).sum(1)
    f = (weights * pdf / np.exp(s.numpy())).sum(1)
    np.testing.assert_allclose(z.numpy(), np.log(F / (1 - F)), rtol=1e-10)
    np.testing.assert_allclose(log_dz.numpy(), np.log(f / (F * (1 - F))), rtol=1e-10)
    # and the base's log-density undoes the inverse sigmoid: log p(x) = log f(x)
    log_p = standard_logistic_log_prob(z.reshape(-1, 1)) + log_dz
    np.testing.assert_allclose(log_p.numpy(), np.log(f), rtol=1e-10)


@pytest.mark.parametrize("mixture", MIXTURES)
def test_inverse_finds_targets_far_outside_the_starting_bracket(mixture):
    w, m, s = mg.tensor([0.0, 0.0]), mg.tensor([-1.0, 2.0]), mg.tensor([-2.0, -1.0])
    z = mg.tensor(np.array([-3e4, -50.0, 0.0, 50.0, 3e4]))
    x = inverse_mixture_logit_cdf(z, w, m, s, mixture)
    np.testing.assert_allclose(mixture_logit_cdf(x, w, m, s, mixture)[0].numpy(), z.numpy(),
                               rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="finite"):
        inverse_mixture_logit_cdf(mg.tensor([np.inf]), w, m, s, mixture)


def test_errors_name_the_op_and_the_shapes():
    layer = MixtureCDF(1, 3, ((-1.0, 1.0),))
    with pytest.raises(ValueError, match=r"MixtureCDF.forward: expected \(N, 1\).*\(4, 2\)"):
        layer(mg.zeros((4, 2)))
    with pytest.raises(ValueError, match="mixture must be one of gaussian, logistic"):
        MixtureCDF(1, 3, ((-1.0, 1.0),), mixture="laplace")
    with pytest.raises(ValueError, match=r"mixture_logit_cdf: .*\(3,\), \(3,\), \(2,\)"):
        mixture_logit_cdf(mg.zeros(5), mg.zeros(3), mg.zeros(3), mg.zeros(2))
    model, _ = build("cdf-flow", "toy-1d")
    with pytest.raises(ValueError, match=r"from_uniform: .*open interval"):
        model.from_uniform(np.array([[0.0], [0.5]]))
    with pytest.raises(ValueError, match=r"cdf-flow: expected points \(N, 1\)"):
        model.nll(mg.zeros((3, 2)))


# --- the bijections: invertible, log-determinant = log |det J| --------------------------------

@pytest.mark.parametrize("mixture", MIXTURES)
@pytest.mark.parametrize("which", ["cdf-flow", "ar-flow-2d"])
def test_model_bijection_is_invertible(which, mixture):
    model = cdf_flow(mixture) if which == "cdf-flow" else ar_flow(mixture)
    assert_invertible(model.flow, points(16, model.dims))
    assert_invertible(model.flow, points(16, model.dims, seed=1).astype("float32"))


@pytest.mark.parametrize("mixture", MIXTURES)
def test_cdf_flow_logdet_matches_the_jacobian(mixture):
    flow = cdf_flow(mixture).flow
    x = points(12, 1)
    assert_logdet_matches_jacobian(flow, x)
    z, _ = flow(x)
    # the inverse's Jacobian, taken through the forward at the found points: it has no
    # graph of its own (bisection), so check -logdet against the forward Jacobian there
    back, logdet_inverse = flow.inverse(z)
    jac = jacobian(lambda t: flow(t)[0], back)
    np.testing.assert_allclose(logdet_inverse.numpy(), -np.log(np.abs(jac[:, 0, 0])),
                               rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("mixture", MIXTURES)
def test_ar_flow_logdet_matches_the_full_2x2_jacobian(mixture):
    flow = ar_flow(mixture).flow
    x = points(12, 2)
    assert_logdet_matches_jacobian(flow, x)
    jac = jacobian(lambda t: flow(t)[0], x)
    # autoregressive: z1 does not see x2, and z2 does see x1 (else the test proves little)
    np.testing.assert_array_equal(jac[:, 0, 1], 0)
    assert np.all(np.abs(jac[:, 1, 0]) > 1e-6)
    z, _ = flow(x)
    back, logdet_inverse = flow.inverse(z)
    _, want = np.linalg.slogdet(jacobian(lambda t: flow(t)[0], back))
    np.testing.assert_allclose(logdet_inverse.numpy(), -want, rtol=1e-7, atol=1e-8)


# --- densities integrate to one --------------------------------------------------------------

@pytest.mark.parametrize("mixture", MIXTURES)
def test_cdf_flow_density_integrates_to_one(mixture):
    """On [-60, 60] (the perturbed mixture's components lie within a few units of the data
    box [-4, 4.8], scales under 2), a trapezoid rule on 60,001 points."""
    model = cdf_flow(mixture)
    xs = np.linspace(-60, 60, 60_001)
    with mg.no_grad():
        density = np.exp(-model.nll(mg.tensor(xs[:, None])).numpy())
    assert abs(np.trapezoid(density, xs) - 1) < 1e-3


def grid_mass(model, box, cells):
    """The midpoint rule for the integral of p over `box`, cells x cells."""
    (x0, x1), (y0, y1) = box
    xs = x0 + (np.arange(cells) + 0.5) * (x1 - x0) / cells
    ys = y0 + (np.arange(cells) + 0.5) * (y1 - y0) / cells
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    with mg.no_grad():
        density = np.exp(-model.nll(mg.tensor(grid)).numpy())
    return density.sum() * (x1 - x0) * (y1 - y0) / cells ** 2


def widened(box, factor):
    """A box `factor` of its width wider on each side."""
    return tuple((lo - factor * (hi - lo), hi + factor * (hi - lo)) for lo, hi in box)


@pytest.mark.parametrize("mixture, factor", [("gaussian", 3.0), ("logistic", 8.0)])
def test_untrained_ar_flow_density_integrates_to_one(mixture, factor):
    """A perturbed, untrained flow: its mixtures sit on the data box with scales up to about
    a third of its width, so the box widened by 3 widths on each side (8 for the heavier
    logistic tails) holds all but ~3e-5 of the mass; 400 x 400 midpoints, within 0.1%."""
    model = ar_flow(mixture)
    box = widened(trainer.data_spec("toy-moons", data.load("toy-moons")[0], None).box, factor)
    assert abs(grid_mass(model, box, 400) - 1) < 1e-3


@pytest.mark.parametrize("data_name", ["toy-moons", "toy-8gaussians"])
def test_trained_ar_flow_density_integrates_to_one(tmp_path, data_name):
    """After 300 steps the density has the data's sharp features (moons' noise sd 0.2,
    8gaussians' 0.35); the data box (10% margin) widened by 25% of its width on each side
    holds all but ~1e-4 of the mass: the fitted mixtures' outermost components sit inside
    the data, and their tails decay as Gaussians. 500 x 500 midpoints, within 0.1%."""
    run = trainer.Run("ar-flow-2d", data_name, out=tmp_path / "run",
                      config=["steps=300", "components=8", "hidden=32,32"])
    run.train(progress=False)
    box = widened(run.spec.box, 0.25)
    assert abs(grid_mass(run.model, box, 500) - 1) < 1e-3  # measured: 5e-5 and 0


# --- sampling through the inverse -------------------------------------------------------------

@pytest.mark.parametrize("which", ["cdf-flow", "ar-flow-2d"])
def test_samples_log_density_from_the_inverse_equals_the_forward(which):
    model = cdf_flow() if which == "cdf-flow" else ar_flow()
    u = np.random.default_rng(3).uniform(0.001, 0.999, (200, model.dims))
    z = mg.tensor(np.log(u) - np.log1p(-u))
    with mg.no_grad():
        x, logdet_inverse = model.flow.inverse(z)
        from_inverse = standard_logistic_log_prob(z) - logdet_inverse
        forward = model.log_prob(x)
    np.testing.assert_allclose(from_inverse.numpy(), forward.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.from_uniform(u), x.numpy(), rtol=0, atol=0)
    samples = model.sample(50, Generator(4))
    assert samples.shape == (50, model.dims) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, model.sample(50, Generator(4)))


def test_cdf_flow_samples_follow_its_own_density():
    """Kolmogorov-Smirnov of 4,000 samples against the CDF got by integrating the forward
    density: the sampler (bisection) and the density (forward) are separate paths."""
    model = cdf_flow()
    xs = np.linspace(-60, 60, 120_001)
    with mg.no_grad():
        density = np.exp(-model.nll(mg.tensor(xs[:, None])).numpy())
    cdf = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(xs))])
    samples = np.sort(model.sample(4000, Generator(5)).ravel())
    at = np.interp(samples, xs, cdf)
    empirical = np.arange(1, len(samples) + 1) / len(samples)
    assert np.abs(at - empirical).max() < 1.63 / np.sqrt(len(samples))  # 1% level


# --- far in the tails -------------------------------------------------------------------------

@pytest.mark.parametrize("mixture", MIXTURES)
@pytest.mark.parametrize("which", ["cdf-flow", "ar-flow-2d"])
def test_likelihood_and_gradients_are_finite_at_1e4(which, mixture):
    model = cdf_flow(mixture) if which == "cdf-flow" else ar_flow(mixture)
    far = np.array([[1e4], [-1e4]]) if model.dims == 1 else \
        np.array([[1e4, -1e4], [-1e4, 1e4], [1e4, 1e4], [0.0, -1e4]])
    for dtype in (np.float32, np.float64):
        nll = model.nll(mg.tensor(far.astype(dtype))).numpy()
        assert np.all(np.isfinite(nll)) and np.all(nll > 100), nll
    model.zero_grad()
    model.loss(mg.tensor(far.astype(np.float32))).backward()
    for name, p in model.named_parameters():
        assert np.all(np.isfinite(p.grad.numpy())), name
    edges = np.full((2, model.dims), 1e-15)
    edges[1] = 1 - 1e-15
    assert np.all(np.isfinite(model.from_uniform(edges)))


def test_cdf_flow_learns_toy_1d(tmp_path):
    """300 steps reach within 0.05 nats of the generating mixture's own test NLL (1.786)."""
    from scipy.stats import norm
    x = data.load("toy-1d", "test")[0].ravel().astype(np.float64)
    truth = -np.log(0.25 * norm.pdf(x, -2, 0.4) + 0.5 * norm.pdf(x, 0.5, 0.9)
                    + 0.25 * norm.pdf(x, 3, 0.3)).mean()
    run = trainer.Run("cdf-flow", "toy-1d", out=tmp_path / "run", config=["steps=300"])
    run.train(progress=False)
    assert trainer.evaluate(run.model, run.x_test, 500, "cpu")["nll_nats"] < truth + 0.05


# --- end to end -------------------------------------------------------------------------------

TINY = {"cdf-flow": ("toy-1d", ["steps=12", "batch_size=32", "components=3",
                                "eval_batch_size=500"]),
        "ar-flow-2d": ("toy-moons", ["steps=12", "batch_size=32", "components=4",
                                     "hidden=8,8", "eval_batch_size=500"])}


@pytest.mark.parametrize("name", sorted(TINY))
def test_cli_trains_samples_and_evaluates(tmp_path, capsys, name):
    data_name, config = TINY[name]
    out = tmp_path / "run"
    assert cli.main(["train", name, "--data", data_name, "--out", str(out), "--quiet",
                     "--config", *config]) == 0
    for file in ("metrics.json", "checkpoint.npz", "samples.png", "log.csv"):
        assert (out / file).is_file(), file
    assert (out / "latent_grid.png").is_file() == (name == "ar-flow-2d")
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("model", "data", "steps", "seed", "params", "train_seconds",
                "seconds_per_step", "test_nll_nats"):
        assert key in metrics, key
    assert "test_bpd" not in metrics and np.isfinite(metrics["test_nll_nats"])
    assert metrics["steps"] == 12 and metrics["model"] == name
    assert cli.main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    capsys.readouterr()
    assert cli.main(["eval", str(out)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_nll_nats"] == pytest.approx(metrics["test_nll_nats"], rel=1e-9)


def test_latent_grid_draws_both_families_of_lines(tmp_path):
    """A shear x = (u1, u1 + u2) on the box [0, 1] x [0, 2]: the images of u1 = c stay
    vertical (blue), those of u2 = c tilt (orange); both colours are drawn in each panel."""
    from PIL import Image

    from minigen import pictures
    path = tmp_path / "grid.png"
    pictures.latent_grid(lambda u: np.stack([u[:, 0], u[:, 0] + u[:, 1]], 1),
                         ((0.0, 1.0), (0.0, 2.0)), path, lines=5, points=50, size=100)
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert image.shape == (100, 210, 3)
    for panel in (image[:, :100], image[:, 110:]):
        for colour in ((31, 119, 180), (255, 127, 14)):
            assert (np.abs(panel - colour).sum(-1) == 0).sum() > 50, colour
