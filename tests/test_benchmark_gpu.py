"""benchmarks/gpu.py and gpu.sh, the GPU run, checked on the CPU. GPU time comes a few
minutes at a time, so the one script it runs must be right before it gets there: the dry
run goes through the same cases, checks and rows as the run on the device (only the
device, the timer and the sizes differ), and a case that fails must leave its error in the
results while the run goes on."""
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks import gpu  # noqa: E402

FIELDS = {"id", "set", "title", "batch", "shapes", "target", "minigen_ms", "torch_ms",
          "ratio", "met", "check", "error"}


def test_the_device_script_parses():
    done = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run of an attention, a kernel and a model case (about 15 s)."""
    pytest.importorskip("torch", reason="the PyTorch side needs torch")
    out = tmp_path_factory.mktemp("gpu") / "gpu.json"
    code = gpu.main(["--dry-run", "--cases", "A1,K1,M1", "--out", str(out)])
    return code, json.loads(out.read_text())


def test_the_dry_run_times_every_kind_of_case(dry_run):
    code, result = dry_run
    assert code == 0 and result["finished"] and result["dry_run"]
    assert [r["id"] for r in result["rows"]] == ["A1", "K1", "M1"]
    assert result["settings"]["timer"] == "perf_counter"
    assert "cudnn.allow_tf32" in result["settings"]["torch"]
    for row in result["rows"]:
        assert FIELDS <= set(row), row["id"]
        assert row["error"] is None and row["check"]["ok"], row
        assert row["check"]["worst"] <= row["check"]["tolerance"] == gpu.TOLERANCE
        assert math.isclose(row["ratio"], row["minigen_ms"] / row["torch_ms"])
        assert row["met"] == (row["ratio"] <= row["target"])
        for side in gpu.SIDES:
            samples = row[side]["samples_ms"]
            assert len(samples) == row["rounds"] == gpu.DRY_RUN.max_rounds
            assert row[side]["median_ms"] == statistics.median(samples)
            assert row[side]["min_ms"] <= row[side]["median_ms"] <= row[side]["max_ms"]


def test_the_dry_run_divides_the_batches_by_8(dry_run):
    """K1 is x (32, 1, 28, 28) and M1 batch 100 on the CPU, A1 (16, 8, 1024, 64) on the
    GPU: x 8 there, / 8 here (at least 1)."""
    rows = {r["id"]: r for r in dry_run[1]["rows"]}
    assert rows["K1"]["batch"] == 4 and rows["K1"]["shapes"]["x"] == [4, 1, 28, 28]
    assert rows["M1"]["batch"] == 12 and rows["M1"]["batch_shape"][0] == 12
    assert rows["A1"]["shapes"]["q"] == [1, 8, 1024, 64]


def test_attention_says_what_each_side_ran(dry_run):
    a1 = {r["id"]: r for r in dry_run[1]["rows"]}["A1"]
    assert a1["target"] == 2.0
    assert math.isclose(a1["throughput_ratio"], 1 / a1["ratio"])
    assert a1["minigen_precision"]["kernel"].startswith("minigen.kernels.attention")
    assert a1["torch_precision"]["operators"]
    assert a1["tflops"]["minigen"] > 0 and a1["tflops"]["torch"] > 0


def _fake_cases(builds):
    """Stand-ins for gpu.cases: one case per build, set K, target 1.0."""
    return lambda run: {f"X{i}": gpu.Case(f"X{i}", "K", f"X{i}", 1, {}, build, cap=1.0,
                                          target=1.0) for i, build in enumerate(builds)}


def _agreeing():
    return gpu.Pair({side: lambda: 1.0 for side in gpu.SIDES}, lambda: [("loss", 1.0, 1.0)])


def test_a_failing_case_is_written_and_the_run_goes_on(monkeypatch, tmp_path, capsys):
    pytest.importorskip("torch", reason="the run records PyTorch's settings")

    def broken():
        raise RuntimeError("no such kernel")

    def disagreeing():
        return gpu.Pair({side: lambda: 1.0 for side in gpu.SIDES},
                        lambda: [("loss", 1.0, 1.1)])

    def slow():
        time.sleep(10)

    monkeypatch.setattr(gpu, "cases", _fake_cases([broken, disagreeing, slow, _agreeing]))
    monkeypatch.setattr(gpu, "DRY_RUN", replace(gpu.DRY_RUN, case_limit=0.3))
    out = tmp_path / "gpu.json"
    assert gpu.main(["--dry-run", "--out", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    assert [r["id"] for r in rows] == ["X0", "X1", "X2", "X3"]
    assert rows[0]["error"] == "RuntimeError: no such kernel" and rows[0]["ratio"] is None
    assert rows[0]["met"] is None and "no such kernel" in rows[0]["traceback"]
    assert not rows[1]["check"]["ok"] and "loss" in rows[1]["check"]["problems"][0]
    assert rows[1]["ratio"] is not None and rows[1]["error"] is None  # still timed
    assert "time limit" in rows[2]["error"]
    assert rows[3]["check"]["ok"] and rows[3]["error"] is None
    printed = capsys.readouterr().out
    assert "X0: ERROR RuntimeError" in printed and "CHECK FAILED" in printed


def test_cases_past_the_budget_are_skipped(monkeypatch, tmp_path):
    pytest.importorskip("torch", reason="the run records PyTorch's settings")
    monkeypatch.setattr(gpu, "cases", _fake_cases([_agreeing, _agreeing]))
    out = tmp_path / "gpu.json"
    assert gpu.main(["--dry-run", "--budget", "0", "--out", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    assert all(r["error"].startswith("skipped") and FIELDS <= set(r) for r in rows)


def test_every_case_of_both_sets_is_there():
    """M1-M6, M8, K1-K7 and A1, targets where the GPU issue sets them; nothing built."""
    pytest.importorskip("torch", reason="the M cases' modules import torch")
    by_id = gpu.cases(gpu.GPU_RUN)
    assert {"A1", "K1", "K2", "K5", "K7", "M1", "M6", "M8"} <= set(by_id)
    assert {c.id for c in by_id.values() if c.set == "M"} == {f"M{i}" for i in
                                                              (1, 2, 3, 4, 5, 6, 8)}
    assert by_id["K2"].shapes["x"] == (256, 64, 28, 28) and by_id["M2"].batch == 256
    assert by_id["A1"].shapes["q"] == gpu.ATTENTION
    targets = [c.target is not None for c in by_id.values()]
    assert targets == sorted(targets, reverse=True)  # the cases with a target first


def test_after_a_broken_cuda_context_the_rest_goes_on_in_a_fresh_process(monkeypatch,
                                                                         tmp_path):
    """A kernel that faults kills every later CUDA call of its process: the run replaces
    itself with a fresh one for the cases left, which adds its rows to the same file."""
    pytest.importorskip("torch", reason="the run records PyTorch's settings")

    def broken():
        raise RuntimeError("an illegal memory access was encountered")

    class Replaced(Exception):
        pass

    def execv(path, argv):
        raise Replaced(argv)

    monkeypatch.setattr(gpu, "cases", _fake_cases([broken, _agreeing, _agreeing]))
    monkeypatch.setattr(gpu, "device_broken", lambda device: True)
    monkeypatch.setattr(gpu.os, "execv", execv)
    out = tmp_path / "gpu.json"
    with pytest.raises(Replaced) as replaced:
        gpu.main(["--dry-run", "--out", str(out)])
    argv = replaced.value.args[0]
    assert argv[1:] == ["-m", "benchmarks.gpu", "--resume", "--out", str(out), "--cases",
                        "X1,X2"]
    assert [r["id"] for r in json.loads(out.read_text())["rows"]] == ["X0"]
    monkeypatch.setattr(gpu, "device_broken", lambda device: False)
    assert gpu.main(["--dry-run"] + argv[3:]) == 1  # X0 failed
    result = json.loads(out.read_text())
    assert [r["id"] for r in result["rows"]] == ["X0", "X1", "X2"]
    assert result["restarts"] == 1 and result["finished"]
