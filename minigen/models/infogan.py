"""infogan: InfoGAN (Chen, Duan, Houthooft, Schulman, Sutskever and Abbeel 2016), a GAN
whose generator input is split into noise z and codes c that the game makes
interpretable: a categorical code (`categories` values, uniform) and `continuous` codes
(each U(-1, 1)), G(z, c) the DCGAN generator reading [z, onehot(c_cat), c_cont].

The game adds the mutual information between the codes and the image (eq. 3):

    min_{G,Q} max_D  V_I(D, G, Q) = V(D, G) - lambda L_I(G, Q)                (eq. 5)

where L_I is the variational lower bound on I(c; G(z, c)) (Lemma 5.1, eq. 4):

    L_I(G, Q) = E_{c ~ P(c), x ~ G(z, c)} [log Q(c | x)] + H(c)  <=  I(c; G(z, c))

Q is an auxiliary head on D's body (its last hidden features, shared with D: the extra cost
is one small MLP): logits of the categorical code and the means of the continuous codes,
whose Q(c_j | x) is a Gaussian of standard deviation 1 (the paper's factored Gaussian,
its variance fixed). So, in nats per example,

    log Q(c | x) = log softmax(logits)[c_cat] + sum_j (-(c_j - mu_j)^2 / 2 - log(2 pi) / 2)
    H(c)         = log categories + continuous * log 2

and L_I <= log categories + continuous * (log 2 - log(2 pi) / 2) (Q exact on the category,
its means exact). D and Q update on V's D side minus lambda L_I on a detached fake; G on
its side minus lambda L_I. lambda = mi_weight (1, as the paper for its digits).

Metrics: the base's sample-quality figures, mi_nats (L_I on evaluation samples),
code_accuracy (how often Q's most likely category is the one drawn) and, on labelled
data, category_purity: the share of samples whose class (minigen's feature classifier)
is the most common class of their category, how far the categorical code found the
classes without a label (the unsupervised classification of the paper's figure 2). codes.png sweeps
each code: a panel per code, rows of a fixed z, the categorical code across the columns
(continuous codes 0) and then each continuous code from -2 to 2 (the others fixed).
"""
import math
import os

import numpy as np

from .. import nn, pictures, quality
from ..autograd import no_grad, tensor
from ..functional import log_softmax
from ..gan.model import EVALUATION_SEED, GAN, SAMPLE_BATCH
from ..gan.networks import DCGANGenerator, LEAK, dcgan_init
from ..model import Update
from ..random import Generator
from . import register
from .gan import ADAM_RANGES, SHARED

SWEEP = (-2.0, 2.0)      # the range of a continuous code in codes.png (training: -1 to 1)
PANEL_ROWS = 5


def mutual_information_bound(q, codes, categories, continuous):
    """L_I = log Q(c | x) + H(c) per example (N,), nats: q (N, categories + continuous)
    from Q (logits, then means), codes (N, categories + continuous) as G read them
    (onehot(c_cat), then c_cont)."""
    total = 0.0
    if categories:
        log_q = log_softmax(q[:, :categories], axis=1)
        total = (log_q * codes[:, :categories]).sum(axis=1) + math.log(categories)
    if continuous:
        mu, c = q[:, categories:], codes[:, categories:]
        log_q = (-0.5 * (c - mu) ** 2 - 0.5 * math.log(2 * math.pi)).sum(axis=1)
        total = total + log_q + continuous * math.log(2.0)
    return total


def purity(categories, classes):
    """The share of examples whose class is the most common class of their category."""
    counts = np.zeros((categories.max() + 1, classes.max() + 1), dtype=np.int64)
    np.add.at(counts, (categories, classes), 1)
    return float(counts.max(axis=1).sum() / len(categories))


@register("infogan", "InfoGAN: categorical and continuous codes, the mutual-information "
          "term through an auxiliary Q head on D's body", data=("digits", "fashion-mnist",
                                                                "mnist"),
          loss="nonsaturating", categories=10, continuous=2, mi_weight=1.0, n_critic=1,
          d_lr=2e-4, g_lr=1e-3, d_betas=(0.5, 0.999), g_betas=(0.5, 0.999),
          ranges={**ADAM_RANGES, "categories": "[0, inf)", "continuous": "[0, inf)",
                  "mi_weight": "[0, inf)"}, **SHARED)
class InfoGAN(GAN):
    def __init__(self, spec, generator, categories=10, continuous=2, mi_weight=1.0,
                 **config):
        categories, continuous = int(categories), int(continuous)
        if categories == 1 or categories < 0:
            raise ValueError(f"categories={categories}: a categorical code needs at least "
                             f"2 values (0: none)")
        if continuous < 0:
            raise ValueError(f"continuous={continuous}: the number of continuous codes "
                             f"must be >= 0")
        if categories + continuous == 0:
            raise ValueError("categories=0 and continuous=0: infogan needs at least one "
                             "code")
        if not float(mi_weight) >= 0:
            raise ValueError(f"mi_weight={mi_weight}: lambda must be >= 0")
        self.categories, self.continuous = categories, continuous
        self.mi_weight = float(mi_weight)
        super().__init__(spec, generator, **config)
        features = self.D.head.weight.shape[1]  # D's last hidden width (no minibatch layer)
        self.Q = nn.Sequential(nn.Linear(features, 128, generator=generator),
                               nn.LeakyReLU(LEAK),
                               nn.Linear(128, categories + continuous, generator=generator))

    @property
    def codes(self):
        return self.categories + self.continuous

    def build_generator(self, generator):
        return dcgan_init(DCGANGenerator(self.latent + self.codes, self.spec.shape,
                                         self.channels, self.g_norm, self.reference_size,
                                         generator), generator)

    def players(self):
        """D's player also trains Q (the head it shares D's body with)."""
        players = super().players()
        players["discriminator"].parameters += list(self.Q.parameters())
        return players

    def noise(self, n, generator):
        """[z, onehot(c_cat), c_cont]: z ~ N(0, I), c_cat uniform, c_cont ~ U(-1, 1)."""
        z = generator.normal((n, self.latent)).numpy()
        cat = np.eye(self.categories, dtype=np.float32)[
            generator.rng.integers(0, self.categories, n)] if self.categories \
            else np.zeros((n, 0), dtype=np.float32)
        cont = generator.uniform((n, self.continuous), -1.0, 1.0).numpy()
        return tensor(np.concatenate([z, cat, cont], axis=1), device=self.device)

    def information(self, fake, zc):
        """L_I (eq. 4) per example for fakes G(zc), with Q on D's body."""
        return mutual_information_bound(self.Q(self.D.features(fake)), zc[:, self.latent:],
                                        self.categories, self.continuous)

    def updates(self, batches, generator):
        """Eq. 5: D and Q ascend V - ... on their side, with Q maximising L_I on a
        detached fake; G descends V's G side minus lambda L_I."""
        for _ in range(self.n_critic):
            batch = batches.next()
            real = self.scale(batch.x)
            zc = self.noise(len(real), generator)
            with no_grad():
                fake = self.generate(zc, batch)
            loss, logs = self.d_loss(real, fake, batch, generator)
            mi = self.information(fake, zc).mean()
            yield Update("discriminator", loss - self.mi_weight * mi,
                         {**logs, "mi_nats": mi.item()})
        batch = batches.next()
        zc = self.noise(len(batch.x), generator)
        fake = self.generate(zc, batch)
        loss, logs = self.g_loss(fake, batch, generator)
        yield Update("generator", loss - self.mi_weight * self.information(fake, zc).mean(),
                     logs)

    def evaluate(self, batches, final=True):
        metrics = super().evaluate(batches, final)
        generator = Generator([*EVALUATION_SEED, 1])
        mi, drawn, guessed, images = 0.0, [], [], []
        with no_grad():
            for start in range(0, self.eval_samples, SAMPLE_BATCH):
                zc = self.noise(min(SAMPLE_BATCH, self.eval_samples - start), generator)
                fake = self.generate(zc)
                q = self.Q(self.D.features(fake))
                codes = zc[:, self.latent:]
                mi += float(mutual_information_bound(q, codes, self.categories,
                                                     self.continuous).numpy().sum())
                drawn.append(codes.numpy()[:, :self.categories].argmax(axis=1))
                guessed.append(q.numpy()[:, :self.categories].argmax(axis=1))
                images.append(self.unscale(fake.numpy()))
        metrics["mi_nats"] = mi / self.eval_samples
        if self.categories:
            drawn = np.concatenate(drawn)
            metrics["code_accuracy"] = float((np.concatenate(guessed) == drawn).mean())
            if self.spec.num_classes:
                _, probs = quality.reference(self.spec.name).features(np.concatenate(images))
                metrics["category_purity"] = purity(drawn, probs.argmax(axis=1))
        return metrics

    def draw(self, samples, path, reference):
        super().draw(samples, path, reference)
        self.draw_codes(os.path.join(os.path.dirname(path), "codes.png"))

    def draw_codes(self, path):
        """codes.png: one panel per code (see the module docstring), a blank row between
        panels."""
        columns = max(self.categories, 8)
        stream = Generator(0)
        z = stream.normal((PANEL_ROWS, self.latent)).numpy()
        panels = []
        if self.categories:
            values = np.arange(columns) % self.categories
            panels.append([self._codes_row(z[r], values, None, None) for r in range(PANEL_ROWS)])
        for j in range(self.continuous):
            sweep = np.linspace(*SWEEP, columns)
            panels.append([self._codes_row(z[r], np.full(columns, r % max(self.categories, 1)),
                                           j, sweep) for r in range(PANEL_ROWS)])
        blank = np.full((columns, self.latent + self.codes), np.nan, dtype=np.float32)
        rows = [row for panel in panels for row in panel + [blank]][:-1]
        inputs = np.concatenate(rows)
        images = np.full((len(inputs),) + tuple(self.spec.shape), (self.spec.levels - 1) / 2)
        drawn = ~np.isnan(inputs[:, 0])
        with no_grad():
            images[drawn] = self.unscale(self.G(tensor(inputs[drawn],
                                                       device=self.device)).numpy())
        pictures.image_grid(images, path, levels=self.spec.levels, columns=columns)

    def _codes_row(self, z, categories, j, sweep):
        """G's inputs for one row: z fixed, the categories given per column, continuous
        code j swept (the others 0)."""
        n = len(categories)
        cont = np.zeros((n, self.continuous), dtype=np.float32)
        if j is not None:
            cont[:, j] = sweep
        cat = np.eye(self.categories, dtype=np.float32)[categories] if self.categories \
            else np.zeros((n, 0), dtype=np.float32)
        return np.concatenate([np.repeat(z[None], n, axis=0), cat, cont], axis=1)
