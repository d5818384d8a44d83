"""The networks of pix2pix (Isola, Zhu, Zhou and Efros 2017, "Image-to-Image Translation with
Conditional Adversarial Networks", section 3.2), sized for 8x8 and 28x28 images.

UNetGenerator: an encoder-decoder whose decoder layers also see the encoder layer of the
same resolution (a skip connection: the two are concatenated), so what the input and the
output share (here the upper half of a digit) need not squeeze through the bottleneck:

    x (C, H)  -> conv k4 s2, LeakyReLU         -> e1 (c, H/2)
    e1        -> conv k4 s2, BatchNorm, LeakyReLU -> e2 (2c, H/4)   the bottleneck
    e2        -> convT k4 s2, BatchNorm, ReLU, dropout -> d1 (c, H/2)
    [d1, e1]  -> convT k4 s2, tanh             -> y (C, H)

The noise of a conditional GAN comes from dropout, as in the paper (the generator learns to
ignore a z input): `keep` is the dropout mask of d1, drawn by the model as its noise (so a
step is a function of the run's random stream) and scaled by 1 / (1 - dropout); without
one (samples, evaluation) there is no dropout, and a trained model's output is
deterministic.

PatchDiscriminator ("PatchGAN"): D sees the pair (input, output) as 2C channels and gives
one logit per patch, a map (N, 1, H/2, W/2) of which each entry sees a 12x12 window: it
judges local structure (sharp strokes) and leaves the whole-image agreement to the L1 term.
"""
from .. import nn
from ..ops import concatenate, leaky_relu, relu

SLOPE = 0.2


class UNetGenerator(nn.Module):
    def __init__(self, shape, channels=32, dropout=0.5, generator=None):
        super().__init__()
        c, height, width = shape
        if height % 4 or width % 4:
            raise ValueError(f"UNetGenerator: image sides must be multiples of 4 (two "
                             f"stride-2 convolutions), got {height}x{width}")
        self.down1 = nn.Conv2d(c, channels, 4, 2, 1, generator=generator)
        self.down2 = nn.Conv2d(channels, 2 * channels, 4, 2, 1, generator=generator)
        self.norm2 = nn.BatchNorm2d(2 * channels)
        self.up1 = nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1, generator=generator)
        self.norm_up1 = nn.BatchNorm2d(channels)
        self.up2 = nn.ConvTranspose2d(2 * channels, c, 4, 2, 1, generator=generator)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout}: the share of d1 dropped must be in [0, 1)")
        self.dropout = float(dropout)
        self.keep_shape = (channels, height // 2, width // 2)

    def draw_keep(self, n, generator, device=None):
        """A dropout mask (n,) + keep_shape of d1: 1 with probability 1 - dropout."""
        return generator.bernoulli(1.0 - self.dropout, (n,) + self.keep_shape, device)

    def forward(self, x, keep=None):
        e1 = leaky_relu(self.down1(x), SLOPE)
        e2 = leaky_relu(self.norm2(self.down2(e1)), SLOPE)
        d1 = relu(self.norm_up1(self.up1(e2)))
        if keep is not None:
            d1 = d1 * keep * (1.0 / (1.0 - self.dropout))
        return self.up2(concatenate([d1, e1], axis=1)).tanh()


class PatchDiscriminator(nn.Module):
    """(input, output) pairs -> logits (N, 1, H/2, W/2), one per overlapping patch."""

    def __init__(self, shape, channels=32, generator=None):
        super().__init__()
        c = shape[0]
        self.conv1 = nn.Conv2d(2 * c, channels, 4, 2, 1, generator=generator)
        self.conv2 = nn.Conv2d(channels, 2 * channels, 3, 1, 1, generator=generator)
        self.norm2 = nn.BatchNorm2d(2 * channels)
        self.conv3 = nn.Conv2d(2 * channels, 1, 3, 1, 1, generator=generator)

    def hidden(self, condition, image):
        """The last hidden maps (N, 2 * channels, H/2, W/2), before the patch logits."""
        h = leaky_relu(self.conv1(concatenate([condition, image], axis=1)), SLOPE)
        return leaky_relu(self.norm2(self.conv2(h)), SLOPE)

    def forward(self, condition, image):
        return self.conv3(self.hidden(condition, image))
