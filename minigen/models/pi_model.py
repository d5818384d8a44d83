"""pi-model: the Pi-model (Laine and Aila 2017, "Temporal ensembling for semi-supervised
learning", sec. 2.1), semi-supervised.

The same image, augmented twice, should get the same prediction. Each step the batch_size
unlabelled images are each augmented twice (two independent draws of the shared pipeline)
and the labelled images once, all through the classifier in one pass, and

    L = CE(f(labelled), y) + w(t) 1/(B C) sum_b |softmax(f(u'_b)) - softmax(f(u''_b))|^2
    w(t) = consistency exp(-5 (1 - min(t, rampup) / rampup)^2)

with the gradient flowing through both branches (the paper's Algorithm 1: neither is a
fixed target). The weight and its ramp-up are mean-teacher's (10, over 1000 steps), so the
two rows differ only in where the target comes from; 128 unlabelled images a step, the rest
as supervised.
"""
from .. import functional as F
from ..model import Update
from ..representation.losses import sigmoid_rampup
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from . import register
from .semi_base import SemiSupervised


@register("pi-model", "the Pi-model: labels=N plus consistency between the predictions on "
          "two augmentations of each unlabelled image, ramped up", data=IMAGES, labels=50,
          width=32, consistency=10.0, rampup=1000, **AUGMENT, steps=3000, batch_size=128,
          lr=1e-3, ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE,
                           "consistency": "[0, inf)", "rampup": "[0, inf)"})
class PiModel(SemiSupervised):
    def __init__(self, spec, generator, consistency=10.0, rampup=1000, **config):
        super().__init__(spec, generator, **config)
        self.consistency, self.rampup = float(consistency), int(rampup)

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        u = self.unlabelled(batches)
        labelled, first, second = self.classify(self.augment(y, generator),
                                                self.augment(u, generator),
                                                self.augment(u, generator))
        classification = F.cross_entropy(labelled, labels)
        consistency = ((first.softmax(axis=1) - second.softmax(axis=1)) ** 2).mean()
        weight = sigmoid_rampup(self.step_count, self.consistency, self.rampup)
        yield Update("model", classification + weight * consistency,
                     {"classification": classification.item(),
                      "consistency": consistency.item(), "consistency_weight": weight})
