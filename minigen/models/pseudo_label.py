"""pseudo-label: pseudo-labelling (Lee 2013, "Pseudo-Label: the simple and efficient
semi-supervised learning method"), with a confidence threshold, semi-supervised.

The classifier labels the unlabelled images itself: each step its own prediction on an
augmented unlabelled image, where the largest class probability reaches the threshold,
becomes a hard label y' = argmax_c p_c (a constant: no gradient flows through the choice),
and the image is trained on as if labelled:

    L = CE(f(labelled), y) + w(t) 1/B sum_b [max_c p_bc >= threshold] CE(f(u_b), y'_b)
    w(t) = weight exp(-5 (1 - min(t, rampup) / rampup)^2)

Lee takes every argmax (threshold 0 in effect) and ramps the weight up linearly after a
delay; the threshold (0.95 by default, as FixMatch's) keeps the unsure guesses out, and the
ramp is the shared sigmoid one. The mean is over the whole unlabelled batch. Defaults:
threshold 0.95, weight 1 ramped over 1000 steps, 128 unlabelled images a step, the rest as
supervised.
"""
from .. import functional as F
from ..autograd import tensor
from ..model import Update
from ..representation.losses import sigmoid_rampup
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from ..representation.semi import confident
from . import register
from .semi_base import SemiSupervised


@register("pseudo-label", "pseudo-labelling: the classifier's own confident predictions "
          "(above threshold) on unlabelled images as hard labels, beside labels=N",
          data=IMAGES, labels=50, width=32, threshold=0.95, weight=1.0, rampup=1000,
          **AUGMENT, steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "threshold": "(0, 1]",
                  "weight": "[0, inf)", "rampup": "[0, inf)"})
class PseudoLabel(SemiSupervised):
    def __init__(self, spec, generator, threshold=0.95, weight=1.0, rampup=1000, **config):
        super().__init__(spec, generator, **config)
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold={threshold}: a confidence threshold is a "
                             f"probability in (0, 1]")
        self.threshold, self.weight, self.rampup = float(threshold), float(weight), int(rampup)

    def pseudo_labels(self, logits):
        """The hard labels argmax_c p_c of the logits' predictions and the mask (arrays) of
        those whose probability reaches the threshold."""
        p = logits.detach().softmax(axis=1).data
        return p.argmax(axis=1), confident(p, self.threshold)

    def updates(self, batches, generator):
        classification, unlabelled = self.labelled_and_unlabelled(batches, generator)
        guesses, mask = self.pseudo_labels(unlabelled)
        pseudo = (F.cross_entropy(unlabelled, tensor(guesses, device=self.device),
                                  reduction="none")
                  * tensor(mask, device=self.device)).mean()
        weight = sigmoid_rampup(self.step_count, self.weight, self.rampup)
        yield Update("model", classification + weight * pseudo,
                     {"classification": classification.item(), "pseudo_label": pseudo.item(),
                      "confident_share": float(mask.mean()), "pseudo_weight": weight})
