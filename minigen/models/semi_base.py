"""The base of the semi-supervised models of issue 17 beyond mean-teacher (entropy-min,
pseudo-label, vat, pi-model, temporal-ensembling, mixmatch, uda, noisy-student): supervised's
classifier (the encoder and Linear(F, classes)) and labelled subset (labels=N, DATA.md's
rule), a batch of batch_size unlabelled images a step (any train image: every one is also
unlabelled), and the count t of steps done, which the weights of the unlabelled losses
ramp up with; t is saved with the checkpoint, so a resumed run ramps on where it stopped.
The classifier is evaluated (`accuracy`, written test_accuracy, and `cross_entropy`) unless
a model says otherwise (Supervised.evaluated)."""
import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import tensor
from .supervised import Supervised


class SemiSupervised(Supervised):
    def __init__(self, spec, generator, **config):
        super().__init__(spec, generator, **config)
        self.step_count = 0

    def unlabelled(self, batches):
        """The step's unlabelled images on [0, 1] (an array)."""
        return self.scale(batches.next().x)

    def classify(self, *views):
        """The classifier's logits of each batch of images (arrays), in one pass."""
        logits = self.classifier(tensor(backend.xp_of(views[0]).concatenate(views)))
        ends = np.cumsum([len(v) for v in views])
        return [logits[end - len(v):end] for v, end in zip(views, ends)]

    def labelled_and_unlabelled(self, batches, generator):
        """The step of a model with one view of each: the cross-entropy on the labelled
        images (augmented) and the logits of the step's unlabelled images (augmented, drawn
        after the labelled ones), in one pass."""
        y, labels = self.labelled_examples()
        u = self.unlabelled(batches)
        labelled, unlabelled = self.classify(self.augment(y, generator),
                                             self.augment(u, generator))
        return F.cross_entropy(labelled, labels), unlabelled

    def after_update(self, player):
        self.step_count += 1

    def extra_state(self):
        return {"step_count": self.step_count}

    def load_extra_state(self, state):
        self.step_count = int(state["step_count"])
