"""The end-to-end command-line check every model's tests share, and a snapshot of a folder
to show that a command left it as it was:

    from clicheck import snapshot, train_sample_eval
"""
import json
import os

import pytest

from minigen import cli


def snapshot(folder):
    """Every file under folder with its bytes and modification time."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[path] = (f.read(), os.stat(path).st_mtime_ns)
    return out


def train_sample_eval(name, data, args, tmp_path, capsys, label=None):
    """`minigen train NAME --data DATA ARGS` into tmp_path/run, then `minigen sample` of 4
    (class `label` for a conditional model) and `minigen eval` of the run. Checks that
    training wrote metrics.json (naming the model) and samples, that sample wrote its
    picture (text for text data), and that eval scores the test set as training's metrics
    did (every test_ metric the model declares). Returns the metrics."""
    out = tmp_path / "run"
    suffix = ".txt" if data == "fortunes" else ".png"
    assert cli.main(["train", name, "--data", data, "--out", str(out), "--quiet",
                     *args]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == name and metrics["params"] > 0
    assert (out / "samples").with_suffix(suffix).is_file()
    chosen = [] if label is None else ["--label", str(label)]
    assert cli.main(["sample", str(out), "--n", "4", *chosen,
                     "--out", str((tmp_path / "s").with_suffix(suffix))]) == 0
    assert (tmp_path / "s").with_suffix(suffix).is_file()
    capsys.readouterr()
    assert cli.main(["eval", str(out)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    tested = [key for key in metrics if key.startswith("test_")]
    assert tested, f"{name} reported no test metric"
    for key in tested:
        assert evaluated[key] == pytest.approx(metrics[key], rel=1e-6), key
    return metrics
