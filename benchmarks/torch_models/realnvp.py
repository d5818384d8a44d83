"""RealNVP (Dinh et al., 2017) in PyTorch, the reference for minigen.models.realnvp.

The same model, parameter for parameter: the digits are dequantized with uniform noise,
y = (x + u) / K, taken through the logit transform with alpha = 0.05 (section 4.1), then
through affine couplings with alternating checkerboard masks (section 3.4),

    y = b * x + (1 - b) * (x * exp(s(b * x)) + t(b * x)),   s = scale * tanh(s_raw),

each s and t from one small 3x3-convolution net, and scored under a standard normal prior.
The negative log-likelihood of the discrete image is -log p(y) + D log K (DATA.md), every
change-of-variables term included. Log-determinants are summed in float64, as minigen does.

Parameter names are minigen's (flow.layers.{k}.net.convs.{i}.weight/bias,
flow.layers.{k}.scale), so minigen's initial weights copy in by name. Only what the parity
run and the benchmark need is here: density, loss and test nll; no sampling.
"""
import math

import torch
from torch import nn


def checkerboard_mask(height, width, parity):
    """b[i, j] = 1 where (i + j) % 2 == parity: the pixels that pass through. (1, 1, H, W)."""
    i, j = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((i + j) % 2 == parity).float().reshape(1, 1, height, width)


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
    with s = scale * tanh(s_raw) and `scale` a learned per-channel factor started at 1."""

    def __init__(self, shape, parity, hidden_channels, hidden_layers):
        super().__init__()
        c, h, w = shape
        self.channels = c
        # not a parameter and not saved, as in minigen (whose state_dict this mirrors)
        self.register_buffer("mask", checkerboard_mask(h, w, parity), persistent=False)
        self.net = ConvNet(c, 2 * c, hidden_channels, hidden_layers + 1)
        self.scale = nn.Parameter(torch.ones(1, c, 1, 1))

    def forward(self, x):
        b = self.mask.to(x.dtype)
        out = self.net(x * b)
        s = self.scale * torch.tanh(out[:, :self.channels]) * (1 - b)
        t = out[:, self.channels:] * (1 - b)
        return x * torch.exp(s) + t, s.double().sum(dim=(1, 2, 3))


class Chain(nn.Module):
    """Layers applied in order; log-determinants add."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        total = torch.zeros(len(x), dtype=torch.float64)
        for layer in self.layers:
            x, logdet = layer(x)
            total = total + logdet
        return x, total


class RealNVP(nn.Module):
    """Logit transform, then `couplings` checkerboard couplings of alternating parity."""

    def __init__(self, shape=(1, 8, 8), levels=17, couplings=6, channels=64, hidden_layers=2,
                 alpha=0.05):
        super().__init__()
        self.shape, self.levels, self.alpha = tuple(shape), int(levels), float(alpha)
        self.dims = math.prod(self.shape)
        self.flow = Chain(*[MaskedCoupling(self.shape, k % 2, channels, hidden_layers)
                            for k in range(couplings)])

    def dequantize(self, x, generator=None):
        """y = (x + u) / K, u ~ U[0, 1): a point of x's cell."""
        x = x.float()
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype)
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
