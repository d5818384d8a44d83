"""PixelCNN++: causal in raster order through its down- and upsampling (checked with the
engine's gradients), no blind spot, exact likelihoods that sum to one (colour coupling
included), a sampler that draws from the model's own distribution, any image size, and
the CLI end to end."""
import itertools

import numpy as np
import pytest

import minigen as mg
from minigen import models
from minigen.autoregressive.pixel_model import receptive_field
from minigen.autoregressive.shifted import DownRightShiftedConvTranspose2d, DownShiftedConv2d
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval
from likelihoodcheck import (assert_probabilities_sum_to_one, assert_samples_follow_nll,
                             colour_test_nll)

TINY = {"filters": 4, "resnets": 1, "mixtures": 2, "dropout": 0.0}  # exact p(x): no dropout noise


def build(shape, levels=2, seed=0, **config):
    spec = DataSpec("test", tuple(shape), "discrete", levels)
    return models.get("pixelcnn++").cls(spec, generator=Generator([seed, 0]),
                                        **{**TINY, **config})


def earlier(shape, row, col):
    """The inputs (c, r, s) the parameters at (row, col) may depend on: every channel of
    every earlier pixel in raster order (the pixel's own channels are coupled outside the
    network, by the mixture)."""
    _, r, s = np.indices(shape)
    return (r < row) | ((r == row) & (s < col))


# -- causality and the receptive field ------------------------------------------------------

@pytest.mark.parametrize("shape,sees_all", [((1, 8, 8), False), ((3, 5, 6), True),
                                            ((1, 7, 7), True)])
def test_parameters_never_see_the_pixel_itself_or_later(shape, sees_all):
    """For every pixel, through all three resolutions (8 -> 4 -> 2, and odd sizes such as
    7 -> 4 -> 2 cropped back): zero gradient at the pixel itself and every later one, and a
    nonzero one at the pixel above and the pixel to the left. On the smaller images even
    this tiny network sees every earlier pixel: no blind spot."""
    model = build(shape, levels=4)
    _, height, width = shape
    for row, col in itertools.product(range(height), range(width)):
        reached = receptive_field(model, shape, (row, col))
        allowed = earlier(shape, row, col)
        assert not (reached & ~allowed).any(), (row, col)
        if row > 0:
            assert reached[:, row - 1, col].all(), (row, col)
        if col > 0:
            assert reached[:, row, col - 1].all(), (row, col)
        if sees_all:
            np.testing.assert_array_equal(reached, allowed, err_msg=str((row, col)))


def test_no_blind_spot_up_and_to_the_right():
    """PixelCNN's stacked masks never reach (row - 1, col + 2), (row - 1, col + 3) and
    (row - 2, col + 3) from (6, 4) of a 9x9 image (test_models_pixelcnn.py); here the u
    stream sees whole rows above, so pixel (6, 4) of an 8x8 image sees all 52 earlier
    pixels. (On odd rows the current and previous rows are reached only as far as the
    full-resolution convolutions go: a finite field, not a blind spot.)"""
    shape, (row, col) = (1, 8, 8), (6, 4)
    reached = receptive_field(build(shape), shape, (row, col))
    np.testing.assert_array_equal(reached, earlier(shape, row, col))
    assert reached[0, row - 1, col + 2] and reached[0, row - 1, col + 3]
    assert reached[0, row - 2, col + 3]


# -- exact likelihood ----------------------------------------------------------------------

@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 3), ((1, 1, 3), 4), ((3, 1, 1), 3),
                                          ((3, 1, 2), 2)])
def test_nll_is_exact_probabilities_sum_to_one(shape, levels):
    """The bins of every channel tile the line, the network sees only earlier pixels and
    a channel's mean only earlier channels of its pixel: the image probabilities sum to 1."""
    nll = assert_probabilities_sum_to_one(build(shape, levels), shape, levels)
    assert nll.std() > 1e-3                            # not trivially uniform


def test_colour_coupling_makes_channels_of_a_pixel_dependent():
    """With one mixture component the channels of a pixel can depend on each other only
    through the coupled means (mu_G = m_G + a x_R, mu_B = m_B + b x_R + g x_G): the joint
    distribution of a 1x1 RGB image is not the product of its marginals."""
    shape, levels = (3, 1, 1), 3
    model = build(shape, levels, mixtures=1)
    p = np.exp(-assert_probabilities_sum_to_one(model, shape, levels))
    joint = p.reshape(levels, levels, levels)          # (R, G, B)
    red_green = joint.sum(axis=2)
    independent = red_green.sum(axis=1)[:, None] * red_green.sum(axis=0)[None, :]
    assert np.abs(red_green - independent).max() > 1e-3
    green_blue = joint.sum(axis=0)
    independent = green_blue.sum(axis=1)[:, None] * green_blue.sum(axis=0)[None, :]
    assert np.abs(green_blue - independent).max() > 1e-3


def test_dropout_draws_from_the_generator_and_is_off_in_evaluation():
    shape = (1, 4, 4)
    x = mg.tensor(np.random.default_rng(0).integers(0, 5, (6,) + shape).astype(np.uint8))
    model, plain = build(shape, 5, dropout=0.5), build(shape, 5)
    a, b = (model.loss(x, Generator(s)).item() for s in (1, 1))
    assert a == b != model.loss(x, Generator(2)).item()
    model.eval()
    np.testing.assert_array_equal(model.nll(x).numpy(), plain.nll(x).numpy())


# -- shapes and config ---------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 7), (1, 5, 3), (3, 28, 28)])
def test_any_image_size_gives_parameters_at_every_pixel(shape):
    model = build(shape)
    x = mg.tensor(np.zeros((2,) + shape, dtype=np.float32))
    per_pixel = TINY["mixtures"] * (1 + 2 * shape[0] + shape[0] * (shape[0] - 1) // 2)
    assert model(x).shape == (2, per_pixel) + shape[1:]


def test_shifted_layers_name_what_is_wrong():
    with pytest.raises(ValueError, match="kw odd"):
        DownShiftedConv2d(1, 1, (2, 2))
    up = DownRightShiftedConvTranspose2d(1, 1, (2, 2), 2)
    with pytest.raises(ValueError, match="cannot crop"):
        up(mg.zeros((1, 1, 2, 2)), (5, 4))


@pytest.mark.parametrize("config,message", [({"filters": 0}, "filters must be"),
                                            ({"resnets": 0}, "resnets must be"),
                                            ({"mixtures": 1.5}, "mixtures must be"),
                                            ({"dropout": 1.0}, "dropout must be")])
def test_bad_config_names_the_model_and_the_value(config, message):
    with pytest.raises(ValueError, match=f"pixelcnn\\+\\+: {message}"):
        build((1, 4, 4), **config)


# -- sampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,levels", [((1, 5, 4), 2), ((1, 3, 3), 17), ((3, 3, 2), 256)])
def test_samples_are_valid_images_and_reproducible(shape, levels):
    model = build(shape, levels)
    a = model.sample(6, Generator(5))
    assert a.dtype == np.uint8 and a.shape == (6,) + shape
    assert a.min() >= 0 and a.max() < levels
    np.testing.assert_array_equal(a, model.sample(6, Generator(5)))


@pytest.mark.parametrize("shape,levels", [((1, 1, 2), 3), ((3, 1, 1), 2), ((3, 1, 1), 3)])
def test_samples_follow_the_model_distribution(shape, levels):
    """Raster-order sampling, one mixture draw per pixel with the channels coupled in turn,
    draws from p(x) itself: the frequency of each of the few possible images matches
    exp(-nll) within 4.5 standard errors."""
    model = build(shape, levels, seed=3)
    assert_samples_follow_nll(model, shape, levels)


# -- training ------------------------------------------------------------------------------

@pytest.mark.slow
def test_mixture_learns_the_channels_of_a_pixel():
    """The coupled means and the shared component learn R -> G -> B within a pixel."""
    test_nll = colour_test_nll(build((3, 4, 4), filters=8), Generator(0))
    assert test_nll < 23.0                             # optimum 21.49, blind to colour 33.27


# -- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("data", ["digits", pytest.param("digits-bin", marks=pytest.mark.slow),
                                  pytest.param("shapes", marks=pytest.mark.slow)])
def test_train_sample_eval_from_the_cli(data, tmp_path, capsys):
    metrics = train_sample_eval("pixelcnn++", data,
                                ["--steps", "3", "--batch-size", "16", "--config", "filters=8",
                                 "resnets=1", "mixtures=3"], tmp_path, capsys)
    assert metrics["steps"] == 3
    assert 0 < metrics["test_bpd"] < 2 * np.log2(mg.data.levels(data))
