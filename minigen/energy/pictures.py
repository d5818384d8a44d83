"""The pictures of a score model on 2-D data (beside minigen/pictures.py, whose helpers
they use): the samples over the data, and the learned score field s(x, sigma) as arrows
over both, one panel per noise level."""
import numpy as np
from PIL import Image, ImageDraw

from ..pictures import _atomic_save, _scatter_panel

ARROWS = 21          # arrows along each side of a panel
DATA_COLOUR, SAMPLE_COLOUR, ARROW_COLOUR = (200, 200, 200), (31, 119, 180), (214, 39, 40)


def points_over_data(samples, data, box, path, size=320):
    """The samples (blue) over the data (grey)."""
    _atomic_save(_scatter_panel([(data, DATA_COLOUR), (samples, SAMPLE_COLOUR)], box, size),
                 path)


def score_field(panels, box, path, data=None, samples=None, size=320, gap=8):
    """panels: a list of (title, field), field mapping (M, 2) points to (M, 2) vectors.
    Each panel shows the data (grey), the samples (blue) and an arrow per grid point along
    the field, its length the vector's norm over the panel's 95th percentile norm (at most
    one grid cell: the far field, where the score is largest, would swamp the rest)."""
    (x0, x1), (y0, y1) = box
    xs, ys = np.linspace(x0, x1, ARROWS + 2)[1:-1], np.linspace(y0, y1, ARROWS + 2)[1:-1]
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    cell = size / (ARROWS + 1)
    image = Image.new("RGB", (len(panels) * (size + gap) - gap, size + 16), "white")
    for k, (title, field) in enumerate(panels):
        panel = _scatter_panel([(data, DATA_COLOUR), (samples, SAMPLE_COLOUR)], box, size)
        draw = ImageDraw.Draw(panel)
        vectors = np.asarray(field(grid), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        unit = max(float(np.percentile(norms, 95)), 1e-12)
        lengths = np.minimum(norms / unit, 1.0) * cell
        for (px, py), v, n, length in zip(grid, vectors, norms, lengths):
            u0 = (px - x0) / (x1 - x0) * size
            v0 = (y1 - py) / (y1 - y0) * size
            if n == 0 or not np.isfinite(n):
                continue
            du, dv = v[0] / n * length, -v[1] / n * length
            draw.line([(u0, v0), (u0 + du, v0 + dv)], fill=ARROW_COLOUR, width=1)
            draw.ellipse([u0 + du - 1.5, v0 + dv - 1.5, u0 + du + 1.5, v0 + dv + 1.5],
                         fill=ARROW_COLOUR)
        image.paste(panel, (k * (size + gap), 16))
        ImageDraw.Draw(image).text((k * (size + gap) + 4, 2), title, fill="black")
    _atomic_save(image, path)
