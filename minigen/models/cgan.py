"""cgan: the class-conditional GAN (Mirza and Osindero 2014, "Conditional Generative
Adversarial Nets", eq. 2), both players told the label y:

    min_G max_D  E_{x,y} log D(x | y) + E_{z,y} log(1 - D(G(z | y) | y))

G is the DCGAN generator reading [z, onehot(y)] (its first Linear takes latent + classes
inputs); D is the DCGAN discriminator reading the image with onehot(y) as `classes` more
channels, channel k all ones where the label is k. D now judges whether an image is a
real example of the class it is told, so G has to draw the class it is asked for.
Training pairs each fake with the labels of the real batch of the same update (the data's
class frequencies); `minigen sample RUN --label K` draws class K, and samples without a
label go through the classes in turn.

BigGAN's pieces are config keys here (BigGAN is a class-conditional GAN):
`self_attention=true` (SAGAN's block at half size in G and D), `orthogonal=BETA` (the
orthogonal penalty on G's weights) and `truncation=T` (z drawn from the normal truncated
at +-T when sampling and evaluating).

Metrics: the base's sample-quality figures (fid_local, kid_local, is_local, precision,
recall) on eval_samples samples with the classes in turn, label_accuracy (the share of
those samples that minigen's feature classifier assigns to the label they were drawn
for: how well G obeys the label; the test images score the classifier's accuracy), and
d_real / d_fake with each image's own label.
"""
import os

import numpy as np

from .. import pictures, quality
from ..autograd import no_grad, tensor
from ..functional import one_hot
from ..gan.biggan import BigGANTricks
from ..gan.model import EVALUATION_SEED, GAN, SAMPLE_BATCH, draw_losses, find_log
from ..gan.networks import DCGANDiscriminator, DCGANGenerator, dcgan_init
from ..model import Batch
from ..ops import concatenate
from ..random import Generator
from . import register
from .gan import ADAM_RANGES, BIGGAN, BIGGAN_RANGES, DCGAN_GAME, SHARED

IMAGES = ("digits", "fashion-mnist", "mnist", "digits-bin", "fashion-mnist-bin")


@register("cgan", "class-conditional GAN: DCGAN G and D told the label; BigGAN's "
          "self-attention, orthogonal penalty and truncation as config keys", data=IMAGES,
          loss="nonsaturating", **DCGAN_GAME, **BIGGAN, ranges={**ADAM_RANGES, **BIGGAN_RANGES},
          **SHARED)
class ConditionalGAN(BigGANTricks, GAN):
    def __init__(self, spec, generator, **config):
        if not spec.num_classes:
            raise ValueError(f"cgan: {spec.name} has no labels to condition on")
        self.num_classes = int(spec.num_classes)
        super().__init__(spec, generator, **config)

    def build_generator(self, generator):
        return dcgan_init(DCGANGenerator(self.latent + self.num_classes, self.spec.shape,
                                         self.channels, self.g_norm, self.reference_size,
                                         generator, self.self_attention), generator)

    def build_discriminator(self, generator):
        c, h, w = self.spec.shape
        return dcgan_init(DCGANDiscriminator((c + self.num_classes, h, w), self.channels,
                                             self.d_batch_norm, self.minibatch_kernels,
                                             self.spectral_norm, generator,
                                             self.self_attention), generator)

    def labels(self, n, batch):
        """The labels of a batch (a Tensor), or for a batch without them the classes in
        turn."""
        if batch is not None and batch.labels is not None:
            return batch.labels
        return tensor(np.arange(n) % self.num_classes, device=self.device)

    def generate(self, z, batch=None):
        """G(z | y): z and onehot(y) side by side."""
        return self.G(concatenate([z, one_hot(self.labels(len(z), batch),
                                              self.num_classes)], axis=1))

    def discriminate(self, x, batch=None):
        """D(x | y): onehot(y) as constant channels beside the image's own."""
        n, _, h, w = x.shape
        code = one_hot(self.labels(n, batch), self.num_classes).reshape(n, -1, 1, 1)
        return self.D(concatenate([x, code.broadcast_to((n, self.num_classes, h, w))],
                                  axis=1))

    def evaluate(self, batches, final=True):
        held_out = [(b.x.numpy(), b.labels.numpy()) for b in batches]
        x = np.concatenate([x for x, _ in held_out])
        y = np.concatenate([y for _, y in held_out])
        wanted = np.arange(self.eval_samples) % self.num_classes
        samples = self.sample(self.eval_samples, Generator(EVALUATION_SEED), wanted)
        metrics = quality.image_quality(samples, self.spec)
        _, probs = quality.reference(self.spec.name).features(samples)
        metrics["label_accuracy"] = float((probs.argmax(axis=1) == wanted).mean())
        metrics["d_real"] = self.labelled_d_mean(self.scale(x), y)
        metrics["d_fake"] = self.labelled_d_mean(self.scale(samples), wanted)
        return metrics

    def labelled_d_mean(self, x, labels):
        """D's mean output (as the logs report it) over images x (network scale, NumPy)
        told their labels, SAMPLE_BATCH at a time."""
        total = 0.0
        with no_grad():
            for start in range(0, len(x), SAMPLE_BATCH):
                part = slice(start, start + SAMPLE_BATCH)
                batch = Batch(None, tensor(labels[part], device=self.device))
                out = self.discriminate(tensor(x[part], device=self.device), batch)
                total += float(self.d_output(out).numpy().astype(np.float64).sum())
        return total / len(x)

    def draw(self, samples, path, reference):
        """samples.png with one class per column (samples drawn with the classes in turn),
        losses.png beside it."""
        columns = self.num_classes if len(samples) > self.num_classes else None
        pictures.image_grid(samples, path, levels=self.spec.levels, columns=columns)
        log = find_log(path)
        if log is not None:
            draw_losses(log, os.path.join(os.path.dirname(path), "losses.png"))
