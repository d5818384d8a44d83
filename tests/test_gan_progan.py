"""Progressive growing: at alpha = 0 the full-size output is the half-size one upsampled, at
alpha = 1 the new block alone; the discriminator fades the same way; the minibatch
standard deviation; and `progan` (its alpha schedule, kept through a resume) end to end."""
import numpy as np
import pytest

from clicheck import train_sample_eval
from gancheck import build, refused, tiny_classifier  # noqa: F401 (a fixture)

import minigen as mg
from minigen import trainer
from minigen import functional as F
from minigen.gan.progressive import (ProgressiveDiscriminator, ProgressiveGenerator, fade,
                                     minibatch_stddev, pixel_norm)
from minigen.random import Generator

SHAPE = (1, 28, 28)


def _nets(channels=8):
    return (ProgressiveGenerator(6, SHAPE, channels, generator=Generator(0)),
            ProgressiveDiscriminator(SHAPE, channels, generator=Generator(1)))


def test_at_alpha_zero_the_full_output_is_the_half_size_one_upsampled():
    gen, _ = _nets()
    z = Generator(2).normal((3, 6))
    with mg.no_grad():
        low = gen(z, 0.0, low=True)
        full = gen(z, 0.0)
    assert low.shape == (3, 1, 14, 14) and full.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(full.numpy(), F.upsample_nearest(low, 2).numpy())


def test_alpha_fades_linearly_between_the_two_branches():
    gen, _ = _nets()
    z = Generator(2).normal((2, 6))
    with mg.no_grad():
        old = np.arctanh(gen(z, 0.0).numpy().astype(np.float64))
        new = np.arctanh(gen(z, 1.0).numpy().astype(np.float64))
        mid = np.arctanh(gen(z, 0.25).numpy().astype(np.float64))
    assert np.abs(new - old).max() > 1e-3
    np.testing.assert_allclose(mid, 0.75 * old + 0.25 * new, rtol=1e-3, atol=1e-4)


def test_the_discriminator_at_alpha_zero_sees_only_the_pooled_image():
    _, disc = _nets()
    x = Generator(3).normal((4,) + SHAPE)
    with mg.no_grad():
        at_zero = disc(x, 0.0).numpy()
        pooled = disc(F.avg_pool2d(x, 2), 0.0, low=True).numpy()
    np.testing.assert_allclose(at_zero, pooled, rtol=1e-5, atol=1e-6)
    x = mg.tensor(x.numpy(), requires_grad=True)
    disc(x, 0.0).sum().backward()
    for p in list(disc.from_image_high.parameters()) + list(disc.high.parameters()):
        assert p.grad is None or not np.any(p.grad.numpy())


def test_fade_and_pixel_norm():
    a, b = mg.tensor([1.0, 2.0]), mg.tensor([3.0, 6.0])
    assert fade(0.0, a, None) is a and fade(1.0, None, b) is b
    np.testing.assert_allclose(fade(0.5, a, b).numpy(), [2.0, 4.0])
    y = pixel_norm(Generator(0).normal((2, 5, 3, 3), std=4.0)).numpy()
    np.testing.assert_allclose((y ** 2).mean(axis=1), 1.0, rtol=1e-5)


def test_minibatch_stddev_is_one_channel_of_the_batchs_spread():
    x = Generator(0).normal((5, 3, 2, 2))
    y = minibatch_stddev(x, eps=0.0).numpy()
    assert y.shape == (5, 4, 2, 2)
    np.testing.assert_array_equal(y[:, :3], x.numpy())
    expected = x.numpy().astype(np.float64).std(axis=0).mean()
    np.testing.assert_allclose(y[:, 3], expected, rtol=1e-5)
    same = minibatch_stddev(mg.tensor(np.repeat(x.numpy()[:1], 5, axis=0)), eps=0.0)
    np.testing.assert_allclose(same.numpy()[:, 3], 0.0, atol=1e-6)  # a collapsed batch: 0


def _model(**config):
    return build("progan", **{"channels": 8, "latent": 6, "low_steps": 3, "fade_steps": 4,
                              **config})


def test_the_alpha_schedule():
    model = _model()
    alphas, half = [], []
    for step in range(10):
        model.steps_done = step
        alphas.append(model.alpha)
        half.append(model.half_size)
    assert alphas == [0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert half == [True] * 3 + [False] * 7
    model.eval()
    model.steps_done = 0
    assert not model.half_size  # samples are always full size


def test_the_game_runs_at_the_schedules_resolution():
    model = _model()
    x = mg.tensor(np.random.default_rng(0).integers(0, 17, (4, 1, 8, 8)))
    z = model.noise(4, Generator(1))
    assert model.scale(x).shape == (4, 1, 4, 4) and model.generate(z).shape == (4, 1, 4, 4)
    model.steps_done = 5  # alpha 0.5: full size, the real images faded too
    real = model.scale(x).numpy()
    whole = x.numpy() / 16 * 2 - 1
    blurred = F.upsample_nearest(F.avg_pool2d(mg.tensor(whole), 2), 2).numpy()
    np.testing.assert_allclose(real, 0.5 * blurred + 0.5 * whole, rtol=1e-5, atol=1e-6)
    assert model.generate(z).shape == (4, 1, 8, 8)


def test_steps_advance_the_schedule_and_resume_is_exact(tmp_path):
    config = ["steps=9", "batch_size=8", "channels=8", "latent=6", "low_steps=3",
              "fade_steps=4", "checkpoint_every=100"]
    whole = trainer.Run("progan", "digits", seed=1, out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    assert whole.model.steps_done == 9 and whole.model.alpha == 1.0
    assert trainer.train("progan", "digits", seed=1, out=tmp_path / "parts", config=config,
                         progress=False, stop_after=5) is None
    resumed = trainer.Run.from_checkpoint(tmp_path / "parts" / "checkpoint.npz")
    assert resumed.model.steps_done == 5 and resumed.model.alpha == 0.5
    resumed.train(progress=False)
    expected, got = whole.state(), resumed.state()
    for key in expected["params"]:
        np.testing.assert_array_equal(got["params"][key], expected["params"][key])
    with open(tmp_path / "parts" / "log.csv") as f:
        assert "alpha" in f.readline()


def test_cli_train_sample_eval(tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("progan", "digits", [
        "--steps", "4", "--batch-size", "16", "--config", "channels=8", "latent=8",
        "low_steps=2", "fade_steps=1", "eval_samples=40"], tmp_path, capsys)
    for key in ("test_fid_local", "test_kid_local", "test_d_real"):
        assert np.isfinite(metrics[key]), key


@pytest.mark.parametrize("config, key", [(["fade_steps=0"], "fade_steps"),
                                         (["low_steps=-1"], "low_steps")])
def test_bad_config_names_the_key(tmp_path, capsys, config, key):
    assert key in refused("progan", config, tmp_path, capsys)


def test_features_are_ds_last_hidden_layer():
    model = _model()
    model.eval()
    x = mg.tensor(np.random.default_rng(0).integers(0, 17, (3, 1, 8, 8)))
    with mg.no_grad():
        f = model.features(x)
        np.testing.assert_allclose(model.D.head(f).numpy()[:, 0],
                                   model.discriminate(model.scale(x)).numpy(), rtol=1e-6)
