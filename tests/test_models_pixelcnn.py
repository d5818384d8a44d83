"""PixelCNN and Gated PixelCNN: causal in raster and colour order (checked with the engine's
gradients), PixelCNN's blind spot and the gated model's lack of one, exact likelihoods that
sum to one, samplers that draw from the model's own distribution, colour masks that learn
dependencies between the channels of a pixel, and the CLI end to end."""
import itertools

import numpy as np
import pytest

import minigen as mg
from minigen import backend, cli, models
from minigen.kernels.masked_conv2d import mask as masked_conv2d_mask
from minigen.autoregressive.pixel_model import receptive_field
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval
from likelihoodcheck import (all_values, assert_probabilities_sum_to_one,
                             assert_samples_follow_nll, colour_test_nll)

TINY = {"pixelcnn": {"channels": 12, "blocks": 2, "first_kernel": 3, "kernel": 3},
        "gated-pixelcnn": {"channels": 12, "layers": 3, "kernel": 3}}
MODELS = sorted(TINY)


def build(name, shape, levels=2, seed=0, num_classes=None, **config):
    spec = DataSpec("test", tuple(shape), "discrete", levels, num_classes)
    return models.get(name).cls(spec, generator=Generator([seed, 0]),
                                **{**TINY[name], **config})


def before(shape, row, col, group):
    """The inputs (c, r, s) that may affect the logits of group `group` at (row, col): every
    earlier pixel, and the earlier colour channels of the pixel itself."""
    c, r, s = np.indices(shape)
    return (r < row) | ((r == row) & (s < col)) | ((r == row) & (s == col) & (c < group))


def taps(kernel, mask_type):
    """(dr, dc) offsets a masked k x k layer reads, from the kernel's own mask."""
    m = masked_conv2d_mask(1, 1, kernel, mask_type)[0, 0]
    return {(int(r) - kernel // 2, int(c) - kernel // 2) for r, c in zip(*np.nonzero(m))}


# -- causality and the receptive field ------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels,levels", [(1, 2), (1, 5), (3, 2), (3, 4)])
def test_logits_never_see_the_pixel_itself_or_later(name, channels, levels):
    """For every pixel and colour group: the gradient of its logits is zero at the pixel's
    own and later channels and at every later pixel; with colour it reaches the earlier
    channels of the pixel itself (the colour masks do connect R -> G -> B)."""
    shape = (channels, 4, 4)
    model = build(name, shape, levels)
    for row, col, group in itertools.product(range(4), range(4), range(channels)):
        reached = receptive_field(model, shape, (row, col), group=group)
        allowed = before(shape, row, col, group)
        assert not (reached & ~allowed).any(), (row, col, group)
        assert reached[:group, row, col].all(), (row, col, group)


@pytest.mark.parametrize("name,config", [("pixelcnn", {"first_kernel": 7, "kernel": 5}),
                                         ("gated-pixelcnn", {"kernel": 5, "layers": 2})])
def test_kernels_wider_than_the_image_stay_causal(name, config):
    shape = (1, 5, 5)
    model = build(name, shape, **config)
    for row, col in itertools.product(range(5), range(5)):
        reached = receptive_field(model, shape, (row, col))
        assert not (reached & ~before(shape, row, col, 0)).any(), (row, col)
    assert reached[0].sum() == 24                      # the last pixel sees all the others


def test_pixelcnn_receptive_field_is_the_sum_of_its_masks_and_has_a_blind_spot():
    """The field of a stack of masked convolutions is the Minkowski sum of their taps (1x1
    layers add nothing): it grows up-left but never fills the wedge up-right. Pixel
    (row - 1, col + 2) lies within reach of the stack (3 layers of radius 1) yet is not
    reached: the blind spot."""
    shape, (row, col) = (1, 9, 9), (6, 4)
    model = build("pixelcnn", shape)                 # 3x3 type A, then two 3x3 type B
    offsets = taps(3, "A")
    for _ in range(2):
        offsets = {(a + c, b + d) for a, b in offsets for c, d in taps(3, "B")}
    expected = np.zeros(shape, dtype=bool)
    for dr, dc in offsets:
        expected[0, row + dr, col + dc] = True
    reached = receptive_field(model, shape, (row, col))
    np.testing.assert_array_equal(reached, expected)
    radius = 3
    window = before(shape, row, col, 0)
    window[:, : row - radius] = window[:, :, : col - radius] = False
    window[:, :, col + radius + 1:] = False
    assert not reached[0, row - 1, col + 2] and window[0, row - 1, col + 2]
    missed = {(int(r) - row, int(c) - col)
              for r, c in zip(*np.nonzero(window[0] & ~reached[0]))}
    assert missed == {(-1, 2), (-1, 3), (-2, 3)}


def test_gated_pixelcnn_has_no_blind_spot():
    """After L layers of kernel 3 the gated model sees, exactly, every earlier pixel of the
    current row within L columns and of the L + 1 rows above within L columns each side:
    nothing inside that window is missed."""
    shape, (row, col), layers = (1, 10, 9), (7, 4), 3
    model = build("gated-pixelcnn", shape, layers=layers)
    expected = before(shape, row, col, 0)
    expected[:, : row - layers - 1] = False
    expected[:, :, : col - layers] = expected[:, :, col + layers + 1:] = False
    np.testing.assert_array_equal(receptive_field(model, shape, (row, col)), expected)


# -- exact likelihood ----------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 2), ((1, 1, 3), 3), ((3, 1, 2), 2),
                                          ((3, 1, 1), 3)])
def test_nll_is_exact_probabilities_sum_to_one(name, shape, levels):
    nll = assert_probabilities_sum_to_one(build(name, shape, levels), shape, levels)
    assert nll.std() > 1e-3                            # not trivially uniform


@pytest.mark.parametrize("name", MODELS)
def test_conditional_model_is_a_distribution_for_each_label(name):
    shape = (1, 2, 2)
    model = build(name, shape, num_classes=3, conditional=True)
    rng = np.random.default_rng(0)
    for _, p in model.named_parameters():              # class biases start at zero
        p.data[...] = p.data + backend.to_device(rng.normal(0, 0.5, p.shape).astype(p.dtype),
                                                 p.device)
    per_label = [assert_probabilities_sum_to_one(model, shape, 2, labels=label)
                 for label in range(3)]
    assert np.abs(per_label[0] - per_label[1]).max() > 1e-2
    with pytest.raises(ValueError, match="needs the labels"):
        model.nll(mg.tensor(all_values(shape, 2)))
    with pytest.raises(ValueError, match="labelled data"):
        build(name, shape, conditional=True)


def test_colour_data_need_channels_the_colour_groups_divide():
    with pytest.raises(ValueError, match="multiple of 6"):
        build("pixelcnn", (3, 4, 4), channels=8)
    with pytest.raises(ValueError, match="multiple of 3"):
        build("gated-pixelcnn", (3, 4, 4), channels=8)


# -- sampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape,levels", [((1, 5, 4), 2), ((1, 3, 3), 17), ((3, 3, 2), 4)])
def test_samples_are_valid_images_and_reproducible(name, shape, levels):
    model = build(name, shape, levels)
    a = model.sample(6, Generator(5))
    assert a.dtype == np.uint8 and a.shape == (6,) + shape
    assert a.min() >= 0 and a.max() < levels
    np.testing.assert_array_equal(a, model.sample(6, Generator(5)))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("shape,levels", [((1, 1, 2), 3), ((3, 1, 1), 2)])
def test_samples_follow_the_model_distribution(name, shape, levels):
    """Raster and colour-order sampling draws from p(x) itself: the frequency of each of the
    few possible images matches exp(-nll) within 4.5 standard errors."""
    model = build(name, shape, levels, seed=3)
    assert_samples_follow_nll(model, shape, levels)


# -- training ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,config", [("pixelcnn", {"channels": 12, "blocks": 1}),
                                         ("gated-pixelcnn", {"channels": 12, "layers": 1})])
def test_colour_masks_learn_the_channels_of_a_pixel(name, config):
    test_nll = colour_test_nll(build(name, (3, 4, 4), **config))
    assert test_nll < 23.0                             # optimum 21.49, blind to colour 33.27


@pytest.mark.parametrize("name", MODELS)
def test_train_sample_eval_from_the_cli(name, tmp_path, capsys):
    config = [f"{k}={v}" for k, v in TINY[name].items()]
    metrics = train_sample_eval(name, "digits-bin", ["--steps", "8", "--batch-size", "32",
                                                     "--lr", "0.01", "--config", *config],
                                tmp_path, capsys)
    assert metrics["steps"] == 8
    assert 0 < metrics["test_nll_nats"] < 64 * np.log(2)        # beats fair coins


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn"])
def test_conditional_model_trains_samples_a_chosen_class_and_evaluates(name, tmp_path, capsys):
    """--config conditional=true: the trainer hands the labels to loss, nll and sample;
    `minigen sample --label 3` draws class 3, and eval scores p(x | y) as training did."""
    config = [f"{k}={v}" for k, v in TINY[name].items()] + ["conditional=true"]
    metrics = train_sample_eval(name, "digits-bin", ["--steps", "4", "--batch-size", "32",
                                                     "--config", *config],
                                tmp_path, capsys, label=3)
    assert np.isfinite(metrics["test_nll_nats"])
    out = str(tmp_path / "run")
    assert cli.main(["sample", out, "--label", "10"]) != 0   # digits has classes 0..9


def test_labels_change_what_the_trainer_scores(tmp_path):
    """The same trained conditional model scores the test set differently with its true
    labels than with shifted ones: the labels reach the model."""
    from minigen import trainer
    run = trainer.Run("pixelcnn", "digits-bin", out=str(tmp_path / "r"),
                      config={**TINY["pixelcnn"], "conditional": True, "steps": 30,
                              "batch_size": 32, "lr": 0.01})
    run.train(progress=False)
    true = run.evaluate_data(run.x_test, run.y_test)["nll_nats"]
    shifted = run.evaluate_data(run.x_test, (run.y_test + 1) % 10)["nll_nats"]
    assert true != shifted


def test_receptive_field_command_draws_both_models(tmp_path, capsys):
    """`minigen receptive-field pixelcnn gated-pixelcnn`: a picture, and per model how many
    inputs the centre pixel sees, none of them at or after it."""
    out = tmp_path / "rf.png"
    assert cli.main(["receptive-field", "pixelcnn", "gated-pixelcnn", "--size", "8",
                     "--out", str(out)]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert "pixelcnn: output (4, 4) sees" in printed and "0 at or after it" in printed
    assert cli.main(["receptive-field", "made", "--out", str(tmp_path / "x.png")]) == 2
    assert cli.main(["receptive-field", "pixelcnn", "--size", "8", "--pixel", "9", "0",
                     "--out", str(tmp_path / "y.png")]) == 2
