"""What the image-model tests share (pixelcnn, gated-pixelcnn, pixelcnn++):

    from imagecheck import all_images, assert_samples_follow_nll, correlated_colour_images
"""
import itertools

import numpy as np

import minigen as mg
from minigen.random import Generator


def all_images(shape, levels):
    """Every image of the shape with values in 0..levels-1, (levels^D, C, H, W) uint8."""
    values = itertools.product(range(levels), repeat=int(np.prod(shape)))
    return np.array(list(values), dtype=np.uint8).reshape((-1,) + tuple(shape))


def assert_samples_follow_nll(model, shape, levels, n=20000, seed=11):
    """The frequency of each of the few possible images among n samples matches exp(-nll)
    within 4.5 standard errors: the sampler draws from p(x) itself."""
    images = all_images(shape, levels)
    p = np.exp(-model.nll(mg.tensor(images)).numpy().astype(np.float64))
    drawn = model.sample(n, Generator(seed)).reshape(n, -1)
    index = {tuple(im.ravel()): i for i, im in enumerate(images)}
    counts = np.bincount([index[tuple(d)] for d in drawn], minlength=len(images))
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
