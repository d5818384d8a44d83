"""What the tests of the exact-likelihood models share (pixelcnn, gated-pixelcnn,
pixelcnn++, pixelsnail, wavenet, transformer, charrnn): on a shape small enough to list
every value, the probabilities sum to one and samples come at those probabilities.

    from likelihoodcheck import (all_values, assert_probabilities_sum_to_one,
                                 assert_samples_follow_nll, correlated_colour_images)
"""
import itertools

import numpy as np
import pytest

import minigen as mg
from minigen.random import Generator


def all_values(shape, levels):
    """Every array of the shape (an image (C, H, W) or a sequence (T,)) with values in
    0..levels-1, stacked: (levels^D,) + shape, uint8."""
    values = itertools.product(range(levels), repeat=int(np.prod(shape)))
    return np.array(list(values), dtype=np.uint8).reshape((-1,) + tuple(shape))


def assert_probabilities_sum_to_one(model, shape, levels, labels=None):
    """exp(-nll) over all_values(shape, levels) sums to 1 (to float32 rounding), for the
    class `labels` of a conditional model; returns the nll of each value, float64."""
    values = all_values(shape, levels)
    given = () if labels is None else (mg.tensor(np.full(len(values), labels)),)
    nll = model.nll(mg.tensor(values), *given).numpy().astype(np.float64)
    assert nll.shape == (len(values),) and np.isfinite(nll).all()
    assert np.exp(-nll).sum() == pytest.approx(1.0, abs=1e-5)
    return nll


def assert_samples_follow_nll(model, shape, levels, n=20000, seed=11):
    """The frequency of each of the few possible values among n samples matches exp(-nll)
    within 4.5 standard errors: the sampler draws from p(x) itself."""
    values = all_values(shape, levels)
    p = np.exp(-assert_probabilities_sum_to_one(model, shape, levels))
    drawn = model.sample(n, Generator(seed)).reshape(n, -1)
    index = {tuple(v.ravel()): i for i, v in enumerate(values)}
    counts = np.bincount([index[tuple(d)] for d in drawn], minlength=len(values))
    stderr = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(counts / n - p) < 4.5 * stderr + 1e-4), (counts / n, p)


def correlated_colour_images(n, rng):
    """4x4 binary RGB images: R fair coins per pixel, G copies R and B copies G, each copy
    flipped with probability 0.1. Entropy 16 (ln 2 + 2 H(0.1)) = 21.49 nats; a model that
    ignores the colour dependence within a pixel can do no better than 48 ln 2 = 33.27."""
    red = rng.random((n, 1, 4, 4)) < 0.5
    green = red ^ (rng.random((n, 1, 4, 4)) < 0.1)
    blue = green ^ (rng.random((n, 1, 4, 4)) < 0.1)
    return np.concatenate([red, green, blue], axis=1).astype(np.uint8)
