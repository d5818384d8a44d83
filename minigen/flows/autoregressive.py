"""Affine autoregressive flows on MADE (Papamakarios et al., 2017; Kingma et al., 2016).

One layer is an affine map whose shift and log-scale for dimension d are functions of the
dimensions before d, computed together by one MADE (Germain et al., 2015):

    z_d = (x_d - mu_d(x_<d)) * exp(-alpha_d(x_<d)),    log|det dz/dx| = -sum_d alpha_d

(MAF's Gaussian conditionals, x_d ~ N(mu_d, exp(2 alpha_d)), written as a map to their noise).
dz/dx is triangular, so the log-determinant is the sum of its diagonal, and x -> z takes one
pass of the MADE. The inverse, x_d = z_d exp(alpha_d) + mu_d, needs x_<d before x_d: D
passes, one per dimension. Used the other way round (`Inverse`), the same layer is IAF's:
z -> x in one pass, x -> z in D. So a MAF evaluates a density in one pass and samples in D;
an IAF samples in one pass and evaluates a density in D.

alpha is soft-clamped, alpha = b tanh(a / b) for the MADE's raw output a (b =
`log_scale_bound`): a layer never scales a dimension by more than exp(b), which keeps the
D-pass inverse and early training from blowing up, while alpha ~ a for |a| << b.

Every layer is autoregressive in the order 0..D-1; layers are stacked with a permutation
between them (reversal, or a random one) so each dimension is conditioned on the others
somewhere in the stack.
"""
import numpy as np

from .. import nn
from ..creation import zeros_like
from ..autoregressive.masked import MaskedLinear, made_degrees, made_masks
from ..ops import exp, relu, take, tanh
from .base import Bijector, Chain, Inverse, zero_logdet

ORDERINGS = ("reverse", "random")


class MADEConditioner(nn.Module):
    """(N, D) -> (N, D, k): k outputs per dimension, those of dimension d functions of
    x_<d only (the masks of minigen.autoregressive.masked, natural order, ReLU hidden units)."""

    def __init__(self, dims, hidden, outputs_per_dim, generator):
        super().__init__()
        self.dims, self.outputs_per_dim = int(dims), int(outputs_per_dim)
        hidden = tuple(int(h) for h in hidden)
        masks = made_masks(made_degrees(self.dims, hidden, generator.rng, "natural"),
                           self.outputs_per_dim)
        sizes = (self.dims,) + hidden + (self.dims * self.outputs_per_dim,)
        self.layers = nn.ModuleList([
            MaskedLinear(n_in, n_out, mask, generator=generator)
            for n_in, n_out, mask in zip(sizes[:-1], sizes[1:], masks)])

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ValueError(f"MADEConditioner: expected input of shape (N, {self.dims}), "
                             f"got {x.shape}")
        h = x
        for layer in self.layers[:-1]:
            h = relu(layer(h))
        return self.layers[-1](h).reshape(len(x), self.dims, self.outputs_per_dim)


class AffineAutoregressive(Bijector):
    """MAF's layer: forward x -> z in one MADE pass, inverse z -> x in D passes."""

    def __init__(self, dims, hidden, generator, log_scale_bound=3.0):
        super().__init__()
        if log_scale_bound <= 0:
            raise ValueError(f"AffineAutoregressive: log_scale_bound must be > 0, not "
                             f"{log_scale_bound}")
        self.dims = int(dims)
        self.log_scale_bound = float(log_scale_bound)
        self.conditioner = MADEConditioner(dims, hidden, 2, generator)

    def shift_and_log_scale(self, x):
        """mu(x_<d) and the soft-clamped alpha(x_<d), each (N, D)."""
        out = self.conditioner(x)
        b = self.log_scale_bound
        return out[:, :, 0], b * tanh(out[:, :, 1] * (1.0 / b))

    def forward(self, x, cond=None):
        mu, alpha = self.shift_and_log_scale(x)
        return (x - mu) * exp(-alpha), -alpha.astype("float64").sum(axis=1)

    def inverse(self, z, cond=None):
        # After pass k the first k dimensions of x are exact (dimension 0's mu and alpha
        # depend on nothing, dimension k's on x_<k), so D passes give all of x; the last
        # pass's alpha was computed from the exact x_<d, so it is the log-determinant's.
        x = zeros_like(z)
        for _ in range(self.dims):
            mu, alpha = self.shift_and_log_scale(x)
            x = z * exp(alpha) + mu
        return x, alpha.astype("float64").sum(axis=1)


class Permutation(Bijector):
    """y = x[:, perm]: reorders the dimensions between autoregressive layers (log-det 0)."""

    def __init__(self, perm):
        super().__init__()
        self.perm = np.asarray(perm, dtype=np.int64)
        if sorted(self.perm.tolist()) != list(range(len(self.perm))):
            raise ValueError(f"Permutation: {self.perm.tolist()} is not a permutation of "
                             f"0..{len(self.perm) - 1}")
        self.undo = np.argsort(self.perm)

    def _check(self, x, op):
        if x.ndim != 2 or x.shape[1] != len(self.perm):
            raise ValueError(f"Permutation.{op}: expected input of shape (N, {len(self.perm)}),"
                             f" got {x.shape}")

    def forward(self, x, cond=None):
        self._check(x, "forward")
        return take(x, self.perm, axis=1), zero_logdet(x)

    def inverse(self, y, cond=None):
        self._check(y, "inverse")
        return take(y, self.undo, axis=1), zero_logdet(y)


def affine_autoregressive_flow(dims, layers, hidden, generator, ordering="reverse",
                               inverted=False, log_scale_bound=3.0):
    """`layers` affine autoregressive layers (MAF's, or with `inverted` IAF's) in the data ->
    latent direction, with a permutation between consecutive layers: the reversal, or with
    ordering="random" a new permutation drawn from `generator` for each gap."""
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {', '.join(ORDERINGS)}, not {ordering!r}")
    if int(layers) < 1:
        raise ValueError(f"an autoregressive flow needs at least one layer, not {layers}")
    parts = []
    for i in range(int(layers)):
        if i > 0:
            parts.append(Permutation(np.arange(dims)[::-1] if ordering == "reverse"
                                     else generator.rng.permutation(dims)))
        layer = AffineAutoregressive(dims, hidden, generator, log_scale_bound)
        parts.append(Inverse(layer) if inverted else layer)
    return Chain(*parts)
