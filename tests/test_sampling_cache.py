"""Cached sampling against the naive sampler that recomputes everything at every step, for
PixelCNN, Gated PixelCNN, WaveNet and the Transformer: the logits of every step agree to
float32 rounding, and the two samplers draw the same samples from the same generator
(binary, K-level and colour images, text, conditional models)."""
import numpy as np
import pytest

import minigen as mg
from minigen import backend, models
from minigen.autoregressive.pixel_model import sample_raster
from minigen.models import DataSpec
from minigen.random import Generator

PIXEL = {
    "pixelcnn": dict(channels=12, blocks=2, first_kernel=3, kernel=3),
    "pixelcnn-wide": dict(channels=12, blocks=1, first_kernel=7, kernel=5),
    "gated-pixelcnn": dict(channels=12, layers=3, kernel=3),
    "gated-pixelcnn-wide": dict(channels=12, layers=2, kernel=5),
}
SEQUENCE = {
    "wavenet": dict(channels=8, dilations=(1, 2, 4), kernel=2),
    "wavenet-k3": dict(channels=6, dilations=(1, 3, 2), kernel=3, positions="learned"),
    "transformer": dict(d_model=8, heads=2, layers=2, mlp=16),
    "transformer-sinusoidal": dict(d_model=8, heads=2, layers=1, mlp=16,
                                   positions="sinusoidal"),
}
IMAGES = [((1, 5, 4), 2), ((1, 4, 4), 5), ((3, 3, 3), 4)]  # binary, grey levels, colour
CLASSES = 3


def build(variant, config, shape, levels, conditional=False, seed=0):
    """An untrained model with every parameter moved off its initial value (class biases
    start at zero, which would hide the labels)."""
    name = variant.replace("-wide", "").replace("-k3", "").replace("-sinusoidal", "")
    spec = DataSpec("test", shape, "discrete", levels, CLASSES)
    extra = {"conditional": True} if conditional else {}
    model = models.get(name).cls(spec, generator=Generator(seed), **config[variant], **extra)
    rng = np.random.default_rng(seed)
    for _, p in model.named_parameters():
        p.data[...] = p.data + backend.to_device(rng.normal(0, 0.3, p.shape).astype(p.dtype),
                                                 p.device)
    return model


def assert_same_logits(cached, naive):
    """Equal to float32 rounding: 1e-5 relative, entries near zero judged against the
    largest logit."""
    cached, naive = np.asarray(cached), np.asarray(naive)
    np.testing.assert_allclose(cached, naive, rtol=1e-5, atol=1e-5 * np.abs(naive).max())


def labels_for(n, conditional):
    return mg.tensor(np.arange(n) % CLASSES) if conditional else None


def assert_cached_equals_naive(model, inputs, shape, conditional):
    """The cached logits of 4 inputs equal a full pass's, and 6 cached samples the naive
    sampler's for the same seed (and not all one value)."""
    labels = labels_for(len(inputs), conditional)
    assert_same_logits(model.incremental_logits(inputs, labels).numpy(),
                       model.logits(inputs, labels).numpy())
    labels = labels_for(6, conditional)
    cached = model.sample(6, Generator(5), labels=labels)
    naive = model.sample(6, Generator(5), labels=labels, cached=False)
    assert cached.dtype == np.uint8 and cached.shape == (6,) + shape
    np.testing.assert_array_equal(cached, naive)
    assert len(np.unique(cached)) > 1


# -- images --------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(PIXEL))
@pytest.mark.parametrize("shape,levels", IMAGES)
@pytest.mark.parametrize("conditional", [False, True])
def test_pixel_models_cached_logits_and_samples_equal_naive(variant, shape, levels,
                                                            conditional):
    model = build(variant, PIXEL, shape, levels, conditional)
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.integers(0, levels, (4,) + shape).astype(np.uint8))
    assert_cached_equals_naive(model, x, shape, conditional)


@pytest.mark.parametrize("variant", ["pixelcnn", "gated-pixelcnn"])
@pytest.mark.parametrize("shape,levels", [((3, 3, 4), 2), ((1, 4, 3), 3)])
def test_pixel_logits_at_every_draw_equal_naive_logits(variant, shape, levels):
    """Every distribution the cached sampler draws from (one per subpixel: a colour pixel
    is recomputed after each of its channels) has the logits a full pass over the final
    image gives that subpixel: those depend on what came before it only."""
    model = build(variant, PIXEL, shape, levels, conditional=True)
    labels = labels_for(5, True)
    sampler, drawn = model.sampler(5, labels), []

    def recording(x, row, col):
        dist = sampler(x, row, col)
        drawn.append((row, col, dist.logits.numpy()))
        return dist

    images = sample_raster(recording, shape, 5, Generator(2))
    naive = model.logits(mg.tensor(images), labels)
    assert len(drawn) == np.prod(shape)
    for i, (row, col, logits) in enumerate(drawn):
        channel = i % shape[0]  # the channel drawn from this call
        expected = model.likelihood.at(naive, row, col).logits.numpy()[:, channel]
        assert_same_logits(logits[:, channel], expected)


def test_part_of_an_image_is_the_start_of_the_whole():
    """sample_raster(rows=R), what the benchmark times, draws the whole image's first rows."""
    model = build("pixelcnn", PIXEL, (1, 5, 4), 2)
    whole = model.sample(3, Generator(4))
    part = sample_raster(model.sampler(3), (1, 5, 4), 3, Generator(4), rows=2)
    np.testing.assert_array_equal(part[:, :, :2], whole[:, :, :2])
    assert not part[:, :, 2:].any()


# -- sequences ------------------------------------------------------------------------------

@pytest.mark.parametrize("variant,conditional",
                         [(v, False) for v in sorted(SEQUENCE)]
                         + [(v, True) for v in sorted(SEQUENCE) if v.startswith("transformer")])
@pytest.mark.parametrize("levels", [2, 5])
def test_sequence_models_cached_logits_and_samples_equal_naive(variant, conditional, levels):
    shape = (1, 4, 5)
    model = build(variant, SEQUENCE, shape, levels, conditional)
    values = mg.tensor(np.random.default_rng(1).integers(0, levels, (4, 20)))
    assert_cached_equals_naive(model, values, shape, conditional)


@pytest.mark.parametrize("variant", ["wavenet", "transformer"])
def test_text_windows_cached_and_naive_samples_equal(variant):
    spec = DataSpec("text", (), "discrete", 256)
    model = models.get(variant).cls(spec, generator=Generator(0), context=7,
                                    **SEQUENCE[variant])
    np.testing.assert_array_equal(model.sample(3, Generator(1)),
                                  model.sample(3, Generator(1), cached=False))
