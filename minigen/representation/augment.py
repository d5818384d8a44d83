"""Augmentations: random changes of an image that keep what it shows, the views that
contrastive and consistency methods compare.

Each is a function `f(x, generator, ...)` of a batch x, a NumPy or CuPy array (N, C, H, W) of
floats on [0, 1] (a model's inputs, x / (K - 1)), and the run's minigen.random.Generator:
every draw comes from the generator's stream on the host (as all of minigen's draws) and is
moved to x's device, so a run draws the same augmentations on the CPU and the GPU and, its
generator state being in the checkpoint, again after a resume. Each function draws all its
numbers for the batch at once, in a fixed order, and works on the whole batch without a
loop over images. `compose(*fns)` applies functions of (x, generator) in turn;
`pipeline(...)` builds the one the models' config keys describe.
"""
import functools

import numpy as np

from .. import backend


def _draw(array, like):
    """A host draw as an array on the device of `like`, in its dtype."""
    return backend.to_device(np.asarray(array).astype(like.dtype, copy=False),
                             backend.device_of(like))


def _index(indices, like):
    return backend.to_device(np.asarray(indices), backend.device_of(like))


def _check(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected images (N, C, H, W), got shape {x.shape}")


def random_shift(x, generator, max_shift):
    """Each image moved by whole pixels, (dy, dx) uniform on {-s, ..., s}^2; the pixels
    moved in from outside are 0."""
    _check("random_shift", x)
    s = int(max_shift)
    n, c, h, w = x.shape
    dy, dx = generator.rng.integers(-s, s + 1, (2, n))
    xp = backend.xp_of(x)
    padded = xp.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))
    # out[i, j] = x[i - dy, j - dx]: row i - dy of x is row i - dy + s of the padded image
    rows = _index(np.arange(h)[None, :] + s - dy[:, None], x)
    cols = _index(np.arange(w)[None, :] + s - dx[:, None], x)
    return padded[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


def random_crop_resize(x, generator, min_scale):
    """Each image cropped to a random window and resized back to H x W (bilinear, pixel
    centres as in torch's align_corners=False): the window's sides are the image's times
    f ~ U(min_scale, 1), its place uniform among those inside the image."""
    _check("random_crop_resize", x)
    n, c, h, w = x.shape
    f = generator.rng.uniform(min_scale, 1.0, n)
    top = generator.rng.uniform(0.0, 1.0, n) * (1 - f) * h
    left = generator.rng.uniform(0.0, 1.0, n) * (1 - f) * w
    # output pixel i samples x at top + (i + 0.5) f h / h - 0.5, in pixel-centre coordinates
    ys = top[:, None] + (np.arange(h)[None, :] + 0.5) * f[:, None] - 0.5
    xs = left[:, None] + (np.arange(w)[None, :] + 0.5) * f[:, None] - 0.5
    ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    y0, x0 = np.floor(ys).astype(np.int64), np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = _draw(ys - y0, x), _draw(xs - x0, x)
    xp = backend.xp_of(x)
    rows_n, chans = xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None]

    def at(r, q):
        return x[rows_n, chans, _index(r, x)[:, None, :, None], _index(q, x)[:, None, None, :]]
    wy, wx = wy[:, None, :, None], wx[:, None, None, :]
    return ((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x1))
            + wy * ((1 - wx) * at(y1, x0) + wx * at(y1, x1)))


def random_flip(x, generator, p=0.5):
    """Each image mirrored left to right with probability p (for data whose classes are
    mirror-symmetric; a digit is not)."""
    _check("random_flip", x)
    hit = _index(generator.rng.random(len(x)) < p, x)
    return backend.xp_of(x).where(hit[:, None, None, None], x[..., ::-1], x)


def quarter_turns(x, k):
    """Each image turned counter-clockwise by k[n] quarter turns (k an int or (N,) ints);
    square images only."""
    _check("quarter_turns", x)
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"rotation by quarter turns needs square images, got "
                         f"{x.shape[2]}x{x.shape[3]} (H x W)")
    xp = backend.xp_of(x)
    turned = xp.stack([xp.rot90(x, t, axes=(2, 3)) for t in range(4)])
    k = np.broadcast_to(np.asarray(k) % 4, (len(x),))
    return turned[_index(k, x), xp.arange(len(x))]


def random_rotation(x, generator):
    """Each image turned by 0, 90, 180 or 270 degrees, equally likely."""
    return quarter_turns(x, generator.rng.integers(0, 4, len(x)))


def brightness(x, generator, low, high):
    """Each image multiplied by b ~ U(low, high) (not clipped: b > 1 goes above 1)."""
    _check("brightness", x)
    return x * _draw(generator.rng.uniform(low, high, len(x)), x)[:, None, None, None]


def random_erasing(x, generator, size, p):
    """With probability p an image gets a size x size square, at a uniform place inside
    it, set to 0 (every channel)."""
    _check("random_erasing", x)
    n, _, h, w = x.shape
    k = int(size)
    if k > min(h, w):
        raise ValueError(f"random_erasing: a {k}x{k} square does not fit {h}x{w} images")
    hit = generator.rng.random(n) < p
    top = generator.rng.integers(0, h - k + 1, n)
    left = generator.rng.integers(0, w - k + 1, n)
    rows, cols = np.arange(h), np.arange(w)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + k)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + k)
    erased = in_rows[:, :, None] & in_cols[:, None, :] & hit[:, None, None]
    return x * _draw(~erased, x)[:, None]


def gaussian_noise(x, generator, std):
    """x + N(0, std^2) on every pixel."""
    return x + _draw(generator.rng.normal(0.0, std, x.shape), x)


def compose(*fns):
    """One augmentation of (x, generator) that applies fns in turn."""
    def composed(x, generator):
        for fn in fns:
            x = fn(x, generator)
        return x
    return composed


def pipeline(shape, shift=0, crop_scale=1.0, flip=False, rotate=False, brightness_range=None,
             erase=0, erase_p=0.0, noise=0.0):
    """The augmentation of the models' config keys for images of `shape` (C, H, W), in this
    order, each left out where its key turns it off: crop and resize (crop_scale < 1), flip,
    rotation, shift (shift > 0), brightness (a (low, high) range), erasing (erase > 0 and
    erase_p > 0), noise (noise > 0). A setting that does not fit the images is an error."""
    _, h, w = shape
    steps = []
    if not 0 < crop_scale <= 1:
        raise ValueError(f"crop_scale={crop_scale}: the crop's share of the side must be in "
                         f"(0, 1]")
    if crop_scale < 1:
        steps.append(functools.partial(random_crop_resize, min_scale=crop_scale))
    if flip:
        steps.append(random_flip)
    if rotate:
        if h != w:
            raise ValueError(f"rotate=true: rotation by quarter turns needs square images, "
                             f"these are {h}x{w}")
        steps.append(random_rotation)
    if shift:
        if not 0 <= shift < min(h, w):
            raise ValueError(f"shift={shift}: a shift must be at least 0 and less than the "
                             f"image's side ({min(h, w)})")
        steps.append(functools.partial(random_shift, max_shift=shift))
    if brightness_range is not None:
        low, high = (tuple(brightness_range) + (None, None))[:2]
        if len(brightness_range) != 2 or not 0 <= low <= high:
            raise ValueError(f"brightness={','.join(map(str, brightness_range))}: expected "
                             f"low,high with 0 <= low <= high")
        steps.append(functools.partial(brightness, low=low, high=high))
    if erase and erase_p:
        if erase > min(h, w):
            raise ValueError(f"erase={erase}: a {erase}x{erase} square does not fit "
                             f"{h}x{w} images")
        steps.append(functools.partial(random_erasing, size=erase, p=erase_p))
    if noise:
        steps.append(functools.partial(gaussian_noise, std=noise))
    return compose(*steps)
