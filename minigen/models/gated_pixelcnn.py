"""Gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
Decoders", section 2).

The same likelihood as PixelCNN, p(x) = prod_i p(x_i | x_<i) in raster order (the loss is
-log p(x): minigen.autoregressive.pixel_model.PixelModel), with a network that has no blind spot: a
vertical stack sees every row above the pixel across the whole window, a horizontal stack
sees the row up to the pixel, and the vertical stack feeds the horizontal one (shifted down
a row, so it stays causal). Each layer uses the gated activation
y = tanh(W_f * x) . sigmoid(W_g * x) (eq. 2), and the horizontal stack is residual.

Conditional (`conditional=true`): p(x | y), with V^T y for a one-hot label y added inside
every gate (eq. 4); the labels are an argument of loss, nll and sample.

Sampling is cached (forward_at): the vertical stack at row i sees rows <= i and feeds the
horizontal stack from row i + 1 on, so it is computed a whole row at a time once the row is
drawn; the horizontal stack and the head are computed at each new pixel alone, reading the
kept inputs of the pixels to its left. `sample(..., cached=False)` recomputes the whole
image per subpixel, the reference.
"""
from .. import nn
from ..autoregressive.gated import GatedLayer, OutputHead
from ..autoregressive.pixel_model import PixelModel
from . import register


@register("gated-pixelcnn", "Gated PixelCNN: gated vertical and horizontal stacks, no blind "
          "spot",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist",
                "shapes"),
          channels=64, layers=5, kernel=3, conditional=False, steps=750, batch_size=128,
          lr=1e-3,
          ranges={"channels": "[1, inf)", "layers": "[1, inf)", "kernel": "[1, inf)"})
class GatedPixelCNN(PixelModel):
    def __init__(self, spec, generator, channels=64, layers=5, kernel=3, conditional=False):
        super().__init__(spec, "gated-pixelcnn", conditional)
        groups = self.color_groups
        if channels % groups:
            raise ValueError(f"gated-pixelcnn: channels={channels} must be a multiple of "
                             f"{groups} for {groups}-channel images (one group per colour)")
        if layers < 1:
            raise ValueError(f"gated-pixelcnn: layers must be >= 1, not {layers}")
        # the first layer's horizontal stack must not see the pixel itself (type A)
        self.layers = nn.ModuleList(
            [GatedLayer(groups, channels, kernel, "A", groups, self.num_classes, generator)]
            + [GatedLayer(channels, channels, kernel, "B", groups, self.num_classes, generator)
               for _ in range(layers - 1)])
        self.head = OutputHead(channels, self.likelihood.out_channels, groups, generator)

    def forward(self, x, labels=None):
        """Logits (N, C or C*K, H, W) of every p(x_i | x_<i), for x scaled to [0, 1]."""
        vertical = horizontal = x
        for layer in self.layers:
            vertical, horizontal = layer(vertical, horizontal, labels)
        return self.head(horizontal)

    def forward_at(self, cache, x, row, col, labels=None):
        """The logits (N, C or C*K) of pixel (row, col) alone, for the image drawn so far x:
        when a row begins, the vertical stack of the row above, now complete (recomputed,
        to the same values, for each colour channel of the first pixel); then the
        horizontal stack and the head at the pixel."""
        if col == 0 and row > 0:
            vertical = x[:, :, row - 1]
            for layer in self.layers:
                vertical = layer.vertical_row(cache, vertical, row - 1, labels)
        horizontal = x
        for layer in self.layers:
            horizontal = layer.at(cache, horizontal, row, col, labels)
        return self.head.at(cache, horizontal, row, col)
