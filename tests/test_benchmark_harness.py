"""The benchmark harness (benchmarks/harness.py, issue 20): each side in a child process of
its own with the caller's environment, rounds alternating, loads recorded, a loaded machine
refused or its cases marked invalid, and `compare` holding two runs to 10%."""
import json
import math
import random
import re
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import harness  # noqa: E402


def quiet_cpu(monkeypatch):
    """cpu_seconds scripted: each reading 10 s of busy time after the last, all of it the
    harness's own."""
    clock = iter(range(10, 10 ** 6, 10))
    monkeypatch.setattr(harness, "cpu_seconds", lambda: (next(clock),) * 2)


def run(monkeypatch, capsys, loads, *extra, cpu_seconds=None):
    """main() on the NumPy-only self-check case X0, its two rounds in one pass, with the
    load average scripted and, unless `cpu_seconds` stands in for harness.cpu_seconds, no
    other process busy."""
    readings = iter(loads)
    monkeypatch.setattr(harness, "load", lambda: next(readings))
    if cpu_seconds is None:
        quiet_cpu(monkeypatch)
    else:
        monkeypatch.setattr(harness, "cpu_seconds", cpu_seconds)
    code = harness.main(["--cases", "X0", "--rounds", "2", "--max-rounds", "2",
                         "--passes", "1", "--samples", "5", "--warmup", "1", "--pause", "0",
                         "--no-write", *extra])
    return code, capsys.readouterr().out


def test_a_loaded_machine_is_refused_before_anything_is_timed(monkeypatch, capsys):
    with pytest.raises(SystemExit, match="not a quiet machine"):
        run(monkeypatch, capsys, [0.9])


def test_sides_are_interleaved_and_the_row_records_loads(monkeypatch, capsys):
    """A round starts one child per side (the first alternating by round), then takes the
    samples interleaved, the order swapped at every pair; each child sees the caller's
    environment, nothing added."""
    pytest.importorskip("torch", reason="the PyTorch side's child imports torch")
    events = []
    real_check, real_side = harness.run_check, harness.Side

    def check(case_id, args):
        events.append(("check",))
        return real_check(case_id, args)

    class Spy(real_side):
        def __init__(self, case_id, side, args):
            super().__init__(case_id, side, args)
            self.side = side
            events.append(("open", side))

        def ready(self):
            super().ready()
            events.append(("ready", self.side))
            assert self.info["omp_wait_policy"] == harness.CALLER_ENVIRONMENT.get(
                "OMP_WAIT_POLICY")
            return self

        def sample(self):
            events.append(("sample", self.side))
            return super().sample()

    monkeypatch.setattr(harness, "run_check", check)
    monkeypatch.setattr(harness, "Side", Spy)
    rows = []
    monkeypatch.setattr(harness, "format_rows", lambda r: rows.extend(r) or "table")
    # quiet when it starts, 0.2 before the case, 0.7 after it: valid (begun below 0.5)
    code, out = run(monkeypatch, capsys, [0.1, 0.2, 0.7])
    assert code == 0
    m, t = ("sample", "minigen"), ("sample", "torch")
    # both children of a round start before either is waited for: they build together
    assert events == [("check",), ("open", "minigen"), ("open", "torch"),
                      ("ready", "minigen"), ("ready", "torch"),
                      m, t, t, m, m, t, t, m, m, t,
                      ("open", "torch"), ("open", "minigen"),
                      ("ready", "torch"), ("ready", "minigen"),
                      t, m, m, t, t, m, m, t, t, m]
    (row,) = rows
    assert row["load_before"] == 0.2 and row["load_after"] == 0.7 and row["valid"]
    assert len(row["round_ratios"]) == 2
    assert row["spread"] == [min(row["round_ratios"]), max(row["round_ratios"])]
    for side in harness.SIDES:
        assert [len(c["samples_s"]) for c in row["children"][side]] == [5, 5]
        # and each sample's pages touched for the first time, per call
        assert [len(c["faults_per_call"]) for c in row["children"][side]] == [5, 5]
        assert all(f >= 0 for c in row["children"][side] for f in c["faults_per_call"])
        # the calls per sample, set at the first sample (the other side idle)
        assert all(c["calls_per_sample"] >= 1 and c["untimed_calls_per_sample"] >= 1
                   for c in row["children"][side])
    assert [len(p) for p in row["pair_ratios"]] == [5, 5]
    ours, theirs = (row["children"][side] for side in harness.SIDES)
    for r in range(2):  # a pair: minigen's sample over PyTorch's beside it
        assert row["pair_ratios"][r] == pytest.approx(
            [a / b for a, b in zip(ours[r]["samples_s"], theirs[r]["samples_s"])])
    import statistics
    assert row["ratio"] == statistics.median(row["pair_ratios"][0] + row["pair_ratios"][1])
    assert row["round_ratios"] == [statistics.median(p) for p in row["pair_ratios"]]


def test_a_failing_child_names_its_case_and_shows_its_error(monkeypatch):
    args = harness.parse(["--threads", "1"])
    with pytest.raises(RuntimeError, match=r"NOPE \(minigen\): the child process failed"):
        harness.Side("NOPE", "minigen", args).ready()


def test_a_failing_side_stops_the_other_still_building(monkeypatch):
    """open_sides: when one child fails, the other (perhaps still building) is stopped at
    once, not waited for."""
    closed = []

    class Failing(FakeSide):
        def ready(self):
            if self.side == "torch":
                raise RuntimeError("X0 (torch): the child process failed")
            return self

        def close(self):
            closed.append(self.side)
            return self.info

    monkeypatch.setattr(harness, "Side", Failing)
    args = harness.parse(["--threads", "1"])
    with pytest.raises(RuntimeError, match="X0 \\(torch\\)"):
        harness.open_sides("X0", args, "minigen")
    assert sorted(closed) == ["minigen", "torch"]


class FakeSide:
    """A child that returns 1 ms per call, without a process."""

    def __init__(self, case_id, side, args):
        self.side = side
        self.info = {"samples_s": [], "first_call_s": 0.0}

    def ready(self):
        return self

    def sample(self):
        self.info["samples_s"].append(1e-3)
        return 1e-3

    def close(self):
        return self.info


def test_allow_load_marks_the_case_invalid(monkeypatch, capsys):
    pytest.importorskip("torch", reason="the machine line names torch's version")
    monkeypatch.setattr(harness, "run_check", lambda case_id, args: None)
    monkeypatch.setattr(harness, "Side", FakeSide)
    code, out = run(monkeypatch, capsys, [3.0, 3.0, 3.0], "--allow-load")
    assert code == 0 and "INVALID (load)" in out


def _results(path, ratios, valid=True):
    path.write_text(json.dumps({"rows": [{"id": k, "ratio": v, "valid": valid}
                                         for k, v in ratios.items()]}))
    return str(path)


def test_compare_holds_every_ratio_to_ten_percent(tmp_path):
    a = _results(tmp_path / "a.json", {"M1": 1.00, "M5": 1.40})
    b = _results(tmp_path / "b.json", {"M1": 1.09, "M5": 1.30})
    lines, ok = harness.compare(a, b)
    assert ok and len(lines) == 2
    c = _results(tmp_path / "c.json", {"M1": 1.12, "M5": 1.40})
    lines, ok = harness.compare(a, c)
    assert not ok and "DIFFERS" in lines[0]
    d = _results(tmp_path / "d.json", {"M1": 1.00, "M5": 1.40}, valid=False)
    assert not harness.compare(a, d)[1]


def test_markdown_shows_both_runs_and_marks_what_moved(tmp_path):
    def results(path, ratio, minigen, load_before):
        row = {"id": "M1", "name": "M1 made", "unit": "ms", "minigen": minigen,
               "torch": minigen / ratio, "ratio": ratio, "spread": [ratio - 0.1, ratio + 0.1],
               "target": 1.1, "valid": True, "load_before": load_before, "load_after": 1.4}
        machine = {"cpu": "Some CPU", "cores_available": 2, "threads": 2, "date": "today",
                   "minigen_commit": "0123456789abcdef"}
        path.write_text(json.dumps({"machine": machine, "rows": [row]}))
        return str(path)

    a = results(tmp_path / "a.json", 1.50, 6.0, 0.21)
    b = results(tmp_path / "b.json", 1.80, 7.0, 0.33)
    table = harness.markdown(a, b)
    assert "| M1 made | 6 / 7 ms | 4 / 3.889 ms | 1.50 (1.40-1.60) | 1.80 (1.70-1.90) | " \
        "+20.0% (differs) | <= 1.1 |" in table
    assert "run 1: Some CPU, 2 cores, 2 threads each, today, commit 0123456; load " \
        "average 0.21 before the first case" in table
    assert "0.33 before" in table


def test_standard_error_takes_the_larger_of_pairs_and_rounds():
    """Pairs taken as independent, and rounds as the unit: a round whose pairs all moved
    together (a slow child throughout) shows in the second."""
    assert harness.standard_error([[1.0] * 7, [1.0] * 7]) == 0.0
    assert harness.standard_error([[1.1, 0.9, 1.0] * 3]) == math.inf  # one round: unknown
    spread = [[0.9, 1.0, 1.1, 0.95, 1.05]] * 4  # the rounds agree; the pairs spread
    logs = [math.log(x) for p in spread for x in p]
    assert harness.standard_error(spread) == pytest.approx(
        1.2533 * statistics.stdev(logs) / math.sqrt(20))
    moved = [[1.0] * 5, [1.0] * 5, [3.0] * 5]  # one round three times the others
    medians = [0.0, 0.0, math.log(3.0)]
    assert harness.standard_error(moved) == pytest.approx(statistics.stdev(medians) /
                                                          math.sqrt(3))


class NoisySide(FakeSide):
    """A child whose calls take 1 ms (PyTorch's side) or, for minigen, 0.8 or 1.25 ms in
    turn: pairs' ratios spread by a factor 1.5."""
    calls = 0

    def sample(self):
        seconds = 1e-3
        if self.side == "minigen":
            NoisySide.calls += 1
            seconds *= (0.8, 1.25)[NoisySide.calls % 2]
        self.info["samples_s"].append(seconds)
        return seconds

    def __init__(self, case_id, side, args):
        super().__init__(case_id, side, args)
        self.side = side


def test_a_case_is_invalid_when_other_processes_were_busy_not_when_its_own_load_was(
        monkeypatch):
    """The load average counts the harness's own children (two at once while a round's
    children build: a quiet run reached 2.7); validity reads the CPU time of other
    processes instead, and falls back to the load average within 2 threads + max_load
    where /proc/stat is missing."""
    assert harness.others_cores((100.0, 5.0), (130.0, 33.0), 10.0) == pytest.approx(0.2)
    assert harness.others_cores((100.0, 5.0), (130.0, 40.0), 10.0) == 0.0  # rounding
    assert harness.others_cores((None, 5.0), (None, 40.0), 10.0) is None
    busy, own = harness.cpu_seconds()
    assert own > 0 and (busy is None or busy >= 0)
    monkeypatch.setattr(harness, "run_check", lambda case_id, args: None)
    monkeypatch.setattr(harness, "Side", FakeSide)
    args = harness.parse(["--cases", "X0", "--rounds", "2", "--max-rounds", "2", "--samples",
                          "5", "--pause", "0", "--threads", "2"])
    monkeypatch.setattr(harness, "load", lambda: 2.7)  # the harness's own two children
    readings = iter([(100.0, 10.0), (130.0, 39.0)])  # 1 s of others' work in the case
    monkeypatch.setattr(harness, "cpu_seconds", lambda: next(readings))
    monkeypatch.setattr(harness.time, "perf_counter", iter(range(0, 1000, 10)).__next__)
    row = harness.measure(harness.get_case("X0"), args)
    assert row["others_cores"] == pytest.approx(1.0 / row["seconds"]) and row["valid"]
    readings = iter([(100.0, 10.0), (130.0, 10.0)])  # all 30 s someone else's
    monkeypatch.setattr(harness, "cpu_seconds", lambda: next(readings))
    row = harness.measure(harness.get_case("X0"), args)
    assert row["others_cores"] > args.max_load and not row["valid"]
    for loads, valid in ((4.5, True), (4.6, False)):  # no /proc/stat: 2 x 2 + 0.5
        monkeypatch.setattr(harness, "cpu_seconds", lambda: (None, 1.0))
        monkeypatch.setattr(harness, "load", lambda: loads)
        row = harness.measure(harness.get_case("X0"), args)
        assert row["others_cores"] is None and row["valid"] == valid


@pytest.mark.parametrize("side, rounds", [(FakeSide, 3), (NoisySide, 8)])
def test_a_noisy_case_gets_rounds_up_to_max_rounds(monkeypatch, side, rounds):
    """--rounds rounds, then more while the standard error is above --precision, up to
    --max-rounds: a quiet case stops at the first, a noisy one goes to the last."""
    monkeypatch.setattr(harness, "run_check", lambda case_id, args: None)
    monkeypatch.setattr(harness, "Side", side)
    monkeypatch.setattr(harness, "load", lambda: 0.1)
    args = harness.parse(["--cases", "X0", "--rounds", "3", "--max-rounds", "8",
                          "--precision", "0.02", "--samples", "5", "--pause", "0"])
    row = harness.measure(harness.get_case("X0"), args)
    assert len(row["round_ratios"]) == len(row["pair_ratios"]) == rounds
    assert row["standard_error"] == harness.standard_error(row["pair_ratios"])
    assert (row["standard_error"] > 0.02) == (side is NoisySide)
    assert row["seconds"] > 0


def test_too_few_samples_or_rounds_are_refused():
    with pytest.raises(SystemExit):
        harness.parse(["--samples", "3"])
    with pytest.raises(SystemExit):
        harness.parse(["--rounds", "1"])
    with pytest.raises(SystemExit):
        harness.parse(["--pause", "-0.1"])
    for bad in (["--threads", "0"], ["--warmup", "-1"], ["--sample-seconds", "0"],
                ["--rounds", "6", "--max-rounds", "5"], ["--precision", "0"],
                ["--passes", "0"], ["--rounds", "3", "--passes", "4"]):
        with pytest.raises(SystemExit):
            harness.parse(bad)


def test_an_interrupted_run_says_so_and_writes_nothing(monkeypatch, capsys, tmp_path):
    """Ctrl-C (and SIGTERM, which the harness turns into the same) stops the run with one
    line; the results file is only written once every case has had all its rounds."""
    def interrupted(self, rounds, pass_index=0):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.CaseTiming, "more", interrupted)
    monkeypatch.setattr(harness.common, "machine_info", lambda threads: {
        "cpu": "Some CPU", "cores_available": 2})
    monkeypatch.setattr(harness.common, "write_results", lambda *a: pytest.fail("written"))
    monkeypatch.setattr(harness, "load", lambda: 0.1)
    with pytest.raises(SystemExit, match="interrupted in pass 1, after 0 rounds of 1 "
                                         "cases; nothing written"):
        harness.main(["--cases", "X0", "--rounds", "2", "--samples", "5"])


def _fake_more(self, rounds, pass_index=0):
    """CaseTiming.more without processes: ratio 1.0 rounds of 1 ms a side, 1 s each."""
    for _ in range(rounds):
        for side in harness.SIDES:
            self.by_side[side].append({"samples_s": [1e-3] * 5, "first_call_s": 0.0})
        self.pairs.append([1.0] * 5)
        self.rounds.append(1.0)
        self.round_passes.append(pass_index)
        self.round_started.append(0.0)
    self.loads.append([0.1, 0.1])
    self.seconds += rounds


def test_rounds_so_far_are_kept_until_the_run_ends(monkeypatch, capsys, tmp_path):
    """After every case's stretch of rounds the rows so far are written to
    harness-<cases>.partial.json; an interrupted run says where they are; a finished one
    writes the results file and removes the partial one."""
    monkeypatch.setattr(harness.common, "RESULTS", tmp_path)
    monkeypatch.setattr(harness.common, "machine_info", lambda threads: {
        "cpu": "Some CPU", "cores_available": 2})
    monkeypatch.setattr(harness, "load", lambda: 0.1)
    done = []

    def second_interrupted(self, rounds, pass_index=0):
        if done:
            raise KeyboardInterrupt
        done.append(self.case.id)
        _fake_more(self, rounds, pass_index)

    monkeypatch.setattr(harness.CaseTiming, "more", second_interrupted)
    partial = tmp_path / "harness-X0-K7.partial.json"
    with pytest.raises(SystemExit, match="interrupted in pass 1, after 1 rounds of 2 cases; "
                                         "those are in " + re.escape(str(partial))):
        harness.main(["--cases", "X0", "K7", "--rounds", "2", "--samples", "5"])
    assert [r["id"] for r in json.loads(partial.read_text())["rows"]] == ["X0"]
    assert not (tmp_path / "harness-X0-K7.json").exists()

    monkeypatch.setattr(harness, "format_rows", lambda rows: "table")
    monkeypatch.setattr(harness.CaseTiming, "more", _fake_more)
    assert harness.main(["--cases", "X0", "K7", "--rounds", "2", "--samples", "5"]) == 0
    rows = json.loads((tmp_path / "harness-X0-K7.json").read_text())["rows"]
    assert [(r["id"], r["round_passes"]) for r in rows] == [("X0", [0, 1]), ("K7", [0, 1])]
    assert not partial.exists()


def test_passes_spread_each_cases_rounds_over_the_run(monkeypatch):
    """--rounds shared out over --passes passes, every case in each, in order; then one
    more round per pass for each case still above --precision, until none is."""
    assert harness.pass_shares(8, 4) == [2, 2, 2, 2]
    assert harness.pass_shares(9, 4) == [3, 2, 2, 2]
    assert harness.pass_shares(8, 1) == [8]
    monkeypatch.setattr(harness.CaseTiming, "more", _fake_more)
    args = harness.parse(["--rounds", "4", "--passes", "2", "--max-rounds", "7"])
    a, b, c = (harness.CaseTiming(harness.get_case("X0"), args) for _ in range(3))
    b.wants_more = lambda: len(b.rounds) < 6  # a noisy case: two more rounds
    c.wants_more = lambda: len(c.rounds) < 5
    order = []
    for p, timing, share in harness.run_passes([a, b, c], args):
        order.append((p, "abc"[[a, b, c].index(timing)], share))
        timing.more(share, p)
    assert order == [(0, "a", 2), (0, "b", 2), (0, "c", 2), (1, "a", 2), (1, "b", 2),
                     (1, "c", 2), (2, "b", 1), (2, "c", 1), (3, "b", 1)]
    assert b.round_passes == [0, 0, 1, 1, 2, 3] and len(a.rounds) == 4


def test_a_row_from_several_stretches_adds_their_time_and_others_work(monkeypatch):
    """A case timed in two passes: its seconds are both stretches', others' cores the CPU
    time of other processes over both, its loads every stretch's before and after."""
    monkeypatch.setattr(harness, "run_check", lambda case_id, args: None)
    monkeypatch.setattr(harness, "Side", FakeSide)
    loads = iter([0.2, 0.3, 0.4, 0.6])
    monkeypatch.setattr(harness, "load", lambda: next(loads))
    clock = iter([0.0, 10.0, 100.0, 130.0]).__next__
    monkeypatch.setattr(harness.time, "perf_counter", clock)
    # 2 s of others' work in the first 10 s, 4 s in the next 30
    readings = iter([(0.0, 0.0), (20.0, 18.0), (50.0, 18.0), (104.0, 68.0)])
    monkeypatch.setattr(harness, "cpu_seconds", lambda: next(readings))
    args = harness.parse(["--rounds", "2", "--passes", "2", "--samples", "5", "--pause", "0"])
    timing = harness.CaseTiming(harness.get_case("X0"), args)
    timing.more(1, 0)
    timing.more(1, 1)
    row = timing.row()
    assert row["seconds"] == 40.0 and row["others_cores"] == pytest.approx(6.0 / 40.0)
    assert row["loads"] == [[0.2, 0.3], [0.4, 0.6]]
    assert row["load_before"] == 0.2 and row["load_after"] == 0.6 and row["valid"]
    assert row["round_passes"] == [0, 1] and len(row["pair_ratios"]) == 2


def test_someone_elses_work_during_a_case_marks_it_invalid(monkeypatch, capsys):
    """The harness's own children raise the load average (two at once while a round's
    children build); only other processes' CPU time during a case makes it invalid."""
    pytest.importorskip("torch", reason="the machine line names torch's version")
    monkeypatch.setattr(harness, "run_check", lambda case_id, args: None)
    monkeypatch.setattr(harness, "Side", FakeSide)
    code, out = run(monkeypatch, capsys, [0.1, 0.3, 2.7], "--threads", "2")
    assert code == 0 and "INVALID" not in out and "other processes 0.00 cores" in out
    busy = iter([(0.0, 0.0), (1e9, 0.0)]).__next__  # everything someone else's
    code, out = run(monkeypatch, capsys, [0.1, 0.3, 0.3], "--threads", "2",
                    cpu_seconds=busy)
    assert "INVALID (load)" in out


# the K cases: README's kernel rows, each side's call and the check from the kernel groups

K_TARGETS = {"K1": (1.0, 0.7), "K2": (1.0, 0.7), "K3-d1": (1.25, 0.9), "K3-d8": (1.25, 0.9),
             "K3-d64": (1.25, 0.9), "K3-d512": (1.25, 0.9), "K4-256": (1.5, 1.0),
             "K4-1024": (1.5, 1.0), "K5": (1.25, 1.0), "K6-3x3": (1.5, 1.1),
             "K6-4x4s2": (1.5, 1.1), "K6-T4x4s2": (1.5, 1.1), "K7": (1.1, 1.0)}


def test_every_kernel_row_is_a_case_of_the_k_set_with_its_target():
    pytest.importorskip("torch", reason="the M cases' modules, listed too, import torch")
    kernel_cases = {c.id: c for c in harness.cases().values() if "K" in c.sets}
    assert {i: (c.target, c.goal) for i, c in kernel_cases.items()} == K_TARGETS
    assert all(c.sets == ("K",) for c in kernel_cases.values())


def test_get_case_builds_a_kernel_case_without_the_model_cases(monkeypatch):
    """A K case's child loads the kernel groups' modules (NumPy alone until a side's call
    imports its library), not the M cases' modules, which import PyTorch and minigen."""
    monkeypatch.setattr(harness, "_model_cases", lambda: pytest.fail("M cases built"))
    assert harness.get_case("K3-d8").title.startswith("K3 causal conv1d k=2 d=8")


def test_every_kernel_group_check_passes_on_small_shapes():
    """The checks the K cases run (minigen against PyTorch and the NumPy references), on
    shapes small enough for a test; the full-size ones run in the harness's check process."""
    pytest.importorskip("torch")
    import dataclasses

    from benchmarks import conv, flow, overhead, sequence
    for case in conv.CASES.values():
        channels = min(case.x_shape[1], 3)
        conv.check(dataclasses.replace(case, x_shape=(2, channels, 8, 8), out_channels=4))
    for dilation in sequence.K3_CASES.values():
        sequence.check_causal_conv(dilation, shape=(2, 4, 2 * dilation + 3))
    sequence.check_attention((2, 2, 16, 8))
    flow.check(shape=(4, 1, 6, 6))
    overhead.check()


def test_a_kernel_case_call_gives_both_sides_the_same_result():
    pytest.importorskip("torch")
    import numpy as np
    case = harness.get_case("K7")
    ours, theirs = case.make("minigen")(), case.make("torch")()
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-6)


def test_chart_draws_every_run_of_every_case(tmp_path):
    from PIL import Image

    def results(path, ratio, date):
        rows = [{"id": case, "ratio": ratio * k, "spread": [ratio * k - 0.1, ratio * k + 0.1],
                 "target": 1.1} for k, case in enumerate(("M1", "K7"), start=1)]
        path.write_text(json.dumps({"machine": {"date": date}, "rows": rows}))
        return str(path)

    runs = [results(tmp_path / f"{i}.json", r, f"2026-12-0{i}T10:00")
            for i, r in ((1, 0.9), (2, 1.4))]
    out = harness.chart(runs, str(tmp_path / "pictures" / "ratios.png"))
    picture = Image.open(out)
    assert picture.size[0] == 760 and picture.size[1] > 2 * 22
    colours = {c for _, c in picture.getcolors(1 << 16)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours  # both runs drawn
    with pytest.raises(SystemExit, match="no such results file"):
        harness.main(["chart", str(tmp_path / "missing.json"), "--out",
                      str(tmp_path / "x.png")])
    before = open(runs[0]).read()
    with pytest.raises(SystemExit, match="name it"):  # never over a results file
        harness.main(["chart", *runs, "--out", runs[0]])
    assert open(runs[0]).read() == before
    (tmp_path / "notes.txt").write_text("not json")
    with pytest.raises(SystemExit, match="not a harness results file"):
        harness.main(["chart", str(tmp_path / "notes.txt"), "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_the_stopping_rule_allows_for_few_rounds():
    """stopping_error: the standard error times sqrt((n - 1) / chi2_0.2(n - 1)), 1.35 at 8
    rounds and less with more; a case whose error is under --precision at 8 rounds but
    not by that much still wants more."""
    from scipy.stats import chi2
    rng = random.Random(0)
    for n in (2, 8, 24):
        pairs = [[1 + rng.gauss(0, 0.05) for _ in range(5)] for _ in range(n)]
        error = harness.standard_error(pairs)
        want = error * math.sqrt((n - 1) / chi2.ppf(0.2, n - 1))
        assert harness.stopping_error(pairs) == pytest.approx(want)
    assert harness.stopping_error([[1.0, 1.1, 0.9]]) == math.inf
    assert math.sqrt(7 / chi2.ppf(0.2, 7)) == pytest.approx(1.353, abs=1e-3)
    args = harness.parse(["--cases", "X0", "--rounds", "8", "--precision", "0.03"])
    timing = harness.CaseTiming(harness.get_case("X0"), args)
    timing.rounds = [None] * 8
    timing.pairs = [[1.0] * 5] * 4 + [[1.15] * 5] * 4  # standard error 2.6%
    assert 0.02 < harness.standard_error(timing.pairs) < 0.03
    assert harness.stopping_error(timing.pairs) > 0.03
    assert timing.wants_more()
    timing.rounds = [None] * 24
    assert not timing.wants_more()  # --max-rounds
