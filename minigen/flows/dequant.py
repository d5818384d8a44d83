"""Variational dequantization (Ho et al., 2019, "Flow++", section 3.1).

Uniform noise, y = (x + u) / K with u ~ U[0, 1)^D, fills each cell of K-level data with a
flat box, and a smooth flow p(y) must waste probability on the box's hard edges. Flow++ learns
the noise instead: u is drawn from q(u | x), itself a flow conditioned on x,

    eps ~ N(0, I),   u = sigmoid(g(eps; x)),   y = (x + u) / K,

and the dequantization bound (Flow++, eq. 12)

    log P(x) >= E_q [log p(y) - log q(y | x)]

is trained through q's parameters together with the model's. By the change of variables,
in y-space

    log q(y | x) = log N(eps) - log|det du/deps| + D log K,

where the last term is the Jacobian of u -> y = (x + u) / K (K^-1 per dimension). g is an
elementwise affine map followed by affine couplings (RealNVP's, with checkerboard masks) whose
scale and shift see the untouched half of the noise and features of x.

The flow starts as u = sigmoid(1.75 eps), the logit-normal closest to uniform: its KL divergence
from U(0, 1) is 0.0095 nats per dimension (minimised over the scale by quadrature), so at
initialisation the bound is within about that much of uniform dequantization's.
"""
import math

import numpy as np

from .. import functional as F
from .. import nn, ops
from ..autograd import Tensor
from ..creation import full
from .base import Bijector, Chain, standard_normal_log_prob
from .coupling import ConvNet, checkerboard_mask

# the scale of the logit-normal u = sigmoid(s eps) nearest to U(0, 1) in KL(q || U)
START_SCALE = 1.75


def _sum_per_example(values):
    """Per-dimension log-terms summed to one float64 number per example."""
    return values.reshape(len(values), -1).astype("float64").sum(axis=1)


class ElementwiseAffine(Bijector):
    """z = eps * exp(log_scale) + shift, one learned scale and shift per dimension;
    log|det dz/deps| = sum(log_scale) for every example."""

    def __init__(self, shape, scale=1.0):
        super().__init__()
        self.log_scale = nn.Parameter(full(tuple(shape), math.log(scale)))
        self.shift = nn.Parameter(full(tuple(shape), 0.0))

    def _apply(self, x, reverse):
        s = ops.broadcast_to(self.log_scale, x.shape)
        t = ops.broadcast_to(self.shift, x.shape)
        return F.affine_coupling(x, s, t, reverse=reverse)

    def forward(self, x, cond=None):
        return self._apply(x, reverse=False)

    def inverse(self, y, cond=None):
        return self._apply(y, reverse=True)


class ConditionalCoupling(Bijector):
    """RealNVP's affine coupling with a context: elements where mask == 1 pass unchanged,
    the others become eps * exp(s) + t with (s, t) = net(masked eps, context). s is
    tanh-bounded, so that one coupling scales the noise by at most e. The log-determinant is
    the sum of s over the transformed elements (F.affine_coupling's, with s = 0 elsewhere)."""

    def __init__(self, mask, net):
        super().__init__()
        self.register_buffer("mask", Tensor(mask))
        self.net = net

    def _scale_shift(self, x, context):
        keep = x * self.mask
        out = self.net(ops.concatenate([keep, context], axis=1))
        out = out.reshape((len(x), 2) + tuple(x.shape[1:]))
        change = 1.0 - self.mask
        return ops.tanh(out[:, 0]) * change, out[:, 1] * change

    def forward(self, x, cond=None):
        s, t = self._scale_shift(x, cond)
        return F.affine_coupling(x, s, t)

    def inverse(self, y, cond=None):
        # the kept half of y is the kept half of x, so (s, t) are the forward pass's
        s, t = self._scale_shift(y, cond)
        return F.affine_coupling(y, s, t, reverse=True)


class SigmoidToCell(Bijector):
    """u = sigmoid(z), onto (0, 1). du/dz = sigmoid(z) sigmoid(-z), so
    log|det du/dz| = sum(log_sigmoid(z) + log_sigmoid(-z)): finite for any z, where
    log(sigmoid(z)) would give -inf once sigmoid(z) rounds to 0."""

    def forward(self, z, cond=None):
        return ops.sigmoid(z), _sum_per_example(ops.log_sigmoid(z) + ops.log_sigmoid(-z))

    def inverse(self, u, cond=None):
        # z = logit(u) = log u - log(1 - u); log|det dz/du| = -sum(log u + log(1 - u))
        log_u, log_1mu = ops.log(u), ops.log1p(-u)
        return log_u - log_1mu, -_sum_per_example(log_u + log_1mu)


def _mlp(in_features, hidden, out_features, generator, zero_last):
    """Linear, ReLU, Linear with torch's initialisation drawn from `generator`; the last
    layer at zero when it ends a coupling's net, so that the coupling starts as the identity
    (as the image flows' ConvNet does)."""
    first, last = nn.Linear(in_features, hidden), nn.Linear(hidden, out_features)
    first.reset_parameters(generator)
    if zero_last:
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
    else:
        last.reset_parameters(generator)
    return nn.Sequential(first, nn.ReLU(), last)


def _context_convs(in_channels, channels, generator):
    """Two 3x3 convolutions with ReLUs: the features of an image x."""
    first = nn.Conv2d(in_channels, channels, 3, padding=1)
    second = nn.Conv2d(channels, channels, 3, padding=1)
    first.reset_parameters(generator)
    second.reset_parameters(generator)
    return nn.Sequential(first, nn.ReLU(), second, nn.ReLU())


class VariationalDequantizer(nn.Module):
    """q(y | x) = a flow of Gaussian noise conditioned on x, onto x's cell [x/K, (x+1)/K).

    Images (C, H, W): x's features come from a small conv net and each coupling's (s, t)
    from a 3x3 conv net; flat data (D,): MLPs. `layers` couplings, `channels` hidden units.
    dequantize(x, generator) -> (y, log q(y | x)) as UniformDequantizer's; it is a Module
    so that the model holding it trains q's parameters with its own.
    """

    def __init__(self, spec, generator=None, layers=4, channels=32):
        super().__init__()
        if spec.levels is None or int(spec.levels) < 2:
            raise ValueError(f"VariationalDequantizer: data {spec.name!r} must be discrete "
                             f"with at least 2 levels, not levels={spec.levels}")
        self.levels = int(spec.levels)
        self.shape = tuple(int(n) for n in spec.shape)
        if len(self.shape) not in (1, 3):
            raise ValueError(f"VariationalDequantizer: example shape {self.shape}; expected "
                             f"(C, H, W) images or flat (D,) vectors")
        channels = int(channels)
        width = self.shape[0]  # image channels, or the vector's D
        parities = [layer % 2 for layer in range(int(layers))]
        if len(self.shape) == 3:
            self.context = _context_convs(width, channels, generator)
            nets = [ConvNet(width + channels, 2 * width, channels, (3, 3), generator)
                    for _ in parities]
            masks = [checkerboard_mask(*self.shape[1:], parity, channels=width)
                     for parity in parities]
        else:
            self.context = nn.Sequential(_mlp(width, channels, channels, generator, False),
                                         nn.ReLU())
            nets = [_mlp(width + channels, channels, 2 * width, generator, True)
                    for _ in parities]
            # alternate dimensions: the checkerboard of a 1 x D image
            masks = [checkerboard_mask(1, width, parity)[0, 0] for parity in parities]
        self.flow = Chain(
            ElementwiseAffine(self.shape, scale=START_SCALE),
            *[ConditionalCoupling(mask.astype(np.float32), net)
              for mask, net in zip(masks, nets)],
            SigmoidToCell())
        # u is kept this far from 0 and 1 so that y = (x + u) / K, rounded to float32, lies
        # strictly inside the cell: the float32 spacing at K is the coarsest any x + u < K
        # sees, so x + u stays a whole step from both faces, and dividing by K rounds by less
        # than that. It moves u only where |z| > log(1 / margin) (over 10 for K <= 256), at
        # the start a chance below 1e-8 per element, and by at most the margin
        self.margin = float(np.spacing(np.float32(self.levels)))

    def features(self, x):
        """The context every coupling sees: a net of x scaled to [0, 1]."""
        return self.context(x * (1.0 / (self.levels - 1)))

    def dequantize(self, x, generator):
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"VariationalDequantizer.dequantize: x has shape {x.shape}; "
                             f"expected (N, {', '.join(map(str, self.shape))})")
        x = x.astype("float32")
        eps = generator.normal(x.shape, dtype="float32", device=x.device)
        u, log_det = self.flow(eps, self.features(x))
        u = ops.clip(u, self.margin, 1.0 - self.margin)
        y = (x + u) / float(self.levels)
        # log q(y | x) = log N(eps) - log|det du/deps| + D log K  (K from u -> y = (x + u)/K)
        log_q = (standard_normal_log_prob(eps) - log_det
                 + math.prod(self.shape) * math.log(self.levels))
        return y, log_q
