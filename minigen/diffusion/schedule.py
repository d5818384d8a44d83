"""The forward (noising) process of a diffusion model and the Gaussians it implies, in float64.

Steps are indexed t = 0 .. T-1 here (Ho et al.'s code); the paper's step is t + 1. With
beta_t the variance added at step t, alpha_t = 1 - beta_t and abar_t = prod_{s<=t} alpha_s:

    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)                  (Ho et al., eq. 2)
    q(x_t | x_0)     = N(sqrt(abar_t) x_0, (1 - abar_t) I)                 (eq. 4)
    q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I),                           (eqs. 6-7)
        mu~_t   = beta_t sqrt(abar_{t-1}) / (1 - abar_t) x_0
                  + (1 - abar_{t-1}) sqrt(alpha_t) / (1 - abar_t) x_t
        beta~_t = (1 - abar_{t-1}) / (1 - abar_t) beta_t,      abar_{-1} = 1

and x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) recovers x_0 from the noise eps that
made x_t (eq. 4 solved for x_0). Every array is float64 NumPy: 1 - abar_t reaches 1e-4 at
t = 0 and abar_T about 4e-5, where float32 keeps three or four digits; `coefficient` hands
one per example to a batch, in the dtype and on the device the batch computes in.
"""
import math

import numpy as np

from ..autograd import tensor

SCHEDULES = ("linear", "cosine")


def linear_betas(steps, start=1e-4, end=0.02):
    """Ho et al.'s schedule (sec. 4): beta rising linearly from 1e-4 to 0.02 over T = 1000
    steps. For another T the ends are scaled by 1000 / T, as Nichol and Dhariwal's code does,
    so that the total noise stays about the same."""
    scale = 1000.0 / steps
    return np.linspace(scale * start, min(scale * end, 0.999), steps, dtype=np.float64)


def cosine_betas(steps, offset=0.008, max_beta=0.999):
    """Nichol and Dhariwal's schedule (eq. 17): abar(t) = f(t) / f(0), f(t) =
    cos^2((t / T + s) / (1 + s) pi / 2) with s = 0.008, and beta_t = 1 - abar(t+1) / abar(t)
    clipped at 0.999 (their sec. 3.2: no singularity at the end)."""
    def f(t):
        return np.cos((t / steps + offset) / (1 + offset) * math.pi / 2) ** 2

    t = np.arange(steps, dtype=np.float64)
    return np.minimum(1 - f(t + 1) / f(t), max_beta)


def make_betas(schedule, steps):
    if schedule == "linear":
        return linear_betas(steps)
    if schedule == "cosine":
        return cosine_betas(steps)
    raise ValueError(f"schedule={schedule!r}: one of {', '.join(SCHEDULES)}")


class Schedule:
    """The forward process of T steps: betas and every derived array, float64, (T,)."""

    def __init__(self, betas):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not len(betas) or not ((betas > 0) & (betas < 1)).all():
            raise ValueError(f"Schedule: betas must be a non-empty 1-d array in (0, 1), got "
                             f"shape {betas.shape}")
        self.betas = betas
        self.steps = len(betas)
        self.alphas = 1.0 - betas
        self.abar = np.cumprod(self.alphas)
        self.abar_prev = np.append(1.0, self.abar[:-1])
        one_minus_abar = 1.0 - self.abar
        # q(x_{t-1} | x_t, x_0): beta~_t and the two weights of mu~_t (eq. 7)
        self.posterior_variance = betas * (1.0 - self.abar_prev) / one_minus_abar
        self.posterior_x0 = betas * np.sqrt(self.abar_prev) / one_minus_abar
        self.posterior_xt = (1.0 - self.abar_prev) * np.sqrt(self.alphas) / one_minus_abar
        # beta~_0 = 0: its log is taken as beta~_1's (Ho et al.'s and Nichol and Dhariwal's
        # code), the variance of the step that ends at x_0
        self.posterior_log_variance = np.log(np.append(self.posterior_variance[1:2],
                                                       self.posterior_variance[1:])) \
            if self.steps > 1 else np.log(betas)

    @classmethod
    def named(cls, schedule, steps):
        return cls(make_betas(schedule, steps))

    def coefficient(self, values, t, like):
        """values[t] per example, shaped (N, 1, 1, ...) to broadcast over the Tensor `like`,
        in its dtype and on its device (a constant: no gradient)."""
        picked = np.asarray(values)[np.asarray(t)].reshape((-1,) + (1,) * (like.ndim - 1))
        return tensor(picked.astype(like.dtype), device=like.device)

    def q_sample(self, x0, t, noise):
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, a draw of q(x_t | x_0) (eq. 4)."""
        return (self.coefficient(np.sqrt(self.abar), t, x0) * x0
                + self.coefficient(np.sqrt(1.0 - self.abar), t, x0) * noise)

    def q_mean_variance(self, x0, t):
        """Mean and log-variance of q(x_t | x_0)."""
        return (self.coefficient(np.sqrt(self.abar), t, x0) * x0,
                self.coefficient(np.log1p(-self.abar), t, x0))

    def predict_x0(self, xt, t, eps):
        """x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)."""
        return (self.coefficient(np.sqrt(1.0 / self.abar), t, xt) * xt
                - self.coefficient(np.sqrt(1.0 / self.abar - 1.0), t, xt) * eps)

    def predict_eps(self, xt, t, x0):
        """The eps that makes x_t from x_0: (x_t / sqrt(abar_t) - x_0) / sqrt(1/abar_t - 1)."""
        return ((self.coefficient(np.sqrt(1.0 / self.abar), t, xt) * xt - x0)
                / self.coefficient(np.sqrt(1.0 / self.abar - 1.0), t, xt))

    def posterior_mean(self, x0, xt, t):
        """mu~_t(x_t, x_0) of q(x_{t-1} | x_t, x_0) (eq. 7)."""
        return (self.coefficient(self.posterior_x0, t, xt) * x0
                + self.coefficient(self.posterior_xt, t, xt) * xt)

    def posterior_log_variance_at(self, t, like):
        return self.coefficient(self.posterior_log_variance, t, like)

    def model_log_variance(self, kind, t, like, v=None):
        """log sigma_t^2 of p(x_{t-1} | x_t): "small", beta~_t; "large", beta_t (with beta~_1
        at t = 0, as the reference code, so the decoder is not needlessly broad);
        "learned", Nichol and Dhariwal's interpolation (eq. 15) between the two logs by the
        network's output v in [-1, 1] per dimension."""
        small = self.coefficient(self.posterior_log_variance, t, like)
        large = self.coefficient(np.log(np.append(self.posterior_variance[1:2], self.betas[1:])
                                        if self.steps > 1 else self.betas), t, like)
        if kind == "small":
            return small
        if kind == "large":
            return large
        if kind == "learned":
            frac = (v + 1.0) * 0.5
            return frac * large + (1.0 - frac) * small
        raise ValueError(f"variance={kind!r}: one of small, large, learned")
