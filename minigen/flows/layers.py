"""The layers the image flows (nice, realnvp, glow) are built from, besides the couplings
(minigen.flows.coupling).

Every layer is a Bijector: forward(x) -> (y, log|det dy/dx|), inverse(y) -> (x, log|det
dx/dy|), log-determinants float64 of shape (N,).

- `Squeeze` trades space for channels (each 2x2 block becomes 4 channels), `Inverse` runs a
  layer backwards (so Inverse(Squeeze()) is the unsqueeze), `FactorOut` sends half of the
  channels to the prior and runs a flow on the other half: the multi-scale architecture.
- Normalisation with a log-determinant: `ActNorm` (data-dependent initialisation),
  `BatchNormFlow` (RealNVP's batch normalisation), `DiagonalScaling` (NICE's exp(S)).
- `InvertibleConv1x1`: Glow's learned channel mixing in LU form.
- `Shift`: a constant offset (Glow's centring of the data).
"""
from .. import functional as F
from .. import nn, ops
from ..creation import ones, zeros
from ..ops.flow import actnorm_init, lu_init
from .base import Bijector, Inverse, zero_logdet
from .coupling import ConvNet, check_images


def _per_sample(total, n):
    """A log-determinant that is the same for every example (a parameter sum) as (N,)
    float64."""
    return total.astype("float64").broadcast_to((n,))


# ---------------------------------------------------------------------------------------
# reshaping and the multi-scale architecture


class Squeeze(Bijector):
    """(N, C, H, W) -> (N, 4C, H/2, W/2): each 2x2 block of a channel becomes 4 channels
    (RealNVP, section 3.6), so that later couplings mix pixels that were neighbours.
    A permutation: log-determinant 0."""

    def forward(self, x, cond=None):
        check_images("Squeeze", x)
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze: height and width must be even, got {x.shape}")
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 5, 2, 4)
        return y.reshape(n, 4 * c, h // 2, w // 2), zero_logdet(x)

    def inverse(self, y, cond=None):
        check_images("Squeeze.inverse", y)
        n, c4, h, w = y.shape
        if c4 % 4:
            raise ValueError(f"Squeeze.inverse: channels must be a multiple of 4, got "
                             f"{y.shape}")
        x = y.reshape(n, c4 // 4, 2, 2, h, w).transpose(0, 1, 4, 2, 5, 3)
        return x.reshape(n, c4 // 4, 2 * h, 2 * w), zero_logdet(y)


class FactorOut(Bijector):
    """The multi-scale step (RealNVP, section 3.6; Glow's split): of (N, C, H, W), the last
    C/2 channels leave for the prior now and `inner` (a flow that keeps its input's shape)
    goes on with the first C/2. The output has the input's shape, with the factored-out
    half in place, so a whole multi-scale flow is one Bijector and z one Tensor.

    prior="learned" gives the factored-out half Glow's conditional Gaussian
    N(z_b; mu(x_a), exp(log_std(x_a))^2) from a zero-initialised conv3x3 of the kept half;
    it is written as the bijection z_b -> (z_b - mu) * exp(-log_std) (log-det
    -sum log_std) into a standard normal, which is the same density. prior="normal" leaves
    z_b to the standard normal. State (learned): prior.convs.0.weight/bias."""

    def __init__(self, channels, inner, prior="normal", generator=None):
        super().__init__()
        if channels % 2:
            raise ValueError(f"FactorOut: channels must be even, got {channels}")
        if prior not in ("normal", "learned"):
            raise ValueError(f"FactorOut: prior must be 'normal' or 'learned', not {prior!r}")
        self.channels, self.half = channels, channels // 2
        self.inner = inner
        self.prior = ConvNet(self.half, channels, 0, (3,), generator) \
            if prior == "learned" else None

    def _whiten(self, z_b, x_a, reverse):
        h = self.prior(x_a)
        mean, log_std = h[:, :self.half], h[:, self.half:]
        inv_std = ops.exp(-log_std)
        return F.affine_coupling(z_b, -log_std, -mean * inv_std, reverse=reverse)

    def forward(self, x, cond=None):
        check_images("FactorOut", x, self.channels)
        x_a, z_b = x[:, :self.half], x[:, self.half:]
        y_a, logdet = self.inner(x_a, cond)
        if self.prior is not None:
            z_b, prior_logdet = self._whiten(z_b, x_a, reverse=False)
            logdet = logdet + prior_logdet
        return ops.concatenate([y_a, z_b], axis=1), logdet

    def inverse(self, y, cond=None):
        check_images("FactorOut.inverse", y, self.channels)
        y_a, z_b = y[:, :self.half], y[:, self.half:]
        x_a, logdet = self.inner.inverse(y_a, cond)
        if self.prior is not None:
            z_b, prior_logdet = self._whiten(z_b, x_a, reverse=True)
            logdet = logdet + prior_logdet
        return ops.concatenate([x_a, z_b], axis=1), logdet


# ---------------------------------------------------------------------------------------
# normalisation and mixing


class ActNorm(Bijector):
    """Glow's activation normalisation: y = x * exp(log_scale) + bias per channel, with
    log-det H * W * sum(log_scale).

    Data-dependent initialisation (Glow, section 3.1): the first forward pass in training
    mode sets log_scale and bias so that its batch leaves with zero mean and unit variance
    per channel; after that they are ordinary parameters. The buffer `initialized` records
    that it happened, so a checkpoint restores an initialised layer and training resumed
    from it does not initialise again. State: log_scale, bias, initialized."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels
        self.log_scale = nn.Parameter(zeros(channels))
        self.bias = nn.Parameter(zeros(channels))
        self.register_buffer("initialized", zeros(1))

    @property
    def is_initialized(self):
        return bool(self.initialized.numpy()[0])

    def initialize(self, x):
        """Set log_scale and bias from the batch x (the data as it reaches this layer)."""
        log_scale, bias = actnorm_init(x)
        self.log_scale.data = log_scale.data.astype(self.log_scale.dtype)
        self.bias.data = bias.data.astype(self.bias.dtype)
        self.initialized.data = self.initialized.data * 0 + 1

    def forward(self, x, cond=None):
        check_images("ActNorm", x, self.channels)
        if self.training and not self.is_initialized:
            self.initialize(x)
        return F.actnorm(x, self.log_scale, self.bias)

    def inverse(self, y, cond=None):
        check_images("ActNorm.inverse", y, self.channels)
        return F.actnorm(y, self.log_scale, self.bias, reverse=True)


class BatchNormFlow(Bijector):
    """RealNVP's batch normalisation as a flow layer (Dinh et al., 2017, eq. 16):

        y = (x - mu) / sqrt(var + eps) * exp(log_gamma) + beta,
        log|det dy/dx| = H * W * sum over channels of (log_gamma - 1/2 log(var + eps)).

    In training, mu and var are the batch's (so the output mixes the examples of a batch,
    and the gradient flows through the statistics) and running averages follow them; in
    evaluation, and always in the inverse, the running averages are used, which makes the
    layer an exact bijection per example. State: log_gamma, beta, running_mean,
    running_var."""

    def __init__(self, channels, momentum=0.1, eps=1e-5):
        super().__init__()
        self.channels, self.momentum, self.eps = channels, momentum, eps
        self.log_gamma = nn.Parameter(zeros(channels))
        self.beta = nn.Parameter(zeros(channels))
        self.register_buffer("running_mean", zeros(channels))
        self.register_buffer("running_var", ones(channels))

    def _statistics(self, x):
        if not self.training:
            return self.running_mean, self.running_var
        mean, var = ops.mean(x, axis=(0, 2, 3)), ops.var(x, axis=(0, 2, 3))
        m = self.momentum
        self.running_mean.data = (1 - m) * self.running_mean.data + m * mean.data.astype(
            self.running_mean.dtype)
        self.running_var.data = (1 - m) * self.running_var.data + m * var.data.astype(
            self.running_var.dtype)
        return mean, var

    def _logdet(self, var, x):
        per_channel = self.log_gamma - 0.5 * ops.log(var + self.eps)
        return _per_sample(per_channel.sum() * float(x.shape[2] * x.shape[3]), len(x))

    def forward(self, x, cond=None):
        check_images("BatchNormFlow", x, self.channels)
        mean, var = self._statistics(x)
        c = (1, self.channels, 1, 1)
        y = (x - mean.reshape(c)) * ops.exp(self.log_gamma.reshape(c)) / ops.sqrt(
            var.reshape(c) + self.eps) + self.beta.reshape(c)
        return y, self._logdet(var, x)

    def inverse(self, y, cond=None):
        check_images("BatchNormFlow.inverse", y, self.channels)
        mean, var = self.running_mean, self.running_var
        c = (1, self.channels, 1, 1)
        x = (y - self.beta.reshape(c)) * ops.exp(-self.log_gamma.reshape(c)) * ops.sqrt(
            var.reshape(c) + self.eps) + mean.reshape(c)
        return x, -self._logdet(var, y)


class DiagonalScaling(Bijector):
    """NICE's last layer (Dinh et al., 2015, section 3.3): y = x * exp(S), one learned S per
    dimension, log-det sum(S). Without it an additive-coupling flow is volume-preserving and
    could not put more density on some dimensions than others. State: log_scale."""

    def __init__(self, dims):
        super().__init__()
        self.log_scale = nn.Parameter(zeros(dims))

    def forward(self, x, cond=None):
        if x.shape[1:] != self.log_scale.shape:
            raise ValueError(f"DiagonalScaling: expected input (N, {self.log_scale.shape[0]})"
                             f", got {x.shape}")
        return x * ops.exp(self.log_scale), _per_sample(self.log_scale.sum(), len(x))

    def inverse(self, y, cond=None):
        if y.shape[1:] != self.log_scale.shape:
            raise ValueError(f"DiagonalScaling.inverse: expected input "
                             f"(N, {self.log_scale.shape[0]}), got {y.shape}")
        return y * ops.exp(-self.log_scale), -_per_sample(self.log_scale.sum(), len(y))


class InvertibleConv1x1(Bijector):
    """Glow's invertible 1x1 convolution (Kingma & Dhariwal, 2018, section 3.2): a learned
    C x C mixing of the channels at every pixel, a generalisation of the fixed permutations
    between couplings. Kept in LU form W = P L (U + diag(sign_s * exp(log_s))), so that
    log|det W| = sum(log_s) costs nothing; starts from a random rotation. State: lower,
    upper, log_s (trained), perm, sign_s (fixed buffers)."""

    def __init__(self, channels, generator=None):
        super().__init__()
        self.channels = channels
        params = lu_init(channels, generator)
        self.lower = nn.Parameter(params["lower"])
        self.upper = nn.Parameter(params["upper"])
        self.log_s = nn.Parameter(params["log_s"])
        self.register_buffer("perm", params["perm"])
        self.register_buffer("sign_s", params["sign_s"])

    def _apply(self, x, reverse):
        return F.invertible_conv1x1(x, self.perm, self.lower, self.upper, self.log_s,
                                    self.sign_s, reverse=reverse)

    def forward(self, x, cond=None):
        return self._apply(x, False)

    def inverse(self, y, cond=None):
        return self._apply(y, True)


class Shift(Bijector):
    """y = x + offset (log-det 0): Glow's centring of [0, 1) data to [-1/2, 1/2)."""

    def __init__(self, offset):
        super().__init__()
        self.offset = float(offset)

    def forward(self, x, cond=None):
        return x + self.offset, zero_logdet(x)

    def inverse(self, y, cond=None):
        return y - self.offset, zero_logdet(y)


__all__ = ["ActNorm", "BatchNormFlow", "DiagonalScaling", "FactorOut", "Inverse",
           "InvertibleConv1x1", "Shift", "Squeeze"]
