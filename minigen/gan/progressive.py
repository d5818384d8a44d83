"""Progressive growing over two resolutions (Karras, Aila, Laine and Lehtinen 2018,
"Progressive Growing of GANs for Improved Quality, Stability, and Variation", section 2),
for images of side H: first at H/2 (14x14 for fashion-mnist), then at H with a fade-in.

Both networks are built whole from the start; which part is used depends on alpha in
[0, 1]. The generator's blocks run at H/4 (from z), H/2 and H; a 1x1 convolution turns
the H/2 or the H features into an image ("toRGB"). While the new H block fades in,

    G_alpha(z) = tanh( (1 - alpha) up(toRGB_low(h_low)) + alpha toRGB_high(block_high(h_low)) )

with up() nearest-neighbour doubling (figure 2 (b)): at alpha = 0 the H image is exactly the
H/2 image upsampled (tanh is elementwise), at alpha = 1 the new block alone. The
discriminator mirrors it: at H the image enters through fromRGB_high and the new block,
faded against the image average-pooled to H/2 through the old fromRGB_low,

    h_low = (1 - alpha) fromRGB_low(pool(x)) + alpha block_high(fromRGB_high(x))

then the H/2 block, the H/4 block with the minibatch standard deviation as one more channel
(section 3) and a linear head. The model trains at H/2 alone (`resolution(alpha)`: the
generator's H/2 image, the real images pooled) before the fade-in starts.

Also from the paper: pixelwise feature normalisation in the generator after every
convolution (section 4.2), LeakyReLU(0.2) throughout. Equalised learning rate is left out.
"""
from .. import functional as F
from .. import nn
from ..ops import concatenate, leaky_relu, mean, sqrt, var

SLOPE = 0.2


def pixel_norm(x, eps=1e-8):
    """Each pixel's feature vector scaled to unit mean square over the channels (sec. 4.2)."""
    return x / sqrt(mean(x * x, axis=1, keepdims=True) + eps)


def minibatch_stddev(x, eps=1e-8):
    """x (N, C, H, W) and one more channel holding the standard deviation of each feature
    over the batch, averaged over features and pixels (sec. 3): a discriminator that sees
    it can tell a varied batch of real images from a collapsed batch of fakes."""
    std = sqrt(var(x, axis=0) + eps).mean()
    n, _, h, w = x.shape
    return concatenate([x, std.reshape(1, 1, 1, 1).broadcast_to((n, 1, h, w))], axis=1)


def fade(alpha, old, new):
    """(1 - alpha) old + alpha new; alpha = 0 or 1 leaves the other branch out."""
    if alpha <= 0.0:
        return old
    if alpha >= 1.0:
        return new
    return old * (1.0 - alpha) + new * alpha


def _conv(cin, cout, generator):
    return nn.Conv2d(cin, cout, 3, padding=1, generator=generator)


class ProgressiveGenerator(nn.Module):
    """z (N, latent) -> images (N, C, H, W) (alpha > 0) or (N, C, H/2, W/2) (low=True)."""

    def __init__(self, latent, shape, channels=64, generator=None):
        super().__init__()
        c, height, width = shape
        if height % 4 or width % 4:
            raise ValueError(f"ProgressiveGenerator: image sides must be multiples of 4 (two "
                             f"doublings), got {height}x{width}")
        if channels < 2:
            raise ValueError(f"channels={channels}: need at least 2")
        high = channels // 2
        self.start = (channels, height // 4, width // 4)
        self.project = nn.Linear(latent, channels * (height // 4) * (width // 4),
                                 generator=generator)
        self.base = _conv(channels, channels, generator)
        self.low = nn.ModuleList([_conv(channels, channels, generator),
                                  _conv(channels, channels, generator)])
        self.high = nn.ModuleList([_conv(channels, high, generator),
                                   _conv(high, high, generator)])
        self.to_image_low = nn.Conv2d(channels, c, 1, generator=generator)
        self.to_image_high = nn.Conv2d(high, c, 1, generator=generator)

    @staticmethod
    def _block(convs, x):
        x = F.upsample_nearest(x, 2)
        for conv in convs:
            x = pixel_norm(leaky_relu(conv(x), SLOPE))
        return x

    def forward(self, z, alpha, low=False):
        """The image at H/2 when low, else at H with the new block faded in by alpha."""
        x = pixel_norm(leaky_relu(self.project(pixel_norm(z)), SLOPE))
        x = x.reshape((len(z),) + self.start)
        x = pixel_norm(leaky_relu(self.base(x), SLOPE))
        h_low = self._block(self.low, x)
        image_low = self.to_image_low(h_low)
        if low:
            return image_low.tanh()
        old = F.upsample_nearest(image_low, 2) if alpha < 1.0 else None
        new = self.to_image_high(self._block(self.high, h_low)) if alpha > 0.0 else None
        return fade(alpha, old, new).tanh()


class ProgressiveDiscriminator(nn.Module):
    """images at H (or at H/2: low) -> one logit per example (N,)."""

    def __init__(self, shape, channels=64, generator=None):
        super().__init__()
        c, height, width = shape
        high = channels // 2
        self.from_image_high = nn.Conv2d(c, high, 1, generator=generator)
        self.high = nn.ModuleList([_conv(high, high, generator),
                                   _conv(high, channels, generator)])
        self.from_image_low = nn.Conv2d(c, channels, 1, generator=generator)
        self.low = nn.ModuleList([_conv(channels, channels, generator),
                                  _conv(channels, channels, generator)])
        self.base = _conv(channels + 1, channels, generator)
        self.head = nn.Linear(channels * (height // 4) * (width // 4), 1, generator=generator)

    @staticmethod
    def _block(convs, x):
        for conv in convs:
            x = leaky_relu(conv(x), SLOPE)
        return F.avg_pool2d(x, 2)

    def features(self, x, alpha, low=False):
        """The last hidden layer (N, F), before the head."""
        if low:
            h_low = leaky_relu(self.from_image_low(x), SLOPE)
        else:
            old = leaky_relu(self.from_image_low(F.avg_pool2d(x, 2)), SLOPE) \
                if alpha < 1.0 else None
            new = self._block(self.high, leaky_relu(self.from_image_high(x), SLOPE)) \
                if alpha > 0.0 else None
            h_low = fade(alpha, old, new)
        h = self._block(self.low, h_low)
        return leaky_relu(self.base(minibatch_stddev(h)), SLOPE).reshape(len(x), -1)

    def forward(self, x, alpha, low=False):
        return self.head(self.features(x, alpha, low)).reshape(len(x))
