"""The pictures of the game (beside minigen/pictures.py, whose helpers they use): the
discriminator's decision surface on 2-D data, and the losses and D's outputs over steps."""
import numpy as np
from PIL import Image, ImageDraw

from ..pictures import _atomic_save, _heat, _scatter_panel

GRID = 160
CURVE_COLOURS = [(214, 39, 40), (31, 119, 180)]


def decision_surface(d_output, box, samples, path, data=None, size=400, what="D output"):
    """D's output over `box` as a heat map (dark: low, yellow: high, scaled between the
    lowest and highest value on the box, stated at the top as `what`), the real points
    (grey) and the generated ones (white rings) over it. d_output maps (M, 2) points to
    (M,); an energy model draws -E(x) with it."""
    (x0, x1), (y0, y1) = box
    xs, ys = np.linspace(x0, x1, GRID), np.linspace(y1, y0, GRID)
    values = np.asarray(d_output(np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)),
                        dtype=np.float64).reshape(GRID, GRID)
    low, high = float(values.min()), float(values.max())
    heat = _heat((values - low) / max(high - low, 1e-12))
    canvas = Image.fromarray(heat).resize((size, size), Image.NEAREST)
    points = _scatter_panel([(data, (200, 200, 200))], box, size)
    mask = Image.fromarray((np.asarray(points).min(axis=2) < 250).astype(np.uint8) * 255)
    canvas.paste(points, (0, 0), mask)
    draw = ImageDraw.Draw(canvas)
    us = (np.asarray(samples)[:, 0] - x0) / (x1 - x0) * size
    vs = (y1 - np.asarray(samples)[:, 1]) / (y1 - y0) * size
    for u, v in zip(us, vs):
        draw.ellipse([u - 2, v - 2, u + 2, v + 2], outline=(255, 255, 255))
    draw.rectangle([0, 0, size, 14], fill="white")
    draw.text((4, 2), f"{what} {low:.3g} (dark) to {high:.3g} (yellow); real grey, "
              f"generated rings", fill="black")
    _atomic_save(canvas, path)


def line_panels(panels, path, x_label="step", width=640, height=240, margin=36):
    """Panels one above the other, each a list of (label, (M, 2) x-y points) drawn as
    lines on the panel's own y range (its min and max written at the left)."""
    image = Image.new("RGB", (width, height * len(panels)), "white")
    draw = ImageDraw.Draw(image)
    curves = [s for panel in panels for _, s in panel if len(s)]
    x_low = min(s[:, 0].min() for s in curves)
    x_high = max(s[:, 0].max() for s in curves)
    x_span = max(x_high - x_low, 1e-12)
    for k, panel in enumerate(panels):
        top = k * height
        shown = [s for _, s in panel if len(s)]
        if not shown:
            continue
        y_low = min(s[:, 1].min() for s in shown)
        y_high = max(s[:, 1].max() for s in shown)
        y_span = max(y_high - y_low, 1e-12)
        left, right = margin + 20, width - 10
        bottom, upper = top + height - margin, top + 18

        def px(x):
            return left + (x - x_low) / x_span * (right - left)

        def py(y):
            return bottom - (y - y_low) / y_span * (bottom - upper)

        draw.rectangle([left, upper, right, bottom], outline=(160, 160, 160))
        draw.text((4, upper), f"{y_high:.3g}", fill="black")
        draw.text((4, bottom - 10), f"{y_low:.3g}", fill="black")
        draw.text((left, bottom + 4), f"{x_low:g}", fill="black")
        draw.text((right - 60, bottom + 4), f"{x_label} {x_high:g}", fill="black")
        key = left
        for i, (label, s) in enumerate(panel):
            colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
            if len(s) > 1:
                draw.line([(px(x), py(y)) for x, y in s], fill=colour, width=2)
            elif len(s):
                x, y = s[0]
                draw.ellipse([px(x) - 2, py(y) - 2, px(x) + 2, py(y) + 2], fill=colour)
            draw.text((key, top + 4), label, fill=colour)
            key += 8 * len(label) + 20
    _atomic_save(image, path)
