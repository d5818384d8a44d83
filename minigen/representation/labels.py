"""Labelled subsets for semi-supervised learning, by DATA.md's rule: `labels=N` keeps N / C
labels per class (C classes), for each class the lowest train-split positions (in the
split's own order) whose label is that class. Every train image, labelled or not, is also
an unlabelled one."""
import numpy as np


def labelled_subset(y, n, classes=None):
    """The positions (sorted) of the n labelled examples of labels y; classes defaults to
    y.max() + 1. n not a multiple of the classes, or more of a class than y holds: an
    error saying so."""
    y = np.asarray(y)
    classes = int(y.max()) + 1 if classes is None else int(classes)
    if n < 1 or n % classes:
        raise ValueError(f"labels={n}: the labelled subset keeps the same number of each of "
                         f"the {classes} classes, so it must be a positive multiple of "
                         f"{classes}")
    per_class = n // classes
    kept = []
    for k in range(classes):
        positions = np.flatnonzero(y == k)
        if len(positions) < per_class:
            raise ValueError(f"labels={n} needs {per_class} examples of class {k}; the "
                             f"train split holds {len(positions)}")
        kept.append(positions[:per_class])
    return np.sort(np.concatenate(kept))
