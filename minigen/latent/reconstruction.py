"""What the autoencoders (ae, dae, vq-vae, vq-vae-2) report and draw about reconstructions:
the squared error of the decoder's mean, and the picture of inputs over reconstructions."""
import os

import numpy as np

from .. import pictures


def squared_error(lik, params, x):
    """The sum over the batch's examples of the mean squared error per dimension between
    the decoder's mean (lik.mean(params)) and the images x (levels), both on the [0, 1]
    scale."""
    scale = 1.0 / (lik.levels - 1)
    error = (lik.mean(params) - x.numpy().astype(np.float64)) * scale
    return float((error.reshape(len(error), -1) ** 2).mean(axis=1).sum())


def draw_reconstructions(path, stacks, columns=8, name="reconstructions.png"):
    """reconstructions.png in path's folder: the stacks of images (N, C, H, W) on the
    [0, 1] scale (inputs, noisy inputs, reconstructions), `columns` of each in turn, so
    that each input sits over what became of it."""
    stacks = [np.clip(np.asarray(s, dtype=np.float64), 0, 1) for s in stacks]
    n = min(len(s) for s in stacks) // columns * columns
    rows = [s[i:i + columns] for i in range(0, n, columns) for s in stacks]
    pictures.image_grid(np.concatenate(rows), os.path.join(os.path.dirname(path), name),
                        levels=2, columns=columns)
