"""The blocks of PixelCNN and Gated PixelCNN, built on masked convolutions: PixelRNN's
residual block, the gated vertical and horizontal stacks, the class bias of conditional
models and the 1x1 output head. Each block also computes itself at one pixel (`at`) from
the activations of earlier pixels kept in a SamplingCache, for cached sampling.

    van den Oord et al., 2016a, "Pixel Recurrent Neural Networks" (the residual block, the
        output head), and
    van den Oord et al., 2016b, "Conditional Image Generation with PixelCNN Decoders"
        (the gated vertical and horizontal stacks, the class bias).
"""
import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..kernels.masked_conv2d import mask as masked_conv2d_mask
from ..ops import pad, relu, sigmoid, tanh
from .masked import ConvAtPixel, MaskedConv2d, make_conv2d


class ClassBias(nn.Module):
    """A learned bias per class, added to a layer's features: V^T h for a one-hot label h
    (van den Oord et al. 2016b, eq. 4), started at zero so that an untrained conditional
    model is the unconditional one."""

    def __init__(self, num_classes, channels):
        super().__init__()
        self.table = nn.Parameter(np.zeros((num_classes, channels), dtype=np.float32))

    def forward(self, labels):
        """(N,) integer labels -> (N, channels, 1, 1), to broadcast over the pixels."""
        return self.lookup(labels)[:, :, None, None]

    def lookup(self, labels):
        """(N,) integer labels -> (N, channels), the bias at one pixel."""
        rows = labels.data if isinstance(labels, Tensor) else labels
        return self.table[rows.astype(np.int64)]


class ResidualBlock(nn.Module):
    """PixelRNN's residual block for PixelCNN (van den Oord et al. 2016a, figure 5):
    2h features -> ReLU -> 1x1 to h -> ReLU -> k x k mask B -> ReLU -> 1x1 to 2h, added to
    the input. Every convolution is masked (the 1x1s too) so that colour groups stay
    ordered; with one group a 1x1 type B mask keeps everything."""

    def __init__(self, channels, kernel_size, color_groups=1, num_classes=None,
                 generator=None):
        super().__init__()
        if channels % (2 * color_groups):
            raise ValueError(f"ResidualBlock: channels={channels} must be a multiple of "
                             f"2 * color_groups = {2 * color_groups} (the block halves them)")
        inner = channels // 2
        self.reduce = MaskedConv2d(channels, inner, 1, "B", color_groups, generator)
        self.conv = MaskedConv2d(inner, inner, kernel_size, "B", color_groups, generator)
        self.expand = MaskedConv2d(inner, channels, 1, "B", color_groups, generator)
        self.class_bias = ClassBias(num_classes, inner) if num_classes else None

    def forward(self, x, labels=None):
        h = self.conv(relu(self.reduce(relu(x))))
        if self.class_bias is not None:
            h = h + self.class_bias(labels)
        return x + self.expand(relu(h))

    def at(self, cache, x, row, col, labels=None):
        """forward at pixel (row, col) alone, for x (N, channels) there
        (MaskedConv2d.at)."""
        h = self.conv.at(cache, relu(self.reduce.at(cache, relu(x), row, col)), row, col)
        if self.class_bias is not None:
            h = h + self.class_bias.lookup(labels)
        return x + self.expand.at(cache, relu(h), row, col)


def gate(x, color_groups=1):
    """The gated activation tanh(W_f * x) . sigmoid(W_g * x) (van den Oord et al. 2016b,
    eq. 2) on features holding both pre-activations: within each colour group the first half
    of the channels is f and the second g, so the output keeps the groups in order."""
    n, c, *pixels = x.shape  # (N, c, H, W), or (N, c) at one pixel
    x = x.reshape(n, color_groups, 2, c // (2 * color_groups), *pixels)
    return (tanh(x[:, :, 0]) * sigmoid(x[:, :, 1])).reshape(n, c // 2, *pixels)


def shift_down(x):
    """Row i gets row i - 1 (zeros in row 0): features of rows <= i - 1 only."""
    return pad(x[:, :, :-1], ((0, 0), (0, 0), (1, 0), (0, 0)))


class GatedLayer(nn.Module):
    """One layer of the Gated PixelCNN (van den Oord et al. 2016b, figure 2).

    The vertical stack convolves (k//2 + 1) x k windows of the rows at and above each pixel:
    at row i it sees rows <= i, the whole width of the window, so it has no blind spot. It
    may see the current row because the horizontal stack takes it shifted down by one row
    (features of rows < i only), through a 1x1 convolution of the vertical pre-activations.
    The horizontal stack convolves 1 x (k//2 + 1) windows of the current row up to the
    pixel: the first layer (type A) sees strictly left of it, later ones (type B) the pixel
    too, through a residual connection. Both stacks use the gated activation, and with
    conditioning add a learned bias per class inside each gate (eq. 4).
    """

    def __init__(self, in_channels, channels, kernel_size, mask_type, color_groups=1,
                 num_classes=None, generator=None):
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"GatedLayer: kernel_size must be odd, not {kernel_size}")
        if channels % color_groups or in_channels % color_groups:
            raise ValueError(f"GatedLayer: {color_groups} colour groups must divide "
                             f"in_channels={in_channels} and channels={channels}")
        self.half, self.mask_type = kernel_size // 2, mask_type
        self.color_groups = color_groups
        self.residual = mask_type == "B"
        if self.residual and in_channels != channels:
            raise ValueError(f"GatedLayer: a type B layer adds its input back, so in_channels "
                             f"({in_channels}) must equal channels ({channels})")
        two = 2 * channels
        self.vertical = make_conv2d(in_channels, two, (self.half + 1, kernel_size), generator)
        self.vertical_to_horizontal = make_conv2d(two, two, 1, generator)
        self.horizontal = make_conv2d(in_channels, two, (1, self.half + 1), generator)
        self.register_buffer("horizontal_mask", Tensor(self._horizontal_mask(two, in_channels)),
                             persistent=False)
        self.horizontal_out = MaskedConv2d(channels, channels, 1, "B", color_groups, generator)
        self.class_bias = ClassBias(num_classes, two) if num_classes else None

    def _horizontal_mask(self, out_channels, in_channels):
        """The 1 x (k//2 + 1) window's taps left of the pixel are all kept; the last one, the
        pixel itself, is a 1x1 masked conv's centre (groups; nothing at all for type A with
        one group)."""
        keep = np.ones((out_channels, in_channels, 1, self.half + 1), dtype=np.float32)
        keep[:, :, :, -1:] = masked_conv2d_mask(out_channels, in_channels, 1, self.mask_type,
                                                self.color_groups)
        return keep

    def forward(self, v, h, labels=None):
        half = self.half
        v_pre = self.vertical(pad(v, ((0, 0), (0, 0), (half, 0), (half, half))))
        h_pre = F.conv2d(pad(h, ((0, 0), (0, 0), (0, 0), (half, 0))),
                         self.horizontal.weight * self.horizontal_mask, self.horizontal.bias)
        h_pre = h_pre + self.vertical_to_horizontal(shift_down(v_pre))
        if self.class_bias is not None:
            bias = self.class_bias(labels)
            v_pre, h_pre = v_pre + bias, h_pre + bias
        h_out = self.horizontal_out(gate(h_pre, self.color_groups))
        return gate(v_pre, self.color_groups), (h + h_out if self.residual else h_out)

    def vertical_row(self, cache, v, row, labels=None):
        """Cached sampling, once row `row` is drawn: the vertical stack at that whole row,
        from v (N, in, W), the layer's vertical input there. The vertical stack at row i sees
        rows <= i, all of which are known once row i is complete, and the horizontal stack
        reads it only from row i + 1 on (shifted down): so it is computed a row at a time,
        and what the horizontal stack will take from it is kept for the next row. Returns
        the gated output row (N, channels, W), the next layer's vertical input."""
        state = cache.entry(self, lambda: _GatedLayerAtPixel(self, cache))
        half = self.half
        state.vertical_inputs[:, :, half + row, half:half + v.shape[2]] = v.data
        v_pre = self.vertical(Tensor(state.vertical_inputs[:, :, row:row + half + 1]))
        state.from_above = self.vertical_to_horizontal(v_pre)
        if self.class_bias is not None:
            v_pre = v_pre + self.class_bias(labels)
        return gate(v_pre, self.color_groups)[:, :, 0]

    def at(self, cache, h, row, col, labels=None):
        """Cached sampling: the horizontal stack at pixel (row, col) alone, from its input
        there h (N, in) (or the whole image, for the first layer) and the cache: the
        horizontal inputs of the pixels to the left, and the vertical stack of the row
        above (vertical_row)."""
        state = cache.entry(self, lambda: _GatedLayerAtPixel(self, cache))
        h_pre = state.horizontal(h, row, col) + state.from_above[:, :, 0, col]
        if self.class_bias is not None:
            h_pre = h_pre + self.class_bias.lookup(labels)
        h_out = self.horizontal_out.at(cache, gate(h_pre, self.color_groups), row, col)
        return h + h_out if self.residual else h_out


class _GatedLayerAtPixel:
    """A GatedLayer's entry in a SamplingCache: its vertical input map so far (padded as
    forward pads it), what the horizontal stack takes from the vertical stack of the row
    above (at first row 0's: zeros shifted in, through the 1x1 convolution), and its
    horizontal convolution one pixel at a time."""

    def __init__(self, layer, cache):
        half = layer.half
        weight = layer.vertical.weight
        xp = backend.xp_of(weight.data)
        in_channels = weight.shape[1]
        self.vertical_inputs = xp.zeros((cache.n, in_channels, half + cache.height,
                                         cache.width + 2 * half), dtype=weight.dtype)
        self.from_above = layer.vertical_to_horizontal(Tensor(
            xp.zeros((cache.n, weight.shape[0], 1, cache.width), dtype=weight.dtype)))
        self.horizontal = ConvAtPixel(layer.horizontal.weight, layer.horizontal.bias,
                                      layer.horizontal_mask.numpy() != 0, (0, half), cache.n,
                                      cache.height, cache.width)


class OutputHead(nn.Module):
    """ReLU -> 1x1 -> ReLU -> 1x1 to the logits (van den Oord et al. 2016a, table 4: "ReLU
    followed by 1x1 conv, mask B, 2 layers"); masked to keep colour groups ordered."""

    def __init__(self, channels, out_channels, color_groups=1, generator=None):
        super().__init__()
        self.hidden = MaskedConv2d(channels, channels, 1, "B", color_groups, generator)
        self.out = MaskedConv2d(channels, out_channels, 1, "B", color_groups, generator)

    def forward(self, x):
        return self.out(relu(self.hidden(relu(x))))

    def at(self, cache, x, row, col):
        """forward at pixel (row, col) alone, for x (N, channels) there."""
        return self.out.at(cache, relu(self.hidden.at(cache, relu(x), row, col)), row, col)
