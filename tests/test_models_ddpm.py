"""ddpm: the forward process in closed form against its steps, the posterior against Bayes'
rule, the variational bound against closed forms and against a direct Monte Carlo estimate
of E_q[log q(x_{1:T} | x_0) - log p(x_{0:T})], DDIM against the ancestral sampler, the
stopped mean of the hybrid loss, bad configs, NaN in sampling, and the command line."""
import json
import re

import numpy as np
import pytest
from clicheck import train_sample_eval
from qualitycheck import tiny_classifier  # noqa: F401
from scipy.stats import norm

import minigen as mg
from minigen import cli, models
from minigen.diffusion import sampling
from minigen.diffusion.bound import discretized_gaussian_log_likelihood, log_cdf_difference
from minigen.diffusion.schedule import Schedule, cosine_betas, linear_betas
from minigen.model import Batch
from minigen.models import ConfigError, DataSpec
from minigen.random import Generator

TINY = DataSpec("digits", (1, 1, 2), "discrete", levels=5)   # a 1x2 image of 5 levels
DIGITS = DataSpec("digits", (1, 8, 8), "discrete", levels=17)


def build(spec=TINY, perturb=0.0, **config):
    """A ddpm with a tiny U-Net (8 channels, one group); with perturb > 0, conv_out gets
    random weights of that size, so that eps_theta is not zero."""
    config = {"channels": 8, "groups": 1, "T": 4, "eval_samples": 4, **config}
    model = models.get("ddpm").cls(spec, Generator(0), **config)
    if perturb:
        rng = np.random.default_rng(3)
        for p in (model.net.conv_out.weight, model.net.conv_out.bias):
            p.data[...] = (perturb * rng.standard_normal(p.shape)).astype(p.dtype)
    return model


# the forward process ---------------------------------------------------------------------

@pytest.mark.parametrize("betas", [linear_betas(1000), cosine_betas(1000), linear_betas(7)],
                         ids=["linear", "cosine", "linear-T7"])
def test_closed_form_q_matches_iterating_the_forward_process(betas):
    s = Schedule(betas)
    # x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) z: its mean factor and variance, exactly
    factor, variance = 1.0, 0.0
    for t in range(len(betas)):
        factor, variance = factor * np.sqrt(s.alphas[t]), s.alphas[t] * variance + s.betas[t]
        assert factor == pytest.approx(np.sqrt(s.abar[t]), rel=1e-12)
        assert variance == pytest.approx(1.0 - s.abar[t], rel=1e-10)
    # and by simulation: many chains from x_0 = 0.7, every 100th step against eq. 4
    rng = np.random.default_rng(0)
    x = np.full(40_000, 0.7)
    for t in range(len(betas)):
        x = np.sqrt(s.alphas[t]) * x + np.sqrt(s.betas[t]) * rng.standard_normal(x.shape)
        if t % 100 == 0 or t == len(betas) - 1:
            mean, var = np.sqrt(s.abar[t]) * 0.7, 1.0 - s.abar[t]
            assert abs(x.mean() - mean) < 5 * np.sqrt(var / len(x)) + 1e-12
            assert abs(x.var() - var) < 5 * var * np.sqrt(2 / len(x)) + 1e-12
    xt = s.q_sample(mg.tensor(np.full((3, 1), 0.7)), np.array([0, 5, 6]),
                    mg.tensor(np.array([[1.0], [-1.0], [0.5]])))
    np.testing.assert_allclose(xt.numpy()[:, 0], np.sqrt(s.abar[[0, 5, 6]]) * 0.7
                               + np.sqrt(1 - s.abar[[0, 5, 6]]) * [1.0, -1.0, 0.5])


def test_schedules_are_the_papers():
    np.testing.assert_allclose(linear_betas(1000)[[0, -1]], [1e-4, 0.02])
    s = Schedule(cosine_betas(1000))
    f = np.cos((np.arange(1, 1001) / 1000 + 0.008) / 1.008 * np.pi / 2) ** 2 / \
        np.cos(0.008 / 1.008 * np.pi / 2) ** 2
    unclipped = s.betas < 0.999
    np.testing.assert_allclose(s.abar[unclipped], f[unclipped], rtol=1e-9)
    assert s.betas.max() == 0.999 and s.abar.dtype == np.float64


def test_posterior_is_bayes_rule():
    """q(x_{t-1} | x_t, x_0) from q(x_{t-1} | x_0) and q(x_t | x_{t-1}) by Gaussian
    conditioning: precision 1 / (1 - abar_{t-1}) + alpha_t / beta_t."""
    s = Schedule(linear_betas(50))
    x0, xt = 0.3, -0.8
    for t in (1, 7, 49):
        precision = 1 / (1 - s.abar[t - 1]) + s.alphas[t] / s.betas[t]
        mean = (np.sqrt(s.abar[t - 1]) * x0 / (1 - s.abar[t - 1])
                + np.sqrt(s.alphas[t]) * xt / s.betas[t]) / precision
        assert s.posterior_variance[t] == pytest.approx(1 / precision, rel=1e-10)
        got = s.posterior_mean(mg.tensor(np.array([[x0]])), mg.tensor(np.array([[xt]])),
                               np.array([t]))
        assert got.item() == pytest.approx(mean, rel=1e-10)


# the decoder ---------------------------------------------------------------------------------

def test_discretized_gaussian_sums_to_one_and_matches_the_cdf():
    levels = mg.tensor(np.arange(17, dtype=np.uint8))
    x = np.arange(17) / 8 - 1
    for mu, sigma in [(0.3, 0.05), (0.0, 1.0), (-0.97, 0.02), (0.5, 4.0)]:
        log_p = discretized_gaussian_log_likelihood(
            levels, mg.tensor(np.full(17, mu)), mg.tensor(np.full(17, 2 * np.log(sigma))),
            17).numpy()
        assert np.exp(log_p).sum() == pytest.approx(1.0, rel=1e-12)
        hi, lo = x + 1 / 16, x - 1 / 16
        hi[-1], lo[0] = np.inf, -np.inf
        # each bin's mass from the tail it lies in, so that the reference does not cancel
        cdf = np.where(x > mu, norm.sf((lo - mu) / sigma) - norm.sf((hi - mu) / sigma),
                       norm.cdf((hi - mu) / sigma) - norm.cdf((lo - mu) / sigma))
        big = cdf > 1e-200
        np.testing.assert_allclose(log_p[big], np.log(cdf[big]), rtol=1e-9, atol=1e-12)
        assert np.isfinite(log_p).all()


def test_log_cdf_difference_is_finite_far_in_both_tails_and_its_gradient_too():
    a = mg.tensor(np.array([-40.0, -1.0, 0.5, 40.0, 41.0]), requires_grad=True)
    b = mg.tensor(np.array([-40.5, -1.5, -0.5, 39.5, 40.9]), requires_grad=True)
    y = log_cdf_difference(a, b)
    ref = np.log(norm.cdf(a.numpy()[1:3]) - norm.cdf(b.numpy()[1:3]))
    np.testing.assert_allclose(y.numpy()[1:3], ref, rtol=1e-12)
    # far tails: Phi(-39.5) - Phi(-40) ~ phi(39.5) * something, logs near -785
    assert np.isfinite(y.numpy()).all() and y.numpy()[3] == pytest.approx(
        norm.logsf(39.5) + np.log1p(-np.exp(norm.logsf(40.0) - norm.logsf(39.5))), rel=1e-10)
    grads = mg.grad(y.sum(), [a, b])
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert mg.gradcheck(log_cdf_difference, [mg.tensor(a.numpy()[1:3]),
                                             mg.tensor(b.numpy()[1:3])])


# the bound -----------------------------------------------------------------------------------

def copies(images, n):
    return mg.tensor(np.repeat(np.asarray(images, dtype=np.uint8), n, axis=0))


def test_bound_of_a_zero_network_matches_its_closed_form():
    """A fresh model predicts eps = 0 (conv_out starts at zero): x_0 estimate x_t /
    sqrt(abar_t), and each term's expectation over x_t is closed-form:
    L_t = KL of the variances + c1^2 (1 - abar_t) / abar_t / (2 sigma_t^2), c1 the posterior
    weight of x_0; L_0 a 1-d Gaussian integral (Gauss-Hermite) of the decoder's log-mass.
    The model's one-draw-per-step estimate over 4000 copies must agree within 4 standard
    errors, term by term."""
    model = build(clip_denoised=False, variance="small")
    s, n = model.schedule, 4000
    images = np.array([[[[0, 3]]], [[[4, 2]]]])
    x = copies(images, n)
    prior, terms = model.bound_terms(x, range(model.T), Generator(5))
    x0 = images.reshape(2, -1) / 2.0 - 1.0
    log_var_p = s.posterior_log_variance
    for t in range(1, model.T):
        lv_q = np.log(s.posterior_variance[t])
        expected = 0.5 * (log_var_p[t] - lv_q + np.exp(lv_q - log_var_p[t]) - 1
                          + s.posterior_x0[t] ** 2 * (1 - s.abar[t]) / s.abar[t]
                          / np.exp(log_var_p[t])) * 2   # two dimensions
        got = terms[t].reshape(2, n)
        for i in range(2):
            se = got[i].std() / np.sqrt(n)
            assert abs(got[i].mean() - expected) < 4 * se, (t, i)
    # L_0: the decoder's mean x_1 / sqrt(abar_0) ~ N(x_0, (1 - abar_0) / abar_0)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    spread, sigma = np.sqrt((1 - s.abar[0]) / s.abar[0]), np.exp(0.5 * log_var_p[0])
    got = terms[0].reshape(2, n)
    for i in range(2):
        expected = 0.0
        for level, value in zip(images[i].ravel(), x0[i]):
            means = value + spread * nodes
            hi = np.inf if level == 4 else value + 0.25
            lo = -np.inf if level == 0 else value - 0.25
            mass = np.where(value > means,
                            norm.sf((lo - means) / sigma) - norm.sf((hi - means) / sigma),
                            norm.cdf((hi - means) / sigma) - norm.cdf((lo - means) / sigma))
            expected -= (weights * np.log(mass)).sum() / weights.sum()
        assert abs(got[i].mean() - expected) < 4 * got[i].std() / np.sqrt(n) + 1e-9, i
    # L_T is exact
    mean, var = np.sqrt(s.abar[-1]) * x0, 1 - s.abar[-1]
    expected = (0.5 * (-np.log(var) + var + mean ** 2 - 1)).sum(axis=1)
    np.testing.assert_allclose(prior.reshape(2, n), np.repeat(expected[:, None], n, 1),
                               rtol=1e-12)


def direct_chain_estimate(model, image, n, rng):
    """log q(x_{1:T} | x_0) - log p(x_{0:T}) of n chains drawn step by step from
    q(x_t | x_{t-1}), with p's Gaussians and decoder written out with scipy."""
    s = model.schedule
    x0 = np.repeat(image.reshape(1, -1) / 2.0 - 1.0, n, axis=0)
    chain, x = [x0], x0
    for t in range(model.T):
        x = np.sqrt(s.alphas[t]) * x + np.sqrt(s.betas[t]) * rng.standard_normal(x.shape)
        chain.append(x)
    log_q = sum(norm.logpdf(chain[t + 1], np.sqrt(s.alphas[t]) * chain[t],
                            np.sqrt(s.betas[t])).sum(1) for t in range(model.T))
    log_p = norm.logpdf(chain[-1]).sum(1)
    with mg.no_grad():
        for t in range(model.T):
            xt = mg.tensor(chain[t + 1].reshape((n,) + model.spec.shape))
            _, _, mean, log_var = model.denoise(xt, np.full(n, t))
            mean = mean.numpy().reshape(n, -1)
            sd = np.exp(0.5 * log_var.numpy()).reshape(n, -1) * np.ones_like(mean)
            if t > 0:
                log_p += norm.logpdf(chain[t], mean, sd).sum(1)
            else:
                levels = image.reshape(1, -1)
                hi = np.where(levels == 4, np.inf, x0 + 0.25)
                lo = np.where(levels == 0, -np.inf, x0 - 0.25)
                log_p += np.log(norm.cdf((hi - mean) / sd) - norm.cdf((lo - mean) / sd)).sum(1)
    return log_q - log_p


@pytest.mark.parametrize("config", [dict(variance="large"), dict(variance="learned"),
                                    dict(variance="small", schedule="cosine")],
                         ids=["large", "learned", "small-cosine"])
def test_bound_matches_a_monte_carlo_estimate_over_whole_chains(config):
    """The bound is E_q[log q(x_{1:T} | x_0) - log p(x_{0:T})]: the model's closed-form KL
    terms and a direct estimate over 20000 chains agree within 4 combined standard errors,
    with a network whose eps_theta (and v) are not zero."""
    model = build(perturb=0.3, **config)
    image = np.array([[[1, 4]]])
    n = 20_000
    prior, terms = model.bound_terms(copies(image[None], n), range(model.T), Generator(6))
    ours = prior + sum(terms.values())
    direct = direct_chain_estimate(model, image, n, np.random.default_rng(7))
    se = np.sqrt(ours.var() / n + direct.var() / n)
    assert abs(ours.mean() - direct.mean()) < 4 * se, (ours.mean(), direct.mean(), se)
    assert se < 0.01 * abs(direct.mean())  # the check has teeth: under a percent


def test_evaluate_reports_the_full_bound_in_bits_per_dimension(tiny_classifier):
    model = build(DIGITS, T=6, channels=8, groups=8, eval_samples=6)
    x = np.random.default_rng(0).integers(0, 17, (5, 1, 8, 8)).astype(np.uint8)
    metrics = model.evaluate([Batch(mg.tensor(x[:3])), Batch(mg.tensor(x[3:]))], final=True)
    prior, terms = model.bound_terms(mg.tensor(x), range(6), Generator(1))
    assert metrics["bpd"] == pytest.approx(metrics["elbo_nats"] / (64 * np.log(2)))
    assert metrics["bpd"] == pytest.approx(metrics["prior_bpd"] + metrics["diffusion_bpd"]
                                           + metrics["decoder_bpd"])
    # another draw of the same terms: the same figure to Monte Carlo noise
    other = (prior + sum(terms.values())).mean() / (64 * np.log(2))
    assert metrics["bpd"] == pytest.approx(other, rel=0.1)
    for key in ("fid_local", "kid_local", "is_local", "precision", "recall", "bpd_estimate"):
        assert np.isfinite(metrics[key]), key
    again = model.evaluate([Batch(mg.tensor(x))], final=False)
    assert set(again) == {"bpd_estimate"}
    # the estimate: L_0 and one step from each stratum of 1 .. T-1, weighted by its size;
    # every step when T - 1 is at most BOUND_ESTIMATE_STEPS
    steps, weights = model.estimate_steps()
    np.testing.assert_array_equal(steps, np.arange(6))
    np.testing.assert_array_equal(weights, np.ones(6))
    steps, weights = build(DIGITS, T=1000, channels=8, groups=8).estimate_steps()
    starts = 1 + np.concatenate([[0], np.cumsum(weights[1:-1])]).astype(int)
    assert steps[0] == 0 and weights.sum() == 1000 and len(steps) == 51
    assert ((steps[1:] >= starts) & (steps[1:] < starts + weights[1:])).all()
    assert (weights[1:11] == 1).all() and (np.diff(weights[1:]) >= -1).all()


# sampling ------------------------------------------------------------------------------------

def test_ddim_with_eta_one_on_every_step_is_the_ancestral_step():
    s = Schedule(linear_betas(1000))
    t = np.arange(1, 1000)
    sigma = sampling.ddim_sigma(s.abar[t], s.abar[t - 1], 1.0)
    np.testing.assert_allclose(sigma ** 2, s.posterior_variance[t], rtol=1e-10)
    np.testing.assert_array_equal(sampling.ddim_steps(1000, 1000), np.arange(1000))
    np.testing.assert_array_equal(sampling.ddim_steps(1000, 50), np.arange(0, 1000, 20))
    # the mean: sqrt(abar_{t-1}) x0 + sqrt(1 - abar_{t-1} - sigma^2) eps = mu~_t(x_t, x0)
    rng = np.random.default_rng(1)
    x0, eps = rng.standard_normal(len(t)), rng.standard_normal(len(t))
    xt = np.sqrt(s.abar[t]) * x0 + np.sqrt(1 - s.abar[t]) * eps
    ddim_mean = np.sqrt(s.abar[t - 1]) * x0 + np.sqrt(1 - s.abar[t - 1] - sigma ** 2) * eps
    mu = s.posterior_mean(mg.tensor(x0[:, None]), mg.tensor(xt[:, None]), t).numpy()[:, 0]
    np.testing.assert_allclose(ddim_mean, mu, rtol=1e-8, atol=1e-10)


def test_ddim_eta_one_every_step_samples_what_the_ancestral_sampler_does():
    """The same generator: x_T, then one draw per step but the last, on both samplers."""
    model = build(DIGITS, perturb=0.2, T=8, channels=8, groups=8, variance="small")
    shape = (3, 1, 8, 8)
    with mg.no_grad():
        a = sampling.ancestral(model.denoise, model.schedule, shape, Generator(2), "cpu",
                               np.float32)
        d = sampling.ddim(model.denoise, model.schedule, shape, Generator(2), "cpu",
                          np.float32, 8, 1.0)
    np.testing.assert_allclose(a.numpy(), d.numpy(), rtol=1e-4, atol=1e-4)
    assert a.numpy().std() > 0.1


def test_samples_are_levels_and_the_same_seed_gives_the_same_samples():
    model = build(DIGITS, perturb=0.2, T=5, channels=8, groups=8)
    for sampler, steps, eta in (("ancestral", None, 0.0), ("ddim", 3, 0.0), ("ddim", 5, 0.5)):
        a = model.sample_with(4, Generator(1), sampler, steps, eta)
        assert a.dtype == np.uint8 and a.shape == (4, 1, 8, 8) and a.max() <= 16
        np.testing.assert_array_equal(a, model.sample_with(4, Generator(1), sampler, steps,
                                                           eta))


def test_nan_in_sampling_names_the_step():
    model = build(DIGITS, T=5, channels=8, groups=8)
    model.net.conv_out.bias.data[...] = np.nan
    with pytest.raises(sampling.SamplingDiverged, match=r"ancestral sampling: the samples "
                       r"became nan at step t=4"):
        model.sample(2, Generator(0))
    ddim = build(DIGITS, T=5, channels=8, groups=8, sampler="ddim", sample_steps=2)
    ddim.net.conv_out.bias.data[...] = np.nan
    with pytest.raises(ValueError, match="ddim .* became .* at step t="):
        ddim.sample(2, Generator(0))


# training ------------------------------------------------------------------------------------

def test_simple_loss_is_the_noise_regression_at_the_drawn_steps():
    model = build(DIGITS, perturb=0.1, T=10, channels=8, groups=8)
    x = mg.tensor(np.random.default_rng(2).integers(0, 17, (4, 1, 8, 8)).astype(np.uint8))
    t, eps = model.training_noise(4, Generator(3))
    gen = Generator(3)
    np.testing.assert_array_equal(t, gen.integers(0, 10, shape=(4,)).numpy())
    np.testing.assert_array_equal(eps.numpy(), gen.normal((4, 1, 8, 8)).numpy())
    loss, logs = model.objective(x, t, eps)
    x0 = x.numpy() / 8.0 - 1
    a = model.schedule.abar[t][:, None, None, None]
    xt = np.sqrt(a) * x0 + np.sqrt(1 - a) * eps.numpy()
    with mg.no_grad():
        pred = model.net(mg.tensor(xt.astype(np.float32)), t).numpy()
    assert loss.item() == pytest.approx(((eps.numpy() - pred) ** 2).mean(), rel=1e-5)


def test_the_hybrid_loss_trains_the_variance_only_through_l_vlb():
    """conv_out's rows for eps get no gradient from L_vlb (the mean is stopped), those for
    v get all of theirs from it."""
    x = mg.tensor(np.random.default_rng(4).integers(0, 17, (6, 1, 8, 8)).astype(np.uint8))
    grads = {}
    for weight in (0.0, 1.0):
        model = build(DIGITS, perturb=0.1, T=10, channels=8, groups=8, variance="learned",
                      vlb_weight=weight)
        loss, logs = model.objective(x, *model.training_noise(6, Generator(5)))
        grads[weight] = mg.grad(loss, [model.net.conv_out.weight])[0].numpy()
        assert weight == 0.0 or logs["vlb_bpd"] > 0
    np.testing.assert_allclose(grads[1.0][:1], grads[0.0][:1], rtol=1e-5, atol=1e-8)
    assert not grads[0.0][1:].any() and np.abs(grads[1.0][1:]).max() > 0


# config and command line ---------------------------------------------------------------------

def test_registered_defaults_are_the_checked_config():
    entry = models.get("ddpm")
    for key, value in dict(T=1000, schedule="linear", batch_size=128, lr=2e-4, ema=0.999,
                           steps=6000, sampler="ancestral", eta=0.0).items():
        assert entry.config[key] == value, key
    model = entry.cls(DIGITS, Generator(0), **models.model_config(entry.config))
    assert model.net.mults == (1, 2)
    shapes = {n: p.shape for n, p in model.net.named_parameters()}
    assert shapes["temb1.weight"] == (256, 64) and shapes["temb2.weight"] == (256, 256)
    assert shapes["conv_in.weight"] == (64, 1, 3, 3)
    assert shapes["down.1.res.conv1.weight"] == (128, 64, 3, 3)
    assert shapes["up.1.conv1.weight"] == (128, 256, 3, 3)
    assert shapes["up.0.conv1.weight"] == (64, 128, 3, 3)
    assert shapes["upsample.0.weight"] == (64, 128, 3, 3)
    assert shapes["downsample.0.weight"] == (64, 64, 3, 3)
    assert "down.1.attn.q.weight" in shapes and "down.0.attn.q.weight" not in shapes
    assert not model.net.conv_out.weight.numpy().any()
    fashion = DataSpec("fashion-mnist", (1, 28, 28), "discrete", levels=256)
    assert entry.cls(fashion, Generator(0), channels=8).net.mults == (1, 2, 2)


def test_fashion_mnist_sized_images_train_bound_and_sample():
    """28x28, 256 levels: the U-Net halves twice (28 -> 14 -> 7) and comes back to 28."""
    fashion = DataSpec("fashion-mnist", (1, 28, 28), "discrete", levels=256)
    model = build(fashion, perturb=0.05, T=3, channels=8, groups=8, variance="learned")
    x = mg.tensor(np.random.default_rng(6).integers(0, 256, (2, 1, 28, 28)).astype(np.uint8))
    loss, logs = model.objective(x, *model.training_noise(2, Generator(1)))
    assert np.isfinite(loss.item()) and logs["vlb_bpd"] > 0
    assert all(np.isfinite(g.numpy()).all() for g in mg.grad(loss, list(model.parameters())))
    prior, terms = model.bound_terms(x, range(3), Generator(2))
    assert np.isfinite(prior).all() and all(np.isfinite(v).all() for v in terms.values())
    samples = model.sample_with(2, Generator(3), "ddim", 2, 0.0)
    assert samples.shape == (2, 1, 28, 28) and samples.dtype == np.uint8


@pytest.mark.parametrize("config, message", [
    (["T=0"], "T must be >= 1"), (["T=-3"], "T must be >= 1"),
    (["schedule=quadratic"], "schedule='quadratic': one of linear, cosine"),
    (["sampler=euler"], "sampler='euler': one of ancestral, ddim"),
    (["sampler=ddim", "T=10", "sample_steps=11"], "sample_steps=11: .* must be in \\[1, T\\]"),
    (["eta=-0.5"], "eta must be in \\[0, 1\\]"),
    (["variance=huge"], "variance='huge'"),
    (["channel_mults=1"], "needs 2 multipliers"), (["groups=3"], "groups=3 must divide")])
def test_bad_configs_are_one_clear_error(config, message, tmp_path, capsys):
    status = cli.main(["train", "ddpm", "--data", "digits", "--out", str(tmp_path / "r"),
                       "--quiet", "--config", "channels=8", *config])
    err = capsys.readouterr().err
    assert status == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("minigen: error: ")
    assert re.search(message, err), err
    with pytest.raises((ConfigError, ValueError)):
        entry = models.get("ddpm")
        build(DIGITS, **models.model_config(models.make_config(entry, ["channels=8",
                                                                       *config])))


@pytest.mark.parametrize("sampler", [[], ["sampler=ddim", "sample_steps=4", "eta=0"]],
                         ids=["ancestral", "ddim"])
def test_train_sample_eval_on_digits(sampler, tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("ddpm", "digits", [
        "--steps", "2", "--batch-size", "8", "--config", "T=10", "eval_samples=8",
        "channels=8", *sampler], tmp_path, capsys)
    for key in ("bpd", "elbo_nats", "bpd_estimate", "prior_bpd", "diffusion_bpd",
                "decoder_bpd", "fid_local", "kid_local", "is_local", "precision", "recall"):
        assert np.isfinite(metrics[f"test_{key}"]), key
    assert metrics["test_bpd"] > 0
    out = tmp_path / "x.npy"
    assert cli.main(["sample", str(tmp_path / "run"), "--n", "5", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.dtype == np.uint8 and x.shape == (5, 1, 8, 8) and x.max() <= 16
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["config"]["ema"] == 0.999


def test_minigen_sample_switches_the_sampler_of_a_trained_run(tmp_path, capsys):
    """`minigen sample RUN --config sampler=ddim sample_steps=S eta=E`: another sampler for
    the same trained network; only sampling settings are taken, checked as at training."""
    run = tmp_path / "run"
    assert cli.main(["train", "ddpm", "--data", "digits", "--out", str(run), "--quiet",
                     "--steps", "1", "--batch-size", "8", "--config", "T=10",
                     "eval_samples=8", "channels=8"]) == 0
    capsys.readouterr()
    sample = ["sample", str(run), "--n", "4", "--seed", "3"]
    assert cli.main([*sample, "--out", str(tmp_path / "a.npy")]) == 0
    assert cli.main([*sample, "--out", str(tmp_path / "d.npy"), "--config", "sampler=ddim",
                     "sample_steps=5", "eta=0"]) == 0
    assert cli.main([*sample, "--out", str(tmp_path / "d2.npy"), "--config", "sampler=ddim",
                     "sample_steps=5", "eta=0"]) == 0
    ancestral, ddim, again = (np.load(tmp_path / f) for f in ("a.npy", "d.npy", "d2.npy"))
    assert ddim.shape == ancestral.shape == (4, 1, 8, 8)
    np.testing.assert_array_equal(ddim, again)  # eta = 0: deterministic given the seed
    capsys.readouterr()
    for config, message in ((["T=5"], "T: not a sampling setting of ddpm"),
                            (["sampler=ddim", "sample_steps=11"], "sample_steps=11"),
                            (["eta=2"], "eta"), (["sampler=euler"], "sampler='euler'")):
        assert cli.main([*sample, "--out", str(tmp_path / "bad.npy"), "--config",
                         *config]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad.npy").exists()


def test_minigen_probe_refuses_a_model_without_features_or_likelihood(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "ddpm", "--data", "digits", "--out", str(run), "--quiet",
                     "--steps", "1", "--batch-size", "8", "--config", "T=4",
                     "eval_samples=8", "channels=8"]) == 0
    capsys.readouterr()
    assert cli.main(["probe", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "neither encoder features nor an exact likelihood" in err
    assert len(err.strip().splitlines()) == 1
