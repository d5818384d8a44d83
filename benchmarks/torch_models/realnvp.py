"""RealNVP (Dinh et al., 2017) in PyTorch, the reference for minigen.models.realnvp.

The same model, parameter for parameter: the images are dequantized with uniform noise,
y = (x + u) / K, taken through the logit transform with alpha = 0.05 (section 4.1), then
through affine couplings (section 3.4),

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)),   s = scale * tanh(s_raw),

each s and t from one small 3x3-convolution net, and scored under a standard normal prior.
The negative log-likelihood of the discrete image is -log p(y) + D log K (DATA.md), every
change-of-variables term included. Log-determinants are summed in float64, as minigen does.

scales=1 (digits): `couplings` checkerboard couplings of alternating parity. scales > 1
(28x28 images): the multi-scale architecture of section 3.6, built as minigen builds it:
per scale 3 checkerboard couplings, a squeeze, 3 channel-wise couplings, half of the
channels factored out to the prior and the rest through the next scale, then the unsqueeze;
the last scale is 4 checkerboard couplings. norm="actnorm" puts Glow's actnorm after every
coupling, initialised from the first batch it sees in training as minigen's is.

Parameter names are minigen's (flow.layers.{k}.net.convs.{i}.weight/bias,
flow.layers.{k}.scale, flow.layers.{k}.log_scale/bias, ...inner.layers.{k}... inside a
factor-out), so minigen's weights copy in by name. Only what the parity run and the
benchmarks need is here: density, loss and test nll; no sampling.
"""
import math

import torch
from torch import nn


def checkerboard_mask(height, width, parity):
    """b[i, j] = 1 where (i + j) % 2 == parity: the pixels that pass through. (1, 1, H, W)."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((i + j) % 2 == parity).float().reshape(1, 1, height, width)


def channel_mask(channels, parity):
    """b[c] = 1 on the first half of the channels (parity 0) or the second (parity 1).
    (1, C, 1, 1)."""
    first = torch.arange(channels) < channels // 2
    return (first if parity == 0 else ~first).float().reshape(1, channels, 1, 1)


class ConvNet(nn.Module):
    """3x3 convolutions with ReLUs between; the last one starts at zero, so every coupling
    starts as the identity. The others keep torch's default initialisation."""

    def __init__(self, in_channels, out_channels, channels, layers):
        super().__init__()
        widths = (in_channels,) + (channels,) * (layers - 1) + (out_channels,)
        self.convs = nn.ModuleList([nn.Conv2d(c_in, c_out, 3, padding=1)
                                    for c_in, c_out in zip(widths[:-1], widths[1:])])
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x):
        for conv in self.convs[:-1]:
            x = torch.relu(conv(x))
        return self.convs[-1](x)


class MaskedCoupling(nn.Module):
    """y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)), log|det| = sum (1 - b) * s,
    with s = scale * tanh(s_raw) and `scale` a learned per-channel factor started at 1.
    `mask` is b, (1, 1, H, W) for a checkerboard or (1, C, 1, 1) for a channel mask."""

    def __init__(self, channels, mask, hidden_channels, hidden_layers):
        super().__init__()
        self.channels = channels
        # not a parameter and not saved, as in minigen (whose state_dict this mirrors)
        self.register_buffer("mask", mask, persistent=False)
        self.net = ConvNet(channels, 2 * channels, hidden_channels, hidden_layers + 1)
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        b = self.mask.to(x.dtype)
        out = self.net(x * b)
        s = self.scale * torch.tanh(out[:, :self.channels]) * (1 - b)
        t = out[:, self.channels:] * (1 - b)
        return x * torch.exp(s) + t, s.double().sum(dim=(1, 2, 3))


class ActNorm(nn.Module):
    """y = x * exp(log_scale) + bias per channel, log|det| = H * W * sum(log_scale). The
    first forward in training mode sets log_scale and bias so that its batch leaves with
    zero mean and unit variance per channel (statistics in float64, as minigen's
    actnorm_init); the buffer `initialized` records that it happened."""

    def __init__(self, channels, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.zeros(1))

    @torch.no_grad()
    def initialize(self, x):
        wide = x.double()
        mean, std = wide.mean(dim=(0, 2, 3)), wide.std(dim=(0, 2, 3), unbiased=False)
        log_scale = -torch.log(std + self.eps)
        self.log_scale.copy_(log_scale)
        self.bias.copy_(-mean * torch.exp(log_scale))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.training and not self.initialized.item():
            self.initialize(x)
        n, c, h, w = x.shape
        y = x * torch.exp(self.log_scale).reshape(1, c, 1, 1) + self.bias.reshape(1, c, 1, 1)
        return y, (self.log_scale.double().sum() * (h * w)).expand(n)


class Squeeze(nn.Module):
    """(N, C, H, W) -> (N, 4C, H/2, W/2), each 2x2 block of a channel becoming 4 channels
    in minigen's order; a permutation, log-determinant 0. reverse=True is the unsqueeze."""

    def __init__(self, reverse=False):
        super().__init__()
        self.reverse = reverse

    def forward(self, x):
        n, c, h, w = x.shape
        if self.reverse:
            y = x.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
            y = y.reshape(n, c // 4, 2 * h, 2 * w)
        else:
            y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
            y = y.reshape(n, 4 * c, h // 2, w // 2)
        return y, torch.zeros(n, dtype=torch.float64, device=x.device)


class FactorOut(nn.Module):
    """The last C/2 channels leave for the (standard normal) prior as they are; `inner`
    goes on with the first C/2. The output keeps the input's shape."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        half = x.shape[1] // 2
        y_a, logdet = self.inner(x[:, :half])
        return torch.cat([y_a, x[:, half:]], dim=1), logdet


class Chain(nn.Module):
    """Layers applied in order; log-determinants add."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
        for layer in self.layers:
            x, logdet = layer(x)
            total = total + logdet
        return x, total


class RealNVP(nn.Module):
    """Logit transform, then the couplings: `couplings` checkerboard ones of alternating
    parity (scales=1), or the multi-scale flow of `scales` scales; actnorm after each
    coupling with norm="actnorm"."""

    def __init__(self, shape=(1, 8, 8), levels=17, couplings=6, channels=64, hidden_layers=2,
                 alpha=0.05, scales=1, norm="none"):
        super().__init__()
        if norm not in ("none", "actnorm"):
            raise ValueError(f"RealNVP (torch): norm must be 'none' or 'actnorm', not {norm!r}")
        self.shape, self.levels, self.alpha = tuple(shape), int(levels), float(alpha)
        self.dims = math.prod(self.shape)
        self.hidden, self.norm = (channels, hidden_layers), norm
        c, h, w = self.shape
        self.flow = self._single_scale(c, h, w, couplings) if scales == 1 else \
            self._scale(c, h, w, scales)

    def _coupling(self, channels, mask):
        layers = [MaskedCoupling(channels, mask, *self.hidden)]
        if self.norm == "actnorm":
            layers.append(ActNorm(channels))
        return layers

    def _single_scale(self, channels, height, width, couplings):
        return Chain(*[layer for k in range(couplings) for layer in
                       self._coupling(channels, checkerboard_mask(height, width, k % 2))])

    def _scale(self, channels, height, width, scales_left):
        """One scale on (C, H, W): checkerboard x 3, squeeze, channel-wise x 3, factor out
        half and recurse, unsqueeze."""
        if scales_left == 1:
            return self._single_scale(channels, height, width, 4)
        squeezed = 4 * channels
        layers = [layer for k in range(3) for layer in
                  self._coupling(channels, checkerboard_mask(height, width, k % 2))]
        layers.append(Squeeze())
        layers += [layer for k in range(3) for layer in
                   self._coupling(squeezed, channel_mask(squeezed, k % 2))]
        inner = self._scale(squeezed // 2, height // 2, width // 2, scales_left - 1)
        layers += [FactorOut(inner), Squeeze(reverse=True)]
        return Chain(*layers)

    def dequantize(self, x, generator=None):
        """y = (x + u) / K, u ~ U[0, 1): a point of x's cell."""
        x = x.float()
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return (x + u) * (1.0 / self.levels)  # as minigen rounds it

    def logit(self, y):
        """z = logit(alpha + (1 - 2 alpha) y) and its log-determinant, float64 (N,)."""
        p = self.alpha + (1 - 2 * self.alpha) * y
        log_p, log_1mp = torch.log(p), torch.log1p(-p)
        per_dim = math.log(1 - 2 * self.alpha) - log_p - log_1mp
        return log_p - log_1mp, per_dim.reshape(len(y), -1).double().sum(dim=1)

    def log_prob(self, y):
        """log p(y) per example, float64: the prior of z plus every log-determinant."""
        z, logit_logdet = self.logit(y)
        z, flow_logdet = self.flow(z)
        flat = z.reshape(len(z), -1).double()
        prior = -0.5 * (flat * flat).sum(dim=1) - 0.5 * self.dims * math.log(2 * math.pi)
        return prior + logit_logdet + flow_logdet

    def nll(self, x, generator=None):
        """nats per image: -log p(y) + D log K for one uniform draw of y."""
        y = self.dequantize(x, generator)
        return -self.log_prob(y) + self.dims * math.log(self.levels)

    def loss(self, x, generator=None):
        """The mean negative log-likelihood of the batch, in nats per image."""
        return self.nll(x, generator).mean()
