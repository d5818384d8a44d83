"""CDF flows: a 1-D flow through a mixture's CDF, and the 2-D autoregressive flow built from
two of them (the flows of Ho et al., 2019, section 3.1, in their simplest form; CS294-158
lecture 3).

    cdf-flow      z = logit F(x),  F the CDF of a learned mixture of K Gaussians or logistics
    ar-flow-2d    z1 = logit F1(x1),  z2 = logit F2(x2; theta(x1)),  theta an MLP of x1

Both have a standard logistic base, so (minigen.flows.cdf)

    log p(x) = log p_L(z) + log |det dz/dx|,

which for one dimension reduces to the mixture's log-density and for two to
log f1(x1) + log f2(x2 | x1): the chain rule of probability, learned. The 2-D Jacobian is
lower-triangular (z1 does not depend on x2), so its log-determinant is the sum of the two
diagonal terms. Density takes one pass; sampling inverts z1 for x1, then z2 for x2 given x1,
each by bisection.

The flows compute in float64 whatever the data's dtype: in the tails log F and log(1 - F)
are of order x^2 and cancel, and at two dimensions the cost is nothing.
"""
import numpy as np

from .. import functional as F
from .. import nn, pictures
from ..model import Model
from ..autograd import no_grad
from ..flows import Bijector
from ..flows.cdf import (MIXTURES, MixtureCDF, box_affine, initial_mixture,
                         inverse_mixture_logit_cdf, logistic_from_uniform, mixture_logit_cdf,
                         standard_logistic_log_prob, to_data_units)
from ..ops import concatenate, tanh
from . import register

# the smallest uniform a sample draws: u = 0 has z = -inf and no preimage
_TINY_UNIFORM = 2.0 ** -60


class LogisticBaseFlow(Model):
    """A model `flow` (a Bijector on (N, D) points) over a standard logistic base:
    log p(x) = log p_L(z) + logdet, sampling and from_uniform through the inverse."""

    def __init__(self, spec):
        super().__init__(spec)
        if spec.kind != "continuous" or len(spec.shape) != 1:
            raise ValueError(f"{self.registry_name} models continuous vectors (N, D), not "
                             f"{spec.kind} data of shape {spec.shape}")
        self.dims = spec.dims

    def log_prob(self, x):
        """log p(x) per example, float64 (N,): base log-density plus the log-determinant."""
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ValueError(f"{self.registry_name}: expected points (N, {self.dims}), got "
                             f"shape {tuple(x.shape)}")
        z, logdet = self.flow(x.astype("float64"))
        return standard_logistic_log_prob(z) + logdet

    def loss(self, x, generator=None):
        """Mean negative log-likelihood of the batch (maximum likelihood)."""
        return -self.log_prob(x).mean()

    def nll(self, x):
        return -self.log_prob(x)

    def from_uniform(self, u):
        """Points x = flow^-1(logit u) for u in (0, 1)^D, float64 NumPy (N, D): u are the
        coordinates of the base in its own CDF space, so a uniform u gives a sample, and a
        grid of u shows how the latent space is deformed into data space."""
        u = np.asarray(u, dtype=np.float64)
        if u.ndim != 2 or u.shape[1] != self.dims:
            raise ValueError(f"{self.registry_name}.from_uniform: expected u of shape "
                             f"(N, {self.dims}), got {u.shape}")
        z = logistic_from_uniform(u).to(self.device)
        with no_grad():
            x, _ = self.flow.inverse(z)
        return x.numpy()

    def sample(self, n, generator):
        """n points through the inverse, float32 (n, D)."""
        u = generator.uniform((n, self.dims), dtype="float64").numpy()
        return self.from_uniform(np.clip(u, _TINY_UNIFORM, 1 - _TINY_UNIFORM)).astype(np.float32)

    def draw(self, samples, path, reference):
        super().draw(samples, path, reference)
        if self.spec.shape == (2,):
            pictures.latent_grid_beside(path, self.from_uniform, reference)


@register("cdf-flow", "1-D flow: z = logit of a learned mixture CDF, standard logistic base",
          data=("toy-1d",), components=5, mixture="gaussian", steps=500, batch_size=128,
          lr=1e-2,
          ranges={"components": "[1, inf)"})
class CDFFlow(LogisticBaseFlow):
    def __init__(self, spec, generator=None, components=5, mixture="gaussian"):
        super().__init__(spec)
        self.flow = MixtureCDF(self.dims, components, spec.box, mixture)


class AutoregressiveCDF2D(Bijector):
    """(x1, x2) -> (logit F1(x1), logit F2(x2; theta(x1))): F1 a mixture with free
    parameters, F2 one whose weights, means and log-scales an MLP computes from x1.

    The MLP sees x1 scaled to [-1, 1] over the box and returns box-normalised parameters
    (as MixtureCDF's, minigen.flows.cdf.to_data_units); its last layer starts at zero with
    MixtureCDF's initial mixture as bias, so x2 | x1 starts as the same smooth density for
    every x1.
    """

    def __init__(self, components, box, hidden=(64, 64), mixture="gaussian", generator=None):
        super().__init__()
        if len(box) != 2:
            raise ValueError(f"AutoregressiveCDF2D: needs a box of 2 (low, high) pairs, got "
                             f"{len(box)}")
        self.components, self.mixture = int(components), mixture
        self.first = MixtureCDF(1, components, box[:1], mixture)
        self.centre, self.half_width = box_affine(box)
        sizes = (1,) + tuple(int(h) for h in hidden) + (3 * self.components,)
        self.conditioner = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])
        for layer in self.conditioner[:-1]:
            layer.reset_parameters(generator)
        last = self.conditioner[-1]
        last.weight.data[...] = 0
        last.bias.data[...] = np.concatenate(initial_mixture(self.components))

    def second_params(self, x1):
        """The mixture of x2 given x1 (N,): three (N, K) Tensors in the data's units."""
        h = ((x1 - float(self.centre[0])) * (1.0 / float(self.half_width[0]))).reshape(-1, 1)
        layers = list(self.conditioner)
        for i, layer in enumerate(layers):
            # in x1's dtype: NumPy's matmul of float64 by float32 bypasses BLAS (~100x slower)
            h = F.linear(h, layer.weight.astype(h.dtype), layer.bias.astype(h.dtype))
            h = tanh(h) if i < len(layers) - 1 else h
        out = h
        k = self.components
        return to_data_units(out[:, :k], out[:, k:2 * k], out[:, 2 * k:],
                             self.centre[1], self.half_width[1])

    def _check(self, op, x):
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"AutoregressiveCDF2D.{op}: expected (N, 2) input, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x, cond=None):
        self._check("forward", x)
        z1, logdet1 = self.first(x[:, :1])
        z2, log_dz2 = mixture_logit_cdf(x[:, 1], *self.second_params(x[:, 0]),
                                        mixture=self.mixture)
        return concatenate([z1, z2.reshape(-1, 1)], axis=1), logdet1 + log_dz2.astype("float64")

    def inverse(self, z, cond=None):
        """x1 from z1, then x2 from z2 under the mixture that x1 gives."""
        self._check("inverse", z)
        x1, _ = self.first.inverse(z[:, :1])
        x2 = inverse_mixture_logit_cdf(z[:, 1], *self.second_params(x1[:, 0]),
                                       mixture=self.mixture)
        x = concatenate([x1, x2.reshape(-1, 1)], axis=1)
        _, logdet = self.forward(x)
        return x, -logdet


@register("ar-flow-2d", "2-D autoregressive CDF flow: x1 by a mixture CDF, x2 by one whose "
          "mixture an MLP of x1 gives", data=("toy-moons", "toy-8gaussians", "toy-checkerboard",
                                              "toy-spirals", "toy-rings"),
          components=16, hidden=(64, 64), mixture="gaussian", steps=2000, batch_size=256,
          lr=1e-2, cosine=True,
          ranges={"components": "[1, inf)", "hidden": "[1, inf)"})
class ARFlow2D(LogisticBaseFlow):
    def __init__(self, spec, generator=None, components=16, hidden=(64, 64),
                 mixture="gaussian"):
        super().__init__(spec)
        if spec.shape != (2,):
            raise ValueError(f"ar-flow-2d models 2-D points, not data of shape {spec.shape}")
        if mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {', '.join(MIXTURES)}, not {mixture!r}")
        self.flow = AutoregressiveCDF2D(components, spec.box, hidden, mixture, generator)
