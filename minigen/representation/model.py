"""The base of the representation-learning models (issue 17): images seen as x / (K - 1)
on [0, 1] (DATA.md), augmented by the config's pipeline (minigen.representation.augment),
the run's training split held for what needs it whole (the linear probe, a labelled
subset), and features for the probe.

The augmentation's config keys, shared by every model here (the issue's checked configs
on digits are the defaults): shift (pixels, 0: none), crop_scale (the smallest side share
of a random crop resized back; 1: none), flip and rotate (true/false), brightness (low,high
of the factor), erase and erase_p (a random erase x erase square set to 0 with probability
erase_p), noise (the standard deviation of added Gaussian noise).

The linear probe (`linear_probe_acc`, at the end of training): minigen.eval.linear_probe,
a logistic regression (scikit-learn, C = 1.0, lbfgs, max_iter 2000) on the standardised
features of the run's training split, scored on the test split; `minigen probe RUN` gives
the same figure.
"""
import numpy as np

from .. import eval as evaluation
from .. import functional as F
from ..autograd import Tensor, no_grad, tensor
from ..model import Model
from . import augment

IMAGES = ("digits", "fashion-mnist", "mnist")
AUGMENT = dict(shift=1, crop_scale=1.0, flip=False, rotate=False, brightness=(0.8, 1.2),
               erase=3, erase_p=0.5, noise=0.05)
AUGMENT_RANGES = {"shift": "[0, inf)", "crop_scale": "(0, 1]", "brightness": "[0, inf)",
                  "erase": "[0, inf)", "erase_p": "[0, 1]", "noise": "[0, inf)",
                  "width": "[1, inf)"}
LABELS_RANGE = "[10, inf)"  # labels=N: a multiple of the 10 classes of every dataset here


class RepresentationModel(Model):
    draws_samples = False

    def __init__(self, spec, shift=1, crop_scale=1.0, flip=False, rotate=False,
                 brightness=(0.8, 1.2), erase=3, erase_p=0.5, noise=0.05):
        super().__init__(spec)
        if spec.kind != "discrete" or not spec.is_image or not spec.num_classes:
            raise ValueError(f"{self.registry_name} learns from labelled images (C, H, W) "
                             f"of discrete levels, not {spec.kind} data of shape {spec.shape}")
        self.augment = augment.pipeline(spec.shape, shift, crop_scale, flip, rotate,
                                        brightness, erase, erase_p, noise)
        self.train_x = self.train_y = None

    def set_training_split(self, x, y):
        self.train_x, self.train_y = x, y

    def sample(self, n, generator, labels=None):
        raise ValueError(f"{self.registry_name} learns features of images, not their "
                         f"distribution: it has no samples to draw")

    def scale(self, x):
        """Images (a Tensor or array of levels) as a float32 array x / (K - 1) on the model's
        device."""
        if not isinstance(x, Tensor):
            x = tensor(np.asarray(x), device=self.device)
        return x.data.astype(np.float32) / np.float32(self.spec.levels - 1)

    def linear_probe(self, test_features, test_labels):
        """linear_probe_acc: the probe fitted on the training split's features, scored on
        the given test features."""
        if self.train_x is None:
            raise ValueError(f"{self.registry_name}: the linear probe needs the training "
                             f"split (set_training_split)")
        train = evaluation.encoder_features(self, self.train_x)
        return evaluation.linear_probe(train, self.train_y, test_features, test_labels)


def classifier_metrics(classifier, batches, scale, prefix=""):
    """{accuracy, cross_entropy} (means per example) of a classifier on labelled batches,
    each key with the prefix."""
    correct, total, count = 0, 0.0, 0
    with no_grad():
        for batch in batches:
            logits = classifier(tensor(scale(batch.x)))
            labels = batch.labels.numpy()
            correct += int((logits.numpy().argmax(axis=1) == labels).sum())
            total += float(F.cross_entropy(logits, batch.labels, reduction="sum").item())
            count += len(labels)
    return {f"{prefix}accuracy": correct / count, f"{prefix}cross_entropy": total / count}
