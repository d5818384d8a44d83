"""BiGAN's networks (Donahue, Kraehenbuehl and Darrell 2017, "Adversarial Feature
Learning"; Dumoulin et al. 2017's ALI is the same game): an encoder E from images to
latents, and a discriminator of (image, latent) pairs.

    Encoder             x -> the DCGAN discriminator's convolutions -> features f(x)
                        -> Linear -> z (N, latent), deterministic
    JointDiscriminator  (x, z) -> D_x(x) + D_xz([f(x), z]): the DCGAN discriminator's
                        logit of the image alone plus an MLP on its features beside z

D must see the pair to tell (x, E(x)) from (G(z), z); the image term lets it reject a
poor image without looking at z, the joint term checks that the two belong together,
which is what drives E towards the inverse of G.
"""
from .. import nn
from ..ops import concatenate
from .networks import LEAK, DCGANDiscriminator


class Encoder(nn.Module):
    def __init__(self, shape, latent, channels=64, generator=None):
        super().__init__()
        convs = DCGANDiscriminator(shape, channels, generator=generator)
        self.body = convs.body  # the convolutions; the discriminator's head is not used
        self.out = nn.Linear(convs.head.weight.shape[1], latent, generator=generator)

    def forward(self, x):
        return self.out(self.body(x))


class JointDiscriminator(nn.Module):
    """(x (N, C, H, W), z (N, latent)) -> one logit per pair (N,)."""

    def __init__(self, shape, latent, channels=64, hidden=256, batch_norm=True,
                 generator=None):
        super().__init__()
        self.image = DCGANDiscriminator(shape, channels, batch_norm, generator=generator)
        features = self.image.head.weight.shape[1]
        self.joint = nn.Sequential(nn.Linear(features + latent, hidden, generator=generator),
                                   nn.LeakyReLU(LEAK),
                                   nn.Linear(hidden, 1, generator=generator))

    def forward(self, x, z):
        f = self.image.features(x)
        return self.image.head(f).reshape(len(x)) + \
            self.joint(concatenate([f, z], axis=1)).reshape(len(x))
