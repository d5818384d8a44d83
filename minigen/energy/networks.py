"""The networks of the score and energy models: small, with smooth activations (ELU), and
no batch norm, since a Langevin sampler differentiates them in x and a batch statistic
would tie each sample's gradient to the others'.

    ScoreMLP      (x, levels) -> (N, D) on points: ELU layers, each adding a learned
                  vector of the noise level to its pre-activation (the conditioning)
    ScoreConvNet  (x, levels) -> (N, C, H, W) on images: a 3x3 conv in, residual blocks
                  (ELU, a learned per-channel bias of the level, 3x3 conv) with dilations
                  1, 2, 4, 1 (the third sees a whole 8x8 digit), a 3x3 conv out
    EnergyMLP     x -> (N,) on points
    ConvNet       x -> (N, outputs) on images: three 3x3 convolutions (the last two of
                  stride 2), each followed by ELU, the mean over the pixels, a linear head:
                  an energy (outputs 1) or JEM's classifier (outputs = classes)

`levels` is an integer array (N,) of noise-level indices. The score networks give the raw
output: the score model divides it by sigma_i (NCSNv2's parameterisation).
"""
from .. import nn
from ..ops import elu

DILATIONS = (1, 2, 4, 1)


class ScoreMLP(nn.Module):
    def __init__(self, dims, hidden, levels, generator=None):
        super().__init__()
        widths = list(hidden)
        self.layers = nn.ModuleList(nn.Linear(a, b, generator=generator)
                                    for a, b in zip([dims] + widths, widths))
        self.level = nn.ModuleList(nn.Embedding(levels, b, generator=generator)
                                   for b in widths)
        self.output = nn.Linear(widths[-1], dims, generator=generator)

    def forward(self, x, levels):
        for layer, level in zip(self.layers, self.level):
            x = elu(layer(x) + level(levels))
        return self.output(x)


class ScoreConvNet(nn.Module):
    def __init__(self, shape, channels, levels, generator=None):
        super().__init__()
        c = shape[0]
        self.input = nn.Conv2d(c, channels, 3, padding=1, generator=generator)
        self.blocks = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=d, dilation=d,
                                              generator=generator) for d in DILATIONS)
        self.level = nn.ModuleList(nn.Embedding(levels, channels, generator=generator)
                                   for _ in DILATIONS)
        self.output = nn.Conv2d(channels, c, 3, padding=1, generator=generator)

    def forward(self, x, levels):
        h = self.input(x)
        for conv, level in zip(self.blocks, self.level):
            bias = level(levels)[:, :, None, None]
            h = h + conv(elu(h) + bias)
        return self.output(elu(h))


class EnergyMLP(nn.Module):
    def __init__(self, dims, hidden, generator=None):
        super().__init__()
        widths = [dims] + list(hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b, generator=generator)
                                    for a, b in zip(widths, widths[1:]))
        self.output = nn.Linear(widths[-1], 1, generator=generator)

    def forward(self, x):
        for layer in self.hidden:
            x = elu(layer(x))
        return self.output(x)[:, 0]


class ConvNet(nn.Module):
    def __init__(self, shape, channels, outputs, generator=None):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(shape[0], channels, 3, padding=1, generator=generator),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, generator=generator),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1,
                      generator=generator)])
        self.head = nn.Linear(2 * channels, outputs, generator=generator)

    def forward(self, x):
        for conv in self.convs:
            x = elu(conv(x))
        return self.head(x.mean(axis=(2, 3)))
