"""vat: virtual adversarial training with entropy minimisation (Miyato et al. 2018,
"Virtual adversarial training: a regularization method for supervised and semi-supervised
learning", VAT+EntMin), semi-supervised.

The classifier's prediction should not change within a small ball around each image, in the
direction where it changes most: the virtual adversarial direction d, the top eigenvector of
the Hessian of r -> KL(p(x) || p(x + r)) at 0, found by power iteration from a random
direction (minigen.representation.semi.adversarial_direction: power_iterations steps of
d <- normalise(grad_d KL(p(x) || p(x + xi d)))). With r_vadv = eps d per image (unit L2
norm over its pixels), each step minimises on all N labelled images and batch_size
unlabelled ones (each augmented once):

    LDS = 1/B sum_b KL(p(u_b) || p(u_b + r_vadv,b))                     (eq. 7; p(u) constant)
    L = CE(f(labelled), y) + weight LDS + entropy_weight 1/B sum_b H(p(u_b))     (VAT+EntMin)

Defaults: weight (the paper's alpha) 1, entropy_weight 1, one power iteration (the paper's
K = 1), eps = 2.0 (about half the mean L2 norm of a digit at x / 16, 3.87; chosen, not
tuned), xi = 1e-3 (the paper's 1e-6 is lost in float32's rounding of x + xi d: see
adversarial_direction), 128 unlabelled images a step, the rest as supervised.
"""
import numpy as np

from .. import functional as F
from ..model import Update
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from ..representation.semi import entropy, virtual_adversarial_loss
from . import register
from .semi_base import SemiSupervised


@register("vat", "virtual adversarial training + entropy minimisation: predictions kept "
          "within eps of the power-iterated adversarial direction, beside labels=N",
          data=IMAGES, labels=50, width=32, eps=2.0, xi=1e-3, power_iterations=1,
          weight=1.0, entropy_weight=1.0, **AUGMENT, steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "eps": "(0, inf)",
                  "xi": "(0, inf)", "power_iterations": "[1, inf)", "weight": "[0, inf)",
                  "entropy_weight": "[0, inf)"})
class VAT(SemiSupervised):
    def __init__(self, spec, generator, eps=2.0, xi=1e-3, power_iterations=1, weight=1.0,
                 entropy_weight=1.0, **config):
        super().__init__(spec, generator, **config)
        if not eps > 0:
            raise ValueError(f"eps={eps}: the radius of the adversarial perturbation must "
                             f"be > 0")
        for key, value in (("eps", eps), ("xi", xi)):
            if not float(value) <= float(np.finfo(np.float32).max):
                raise ValueError(f"{key}={value}: the perturbation is added to float32 "
                                 f"images, so it must be below {np.finfo(np.float32).max:.3g}")
        self.eps, self.xi, self.iterations = float(eps), float(xi), int(power_iterations)
        self.weight, self.entropy_weight = float(weight), float(entropy_weight)

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        u = self.augment(self.unlabelled(batches), generator)
        labelled, unlabelled = self.classify(self.augment(y, generator), u)
        classification = F.cross_entropy(labelled, labels)
        smoothness = virtual_adversarial_loss(self.classifier, u, unlabelled, generator,
                                              self.eps, self.xi, self.iterations)
        spread = entropy(unlabelled)
        yield Update("model", classification + self.weight * smoothness
                     + self.entropy_weight * spread,
                     {"classification": classification.item(), "lds": smoothness.item(),
                      "entropy": spread.item()})
