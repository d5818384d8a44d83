"""entropy-min: entropy minimisation (Grandvalet and Bengio 2005, "Semi-supervised learning
by entropy minimization"), semi-supervised.

A classifier trained on the labelled images should also be confident on the unlabelled
ones: the decision boundary then passes through regions of low density. Each step takes
all N labelled images and batch_size unlabelled ones, each augmented once, and minimises

    L = CE(f(labelled), y) + w(t) 1/B sum_b H(softmax(f(u_b))),   H(p) = -sum_c p_c log p_c
    w(t) = weight exp(-5 (1 - min(t, rampup) / rampup)^2)

(the paper's lambda is a constant; here it ramps up as the consistency weights of the other
models do, because a confident untrained classifier only reinforces its random guesses).
The gradient flows through the entropy term. Defaults: weight 1, ramped over 1000 steps,
128 unlabelled images a step, the rest as supervised (labels=50, Adam 1e-3, 3000 steps).
"""
from ..model import Update
from ..representation.losses import sigmoid_rampup
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from ..representation.semi import entropy
from . import register
from .semi_base import SemiSupervised


@register("entropy-min", "entropy minimisation: cross-entropy on labels=N plus the entropy "
          "of the predictions on unlabelled images", data=IMAGES, labels=50, width=32,
          weight=1.0, rampup=1000, **AUGMENT, steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "weight": "[0, inf)",
                  "rampup": "[0, inf)"})
class EntropyMin(SemiSupervised):
    def __init__(self, spec, generator, weight=1.0, rampup=1000, **config):
        super().__init__(spec, generator, **config)
        self.weight, self.rampup = float(weight), int(rampup)

    def updates(self, batches, generator):
        classification, unlabelled = self.labelled_and_unlabelled(batches, generator)
        spread = entropy(unlabelled)
        weight = sigmoid_rampup(self.step_count, self.weight, self.rampup)
        yield Update("model", classification + weight * spread,
                     {"classification": classification.item(), "entropy": spread.item(),
                      "entropy_weight": weight})
