"""WaveNet (van den Oord et al., 2016, "WaveNet: A Generative Model for Raw Audio") in
PyTorch, the reference for minigen.models.wavenet, on images read in raster order.

    p(x) = prod_t p(x_t | x_1, ..., x_{t-1})                                  (eq. 1)

Each value enters one-hot over its K levels; a strictly causal first layer (output t sees
x_{t-k} .. x_{t-1}); optionally a learned per-position bias; residual blocks with
dilations d, z = tanh(W_f *_d h) . sigmoid(W_g *_d h) (eq. 2) from one dilated causal
convolution, with 1x1 residual and skip outputs (section 2.4); the summed skips through
ReLU, 1x1, ReLU, 1x1 to a Bernoulli logit per step or K logits of a categorical. Causal
convolutions are written as in PyTorch ports: F.conv1d on the input padded on the left by
(k - 1) * dilation steps (one more, and the last step dropped, for the shifted first layer).

Parameter names are minigen's (first, positions.table, blocks.{b}.dilated/skip/residual,
head1, head2), so minigen's initial weights copy in by name. `SequenceModel`, the
likelihood of a sequence from per-step logits, and `Positions` serve the Transformer build
too.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .made import log_likelihood


class SequenceModel(nn.Module):
    """-log p(x) of images read as sequences of T = C * H * W values in raster order; a
    subclass's network(values) gives the logits (N, T, 1 or K) of every p(x_t | x_<t)."""

    def __init__(self, shape, levels):
        super().__init__()
        self.length = math.prod(shape)
        self.levels = int(levels)
        self.outputs = 1 if self.levels == 2 else self.levels

    def nll(self, x, generator=None):
        """-log p(x) per example, nats. Exact: `generator` (a dequantized flow's noise in
        the parity run) is not used."""
        values = x.reshape(len(x), -1).long()
        logits = self.network(values)
        if self.outputs == 1:
            logits = logits[..., 0]
        return -log_likelihood(logits, values).sum(dim=1)

    def loss(self, x, generator=None):
        return self.nll(x).mean()


class CausalConv1d(nn.Conv1d):
    """Output t sees inputs t, t - d, ..., t - (k - 1) d; with shift, only steps before t."""

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, shift=False):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        self.shift = bool(shift)
        self.left = (kernel_size - 1) * dilation + int(self.shift)

    def forward(self, x):
        if self.shift:
            x = x[:, :, :-1]
        return F.conv1d(F.pad(x, (self.left, 0)), self.weight, self.bias,
                        dilation=self.dilation)


class GatedResidualBlock(nn.Module):
    """z = tanh(f) * sigmoid(g) from one dilated causal conv; (h + 1x1(z), 1x1(z))."""

    def __init__(self, channels, kernel_size, dilation, residual=True):
        super().__init__()
        self.dilated = CausalConv1d(channels, 2 * channels, kernel_size, dilation)
        self.skip = CausalConv1d(channels, channels, 1)
        self.residual = CausalConv1d(channels, channels, 1) if residual else None

    def forward(self, h):
        f, g = self.dilated(h).chunk(2, dim=1)
        z = torch.tanh(f) * torch.sigmoid(g)
        return (h + self.residual(z) if self.residual is not None else None), self.skip(z)


def sinusoidal_positions(length, dim):
    """Vaswani et al. 2017, section 3.5: PE[t, 2i] = sin(t / 10000^(2i/dim)),
    PE[t, 2i+1] = cos(t / 10000^(2i/dim)); (length, dim) float32, computed in float64 as
    minigen does."""
    t = torch.arange(length, dtype=torch.float64)[:, None]
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2,
                                                              dtype=torch.float64) / dim)
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(t * frequencies)
    table[:, 1::2] = torch.cos(t * frequencies[:dim // 2])
    return table.float()


class Positions(nn.Module):
    """What a step's position adds to its features, (T, dim) for the first T steps:
    "learned" (a trained table, initialised N(0, std^2)), "sinusoidal" (fixed) or "none"."""

    def __init__(self, kind, length, dim, std=1.0):
        super().__init__()
        if kind not in ("none", "learned", "sinusoidal"):
            raise ValueError(f"positions must be 'none', 'learned' or 'sinusoidal', not "
                             f"{kind!r}")
        self.kind = kind
        if kind == "learned":
            self.table = nn.Parameter(torch.zeros(length, dim))
            if std > 0:
                nn.init.normal_(self.table, 0.0, std)
        elif kind == "sinusoidal":
            self.register_buffer("table", sinusoidal_positions(length, dim))

    def forward(self, steps):
        return None if self.kind == "none" else self.table[:steps]


class WaveNet(SequenceModel):
    def __init__(self, shape, levels, channels=64, dilations=(1, 2, 4, 8, 16, 32), kernel=2,
                 positions="none"):
        super().__init__(shape, levels)
        if positions not in ("none", "learned"):
            raise ValueError(f"wavenet: positions must be 'none' or 'learned', not "
                             f"{positions!r}")
        self.first = CausalConv1d(self.levels, channels, kernel, shift=True)
        self.positions = Positions(positions, self.length, channels, std=0.0)
        self.blocks = nn.ModuleList([
            GatedResidualBlock(channels, kernel, d, residual=i < len(dilations) - 1)
            for i, d in enumerate(dilations)])
        self.head1 = CausalConv1d(channels, channels, 1)
        self.head2 = CausalConv1d(channels, self.outputs, 1)

    def network(self, values):
        h = self.first(F.one_hot(values, self.levels).float().transpose(1, 2))
        position = self.positions(h.shape[2])
        if position is not None:
            h = h + position.T
        skips = None
        for block in self.blocks:
            h, skip = block(h)
            skips = skip if skips is None else skips + skip
        return self.head2(torch.relu(self.head1(torch.relu(skips)))).transpose(1, 2)
