"""Datasets of DATA.md, and the batch sampler that lets a training run resume exactly.

    x, y = mg.data.load("digits")                    # uint8 (1437, 1, 8, 8), int64 (1437,)
    x, y = mg.data.load("digits", split="test")      # the 360 test images
    x, _ = mg.data.load("toy-moons")                 # float32 (10000, 2), no labels

Every dataset returns a pair `(x, y)`: images as uint8 (N, C, H, W) with int64 labels,
toy densities as float32 (N, 2) (toy-1d: (N, 1)), text as a uint8 array of byte codes;
`y` is None where a dataset has no labels.

Splits:
    "train", "test"       DATA.md's fixed splits; "train" is always the whole train split.
    "valid"               DATA.md's fixed validation part of the train split.
    "train-minus-valid"   "train" with the validation part removed: what a run that selects
                          or stops early on "valid" trains on.
For generated data (toy-*, shapes) the validation part is drawn from its own seed and is
not part of "train", so there "train-minus-valid" is the same as "train".
`mnist` has no validation rule in DATA.md; it uses fashion-mnist's (the last 5,000 train
images), the usual 55,000 / 5,000 MNIST split.

Generated data is drawn from np.random.default_rng(seed) with seed 101 for "train",
102 for "test" and 103 for "valid" (GENERATED_SEEDS), so each split is a fixed, different
sample.
"""
import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

SPLITS = ("train", "test", "valid", "train-minus-valid")
GENERATED_SEEDS = {"train": 101, "test": 102, "valid": 103}
TOY_SIZES = {"train": 10_000, "test": 2_000, "valid": 2_000}
SHAPES_SIZES = {"train": 5_000, "test": 1_000, "valid": 1_000}
SHAPE_KINDS = ("square", "circle", "triangle", "line")
SHAPES_SIDE = 16
IDX_VALID_SIZE = 5_000

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
# A fixed list rather than "every file in the directory": other packages (fortunes-bofh-
# excuses, fortunes-debian-hints, ...) drop files into the same directory, and the corpus,
# and with it every split, must not depend on what else a machine has installed.
FORTUNE_FILES = {
    "fortunes-min": ("fortunes", "literature", "riddles"),
    "fortunes": ("art", "ascii-art", "computers", "cookie", "debian", "definitions",
                 "disclaimer", "drugs", "education", "ethnic", "food", "goedel", "humorists",
                 "kids", "knghtbrd", "law", "linux", "linuxcookie", "love", "magic",
                 "medicine", "men-women", "miscellaneous", "news", "paradoxum", "people",
                 "perl", "pets", "platitudes", "politics", "pratchett", "science",
                 "songs-poems", "sports", "startrek", "tao", "translate-me", "wisdom",
                 "work", "zippy"),
}
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to get them."""


# ---------------------------------------------------------------------------------------
# Public entry points


def load(name, split="train", data_dir=None):
    """Return `(x, y)` for split "train", "test", "valid" or "train-minus-valid" of a dataset.

    `data_dir` (the CLI's --data-dir) replaces the default location of file-backed datasets
    (fashion-mnist, mnist, fortunes); generated datasets and digits ignore it. It may hold
    the files directly or in a subfolder named after the dataset.
    """
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(_DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for {name!r}; valid splits: "
                         f"{', '.join(SPLITS)}")
    return _DATASETS[name][1](split, data_dir)


def list_datasets():
    """(name, one-line description) for every dataset, in a fixed order."""
    return [(name, description) for name, (description, _) in _DATASETS.items()]


def vocabulary(name, data_dir=None):
    """The sorted byte codes that occur anywhere in a text dataset (all splits together).

    A character model that wants contiguous class ids uses np.searchsorted(vocab, x).
    """
    if name not in _TEXT:
        raise ValueError(f"{name!r} is not a text dataset; text datasets: {', '.join(_TEXT)}")
    return np.unique(_TEXT[name](data_dir))


# ---------------------------------------------------------------------------------------
# Batches


class BatchSampler:
    """Index batches for training, as a pure function of (seed, step).

    Step s belongs to epoch s // batches_per_epoch; the epoch's order is a permutation drawn
    from np.random.default_rng([seed, epoch]) and the step takes its slice of it. A run
    resumed at step s therefore sees exactly the batches the uninterrupted run would have
    seen, with no sampler state to save. With drop_last=True every batch is full and the
    n % batch_size examples left over differ from epoch to epoch.
    """

    def __init__(self, n, batch_size, seed, shuffle=True, drop_last=True):
        # seed: an int, or a tuple of ints (a run's seed and the index of a sampler of its own)
        if n < 1 or batch_size < 1:
            raise ValueError(f"BatchSampler needs n >= 1 and batch_size >= 1, "
                             f"got n={n}, batch_size={batch_size}")
        if drop_last and batch_size > n:
            raise ValueError(f"BatchSampler: batch_size={batch_size} > n={n} with "
                             f"drop_last=True gives no batches")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.batches_per_epoch = n // batch_size if drop_last else math.ceil(n / batch_size)
        self._cached_epoch, self._cached_order = None, None

    def __len__(self):
        return self.batches_per_epoch

    def order(self, epoch):
        """All n indices in the order epoch `epoch` visits them."""
        if not self.shuffle:
            return np.arange(self.n)
        # Kept for the current epoch: a permutation of 60,000 costs more than a small step.
        if epoch != self._cached_epoch:
            self._cached_order = np.random.default_rng(
                [*np.atleast_1d(self.seed).tolist(), epoch]).permutation(self.n)
            self._cached_epoch = epoch
        return self._cached_order

    def indices(self, step):
        """The example indices of global training step `step` (0-based)."""
        if step < 0:
            raise ValueError(f"BatchSampler.indices: step must be >= 0, got {step}")
        epoch, b = divmod(step, self.batches_per_epoch)
        return self.order(epoch)[b * self.batch_size:(b + 1) * self.batch_size].copy()

    def epoch_batches(self, epoch):
        """The batches of one epoch, in order: steps epoch * len(self) ... ."""
        for step in range(epoch * self.batches_per_epoch, (epoch + 1) * self.batches_per_epoch):
            yield self.indices(step)

    def __iter__(self):
        """One pass over the data (epoch 0); with shuffle=False, drop_last=False an
        evaluation pass in order."""
        return self.epoch_batches(0)


def batches(x, batch_size):
    """Consecutive slices of `x` in order, the last one possibly shorter: for evaluation."""
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


class Examples:
    """One split as a model reads it: examples taken by index for training, consecutive
    stretches for evaluation. Images and points are examples as they are; text (one 1-D
    array of byte codes) is read as windows of `window` consecutive characters, example i
    being the window that starts at character i, and is evaluated in 1-D stretches of
    `window` characters per example asked for (a model scores them per character)."""

    def __init__(self, x, y=None, window=None, name="data"):
        if x.ndim == 1 and not window:
            raise ValueError(f"{name} is text: a model reads it as windows of characters and "
                             f"needs a `context` setting, which this model has not")
        self.x, self.y = x, y
        self.window = int(window) if x.ndim == 1 else None

    def __len__(self):
        """The number of examples (for text, of window starts)."""
        return len(self.x) - (self.window or 1) + 1

    def take(self, index):
        """The examples at `index` and their labels (None where there are none)."""
        labels = None if self.y is None else self.y[index]
        if self.window is not None:
            index = index[:, None] + np.arange(self.window)
        return self.x[index], labels

    def stretches(self, size):
        """(x, y) slices of `size` examples in order, the last one possibly shorter; for
        text, 1-D stretches of size * window characters."""
        step = size * (self.window or 1)
        for start in range(0, len(self.x), step):
            yield (self.x[start:start + step],
                   None if self.y is None else self.y[start:start + step])


# ---------------------------------------------------------------------------------------
# digits


def _digits(split, binarize):
    from sklearn.datasets import load_digits  # imported late: importing scikit-learn takes ~2 s
    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None]
    y = bunch.target.astype(np.int64)
    fold = np.arange(len(x)) % 5
    keep = {"train": fold != 0, "test": fold == 0, "valid": fold == 1,
            "train-minus-valid": fold >= 2}[split]
    x, y = x[keep], y[keep]
    return ((x >= 8).astype(np.uint8) if binarize else x), y


# ---------------------------------------------------------------------------------------
# IDX files: fashion-mnist, mnist


def read_idx(path):
    """One IDX file of unsigned bytes (gzipped or not) as a uint8 array shaped as its header
    says. A bad magic number, or a length that disagrees with the header's dimensions, is a
    ValueError naming the file: a truncated download must not load as fewer examples."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from None
    if len(raw) < 4 or raw[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an IDX file of unsigned bytes: magic number "
                         f"{raw[:4].hex() or 'missing'}, expected 000008 followed by the "
                         f"number of dimensions")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than the "
                         f"header of a {ndim}-dimensional array ({header} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise ValueError(f"{path}: truncated or corrupt IDX file: {len(raw)} bytes, but its "
                         f"header's shape {shape} needs exactly {expected}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def _idx_dataset(name, split, dirs, how_to_get, binarize=False, threshold=128):
    part = "test" if split == "test" else "train"
    images_path, labels_path = _find_files(name, IDX_FILES[part], dirs, how_to_get,
                                           suffixes=("", ".gz"))
    x, y = read_idx(images_path), read_idx(labels_path)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{name}: {images_path} holds images shaped {x.shape} and "
                         f"{labels_path} labels shaped {y.shape}; expected (N, H, W) and (N,)")
    x, y = x[:, None], y.astype(np.int64)
    if split in ("valid", "train-minus-valid"):
        if len(x) <= IDX_VALID_SIZE:
            raise ValueError(f"{name}: {images_path} has {len(x)} train images, too few to "
                             f"hold out the last {IDX_VALID_SIZE} for validation")
        cut = len(x) - IDX_VALID_SIZE
        x, y = (x[cut:], y[cut:]) if split == "valid" else (x[:cut], y[:cut])
    return ((x >= threshold).astype(np.uint8) if binarize else x), y


def _fashion_mnist(split, data_dir, binarize):
    dirs = _user_dirs("fashion-mnist", data_dir) if data_dir else [FASHION_MNIST_DIR]
    how = ("Install the Debian package dataset-fashion-mnist "
           "(apt-get install dataset-fashion-mnist), or pass data_dir (--data-dir) "
           "naming a directory that holds these files.")
    return _idx_dataset("fashion-mnist", split, dirs, how, binarize)


def _mnist(split, data_dir):
    root = data_dir or os.environ.get("MINIGEN_DATA")
    how = ("MNIST does not ship with a package: pass data_dir (--data-dir DIR) or set the "
           "environment variable MINIGEN_DATA=DIR, where DIR holds the MNIST IDX files "
           f"{', '.join(IDX_FILES['train'] + IDX_FILES['test'])} (each may be .gz), "
           "directly or in DIR/mnist.")
    return _idx_dataset("mnist", split, _user_dirs("mnist", root) if root else [], how)


# ---------------------------------------------------------------------------------------
# fortunes


def _fortunes_corpus(data_dir):
    dirs = _user_dirs("fortunes", data_dir) if data_dir else [FORTUNES_DIR]
    names = sorted(name for files in FORTUNE_FILES.values() for name in files)
    how = ("Install the Debian package fortunes, which brings fortunes-min with it "
           "(apt-get install fortunes), or pass data_dir (--data-dir) naming a directory "
           "that holds these files.")
    paths = _find_files("fortunes", names, dirs, how, suffixes=("",))
    return np.frombuffer(b"".join(path.read_bytes() for path in paths), np.uint8).copy()


def _fortunes(split, data_dir):
    text = _fortunes_corpus(data_dir)
    valid_start, test_start = len(text) * 85 // 100, len(text) * 90 // 100
    part = {"train": slice(0, test_start), "test": slice(test_start, None),
            "valid": slice(valid_start, test_start),
            "train-minus-valid": slice(0, valid_start)}[split]
    return text[part], None


# ---------------------------------------------------------------------------------------
# Files


def _user_dirs(name, root):
    """A user's data directory may hold a dataset's files directly or in a subfolder named
    after the dataset (so one MINIGEN_DATA can hold mnist/ and fashion-mnist/ side by side)."""
    root = Path(root)
    return [root / name, root]


def _find_files(name, filenames, dirs, how_to_get, suffixes):
    """The paths of all `filenames` in the first of `dirs` that holds every one of them
    (each under one of `suffixes`), or one DatasetNotFoundError listing every path tried."""
    tried = []
    for d in dirs:
        found, missing = [], []
        for filename in filenames:
            hits = [d / (filename + s) for s in suffixes if (d / (filename + s)).is_file()]
            if hits:
                found.append(hits[0])
            else:
                missing.append(filename)
        if not missing:
            return found
        alternatives = f"[{'|'.join(suffixes)}]" if len(suffixes) > 1 else ""
        tried.append(f"{d}: missing " + ", ".join(f"{d / f}{alternatives}" for f in missing)
                     if d.is_dir() else f"{d}: no such directory")
    searched = "; ".join(tried) if tried else "no directory was given"
    # one line: the command line prints an error as one line
    raise DatasetNotFoundError(f"dataset {name!r} not found (searched {searched}). "
                               f"{how_to_get}")


# ---------------------------------------------------------------------------------------
# Generated data: 2-D toy densities, as in the FFJORD / flow and GAN literature, and one
# 1-D mixture


def _moons(rng, n):
    # sklearn's make_moons(noise=0.1) with angles drawn at random rather than on a grid,
    # then FFJORD's scaling (x2) and shift (-1, -0.2)
    t = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    xy = np.stack([np.where(upper, np.cos(t), 1 - np.cos(t)),
                   np.where(upper, np.sin(t), 0.5 - np.sin(t))], 1)
    return (xy + rng.normal(0, 0.1, (n, 2))) * 2 + [-1, -0.2]


EIGHT_GAUSSIANS_RADIUS, EIGHT_GAUSSIANS_STD, EIGHT_GAUSSIANS_SCALE = 4.0, 0.5, 1.414
RINGS_RADII, RINGS_STD = 0.75 * np.arange(1, 5), 0.08   # _rings draws 0.75 * (1..4)


def _eight_gaussians(rng, n):
    # centres on a circle of radius 4, std 0.5, all divided by 1.414 as in FFJORD
    angle = rng.integers(0, 8, n) * (np.pi / 4)
    centres = EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(angle), np.sin(angle)], 1)
    return (centres + rng.normal(0, EIGHT_GAUSSIANS_STD, (n, 2))) / EIGHT_GAUSSIANS_SCALE


def _checkerboard(rng, n):
    # uniform on the 8 squares of a 4x4 board over [-4, 4]^2 whose cell indices sum to even
    x1 = rng.random(n) * 4 - 2
    x2 = rng.random(n) - rng.integers(0, 2, n) * 2 + np.floor(x1) % 2
    return np.stack([x1, x2], 1) * 2


def _spirals(rng, n):
    # FFJORD's "2spirals": each arm turns 540 degrees, sqrt makes the density even along it
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    arm = rng.integers(0, 2, n) * 2 - 1
    xy = np.stack([-np.cos(t) * t + rng.random(n) * 0.5,
                   np.sin(t) * t + rng.random(n) * 0.5], 1)
    return arm[:, None] * xy / 3 + rng.normal(0, 0.1, (n, 2))


def _rings(rng, n):
    # FFJORD's "rings": four concentric circles of radius 0.75, 1.5, 2.25, 3, equally likely
    radius = 0.75 * rng.integers(1, 5, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    xy = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
    return xy + rng.normal(0, RINGS_STD, (n, 2))


def toy_modes(name):
    """The modes of a toy density made of separate modes, as its generator above draws
    them, for the mode-collapse check: {"kind": "points", "centres": (8, 2), "std"} for
    toy-8gaussians, {"kind": "circles", "radii": (4,), "std"} for toy-rings (each a mode,
    its std the noise's); None for the other datasets."""
    if name == "toy-8gaussians":
        angle = np.arange(8) * (np.pi / 4)
        centres = EIGHT_GAUSSIANS_RADIUS * np.stack([np.cos(angle), np.sin(angle)], 1)
        return {"kind": "points", "centres": centres / EIGHT_GAUSSIANS_SCALE,
                "std": EIGHT_GAUSSIANS_STD / EIGHT_GAUSSIANS_SCALE}
    if name == "toy-rings":
        return {"kind": "circles", "radii": RINGS_RADII.copy(), "std": RINGS_STD}
    return None


def _three_gaussians_1d(rng, n):
    # a fixed 1-D mixture for the scalar CDF flow: a broad mode between two narrow ones,
    # weights 0.25, 0.5, 0.25, means -2, 0.5, 3, standard deviations 0.4, 0.9, 0.3
    k = rng.choice(3, n, p=[0.25, 0.5, 0.25])
    return (np.array([-2.0, 0.5, 3.0])[k] + np.array([0.4, 0.9, 0.3])[k]
            * rng.normal(0, 1, n))[:, None]


def _toy(density):
    def load_toy(split, data_dir):
        part = "train" if split == "train-minus-valid" else split
        rng = np.random.default_rng(GENERATED_SEEDS[part])
        return density(rng, TOY_SIZES[part]).astype(np.float32), None
    return load_toy


# ---------------------------------------------------------------------------------------
# Generated data: shapes


def _shape_mask(rng, kind):
    """One SHAPES_SIDE x SHAPES_SIDE boolean image of SHAPE_KINDS[kind] at a random place."""
    side = SHAPES_SIDE
    rows, cols = np.mgrid[0:side, 0:side] + 0.5  # pixel centres
    if SHAPE_KINDS[kind] == "square":  # filled, side 4..10 pixels
        width = rng.integers(4, 11)
        top, left = rng.integers(0, side - width + 1, 2)
        return (top <= rows) & (rows < top + width) & (left <= cols) & (cols < left + width)
    if SHAPE_KINDS[kind] == "circle":  # filled disc, radius 2.5..6 pixels
        radius = rng.uniform(2.5, 6)
        cy, cx = rng.uniform(radius, side - radius, 2)
        return (rows - cy) ** 2 + (cols - cx) ** 2 <= radius ** 2
    if SHAPE_KINDS[kind] == "triangle":  # filled isosceles, height 5..13, one of 4 headings
        height = rng.integers(5, 14)
        half_base = 0.6 * height
        top = rng.integers(0, side - height + 1)
        cx = rng.uniform(half_base, side - half_base)
        depth = rows - top
        mask = (0 < depth) & (depth <= height) & (np.abs(cols - cx) <= depth * half_base / height)
        return np.rot90(mask, rng.integers(4))
    while True:  # a line one pixel wide and at least 6 pixels long
        p0, p1 = rng.uniform(1, side - 1, (2, 2))
        if np.linalg.norm(p1 - p0) >= 6:
            break
    d = p1 - p0
    t = np.clip(((rows - p0[0]) * d[0] + (cols - p0[1]) * d[1]) / (d @ d), 0, 1)
    return np.hypot(rows - p0[0] - t * d[0], cols - p0[1] - t * d[1]) <= 0.5


def _shapes(split, data_dir):
    part = "train" if split == "train-minus-valid" else split
    rng = np.random.default_rng(GENERATED_SEEDS[part])
    y = rng.integers(0, len(SHAPE_KINDS), SHAPES_SIZES[part])
    x = np.stack([_shape_mask(rng, kind) for kind in y]).astype(np.uint8)[:, None]
    return x, y.astype(np.int64)


# ---------------------------------------------------------------------------------------

_DATASETS = {
    "digits": ("1,797 grey 8x8 digits (17 levels), 10 classes; scikit-learn",
               lambda split, data_dir: _digits(split, binarize=False)),
    "digits-bin": ("digits binarized at x >= 8",
                   lambda split, data_dir: _digits(split, binarize=True)),
    "fashion-mnist": ("70,000 grey 28x28 clothing images, 10 classes; dataset-fashion-mnist",
                      lambda split, data_dir: _fashion_mnist(split, data_dir, binarize=False)),
    "fashion-mnist-bin": ("fashion-mnist binarized at x >= 128",
                          lambda split, data_dir: _fashion_mnist(split, data_dir,
                                                                 binarize=True)),
    "mnist": ("MNIST IDX files from --data-dir or MINIGEN_DATA", _mnist),
    "toy-moons": ("2-D two moons with noise", _toy(_moons)),
    "toy-8gaussians": ("2-D mixture of 8 Gaussians on a circle", _toy(_eight_gaussians)),
    "toy-checkerboard": ("2-D uniform checkerboard", _toy(_checkerboard)),
    "toy-spirals": ("2-D two interleaved spirals", _toy(_spirals)),
    "toy-rings": ("2-D four concentric rings", _toy(_rings)),
    "toy-1d": ("1-D mixture of three Gaussians, (N, 1)", _toy(_three_gaussians_1d)),
    "shapes": ("binary 1x16x16 squares, circles, triangles and lines, 4 classes", _shapes),
    "fortunes": ("English text from the fortune files, as byte codes; package fortunes",
                 _fortunes),
}
_TEXT = {"fortunes": _fortunes_corpus}


_LEVELS = {"digits": 17, "digits-bin": 2, "fashion-mnist": 256, "fashion-mnist-bin": 2,
           "mnist": 256, "shapes": 2, "fortunes": 256}


def levels(name):
    """How many values one dimension of a discrete dataset takes (2 for binary data);
    None for continuous data."""
    if name not in _DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(_DATASETS)}")
    return _LEVELS.get(name)
