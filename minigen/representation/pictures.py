"""The picture of what each augmentation does (docs/augmentations.png): the first train
digits in the top row, below them each augmentation alone at the checked configs'
strength (crop, flip and rotation at the strength their keys turn on), and the checked
configs' pipeline in the bottom rows; values clipped to [0, 1] for display.

    python -m minigen.representation.pictures docs/augmentations.png
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from .. import pictures
from ..random import Generator
from . import augment
from .baselines import scaled
from .model import AUGMENT

SCALE, COLUMNS, LABEL_WIDTH = 5, 10, 150


def rows(x, seed=0):
    """(caption, images) for each row of the picture."""
    g = Generator(seed)
    checked = augment.pipeline(x.shape[1:], AUGMENT["shift"], brightness_range=AUGMENT[
        "brightness"], erase=AUGMENT["erase"], erase_p=AUGMENT["erase_p"],
        noise=AUGMENT["noise"])
    return [("train digits", x),
            ("shift [-1, 1]", augment.random_shift(x, g, 1)),
            ("crop 0.6-1, resize", augment.random_crop_resize(x, g, 0.6)),
            ("flip p=0.5", augment.random_flip(x, g)),
            ("quarter turns", augment.random_rotation(x, g)),
            ("brightness 0.8-1.2", augment.brightness(x, g, 0.8, 1.2)),
            ("erase 3x3 p=0.5", augment.random_erasing(x, g, 3, 0.5)),
            ("noise sigma 0.05", augment.gaussian_noise(x, g, 0.05)),
            ("checked: view 1", checked(x, g)),
            ("checked: view 2", checked(x, g))]


def draw_augmentations(path, name="digits", seed=0):
    x, _ = scaled(name, "train")
    shown = rows(x[:COLUMNS], seed)
    h, w = x.shape[2:]
    cell = (max(h, w) + 1) * SCALE
    grid_path = path + ".grid.png"
    pictures.image_grid(np.concatenate([np.clip(images, 0, 1) for _, images in shown]),
                        grid_path, levels=2, scale=SCALE, columns=COLUMNS)
    grid = Image.open(grid_path).convert("L")
    canvas = Image.new("L", (LABEL_WIDTH + grid.width, grid.height), 255)
    canvas.paste(grid, (LABEL_WIDTH, 0))
    draw = ImageDraw.Draw(canvas)
    for r, (caption, _) in enumerate(shown):
        draw.text((4, r * cell + cell // 2 - 5), caption, fill=0)
    canvas.save(path)
    os.remove(grid_path)


if __name__ == "__main__":
    draw_augmentations(sys.argv[1] if len(sys.argv) > 1 else "docs/augmentations.png")
