"""PixelSNAIL: causal in raster order with the whole past in view (checked with the engine's
gradients), an exact likelihood that sums to one, reproducible samples, config errors that
say what is wrong, and the CLI end to end."""
import itertools

import numpy as np
import pytest

from minigen import models
from minigen.autoregressive.pixel_model import receptive_field
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval
from likelihoodcheck import assert_probabilities_sum_to_one

TINY = {"channels": 8, "blocks": 1, "resnets": 1, "heads": 2, "key_channels": 4,
        "value_channels": 8, "kernel": 3}


def build(shape, levels=2, seed=0, **config):
    spec = DataSpec("test", tuple(shape), "discrete", levels)
    return models.get("pixelsnail").cls(spec, generator=Generator([seed, 0]),
                                        **{**TINY, **config})


def before(shape, row, col):
    """The pixels strictly before (row, col) in raster order, a (1, H, W) boolean map."""
    _, r, s = np.indices(shape)
    return (r < row) | ((r == row) & (s < col))


@pytest.mark.parametrize("levels", [2, 4])
def test_every_output_sees_exactly_the_whole_past(levels):
    """The logits at each pixel have a zero gradient at the pixel itself and every later
    one, and a nonzero gradient at every earlier pixel: after one attention block the view
    is the whole past. The first pixel sees nothing (its attention reads no keys)."""
    shape = (1, 5, 6)
    model = build(shape, levels)
    for row, col in itertools.product(range(5), range(6)):
        reached = receptive_field(model, shape, (row, col))
        np.testing.assert_array_equal(reached, before(shape, row, col), err_msg=str((row, col)))


def test_attention_reaches_what_the_convolutions_of_the_same_depth_cannot():
    """With one block of one residual block, the causal convolutions are three 3x3 layers
    (type A, then two type B): they reach at most 3 rows up. The bottom-left output still
    depends on the top-right pixel, 5 rows up and 5 columns right, through the attention."""
    shape, (row, col) = (1, 6, 6), (5, 0)
    model = build(shape, blocks=1, resnets=1, kernel=3)
    convolution_layers = 3
    far = (0, 5)
    assert row - far[0] > convolution_layers
    reached = receptive_field(model, shape, (row, col))
    assert reached[0, far[0], far[1]]
    assert reached[0].sum() == row * 6 + col           # all 30 earlier pixels


@pytest.mark.parametrize("shape,levels", [((1, 2, 3), 2), ((1, 1, 3), 3)])
def test_nll_is_exact_probabilities_sum_to_one(shape, levels):
    nll = assert_probabilities_sum_to_one(build(shape, levels), shape, levels)
    assert nll.std() > 1e-3                            # not trivially uniform


def test_samples_are_valid_images_and_reproducible():
    shape, levels = (1, 3, 4), 5
    model = build(shape, levels)
    a = model.sample(4, Generator(5))
    assert a.dtype == np.uint8 and a.shape == (4,) + shape
    assert a.min() >= 0 and a.max() < levels
    np.testing.assert_array_equal(a, model.sample(4, Generator(5)))


@pytest.mark.parametrize("shape,config,message", [
    ((3, 4, 4), {}, "one-channel images"),
    ((1, 4, 4), {"heads": 3}, "key_channels=4 must be a multiple of heads=3"),
    ((1, 4, 4), {"kernel": 4}, "kernel must be odd"),
    ((1, 4, 4), {"blocks": 0}, "blocks must be >= 1, not 0"),
])
def test_bad_configs_say_what_is_wrong(shape, config, message):
    with pytest.raises(ValueError, match=message) as error:
        build(shape, **config)
    assert str(error.value).startswith("pixelsnail")            # names the model


def test_train_sample_eval_from_the_cli(tmp_path, capsys):
    config = [f"{k}={v}" for k, v in TINY.items()]
    metrics = train_sample_eval("pixelsnail", "digits-bin",
                                ["--steps", "8", "--batch-size", "32", "--lr", "0.01",
                                 "--config", *config], tmp_path, capsys)
    assert metrics["steps"] == 8
    assert 0 < metrics["test_nll_nats"] < 64 * np.log(2)        # beats fair coins
