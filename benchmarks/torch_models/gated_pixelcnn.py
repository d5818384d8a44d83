"""Gated PixelCNN (van den Oord et al., 2016b, "Conditional Image Generation with PixelCNN
Decoders", section 2) in PyTorch, the reference for minigen.models.gated_pixelcnn.

The likelihood of PixelCNN, p(x) = prod_i p(x_i | x_<i) in raster order, from a network
without a blind spot (figure 2): per layer, a vertical stack convolves (k//2 + 1) x k
windows of the rows at and above each pixel, a horizontal stack 1 x (k//2 + 1) windows of
the row up to the pixel (its last tap, the pixel itself, masked as a 1x1 type A or B
convolution), and the vertical pre-activations reach the horizontal stack through a 1x1
convolution after a shift down by one row, so that stack stays causal. Both stacks use the
gated activation y = tanh(W_f * x) . sigmoid(W_g * x) (eq. 2); the horizontal stack ends
in a masked 1x1 convolution and, after the first layer, a residual connection. The causal
windows are written as in PyTorch ports: F.pad on the rows above and the columns left, an
unpadded nn.Conv2d. Unconditional only (the parity runs' config).

Parameter names are minigen's (layers.{l}.vertical, vertical_to_horizontal, horizontal,
horizontal_out; head.hidden/out), so minigen's initial weights copy in by name.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .pixelcnn import MaskedConv2d, OutputHead, PixelModel, mask


def gate(x, color_groups=1):
    """tanh(f) * sigmoid(g), f and g the two halves of each colour group's channels."""
    n, c, height, width = x.shape
    x = x.reshape(n, color_groups, 2, c // (2 * color_groups), height, width)
    return (torch.tanh(x[:, :, 0]) * torch.sigmoid(x[:, :, 1])).reshape(n, c // 2, height,
                                                                         width)


def shift_down(x):
    """Row i gets row i - 1, zeros in row 0."""
    return F.pad(x[:, :, :-1], (0, 0, 1, 0))


class GatedLayer(nn.Module):
    def __init__(self, in_channels, channels, kernel_size, mask_type, color_groups=1):
        super().__init__()
        self.half, self.color_groups = kernel_size // 2, color_groups
        self.residual = mask_type == "B"
        two = 2 * channels
        self.vertical = nn.Conv2d(in_channels, two, (self.half + 1, kernel_size))
        self.vertical_to_horizontal = nn.Conv2d(two, two, 1)
        self.horizontal = nn.Conv2d(in_channels, two, (1, self.half + 1))
        keep = torch.ones(two, in_channels, 1, self.half + 1)
        keep[:, :, :, -1:] = mask(two, in_channels, 1, mask_type, color_groups)
        self.register_buffer("horizontal_mask", keep, persistent=False)
        self.horizontal_out = MaskedConv2d(channels, channels, 1, "B", color_groups)

    def forward(self, v, h):
        half = self.half
        v_pre = self.vertical(F.pad(v, (half, half, half, 0)))
        h_pre = F.conv2d(F.pad(h, (half, 0, 0, 0)),
                         self.horizontal.weight * self.horizontal_mask, self.horizontal.bias)
        h_pre = h_pre + self.vertical_to_horizontal(shift_down(v_pre))
        h_out = self.horizontal_out(gate(h_pre, self.color_groups))
        return gate(v_pre, self.color_groups), (h + h_out if self.residual else h_out)


class GatedPixelCNN(PixelModel):
    def __init__(self, shape, levels, channels=64, layers=5, kernel=3):
        super().__init__(shape, levels)
        groups = self.color_groups
        self.layers = nn.ModuleList(
            [GatedLayer(groups, channels, kernel, "A", groups)]
            + [GatedLayer(channels, channels, kernel, "B", groups) for _ in range(layers - 1)])
        self.head = OutputHead(channels, self.out_channels, groups)

    def forward(self, x):
        vertical = horizontal = x
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal)
        return self.head(horizontal)
