"""A StyleGAN-style generator (Karras, Laine and Aila 2019, "A Style-Based Generator
Architecture for Generative Adversarial Networks", figure 1b), small enough for 8x8 digits
and 28x28 fashion-mnist.

    z -> mapping network f (an MLP) -> w                     (the intermediate latent)
    a learned constant (C, s0, s0) -> per resolution: [upsample, conv 3x3], noise,
        LeakyReLU, AdaIN(., w), twice -> ... -> a 1x1 conv to the image, tanh

The latent does not enter at the bottom, as in DCGAN: it only sets, through a learned
affine map A, the scale and bias of every channel after an instance normalisation,

    AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i             (eq. 1)

with mu and sigma the mean and standard deviation of channel i over its H x W pixels
(instance normalisation, Ulyanov et al. 2016: the statistics of one image and channel, not
of the batch). Each AdaIN wipes out the previous channel statistics, so every resolution's
style is set afresh by w. Stochastic detail (where a hair or a stroke falls) comes from
per-pixel noise: one N(0, 1) image per layer, added to each channel with a learned scale,
0 at the start (section 3.2). The constant 1/sqrt(2) gains, equalised learning rate,
style mixing and the truncation in w of the paper are left out.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..ops import leaky_relu, mean, sqrt
from ..ops.normalize import normalize

SLOPE = 0.2  # LeakyReLU's negative slope, as in the paper


def instance_norm(x, eps=1e-5):
    """(x - mu) / sqrt(sigma^2 + eps) of each image and channel over its H x W pixels."""
    if x.ndim != 4:
        raise ValueError(f"instance_norm: expected (N, C, H, W), got {x.shape}")
    return normalize(x, 2, eps)


class AdaIN(nn.Module):
    """Adaptive instance normalisation (eq. 1): the style y = A(w) gives each channel its
    scale y_s and bias y_b; A's scale bias starts at 1, so an untrained AdaIN is plain
    instance normalisation."""

    def __init__(self, channels, style_dim, eps=1e-5, generator=None):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.affine = nn.Linear(style_dim, 2 * channels, generator=generator)
        bias = np.zeros(2 * channels, dtype=np.float32)
        bias[:channels] = 1.0
        self.affine.bias = nn.Parameter(bias)

    def style(self, w):
        """(y_s, y_b), each (N, C, 1, 1)."""
        y = self.affine(w).reshape(len(w), 2, self.channels, 1, 1)
        return y[:, 0], y[:, 1]

    def forward(self, x, w):
        scale, bias = self.style(w)
        return scale * instance_norm(x, self.eps) + bias


class NoiseInput(nn.Module):
    """x + B * noise: one N(0, 1) image (N, 1, H, W) per layer, shared by the channels,
    scaled by a learned factor per channel (B, 0 at the start)."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(np.zeros(channels, dtype=np.float32))

    def forward(self, x, noise):
        return x + self.weight.reshape(1, -1, 1, 1) * noise


class MappingNetwork(nn.Module):
    """f: z -> w, `layers` Linear + LeakyReLU layers after normalising z to unit mean
    square (the paper's pixel norm of the input). The weights start at He's N(0, 2 /
    ((1 + 0.2^2) fan_in)), biases at 0, which keeps the variance of w near that of z
    through the layers (the paper's equalised learning rate does it with the same
    constant); with torch's default init each layer shrank it about 6 times, w hardly
    depended on z, and a trained generator drew its variety from the noise inputs."""

    def __init__(self, latent, style_dim, layers, generator=None):
        super().__init__()
        if layers < 1:
            raise ValueError(f"mapping_layers={layers}: the mapping network needs at least "
                             f"1 layer")
        self.layers = nn.ModuleList(nn.Linear(latent if i == 0 else style_dim, style_dim,
                                              generator=generator) for i in range(layers))
        for layer in self.layers:
            nn.init.kaiming_normal_(layer.weight, a=SLOPE, generator=generator)
            nn.init.zeros_(layer.bias)

    def forward(self, z):
        x = z / sqrt(mean(z * z, axis=1, keepdims=True) + 1e-8)
        for layer in self.layers:
            x = leaky_relu(layer(x), SLOPE)
        return x


class StyleLayer(nn.Module):
    """[upsample x2,] [conv 3x3,] noise, LeakyReLU, AdaIN: one layer of the synthesis
    network (the first layer on the constant has no convolution)."""

    def __init__(self, in_channels, out_channels, style_dim, conv=True, upsample=False,
                 generator=None):
        super().__init__()
        self.upsample = upsample
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, generator=generator) \
            if conv else None
        self.noise = NoiseInput(out_channels)
        self.adain = AdaIN(out_channels, style_dim, generator=generator)

    def forward(self, x, w, noise):
        if self.upsample:
            x = F.upsample_nearest(x, 2)
        if self.conv is not None:
            x = self.conv(x)
        return self.adain(leaky_relu(self.noise(x, noise), SLOPE), w)


def start_size(size, smallest=4):
    """The side of the constant input: size halved while it stays even and at least
    `smallest` (8 -> 4, 28 -> 7)."""
    while size % 2 == 0 and size // 2 >= smallest:
        size //= 2
    return size


class StyleGenerator(nn.Module):
    """The generator of figure 1b for images of `shape` (C, H, H), H = s0 * 2^k: the
    mapping network, a learned constant of s0 x s0, two style layers per resolution with
    `channels` halved at each doubling (at least 8, or `channels` where that is fewer: the
    first layer has no conv to change the width), and a 1x1 conv to the image, tanh.

    Its inputs are z (N, latent) and the noise images of every layer laid end to end,
    (N, noise_size), both N(0, I): the model draws them together, so that a sample is a
    function of the generator's random stream alone."""

    def __init__(self, shape, latent, style_dim=64, channels=64, mapping_layers=4,
                 generator=None):
        super().__init__()
        c, height, width = shape
        if height != width:
            raise ValueError(f"StyleGenerator: square images only, got {shape}")
        if style_dim < 1 or channels < 1:
            raise ValueError(f"style_dim={style_dim} and channels={channels} must be at "
                             f"least 1")
        s0 = start_size(height)
        doublings = int(np.log2(height // s0))
        self.mapping = MappingNetwork(latent, style_dim, mapping_layers, generator)
        # N(0, 1), not the paper's ones: instance norm of a map constant over its pixels
        # divides by sqrt(eps), and the first noise input, however small, then sets it
        rng = np.random.default_rng() if generator is None else generator.rng
        self.constant = nn.Parameter(rng.standard_normal((1, channels, s0, s0))
                                     .astype(np.float32))
        layers, width_now, self.sides = [], channels, []
        for level in range(doublings + 1):
            out = max(channels >> level, min(channels, 8))
            layers.append(StyleLayer(width_now, out, style_dim, conv=level > 0,
                                     upsample=level > 0, generator=generator))
            layers.append(StyleLayer(out, out, style_dim, generator=generator))
            self.sides += [s0 << level] * 2
            width_now = out
        self.layers = nn.ModuleList(layers)
        self.to_image = nn.Conv2d(width_now, c, 1, generator=generator)
        self.noise_size = sum(side * side for side in self.sides)

    def forward(self, z, noise):
        """Images (N, C, H, W) in [-1, 1] for latents z (N, latent) and the layers' noise
        images (N, noise_size)."""
        if noise.shape != (len(z), self.noise_size):
            raise ValueError(f"StyleGenerator: expected noise ({len(z)}, {self.noise_size}), "
                             f"got {noise.shape}")
        w = self.mapping(z)
        x = self.constant.broadcast_to((len(z),) + self.constant.shape[1:])
        start = 0
        for layer, side in zip(self.layers, self.sides):
            image = noise[:, start:start + side * side].reshape(len(z), 1, side, side)
            x = layer(x, w, image)
            start += side * side
        return self.to_image(x).tanh()

    def noise_inputs(self):
        return [layer.noise for layer in self.layers]
