"""MAF and IAF: stacks of MADE-conditioned affine autoregressive layers.

Masked Autoregressive Flow (Papamakarios et al., 2017) and Inverse Autoregressive Flow
(Kingma et al., 2016) are the same layers (minigen.flows.autoregressive) pointed opposite
ways. With f the map from data to a standard normal z,

    log p(x) = log N(f(x); 0, I) + log|det df/dx|        (change of variables)

MAF's f is the layers' one-pass direction: density in one pass per layer, sampling in D
passes. IAF's f is their D-pass direction: sampling in one pass, density in D.

2-D toys are continuous and modelled as they are. digits (17 levels) are dequantized first,
y = (x + u) / K (or by the variational dequantizer), then sent through RealNVP's logit
transform (alpha = 0.05) and the flow; the negative log-likelihood of x in nats is

    nll(x) = log q(y | x) - log p(y),   log p(y) = log N(z) + log|det dz/dy|,

with the logit's log-determinant part of log|det dz/dy| (minigen.flows.preprocess). Under
uniform noise log q(y | x) = D log K, so test_bpd is DATA.md's (-log p(y) + D log K) / (D ln 2).
"""
import numpy as np
from scipy.special import ndtri

from .. import nn, pictures
from ..model import Model
from ..autograd import Tensor, no_grad, tensor
from ..flows import Chain, Logit, eval_generator, make_dequantizer, standard_normal_log_prob
from ..flows.autoregressive import affine_autoregressive_flow
from . import register

DATA = ("toy-moons", "toy-8gaussians", "toy-checkerboard", "toy-spirals", "toy-rings",
        "digits")
DEFAULTS = dict(layers=5, hidden=(64, 64), ordering="reverse", dequant="uniform", alpha=0.05,
                steps=2000, batch_size=128)
RANGES = {"layers": "[1, inf)", "hidden": "[1, inf)", "alpha": "[0, 0.5)"}


class AffineAutoregressiveFlow(Model):
    """What MAF and IAF share; `inverted` says which way the layers point."""

    inverted = False

    def __init__(self, spec, generator, layers=5, hidden=(64, 64), ordering="reverse",
                 dequant="uniform", alpha=0.05):
        super().__init__(spec)
        name = self.registry_name
        self.dims = spec.dims
        flow = affine_autoregressive_flow(self.dims, layers, hidden, generator, ordering,
                                          inverted=self.inverted)
        if spec.kind == "discrete":
            self.dequantizer = make_dequantizer(dequant, spec, generator)
            self.flow = Chain(Logit(alpha), flow)
        elif dequant != "uniform":
            raise ValueError(f"{name}: dequant={dequant!r} applies to discrete data only; "
                             f"{spec.name} is continuous")
        else:
            self.dequantizer = None
            self.flow = flow

    def _device(self):
        return next(iter(self.parameters())).device

    def log_density(self, y):
        """log p(y) per example (float64 (N,)) of continuous y: 2-D points, or dequantized
        images in [0, 1) of any shape (N, ...), every change-of-variables term included.
        NumPy points get NumPy values, as Model.log_density gives the density pictures."""
        if not isinstance(y, Tensor):
            return super().log_density(y)
        z, logdet = self.flow(y.reshape(len(y), self.dims))
        return standard_normal_log_prob(z) + logdet

    def nll(self, x, generator=None):
        """Nats per example; deterministic (the batch seeds its own noise) unless a
        generator is given."""
        if self.dequantizer is None:
            return -self.log_density(x)
        y, log_q = self.dequantizer.dequantize(x, generator or eval_generator(x))
        return log_q - self.log_density(y)

    def loss(self, x, generator):
        return self.nll(x, generator).mean()

    def sample_with_log_density(self, n, generator):
        """n continuous samples (N, D), z ~ N(0, I) through the flow's inverse, and their
        log-density from that same pass: log p(y) = log N(z) - log|det dy/dz|."""
        z = generator.normal((n, self.dims), dtype="float32", device=self._device())
        y, logdet = self.flow.inverse(z)
        return y, standard_normal_log_prob(z) - logdet

    def sample(self, n, generator):
        """float32 points for 2-D data; for images the levels floor(y K), clipped to 0..K-1."""
        with no_grad():
            y, _ = self.sample_with_log_density(n, generator)
        if self.dequantizer is None:
            return y.numpy().astype(np.float32)
        levels = np.clip(np.floor(y.numpy() * self.spec.levels), 0, self.spec.levels - 1)
        return levels.astype(np.uint8).reshape((n,) + tuple(self.spec.shape))

    def from_uniform(self, u):
        """Points u in (0, 1)^D (float64 NumPy (N, D)) sent to data space: z = Phi^-1(u),
        then the flow's inverse. Returns float64 NumPy (N, D): the picture of how the
        latent grid deforms (for images, y in continuous [0, 1) space)."""
        u = np.asarray(u, dtype=np.float64)
        if u.ndim != 2 or u.shape[1] != self.dims:
            raise ValueError(f"{self.registry_name}.from_uniform: expected u of shape "
                             f"(N, {self.dims}), got {u.shape}")
        with no_grad():
            y, _ = self.flow.inverse(tensor(ndtri(u), device=self._device()))
        return y.numpy().astype(np.float64)

    def draw(self, samples, path, reference):
        super().draw(samples, path, reference)
        if self.spec.shape == (2,):
            pictures.latent_grid_beside(path, self.from_uniform, reference)


@register("maf", "Masked Autoregressive Flow: MADE affine layers, density in one pass, "
          "sampling in D", data=DATA, ranges=RANGES, **DEFAULTS)
class MAF(AffineAutoregressiveFlow):
    inverted = False


@register("iaf", "Inverse Autoregressive Flow: MAF's layers the other way round, sampling "
          "in one pass, density in D", data=DATA, ranges=RANGES, **DEFAULTS)
class IAF(AffineAutoregressiveFlow):
    inverted = True
