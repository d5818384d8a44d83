"""The model side of an image flow: `DiscreteFlow` dequantizes K-level images, runs them
through a flow (built from minigen.flows.layers and .coupling) to a prior, and gives the
likelihood and the sampler that nice, realnvp and glow share."""
import warnings

import numpy as np

from .. import ops
from ..autograd import no_grad
from ..model import Model
from .base import standard_normal_log_prob, zero_logdet
from .preprocess import eval_generator, make_dequantizer


def logistic_log_prob(z):
    """log of the standard logistic density, sum over all but the first axis, float64:
    log p(z) = -softplus(z) - softplus(-z) (NICE's prior)."""
    flat = z.reshape(len(z), -1).astype("float64")
    return -(ops.softplus(flat) + ops.softplus(-flat)).sum(axis=1)


class DiscreteFlow(Model):
    """A flow model of K-level images: the likelihood and sampler every image flow shares.

        y = dequantize(x) with density q(y | x)    (uniform: y = (x + u) / K)
        z, log_det = flow(preprocess(y))            (preprocess: Logit, Shift or none)
        nll(x) = log q(y | x) - [log p_Z(z) + log_det]      in nats, every term counted

    Subclasses set `self.flow` (a Bijector on `latent_shape`) and call `setup`; the prior
    is "normal" or "logistic". Loss: the batch mean of nll (nats per example)."""

    def setup(self, spec, flow, preprocess=None, latent_shape=None, prior="normal",
              dequant="uniform", generator=None):
        if spec.kind != "discrete" or not spec.is_image:
            raise ValueError(f"{type(self).__name__} models K-level images (N, C, H, W), not "
                             f"{spec.kind} data of shape {spec.shape}")
        if prior not in ("normal", "logistic"):
            raise ValueError(f"{type(self).__name__}: prior must be 'normal' or 'logistic', "
                             f"not {prior!r}")
        self.shape, self.levels = tuple(spec.shape), spec.levels
        self.latent_shape = tuple(latent_shape or spec.shape)
        self.prior = prior
        self.dequantizer = make_dequantizer(dequant, spec, generator)
        self.preprocess = preprocess
        self.flow = flow

    def prior_log_prob(self, z):
        return standard_normal_log_prob(z) if self.prior == "normal" else logistic_log_prob(z)

    def log_prob(self, y):
        """log p(y) for continuous y in [0, 1)^D (N, C, H, W), per example, float64."""
        z = y.reshape((len(y),) + self.latent_shape)
        log_det = zero_logdet(y)
        if self.preprocess is not None:
            z, log_det = self.preprocess(z)
        z, flow_log_det = self.flow(z)
        return self.prior_log_prob(z) + log_det + flow_log_det

    def nll(self, x, generator=None):
        """-log P(x) bound per example in nats: log q(y | x) - log p(y) for one draw of y
        (noise from the batch itself unless a generator is given: deterministic)."""
        y, log_q = self.dequantizer.dequantize(x, generator or eval_generator(x))
        return log_q - self.log_prob(y)

    def loss(self, x, generator):
        return self.nll(x, generator).mean()

    def sample_with_log_prob(self, n, generator):
        """n draws y ~ p (N, C, H, W) through the inverse flow, with log p(y) computed on
        that path: log p_Z(z) - log|det dy/dz|."""
        like = next(iter(self.flow.parameters()))
        shape, dtype, device = (n,) + self.latent_shape, like.dtype, like.device
        if self.prior == "normal":
            z = generator.normal(shape, dtype=dtype, device=device)
        else:
            u = generator.uniform(shape, dtype=dtype, device=device)
            u = ops.clip(u, 1e-7, 1 - 1e-7)
            z = ops.log(u) - ops.log1p(-u)
        log_p = self.prior_log_prob(z)
        y, log_det = self.flow.inverse(z)
        log_p = log_p - log_det
        if self.preprocess is not None:
            y, log_det = self.preprocess.inverse(y)
            log_p = log_p - log_det
        return y.reshape((n,) + self.shape), log_p

    def sample(self, n, generator):
        """n images as uint8 levels: x = clip(floor(y * K), 0, K - 1)."""
        with no_grad():
            y, _ = self.sample_with_log_prob(n, generator)
        levels = np.floor(y.numpy().astype(np.float64) * self.levels)
        lost = ~np.isfinite(levels).reshape(n, -1).all(axis=1)
        if lost.any():
            # an undertrained flow's inverse can overflow far out in the prior's tails;
            # say so rather than cast NaN to an arbitrary byte
            warnings.warn(f"{type(self).__name__}: {int(lost.sum())} of {n} samples "
                          f"overflowed in the inverse pass (non-finite); drawn as black")
            levels[~np.isfinite(levels)] = 0
        return np.clip(levels, 0, self.levels - 1).astype(np.uint8)


__all__ = ["DiscreteFlow", "logistic_log_prob"]
