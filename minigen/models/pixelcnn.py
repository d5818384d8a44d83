"""PixelCNN (van den Oord et al., 2016, "Pixel Recurrent Neural Networks", section 3.5).

p(x) = prod_i p(x_i | x_<i) over the pixels in raster order (eq. 1), and for colour images
p(x_i | x_<i) = p(R | x_<i) p(G | R, x_<i) p(B | R, G, x_<i) (eq. 2); the loss is -log p(x)
(minigen.autoregressive.pixel_model.PixelModel). A stack of masked convolutions gives all the
conditionals in one pass: a type-A first layer (a pixel never sees itself), residual blocks
of type-B layers, and a 1x1 head to a Bernoulli logit per subpixel for binary data or a
categorical over K levels. The masks make the network causal but leave a blind spot:
stacked k x k masks grow the view up and to the left, never into the wedge up and to the
right of the pixel (the Gated PixelCNN removes it).

Conditional (`conditional=true`): p(x | y), with a learned bias per class added inside each
residual block; the labels are an argument of loss, nll and sample.

Sampling is cached: an activation at a pixel depends on earlier pixels only, so each layer
keeps its activation map and the next pixel is computed at that one position, every layer
reading its kept taps there (forward_at); `sample(..., cached=False)` recomputes the whole
image per subpixel, the reference.
"""
from .. import nn
from ..autoregressive.gated import OutputHead, ResidualBlock
from ..autoregressive.masked import MaskedConv2d
from ..autoregressive.pixel_model import PixelModel
from . import register


@register("pixelcnn", "PixelCNN: type-A masked conv, residual type-B blocks, 1x1 head",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist",
                "shapes"),
          channels=64, blocks=5, first_kernel=5, kernel=3, conditional=False, steps=750,
          batch_size=128, lr=1e-3,
          ranges={"channels": "[1, inf)", "blocks": "[0, inf)", "first_kernel": "[1, inf)",
                  "kernel": "[1, inf)"})
class PixelCNN(PixelModel):
    def __init__(self, spec, generator, channels=64, blocks=5, first_kernel=5, kernel=3,
                 conditional=False):
        super().__init__(spec, "pixelcnn", conditional)
        groups = self.color_groups
        if channels % (2 * groups):
            raise ValueError(f"pixelcnn: channels={channels} must be a multiple of "
                             f"{2 * groups} for {groups}-channel images (the colour groups "
                             f"split the features, the residual blocks halve them)")
        self.first = MaskedConv2d(groups, channels, first_kernel, "A", groups, generator)
        self.blocks = nn.ModuleList([
            ResidualBlock(channels, kernel, groups, self.num_classes, generator)
            for _ in range(blocks)])
        self.head = OutputHead(channels, self.likelihood.out_channels, groups, generator)

    def forward(self, x, labels=None):
        """Logits (N, C or C*K, H, W) of every p(x_i | x_<i), for x scaled to [0, 1]."""
        h = self.first(x)
        for block in self.blocks:
            h = block(h, labels)
        return self.head(h)

    def forward_at(self, cache, x, row, col, labels=None):
        """The logits (N, C or C*K) of pixel (row, col) alone, for the image drawn so far x:
        forward's layers at that one pixel, each from its input there and the inputs of
        earlier pixels that the cache keeps."""
        h = self.first.at(cache, x, row, col)
        for block in self.blocks:
            h = block.at(cache, h, row, col, labels)
        return self.head.at(cache, h, row, col)
