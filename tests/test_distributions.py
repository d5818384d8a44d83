"""Distributions: log-densities against SciPy, mpmath and explicit formulas, normalisation,
finiteness at the extremes, sample statistics, gradients (mg.gradcheck in float64), the
Normal KL, and torch.distributions when PyTorch is installed."""
import math

import mpmath
import numpy as np
import pytest
import scipy.special
import scipy.stats

import minigen as mg
from minigen.distributions import (Bernoulli, Categorical, DiscretizedLogisticMixture,
                                   MixtureOfGaussians, Normal, kl_divergence)

N_SAMPLES = 20_000


def _f64(a, requires_grad=False):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def _mean_within(samples, mean, var, sigmas=4.5):
    """The sample mean lies within `sigmas` standard errors of the true mean."""
    err = np.abs(samples.mean(0) - mean) / np.sqrt(var / len(samples))
    assert (err < sigmas).all(), f"sample mean off by {err.max():.1f} standard errors"


# ---- Normal -------------------------------------------------------------------------------

def test_normal_matches_scipy_and_broadcasts():
    rng = np.random.default_rng(0)
    loc, scale = rng.standard_normal((3, 1)), rng.uniform(0.1, 3.0, 4)
    x = rng.standard_normal((3, 4)) * 2
    d = Normal(_f64(loc), _f64(scale))
    assert d.batch_shape == (3, 4) and d.mean.shape == (3, 4) and d.stddev.shape == (3, 4)
    np.testing.assert_allclose(d.log_prob(x).numpy(),
                               scipy.stats.norm.logpdf(x, loc, scale), rtol=1e-13)
    # cdf is 1/2 (1 + erf(z / sqrt 2)): exact to rounding in absolute terms, so a far
    # lower tail (here 3e-46) comes out as 0
    np.testing.assert_allclose(d.cdf(x).numpy(), scipy.stats.norm.cdf(x, loc, scale),
                               rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(d.entropy().numpy(),
                               np.broadcast_to(scipy.stats.norm.entropy(0, scale), (3, 4)),
                               rtol=1e-13)
    np.testing.assert_allclose(d.variance.numpy(), np.broadcast_to(scale ** 2, (3, 4)))
    assert Normal(0, 1).log_prob(0.0).dtype == np.float32  # Python numbers: float32


def test_normal_samples_and_reparameterisation():
    d = Normal(mg.tensor([1.0, -2.0], requires_grad=True), mg.tensor([0.5, 3.0]))
    x = d.sample((N_SAMPLES,), generator=mg.random.Generator(0))
    assert x.shape == (N_SAMPLES, 2) and x.dtype == np.float32 and not x.requires_grad
    _mean_within(x.numpy(), [1.0, -2.0], np.array([0.25, 9.0]))
    np.testing.assert_allclose(x.numpy().var(0), [0.25, 9.0], rtol=0.05)
    again = d.sample((N_SAMPLES,), generator=mg.random.Generator(0))
    np.testing.assert_array_equal(x.numpy(), again.numpy())

    loc, scale = _f64([1.0, -2.0], requires_grad=True), _f64([0.5, 3.0], requires_grad=True)
    z = Normal(loc, scale).rsample((N_SAMPLES,), generator=mg.random.Generator(0))
    np.testing.assert_allclose(z.numpy(), x.numpy(), rtol=1e-6, atol=1e-6)  # same draws
    z.mean(axis=0).sum().backward()
    eps = (z.numpy() - [1.0, -2.0]) / [0.5, 3.0]
    np.testing.assert_allclose(loc.grad.numpy(), [1.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(scale.grad.numpy(), eps.mean(0), rtol=1e-10)


def test_normal_gradients():
    rng = np.random.default_rng(1)
    loc, scale, x = rng.standard_normal(3), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    inputs = [_f64(loc), _f64(scale), _f64(x)]
    assert mg.gradcheck(lambda m, s, v: Normal(m, s).log_prob(v), inputs)
    assert mg.gradcheck(lambda m, s, v: Normal(m, s).cdf(v), inputs)
    assert mg.gradcheck(lambda m, s: Normal(m, s).entropy(), inputs[:2])


# ---- Bernoulli ----------------------------------------------------------------------------

def test_bernoulli_matches_scipy_and_normalises():
    logits = np.array([-3.0, -0.2, 0.0, 1.5, 7.0])
    d = Bernoulli(_f64(logits))
    p = scipy.special.expit(logits)
    for value in (0.0, 1.0):
        np.testing.assert_allclose(d.log_prob(np.full(5, value)).numpy(),
                                   scipy.stats.bernoulli.logpmf(value, p), rtol=1e-13)
    total = np.exp(d.log_prob(np.zeros(5)).numpy()) + np.exp(d.log_prob(np.ones(5)).numpy())
    np.testing.assert_allclose(total, 1.0, rtol=1e-15)
    np.testing.assert_allclose(d.probs.numpy(), p, rtol=1e-15)
    np.testing.assert_allclose(d.entropy().numpy(), scipy.stats.bernoulli.entropy(p),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_is_finite_and_exact_at_huge_logits(dtype):
    logits = mg.tensor(np.array([-1e4, 1e4, 40.0, -40.0], dtype=dtype), requires_grad=True)
    d = Bernoulli(logits)
    lp1, lp0 = d.log_prob(np.ones(4)), d.log_prob(np.zeros(4))
    # log sigmoid(l) = -softplus(-l): -1e4, 0, -e^-40, -40 (to rounding)
    np.testing.assert_allclose(lp1.numpy(), [-1e4, 0.0, -math.exp(-40), -40.0], rtol=1e-6)
    np.testing.assert_allclose(lp0.numpy(), [0.0, -1e4, -40.0, -math.exp(-40)], rtol=1e-6)
    (lp1.sum() + lp0.sum() + d.entropy().sum()).backward()
    assert np.isfinite(logits.grad.numpy()).all()
    assert np.isfinite(d.entropy().numpy()).all() and (d.entropy().numpy() >= 0).all()


def test_bernoulli_samples_and_gradients():
    logits = np.array([-2.0, 0.0, 0.5, 3.0])
    x = Bernoulli(mg.tensor(logits.astype(np.float32))).sample(
        (N_SAMPLES,), generator=mg.random.Generator(1)).numpy()
    assert x.shape == (N_SAMPLES, 4) and x.dtype == np.float32 and set(np.unique(x)) <= {0, 1}
    p = scipy.special.expit(logits)
    _mean_within(x, p, p * (1 - p))
    extreme = Bernoulli(mg.tensor([-1e4, 1e4])).sample((100,)).numpy()
    assert (extreme[:, 0] == 0).all() and (extreme[:, 1] == 1).all()
    values = _f64([0.0, 1.0, 1.0, 0.0])
    assert mg.gradcheck(lambda lg: Bernoulli(lg).log_prob(values), [_f64(logits)])
    assert mg.gradcheck(lambda lg: Bernoulli(lg).entropy(), [_f64(logits)])


# ---- Categorical --------------------------------------------------------------------------

def test_categorical_matches_explicit_formula():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 5)) * 2
    d = Categorical(_f64(logits))
    log_p = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    values = rng.integers(0, 5, size=(7, 3))  # a sample shape in front of the batch shape
    expected = np.take_along_axis(np.broadcast_to(log_p, (7, 3, 5)), values[..., None],
                                  -1)[..., 0]
    np.testing.assert_allclose(d.log_prob(values).numpy(), expected, rtol=1e-14)
    every = d.log_prob(np.arange(5)[:, None]).numpy()  # (5, 3): each category per batch
    np.testing.assert_allclose(np.exp(every).sum(0), 1.0, rtol=1e-14)
    np.testing.assert_allclose(d.probs.numpy().sum(-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(d.entropy().numpy(),
                               scipy.stats.entropy(np.exp(log_p), axis=-1), rtol=1e-13)


@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-11), (np.float32, 1e-6)])
def test_categorical_is_finite_and_right_at_huge_logits(dtype, atol):
    logits = mg.tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype),
                       requires_grad=True)
    d = Categorical(logits)
    lp = d.log_prob(np.array([[0, 1, 2], [0, 1, 2]]).T)
    np.testing.assert_allclose(lp.numpy(), [[0.0, -math.log(3)], [-2e4, -math.log(3)],
                                            [-1e4, -math.log(3)]], rtol=1e-12, atol=atol)
    (lp.sum() + d.entropy().sum()).backward()
    assert np.isfinite(logits.grad.numpy()).all()
    np.testing.assert_allclose(d.entropy().numpy(), [0.0, math.log(3)], atol=atol)
    assert (d.sample((50,)).numpy()[:, 0] == 0).all()


def test_categorical_samples_and_gradients():

    probs = np.array([0.1, 0.2, 0.3, 0.4])
    k = Categorical(mg.tensor(np.log(probs))).sample(N_SAMPLES, mg.random.Generator(3))
    assert k.shape == (N_SAMPLES,) and k.dtype == np.int64
    freq = np.bincount(k.numpy(), minlength=4) / N_SAMPLES
    assert (np.abs(freq - probs) < 4.5 * np.sqrt(probs * (1 - probs) / N_SAMPLES)).all()

    values = np.array([[0, 2], [3, 1]])
    inputs = [_f64(np.random.default_rng(4).standard_normal((2, 4)))]
    assert mg.gradcheck(lambda lg: Categorical(lg).log_prob(values), inputs)
    assert mg.gradcheck(lambda lg: Categorical(lg).entropy(), inputs)
    with pytest.raises(ValueError, match="values must lie"):
        Categorical(mg.zeros(3)).log_prob(3)
    with pytest.raises(TypeError, match="integers"):
        Categorical(mg.zeros(3)).log_prob(np.array([1.0]))


# ---- DiscretizedLogisticMixture -----------------------------------------------------------

def _levels(num_bins=256):
    return np.linspace(-1.0, 1.0, num_bins)


def _dlm_exact(x, weights, means, log_scales, num_bins=256):
    """log P(x) of the discretized logistic mixture in 60-digit arithmetic (mpmath)."""
    mpmath.mp.dps = 60
    h = mpmath.mpf(1) / (num_bins - 1)
    log_w = np.asarray(weights) - scipy.special.logsumexp(weights)
    total = mpmath.mpf(0)
    for lw, m, ls in zip(log_w, means, log_scales):
        s = mpmath.exp(mpmath.mpf(ls))
        cdf = lambda v: 1 / (1 + mpmath.exp(-(v - mpmath.mpf(m)) / s))  # noqa: E731
        upper = mpmath.mpf(1) if x > 1 - 1e-9 else cdf(mpmath.mpf(x) + h)
        lower = mpmath.mpf(0) if x < -1 + 1e-9 else cdf(mpmath.mpf(x) - h)
        total += mpmath.exp(mpmath.mpf(lw)) * (upper - lower)
    return float(mpmath.log(total))


def test_discretized_logistic_matches_exact_arithmetic_even_in_the_far_tails():
    rng = np.random.default_rng(5)
    weights, means = rng.standard_normal(3), np.array([-0.9, 0.1, 0.95])
    for log_scales in ([-7.0, -3.0, -1.0], [-4.0, -5.0, -6.0], [0.5, 2.0, 4.0]):
        d = DiscretizedLogisticMixture(_f64(weights), _f64(means), _f64(log_scales))
        x = _levels()[np.r_[0, 1, 5, 60, 128, 140, 200, 250, 254, 255]]
        expected = [_dlm_exact(v, weights, means, log_scales) for v in x]
        # log P reaches -1e3 here, far past where sigmoid(a) - sigmoid(b) underflows
        np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-11)


def _pixelcnn_pp_component_log_probs(x, means, log_scales):
    """The per-component log-probabilities of PixelCNN++'s discretized_mix_logistic_loss
    (Salimans et al. 2017, the published code) for one channel in NumPy, and where it fell
    back to its density x width approximation (bins of mass below 1e-5)."""
    centered = x - means
    inv_stdv = np.exp(-log_scales)
    plus_in = inv_stdv * (centered + 1 / 255)
    min_in = inv_stdv * (centered - 1 / 255)
    cdf_delta = scipy.special.expit(plus_in) - scipy.special.expit(min_in)
    log_cdf_plus = plus_in - np.logaddexp(0, plus_in)
    log_one_minus_cdf_min = -np.logaddexp(0, min_in)
    mid_in = inv_stdv * centered
    log_pdf_mid = mid_in - log_scales - 2 * np.logaddexp(0, mid_in)
    log_probs = np.where(x < -0.999, log_cdf_plus, np.where(
        x > 0.999, log_one_minus_cdf_min, np.where(
            cdf_delta > 1e-5, np.log(np.maximum(cdf_delta, 1e-12)),
            log_pdf_mid - np.log(127.5))))
    return log_probs, (np.abs(x) <= 0.999) & (cdf_delta <= 1e-5)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-9), (np.float32, 2e-5)])
def test_discretized_logistic_agrees_with_pixelcnn_pp(dtype, rtol):
    rng = np.random.default_rng(6)
    shape = (64, 5)  # 64 pixels, 5 components, scales in PixelCNN++'s usual range
    weights, means = rng.standard_normal(shape), rng.uniform(-1, 1, shape)
    log_scales = rng.uniform(-4.0, -1.0, shape)
    x = _levels()[rng.integers(0, 256, 64)]
    x[:4] = [-1.0, -1.0, 1.0, 1.0]
    expected, approximated = _pixelcnn_pp_component_log_probs(x[:, None], means, log_scales)
    assert 50 < (~approximated).sum() < 300  # both branches of PixelCNN++ are exercised

    # each component alone: a one-component mixture per (pixel, component)
    components = DiscretizedLogisticMixture(
        mg.zeros(64, 5, 1, dtype=dtype), mg.tensor(means[..., None].astype(dtype)),
        mg.tensor(log_scales[..., None].astype(dtype)))
    log_p = components.log_prob(np.broadcast_to(x[:, None], shape).astype(dtype)).numpy()
    np.testing.assert_allclose(log_p[~approximated], expected[~approximated], rtol=rtol)
    # where PixelCNN++ approximates (far tails, where the logistic density is convex), the
    # mid-bin value underestimates the exact mass
    assert (log_p[approximated] >= expected[approximated] - rtol).all()

    mixture = DiscretizedLogisticMixture(*(mg.tensor(a.astype(dtype))
                                           for a in (weights, means, log_scales)))
    np.testing.assert_allclose(
        mixture.log_prob(x.astype(dtype)).numpy(),
        scipy.special.logsumexp(scipy.special.log_softmax(weights, -1) + log_p, -1),
        rtol=rtol)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_discretized_logistic_sums_to_one_over_all_levels(dtype, tol):
    rng = np.random.default_rng(7)
    shape = (12, 4)
    weights = rng.standard_normal(shape) * 3
    means = rng.uniform(-1.5, 1.5, shape)
    log_scales = rng.uniform(-8.0, 3.0, shape)
    log_scales[:6, 0] = [-30.0, -15.0, -7.0, 10.0, 20.0, 30.0]  # extremes, both ways
    d = DiscretizedLogisticMixture(*(mg.tensor(a.astype(dtype))
                                     for a in (weights, means, log_scales)))
    x = np.broadcast_to(_levels()[:, None], (256, 12)).astype(dtype)
    log_p = d.log_prob(x).numpy()
    assert log_p.shape == (256, 12) and np.isfinite(log_p).all()
    np.testing.assert_allclose(np.exp(log_p.astype(np.float64)).sum(0), 1.0, atol=tol, rtol=0)


def test_discretized_logistic_edges_are_finite_with_finite_gradients():
    weights = mg.tensor([[0.0, 5.0], [-3.0, 3.0]], requires_grad=True)
    means = mg.tensor([[1.0, 0.98], [-1.0, -0.5]], requires_grad=True)
    log_scales = mg.tensor([[-7.0, -7.0], [-7.0, 20.0]], requires_grad=True)
    d = DiscretizedLogisticMixture(weights, means, log_scales)
    for x in ([-1.0, 1.0], [1.0, -1.0], [0.0, 0.0]):  # edge bins far from narrow components
        lp = d.log_prob(np.array(x, dtype=np.float32))
        assert np.isfinite(lp.numpy()).all()
        lp.sum().backward()
    for t in (weights, means, log_scales):
        assert np.isfinite(t.grad.numpy()).all()
    # the edge bins reach to infinity: a narrow component beyond an edge sits in its bin
    beyond = DiscretizedLogisticMixture(mg.zeros(2, 1), mg.tensor([[1.5], [-1.5]]),
                                        mg.full((2, 1), -7.0))
    np.testing.assert_allclose(beyond.log_prob(np.array([1.0, -1.0])).numpy(), 0.0,
                               atol=1e-7)


def test_discretized_logistic_gradients():
    rng = np.random.default_rng(8)
    shape = (6, 3)
    x = _f64(_levels()[[0, 3, 100, 128, 252, 255]])
    log_scales = rng.uniform(-4.0, 0.5, shape)
    log_scales[2, 1] = 40.0  # a bin so much narrower than the scale that 2h/s < eps
    inputs = [_f64(rng.standard_normal(shape)), _f64(rng.uniform(-1, 1, shape)),
              _f64(log_scales)]
    assert mg.gradcheck(lambda w, m, s: DiscretizedLogisticMixture(w, m, s).log_prob(x),
                        inputs, atol=1e-6, rtol=1e-5)


def test_discretized_logistic_samples_follow_log_prob():
    weights = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    means = np.array([[-0.8, 0.2, 0.9], [0.0, -0.3, 0.5]])
    log_scales = np.array([[-2.0, -1.5, -3.0], [-0.5, -2.5, -1.0]])
    d = DiscretizedLogisticMixture(mg.tensor(weights), mg.tensor(means),
                                   mg.tensor(log_scales), num_bins=16)
    x = d.sample((N_SAMPLES,), generator=mg.random.Generator(9)).numpy()
    assert x.shape == (N_SAMPLES, 2)
    levels = _levels(16)
    index = np.rint((x + 1) * 7.5).astype(int)
    np.testing.assert_allclose(x, levels[index], atol=1e-12)  # every sample on a level
    p = np.exp(d.log_prob(np.broadcast_to(levels[:, None], (16, 2))).numpy())
    for b in range(2):
        freq = np.bincount(index[:, b], minlength=16) / N_SAMPLES
        assert (np.abs(freq - p[:, b]) < 4.5 * np.sqrt(p[:, b] * (1 - p[:, b]) / N_SAMPLES)
                + 1e-4).all()


def test_discretized_logistic_channels_share_the_component():
    rng = np.random.default_rng(10)
    k, c, num_bins = 3, 2, 8
    weights = rng.standard_normal((4, k))
    means, log_scales = rng.uniform(-1, 1, (4, c, k)), rng.uniform(-2, 0, (4, c, k))
    d = DiscretizedLogisticMixture(_f64(weights), _f64(means), _f64(log_scales),
                                   num_bins=num_bins)
    assert d.batch_shape == (4,) and d.event_shape == (c,)
    levels = _levels(num_bins)
    grid = np.stack(np.meshgrid(levels, levels, indexing="ij"), -1).reshape(-1, 1, 2)
    log_p = d.log_prob(np.broadcast_to(grid, (64, 4, 2))).numpy()
    assert log_p.shape == (64, 4)
    np.testing.assert_allclose(np.exp(log_p).sum(0), 1.0, rtol=1e-13)
    # the same as a log-sum-exp over components of the channels' summed log-probabilities
    one_channel = [DiscretizedLogisticMixture(_f64(np.zeros((4, 1))),
                                              _f64(means[:, i, j:j + 1]),
                                              _f64(log_scales[:, i, j:j + 1]),
                                              num_bins=num_bins)
                   for i in range(c) for j in range(k)]
    x = levels[rng.integers(0, num_bins, (4, c))]
    per = np.array([one_channel[i * k + j].log_prob(x[:, i]).numpy()
                    for i in range(c) for j in range(k)]).reshape(c, k, 4)
    expected = scipy.special.logsumexp(scipy.special.log_softmax(weights, -1)
                                       + per.sum(0).T, -1)
    np.testing.assert_allclose(d.log_prob(x).numpy(), expected, rtol=1e-12)
    assert d.sample((5,)).shape == (5, 4, 2)


# ---- MixtureOfGaussians -------------------------------------------------------------------

def _mog_params(seed=11):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(4), rng.standard_normal(4) * 2, rng.uniform(-1.5, 0.5, 4)


def test_mixture_of_gaussians_matches_scipy_and_integrates_to_one():
    weights, means, log_scales = _mog_params()
    w = scipy.special.softmax(weights)
    d = MixtureOfGaussians(_f64(weights), _f64(means), _f64(log_scales))
    grid = np.linspace(-30, 30, 200_001)
    density = (w * scipy.stats.norm.pdf(grid[:, None], means, np.exp(log_scales))).sum(-1)
    log_p = d.log_prob(grid).numpy()
    np.testing.assert_allclose(log_p, np.log(density), rtol=1e-12)
    assert np.trapezoid(np.exp(log_p), grid) == pytest.approx(1.0, abs=1e-9)
    cdf = (w * scipy.stats.norm.cdf(grid[::1000, None], means, np.exp(log_scales))).sum(-1)
    np.testing.assert_allclose(d.cdf(grid[::1000]).numpy(), cdf, rtol=1e-12, atol=1e-15)


def test_mixture_of_gaussians_cdf_gradient_is_the_density():
    weights, means, log_scales = _mog_params()
    x = _f64(np.linspace(-4, 4, 9), requires_grad=True)
    d = MixtureOfGaussians(_f64(weights), _f64(means), _f64(log_scales))
    (dcdf,) = mg.grad(d.cdf(x).sum(), x)
    np.testing.assert_allclose(dcdf.numpy(), np.exp(d.log_prob(x).numpy()), rtol=1e-12)
    inputs = [_f64(weights), _f64(means), _f64(log_scales), _f64(np.linspace(-3, 3, 4)[:, None])]
    assert mg.gradcheck(lambda w, m, s, v: MixtureOfGaussians(w, m, s).log_prob(v), inputs)
    assert mg.gradcheck(lambda w, m, s, v: MixtureOfGaussians(w, m, s).cdf(v), inputs)


def test_mixture_of_gaussians_samples():
    weights, means, log_scales = _mog_params()
    w, var_k = scipy.special.softmax(weights), np.exp(2 * log_scales)
    mean = (w * means).sum()
    var = (w * (var_k + means ** 2)).sum() - mean ** 2
    d = MixtureOfGaussians(mg.tensor(weights), mg.tensor(means), mg.tensor(log_scales))
    x = d.sample((N_SAMPLES,), generator=mg.random.Generator(12)).numpy()
    assert x.shape == (N_SAMPLES,)
    _mean_within(x, mean, var)
    assert x.var() == pytest.approx(var, rel=0.05)
    assert scipy.stats.kstest(x, lambda v: d.cdf(v).numpy()).pvalue > 1e-3


# ---- KL -----------------------------------------------------------------------------------

def test_normal_kl_closed_form_monte_carlo_and_gradients():
    mp, sp, mq, sq = 0.3, 0.8, -0.5, 1.7
    p, q = Normal(_f64([mp]), _f64([sp])), Normal(_f64([mq]), _f64([sq]))
    kl = kl_divergence(p, q).numpy()
    closed = math.log(sq / sp) + (sp ** 2 + (mp - mq) ** 2) / (2 * sq ** 2) - 0.5
    np.testing.assert_allclose(kl, [closed], rtol=1e-14)
    x = p.sample((N_SAMPLES,), generator=mg.random.Generator(13))
    log_ratio = (p.log_prob(x) - q.log_prob(x)).numpy()
    assert abs(log_ratio.mean() - closed) < 4.5 * log_ratio.std() / math.sqrt(N_SAMPLES)
    assert kl_divergence(p, p).numpy() == pytest.approx(0.0, abs=1e-15)
    rng = np.random.default_rng(14)
    inputs = [_f64(rng.standard_normal(3)), _f64(rng.uniform(0.5, 2, 3)),
              _f64(rng.standard_normal(3)), _f64(rng.uniform(0.5, 2, 3))]
    assert mg.gradcheck(lambda a, b, c, e: kl_divergence(Normal(a, b), Normal(c, e)), inputs)
    with pytest.raises(NotImplementedError, match="Bernoulli"):
        kl_divergence(Bernoulli(mg.zeros(1)), Normal(0.0, 1.0))


# ---- against torch.distributions ----------------------------------------------------------

def test_against_torch_distributions():
    torch = pytest.importorskip("torch")
    td = torch.distributions
    rng = np.random.default_rng(15)
    loc, scale, x = rng.standard_normal(5), rng.uniform(0.3, 2, 5), rng.standard_normal(5)
    loc2, scale2 = rng.standard_normal(5), rng.uniform(0.3, 2, 5)
    t = torch.tensor
    ours, theirs = Normal(_f64(loc), _f64(scale)), td.Normal(t(loc), t(scale))
    np.testing.assert_allclose(ours.log_prob(x).numpy(), theirs.log_prob(t(x)).numpy(),
                               rtol=1e-13)
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours.cdf(x).numpy(), theirs.cdf(t(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        kl_divergence(ours, Normal(_f64(loc2), _f64(scale2))).numpy(),
        td.kl_divergence(theirs, td.Normal(t(loc2), t(scale2))).numpy(), rtol=1e-12)

    logits = rng.standard_normal(5) * 3
    bits = (rng.random(5) < 0.5).astype(np.float64)
    ours, theirs = Bernoulli(_f64(logits)), td.Bernoulli(logits=t(logits))
    np.testing.assert_allclose(ours.log_prob(bits).numpy(), theirs.log_prob(t(bits)).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-12)

    logits = rng.standard_normal((4, 6))
    k = rng.integers(0, 6, 4)
    ours, theirs = Categorical(_f64(logits)), td.Categorical(logits=t(logits))
    np.testing.assert_allclose(ours.log_prob(k).numpy(), theirs.log_prob(t(k)).numpy(),
                               rtol=1e-13)
    np.testing.assert_allclose(ours.entropy().numpy(), theirs.entropy().numpy(), rtol=1e-13)

    weights, means, log_scales = (rng.standard_normal((3, 4)) for _ in range(3))
    x = rng.standard_normal(3) * 2
    mix = td.MixtureSameFamily(td.Categorical(logits=t(weights)),
                               td.Normal(t(means), t(np.exp(log_scales))))
    ours = MixtureOfGaussians(_f64(weights), _f64(means), _f64(log_scales))
    np.testing.assert_allclose(ours.log_prob(x).numpy(), mix.log_prob(t(x)).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(ours.cdf(x).numpy(), mix.cdf(t(x)).numpy(), rtol=1e-12)
