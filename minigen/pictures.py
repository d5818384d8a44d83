"""Pictures a person would rather look at than read: image grids, 2-D scatters and density
heat maps, written as PNG with Pillow."""
import math
import os

import numpy as np
from PIL import Image, ImageDraw


def _atomic_save(image, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def image_grid(images, path, levels=2, scale=None, columns=None, pad=1):
    """Tile (N, C, H, W) images with values in 0..levels-1 into one PNG.

    Single-channel images are drawn in grey, three-channel ones in colour; small images are
    enlarged (nearest neighbour) so that a grid of 8x8 digits is still legible.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: expected (N, 1 or 3, H, W) images, got {images.shape}")
    n, c, h, w = images.shape
    columns = columns or int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / columns))
    scale = scale or max(1, 64 // max(h, w))
    pixels = np.clip(images / max(levels - 1, 1), 0, 1)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 0.5)
    for i in range(n):
        r, col = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[top:top + h, left:left + w] = pixels[i].transpose(1, 2, 0)
    canvas = np.repeat(np.repeat(canvas, scale, axis=0), scale, axis=1)
    array = (canvas * 255).round().astype(np.uint8)
    mode = "L" if c == 1 else "RGB"
    _atomic_save(Image.fromarray(array[..., 0] if c == 1 else array, mode), path)


def _heat(values):
    """A dark-blue to yellow colour ramp for values in [0, 1]."""
    stops = np.array([[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64],
                      [240, 249, 33]], dtype=np.float64)
    x = np.clip(values, 0, 1) * (len(stops) - 1)
    lo = np.floor(x).astype(int).clip(0, len(stops) - 2)
    t = (x - lo)[..., None]
    return ((1 - t) * stops[lo] + t * stops[lo + 1]).astype(np.uint8)


def _scatter_panel(layers, box, size):
    """Points drawn over a white square; `layers` is a list of (points or None, colour)."""
    (x0, x1), (y0, y1) = box
    panel = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(panel)
    for points, colour in layers:
        if points is None:
            continue
        points = np.asarray(points, dtype=np.float64)
        us = (points[:, 0] - x0) / (x1 - x0) * size
        vs = (y1 - points[:, 1]) / (y1 - y0) * size
        for u, v in zip(us, vs):
            draw.ellipse([u - 1.5, v - 1.5, u + 1.5, v + 1.5], fill=colour)
    return panel


def density_and_samples(log_density, box, samples, path, data=None, size=320):
    """Two panels: the model's density on `box` as a heat map, and its samples as points
    (over the data in grey when given). `log_density` maps (M, 2) points to (M,) values."""
    (x0, x1), (y0, y1) = box
    grid = 200
    xs, ys = np.linspace(x0, x1, grid), np.linspace(y1, y0, grid)
    points = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    density = np.exp(np.asarray(log_density(points), dtype=np.float64)).reshape(grid, grid)
    heat = Image.fromarray(_heat(density / max(density.max(), 1e-300))).resize((size, size))
    panel = _scatter_panel([(data, (190, 190, 190)), (samples, (31, 119, 180))], box, size)
    canvas = Image.new("RGB", (2 * size + 10, size), "white")
    canvas.paste(heat, (0, 0))
    canvas.paste(panel, (size + 10, 0))
    _atomic_save(canvas, path)


def data_box(points, margin=0.1):
    """((x_min, x_max), (y_min, y_max)) around the points, widened by `margin` each side."""
    points = np.asarray(points, dtype=np.float64)
    lo, hi = points.min(0), points.max(0)
    return tuple((a - margin * (b - a), b + margin * (b - a)) for a, b in zip(lo, hi))


def scatter(points, path, box=None, size=320):
    """2-D points as a scatter plot."""
    panel = _scatter_panel([(points, (31, 119, 180))], box or data_box(points), size)
    _atomic_save(panel, path)
