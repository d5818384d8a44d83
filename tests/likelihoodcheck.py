"""What the tests of the exact-likelihood models share (pixelcnn, gated-pixelcnn,
pixelcnn++, pixelsnail, wavenet, transformer, charrnn): on a shape small enough to list
every value, the probabilities sum to one and samples come at those probabilities.

    from likelihoodcheck import (all_values, assert_probabilities_sum_to_one,
                                 assert_samples_follow_nll, colour_test_nll)
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


def colour_test_nll(model, generator=None):
    """The test nll (nats per image) of a model of 3x4x4 binary images after 150 Adam steps
    (lr 0.01, batches of 64) on 2,000 correlated_colour_images, on 500 more; `generator`
    draws the model's training noise (dropout). Below 23 the model has learnt the colour
    dependence within a pixel (optimum 21.49, blind to it 33.27)."""
    rng = np.random.default_rng(0)
    train, test = correlated_colour_images(2000, rng), correlated_colour_images(500, rng)
    opt = mg.optim.Adam(list(model.parameters()), lr=1e-2)
    for _ in range(150):
        loss = model.loss(mg.tensor(train[rng.integers(0, len(train), 64)]), generator)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with mg.no_grad():
        return float(model.nll(mg.tensor(test)).numpy().mean())
