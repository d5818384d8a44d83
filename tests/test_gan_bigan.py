"""bigan: D judges pairs, G and E are one player playing the swapped labels, the probe
reads E(x), and the command line."""
import json

import numpy as np
import pytest
from clicheck import train_sample_eval
from gancheck import refused, tiny_classifier  # noqa: F401 (a fixture)

import minigen as mg
from minigen import cli, trainer
from minigen.random import Generator


def _run(tmp_path, **extra):
    return trainer.Run("bigan", "digits", out=tmp_path, config=[
        "steps=1", "batch_size=8", "channels=8", "latent=6", "joint_hidden=16",
        *[f"{k}={v}" for k, v in extra.items()]])


def test_g_and_e_are_one_player_and_d_judges_pairs(tmp_path):
    model = _run(tmp_path).model
    players = model.players()
    gen = {id(p) for p in players["generator"].parameters}
    assert {id(p) for p in model.E.parameters()} <= gen
    assert {id(p) for p in model.G.parameters()} <= gen
    assert not gen & {id(p) for p in players["discriminator"].parameters}
    model.eval()
    x = model.scale(mg.tensor(np.random.default_rng(0).integers(0, 17, (3, 1, 8, 8))))
    z = model.noise(3, Generator(1))
    with mg.no_grad():
        a, b = model.D(x, z).numpy(), model.D(x, z * 2.0).numpy()
    assert np.abs(a - b).max() > 0  # the latent matters to D


def test_the_losses_are_eq_3_with_the_labels_swapped_for_g_and_e(tmp_path):
    run = _run(tmp_path)
    model = run.model
    updates = model.updates(trainer.StepBatches(run, 0), Generator(0))
    d_update = next(updates)
    d_update.loss.backward()
    assert all(p.grad is None for p in model.E.parameters())  # E(x) is fixed for D
    g_update = next(updates)
    assert g_update.player == "generator"
    model.zero_grad()
    g_update.loss.backward()
    assert all(p.grad is not None for p in model.E.parameters())

    # by hand: D's loss and its swapped form on the same pairs
    model.eval()
    x = model.scale(mg.tensor(np.random.default_rng(2).integers(0, 17, (4, 1, 8, 8))))
    z = model.noise(4, Generator(3))
    with mg.no_grad():
        real, fake = (model.D(x, model.E(x)).numpy().astype(np.float64),
                      model.D(model.G(z), z).numpy().astype(np.float64))
    d_loss = np.logaddexp(0, -real).mean() + np.logaddexp(0, fake).mean()
    g_loss = np.logaddexp(0, real).mean() + np.logaddexp(0, -fake).mean()
    from minigen.gan import losses
    assert losses.minimax_d(mg.tensor(real), mg.tensor(fake)).item() == \
        pytest.approx(d_loss, rel=1e-6)
    assert losses.minimax_d(mg.tensor(fake), mg.tensor(real)).item() == \
        pytest.approx(g_loss, rel=1e-6)


def test_features_are_the_encoders_code(tmp_path):
    model = _run(tmp_path).model
    model.eval()
    x = mg.tensor(np.random.default_rng(0).integers(0, 17, (5, 1, 8, 8)))
    with mg.no_grad():
        np.testing.assert_array_equal(model.features(x).numpy(),
                                      model.E(model.scale(x)).numpy())
    assert model.features(x).shape == (5, 6)


def test_cli_train_sample_eval_and_probe(tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("bigan", "digits", [
        "--steps", "3", "--batch-size", "16", "--config", "channels=8", "latent=8",
        "joint_hidden=16", "eval_samples=40"], tmp_path, capsys)
    for key in ("test_fid_local", "test_recon_mse", "test_code_mse", "test_d_fake"):
        assert np.isfinite(metrics[key]), key
    assert (tmp_path / "run" / "reconstructions.png").is_file()
    capsys.readouterr()
    assert cli.main(["probe", str(tmp_path / "run"), "--quiet"]) == 0
    probe = json.loads(capsys.readouterr().out)
    assert 0.0 <= probe["linear_probe_acc"] <= 1.0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["linear_probe_acc"] == probe["linear_probe_acc"]


def test_bad_config_names_the_key(tmp_path, capsys):
    assert "joint_hidden" in refused("bigan", ["joint_hidden=0"], tmp_path, capsys)
