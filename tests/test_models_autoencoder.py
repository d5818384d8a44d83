"""Autoencoders: each corruption of the denoising autoencoder does what it says, the code is
the probe's feature, the Gaussian of the training codes is saved with the run, bad configs
name their key, and train, sample, eval and probe work from the command line."""
import json

import numpy as np
import pytest

import minigen as mg
from minigen import cli, models, trainer
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval

TINY = ["steps=3", "batch_size=16", "eval_batch_size=200", "hidden=16", "latent=4"]
DIGITS_BIN = DataSpec("digits-bin", (1, 8, 8), "discrete", 2, 10)


def build(name, **config):
    entry = models.get(name)
    return entry.cls(DIGITS_BIN, Generator(0), **{**models.model_config(entry.config),
                                                  **config})


def corrupt(noise, level, y):
    return build("dae", noise=noise, noise_level=level).corrupt(mg.tensor(y), Generator(1)) \
        .numpy()


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_masking_zeroes_a_share_noise_level_of_the_inputs(level):
    y = np.random.default_rng(0).uniform(0.2, 1.0, (50, 1, 8, 8)).astype(np.float32)
    out = corrupt("masking", level, y)
    zeroed = out == 0
    assert zeroed.mean() == pytest.approx(level, abs=0.02)
    np.testing.assert_array_equal(out[~zeroed], y[~zeroed])


@pytest.mark.parametrize("level", [0.1, 0.5])
def test_salt_and_pepper_sets_a_share_noise_level_to_zero_or_the_maximum(level):
    y = np.full((50, 1, 8, 8), 0.5, dtype=np.float32)
    out = corrupt("salt-and-pepper", level, y)
    changed = out != 0.5
    assert changed.mean() == pytest.approx(level, abs=0.02)
    assert set(np.unique(out[changed])) <= {0.0, 1.0}
    assert (out[changed] == 1.0).mean() == pytest.approx(0.5, abs=0.05)


def test_gaussian_noise_adds_noise_of_that_standard_deviation():
    y = np.random.default_rng(0).uniform(0, 1, (100, 1, 8, 8)).astype(np.float32)
    noise = corrupt("gaussian", 0.3, y) - y
    assert noise.std() == pytest.approx(0.3, rel=0.03)
    assert abs(noise.mean()) < 0.01


def test_an_autoencoder_sees_its_inputs_uncorrupted():
    y = mg.tensor(np.random.default_rng(0).uniform(0, 1, (4, 1, 8, 8)).astype(np.float32))
    assert build("ae").corrupt(y, Generator(0)) is y


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_features_are_the_code(arch):
    model = build("ae", arch=arch, latent=5, channels=4)
    x = mg.tensor(np.random.default_rng(0).integers(0, 2, (6, 1, 8, 8)))
    features = model.features(x)
    assert features.shape == (6, 5)
    np.testing.assert_array_equal(features.numpy(),
                                  model.encode(model.likelihood.inputs(x)).numpy())


@pytest.mark.parametrize("name,config,key", [
    ("ae", {"arch": "rnn"}, "arch"), ("ae", {"latent": 0}, "latent"),
    ("ae", {"hidden": (0,)}, "hidden"), ("ae", {"decoder": "poisson"}, "decoder"),
    ("ae", {"arch": "conv", "channels": 0}, "channels"), ("dae", {"noise": "blur"}, "noise"),
    ("dae", {"noise_level": -0.1}, "noise_level"),
    ("dae", {"noise": "masking", "noise_level": 1.5}, "noise_level")])
def test_bad_configs_name_the_key(name, config, key):
    with pytest.raises(ValueError, match=key):
        build(name, **config)


def test_the_gaussian_of_the_codes_is_saved_with_the_run(tmp_path):
    run = trainer.Run("ae", "digits-bin", out=tmp_path, config=TINY)
    run.train(progress=False)
    assert np.any(run.model.code_mean != 0)
    loaded = trainer.Run.from_checkpoint(tmp_path / "checkpoint.npz")
    np.testing.assert_array_equal(loaded.model.code_mean, run.model.code_mean)
    np.testing.assert_array_equal(loaded.model.code_moment, run.model.code_moment)
    a = loaded.model.sample(5, Generator(3))
    b = run.model.sample(5, Generator(3))
    assert a.shape == (5, 1, 8, 8) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,extra", [("ae", []), ("ae", ["arch=conv", "channels=4"]),
                                        ("dae", ["noise=salt-and-pepper"]),
                                        ("dae", ["noise=gaussian", "noise_level=0.3"])])
def test_cli_train_sample_eval_probe(name, extra, tmp_path, capsys):
    metrics = train_sample_eval(name, "digits-bin", ["--config", *TINY, *extra], tmp_path,
                                capsys)
    assert metrics["test_recon_nats"] > 0 and 0 < metrics["test_mse"] < 1
    assert ("test_denoise_nats" in metrics) == (name == "dae")
    assert (tmp_path / "run" / "reconstructions.png").is_file()
    assert cli.main(["probe", str(tmp_path / "run"), "--quiet"]) == 0
    probed = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.1 < probed["linear_probe_acc"] <= 1
