"""PixelCNN (van den Oord et al., 2016a, "Pixel Recurrent Neural Networks", section 3.5) in
PyTorch, the reference for minigen.models.pixelcnn.

    p(x) = prod_i p(x_i | x_<i)   over the pixels in raster order          (eq. 1)

with, for colour images, p(x_i | x_<i) = p(R | .) p(G | R, .) p(B | R, G, .) (eq. 2). The
network is minigen's: a type-A masked k x k first layer, residual blocks (ReLU, 1x1 to half
the channels, ReLU, masked k x k type B, ReLU, 1x1 back, added to the input; figure 5),
and a ReLU, 1x1, ReLU, 1x1 head to a Bernoulli logit per subpixel or K logits of a
categorical. Masks are applied the way PyTorch users write PixelCNN: the full nn.Conv2d
weight multiplied by a 0/1 mask on every call, and every convolution (the 1x1s too) masked
so that colour groups stay ordered. Unconditional only (the parity runs' config).

Parameter names are minigen's (first, blocks.{b}.reduce/conv/expand, head.hidden/out), so
minigen's initial weights copy in by name. The shared image-model pieces (MaskedConv2d,
OutputHead, PixelModel) serve the Gated PixelCNN build too.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .made import log_likelihood


def mask(out_channels, in_channels, kernel_size, mask_type, color_groups=1):
    """The (out, in, k, k) 0/1 mask: every row above the centre, the centre row left of
    it, and at the centre output group g sees input groups < g (type A) or <= g (type B)."""
    centre = kernel_size // 2
    keep = torch.zeros(out_channels, in_channels, kernel_size, kernel_size)
    keep[:, :, :centre, :] = 1
    keep[:, :, centre, :centre] = 1
    group_out = torch.arange(out_channels) // (out_channels // color_groups)
    group_in = torch.arange(in_channels) // (in_channels // color_groups)
    sees = torch.lt if mask_type == "A" else torch.le
    keep[:, :, centre, centre] = sees(group_in[None, :], group_out[:, None]).float()
    return keep


class MaskedConv2d(nn.Conv2d):
    """nn.Conv2d (torch's default initialisation) whose weight is multiplied by the mask;
    'same' padding, k // 2."""

    def __init__(self, in_channels, out_channels, kernel_size, mask_type, color_groups=1):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.register_buffer("mask", mask(out_channels, in_channels, kernel_size, mask_type,
                                          color_groups), persistent=False)

    def forward(self, x):
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class ResidualBlock(nn.Module):
    """2h -> ReLU -> 1x1 to h -> ReLU -> k x k mask B -> ReLU -> 1x1 to 2h, plus the input."""

    def __init__(self, channels, kernel_size, color_groups=1):
        super().__init__()
        inner = channels // 2
        self.reduce = MaskedConv2d(channels, inner, 1, "B", color_groups)
        self.conv = MaskedConv2d(inner, inner, kernel_size, "B", color_groups)
        self.expand = MaskedConv2d(inner, channels, 1, "B", color_groups)

    def forward(self, x):
        h = self.conv(torch.relu(self.reduce(torch.relu(x))))
        return x + self.expand(torch.relu(h))


class OutputHead(nn.Module):
    """ReLU -> 1x1 -> ReLU -> 1x1 to the logits (2016a, table 4), masked type B."""

    def __init__(self, channels, out_channels, color_groups=1):
        super().__init__()
        self.hidden = MaskedConv2d(channels, channels, 1, "B", color_groups)
        self.out = MaskedConv2d(channels, out_channels, 1, "B", color_groups)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(torch.relu(x))))


class PixelModel(nn.Module):
    """-log p(x) from a network's logits; a subclass's forward(x) gives the logits of
    every p(x_i | x_<i) for x scaled to [0, 1], channel-major ((C, K) for categoricals)."""

    def __init__(self, shape, levels):
        super().__init__()
        self.shape, self.levels = tuple(shape), int(levels)
        self.color_groups = self.shape[0]
        self.out_channels = self.color_groups * (1 if self.levels == 2 else self.levels)

    def nll(self, x, generator=None):
        """-log p(x) per example, nats: the sum over subpixels of -log p(x_i | x_<i).
        Exact: `generator` (a dequantized flow's noise in the parity run) is not used."""
        logits = self(x.float() * (1.0 / (self.levels - 1)))
        if self.levels > 2:
            n, _, height, width = logits.shape
            logits = logits.reshape(n, self.color_groups, self.levels, height, width) \
                .permute(0, 1, 3, 4, 2)
        return -log_likelihood(logits, x).sum(dim=(1, 2, 3))

    def loss(self, x, generator=None):
        return self.nll(x).mean()


class PixelCNN(PixelModel):
    def __init__(self, shape, levels, channels=64, blocks=5, first_kernel=5, kernel=3):
        super().__init__(shape, levels)
        groups = self.color_groups
        self.first = MaskedConv2d(groups, channels, first_kernel, "A", groups)
        self.blocks = nn.ModuleList([ResidualBlock(channels, kernel, groups)
                                     for _ in range(blocks)])
        self.head = OutputHead(channels, self.out_channels, groups)

    def forward(self, x):
        h = self.first(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)
