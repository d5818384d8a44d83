"""Coupling layers (Dinh et al., 2015 and 2017) and the networks and masks they use.

Half of the input, chosen by a mask, passes through unchanged and sets the transformation of
the other half, so the Jacobian is triangular and its determinant the product of the
diagonal. `MaskedCoupling` (RealNVP: checkerboard or channel masks, y = x * exp(s) + t on the
masked-out half), `ChannelSplitCoupling` (Glow: the first half of the channels conditions the
second), `AdditiveCoupling` (NICE: y_b = x_b + m(x_a), volume-preserving). `ConvNet` is the
convolutional network of a coupling (and of FactorOut's learned prior);
`checkerboard_mask` and `channel_mask` say which half passes, here and in the variational
dequantizer's couplings (minigen.flows.dequant).

Every layer is a Bijector: forward(x) -> (y, log|det dy/dx|), inverse(y) -> (x, log|det
dx/dy|), log-determinants float64 of shape (N,).
"""
import numpy as np

from .. import functional as F
from .. import nn, ops
from ..autograd import tensor
from ..creation import ones
from .base import Bijector, zero_logdet


def check_images(layer, x, channels=None):
    """An error naming `layer` unless x is a batch of images (N, C, H, W), with `channels`
    channels where given."""
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        want = f"(N, {channels}, H, W)" if channels is not None else "(N, C, H, W)"
        raise ValueError(f"{layer}: expected input {want}, got {x.shape}")


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


def checkerboard_mask(height, width, parity, channels=1):
    """b[c, i, j] = 1 where (c + i + j) % 2 == parity: the elements that pass through.
    (1, channels, H, W), float64; with one channel the checkerboard over the pixels."""
    c, i, j = np.indices((channels, height, width))
    return ((c + i + j) % 2 == parity).astype(np.float64)[None]


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
        self._make_masks(1, 1)

    def _make_masks(self, height, width):
        """b and 1 - b for inputs of height x width, as buffers in the dtype and on the device
        of the layer's parameters; to() moves them with the layer, and checkpoints leave them
        out (they follow from the config)."""
        b = checkerboard_mask(height, width, self.parity) if self.mask == "checkerboard" \
            else channel_mask(self.channels, self.parity)
        for name, value in (("passes", b), ("changes", 1 - b)):
            self.register_buffer(name, tensor(value, dtype=self.scale.dtype,
                                              device=self.scale.device), persistent=False)

    def mask_for(self, x):
        """(b, 1 - b) for x: b is 1 where x passes through. A channel mask fits every image
        size; a checkerboard is made again when x's height and width are not its own."""
        if self.mask == "checkerboard" and self.passes.shape[2:] != x.shape[2:]:
            self._make_masks(x.shape[2], x.shape[3])
        return self.passes, self.changes

    def _scale_and_shift(self, x, b, rest):
        out = self.net(x * b)
        c = self.channels
        return self.scale * ops.tanh(out[:, :c]) * rest, out[:, c:] * rest

    def forward(self, x, cond=None):
        check_images("MaskedCoupling", x, self.channels)
        s, t = self._scale_and_shift(x, *self.mask_for(x))
        return F.affine_coupling(x, s, t)

    def inverse(self, y, cond=None):
        check_images("MaskedCoupling", y, self.channels)
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
        check_images("ChannelSplitCoupling", x, self.channels)
        x_a, x_b = x[:, :self.split], x[:, self.split:]
        log_scale, t = self._log_scale_and_shift(x_a)
        y_b, logdet = F.affine_coupling(x_b, log_scale, t)
        return ops.concatenate([x_a, y_b], axis=1), logdet

    def inverse(self, y, cond=None):
        check_images("ChannelSplitCoupling", y, self.channels)
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


__all__ = ["AdditiveCoupling", "ChannelSplitCoupling", "ConvNet", "MaskedCoupling",
           "channel_mask", "check_images", "checkerboard_mask"]
