"""temporal-ensembling: temporal ensembling (Laine and Aila 2017, "Temporal ensembling for
semi-supervised learning", sec. 2.2), semi-supervised.

The target of each unlabelled image is the average of the classifier's past predictions on
it, one per epoch: after each epoch e (a pass over every train image in an order drawn from
the run's generator),

    Z_i <- a Z_i + (1 - a) z_i          z_i: the prediction softmax(f(aug(x_i))) of epoch e
    z~_i = Z_i / (1 - a^e)              the startup bias correction (Z starts at 0)

and through epoch e + 1 the consistency pulls the fresh predictions towards z~ (fixed
targets, no gradient):

    L = CE(f(labelled), y) + w(t) 1/(B C) sum_b |softmax(f(aug(u_b))) - z~_b|^2
    w(t) = consistency exp(-5 (1 - min(t, rampup) / rampup)^2)

and w = 0 until the first epoch has ended (there is no target before it). Each step takes
as many unlabelled images as the trainer's batch (batch_size), but in the model's own epoch
order, so that it knows which image each prediction is of (the last batch of an epoch is
what is left, possibly fewer). Z, the epoch's z, the epoch count e, the order and the place
in it are model state, saved with the checkpoint: a resumed run keeps its ensemble. The
decay a = ensemble_decay is the paper's 0.6; weight and ramp-up are mean-teacher's (10,
over 1000 steps), the rest as supervised.
"""
import numpy as np

from .. import functional as F
from ..autograd import tensor
from ..model import Update
from ..representation.losses import sigmoid_rampup
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE
from . import register
from .semi_base import SemiSupervised


@register("temporal-ensembling", "temporal ensembling: labels=N plus consistency with each "
          "unlabelled image's bias-corrected EMA of past epochs' predictions", data=IMAGES,
          labels=50, width=32, ensemble_decay=0.6, consistency=10.0, rampup=1000,
          **AUGMENT, steps=3000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE, "ensemble_decay": "[0, 1)",
                  "consistency": "[0, inf)", "rampup": "[0, inf)"})
class TemporalEnsembling(SemiSupervised):
    def __init__(self, spec, generator, ensemble_decay=0.6, consistency=10.0, rampup=1000,
                 **config):
        super().__init__(spec, generator, **config)
        if not 0 <= ensemble_decay < 1:
            raise ValueError(f"ensemble_decay={ensemble_decay}: the ensemble's decay must be "
                             f"in [0, 1)")
        self.decay, self.consistency, self.rampup = (float(ensemble_decay),
                                                     float(consistency), int(rampup))
        self.ensemble = self.epoch_predictions = self.order = None
        self.epochs, self.position = 0, 0

    def set_training_split(self, x, y):
        super().set_training_split(x, y)
        self.ensemble = np.zeros((len(x), self.spec.num_classes), np.float32)  # Z
        self.epoch_predictions = np.zeros_like(self.ensemble)                  # z
        self.order, self.position = None, 0

    def targets(self, index):
        """z~ of the images at index: Z / (1 - a^e), after e >= 1 epochs."""
        return self.ensemble[index] / np.float32(1 - self.decay ** self.epochs)

    def next_indices(self, size, generator):
        """The positions of the step's unlabelled images in the epoch's order; a new order
        is drawn where the last epoch ended."""
        if self.order is None:
            self.order, self.position = generator.rng.permutation(len(self.ensemble)), 0
        index = self.order[self.position:self.position + size]
        self.position += len(index)
        return index

    def end_epoch(self):
        """Z <- a Z + (1 - a) z, one more epoch in the count."""
        self.ensemble = self.decay * self.ensemble + (1 - self.decay) * self.epoch_predictions
        self.epochs += 1
        self.order = None

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        index = self.next_indices(len(batches.next().x), generator)
        u = self.scale(self.train_x[index])
        labelled, unlabelled = self.classify(self.augment(y, generator),
                                             self.augment(u, generator))
        classification = F.cross_entropy(labelled, labels)
        p = unlabelled.softmax(axis=1)
        if self.epochs:
            targets = tensor(self.targets(index), device=self.device)
            consistency = ((p - targets) ** 2).mean()
            weight = sigmoid_rampup(self.step_count, self.consistency, self.rampup)
        else:
            consistency, weight = (p * 0.0).sum(), 0.0
        self.epoch_predictions[index] = p.detach().numpy()
        if self.position >= len(self.order):
            self.end_epoch()
        yield Update("model", classification + weight * consistency,
                     {"classification": classification.item(),
                      "consistency": consistency.item(), "consistency_weight": weight,
                      "epochs": self.epochs})

    def extra_state(self):
        return {**super().extra_state(), "ensemble": self.ensemble,
                "epoch_predictions": self.epoch_predictions, "epochs": self.epochs,
                "order": np.zeros(0, np.int64) if self.order is None else self.order,
                "position": self.position}

    def load_extra_state(self, state):
        super().load_extra_state(state)
        self.ensemble = np.asarray(state["ensemble"], np.float32)
        self.epoch_predictions = np.asarray(state["epoch_predictions"], np.float32)
        self.epochs, self.position = int(state["epochs"]), int(state["position"])
        self.order = np.asarray(state["order"]) if len(state["order"]) else None
