"""pix2pix: a conditional GAN from image to image (Isola, Zhu, Zhou and Efros 2017), here on
a task built from the data: inpainting. The input x is an image with its lower half set
to 0 (black, the background of digits and of fashion-mnist), the target y the whole
image; G sees x alone, D sees pairs (eq. 4):

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G)
    L_cGAN(G, D) = E_{x,y} log D(x, y) + E_{x,z} log(1 - D(x, G(x, z)))     (eq. 1)
    L_L1(G)      = E_{x,y,z} ||y - G(x, z)||_1                               (eq. 3)

with lambda = l1_weight = 100, the paper's. The L1 term alone would give the blurry mean
of the plausible lower halves; D, which judges each 12x12 patch of the pair (PatchGAN),
pushes G towards one sharp completion. G's noise z is the dropout mask of its decoder
(minigen/gan/image_to_image.py), drawn by noise() in training only. Both losses are means
over pixels (L1, on the [-1, 1] scale) and over D's patches (the non-saturating game).

Metrics on the test split: inpaint_l1 and inpaint_mse, the mean absolute and squared
error per pixel of the inpainted lower half on the [0, 1] scale (G's output against the
hidden truth), the base's sample-quality figures of the completed test images, and D's
mean output on the true and the inpainted pairs.

Samples: pix2pix draws a completion for a given input, so `sample` inpaints inputs made
from training images the model keeps (the first `bank` it trains on, model state);
inpainting.png beside samples.png shows input | output | target for training images.
"""
import os

import numpy as np

from .. import pictures, quality
from ..autograd import no_grad, tensor
from ..gan.image_to_image import PatchDiscriminator, UNetGenerator
from ..gan.model import GAN
from ..ops import where
from . import register
from .gan import ADAM_GAME_RANGES, DCGAN_GAME

PICTURE_ROWS = 8


@register("pix2pix", "pix2pix on inpainting the lower half of an image: U-Net G, PatchGAN "
          "D on (input, output) pairs, L1 weight 100", data=("digits", "fashion-mnist",
                                                               "mnist"),
          loss="nonsaturating", channels=32, l1_weight=100.0, dropout=0.5, bank=64,
          **DCGAN_GAME, eval_samples=2000, steps=2000, batch_size=64,
          ranges={**ADAM_GAME_RANGES, "channels": "[1, inf)", "l1_weight": "[0, inf)",
                  "dropout": "[0, 1)", "bank": "[1, inf)"})
class Pix2Pix(GAN):
    def __init__(self, spec, generator, l1_weight=100.0, dropout=0.5, bank=64, **config):
        if not float(l1_weight) >= 0:
            raise ValueError(f"l1_weight={l1_weight}: the weight of the L1 term must be "
                             f">= 0")
        if int(bank) < 1:
            raise ValueError(f"bank={bank}: sampling needs at least 1 remembered image")
        self.l1_weight, self.dropout, self.bank_size = float(l1_weight), dropout, int(bank)
        self.bank = np.zeros((0,) + tuple(spec.shape), dtype=np.uint8)
        super().__init__(spec, generator, **config)
        self.validation_metric = "inpaint_l1"

    def build_generator(self, generator):
        return UNetGenerator(self.spec.shape, self.channels, self.dropout, generator)

    def build_discriminator(self, generator):
        return PatchDiscriminator(self.spec.shape, self.channels, generator)

    # the task -----------------------------------------------------------------------------
    def lower_half(self, shape):
        """The mask of the hidden part (True in the lower half), broadcast to shape."""
        rows = np.arange(shape[-2]) >= shape[-2] // 2
        return np.broadcast_to(rows[:, None], shape[-2:])

    def masked(self, y):
        """The input x of the task: y (network scale) with its lower half at -1 (level 0)."""
        return where(self.lower_half(y.shape), -1.0, y)

    # the game -----------------------------------------------------------------------------
    def noise(self, n, generator):
        """z of pix2pix: the dropout mask of G's decoder, in training; none otherwise."""
        return self.G.draw_keep(n, generator, self.device) if self.training else None

    def generate(self, z, batch=None):
        return self.G(self.masked(self.scale(batch.x)), keep=z)

    def discriminate(self, x, batch=None):
        """D's patch logits on the pair (the batch's masked input, x)."""
        return self.D(self.masked(self.scale(batch.x)), x)

    def features(self, x):
        """D's last hidden maps on the true pair (the masked x, x), flattened, for the
        linear probe."""
        y = self.scale(x)
        return self.D.hidden(self.masked(y), y).reshape(len(x), -1)

    def g_loss(self, fake, batch, generator):
        """L_cGAN's generator side plus lambda L_L1 (eq. 4)."""
        loss, logs = super().g_loss(fake, batch, generator)
        l1 = (fake - self.scale(batch.x)).abs().mean()
        return loss + self.l1_weight * l1, {**logs, "l1": l1.item()}

    def updates(self, batches, generator):
        if len(self.bank) >= self.bank_size:
            yield from super().updates(batches, generator)
            return
        seen = _Seen(batches)  # the first training images become the inputs of sample()
        yield from super().updates(seen, generator)
        self.bank = np.concatenate([self.bank, *seen.images])[:self.bank_size]

    # evaluation -------------------------------------------------------------------------
    def inpaint(self, images):
        """G's output (NumPy, network scale) for images (uint8 levels), no dropout."""
        with no_grad():
            return self.G(self.masked(self.scale(tensor(images, device=self.device)))).numpy()

    def evaluate(self, batches, final=True):
        totals, count, completions = {}, 0, []
        hidden = None
        with no_grad():
            for batch in batches:
                y = self.scale(batch.x)
                out = self.G(self.masked(y))
                hidden = self.lower_half(y.shape) if hidden is None else hidden
                error = (out.numpy() - y.numpy()).astype(np.float64)[..., hidden] / 2.0
                sums = {"inpaint_l1": np.abs(error).mean(axis=(1, 2)).sum(),
                        "inpaint_mse": (error ** 2).mean(axis=(1, 2)).sum(),
                        "d_real": self._d_sum(self.discriminate(y, batch)),
                        "d_fake": self._d_sum(self.discriminate(out, batch))}
                for key, value in sums.items():
                    totals[key] = totals.get(key, 0.0) + float(value)
                count += len(y)
                completions.append(self.unscale(out.numpy()))
        metrics = {key: value / count for key, value in totals.items()}
        completed = np.concatenate(completions)[:self.eval_samples]
        metrics.update(quality.image_quality(completed, self.spec))
        return metrics

    def _d_sum(self, logits):
        """The sum over examples of D's mean output over its patches."""
        return self.d_output(logits).numpy().astype(np.float64).reshape(len(logits), -1) \
            .mean(axis=1).sum()

    # samples ------------------------------------------------------------------------------
    def sample(self, n, generator, labels=None):
        """Completions of n inputs made from the remembered training images (drawn at
        random with replacement)."""
        if not len(self.bank):
            raise ValueError("pix2pix samples by inpainting the training images it has "
                             "seen; train it for at least one step first")
        chosen = self.bank[generator.rng.integers(0, len(self.bank), n)]
        return self.unscale(self.inpaint(chosen))

    def draw(self, samples, path, reference):
        super().draw(samples, path, reference)
        self.inpainting_picture(reference[:PICTURE_ROWS],
                                os.path.join(os.path.dirname(path), "inpainting.png"))

    def inpainting_picture(self, images, path):
        """Rows of input | output | target for images (uint8 levels)."""
        target = np.asarray(images)
        x = self.unscale(self.masked(self.scale(tensor(target, device=self.device))).numpy())
        rows = np.stack([x, self.unscale(self.inpaint(target)), target], axis=1)
        pictures.image_grid(rows.reshape((-1,) + target.shape[1:]), path,
                            levels=self.spec.levels, columns=3)

    def extra_state(self):
        return {**super().extra_state(), "bank": self.bank}

    def load_extra_state(self, state):
        super().load_extra_state(state)
        self.bank = np.asarray(state["bank"], dtype=np.uint8).reshape(
            (-1,) + tuple(self.spec.shape))


class _Seen:
    """The step's batches, passed on, with their images kept (uint8 NumPy)."""

    def __init__(self, batches):
        self.batches, self.images = batches, []

    def next(self):
        batch = self.batches.next()
        self.images.append(batch.x.numpy().astype(np.uint8))
        return batch
