"""The two samplers of a diffusion model, each a loop over the reverse process from
x_T ~ N(0, I), given `denoise(x, t)` -> (x_0 estimate, eps estimate, mean, log-variance) of the
model at steps t (N,).

    ancestral  Ho et al., Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z, z ~ N(0, I),
               for t = T-1 .. 0 (0-indexed), without noise at the last step; T network calls
    ddim       Song et al. 2021, eq. 12, on the S steps tau_i = floor(i T / S):
                   x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - s^2) eps + s z,
                   s = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
               with abar_prev = 1 after the first step (tau_0); eta = 0 is deterministic, and
               eta = 1 with S = T is the ancestral sampler with sigma_t^2 = beta~_t (then
               s^2 = beta~_t and the mean is mu~_t(x_t, x0), eq. 7)

Both check x after every step: a value that is not finite stops the sampler with
SamplingDiverged naming the step, never NaN that a picture would draw as black.
"""
import numpy as np

from .. import backend
from ..ops import exp


class SamplingDiverged(FloatingPointError, ValueError):
    """Samples that became NaN or infinite in the reverse process."""


def check_finite(x, sampler, step, steps):
    xp = backend.xp_of(x.data)
    if not bool(xp.isfinite(x.data).all()):
        bad = "nan" if bool(xp.isnan(x.data).any()) else "inf"
        raise SamplingDiverged(f"{sampler} sampling: the samples became {bad} at step t={step} "
                               f"({steps} steps from t={steps - 1} down to 0); the network's "
                               f"output is not finite there (a diverged or corrupt checkpoint)")


def ddim_steps(steps, sample_steps):
    """The S steps that DDIM visits, tau_i = floor(i T / S), i = 0 .. S-1: every step when
    S = T, and 0, 20, ..., 980 for T = 1000, S = 50 (Song et al.'s uniform skip)."""
    return (np.arange(sample_steps) * steps) // sample_steps


def ddim_sigma(abar_t, abar_prev, eta):
    """s of one DDIM step from abar_t to abar_prev (eq. 16's sigma_tau_i(eta))."""
    return eta * np.sqrt((1.0 - abar_prev) / (1.0 - abar_t)) * np.sqrt(1.0 - abar_t / abar_prev)


def ancestral(denoise, schedule, shape, generator, device, dtype):
    """Ho et al.'s Algorithm 2 for a batch of `shape`; returns x_0 (a Tensor)."""
    x = generator.normal(shape, dtype=dtype, device=device)
    n = shape[0]
    for t in reversed(range(schedule.steps)):
        _, _, mean, log_variance = denoise(x, np.full(n, t))
        if t > 0:
            x = mean + exp(0.5 * log_variance) * generator.normal(shape, dtype=dtype,
                                                                   device=device)
        else:
            x = mean
        check_finite(x, "ancestral", t, schedule.steps)
    return x


def ddim(denoise, schedule, shape, generator, device, dtype, sample_steps, eta):
    """DDIM (Song et al. 2021, eq. 12) on sample_steps of the schedule; returns x_0."""
    taus = ddim_steps(schedule.steps, sample_steps)
    x = generator.normal(shape, dtype=dtype, device=device)
    n = shape[0]
    for i in reversed(range(len(taus))):
        t = int(taus[i])
        abar_t = schedule.abar[t]
        abar_prev = schedule.abar[taus[i - 1]] if i > 0 else 1.0
        x0, eps, _, _ = denoise(x, np.full(n, t))
        sigma = ddim_sigma(abar_t, abar_prev, eta)
        x = x0 * float(np.sqrt(abar_prev)) + eps * float(np.sqrt(1.0 - abar_prev - sigma ** 2))
        if sigma > 0:
            x = x + float(sigma) * generator.normal(shape, dtype=dtype, device=device)
        check_finite(x, f"ddim (eta={eta}, {len(taus)} steps)", t, schedule.steps)
    return x
