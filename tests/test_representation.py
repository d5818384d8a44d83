"""The pieces the representation-learning models share (minigen.representation): each
augmentation does what it says, on the whole batch, reproducibly from the generator; the
labelled subset follows DATA.md's rule; NT-Xent is the paper's equation (against a direct
NumPy computation, and its known values for identical and orthogonal views); the mean
teacher's ramp-up and EMA; the encoder's shapes."""
import functools
import math

import numpy as np
import pytest

import minigen as mg
from minigen import data
from minigen.representation import augment, labels, losses
from minigen.representation.encoder import Classifier, Encoder
from minigen.random import Generator


def images(n=16, h=8, w=8, seed=0):
    return np.random.default_rng(seed).uniform(0.1, 1.0, (n, 1, h, w)).astype(np.float32)


ALL = {
    "shift": functools.partial(augment.random_shift, max_shift=2),
    "crop": functools.partial(augment.random_crop_resize, min_scale=0.5),
    "flip": augment.random_flip,
    "rotation": augment.random_rotation,
    "brightness": functools.partial(augment.brightness, low=0.8, high=1.2),
    "erasing": functools.partial(augment.random_erasing, size=3, p=0.5),
    "noise": functools.partial(augment.gaussian_noise, std=0.05),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_the_same_generator_state_gives_the_same_batch(name):
    x = images()
    first, second = (ALL[name](x, Generator(3)) for _ in range(2))
    assert first.shape == x.shape and first.dtype == x.dtype
    np.testing.assert_array_equal(first, second)
    generator = Generator(3)
    ALL[name](x, generator)
    state = generator.get_state()
    again = ALL[name](x, generator)
    generator.set_state(state)
    np.testing.assert_array_equal(ALL[name](x, generator), again)


@pytest.mark.parametrize("name", sorted(set(ALL) - {"flip", "rotation"}))
def test_images_of_a_batch_get_draws_of_their_own(name):
    x = np.repeat(images(1), 64, axis=0)
    out = ALL[name](x, Generator(0))
    assert len(np.unique(out.reshape(64, -1), axis=0)) > 4


def test_shift_moves_the_content_and_fills_with_zeros():
    x = images(200, seed=1)
    out = augment.random_shift(x, Generator(0), max_shift=2)
    seen = set()
    for n in range(len(x)):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out[n], shifted(x[n], dy, dx))]
        assert len(matches) == 1, n
        seen.add(matches[0])
    assert len(seen) == 25  # every shift in [-2, 2]^2 occurs


def shifted(image, dy, dx):
    """image moved down dy and right dx, zeros moved in."""
    out = np.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[:, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def test_erasing_zeroes_exactly_a_k_by_k_square_with_probability_p():
    x = images(400, h=8, w=7)
    out = augment.random_erasing(x, Generator(0), size=3, p=0.5)
    erased = 0
    for n in range(len(x)):
        zero = out[n, 0] == 0
        if zero.any():
            erased += 1
            rows, cols = np.flatnonzero(zero.any(1)), np.flatnonzero(zero.any(0))
            assert zero.sum() == 9 and len(rows) == 3 and len(cols) == 3
            assert rows[-1] - rows[0] == 2 and cols[-1] - cols[0] == 2
        np.testing.assert_array_equal(out[n, 0][~zero], x[n, 0][~zero])
    assert erased / len(x) == pytest.approx(0.5, abs=0.07)
    with pytest.raises(ValueError, match="does not fit"):
        augment.random_erasing(x, Generator(0), size=8, p=0.5)


def test_four_quarter_turns_are_the_identity_and_one_is_rot90():
    x = images(5)
    once = augment.quarter_turns(x, 1)
    np.testing.assert_array_equal(once, np.rot90(x, 1, axes=(2, 3)))
    turned = x
    for _ in range(4):
        turned = augment.quarter_turns(turned, 1)
    np.testing.assert_array_equal(turned, x)
    k = np.array([0, 1, 2, 3, 1])
    np.testing.assert_array_equal(augment.quarter_turns(augment.quarter_turns(x, k), 4 - k), x)


def test_rotation_refuses_images_that_are_not_square():
    with pytest.raises(ValueError, match="square"):
        augment.random_rotation(images(2, h=8, w=6), Generator(0))
    with pytest.raises(ValueError, match="square"):
        augment.pipeline((1, 8, 6), rotate=True)


def test_flip_mirrors_about_half_the_images():
    x = images(400)
    out = augment.random_flip(x, Generator(0))
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, x)])
    assert (flipped ^ kept).all()
    assert flipped.mean() == pytest.approx(0.5, abs=0.07)


def test_brightness_multiplies_each_image_by_a_factor_in_range():
    x = images(200)
    ratio = augment.brightness(x, Generator(0), 0.8, 1.2) / x
    per_image = ratio.reshape(200, -1)
    np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :1], per_image.shape),
                               rtol=1e-6)
    assert 0.8 <= per_image.min() and per_image.max() <= 1.2
    assert per_image[:, 0].std() == pytest.approx(0.4 / math.sqrt(12), rel=0.15)


def test_noise_has_the_standard_deviation_asked_for():
    x = images(200)
    noise = augment.gaussian_noise(x, Generator(0), 0.05) - x
    assert noise.std() == pytest.approx(0.05, rel=0.03) and abs(noise.mean()) < 0.002


def test_crop_at_full_scale_is_the_identity_and_a_crop_magnifies():
    x = images(4)
    np.testing.assert_allclose(augment.random_crop_resize(x, Generator(0), 1.0), x,
                               atol=1e-6)
    ramp = np.tile(np.arange(8, dtype=np.float32), (3, 1, 8, 1))  # columns 0..7
    out = augment.random_crop_resize(ramp, Generator(0), 0.5)
    steps = np.diff(out[:, 0], axis=2)
    assert (steps >= -1e-6).all() and (steps <= 1 + 1e-6).all()  # an enlarged ramp
    assert out.min() >= 0 and out.max() <= 7


def test_compose_applies_in_order_and_pipeline_leaves_out_what_is_off():
    x = images(8)
    both = augment.compose(ALL["shift"], ALL["noise"])(x, Generator(1))
    g = Generator(1)
    np.testing.assert_array_equal(both, ALL["noise"](ALL["shift"](x, g), g))
    np.testing.assert_array_equal(augment.pipeline(x.shape[1:], brightness_range=None)(
        x, Generator(0)), x)
    with pytest.raises(ValueError, match="shift"):
        augment.pipeline((1, 8, 8), shift=8)
    with pytest.raises(ValueError, match="brightness"):
        augment.pipeline((1, 8, 8), brightness_range=(1.2, 0.8))


def test_augmentations_run_on_the_gpu_with_the_cpu_draws():
    pytest.importorskip("cupy")
    if not mg.backend.cuda_available():
        pytest.skip("no GPU")
    x = images(8)
    cfg = augment.pipeline(x.shape[1:], shift=1, brightness_range=(0.8, 1.2), erase=3,
                           erase_p=0.5, noise=0.05, crop_scale=0.7, rotate=True)
    on_gpu = cfg(mg.backend.to_device(x, "cuda"), Generator(0))
    np.testing.assert_allclose(mg.backend.to_numpy(on_gpu), cfg(x, Generator(0)), atol=1e-6)


# labelled subsets -----------------------------------------------------------------------

def test_labels_50_on_digits_keep_the_five_lowest_train_positions_of_each_class():
    _, y = data.load("digits")
    kept = labels.labelled_subset(y, 50)
    assert len(kept) == 50 and (np.diff(kept) > 0).all()
    for k in range(10):
        mine = kept[y[kept] == k]
        np.testing.assert_array_equal(mine, np.flatnonzero(y == k)[:5])


def test_labelled_subsets_refuse_what_the_rule_cannot_give():
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(labels.labelled_subset(y, 3), [0, 1, 2])
    with pytest.raises(ValueError, match="multiple of 3"):
        labels.labelled_subset(y, 4)
    with pytest.raises(ValueError, match="class 1"):
        labels.labelled_subset(y, 9)


# losses ---------------------------------------------------------------------------------

def nt_xent_by_hand(z, t):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    sim = z @ z.T / t
    two_n = len(z)
    total = 0.0
    for i in range(two_n):
        j = (i + two_n // 2) % two_n
        others = [k for k in range(two_n) if k != i]
        total += -(sim[i, j] - np.log(np.exp(sim[i, others]).sum()))
    return total / two_n


@pytest.mark.parametrize("t", [0.1, 0.5, 2.0])
def test_nt_xent_is_the_papers_equation(t):
    z = np.random.default_rng(0).standard_normal((6, 5))
    ours = losses.nt_xent(mg.tensor(z), t).item()
    assert ours == pytest.approx(nt_xent_by_hand(z, t), rel=1e-10)


def test_nt_xent_known_values_and_gradient():
    n, t = 3, 0.5
    same = np.ones((2 * n, 4))
    assert losses.nt_xent(mg.tensor(same), t).item() == pytest.approx(math.log(2 * n - 1))
    basis = np.eye(2 * n)[:n]  # view pairs identical, pairs orthogonal to each other
    pairs = np.concatenate([basis, basis])
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / t))
    assert losses.nt_xent(mg.tensor(pairs), t).item() == pytest.approx(expected)
    z = np.random.default_rng(1).standard_normal((4, 3))
    assert mg.gradcheck(lambda v: losses.nt_xent(v, 0.5), [mg.tensor(z, requires_grad=True)])
    with pytest.raises(ValueError, match="temperature"):
        losses.nt_xent(mg.tensor(z), 0.0)


def test_rampup_reaches_its_maximum_at_its_length():
    assert losses.sigmoid_rampup(0, 10, 1000) == pytest.approx(10 * math.exp(-5))
    assert losses.sigmoid_rampup(500, 10, 1000) == pytest.approx(10 * math.exp(-5 * 0.25))
    assert losses.sigmoid_rampup(1000, 10, 1000) == 10
    assert losses.sigmoid_rampup(5000, 10, 1000) == 10
    assert losses.sigmoid_rampup(0, 10, 0) == 10


def test_softmax_mse_is_the_mean_over_batch_and_classes():
    s = np.random.default_rng(0).standard_normal((4, 3))
    t = np.random.default_rng(1).dirichlet(np.ones(3), 4)
    p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    assert losses.softmax_mse(mg.tensor(s), mg.tensor(t)).item() == \
        pytest.approx(((p - t) ** 2).mean())


# encoder ----------------------------------------------------------------------------------

def test_the_encoder_gives_four_times_its_width_features():
    x = mg.tensor(images(3))
    assert Encoder(1, 32, Generator(0))(x).shape == (3, 128)
    assert Encoder(1, 8, Generator(0))(mg.tensor(images(2, 28, 28))).shape == (2, 32)
    classifier = Classifier(1, 32, 10, Generator(0))
    assert classifier(x).shape == (3, 10)
    names = [name for name, _ in classifier.named_parameters()]
    assert names == [f"encoder.conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")] \
        + ["head.weight", "head.bias"]


# baselines and the picture ------------------------------------------------------------------

def test_the_baselines_probe_raw_pixels_and_the_encoder_a_run_starts_from():
    from minigen import models
    from minigen.models import DataSpec
    from minigen.representation import baselines
    assert 0.9 < baselines.raw_pixel_probe("digits") <= 1
    assert 0.1 < baselines.random_encoder_probe("digits", width=2, seed=0) <= 1
    entry = models.get("simclr")
    spec = DataSpec("digits", (1, 8, 8), "discrete", 17, 10)
    run_start = entry.cls(spec, Generator([3, 0]), **models.model_config(entry.config))
    untrained = Encoder(1, 32, Generator([3, 0]))
    for (name, ours), (_, theirs) in zip(run_start.encoder.named_parameters(),
                                         untrained.named_parameters()):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)


def test_the_augmentation_picture_is_drawn(tmp_path):
    from PIL import Image
    from minigen.representation.pictures import draw_augmentations
    path = tmp_path / "augmentations.png"
    draw_augmentations(str(path))
    assert Image.open(path).size[1] > 10 * 8 and sorted(p.name for p in tmp_path.iterdir()) \
        == ["augmentations.png"]
