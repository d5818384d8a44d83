"""Convolutional networks between images and grids of latent vectors: VQ-VAE's encoder and
decoder (van den Oord et al. 2017, section 4.1), which VQ-VAE-2 stacks (Razavi et al. 2019,
figure 2a).

    encoder = GridEncoder(1, 64, 16, downsample=1, generator=g)   # (N, 1, 8, 8) -> (N, 16, 4, 4)
    decoder = GridDecoder(16, 64, 17, upsample=1, generator=g)    # (N, 16, 4, 4) -> (N, 17, 8, 8)

The encoder halves the image side `downsample` times with 4x4 stride-2 convolutions, then a
3x3 convolution and residual blocks (ReLU, 3x3, ReLU, 1x1, added to the input), and a 1x1
convolution to the grid's vectors. The decoder mirrors it: a 3x3 convolution, the residual
blocks, and 4x4 stride-2 transposed convolutions that double the side back. Every layer
starts at torch's default initialisation, drawn from `generator`.
"""
from .. import nn
from ..ops import relu


class ResidualStack(nn.Module):
    """`blocks` residual blocks x + 1x1(ReLU(3x3(ReLU(x)))) at `channels`, then a ReLU."""

    def __init__(self, channels, blocks, generator):
        super().__init__()
        self.convs = nn.ModuleList([
            nn.Conv2d(channels, channels, 3, padding=1, generator=generator)
            if i % 2 == 0 else nn.Conv2d(channels, channels, 1, generator=generator)
            for i in range(2 * blocks)])

    def forward(self, x):
        convs = list(self.convs)
        for wide, narrow in zip(convs[::2], convs[1::2]):
            x = x + narrow(relu(wide(relu(x))))
        return relu(x)


def check_side(side, halvings, name="downsample"):
    """The side after `halvings` halvings; an error naming the config key if one is odd."""
    for _ in range(halvings):
        if side % 2:
            raise ValueError(f"{name}: an image side of {side} cannot be halved again; "
                             f"use fewer halvings")
        side //= 2
    return side


class GridEncoder(nn.Module):
    """x (N, in_channels, H, W) -> z_e (N, out_dim, H / 2^downsample, W / 2^downsample)."""

    def __init__(self, in_channels, channels, out_dim, downsample, generator, blocks=2):
        super().__init__()
        if downsample < 1:
            raise ValueError(f"downsample={downsample}: the encoder halves the side at least "
                             f"once")
        sizes = [in_channels] + [channels] * downsample
        self.down = nn.ModuleList([
            nn.Conv2d(n_in, n_out, 4, stride=2, padding=1, generator=generator)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])])
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, generator=generator)
        self.residual = ResidualStack(channels, blocks, generator)
        self.out = nn.Conv2d(channels, out_dim, 1, generator=generator)

    def forward(self, x):
        for conv in self.down:
            x = relu(conv(x))
        return self.out(self.residual(self.conv(x)))


class GridDecoder(nn.Module):
    """z (N, in_dim, h, w) -> (N, out_channels, h 2^upsample, w 2^upsample): the likelihood's
    parameters for every pixel (or, inside VQ-VAE-2, a feature map)."""

    def __init__(self, in_dim, channels, out_channels, upsample, generator, blocks=2):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, channels, 3, padding=1, generator=generator)
        self.residual = ResidualStack(channels, blocks, generator)
        sizes = [channels] * upsample + [out_channels]
        self.up = nn.ModuleList([
            nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1, generator=generator)
            for n_in, n_out in zip(sizes[:-1], sizes[1:])])

    def forward(self, z):
        h = self.residual(self.conv(z))
        ups = list(self.up)
        for up in ups[:-1]:
            h = relu(up(h))
        return ups[-1](h) if ups else h
