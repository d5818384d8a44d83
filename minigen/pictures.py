"""Pictures a person would rather look at than read: image grids, 2-D scatters and density
heat maps, 1-D densities over histograms and a flow's deformed latent grid, written as PNG
with Pillow."""
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


LABEL_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
                 (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
                 (188, 189, 34), (23, 190, 207)]


def scatter_by_label(points, labels, path, box=None, size=480):
    """2-D points coloured by their integer labels (ten colours, then again), with a key of
    the labels' colours along the top."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    layers = [(points[labels == c], LABEL_COLOURS[i % len(LABEL_COLOURS)])
              for i, c in enumerate(classes)]
    panel = _scatter_panel(layers, box or data_box(points), size)
    draw = ImageDraw.Draw(panel)
    for i, c in enumerate(classes):
        draw.text((6 + 22 * i, 4), str(c), fill=LABEL_COLOURS[i % len(LABEL_COLOURS)])
    _atomic_save(panel, path)


def density_and_samples(log_density, box, samples, path, data=None, size=320):
    """Two panels: the model's density on `box` as a heat map, and its samples as points
    (over the data in grey when given). `log_density` maps (M, 2) points to (M,) values; a
    model without a density (log_density gives None) gets the samples' panel alone."""
    (x0, x1), (y0, y1) = box
    grid = 200
    xs, ys = np.linspace(x0, x1, grid), np.linspace(y1, y0, grid)
    points = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    panel = _scatter_panel([(data, (190, 190, 190)), (samples, (31, 119, 180))], box, size)
    log_p = log_density(points)
    if log_p is None:
        _atomic_save(panel, path)
        return
    density = np.exp(np.asarray(log_p, dtype=np.float64)).reshape(grid, grid)
    heat = Image.fromarray(_heat(density / max(density.max(), 1e-300))).resize((size, size))
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


def density_1d(log_density, box, samples, path, data=None, bins=60, width=640, height=320):
    """A 1-D model at a glance: the data's histogram (grey bars), the samples' histogram
    (blue steps) and the model's density (red curve), all as densities on one scale over
    `box` = ((low, high),). `log_density` maps (M, 1) points to (M,) values (None for a
    model without a density: no curve)."""
    (x0, x1), = box
    margin = 24
    plot_w, plot_h = width - 2 * margin, height - 2 * margin
    xs = np.linspace(x0, x1, plot_w)
    log_p = log_density(xs[:, None])
    curve = np.zeros_like(xs) if log_p is None else np.exp(np.asarray(log_p, np.float64))
    edges = np.linspace(x0, x1, bins + 1)

    def histogram(points):
        if points is None:
            return None
        counts, _ = np.histogram(np.asarray(points, np.float64).ravel(), edges)
        return counts / max(len(np.ravel(points)), 1) / (edges[1] - edges[0])

    data_hist, sample_hist = histogram(data), histogram(samples)
    top = 1.1 * max(curve.max(), *(h.max() for h in (data_hist, sample_hist)
                                   if h is not None), 1e-12)

    def px(value):
        return margin + (value - x0) / (x1 - x0) * plot_w

    def py(density):
        return margin + plot_h * (1 - np.minimum(density, top) / top)

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    if data_hist is not None:
        for lo, hi, h in zip(edges[:-1], edges[1:], data_hist):
            draw.rectangle([px(lo), py(h), px(hi), py(0)], fill=(205, 205, 205))
    if sample_hist is not None:
        steps = [(px(edges[0]), py(0))]
        for lo, hi, h in zip(edges[:-1], edges[1:], sample_hist):
            steps += [(px(lo), py(h)), (px(hi), py(h))]
        draw.line(steps + [(px(edges[-1]), py(0))], fill=(31, 119, 180), width=2)
    if log_p is not None:
        draw.line(list(zip(px(xs), py(curve))), fill=(214, 39, 40), width=2)
    draw.line([(margin, py(0)), (width - margin, py(0))], fill="black")
    draw.text((margin, height - margin + 4), f"{x0:.2f}", fill="black")
    draw.text((width - margin - 40, height - margin + 4), f"{x1:.2f}", fill="black")
    draw.text((margin + 4, 4), "model density (red), samples (blue), data (grey)",
              fill="black")
    _atomic_save(image, path)


def latent_grid(from_uniform, box, path, lines=15, points=200, size=320):
    """How a flow bends its latent space: the grid lines u1 = c and u2 = c of the unit
    square (left), drawn in the base's CDF coordinates, and their images in data space
    (right) through the model's inverse. `from_uniform` maps (M, 2) u in (0, 1)^2 to (M, 2)
    points. Equal steps in u hold equal base probability, so each cell of the grid holds the
    same mass in both panels: cells crowd where the density is high."""
    levels = (np.arange(lines) + 0.5) / lines
    along = np.linspace(0.5 / points, 1 - 0.5 / points, points)
    families = []
    for axis in (0, 1):
        u = np.empty((lines, points, 2))
        u[..., axis] = levels[:, None]
        u[..., 1 - axis] = along[None, :]
        families.append(u)
    u = np.concatenate(families).reshape(-1, 2)
    x = np.asarray(from_uniform(u), dtype=np.float64).reshape(2 * lines, points, 2)
    colours = [(31, 119, 180)] * lines + [(255, 127, 14)] * lines
    panels = [_polyline_panel(u.reshape(2 * lines, points, 2), colours, ((0, 1), (0, 1)),
                              size),
              _polyline_panel(x, colours, box, size)]
    canvas = Image.new("RGB", (2 * size + 10, size), "white")
    canvas.paste(panels[0], (0, 0))
    canvas.paste(panels[1], (size + 10, 0))
    _atomic_save(canvas, path)


def _polyline_panel(curves, colours, box, size):
    """Curves (L, P, 2) as polylines on `box`; a segment leaving the box by more than one
    box width is dropped rather than drawn towards a point far off the canvas."""
    (x0, x1), (y0, y1) = box
    panel = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(panel)
    for curve, colour in zip(curves, colours):
        us = (curve[:, 0] - x0) / (x1 - x0) * size
        vs = (y1 - curve[:, 1]) / (y1 - y0) * size
        near = (np.abs(us - size / 2) < 1.5 * size) & (np.abs(vs - size / 2) < 1.5 * size) \
            & np.isfinite(us) & np.isfinite(vs)
        for i in range(len(curve) - 1):
            if near[i] and near[i + 1]:
                draw.line([(us[i], vs[i]), (us[i + 1], vs[i + 1])], fill=colour, width=1)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(160, 160, 160))
    return panel


def receptive_fields(maps, pixel, names, path, scale=16, gap=24):
    """Panels side by side, one per boolean (H, W) map: the input pixels whose values the
    output at `pixel` depends on (blue), the output pixel itself (red), pixels before it in
    raster order that it does not see (orange: a blind spot, or beyond the field's reach),
    and pixels at or after it (white, never to be seen by a causal model)."""
    h, w = maps[0].shape
    row, col = pixel
    before = (np.arange(h)[:, None] * w + np.arange(w)) < row * w + col
    width = len(maps) * (w * scale + gap) + gap
    image = Image.new("RGB", (width, h * scale + 2 * gap), "white")
    draw = ImageDraw.Draw(image)
    for k, (seen, name) in enumerate(zip(maps, names)):
        left = gap + k * (w * scale + gap)
        draw.text((left, 6), name, fill="black")
        for i in range(h):
            for j in range(w):
                colour = ((214, 39, 40) if (i, j) == (row, col) else (31, 119, 180)
                          if seen[i, j] else (255, 187, 120) if before[i, j] else "white")
                box = (left + j * scale, gap + i * scale, left + (j + 1) * scale - 1,
                       gap + (i + 1) * scale - 1)
                draw.rectangle(box, fill=colour, outline=(200, 200, 200))
    _atomic_save(image, path)


HISTOGRAM_SAMPLES = 5000  # a histogram of 64 samples says little about a 1-D density


def sample_count(spec, n):
    """How many samples the picture of spec's data needs when n are asked for."""
    return max(n, HISTOGRAM_SAMPLES) if spec.kind == "continuous" and spec.shape == (1,) \
        else n


def picture_suffix(spec):
    """The file type of draw_samples' picture of spec's data: .png, or .txt for text and
    vectors other than 1-D and 2-D points."""
    drawn = spec.is_image or spec.kind == "continuous" and spec.shape in ((1,), (2,))
    return ".png" if drawn else ".txt"


def draw_samples(spec, samples, path, reference, log_density=None):
    """The picture of samples of spec's data, chosen by its kind: a grid for images, the
    density beside the samples for 2-D data, the density over histograms for 1-D data;
    text and other vectors are written to a .txt file beside path. reference: training data
    for the box and the data overlay; log_density(points): log p of (N, D) points."""
    if picture_suffix(spec) == ".txt":
        with open(os.path.splitext(path)[0] + ".txt", "w", encoding="utf-8") as f:
            for row in samples:
                if spec.shape == ():  # text: byte codes, one sample per paragraph
                    f.write(bytes(row.astype(np.uint8)).decode("latin-1") + "\n\n")
                else:
                    f.write(repr(row.tolist()) + "\n")
    elif spec.is_image:
        image_grid(samples, path, levels=spec.levels)
    elif spec.kind == "continuous" and spec.shape == (2,):
        density_and_samples(log_density, data_box(reference), samples, path,
                            data=reference[:2000])
    elif spec.kind == "continuous" and spec.shape == (1,):
        density_1d(log_density, data_box(reference), samples, path, data=reference)


def latent_grid_beside(path, from_uniform, reference):
    """latent_grid.png in path's folder: the lines of a grid in the latent space of a flow
    with from_uniform, mapped into the data's box (how the flow bends its latent space)."""
    latent_grid(from_uniform, data_box(reference),
                os.path.join(os.path.dirname(path), "latent_grid.png"))
