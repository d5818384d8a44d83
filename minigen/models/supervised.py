"""supervised: the baseline of the semi-supervised models (issue 17), a classifier trained
on the labelled subset alone.

`labels=N` keeps N labels by DATA.md's rule (minigen.representation.labels: the N / 10
lowest train-split positions of each class). Every step is all N labelled images, augmented
(the shared augmentations; batch_size is not used), through the classifier = the encoder
(minigen.representation.encoder) and Linear(F, classes), on the cross-entropy

    L = -1/N sum_n log softmax(f(aug(x_n)))_{y_n}

Metrics: `accuracy` (written test_accuracy) and `cross_entropy` of the test images;
`features(x)` = the encoder's, for `minigen probe`. The checked config of the issue is the
default on digits: labels=50, Adam 1e-3, 3000 steps.
"""
from .. import functional as F
from ..autograd import tensor
from ..model import Update
from ..representation.encoder import Classifier
from ..representation.labels import labelled_subset
from ..representation.model import (AUGMENT, AUGMENT_RANGES, IMAGES, LABELS_RANGE,
                                    RepresentationModel, classifier_metrics)
from . import register


@register("supervised", "the labelled subset alone (labels=N), with augmentation: the "
          "baseline of the semi-supervised models", data=IMAGES, labels=50, width=32,
          **AUGMENT, steps=3000, lr=1e-3,
          ranges={**AUGMENT_RANGES, "labels": LABELS_RANGE})
class Supervised(RepresentationModel):
    validation_metric = "accuracy"
    validation_goal = "max"

    def __init__(self, spec, generator, labels=50, width=32, **augment):
        super().__init__(spec, **augment)
        self.labels = int(labels)
        if self.labels < 1 or self.labels % spec.num_classes:
            raise ValueError(f"labels={labels}: the labelled subset keeps the same number of "
                             f"each of the {spec.num_classes} classes, so it must be a "
                             f"positive multiple of {spec.num_classes}")
        self.classifier = Classifier(spec.shape[0], width, spec.num_classes, generator)
        self.labelled = None

    def set_training_split(self, x, y):
        super().set_training_split(x, y)
        self.labelled = labelled_subset(y, self.labels, self.spec.num_classes)

    def labelled_examples(self):
        """The labelled images on [0, 1] (an array) and their labels (a Tensor)."""
        if self.labelled is None:
            raise ValueError(f"{self.registry_name}: the labelled subset comes from the "
                             f"training split (set_training_split)")
        return (self.scale(self.train_x[self.labelled]),
                tensor(self.train_y[self.labelled], device=self.device))

    def updates(self, batches, generator):
        y, labels = self.labelled_examples()
        logits = self.classifier(tensor(self.augment(y, generator)))
        yield Update("model", F.cross_entropy(logits, labels))

    def evaluated(self):
        """The classifier that the metrics and the features are of."""
        return self.classifier

    def features(self, x):
        return self.evaluated().encoder(tensor(self.scale(x)))

    def evaluate(self, batches, final=True):
        return classifier_metrics(self.evaluated(), batches, self.scale)

