"""The layers the image flows (nice, realnvp, glow) are built from, and the model side they
share.

Every layer is a Bijector: forward(x) -> (y, log|det dy/dx|), inverse(y) -> (x, log|det
dx/dy|), log-determinants float64 of shape (N,).

- Couplings (Dinh et al., 2015 and 2017): half of the input, chosen by a mask, passes
  through unchanged and sets the transformation of the other half, so the Jacobian is
  triangular and its determinant the product of the diagonal. `MaskedCoupling` (RealNVP:
  checkerboard or channel masks, y = x * exp(s) + t on the masked-out half),
  `ChannelSplitCoupling` (Glow: the first half of the channels conditions the second),
  `AdditiveCoupling` (NICE: y_b = x_b + m(x_a), volume-preserving).
- `Squeeze` trades space for channels (each 2x2 block becomes 4 channels), `Inverse` runs a
  layer backwards (so Inverse(Squeeze()) is the unsqueeze), `FactorOut` sends half of the
  channels to the prior and runs a flow on the other half: the multi-scale architecture.
- Normalisation with a log-determinant: `ActNorm` (data-dependent initialisation),
  `BatchNormFlow` (RealNVP's batch normalisation), `DiagonalScaling` (NICE's exp(S)).
- `InvertibleConv1x1`: Glow's learned channel mixing in LU form.
- `DiscreteFlow`: dequantize, pre-process, flow, prior: the likelihood and sampler of a
  flow on K-level images.
"""
import warnings

import numpy as np

from .. import functional as F
from .. import nn, ops
from ..autograd import no_grad, tensor
from ..creation import ones, zeros
from ..ops.flow import actnorm_init, lu_init
from .base import Bijector, Inverse, standard_normal_log_prob, zero_logdet
from .preprocess import eval_generator, make_dequantizer


def _per_sample(total, n):
    """A log-determinant that is the same for every example (a parameter sum) as (N,)
    float64."""
    return total.astype("float64").broadcast_to((n,))


def _check_images(layer, x, channels=None):
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        want = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
        raise ValueError(f"{layer}: expected input {want}, got {x.shape}")


# ---------------------------------------------------------------------------------------
# couplings


class ConvNet(nn.Module):
    """The network of a coupling layer: convolutions (padding keeps H and W) with ReLUs
    between them. The last one starts at zero, so that every coupling starts as the
    identity and a deep flow starts well conditioned (Glow, section 3.3); the others keep
    the default (torch) initialisation. State: convs.{i}.weight, convs.{i}.bias."""

    def __init__(self, in_channels, out_channels, channels, kernel_sizes, generator=None):
        super().__init__()
        widths = (in_channels,) + (channels,) * (len(kernel_sizes) - 1) + (out_channels,)
        self.convs = nn.ModuleList()
        for c_in, c_out, k in zip(widths[:-1], widths[1:], kernel_sizes):
            conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
            conv.reset_parameters(generator)
            self.convs.append(conv)
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x):
        convs = list(self.convs)
        for conv in convs[:-1]:
            x = ops.relu(conv(x))
        return convs[-1](x)


def checkerboard_mask(height, width, parity):
    """b[i, j] = 1 where (i + j) % 2 == parity: the pixels that pass through. (1, 1, H, W)."""
    i, j = np.indices((height, width))
    return ((i + j) % 2 == parity).astype(np.float64)[None, None]


def channel_mask(channels, parity):
    """b[c] = 1 on the first half of the channels (parity 0) or the second (parity 1).
    (1, C, 1, 1)."""
    first = np.arange(channels) < channels // 2
    return (first if parity == 0 else ~first).astype(np.float64)[None, :, None, None]


class MaskedCoupling(Bijector):
    """RealNVP's affine coupling (Dinh et al., 2017, eq. 9) with a binary mask b:

        y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)),
        log|det dy/dx| = sum of (1 - b) * s.

    s = scale * tanh(s_raw) keeps the scales bounded, with `scale` a learned per-channel
    factor (the paper's batch-normalised tanh, in the form of its released code). mask is
    "checkerboard" (over pixels) or "channel" (first or second half of the channels), and
    parity picks which half passes through. State: net.convs.{i}.weight/bias, scale."""

    def __init__(self, channels, mask, parity, hidden_channels=64, hidden_layers=2,
                 generator=None):
        super().__init__()
        if mask not in ("checkerboard", "channel"):
            raise ValueError(f"MaskedCoupling: mask must be 'checkerboard' or 'channel', "
                             f"not {mask!r}")
        if mask == "channel" and channels < 2:
            raise ValueError(f"MaskedCoupling: a channel mask needs 2 or more channels, "
                             f"got {channels}")
        self.channels, self.mask, self.parity = channels, mask, parity
        self.net = ConvNet(channels, 2 * channels, hidden_channels,
                           (3,) * (hidden_layers + 1), generator)
        self.scale = nn.Parameter(ones((1, channels, 1, 1)))
        self._mask_cache = {}

    def mask_for(self, x):
        """(b, 1 - b) for x's height, width, dtype and device (built once for each)."""
        key = (x.shape[2], x.shape[3], x.dtype, x.device)
        if key not in self._mask_cache:
            b = checkerboard_mask(x.shape[2], x.shape[3], self.parity) \
                if self.mask == "checkerboard" else channel_mask(self.channels, self.parity)
            self._mask_cache[key] = (tensor(b.astype(x.dtype), device=x.device),
                                     tensor((1 - b).astype(x.dtype), device=x.device))
        return self._mask_cache[key]

    def _scale_and_shift(self, x, b, rest):
        out = self.net(x * b)
        c = self.channels
        return self.scale * ops.tanh(out[:, :c]) * rest, out[:, c:] * rest

    def forward(self, x, cond=None):
        _check_images("MaskedCoupling", x, self.channels)
        s, t = self._scale_and_shift(x, *self.mask_for(x))
        return F.affine_coupling(x, s, t)

    def inverse(self, y, cond=None):
        _check_images("MaskedCoupling", y, self.channels)
        s, t = self._scale_and_shift(y, *self.mask_for(y))  # y * b == x * b: what passed
        return F.affine_coupling(y, s, t, reverse=True)


class ChannelSplitCoupling(Bijector):
    """Glow's affine coupling (Kingma & Dhariwal, 2018, table 1): x = [x_a, x_b] by channels,

        (h, t) = NN(x_a),  scale = sigmoid(h + 2),  y_b = x_b * scale + t,  y_a = x_a,
        log|det dy/dx| = sum log scale.

    The sigmoid bounds each scale in (0, 1) and the +2 starts it near 0.88, close to the
    identity, which keeps deep flows stable. NN is conv3x3 -> ReLU -> conv1x1 -> ReLU ->
    zero-initialised conv3x3. (Glow adds the shift before scaling; adding it after is the
    same family of maps.) State: net.convs.{0,1,2}.weight/bias."""

    def __init__(self, channels, hidden_channels=64, generator=None):
        super().__init__()
        if channels < 2:
            raise ValueError(f"ChannelSplitCoupling: needs 2 or more channels, got {channels}")
        self.channels, self.split = channels, channels // 2
        passive = channels - self.split
        self.net = ConvNet(self.split, 2 * passive, hidden_channels, (3, 1, 3), generator)

    def _log_scale_and_shift(self, x_a):
        out = self.net(x_a)
        half = out.shape[1] // 2
        return ops.log_sigmoid(out[:, :half] + 2.0), out[:, half:]

    def forward(self, x, cond=None):
        _check_images("ChannelSplitCoupling", x, self.channels)
        x_a, x_b = x[:, :self.split], x[:, self.split:]
        log_scale, t = self._log_scale_and_shift(x_a)
        y_b, logdet = F.affine_coupling(x_b, log_scale, t)
        return ops.concatenate([x_a, y_b], axis=1), logdet

    def inverse(self, y, cond=None):
        _check_images("ChannelSplitCoupling", y, self.channels)
        y_a, y_b = y[:, :self.split], y[:, self.split:]
        log_scale, t = self._log_scale_and_shift(y_a)
        x_b, logdet = F.affine_coupling(y_b, log_scale, t, reverse=True)
        return ops.concatenate([y_a, x_b], axis=1), logdet


class AdditiveCoupling(Bijector):
    """NICE's additive coupling (Dinh et al., 2015, eq. 5) on flat (N, D) inputs: the
    dimensions of one parity (x_a: even indices for parity 0, odd for 1) pass through and
    shift the others,

        y_a = x_a,   y_b = x_b + m(x_a),   log|det dy/dx| = 0.

    m is an MLP with ReLUs whose last layer starts at zero (the identity at init).
    State: net.{i}.weight/bias (Linear layers)."""

    def __init__(self, dims, parity, hidden=(1000, 1000), generator=None):
        super().__init__()
        if dims < 2:
            raise ValueError(f"AdditiveCoupling: needs 2 or more dimensions, got {dims}")
        self.dims, self.parity = dims, parity
        self.passive = np.arange(parity, dims, 2)
        self.active = np.arange(1 - parity, dims, 2)
        # [x_a, x_b][:, order] puts every dimension back in its place
        self.order = np.argsort(np.concatenate([self.passive, self.active]))
        widths = (len(self.passive),) + tuple(hidden) + (len(self.active),)
        self.net = nn.ModuleList()
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            layer = nn.Linear(n_in, n_out)
            layer.reset_parameters(generator)
            self.net.append(layer)
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def _shift(self, x_a):
        layers = list(self.net)
        for layer in layers[:-1]:
            x_a = ops.relu(layer(x_a))
        return layers[-1](x_a)

    def _couple(self, x, sign):
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ValueError(f"AdditiveCoupling: expected input (N, {self.dims}), got "
                             f"{x.shape}")
        x_a, x_b = x[:, self.passive], x[:, self.active]
        y_b = x_b + self._shift(x_a) * sign
        return ops.concatenate([x_a, y_b], axis=1)[:, self.order], zero_logdet(x)

    def forward(self, x, cond=None):
        return self._couple(x, 1.0)

    def inverse(self, y, cond=None):
        return self._couple(y, -1.0)


# ---------------------------------------------------------------------------------------
# reshaping and the multi-scale architecture


class Squeeze(Bijector):
    """(N, C, H, W) -> (N, 4C, H/2, W/2): each 2x2 block of a channel becomes 4 channels
    (RealNVP, section 3.6), so that later couplings mix pixels that were neighbours.
    A permutation: log-determinant 0."""

    def forward(self, x, cond=None):
        _check_images("Squeeze", x)
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"Squeeze: height and width must be even, got {x.shape}")
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 3, 5, 2, 4)
        return y.reshape(n, 4 * c, h // 2, w // 2), zero_logdet(x)

    def inverse(self, y, cond=None):
        _check_images("Squeeze.inverse", y)
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
        _check_images("FactorOut", x, self.channels)
        x_a, z_b = x[:, :self.half], x[:, self.half:]
        y_a, logdet = self.inner(x_a, cond)
        if self.prior is not None:
            z_b, prior_logdet = self._whiten(z_b, x_a, reverse=False)
            logdet = logdet + prior_logdet
        return ops.concatenate([y_a, z_b], axis=1), logdet

    def inverse(self, y, cond=None):
        _check_images("FactorOut.inverse", y, self.channels)
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
        _check_images("ActNorm", x, self.channels)
        if self.training and not self.is_initialized:
            self.initialize(x)
        return F.actnorm(x, self.log_scale, self.bias)

    def inverse(self, y, cond=None):
        _check_images("ActNorm.inverse", y, self.channels)
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
        _check_images("BatchNormFlow", x, self.channels)
        mean, var = self._statistics(x)
        c = (1, self.channels, 1, 1)
        y = (x - mean.reshape(c)) * ops.exp(self.log_gamma.reshape(c)) / ops.sqrt(
            var.reshape(c) + self.eps) + self.beta.reshape(c)
        return y, self._logdet(var, x)

    def inverse(self, y, cond=None):
        _check_images("BatchNormFlow.inverse", y, self.channels)
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


# ---------------------------------------------------------------------------------------
# the model side of an image flow


def logistic_log_prob(z):
    """log of the standard logistic density, sum over all but the first axis, float64:
    log p(z) = -softplus(z) - softplus(-z) (NICE's prior)."""
    flat = z.reshape(len(z), -1).astype("float64")
    return -(ops.softplus(flat) + ops.softplus(-flat)).sum(axis=1)


class DiscreteFlow(nn.Module):
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


__all__ = ["ActNorm", "AdditiveCoupling", "BatchNormFlow", "ChannelSplitCoupling", "ConvNet",
           "DiagonalScaling", "DiscreteFlow", "FactorOut", "Inverse", "InvertibleConv1x1",
           "MaskedCoupling", "Shift", "Squeeze", "channel_mask", "checkerboard_mask",
           "logistic_log_prob"]
