"""bigan: BiGAN (Donahue, Kraehenbuehl and Darrell 2017), a GAN that also learns the
inverse map. Beside G: z -> x, an encoder E: x -> z; the discriminator judges pairs
(minigen/gan/inference.py):

    min_{G,E} max_D  V(D, E, G) = E_x log D(x, E(x)) + E_z log(1 - D(G(z), z))   (eq. 3)

At the optimum the joint distributions of (x, E(x)) and (G(z), z) are equal, so E inverts G
(Theorem 2). D updates on the usual discriminator loss with the real pairs (x, E(x)) and
the fake pairs (G(z), z); G and E, one player ("generator", both networks' parameters),
minimise D's loss with the labels swapped (-log D(G(z), z) - log(1 - D(x, E(x))), the
non-saturating form of their side of eq. 3).

`features(x)` = E(x), what `minigen probe RUN` fits its logistic regression on
(linear_probe_acc: how much of the class a BiGAN's inference keeps without labels).
Metrics: the base's sample-quality figures; recon_mse, the mean squared error per pixel of
G(E(x)) against the test images on [0, 1], and code_mse, of E(G(z)) against z per latent
dimension (E inverting G from either side); d_real and d_fake on the pairs D is trained
on. reconstructions.png: training images over G(E(x)).
"""
import numpy as np

from ..autograd import no_grad, tensor
from ..gan import losses
from ..gan.inference import Encoder, JointDiscriminator
from ..gan.model import EVALUATION_SEED, GAN, SAMPLE_BATCH
from ..latent.reconstruction import draw_reconstructions
from ..model import Update
from ..random import Generator
from . import register
from .gan import ADAM_RANGES, SHARED


@register("bigan", "BiGAN: an encoder E beside G, D on (x, z) pairs; features = E(x) for "
          "the probe", data=("digits", "fashion-mnist", "mnist"), n_critic=1, d_lr=2e-4,
          g_lr=2e-4, d_betas=(0.5, 0.999), g_betas=(0.5, 0.999), joint_hidden=256,
          ranges={**ADAM_RANGES, "joint_hidden": "[1, inf)"}, **SHARED)
class BiGAN(GAN):
    def __init__(self, spec, generator, joint_hidden=256, **config):
        if int(joint_hidden) < 1:
            raise ValueError(f"joint_hidden={joint_hidden}: D's joint MLP needs at least "
                             f"1 unit")
        self.joint_hidden = int(joint_hidden)
        super().__init__(spec, generator, loss="nonsaturating", **config)
        self.E = Encoder(spec.shape, self.latent, self.channels, generator)

    def build_discriminator(self, generator):
        return JointDiscriminator(self.spec.shape, self.latent, self.channels,
                                  self.joint_hidden, self.d_batch_norm, generator)

    def players(self):
        """G and E are one player: they minimise the same loss."""
        players = super().players()
        players["generator"].parameters += list(self.E.parameters())
        return players

    def discriminate(self, x, batch=None):
        """D on the real pair (x, E(x)) (what the base's d_real reports)."""
        return self.D(x, self.E(x))

    def updates(self, batches, generator):
        for _ in range(self.n_critic):
            real = self.scale(batches.next().x)
            z = self.noise(len(real), generator)
            with no_grad():
                fake, code = self.G(z), self.E(real)
            d_real, d_fake = self.D(real, code), self.D(fake, z)
            yield Update("discriminator", losses.minimax_d(d_real, d_fake),
                         self.output_logs(d_real, d_fake))
        real = self.scale(batches.next().x)
        z = self.noise(len(real), generator)
        d_real, d_fake = self.D(real, self.E(real)), self.D(self.G(z), z)
        # the labels swapped: -log D(G(z), z) - log(1 - D(x, E(x)))
        yield Update("generator", losses.minimax_d(d_fake, d_real))

    def features(self, x):
        return self.E(self.scale(x))

    def evaluate(self, batches, final=True):
        batches = list(batches)
        metrics = super().evaluate(iter(batches), final)
        recon, count = 0.0, 0
        with no_grad():
            for batch in batches:
                y = self.scale(batch.x)
                error = (self.G(self.E(y)).numpy() - y.numpy()).astype(np.float64) / 2.0
                recon += float((error.reshape(len(error), -1) ** 2).mean(axis=1).sum())
                count += len(error)
            d_fake, code = 0.0, 0.0
            generator = Generator([*EVALUATION_SEED, 1])
            for start in range(0, self.eval_samples, SAMPLE_BATCH):
                z = self.noise(min(SAMPLE_BATCH, self.eval_samples - start), generator)
                fake = self.G(z)
                d_fake += float(self.d_output(self.D(fake, z)).numpy().sum())
                code += float(((self.E(fake) - z) ** 2).numpy().astype(np.float64)
                              .mean(axis=1).sum())
        metrics.update(recon_mse=recon / count, code_mse=code / self.eval_samples,
                       d_fake=d_fake / self.eval_samples)
        return metrics

    def draw(self, samples, path, reference):
        super().draw(samples, path, reference)
        with no_grad():
            y = self.scale(tensor(reference[:32], device=self.device))
            shown = self.G(self.E(y)).numpy()
        draw_reconstructions(path, [(y.numpy() + 1) / 2, (shown + 1) / 2])
