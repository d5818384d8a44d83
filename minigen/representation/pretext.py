"""The pretext tasks' inputs and targets (issue 17): functions of a batch of images y, a
NumPy or CuPy array (N, C, H, W), and the run's generator (every draw on the host, as in
minigen.representation.augment, so a task is the same on both devices and after a resume).

    rotations        Gidaris et al. 2018: every image turned by 0, 90, 180 and 270 degrees,
                     the label the number of quarter turns
    tiles, permute   Noroozi and Favaro 2016 (jigsaw): the image cut into a grid of tiles,
                     shuffled by one of a fixed set of permutations, the label its index
    patch_pairs      Doersch et al. 2015: a patch and one of its 8 neighbours on a 3x3 grid
                     of patches, the label which neighbour
    square_masks     Pathak et al. 2016 (context encoder): a square region to inpaint
"""
import itertools
import math

import numpy as np

from .. import backend
from .augment import quarter_turns

# the neighbours of the centre patch of a 3x3 grid, in raster order: label k is at offset
# NEIGHBOURS[k] (row, column) from the centre
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def rotations(y):
    """(4N images, 4N labels): y turned by k quarter turns counter-clockwise, for k = 0, 1,
    2, 3 in that order (images k N ... (k + 1) N - 1), and k as their labels."""
    n = len(y)
    xp = backend.xp_of(y)
    turned = xp.concatenate([quarter_turns(y, k) for k in range(4)])
    return turned, np.repeat(np.arange(4), n)


def permutation_set(tiles, count):
    """`count` fixed permutations of `tiles` tiles, (count, tiles) ints: every permutation
    (in lexicographic order) where count is tiles!, otherwise Noroozi and Favaro's greedy
    choice: from the identity, each next one the permutation whose least Hamming distance to
    those chosen is largest (the first of the ties in lexicographic order), so the classes
    differ as much as they can."""
    total = math.factorial(tiles)
    if not 2 <= count <= total:
        raise ValueError(f"permutations={count}: {tiles} tiles have {total} orders; choose "
                         f"from 2 to {total}")
    if tiles > 9:
        raise ValueError(f"jigsaw: {tiles} tiles have too many orders to choose from; use a "
                         f"grid of at most 3x3")
    every = np.array(list(itertools.permutations(range(tiles))))
    if count == total:
        return every
    chosen = [0]
    nearest = (every != every[0]).sum(axis=1)
    for _ in range(count - 1):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, (every != every[pick]).sum(axis=1))
    return every[chosen]


def tiles(y, grid):
    """The grid x grid tiles of images y (N, C, H, W), (N, grid^2, C, H/grid, W/grid), in
    raster order; the sides must divide."""
    n, c, h, w = y.shape
    if h % grid or w % grid:
        raise ValueError(f"a {grid}x{grid} grid of tiles needs sides divisible by {grid}, "
                         f"the images are {h}x{w}")
    th, tw = h // grid, w // grid
    return y.reshape(n, c, grid, th, grid, tw).transpose(0, 2, 4, 1, 3, 5) \
        .reshape(n, grid * grid, c, th, tw)


def untile(t, grid):
    """The images (N, C, H, W) whose tiles are t (N, grid^2, C, h, w): tiles' inverse."""
    n, _, c, th, tw = t.shape
    return t.reshape(n, grid, grid, c, th, tw).transpose(0, 3, 1, 4, 2, 5) \
        .reshape(n, c, grid * th, grid * tw)


def permute(t, permutations, labels):
    """The tiles t (N, T, ...) of each image n put in the order permutations[labels[n]]:
    position i holds tile permutations[labels[n], i]."""
    order = backend.to_device(permutations[labels], backend.device_of(t))
    xp = backend.xp_of(t)
    return t[xp.arange(len(t))[:, None], order]


def patch_pairs(y, generator, patch):
    """(centres, neighbours, labels): for each image, a 3x3 grid of patch x patch patches at
    a uniform offset inside the image (the grid's jitter), its centre patch, one of the 8
    neighbours drawn uniformly, and that neighbour's index in NEIGHBOURS. Patches (N, C,
    patch, patch)."""
    n, c, h, w = y.shape
    if 3 * patch > min(h, w):
        raise ValueError(f"patch={patch}: a 3x3 grid of {patch}x{patch} patches does not "
                         f"fit {h}x{w} images")
    top = generator.rng.integers(0, h - 3 * patch + 1, n)
    left = generator.rng.integers(0, w - 3 * patch + 1, n)
    labels = generator.rng.integers(0, 8, n)
    offsets = np.array(NEIGHBOURS)[labels]

    def cut(rows, cols):
        r = backend.to_device(rows[:, None] + np.arange(patch), backend.device_of(y))
        q = backend.to_device(cols[:, None] + np.arange(patch), backend.device_of(y))
        xp = backend.xp_of(y)
        return y[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                 r[:, None, :, None], q[:, None, None, :]]
    centres = cut(top + patch, left + patch)
    neighbours = cut(top + patch * (1 + offsets[:, 0]), left + patch * (1 + offsets[:, 1]))
    return centres, neighbours, labels


def square_masks(shape, generator, size, n):
    """(N, 1, H, W) float masks, 1 on a size x size square at a uniform place inside each
    H x W image (the region to inpaint), 0 elsewhere."""
    _, h, w = shape
    if not 1 <= size < min(h, w):
        raise ValueError(f"mask_size={size}: the region to inpaint must be at least 1 pixel "
                         f"and leave some of the {h}x{w} image to see")
    top = generator.rng.integers(0, h - size + 1, n)
    left = generator.rng.integers(0, w - size + 1, n)
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + size)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + size)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None].astype(np.float32)
