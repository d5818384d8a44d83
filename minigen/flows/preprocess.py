"""From K-level data to the continuous data a flow models, with every term counted.

A flow is a density p(y) on continuous y; images are discrete, x in {0..K-1}^D. Dequantizing
with noise q(y | x) supported on the cell [x/K, (x+1)/K) gives the bound (Theis et al., 2016;
Ho et al., 2019, eq. 12)

    log P(x) >= E_q [log p(y) - log q(y | x)],

so a flow's negative log-likelihood of x in nats is log q(y | x) - log p(y) for one draw. With
uniform noise, y = (x + u) / K and q(y | x) = K^D, so nll = -log p(y) + D log K: bits per
dimension as DATA.md defines them. The variational dequantizer (minigen.flows.dequant) learns
q instead.

Test numbers must not depend on what was evaluated before, so `eval_generator(x)` seeds the
noise from the batch itself.
"""
import math
import zlib

from .. import ops
from ..autograd import Tensor
from ..creation import full
from ..random import Generator
from .base import Bijector
from .dequant import VariationalDequantizer

DEQUANTIZERS = ("uniform", "variational")


class UniformDequantizer:
    """y = (x + u) / K, u ~ U[0, 1)^D: dequantize(x, generator) -> (y, log q(y | x))."""

    def __init__(self, levels):
        self.levels = int(levels)

    def dequantize(self, x, generator):
        x = x.astype("float32")
        u = generator.uniform(x.shape, dtype=x.dtype, device=x.device)
        y = (x + u) * (1.0 / self.levels)
        log_q = math.prod(x.shape[1:]) * math.log(self.levels)
        return y, full((len(x),), log_q, dtype="float64", device=x.device)


def make_dequantizer(kind, spec, generator=None, **options):
    """The dequantizer a flow model on discrete `spec` data asks for by name."""
    if kind == "uniform":
        return UniformDequantizer(spec.levels)
    if kind == "variational":
        return VariationalDequantizer(spec, generator=generator, **options)
    raise ValueError(f"dequant must be one of {', '.join(DEQUANTIZERS)}, not {kind!r}")


def eval_generator(x):
    """A generator seeded from the batch's own bytes: the same batch always gets the same
    noise, whatever was evaluated before it."""
    data = x.numpy() if isinstance(x, Tensor) else x
    return Generator(zlib.crc32(data.tobytes()))


class Logit(Bijector):
    """RealNVP's logit transform of y in (0, 1) (Dinh et al., 2017, section 4.1):

        p = alpha + (1 - 2 alpha) y,   z = log p - log(1 - p),

    so that the flow never sees the unbounded edges of (0, 1). Its log-determinant,
    sum over dimensions of log(1 - 2 alpha) - log p - log(1 - p), is part of the likelihood.
    """

    def __init__(self, alpha=0.05):
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"Logit: alpha must be in [0, 0.5), not {alpha}")
        self.alpha = float(alpha)

    def _logdet(self, log_p, log_1mp):
        per_dim = math.log(1 - 2 * self.alpha) - log_p - log_1mp
        return per_dim.reshape(len(per_dim), -1).astype("float64").sum(axis=1)

    def forward(self, y, cond=None):
        p = y * (1 - 2 * self.alpha) + self.alpha
        log_p, log_1mp = ops.log(p), ops.log1p(-p)
        return log_p - log_1mp, self._logdet(log_p, log_1mp)

    def inverse(self, z, cond=None):
        # log p = log_sigmoid(z), log(1 - p) = log_sigmoid(-z): finite for any z
        log_p, log_1mp = ops.log_sigmoid(z), ops.log_sigmoid(-z)
        y = (ops.sigmoid(z) - self.alpha) * (1.0 / (1 - 2 * self.alpha))
        return y, -self._logdet(log_p, log_1mp)
