"""The data layer: DATA.md's split rules, dtypes and shapes, binarization thresholds,
determinism, the resumable BatchSampler, and the errors for missing or damaged files.
Tests that need a Debian package's files skip, naming the package, where it is absent."""
import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minigen as mg
from minigen.data import BatchSampler, DatasetNotFoundError, batches, load

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
TOYS = ["toy-moons", "toy-8gaussians", "toy-checkerboard", "toy-spirals", "toy-rings"]
ALL_NAMES = ["digits", "digits-bin", "fashion-mnist", "fashion-mnist-bin", "mnist", *TOYS, "toy-1d",
             "shapes", "fortunes"]


def needs(path, package):
    return pytest.mark.skipif(not path.is_dir(), reason=f"{path} is absent: install the "
                              f"Debian package {package} (apt-get install {package})")


# --- digits -------------------------------------------------------------------------------

def test_digits_splits_follow_the_index_rule():
    from sklearn.datasets import load_digits
    bunch = load_digits()
    every, labels = bunch.images.astype(np.uint8)[:, None], bunch.target
    i = np.arange(len(every))
    parts = {split: load("digits", split) for split in mg.data.SPLITS}
    # DATA.md writes "(359)" for valid, but i % 5 == 1 over 0..1796 is 1, 6, ..., 1796: 360
    expected = {"test": i % 5 == 0, "train": i % 5 != 0, "valid": i % 5 == 1,
                "train-minus-valid": i % 5 >= 2}
    assert {s: len(x) for s, (x, _) in parts.items()} == {
        "train": 1437, "test": 360, "valid": 360, "train-minus-valid": 1077}
    for split, keep in expected.items():
        x, y = parts[split]
        assert x.dtype == np.uint8 and x.shape[1:] == (1, 8, 8)
        assert y.dtype == np.int64 and y.shape == (len(x),)
        np.testing.assert_array_equal(x, every[keep])
        np.testing.assert_array_equal(y, labels[keep])
    assert set(np.unique(parts["train"][0])) == set(range(17))
    # train skips i % 5 == 0, so i % 5 == 1 is every 4th train image from the first
    train_x = parts["train"][0]
    np.testing.assert_array_equal(parts["valid"][0], train_x[0::4])
    np.testing.assert_array_equal(parts["train-minus-valid"][0],
                                  np.delete(train_x, np.s_[0::4], axis=0))


def test_digits_bin_uses_threshold_8():
    x, y = load("digits", "test")
    xb, yb = load("digits-bin", "test")
    assert xb.dtype == np.uint8 and set(np.unique(xb)) == {0, 1}
    np.testing.assert_array_equal(xb, (x >= 8).astype(np.uint8))
    np.testing.assert_array_equal(yb, y)
    assert xb[x == 7].max() == 0 and xb[x == 8].min() == 1


# --- generated data -----------------------------------------------------------------------

@pytest.mark.parametrize("name", TOYS)
def test_toy_sizes_dtypes_and_fixed_different_splits(name):
    parts = {split: load(name, split)[0] for split in mg.data.SPLITS}
    assert {s: x.shape for s, x in parts.items()} == {
        "train": (10_000, 2), "test": (2_000, 2), "valid": (2_000, 2),
        "train-minus-valid": (10_000, 2)}
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in parts.values())
    assert load(name, "train")[1] is None
    np.testing.assert_array_equal(load(name, "test")[0], parts["test"])
    np.testing.assert_array_equal(parts["train-minus-valid"], parts["train"])
    points = {s: set(map(bytes, x)) for s, x in parts.items()}
    assert not points["test"] & points["train"]
    assert not points["valid"] & points["train"]
    assert not points["valid"] & points["test"]


def test_toy_densities_have_their_shape():
    x = load("toy-8gaussians")[0].astype(np.float64)
    angle = np.arctan2(x[:, 1], x[:, 0])
    modes = np.round(angle / (np.pi / 4)) % 8
    assert np.bincount(modes.astype(int)).min() > 1_000
    np.testing.assert_allclose(np.median(np.hypot(*x.T)), 4 / 1.414, rtol=0.05)

    x = load("toy-checkerboard")[0]
    assert np.abs(x).max() <= 4
    assert (np.floor(x / 2).sum(1) % 2 == 0).all()  # only the 8 "even" cells of 16

    x = load("toy-rings")[0]
    radius = np.hypot(*x.T)
    nearest = np.abs(radius[:, None] - [0.75, 1.5, 2.25, 3.0]).argmin(1)
    assert np.abs(radius - 0.75 * (nearest + 1)).max() < 0.5
    assert np.bincount(nearest).min() > 2_000

    x = load("toy-moons")[0]
    assert abs(x[:, 0].mean()) < 0.1 and x[:, 1].std() > 0.5

    x = load("toy-spirals")[0]
    np.testing.assert_allclose(x.mean(0), 0, atol=0.1)  # the two arms mirror each other
    assert np.hypot(*x.T).max() < 3 * np.pi / 3 + 1


def test_shapes_are_labelled_binary_images():
    parts = {split: load("shapes", split) for split in ("train", "test", "valid")}
    assert [len(x) for x, _ in parts.values()] == [5_000, 1_000, 1_000]
    for x, y in parts.values():
        assert x.dtype == np.uint8 and x.shape[1:] == (1, 16, 16)
        assert set(np.unique(x)) == {0, 1}
        assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1, 2, 3}
        assert x.reshape(len(x), -1).sum(1).min() > 0
    x, y = parts["train"]
    assert np.bincount(y).min() > 1_000
    for image in x[y == mg.data.SHAPE_KINDS.index("square"), 0]:
        rows, cols = np.nonzero(image)
        height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert height == width and image.sum() == height * width  # a filled square
    lines = x[y == mg.data.SHAPE_KINDS.index("line")].reshape(-1, 256).sum(1)
    assert lines.max() <= 2 * 16  # one pixel wide
    np.testing.assert_array_equal(load("shapes", "test")[0], parts["test"][0])
    np.testing.assert_array_equal(load("shapes", "train-minus-valid")[0], x)
    assert not np.array_equal(parts["test"][0], x[:1_000])


# --- IDX files: tiny files written here, then the real fashion-mnist where installed ------

def idx_bytes(array):
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + \
        array.tobytes()


def write_mnist(folder, n_train=3, n_test=2, gz=False):
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 5, 4)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 5, 4)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    folder.mkdir(parents=True, exist_ok=True)
    for filename, array in arrays.items():
        data = idx_bytes(array)
        (folder / (filename + ".gz" if gz else filename)).write_bytes(
            gzip.compress(data) if gz else data)
    return arrays


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzipped"])
def test_tiny_idx_files_load_as_mnist_from_data_dir(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    for split, prefix in [("train", "train"), ("test", "t10k")]:
        x, y = load("mnist", split, data_dir=tmp_path)
        assert x.dtype == np.uint8 and x.shape == (len(y), 1, 5, 4) and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], arrays[f"{prefix}-images-idx3-ubyte"])
        np.testing.assert_array_equal(y, arrays[f"{prefix}-labels-idx1-ubyte"])


def test_mnist_from_environment_variable_and_subfolder(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "mnist", gz=True)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    x, _ = load("mnist", "test")
    np.testing.assert_array_equal(x[:, 0], arrays["t10k-images-idx3-ubyte"])


def test_mnist_validation_is_the_last_5000_train_images(tmp_path):
    arrays = write_mnist(tmp_path, n_train=5_003)
    x, y = load("mnist", "valid", data_dir=tmp_path)
    rest, _ = load("mnist", "train-minus-valid", data_dir=tmp_path)
    np.testing.assert_array_equal(x[:, 0], arrays["train-images-idx3-ubyte"][3:])
    np.testing.assert_array_equal(rest[:, 0], arrays["train-images-idx3-ubyte"][:3])
    write_mnist(tmp_path, n_train=4_000)
    with pytest.raises(ValueError, match="too few"):
        load("mnist", "valid", data_dir=tmp_path)


def test_mnist_without_a_directory_names_the_flag_and_variable(monkeypatch):
    monkeypatch.delenv("MINIGEN_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="MINIGEN_DATA") as info:
        load("mnist")
    assert "--data-dir" in str(info.value)


def test_missing_fashion_mnist_names_package_and_paths(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load("fashion-mnist", data_dir=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(tmp_path / "fashion-mnist") in message
    assert str(tmp_path / "train-images-idx3-ubyte") in message
    assert str(tmp_path / "train-labels-idx1-ubyte") in message


def test_one_missing_file_is_named(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        load("mnist", "test", data_dir=tmp_path)
    assert str(tmp_path / "t10k-labels-idx1-ubyte") in str(info.value)
    assert str(tmp_path / "t10k-images-idx3-ubyte") not in str(info.value)
    assert len(load("mnist", "train", data_dir=tmp_path)[0]) == 3


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzipped"])
def test_truncated_idx_file_is_an_error_naming_it(tmp_path, gz):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    data = path.read_bytes()[:-7]
    if gz:  # a well-formed gzip stream around a short IDX file
        path.unlink()
        path, data = path.with_name(path.name + ".gz"), gzip.compress(data)
    path.write_bytes(data)
    with pytest.raises(ValueError, match="truncated") as info:
        load("mnist", data_dir=tmp_path)
    assert str(path) in str(info.value)


def test_truncated_gzip_stream_is_an_error_naming_it(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match="gzip") as info:
        load("mnist", "test", data_dir=tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("header", [b"\x00\x00\x0d\x03", b"PK\x03\x04", b"\x00\x00"])
def test_bad_magic_number_is_an_error_naming_the_file(tmp_path, header):
    write_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(header + path.read_bytes()[4:])
    with pytest.raises(ValueError, match="magic number") as info:
        load("mnist", "test", data_dir=tmp_path)
    assert str(path) in str(info.value)


def test_trailing_bytes_and_mismatched_counts_are_errors(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\x01")
    with pytest.raises(ValueError, match="corrupt"):
        load("mnist", data_dir=tmp_path)
    path.write_bytes(idx_bytes(np.zeros(4)))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte"):
        load("mnist", data_dir=tmp_path)


@needs(FASHION_DIR, "dataset-fashion-mnist")
def test_fashion_mnist_files_splits_and_threshold():
    x, y = load("fashion-mnist", "train")
    assert x.shape == (60_000, 1, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))
    xt, yt = load("fashion-mnist", "test")
    assert xt.shape == (10_000, 1, 28, 28) and len(yt) == 10_000
    assert set(np.unique(xt)) == set(range(256))
    xv, yv = load("fashion-mnist", "valid")
    np.testing.assert_array_equal(xv, x[-5_000:])
    np.testing.assert_array_equal(yv, y[-5_000:])
    xb, yb = load("fashion-mnist-bin", "test")
    np.testing.assert_array_equal(xb, (xt >= 128).astype(np.uint8))
    np.testing.assert_array_equal(yb, yt)
    assert xb[xt == 127].max() == 0 and xb[xt == 128].min() == 1


# --- fortunes -----------------------------------------------------------------------------

@needs(FORTUNES_DIR, "fortunes")
def test_fortunes_is_the_concatenated_files_split_by_position():
    names = sorted(n for files in mg.data.FORTUNE_FILES.values() for n in files)
    corpus = b"".join((FORTUNES_DIR / n).read_bytes() for n in names)
    parts = {split: load("fortunes", split) for split in mg.data.SPLITS}
    assert all(y is None and x.dtype == np.uint8 and x.ndim == 1 for x, y in parts.values())
    n = len(corpus)
    assert len(parts["test"][0]) == n - n * 9 // 10
    assert len(parts["valid"][0]) == n * 9 // 10 - n * 85 // 100
    whole = np.concatenate([parts["train"][0], parts["test"][0]])
    assert whole.tobytes() == corpus
    np.testing.assert_array_equal(
        np.concatenate([parts["train-minus-valid"][0], parts["valid"][0]]), parts["train"][0])
    vocab = mg.data.vocabulary("fortunes")
    assert vocab.dtype == np.uint8 and np.all(np.diff(vocab.astype(int)) > 0)
    assert set(vocab) == set(corpus) and ord("e") in vocab


def test_missing_fortunes_names_package_and_path(tmp_path):
    (tmp_path / "fortunes").write_text("a file, not the folder\n%\n")
    with pytest.raises(DatasetNotFoundError, match="apt-get install fortunes") as info:
        load("fortunes", data_dir=tmp_path)
    assert str(tmp_path / "zippy") in str(info.value)


def test_vocabulary_only_for_text():
    with pytest.raises(ValueError, match="fortunes"):
        mg.data.vocabulary("digits")


# --- names --------------------------------------------------------------------------------

def test_list_datasets_names_every_dataset_once():
    listed = mg.data.list_datasets()
    assert [name for name, _ in listed] == ALL_NAMES
    assert all(isinstance(d, str) and d and "\n" not in d for _, d in listed)


def test_unknown_name_and_split_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'") as info:
        load("cifar10")
    assert all(name in str(info.value) for name in ALL_NAMES)
    with pytest.raises(ValueError, match="unknown split 'val'") as info:
        load("digits", "val")
    assert all(split in str(info.value) for split in mg.data.SPLITS)


# --- BatchSampler -------------------------------------------------------------------------

@given(n=st.integers(1, 300), batch_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1),
       steps=st.lists(st.integers(0, 2_000), min_size=1, max_size=8),
       drop_last=st.booleans())
def test_sampler_is_a_pure_function_of_seed_and_step(n, batch_size, seed, steps, drop_last):
    assume(not (drop_last and batch_size > n))
    first = BatchSampler(n, batch_size, seed, drop_last=drop_last)
    answers = [first.indices(s) for s in steps]
    for step, got in zip(reversed(steps), reversed(answers)):
        fresh = BatchSampler(n, batch_size, seed, drop_last=drop_last)
        np.testing.assert_array_equal(fresh.indices(step), got)
        np.testing.assert_array_equal(first.indices(step), got)
        epoch, b = divmod(step, len(fresh))
        order = np.random.default_rng([seed, epoch]).permutation(n)
        np.testing.assert_array_equal(got, order[b * batch_size:(b + 1) * batch_size])


@pytest.mark.parametrize("n,batch_size,drop_last", [(100, 10, True), (103, 10, True),
                                                    (103, 10, False), (7, 7, True)])
def test_sampler_visits_each_example_once_per_epoch(n, batch_size, drop_last):
    sampler = BatchSampler(n, batch_size, seed=5, drop_last=drop_last)
    assert len(sampler) == (n // batch_size if drop_last else -(-n // batch_size))
    for epoch in range(3):
        seen = np.concatenate(list(sampler.epoch_batches(epoch)))
        assert len(np.unique(seen)) == len(seen)
        assert len(seen) == (len(sampler) * batch_size if drop_last else n)
        assert all(len(b) == batch_size for b in list(sampler.epoch_batches(epoch))[:-1])
    np.testing.assert_array_equal(np.concatenate(list(sampler)),
                                  np.concatenate(list(sampler.epoch_batches(0))))
    if n >= 10:
        orders = [np.concatenate(list(sampler.epoch_batches(e))) for e in range(2)]
        assert not np.array_equal(*orders)


def test_sampler_without_shuffle_is_an_ordered_pass():
    sampler = BatchSampler(10, 4, seed=0, shuffle=False, drop_last=False)
    assert [b.tolist() for b in sampler] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    np.testing.assert_array_equal(sampler.indices(4), [4, 5, 6, 7])


def test_sampler_rejects_impossible_arguments():
    with pytest.raises(ValueError, match="no batches"):
        BatchSampler(5, 8, seed=0)
    with pytest.raises(ValueError, match="step"):
        BatchSampler(5, 2, seed=0).indices(-1)


def test_resumed_training_matches_uninterrupted_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(97, 3))
    target = x @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=97)

    def train(w, start, stop):
        sampler = BatchSampler(len(x), 8, seed=42)  # a fresh process builds a fresh sampler
        for step in range(start, stop):
            idx = sampler.indices(step)
            w = w - 0.05 * 2 * x[idx].T @ (x[idx] @ w - target[idx]) / len(idx)
        return w

    straight = train(np.zeros(3), 0, 50)
    checkpoint = train(np.zeros(3), 0, 23)
    resumed = train(checkpoint.copy(), 23, 50)
    np.testing.assert_array_equal(resumed, straight)
    assert not np.array_equal(train(np.zeros(3), 1, 50), straight)


def test_batches_keep_order_and_the_last_partial_batch():
    x = np.arange(23)
    parts = list(batches(x, 5))
    assert [len(p) for p in parts] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate(parts), x)


def test_a_missing_dataset_is_one_line_from_the_command_line(tmp_path, capsys):
    """The loader's message names every path tried, on one line (the CLI's error rule)."""
    from minigen import cli
    assert cli.main(["train", "word2vec", "--data", "fortunes", "--data-dir", str(tmp_path),
                     "--out", str(tmp_path / "run"), "--quiet", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "apt-get install fortunes" in err and str(tmp_path / "fortunes") in err
