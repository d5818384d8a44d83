"""The interface every flow layer shares: a bijection with its log-determinant.

    y, logdet = layer(x)             # forward: logdet = log|det dy/dx| per example, (N,)
    x, logdet_inv = layer.inverse(y) # inverse: log|det dx/dy| = -logdet

Log-determinants are float64 Tensors of shape (N,) whatever the data's dtype: they are sums
over every dimension, where float32 would lose them. `cond` (optional) is a conditioning
Tensor that layers may use (the variational dequantizer's flow is conditioned on x).
"""
import math

from .. import nn
from ..creation import zeros


class Bijector(nn.Module):
    """A flow layer: forward(x, cond=None) -> (y, logdet), inverse(y, cond=None) ->
    (x, logdet of the inverse). Subclasses write both."""

    def forward(self, x, cond=None):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def inverse(self, y, cond=None):
        raise NotImplementedError(f"{type(self).__name__} does not define inverse()")


def zero_logdet(x):
    """A float64 (N,) zero log-determinant for a batch like x, outside the graph."""
    return zeros(len(x), dtype="float64", device=x.device)


class Chain(Bijector):
    """Layers applied in order; the inverse runs them backwards. Log-determinants add."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(list(layers))

    def forward(self, x, cond=None):
        total = None
        for layer in self.layers:
            x, logdet = layer(x, cond)
            total = logdet if total is None else total + logdet
        return x, (zero_logdet(x) if total is None else total)

    def inverse(self, y, cond=None):
        total = None
        for layer in reversed(list(self.layers)):
            y, logdet = layer.inverse(y, cond)
            total = logdet if total is None else total + logdet
        return y, (zero_logdet(y) if total is None else total)


class Inverse(Bijector):
    """A layer run backwards: forward is its inverse and inverse its forward.
    Inverse(Squeeze()) is the unsqueeze; an IAF layer is Inverse(AffineAutoregressive(...))."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, cond=None):
        return self.layer.inverse(x, cond)

    def inverse(self, y, cond=None):
        return self.layer(y, cond)


def standard_normal_log_prob(z):
    """log N(z; 0, I) per example, summed over all but the first axis, in float64."""
    flat = z.reshape(len(z), -1).astype("float64")
    return -0.5 * (flat * flat).sum(axis=1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)
