"""stylegan: a StyleGAN-style generator (Karras, Laine and Aila 2019) against the DCGAN
discriminator, in the non-saturating game of the base (the paper's loss, without its R1
penalty).

The generator (minigen/gan/style.py) maps z to w with an MLP, starts from a learned
constant instead of z, and lets w set every resolution's channel statistics through AdaIN
(instance normalisation, then the style's scale and bias); per-pixel noise images, scaled
per channel by learned factors that start at 0, give the stochastic detail. The noise is
drawn with z: the model's noise(n) is [z, the layers' noise images] side by side, so a
sample depends on the random stream alone, as in every other GAN here.

Metrics: the base's, and z_spread and noise_spread, how much the pixels vary with z (the
noise fixed) and with the noise (z fixed). Besides the base's samples.png and losses.png,
draw writes noise.png: each row one z (one w) with fresh noise images in every column, so
what the noise inputs control (the variation within a row) is seen apart from what the
style controls (between rows).
"""
import os

import numpy as np

from .. import pictures
from ..autograd import no_grad, tensor
from ..gan.model import EVALUATION_SEED, GAN
from ..gan.style import StyleGenerator
from ..random import Generator
from . import register
from .gan import ADAM_GAME_RANGES, DCGAN_GAME

NOISE_PICTURE = (8, 8)  # rows (latents) x columns (noise draws) of noise.png
SPREAD = 64             # latents or noise draws behind z_spread and noise_spread


@register("stylegan", "StyleGAN-style generator (mapping network, learned constant, AdaIN, "
          "noise inputs) against a DCGAN discriminator", data=("digits", "fashion-mnist",
                                                                 "mnist"),
          loss="nonsaturating", latent=32, style_dim=64, mapping_layers=4, channels=64,
          **DCGAN_GAME, eval_samples=2000, steps=3000, batch_size=64,
          ranges={**ADAM_GAME_RANGES, "latent": "[1, inf)", "style_dim": "[1, inf)",
                  "mapping_layers": "[1, inf)", "channels": "[1, inf)"})
class StyleGAN(GAN):
    def __init__(self, spec, generator, style_dim=64, mapping_layers=4, **config):
        self.style_dim, self.mapping_layers = int(style_dim), int(mapping_layers)
        super().__init__(spec, generator, **config)

    def build_generator(self, generator):
        return StyleGenerator(self.spec.shape, self.latent, self.style_dim, self.channels,
                              self.mapping_layers, generator)

    def noise(self, n, generator):
        """[z, noise images]: (n, latent + the generator's noise_size), all N(0, 1)."""
        return generator.normal((n, self.latent + self.G.noise_size), device=self.device)

    def generate(self, z, batch=None):
        return self.G(z[:, :self.latent], z[:, self.latent:])

    def evaluate(self, batches, final=True):
        """The base's metrics, and how the generator divides its variety: z_spread, the
        pixels' standard deviation (network scale, mean over pixels) across SPREAD
        latents with the noise images fixed, and noise_spread, across as many noise draws
        with z fixed (StyleGAN's intent: z the content, the noise the texture)."""
        metrics = super().evaluate(batches, final)
        stream = Generator([*EVALUATION_SEED, 1])
        z = stream.normal((SPREAD, self.latent)).numpy()
        noise = stream.normal((SPREAD, self.G.noise_size)).numpy()
        with no_grad():
            for key, (zs, noises) in (("z_spread", (z, noise[:1])),
                                      ("noise_spread", (z[:1], noise))):
                zs, noises = (np.repeat(a, SPREAD // len(a), axis=0) for a in (zs, noises))
                images = self.G(tensor(zs, device=self.device),
                                tensor(noises, device=self.device)).numpy()
                metrics[key] = float(images.astype(np.float64).std(axis=0).mean())
        return metrics

    def draw(self, samples, path, reference):
        super().draw(samples, path, reference)
        rows, columns = NOISE_PICTURE
        stream = Generator(0)
        z = np.repeat(stream.normal((rows, self.latent)).numpy(), columns, axis=0)
        noise = stream.normal((rows * columns, self.G.noise_size)).numpy()
        with no_grad():
            images = self.G(tensor(z, device=self.device), tensor(noise, device=self.device))
        pictures.image_grid(self.unscale(images.numpy()),
                            os.path.join(os.path.dirname(path), "noise.png"),
                            levels=self.spec.levels, columns=columns)
