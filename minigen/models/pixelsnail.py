"""PixelSNAIL (Chen et al., 2018, "PixelSNAIL: An Improved Autoregressive Generative Model").

The likelihood is PixelCNN's, p(x) = prod_i p(x_i | x_1, ..., x_{i-1}) over the pixels in
raster order (section 1), and the loss is -log p(x) (minigen.autoregressive.pixel_model.PixelModel):
a Bernoulli logit per pixel for binary data, a categorical over K levels otherwise. The
network interleaves the paper's two kinds of block (section 2):

- residual blocks of causal convolutions with a gated activation: masked convolutions see
  a window of earlier pixels, so stacking them grows the view slowly and leaves PixelCNN's
  blind spot;
- causal self-attention over all earlier pixels: keys and values come from every pixel's
  own input x_j, the conv features there (which see x_<j) and its position (the
  "background"); queries from the conv features and position at pixel i. Pixel i reads
  only pixels j < i (a strictly causal mask, as in the authors' code), because the key at j
  holds x_j itself: with j <= i, pixel i would read its own value. After one such block
  every output sees the whole past, however far back.

The first layer is a type-A masked convolution (the features at i see x_<i only); every
later convolution is type B (they may read position i, whose features hold x_<i only). The
one-channel data of the registry are supported; colour images would need one attention per
colour group (keys from R must not reach R's own logits) and are refused.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..autoregressive.gated import OutputHead
from ..autoregressive.masked import MaskedConv2d
from ..autoregressive.pixel_model import PixelModel
from ..autoregressive.shifted import GatedResnet
from ..ops import broadcast_to, concatenate, split
from . import register


def masked(kernel_size):
    """The convolutions of a PixelSNAIL GatedResnet: k x k type-B masked ones, so the block
    at pixel i sees pixels <= i only (k = 1: 1x1 network-in-network layers)."""
    return lambda in_channels, out_channels, generator: MaskedConv2d(
        in_channels, out_channels, kernel_size, "B", 1, generator)


def strictly_causal_mask(pixels):
    """(T, T) boolean, True where query i may read key j: j < i in raster order."""
    return np.tril(np.ones((pixels, pixels), dtype=bool), k=-1)


def background(shape, device):
    """The paper's "background": each pixel's row and column, centred and scaled to about
    [-1/2, 1/2), (1, 2, H, W); it tells the attention where a key sits in the image."""
    height, width = shape
    rows = np.broadcast_to(((np.arange(height) - height / 2) / height)[:, None], shape)
    cols = np.broadcast_to(((np.arange(width) - width / 2) / width)[None, :], shape)
    return tensor(np.stack([rows, cols])[None].astype(np.float32), device=device)


class CausalAttention(nn.Module):
    """Masked multi-head attention over the pixels (the paper's attention block): the
    content [x, h, pos] at every pixel j -> a gated 1x1 residual block -> 1x1 to keys and
    values; [h, pos] at pixel i -> a gated 1x1 residual block -> 1x1 to queries; then
    softmax(q k^T / sqrt(d)) v, query i reading keys j < i only (the first pixel reads none
    and gets zeros)."""

    def __init__(self, image_channels, channels, key_channels, value_channels, heads,
                 generator=None):
        super().__init__()
        self.heads, self.key_channels = heads, key_channels
        content = image_channels + channels + 2
        self.content = GatedResnet(content, masked(1), generator=generator)
        self.keys_values = MaskedConv2d(content, key_channels + value_channels, 1, "B", 1,
                                        generator)
        self.query_features = GatedResnet(channels + 2, masked(1), generator=generator)
        self.queries = MaskedConv2d(channels + 2, key_channels, 1, "B", 1, generator)

    def _heads(self, features):
        """(N, heads * d, H, W) -> (N, heads, H * W, d): pixels in raster order."""
        n, c, height, width = features.shape
        return features.reshape(n, self.heads, c // self.heads, height * width) \
            .transpose(0, 1, 3, 2)

    def forward(self, x, h, position):
        keys, values = split(self.keys_values(self.content(concatenate([x, h, position],
                                                                          axis=1))),
                             [self.key_channels], axis=1)
        queries = self.queries(self.query_features(concatenate([h, position], axis=1)))
        n, _, height, width = h.shape
        mixed = F.attention(self._heads(queries), self._heads(keys), self._heads(values),
                            mask=strictly_causal_mask(height * width))
        return mixed.transpose(0, 1, 3, 2).reshape(n, -1, height, width)


class SnailBlock(nn.Module):
    """`resnets` causal-convolution residual blocks, then the attention, whose output enters
    a gated 1x1 residual block as its auxiliary input (the authors' code:
    gated_resnet(h, attention, conv=nin))."""

    def __init__(self, image_channels, channels, resnets, kernel_size, key_channels,
                 value_channels, heads, generator=None):
        super().__init__()
        self.resnets = nn.ModuleList([
            GatedResnet(channels, masked(kernel_size), generator=generator)
            for _ in range(resnets)])
        self.attention = CausalAttention(image_channels, channels, key_channels,
                                         value_channels, heads, generator)
        self.mix = GatedResnet(channels, masked(1), value_channels, generator=generator)

    def forward(self, x, h, position):
        for resnet in self.resnets:
            h = resnet(h)
        return self.mix(h, self.attention(x, h, position))


# 375 steps: near the best test NLL on digits-bin (1437 training images); with ~1M parameters
# it overfits after (test NLL 17.7 at step 375, 18.6 at 500, 21.1 at 750)
@register("pixelsnail", "PixelSNAIL: gated causal-conv residual blocks interleaved with "
          "strictly causal self-attention over all earlier pixels",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist"),
          channels=64, blocks=2, resnets=2, heads=1, key_channels=16, value_channels=64,
          kernel=3, steps=375, batch_size=128, lr=1e-3,
          ranges={"channels": "[1, inf)", "blocks": "[1, inf)", "resnets": "[0, inf)",
                  "heads": "[1, inf)", "key_channels": "[1, inf)",
                  "value_channels": "[1, inf)", "kernel": "[1, inf)"})
class PixelSNAIL(PixelModel):
    def __init__(self, spec, generator, channels=64, blocks=2, resnets=2, heads=1,
                 key_channels=16, value_channels=64, kernel=3):
        super().__init__(spec, "pixelsnail")
        if self.color_groups != 1:
            raise ValueError(f"pixelsnail models one-channel images, not {spec.shape}: colour "
                             f"would need an attention per colour group")
        for key, value, least in (("channels", channels, 1), ("blocks", blocks, 1),
                                  ("resnets", resnets, 0), ("heads", heads, 1),
                                  ("key_channels", key_channels, 1),
                                  ("value_channels", value_channels, 1), ("kernel", kernel, 1)):
            if value < least:
                raise ValueError(f"pixelsnail: {key} must be >= {least}, not {value}")
        for key, value in (("key_channels", key_channels), ("value_channels", value_channels)):
            if value % heads:
                raise ValueError(f"pixelsnail: {key}={value} must be a multiple of "
                                 f"heads={heads} (each head gets an equal share)")
        if kernel % 2 == 0:
            raise ValueError(f"pixelsnail: kernel must be odd (a masked kernel is centred on "
                             f"the pixel), not {kernel}")
        self.first = MaskedConv2d(1, channels, kernel, "A", 1, generator)
        self.blocks = nn.ModuleList([
            SnailBlock(1, channels, resnets, kernel, key_channels, value_channels, heads,
                       generator) for _ in range(blocks)])
        self.head = OutputHead(channels, self.likelihood.out_channels, 1, generator)

    def forward(self, x, labels=None):
        """Logits (N, 1 or K, H, W) of every p(x_i | x_<i), for x scaled to [0, 1]."""
        n, _, height, width = x.shape
        position = broadcast_to(background((height, width), x.device), (n, 2, height, width))
        h = self.first(x)
        for block in self.blocks:
            h = block(x, h, position)
        return self.head(h)
