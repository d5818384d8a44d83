"""The VAE family (vae, iwae, hvae) and minigen/latent: the ELBO against a hand computation,
the closed-form KL against Monte Carlo, the importance-weighted bound (equal to the
one-sample ELBO at K = 1, tighter as K grows, reaching the exact log p(x) computed by
quadrature on a space small enough to sum, where exp(-nll) sums to one), reparameterised
gradients against finite differences, likelihoods that are distributions, configs that
cannot work, and the command line end to end."""
import csv
import json
import math

import numpy as np
import pytest

import minigen as mg
from minigen import cli, models, trainer
from minigen.latent import bounds, decoders
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval
from likelihoodcheck import all_values

TINY = {"vae": dict(hidden=(8,), latent=2), "iwae": dict(hidden=(8,), latent=2, train_k=3),
        "hvae": dict(hidden=(8, 6), latent=(2, 2))}
BINARY = DataSpec("test", (1, 2, 2), "discrete", levels=2)


def build(name, spec=BINARY, seed=0, **config):
    return models.get(name).cls(spec, generator=Generator([seed, 0]),
                                **{**TINY[name], **config})


def inputs(model, x):
    return model.likelihood.inputs(mg.tensor(np.asarray(x, dtype=np.uint8)))


# -- the ELBO ------------------------------------------------------------------------------

def test_elbo_is_the_hand_computed_formula():
    """log p(x | z) - KL for one eps, with every layer written out in NumPy (float64)."""
    model = build("vae", hidden=(5,), latent=3)
    x = np.random.default_rng(0).integers(0, 2, (6, 1, 2, 2))
    eps = np.random.default_rng(1).standard_normal((6, 3)).astype(np.float32)
    log_px_z, kl = model.elbo_terms(inputs(model, x), mg.tensor(eps))

    w = {name: p.numpy().astype(np.float64) for name, p in model.named_parameters()}
    h = np.maximum(x.reshape(6, 4) @ w["encoder.layers.0.weight"].T
                   + w["encoder.layers.0.bias"], 0)
    out = h @ w["encoder.layers.1.weight"].T + w["encoder.layers.1.bias"]
    mu, logvar = out[:, :3], out[:, 3:]
    z = mu + np.exp(logvar / 2) * eps
    h = np.maximum(z @ w["decoder.layers.0.weight"].T + w["decoder.layers.0.bias"], 0)
    logits = h @ w["decoder.layers.1.weight"].T + w["decoder.layers.1.bias"]
    t = x.reshape(6, 4)
    want_log_px_z = (t * logits - np.log1p(np.exp(logits))).sum(1)
    want_kl = 0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar).sum(1)
    np.testing.assert_allclose(log_px_z.numpy(), want_log_px_z, rtol=1e-5)
    np.testing.assert_allclose(kl.numpy(), want_kl, rtol=1e-5)


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_closed_form_kl_agrees_with_monte_carlo(name):
    """E_q[log q(z | x) - log p(z)] = log p(x | z) - log w, averaged over 20,000 draws for
    one image, equals the mean closed-form KL of the same draws (hvae: both layers' KLs,
    the lower one given the sampled z2) within 4 standard errors."""
    model = build(name)
    draws = 20000
    y = inputs(model, np.repeat([[[[1, 0], [1, 1]]]], draws, axis=0))
    eps = model.noise((draws,), Generator(5))
    one_draw = tuple(e[None] for e in eps) if name == "hvae" else eps[None]
    with mg.no_grad():
        log_w = model.log_weights(y, one_draw).numpy()[0].astype(np.float64)
        log_px_z, kl = (t.numpy().astype(np.float64) for t in model.elbo_terms(y, eps))
    mc_kl = log_px_z - log_w
    se = np.sqrt((mc_kl.var() + kl.var()) / draws)
    assert abs(mc_kl.mean() - kl.mean()) < 4 * se, (mc_kl.mean(), kl.mean(), se)


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_one_sample_bound_is_the_elbo_on_the_same_noise(name):
    """L_1 = log p(x | z) + log p(z) - log q(z | x) at the same z: the one-sample ELBO with
    the KL estimated by that sample, draw for draw. For the vae the KL estimate is written
    out with gaussian_log_prob."""
    model = build(name)
    x = np.random.default_rng(2).integers(0, 2, (7, 1, 2, 2))
    y = inputs(model, x)
    eps = model.noise((1, 7), Generator(3))
    with mg.no_grad():
        one = bounds.log_mean_weight(model.log_weights(y, eps)).numpy()
        np.testing.assert_allclose(one, model.log_weights(y, eps).numpy()[0], rtol=1e-6)
        if name == "vae":
            mu, logvar = model.encoder(y)
            z = bounds.reparameterize(mu, logvar, eps[0])
            log_px_z, _ = model.elbo_terms(y, eps[0])
            estimate = (log_px_z + bounds.gaussian_log_prob(z)
                        - bounds.gaussian_log_prob(z, mu, logvar)).numpy()
            np.testing.assert_allclose(one, estimate, rtol=1e-5)


def exact_log_p(model, values):
    """log p(x) of every value by quadrature over the latents (one dimension per layer):
    log sum_m p(x | z_m) p(z_m) dz on a grid fine enough that the sum is the integral."""
    y = inputs(model, values)
    hierarchical = hasattr(model, "prior_z1")
    grid = np.linspace(-10, 10, 301 if hierarchical else 2001)
    step = grid[1] - grid[0]
    with mg.no_grad():
        if not hierarchical:
            z = mg.tensor(grid[:, None, None].astype(np.float32))          # (M, 1, 1)
            log_joint = model.likelihood.log_prob(model.decode(z), y).numpy() \
                + bounds.gaussian_log_prob(z).numpy()                       # (M, N)
            log_dz = math.log(step)
        else:
            z2 = mg.tensor(grid[:, None, None, None].astype(np.float32))   # (M2, 1, 1, 1)
            z1 = mg.tensor(grid[None, :, None, None].astype(np.float32))   # (1, M1, 1, 1)
            mu_p, logvar_p = model.prior_z1(z2)
            log_joint = (model.likelihood.log_prob(model.decode(z1), y)
                         + bounds.gaussian_log_prob(z1, mu_p, logvar_p)
                         + bounds.gaussian_log_prob(z2)).numpy()
            log_joint = log_joint.reshape(-1, len(values))
            log_dz = 2 * math.log(step)
    log_joint = log_joint.astype(np.float64) + log_dz
    top = log_joint.max(0)
    return top + np.log(np.exp(log_joint - top).sum(0))


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_bound_tightens_with_k_to_the_exact_log_likelihood(name):
    """On 2x2 binary images (16 values) with one latent dimension per layer: the exact
    p(x) sums to one over the 16 values; the mean of L_K over 16 x 100 repeats rises with
    K (1, 10, 100) and stays below log p(x); L_K with K = 200,000 is log p(x) to 0.02 nats
    (an untrained q is a poor proposal: at K = 5000 the hvae's estimate was still 0.04 off),
    so exp(L_K) sums to one too."""
    model = build(name, latent=1 if name == "vae" else (1, 1))
    values = all_values((1, 2, 2), 2)
    log_p = exact_log_p(model, values)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-4)
    y = inputs(model, np.repeat(values, 100, axis=0))
    means = [model.iwae_bound(y, k, Generator(k)).mean() for k in (1, 10, 100)]
    exact = np.repeat(log_p, 100).mean()
    assert means[0] < means[1] < means[2] <= exact + 1e-3, (means, exact)
    close = model.iwae_bound(inputs(model, values), 200000, Generator(9))
    np.testing.assert_allclose(close, log_p, atol=0.02)
    assert np.exp(close).sum() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_evaluation_is_deterministic_and_the_bounds_are_ordered(name):
    """evaluate gives the same figures twice (its noise has a fixed seed); iwae_nats with
    K = 100 is below elbo_nats; bpd is iwae_nats / (D ln 2); periodic evaluation computes
    only the ELBO."""
    model = build(name, iwae_k=100)
    x = np.random.default_rng(4).integers(0, 2, (30, 1, 2, 2)).astype(np.uint8)

    def evaluate(final):
        return model.evaluate([mg.model.Batch(mg.tensor(x[:17])),
                               mg.model.Batch(mg.tensor(x[17:]))], final=final)

    first, second = evaluate(True), evaluate(True)
    assert first == second
    assert first["iwae_nats"] < first["elbo_nats"]
    assert first["bpd"] == pytest.approx(first["iwae_nats"] / (4 * math.log(2)))
    assert set(evaluate(False)) == {"elbo_nats"}


# -- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["vae", "hvae"])
def test_reparameterised_gradients_match_finite_differences(name):
    """The gradient of the ELBO (for fixed eps) with respect to every parameter, in float64,
    against central differences: the reparameterisation carries gradients through z."""
    model = build(name)
    params = list(model.named_parameters())
    x = np.random.default_rng(6).integers(0, 2, (3, 1, 2, 2))
    y = mg.tensor(x.astype(np.float64))
    eps = model.noise((3,), Generator(7))
    eps = tuple(e.astype("float64") for e in eps) if name == "hvae" else eps.astype("float64")
    slots = []
    for dotted, _ in params:
        *path, attr = dotted.split(".")
        module = model
        for part in path:
            module = getattr(module, part)
        slots.append((module, attr))

    def elbo(*weights):
        for (module, attr), w in zip(slots, weights):
            setattr(module, attr, w)
        log_px_z, kl = model.elbo_terms(y, eps)
        return log_px_z - kl

    assert mg.gradcheck(elbo, [p for _, p in params], atol=1e-6, rtol=1e-5)


# -- likelihoods ---------------------------------------------------------------------------

@pytest.mark.parametrize("name,levels", [("bernoulli", 2), ("categorical", 3),
                                         ("logistic", 3), ("logistic", 5)])
def test_discrete_likelihoods_sum_to_one(name, levels):
    """For random decoder outputs, exp(log p(x | z)) sums to 1 over every image of the
    shape; samples are levels of that shape."""
    spec = DataSpec("test", (1, 1, 2), "discrete", levels)
    lik = decoders.likelihood(name, spec)
    values = all_values(spec.shape, levels)
    params = mg.tensor(np.random.default_rng(0).standard_normal((1, lik.outputs * 2))
                       .astype(np.float32))
    log_p = lik.log_prob(params, lik.inputs(mg.tensor(values))).numpy().astype(np.float64)
    assert log_p.shape == (len(values),)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-5)
    drawn = lik.sample(params, Generator(1))
    assert drawn.dtype == np.uint8 and drawn.shape == (1,) + spec.shape
    assert drawn.max() < levels


def test_gaussian_likelihood_is_a_density_on_dequantized_data_in_discrete_nats():
    """Summed over the K levels and averaged over the dequantization noise, exp(log_prob)
    is the Gaussian's mass on [0, 1]: log_prob is log p(y) - log K, the density of x + u."""
    levels, mean, scale = 4, 0.4, 0.3
    lik = decoders.likelihood("gaussian", DataSpec("test", (1,), "discrete", levels))
    params = mg.tensor(np.array([[mean, math.log(scale)]], dtype=np.float32))
    x = mg.tensor(np.repeat(np.arange(levels, dtype=np.uint8), 20000)[:, None])
    log_p = lik.log_prob(params, lik.inputs(x, Generator(0))).numpy().astype(np.float64)
    mass = np.exp(log_p).reshape(levels, -1).mean(axis=1).sum()
    normal = mg.distributions.Normal(mean, scale)
    want = float((normal.cdf(1.0) - normal.cdf(0.0)).numpy())
    assert mass == pytest.approx(want, abs=3e-3)


def test_conv_architecture_gives_the_likelihoods_outputs():
    spec = DataSpec("test", (1, 8, 8), "discrete", levels=17)
    for decoder in ("categorical", "gaussian"):
        model = models.get("vae").cls(spec, Generator(0), hidden=(16,), latent=3,
                                      arch="conv", channels=4, decoder=decoder)
        x = np.random.default_rng(0).integers(0, 17, (5, 1, 8, 8)).astype(np.uint8)
        loss = model.loss(mg.tensor(x), Generator(1))
        loss.backward()
        assert np.isfinite(loss.item())
        assert all(p.grad is not None for p in model.parameters())
        assert model.sample(3, Generator(2)).shape == (3, 1, 8, 8)


# -- configs that cannot work ----------------------------------------------------------------

DIGITS = DataSpec("digits", (1, 8, 8), "discrete", levels=17)
VECTORS = DataSpec("vectors", (64,), "discrete", levels=2)


@pytest.mark.parametrize("name,spec,config,key", [
    ("vae", BINARY, dict(latent=0), "latent"),
    ("vae", BINARY, dict(hidden=(8, 0)), "hidden"),
    ("vae", BINARY, dict(beta=-0.5), "beta"),
    ("vae", DIGITS, dict(decoder="bernoulli"), "decoder=bernoulli"),
    ("vae", BINARY, dict(decoder="poisson"), "decoder"),
    ("vae", VECTORS, dict(arch="conv"), "arch=conv"),
    ("vae", BINARY, dict(arch="conv"), "arch=conv"),          # 2x2: not a multiple of 4
    ("vae", BINARY, dict(iwae_k=0), "iwae_k"),
    ("iwae", BINARY, dict(train_k=0), "train_k"),
    ("iwae", BINARY, dict(beta=2.0), "beta"),
    ("vae", BINARY, dict(kl_warmup=-1), "kl_warmup"),
    ("iwae", BINARY, dict(kl_warmup=10), "kl_warmup"),
    ("hvae", BINARY, dict(latent=(2,)), "latent"),
    ("hvae", BINARY, dict(hidden=(0, 4)), "hidden"),
])
def test_bad_configs_name_the_key(name, spec, config, key):
    with pytest.raises(ValueError, match=key):
        build(name, spec, **config)


def test_cli_prints_a_bad_config_as_an_error(tmp_path, capsys):
    assert cli.main(["train", "vae", "--data", "digits", "--out", str(tmp_path / "run"),
                     "--quiet", "--config", "decoder=bernoulli"]) == 2
    assert "minigen: error: decoder=bernoulli" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# -- training ------------------------------------------------------------------------------

def test_kl_warmup_rises_to_beta_and_a_resumed_run_is_bit_identical(tmp_path):
    """The KL weight is 0 at the first update and beta from update kl_warmup on; the count
    of updates is in the checkpoint, so a run stopped at step 3 and resumed ends with the
    same parameters as one that was never stopped."""
    model = build("vae", beta=0.5, kl_warmup=4)
    weights = []
    for _ in range(6):
        weights.append(model.kl_weight)
        model.updates_done += 1
    assert weights == [0.0, 0.125, 0.25, 0.375, 0.5, 0.5]
    config = dict(hidden=(8,), latent=2, beta=0.5, kl_warmup=4, steps=6, iwae_k=5)
    whole = trainer.Run("vae", "digits-bin", seed=1, out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    assert whole.model.updates_done == 6
    with open(tmp_path / "whole" / "log.csv") as f:
        assert "kl_weight" in next(csv.reader(f))
    assert trainer.train("vae", "digits-bin", seed=1, out=tmp_path / "parts", config=config,
                         progress=False, stop_after=3) is None
    resumed = trainer.Run.from_checkpoint(tmp_path / "parts" / "checkpoint.npz")
    assert resumed.model.updates_done == 3
    resumed.train(progress=False)
    expected, got = whole.model.state_dict(), resumed.model.state_dict()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# -- the command line end to end -------------------------------------------------------------

CLI_CONFIG = {"vae": ["hidden=16", "latent=2", "iwae_k=20"],
              "iwae": ["hidden=16", "latent=2", "iwae_k=20", "train_k=3"],
              "hvae": ["hidden=16,8", "latent=2,2", "iwae_k=20"]}


@pytest.mark.parametrize("name", sorted(CLI_CONFIG))
def test_train_sample_eval_probe(name, tmp_path, capsys):
    metrics = train_sample_eval(name, "digits-bin",
                                ["--steps", "20", "--config", *CLI_CONFIG[name]],
                                tmp_path, capsys)
    assert 0 < metrics["test_iwae_nats"] < metrics["test_elbo_nats"]
    assert metrics["test_bpd"] == pytest.approx(metrics["test_iwae_nats"] / (64 * math.log(2)))
    run = tmp_path / "run"
    for picture in ("reconstructions.png", "traversal.png", "latent-space.png"):
        assert (run / picture).is_file(), picture
    assert cli.main(["sample", str(run), "--n", "10", "--out", str(tmp_path / "s.npy")]) == 0
    drawn = np.load(tmp_path / "s.npy")
    assert drawn.dtype == np.uint8 and drawn.shape == (10, 1, 8, 8) and drawn.max() <= 1
    capsys.readouterr()
    assert cli.main(["probe", str(run), "--quiet"]) == 0
    probe = json.loads(capsys.readouterr().out)
    assert 0.1 < probe["linear_probe_acc"] <= 1.0
