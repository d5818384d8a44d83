"""The GANs of the minimax game and its Wasserstein and hinge successors, on the shared
base minigen/gan/model.py (two players, D then G, sample-quality metrics, pictures).

    gan      Goodfellow et al. 2014: loss=minimax (eq. 1) or nonsaturating (sec. 3); MLPs on
             2-D data, DCGAN (Radford et al. 2016) on images; Salimans et al. 2016's tricks
             as config keys: feature_matching, minibatch_kernels (minibatch
             discrimination), historical_averaging, label_smoothing (one-sided),
             virtual_batch_norm
    wgan     Arjovsky et al. 2017: a critic of E f(real) - E f(fake), weights clipped to
             +-clip after every critic step (Algorithm 1), RMSprop, 5 critic steps per
             generator step
    wgan-gp  Gulrajani et al. 2017: the gradient penalty instead of clipping (Algorithm
             1: lambda = 10, 5 critic steps, Adam 1e-4 with betas (0, 0.9), no batch norm
             in the critic)
    sngan    Miyato et al. 2018: every layer of D spectrally normalised (power iteration
             in the module's state), the hinge loss; with self_attention=true SAGAN
             (Zhang et al. 2019: spectral norm, hinge loss, self-attention in G and D)

gan, sngan and cgan also take self_attention (SAGAN's block at half size in the DCGAN G
and D), orthogonal=BETA (BigGAN's orthogonal penalty on G's weights) and truncation=T (z
truncated at +-T when sampling and evaluating), minigen/gan/attention.py and biggan.py.
"""
import numpy as np

from ..gan import losses
from ..gan.biggan import BigGANTricks
from ..gan.model import GAN
from . import register

IMAGES = ("digits", "fashion-mnist", "mnist", "digits-bin", "fashion-mnist-bin", "shapes")
TOYS = ("toy-8gaussians", "toy-rings", "toy-moons", "toy-checkerboard", "toy-spirals")
DATA = IMAGES + TOYS
TRICKS = dict(feature_matching=False, minibatch_kernels=0, historical_averaging=0.0,
              label_smoothing=0.0, virtual_batch_norm=False, reference_size=64)
SHARED = dict(latent=32, hidden=(128, 128, 128), channels=64, eval_samples=2000,
              steps=3000, batch_size=64)
# the DCGAN paper's game: one D update per G update, both Adam 2e-4 with beta1 = 0.5
DCGAN_GAME = dict(n_critic=1, d_lr=2e-4, g_lr=2e-4, d_betas=(0.5, 0.999), g_betas=(0.5, 0.999))
# the keys of the game itself, then those of SHARED's networks; precision and recall need a
# sample's k-th neighbour besides itself (quality.PR_NEIGHBOURS = 3), so 4 samples at least
GAME_RANGES = {"eval_samples": "[4, inf)", "n_critic": "[1, inf)", "d_lr": "(0, inf)",
               "g_lr": "(0, inf)"}
ADAM_GAME_RANGES = {**GAME_RANGES, "d_betas": "[0, 1)", "g_betas": "[0, 1)"}
RANGES = {"latent": "[1, inf)", "hidden": "[1, inf)", "channels": "[1, inf)", **GAME_RANGES}
ADAM_RANGES = {**RANGES, **ADAM_GAME_RANGES}
TRICK_RANGES = {**ADAM_RANGES, "minibatch_kernels": "[0, inf)",
                "historical_averaging": "[0, inf)", "label_smoothing": "[0, 1)",
                "reference_size": "[1, inf)"}
# SAGAN's self-attention block in G and D, and BigGAN's orthogonal penalty on G and
# truncated z at sampling (minigen/gan/biggan.py): keys of gan, sngan and cgan
BIGGAN = dict(self_attention=False, orthogonal=0.0, truncation=None)
BIGGAN_RANGES = {"orthogonal": "[0, inf)"}


@register("gan", "GAN (minimax or non-saturating), MLP on 2-D data, DCGAN on images; the "
          "Salimans et al. tricks, self-attention and BigGAN's tricks as config keys",
          data=DATA, ranges={**TRICK_RANGES, **BIGGAN_RANGES}, loss="nonsaturating",
          **DCGAN_GAME, **SHARED, **TRICKS, **BIGGAN)
class VanillaGAN(BigGANTricks, GAN):
    def __init__(self, spec, generator, loss="nonsaturating", **config):
        if loss not in ("minimax", "nonsaturating"):
            raise ValueError(f"loss={loss!r}: gan plays the original game, minimax or "
                             f"nonsaturating (wgan, wgan-gp and sngan have the others)")
        super().__init__(spec, generator, loss=loss, **config)


@register("wgan", "Wasserstein GAN with weight clipping and RMSprop", data=DATA,
          ranges={**RANGES, "clip": "(0, inf)"}, n_critic=5, clip=0.01, d_lr=5e-5,
          g_lr=5e-5, **SHARED)
class WGAN(GAN):
    def __init__(self, spec, generator, clip=0.01, **config):
        super().__init__(spec, generator, loss="wasserstein", optimizer="rmsprop", **config)
        if not clip > 0:
            raise ValueError(f"clip={clip}: the critic's weights are clipped to "
                             f"[-clip, clip], so clip must be positive")
        self.clip = float(clip)

    def after_update(self, player):
        """Algorithm 1, line 7: w <- clip(w, -c, c) after every critic step."""
        super().after_update(player)
        if player == "discriminator":
            for p in self.D.parameters():
                np.clip(p.data, -self.clip, self.clip, out=p.data)


@register("wgan-gp", "WGAN with the gradient penalty on interpolates (a second derivative "
          "through the critic)", data=DATA,
          ranges={**ADAM_RANGES, "gp_weight": "[0, inf)"}, n_critic=5, gp_weight=10.0,
          d_lr=1e-4, g_lr=1e-4, d_betas=(0.0, 0.9), g_betas=(0.0, 0.9), **SHARED)
class WGANGP(GAN):
    def __init__(self, spec, generator, gp_weight=10.0, **config):
        super().__init__(spec, generator, loss="wasserstein", d_batch_norm=False, **config)
        if not gp_weight >= 0:
            raise ValueError(f"gp_weight={gp_weight}: the penalty's weight must be >= 0")
        self.gp_weight = float(gp_weight)

    def d_loss(self, real, fake, batch, generator):
        """Algorithm 1, line 7: E f(x~) - E f(x) + lambda (||grad f(x_hat)||_2 - 1)^2, with
        one eps ~ U[0, 1] per example."""
        loss, logs = super().d_loss(real, fake, batch, generator)
        eps = generator.uniform((len(real),), device=self.device)
        penalty, norms = losses.gradient_penalty(lambda x: self.discriminate(x, batch),
                                                 real, fake, eps)
        logs.update(gradient_penalty=penalty.item(), grad_norm=norms.mean().item())
        return loss + self.gp_weight * penalty, logs


@register("sngan", "GAN with spectrally normalised discriminator layers and the hinge loss "
          "(with self_attention=true: SAGAN)", data=DATA,
          ranges={**ADAM_RANGES, **BIGGAN_RANGES}, **DCGAN_GAME, **SHARED, **BIGGAN)
class SNGAN(BigGANTricks, GAN):
    def __init__(self, spec, generator, **config):
        super().__init__(spec, generator, loss="hinge", d_batch_norm=False,
                         spectral_norm=True, **config)
