"""The base of the self-supervised models of issue 17 (the pretext tasks, the contrastive
models, deepcluster): each writes one `pretext_loss(y, generator)` on images y on [0, 1]
(an array on the model's device) and the base does the rest.

    training      y = aug(x / (K - 1)), the config's augmentation (minigen.representation
                  .augment), then one update of the pretext loss
    evaluation    the same loss (and the logs it returns) on the un-augmented test images,
                  its draws from a fixed seed so every evaluation sees the same task;
                  at the end `linear_probe_acc` on `features(x)` (the linear probe of
                  minigen.representation.model, the figure `minigen probe RUN` gives)
    features      `embed(y)`: by default the shared encoder's 4w features

A model whose features are not the shared encoder's (cpc, mae) overrides `embed`; one
without the shared encoder (mae) passes width=None.
"""
import numpy as np

from ..autograd import no_grad, tensor
from ..model import Update
from ..random import Generator
from .encoder import Encoder
from .model import RepresentationModel

EVALUATION_SEED = 0  # the draws of the test task, the same at every evaluation


def check_positive(key, value):
    """value > 0 (a temperature, a weight that divides), else one clear error."""
    if not value > 0:
        raise ValueError(f"{key}={value}: must be > 0")
    return float(value)


class SelfSupervisedModel(RepresentationModel):
    validation_metric = "pretext_loss"

    def __init__(self, spec, generator, width=32, **augment):
        super().__init__(spec, **augment)
        if width is not None:
            self.encoder = Encoder(spec.shape[0], width, generator)

    def pretext_loss(self, y, generator):
        """(loss, logs): the scalar loss Tensor of the task on images y, and numbers to log
        (floats)."""
        raise NotImplementedError

    def updates(self, batches, generator):
        y = self.augment(self.scale(batches.next().x), generator)
        loss, logs = self.pretext_loss(y, generator)
        yield Update("model", loss, logs)

    def embed(self, y):
        """The features (N, F) Tensor of images y on [0, 1]."""
        return self.encoder(tensor(y))

    def features(self, x):
        return self.embed(self.scale(x))

    def evaluate(self, batches, final=True):
        totals, count, features, labels = {}, 0, [], []
        generator = Generator(EVALUATION_SEED)
        with no_grad():
            for batch in batches:
                y = self.scale(batch.x)
                if len(y) > 1:  # a contrastive task needs a negative
                    loss, logs = self.pretext_loss(y, generator)
                    for key, value in {"pretext_loss": loss.item(), **logs}.items():
                        totals[key] = totals.get(key, 0.0) + float(value) * len(y)
                    count += len(y)
                if final:
                    features.append(self.embed(y).numpy().reshape(len(y), -1))
                    labels.append(batch.labels.numpy())
        metrics = {key: value / max(count, 1) for key, value in totals.items()}
        if final:
            metrics["linear_probe_acc"] = self.linear_probe(
                np.concatenate(features).astype(np.float64), np.concatenate(labels))
        return metrics
