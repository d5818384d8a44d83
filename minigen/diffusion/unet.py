"""The noise-prediction network of DDPM: a small U-Net with a time embedding, residual blocks,
group norm and self-attention at the lowest resolution (Ho et al. 2020, appendix B, after
PixelCNN++'s U-Net), written for minigen's layers.

On 8x8 digits (the issue's checked config; channels=64, channel_mults=(1, 2)):

    temb  = Linear 256->256 (SiLU (Linear 64->256 (sinusoidal(t), 64)))
    conv_in 1->64                                                   8x8
    down.0: ResBlock(64, 64)                            -> skip a
            Conv3x3 stride 2                                        4x4
    down.1: ResBlock(64, 128), AttnBlock(128)           -> skip b
    mid:    ResBlock(128, 128), AttnBlock(128), ResBlock(128, 128)
    up.1:   ResBlock(256 -> 128) on concat(h, b)
            nearest upsample, Conv3x3 128->64                       8x8
    up.0:   ResBlock(128 -> 64) on concat(h, a)
    out:    GroupNorm, SiLU, conv_out 64->1, started at zero

    ResBlock(cin, cout)(h, temb) = skip(h) + Conv3x3(SiLU(GN(
                                     Conv3x3(SiLU(GN(h))) + Linear(SiLU(temb))[:, :, None, None]))))
    AttnBlock(h) = h + proj(attention(q(GN(h)), k(GN(h)), v(GN(h)))), one head over the pixels,
                   q, k, v and proj 1x1 convolutions

The number of resolutions follows the image: it halves while the side stays even and at
least 4 (8x8: once, to 4x4; 28x28: twice, to 7x7; 2x2: never), and channel_mults, when not
given, is (1, 2, 2, ...) for that many levels. Attention runs at the lowest resolution only.
The embedding's width is `channels`, its hidden width 4 x channels (64 and 256 by default).
"""
import math

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..ops import concatenate


def timestep_embedding(t, dim, dtype, device):
    """The transformer's sinusoids of the step t (N,) (Vaswani et al. 2017, sec. 3.5, as
    Ho et al.'s code: dim / 2 frequencies from 1 down to 1/10000, sines then cosines), (N, dim),
    a constant."""
    half = dim // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half) / max(half - 1, 1))
    angles = np.asarray(t, dtype=np.float64)[:, None] * freqs[None, :]
    emb = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    if dim % 2:
        emb = np.pad(emb, ((0, 0), (0, 1)))
    return tensor(emb.astype(dtype), device=device)


def downsamplings(size):
    """How often the U-Net halves an image of the given (H, W): while both sides are even and
    the halves at least 4."""
    count, (h, w) = 0, size
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        h, w, count = h // 2, w // 2, count + 1
    return count


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups, generator):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, generator=generator)
        self.temb_proj = nn.Linear(temb_dim, cout, generator=generator)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, generator=generator)
        self.shortcut = nn.Conv2d(cin, cout, 1, generator=generator) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class AttnBlock(nn.Module):
    def __init__(self, channels, groups, generator):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.q = nn.Conv2d(channels, channels, 1, generator=generator)
        self.k = nn.Conv2d(channels, channels, 1, generator=generator)
        self.v = nn.Conv2d(channels, channels, 1, generator=generator)
        self.proj = nn.Conv2d(channels, channels, 1, generator=generator)

    def forward(self, x):
        n, c, h, w = x.shape
        y = self.norm(x)

        def pixels(conv):  # (N, C, H, W) -> (N, 1 head, H*W, C)
            return conv(y).reshape(n, 1, c, h * w).transpose(0, 1, 3, 2)

        out = F.attention(pixels(self.q), pixels(self.k), pixels(self.v))
        return x + self.proj(out.transpose(0, 1, 3, 2).reshape(n, c, h, w))


class Level(nn.Module):
    """One resolution of the U-Net's down or up path: a ResBlock, and at the lowest
    resolution of the down path an AttnBlock after it."""

    def __init__(self, cin, cout, temb_dim, groups, attention, generator):
        super().__init__()
        self.res = ResBlock(cin, cout, temb_dim, groups, generator)
        self.attn = AttnBlock(cout, groups, generator) if attention else None

    def forward(self, x, temb):
        h = self.res(x, temb)
        return h if self.attn is None else self.attn(h)


class UNet(nn.Module):
    """eps_theta(x_t, t): images (N, C, H, W) and steps t (N,) -> (N, out_channels, H, W)."""

    def __init__(self, image_shape, out_channels, channels=64, channel_mults=(), groups=8,
                 generator=None):
        super().__init__()
        c_in, height, width = image_shape
        levels = downsamplings((height, width)) + 1
        mults = tuple(channel_mults) or (1,) + (2,) * (levels - 1)
        if len(mults) != levels:
            raise ValueError(f"channel_mults={','.join(map(str, mults))}: a {height}x{width} "
                             f"image has {levels} resolution(s) in the U-Net (halved while "
                             f"even and at least 4), so it needs {levels} multipliers")
        widths = [channels * m for m in mults]
        for width_ in widths:
            if width_ % groups:
                raise ValueError(f"groups={groups} must divide every width of the U-Net, "
                                 f"{', '.join(map(str, widths))} (channels x channel_mults)")
        self.channels, self.mults = channels, mults
        temb_dim = 4 * channels
        self.temb1 = nn.Linear(channels, temb_dim, generator=generator)
        self.temb2 = nn.Linear(temb_dim, temb_dim, generator=generator)
        self.conv_in = nn.Conv2d(c_in, widths[0], 3, padding=1, generator=generator)
        last = len(widths) - 1
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        previous = widths[0]
        for i, w in enumerate(widths):
            self.down.append(Level(previous, w, temb_dim, groups, i == last, generator))
            if i < last:
                self.downsample.append(nn.Conv2d(w, w, 3, stride=2, padding=1,
                                                 generator=generator))
            previous = w
        self.mid1 = ResBlock(widths[-1], widths[-1], temb_dim, groups, generator)
        self.mid_attn = AttnBlock(widths[-1], groups, generator)
        self.mid2 = ResBlock(widths[-1], widths[-1], temb_dim, groups, generator)
        self.up = nn.ModuleList([ResBlock(2 * w, w, temb_dim, groups, generator)
                                 for w in widths])
        self.upsample = nn.ModuleList([nn.Conv2d(widths[i], widths[i - 1], 3, padding=1,
                                                 generator=generator)
                                       for i in range(1, len(widths))])
        self.norm_out = nn.GroupNorm(groups, widths[0])
        self.conv_out = nn.Conv2d(widths[0], out_channels, 3, padding=1, generator=generator)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t):
        temb = timestep_embedding(t, self.channels, x.dtype, x.device)
        temb = self.temb2(F.silu(self.temb1(temb)))
        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for i in reversed(range(len(self.up))):
            h = self.up[i](concatenate([h, skips[i]], axis=1), temb)
            if i > 0:
                h = self.upsample[i - 1](F.upsample_nearest(h, 2))
        return self.conv_out(F.silu(self.norm_out(h)))
