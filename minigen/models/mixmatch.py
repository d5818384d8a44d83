"""mixmatch: MixMatch (Berthelot et al. 2019, "MixMatch: a holistic approach to
semi-supervised learning", Algorithm 1), semi-supervised.

Each step: the N labelled images augmented once, X^ = (aug(x), onehot(y)); each of the B
unlabelled images augmented K times, its label guessed as the sharpened mean of the K
predictions (no gradient),

    q_b = Sharpen(1/K sum_k p(y | aug_k(u_b)), T),   Sharpen(p, T)_c = p_c^(1/T) / sum_j p_j^(1/T)

and U^ = the K B augmented images, each with its q_b. W = X^ and U^ together, shuffled (by
the run's generator); then MixUp, one lambda per pair, lambda' = max(lambda, 1 - lambda),
lambda ~ Beta(alpha, alpha):

    X' = MixUp(X^_i, W_i),   U' = MixUp(U^_i, W_(N+i))
    L = 1/|X'| sum H(p', f(x'))  +  lambda_U(t) 1/(C |U'|) sum |q' - softmax(f(u'))|^2

(eqs. 2-5: cross-entropy with the mixed targets on X', the L2 loss on U'), lambda_U ramped
up linearly to `weight` over `rampup` steps as the paper does over its first 16,000.
Defaults: the paper's K = 2 (augmentations), T = 0.5 (temperature), alpha = 0.75 and
lambda_U = 100 (weight), ramped over 1000 of the 3000 steps; 128 unlabelled images a step,
the rest as supervised.
"""
from .. import backend
from .. import functional as F
from ..autograd import no_grad, tensor
from ..model import Update
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from ..representation.semi import linear_rampup, mixup, sharpen, soft_cross_entropy
from . import register
from .semi_base import SemiSupervised


@register("mixmatch", "MixMatch: K augmentations, guessed labels sharpened (T), mixup "
          "(Beta(alpha, alpha)) of labelled and unlabelled, L2 unlabelled loss",
          data=IMAGES, labels=50, width=32, augmentations=2, temperature=0.5, alpha=0.75,
          weight=100.0, rampup=1000, **AUGMENT, steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "augmentations": "[1, inf)",
                  "temperature": "(0, inf)", "alpha": "(0, inf)", "weight": "[0, inf)",
                  "rampup": "[0, inf)"})
class MixMatch(SemiSupervised):
    def __init__(self, spec, generator, augmentations=2, temperature=0.5, alpha=0.75,
                 weight=100.0, rampup=1000, **config):
        super().__init__(spec, generator, **config)
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: the sharpening temperature must "
                             f"be > 0")
        if not alpha > 0:
            raise ValueError(f"alpha={alpha}: mixup's Beta(alpha, alpha) needs alpha > 0")
        if augmentations < 1:
            raise ValueError(f"augmentations={augmentations}: K must be at least 1")
        self.k, self.temperature, self.alpha = int(augmentations), float(temperature), \
            float(alpha)
        self.weight, self.rampup = float(weight), int(rampup)

    def guess_labels(self, views):
        """Sharpen(1/K sum_k p(y | view_k), T) of K arrays of views of the same images."""
        with no_grad():
            p = self.classifier(tensor(backend.xp_of(views[0]).concatenate(views)))
            p = p.softmax(axis=1).data.reshape(len(views), len(views[0]), -1).mean(axis=0)
        return sharpen(p, self.temperature)

    def mixed_batches(self, y, labels, u, generator):
        """X' and U' with their targets (arrays), in the order of Algorithm 1."""
        xp = backend.xp_of(y)
        labelled = self.augment(y, generator)
        views = [self.augment(u, generator) for _ in range(self.k)]
        guesses = self.guess_labels(views)
        inputs = xp.concatenate([labelled] + views)
        targets = xp.concatenate([F.one_hot(labels, self.spec.num_classes).data]
                                 + [guesses] * self.k)
        shuffle = backend.to_device(generator.rng.permutation(len(inputs)),
                                    backend.device_of(y))
        mixed, mixed_targets, _ = mixup(inputs, targets, inputs[shuffle], targets[shuffle],
                                        generator, self.alpha)
        n = len(y)
        return mixed[:n], mixed_targets[:n], mixed[n:], mixed_targets[n:]

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        u = self.unlabelled(batches)
        x_mixed, p_mixed, u_mixed, q_mixed = self.mixed_batches(y, labels, u, generator)
        labelled, unlabelled = self.classify(x_mixed, u_mixed)
        supervised = soft_cross_entropy(labelled, p_mixed)
        consistency = ((unlabelled.softmax(axis=1)
                        - tensor(q_mixed, device=self.device)) ** 2).mean()
        weight = linear_rampup(self.step_count, self.weight, self.rampup)
        yield Update("model", supervised + weight * consistency,
                     {"classification": supervised.item(), "consistency": consistency.item(),
                      "consistency_weight": weight})
