"""Denoising diffusion probabilistic models (Ho et al. 2020), with Nichol and Dhariwal's
(2021) cosine schedule and learned variances, and DDIM sampling (Song et al. 2021).

The model is a hierarchical VAE whose encoder is fixed: q(x_{1:T} | x_0) adds Gaussian noise
step by step (minigen/diffusion/schedule.py), and the decoder p(x_{t-1} | x_t) =
N(mu_theta(x_t, t), sigma_t^2 I) undoes one step, with mu_theta from a U-Net's estimate of
the noise (minigen/diffusion/unet.py). Its ELBO splits into one closed-form term per step
(Ho et al., eq. 5; 0-indexed steps, t = 0 .. T-1):

    -log p(x_0) <= L_T + sum_{t=1}^{T-1} L_t + L_0
    L_T = KL(q(x_{T-1} | x_0) || N(0, I))                                  (the prior)
    L_t = E_q(x_t|x_0) KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))       (Gaussians)
    L_0 = -E_q(x_0'|x_0) log p(x_0 | x_0'), p the discretized Gaussian over the data's levels

Training (Ho et al., Algorithm 1): t uniform, eps ~ N(0, I), x_t = sqrt(abar_t) x_0 +
sqrt(1 - abar_t) eps, and L_simple = E ||eps - eps_theta(x_t, t)||^2 (eq. 14, a mean over
the dimensions), the reweighted bound. With variance="learned" the network also outputs v
per dimension, log sigma_t^2 = (v+1)/2 log beta_t + (1-v)/2 log beta~_t, trained by the
hybrid loss L_simple + vlb_weight * L_vlb (Nichol and Dhariwal, eq. 16, vlb_weight 0.001)
where L_vlb = T L_t for the drawn t in bits per dimension, with the mean's input eps_theta
stopped (their sec. 3.1: L_vlb trains the variance only).

Evaluation (`evaluate`):
    bpd            the full bound in bits per dimension: L_T, every one of the T-1 terms
                   L_t and L_0, each expectation by one draw of x_t per image, summed in
                   float64 (T network calls per batch); with elbo_nats (the same in nats per
                   image) and its three parts prior_bpd, diffusion_bpd, decoder_bpd.
                   Only when final.
    bpd_estimate   a cheap stand-in for periodic evaluation: L_T, L_0 and the KL terms of
                   at most BOUND_ESTIMATE_STEPS steps, one drawn from each stratum of
                   1 .. T-1 (geometrically growing) and weighted by its stratum's size
                   (stratified sampling of the sum: unbiased over the draw of the steps,
                   which the evaluation seed fixes; not the reported bound); the validation
                   metric
    fid_local, kid_local, is_local, precision, recall
                   minigen.quality on eval_samples samples of the configured sampler (only
                   when final)

Evaluation draws its noise from a generator seeded with fixed numbers, so the same weights
always give the same figures.
"""
import math

import numpy as np

from .. import quality
from ..autograd import no_grad
from ..functional import kl_normal
from ..model import Model, Update
from ..ops import clip, where
from ..ops import mean as reduce_mean
from ..random import Generator
from . import sampling
from .bound import discretized_gaussian_log_likelihood
from .schedule import SCHEDULES, Schedule
from .unet import UNet

EVALUATION_SEED = (20200619, 2)   # the noise of every evaluation (the DDPM paper's date)
SAMPLE_BATCH = 500                # images per reverse-process batch
BOUND_ESTIMATE_STEPS = 50         # KL terms in bpd_estimate
SAMPLERS = ("ancestral", "ddim")
VARIANCES = ("large", "small", "learned")


def check_sampling(sampler, sample_steps, eta, T):
    """The sampler's settings, checked together (at training and at `minigen sample`)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler={sampler!r}: one of {', '.join(SAMPLERS)}")
    if sampler == "ddim" and not 1 <= int(sample_steps) <= int(T):
        raise ValueError(f"sample_steps={sample_steps}: DDIM visits a subset of the "
                         f"T={T} steps, so sample_steps must be in [1, T]")
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta={eta}: DDIM's noise scale must be in [0, 1] (0: "
                         f"deterministic, 1: the ancestral sampler's variance)")


class DDPM(Model):
    """See the module docstring. Config: T, schedule (linear, cosine), variance (large:
    sigma_t^2 = beta_t, small: beta~_t, learned), vlb_weight, the U-Net's channels,
    channel_mults and groups, sampler (ancestral, ddim) with sample_steps and eta for DDIM,
    clip_denoised (clip the x_0 estimate to [-1, 1] in sampling and in the bound, as both
    reference codes do), eval_samples."""

    validation_metric = "bpd_estimate"
    validation_goal = "min"
    sampling_keys = ("sampler", "sample_steps", "eta")

    def __init__(self, spec, generator, T=1000, schedule="linear", variance="large",
                 vlb_weight=0.001, channels=64, channel_mults=(), groups=8,
                 sampler="ancestral", sample_steps=50, eta=0.0, clip_denoised=True,
                 eval_samples=2000):
        super().__init__(spec)
        if not (spec.is_image and spec.kind == "discrete"):
            raise ValueError(f"ddpm models images of discrete levels, not {spec.name} "
                             f"({spec.kind}, shape {spec.shape})")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule={schedule!r}: one of {', '.join(SCHEDULES)}")
        if variance not in VARIANCES:
            raise ValueError(f"variance={variance!r}: one of {', '.join(VARIANCES)}")
        if int(T) < 1:
            raise ValueError(f"T={T}: the diffusion needs at least 1 step")
        check_sampling(sampler, sample_steps, eta, T)
        self.T, self.variance = int(T), variance
        self.schedule = Schedule.named(schedule, self.T)
        self.vlb_weight = float(vlb_weight)
        self.sampler, self.sample_steps, self.eta = sampler, int(sample_steps), float(eta)
        self.clip_denoised = bool(clip_denoised)
        self.eval_samples = int(eval_samples)
        self.channels_in = spec.shape[0]
        outputs = 2 * self.channels_in if variance == "learned" else self.channels_in
        self.net = UNet(spec.shape, outputs, channels=int(channels),
                        channel_mults=tuple(int(m) for m in channel_mults),
                        groups=int(groups), generator=generator)

    # data <-> network scale -------------------------------------------------------------
    def scale(self, x, dtype="float32"):
        """K-level images as x / (K - 1) * 2 - 1 in [-1, 1] (DATA.md)."""
        return x.astype(dtype) * (2.0 / (self.spec.levels - 1)) - 1.0

    def unscale(self, s):
        """clip(round((s + 1) / 2 * (K - 1)), 0, K - 1) as uint8 levels (NumPy)."""
        k = self.spec.levels - 1
        return np.clip(np.round((s + 1.0) / 2.0 * k), 0, k).astype(np.uint8)

    # the reverse process -----------------------------------------------------------------
    def network(self, xt, t):
        """eps_theta(x_t, t) and v (None unless the variances are learned), in x_t's dtype;
        the U-Net computes in its parameters' dtype."""
        dtype = self.net.conv_in.weight.dtype
        out = self.net(xt.astype(dtype), t).astype(xt.dtype)
        c = self.channels_in
        if self.variance == "learned":
            return out[:, :c], out[:, c:]
        return out, None

    def reverse_step(self, xt, t, eps, v, clip_x0):
        """(x_0 estimate, eps estimate, mean, log-variance of p(x_{t-1} | x_t)) from the
        network's eps and v at x_t: x_0 from eq. 4, clipped to [-1, 1] with clip_x0 (and eps
        made consistent with it), the mean mu~_t(x_t, x_0) of eq. 7."""
        s = self.schedule
        x0 = s.predict_x0(xt, t, eps)
        if clip_x0:
            x0 = clip(x0, -1.0, 1.0)
            eps = s.predict_eps(xt, t, x0)
        return (x0, eps, s.posterior_mean(x0, xt, t),
                s.model_log_variance(self.variance, t, xt, v))

    def denoise(self, xt, t):
        """The model's reverse step at x_t, as the samplers and the bound use it."""
        return self.reverse_step(xt, t, *self.network(xt, t), self.clip_denoised)

    # training -----------------------------------------------------------------------------
    def training_noise(self, n, generator):
        """The draws of one training batch: t uniform in 0 .. T-1 (N,) as NumPy, then eps."""
        t = generator.integers(0, self.T, shape=(n,)).numpy()
        return t, generator.normal((n,) + tuple(self.spec.shape), device=self.device)

    def objective(self, x, t, eps):
        """The training loss of the batch x (levels) at the drawn t and eps, and its logs."""
        x0 = self.scale(x)
        xt = self.schedule.q_sample(x0, t, eps)
        eps_pred, v = self.network(xt, t)
        diff = eps - eps_pred
        simple = reduce_mean(diff * diff)                    # L_simple (Ho et al., eq. 14)
        if self.variance != "learned":
            return simple, {"simple": float(simple.numpy())}
        # L_vlb = T L_t in bits per dimension, for the variance only (Nichol and Dhariwal,
        # eq. 16 and sec. 3.1: the mean's eps is stopped; their training does not clip x_0)
        _, _, mean, log_variance = self.reverse_step(xt, t, eps_pred.detach(), v, False)
        terms = self.step_terms(x, x0, xt, t, mean, log_variance)
        vlb = reduce_mean(terms) * (self.T / (self.spec.dims * math.log(2)))
        loss = simple + self.vlb_weight * vlb.astype(simple.dtype)
        return loss, {"simple": float(simple.numpy()), "vlb_bpd": float(vlb.numpy())}

    def updates(self, batches, generator):
        x = batches.next().x
        t, eps = self.training_noise(len(x), generator)
        loss, logs = self.objective(x, t, eps)
        yield Update("model", loss, logs)

    def loss(self, x, generator, labels=None):
        return self.objective(x, *self.training_noise(len(x), generator))[0]

    # the bound ----------------------------------------------------------------------------
    def step_terms(self, x, x0, xt, t, mean, log_variance):
        """Per image (N,), float64 nats: L_t = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
        where t > 0, and L_0 = -log p(x_0 | x_t) (the discretized Gaussian over the levels)
        where t = 0; x holds the images' levels, x0 their scaled values, xt the draw, mean
        and log_variance the model's p(x_{t-1} | x_t)."""
        mean, log_variance = mean.astype("float64"), log_variance.astype("float64")
        x0, xt = x0.astype("float64"), xt.astype("float64")
        s = self.schedule
        true_mean = s.posterior_mean(x0, xt, t)
        true_log_variance = s.posterior_log_variance_at(t, xt)
        kl = kl_normal(true_mean, true_log_variance, mean, log_variance)
        decoder = -discretized_gaussian_log_likelihood(x, mean, log_variance,
                                                       self.spec.levels)
        at_zero = np.asarray(t).reshape((-1,) + (1,) * (xt.ndim - 1)) == 0
        per_dim = where(at_zero, decoder, kl)
        return per_dim.reshape(len(xt), -1).sum(axis=1)

    def prior_term(self, x0):
        """L_T = KL(q(x_{T-1} | x_0) || N(0, I)) per image, float64 nats."""
        t = np.full(len(x0), self.T - 1)
        mean, log_variance = self.schedule.q_mean_variance(x0, t)
        return kl_normal(mean, log_variance).reshape(len(x0), -1).sum(axis=1)

    def bound_terms(self, x, steps, generator):
        """(L_T, {t: L_t}) per image for the given steps, float64 NumPy: one draw of x_t
        ~ q(x_t | x_0) per image and step."""
        x0 = self.scale(x, "float64")
        n = len(x)
        terms = {}
        for t in steps:
            ts = np.full(n, int(t))
            eps = generator.normal(x0.shape, dtype=np.float64, device=self.device)
            xt = self.schedule.q_sample(x0, ts, eps)
            terms[int(t)] = self.step_terms(x, x0, xt, ts, *self.denoise(xt, ts)[2:]).numpy()
        return self.prior_term(x0).numpy(), terms

    def estimate_steps(self):
        """bpd_estimate's steps and weights: t = 0 (L_0, weight 1) and one step drawn
        uniformly (from the evaluation seed) in each stratum of 1 .. T-1, weighted by the
        stratum's size. The BOUND_ESTIMATE_STEPS strata grow geometrically from t = 1 to
        T (every step its own stratum when T - 1 is no more): the KL terms fall steeply with
        t, so the first steps, which weigh most, are taken exactly and the flat tail in
        wide strata."""
        k = min(BOUND_ESTIMATE_STEPS, self.T - 1)
        if k == 0:
            return np.array([0]), np.array([1.0])
        points = k + 1
        while True:  # floor merges the first points: add points until k strata remain
            edges = np.unique(np.floor(np.geomspace(1, self.T, points)).astype(int))
            if len(edges) > k:
                break
            points += 1
        sizes = np.diff(edges)
        picks = edges[:-1] + np.random.default_rng(EVALUATION_SEED).integers(0, sizes)
        return np.append(0, picks), np.append(1.0, sizes.astype(np.float64))

    # evaluation ---------------------------------------------------------------------------
    def evaluate(self, batches, final=True):
        generator = Generator(EVALUATION_SEED)
        estimate_steps, weights = self.estimate_steps()
        sums = {"prior": 0.0, "diffusion": 0.0, "decoder": 0.0, "estimate": 0.0}
        count = 0
        with no_grad():
            for batch in batches:
                x = batch.x
                prior, terms = self.bound_terms(x, estimate_steps, generator)
                sums["estimate"] += float((prior + sum(w * terms[int(t)] for t, w in
                                                       zip(estimate_steps, weights))).sum())
                if final:
                    prior, terms = self.bound_terms(x, range(self.T), generator)
                    sums["prior"] += float(prior.sum())
                    sums["decoder"] += float(terms[0].sum())
                    sums["diffusion"] += float(sum(terms[t] for t in range(1, self.T)).sum()) \
                        if self.T > 1 else 0.0
                count += len(x)
        bits = self.spec.dims * math.log(2) * count
        metrics = {"bpd_estimate": sums["estimate"] / bits}
        if final:
            total = sums["prior"] + sums["diffusion"] + sums["decoder"]
            metrics.update(bpd=total / bits, elbo_nats=total / count,
                           prior_bpd=sums["prior"] / bits,
                           diffusion_bpd=sums["diffusion"] / bits,
                           decoder_bpd=sums["decoder"] / bits)
            samples = self.sample(self.eval_samples, Generator(EVALUATION_SEED))
            metrics.update(quality.image_quality(samples, self.spec))
        return metrics

    # samples ------------------------------------------------------------------------------
    def set_sampling(self, **settings):
        """`minigen sample RUN --config sampler=ddim sample_steps=50 eta=0`: another
        sampler for the same trained network."""
        merged = {"sampler": self.sampler, "sample_steps": self.sample_steps,
                  "eta": self.eta, **settings}
        check_sampling(merged["sampler"], merged["sample_steps"], merged["eta"], self.T)
        self.sampler, self.sample_steps, self.eta = (merged["sampler"],
                                                     int(merged["sample_steps"]),
                                                     float(merged["eta"]))

    def sample(self, n, generator, labels=None):
        """n images at the data's levels from the configured sampler."""
        return self.sample_with(n, generator, self.sampler, self.sample_steps, self.eta)

    def sample_with(self, n, generator, sampler, sample_steps=None, eta=0.0):
        """n images at the data's levels (uint8), SAMPLE_BATCH at a time, from `sampler`
        (ancestral, or ddim on sample_steps steps with noise eta)."""
        dtype = self.net.conv_in.weight.dtype
        out = []
        with no_grad():
            for start in range(0, n, SAMPLE_BATCH):
                shape = (min(SAMPLE_BATCH, n - start),) + tuple(self.spec.shape)
                if sampler == "ancestral":
                    x = sampling.ancestral(self.denoise, self.schedule, shape, generator,
                                           self.device, dtype)
                elif sampler == "ddim":
                    x = sampling.ddim(self.denoise, self.schedule, shape, generator,
                                      self.device, dtype, sample_steps, eta)
                else:
                    raise ValueError(f"sampler={sampler!r}: one of {', '.join(SAMPLERS)}")
                out.append(x.numpy())
        return self.unscale(np.concatenate(out))
