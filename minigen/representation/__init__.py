"""What the representation-learning models (issue 17: self-supervised and semi-supervised
learning) share: augmentations (augment), the encoder and the classifier on it (encoder),
their losses (losses), labelled subsets (labels), the models' base with the linear probe
(model), and the probe's baselines on raw pixels and an untrained encoder (baselines)."""
