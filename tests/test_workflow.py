"""The training workflow end to end: CLI, run folder, resume, early stopping, and the
errors that must leave existing files untouched."""
import json
import os

import numpy as np
import pytest
from clicheck import snapshot

from minigen import checkpoint, cli, models, trainer

TINY = ["steps=12", "batch_size=32", "checkpoint_every=5", "eval_batch_size=200"]
TINY_MADE = TINY + ["hidden=32,32", "num_masks=2", "ordering=random"]


def run_cli(*argv):
    return cli.main([str(a) for a in argv])


def test_train_writes_the_four_files_and_sample_and_eval_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("train", "made", "--data", "digits-bin", "--out", out, "--quiet",
                   "--config", *TINY_MADE) == 0
    for name in ("metrics.json", "checkpoint.npz", "samples.png", "log.csv"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("model", "data", "steps", "seed", "params", "train_seconds",
                "seconds_per_step", "test_nll_nats", "test_bpd"):
        assert key in metrics, key
    assert metrics["steps"] == 12 and metrics["model"] == "made"
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"] / (64 * np.log(2)))

    assert run_cli("sample", out, "--n", 9, "--out", tmp_path / "more.png") == 0
    assert (tmp_path / "more.png").is_file()
    capsys.readouterr()
    assert run_cli("eval", out) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_nll_nats"] == pytest.approx(metrics["test_nll_nats"], rel=1e-6)


def test_same_seed_same_numbers(tmp_path):
    a = trainer.train("histogram", "digits", out=tmp_path / "a", config=TINY, progress=False)
    b = trainer.train("histogram", "digits", out=tmp_path / "b", config=TINY, progress=False)
    assert a["test_nll_nats"] == b["test_nll_nats"]


def test_killed_and_resumed_run_is_bit_identical(tmp_path):
    whole = trainer.Run("made", "digits-bin", seed=3, out=tmp_path / "whole",
                        config=TINY_MADE)
    whole.train(progress=False)

    assert trainer.train("made", "digits-bin", seed=3, out=tmp_path / "parts",
                         config=TINY_MADE, progress=False, stop_after=7) is None
    resumed = trainer.Run.from_checkpoint(tmp_path / "parts" / "checkpoint.npz")
    assert resumed.step == 7
    resumed.train(progress=False)

    expected, got = whole.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_early_stopping_reports_the_best_step(tmp_path):
    metrics = trainer.train("histogram", "digits", out=tmp_path / "es", early_stop=4,
                            config=TINY, progress=False)
    assert metrics["best_step"] in (4, 8, 12)
    assert "valid_nll_nats" in metrics and "test_nll_nats" in metrics


def test_bad_config_key_lists_valid_ones_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("train", "made", "--data", "digits-bin", "--out", out,
                   "--config", "hiden=3") == 2
    err = capsys.readouterr().err
    assert "unknown config key 'hiden'" in err and "hidden" in err and "num_masks" in err
    assert not out.exists()
    with pytest.raises(models.ConfigError, match="hidden=abc"):
        models.make_config(models.get("made"), ["hidden=abc"])


def test_missing_dataset_is_one_clear_error_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("train", "histogram", "--data", "fashion-mnist-bin", "--data-dir", empty,
                   "--out", out) == 2
    err = capsys.readouterr().err
    assert "dataset-fashion-mnist" in err and str(empty) in err
    assert not out.exists()


def test_corrupt_checkpoint_is_an_error_and_files_stay(tmp_path, capsys):
    out = tmp_path / "run"
    trainer.train("histogram", "digits-bin", out=out, config=TINY, progress=False)
    path = out / "checkpoint.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = snapshot(out)
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load(path)
    assert run_cli("train", "histogram", "--data", "digits-bin", "--out", out, "--resume") == 2
    assert run_cli("sample", out) == 2
    assert "corrupt" in capsys.readouterr().err
    assert snapshot(out) == before


def test_checkpoint_of_another_model_is_an_error_and_files_stay(tmp_path, capsys):
    out = tmp_path / "run"
    trainer.train("histogram", "digits-bin", out=out, config=TINY, progress=False)
    before = snapshot(out)
    assert run_cli("train", "made", "--data", "digits-bin", "--out", out, "--resume") == 2
    assert "holds model 'histogram', not 'made'" in capsys.readouterr().err
    assert snapshot(out) == before


def test_checkpoint_round_trip_keeps_nested_state(tmp_path):
    state = {"a": np.arange(3.0), "b": [1, {"c": np.ones((2, 2), np.float32)}], "d": None,
             "e": "text", "f": 2.5}
    checkpoint.save(tmp_path / "x.npz", state)
    loaded = checkpoint.load(tmp_path / "x.npz")
    np.testing.assert_array_equal(loaded["a"], state["a"])
    assert loaded["b"][1]["c"].dtype == np.float32 and loaded["d"] is None
    assert loaded["e"] == "text" and loaded["f"] == 2.5
    assert [p for p in os.listdir(tmp_path) if p.startswith(".")] == []


def test_list_shows_models_and_datasets(capsys):
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    assert "made" in out and "histogram" in out and "digits-bin" in out
