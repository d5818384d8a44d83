"""What the command line promises a user: a run folder belongs to one run (refused, locked,
never written over by sample), a diverging run stops with a message and its checkpoint,
every bad number is refused where it is parsed with its name and range, every error is one
line `minigen: error: ...` and an exit status (never a traceback), log.csv's rows are the
means the bar shows and survive a resume, and README's command reference is the tool's."""
import argparse
import builtins
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from clicheck import snapshot

import minigen as mg
from minigen import checkpoint, cli, data, models, trainer

TINY = ["steps=6", "batch_size=16", "eval_batch_size=400"]
MADE = TINY + ["hidden=16"]
README = Path(__file__).resolve().parent.parent / "README.md"


def run_cli(capsys, *argv):
    """(status, stdout, stderr) of `minigen ARGV`, run in this process."""
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(err, *words):
    """err ends in one line `minigen: error: ...` holding every word, with no traceback."""
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("minigen: error: "), err
    for word in words:
        assert word in last, (word, last)
    return last


@pytest.fixture
def trained(tmp_path_factory):
    """A finished made run on digits-bin, trained once for the tests that only read it."""
    out = tmp_path_factory.mktemp("trained") / "run"
    trainer.train("made", "digits-bin", out=out, config=MADE, progress=False)
    return out


@pytest.fixture
def read_only(monkeypatch):
    """read_only(folder): folder cannot be written. chmod 555 does that for a user; root
    writes anyway, so under root the writes into it are refused here, as the kernel would."""
    made = []

    def make(folder):
        folder = os.path.abspath(folder)
        os.chmod(folder, 0o555)
        made.append(folder)
        if os.geteuid() != 0:
            return

        def inside(path):
            path = os.path.abspath(os.fspath(path))
            return any(path == f or path.startswith(f + os.sep) for f in made)

        def refuse(path):
            raise PermissionError(13, "Permission denied", os.fspath(path))

        real_open, real_os_open = builtins.open, os.open
        real_mkdtemp, real_mkstemp = tempfile.mkdtemp, tempfile.mkstemp

        def guarded_open(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and set(mode) & set("wax+") \
                    and inside(file):
                refuse(file)
            return real_open(file, mode, *args, **kwargs)

        def guarded_os_open(path, flags, *args, **kwargs):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
                refuse(path)
            return real_os_open(path, flags, *args, **kwargs)

        def guarded_mkdtemp(*args, dir=None, **kwargs):
            if dir is not None and inside(dir):
                refuse(dir)
            return real_mkdtemp(*args, dir=dir, **kwargs)

        def guarded_mkstemp(*args, dir=None, **kwargs):
            if dir is not None and inside(dir):
                refuse(dir)
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
        monkeypatch.setattr(os, "open", guarded_os_open)
        monkeypatch.setattr(tempfile, "mkdtemp", guarded_mkdtemp)
        monkeypatch.setattr(tempfile, "mkstemp", guarded_mkstemp)

    yield make
    for folder in made:
        os.chmod(folder, 0o755)


# a run folder belongs to one run -------------------------------------------------------
def test_a_folder_holding_a_run_is_refused_and_left_as_it_is(tmp_path, capsys, trained):
    before = snapshot(trained)
    for model, extra in (("made", ["--config", *MADE]), ("histogram", ["--steps", "2"])):
        status, _, err = run_cli(capsys, "train", model, "--data", "digits-bin", "--out",
                                 trained, "--quiet", *extra)
        assert status == 2
        one_line_error(err, "holds a run of made on digits-bin at step 6 of 6",
                       "checkpoint.npz", "--resume", "--overwrite")
    assert snapshot(trained) == before


def test_overwrite_replaces_every_file_of_the_old_run(tmp_path, capsys):
    out = tmp_path / "run"
    trainer.train("vae", "digits-bin", out=out, progress=False,
                  config=TINY + ["hidden=8", "latent=2", "iwae_k=2"])
    pictures = json.loads((out / "metrics.json").read_text())["pictures"]
    assert "samples.png" in pictures and len(pictures) > 1  # reconstructions and more
    (out / "notes.txt").write_text("mine")
    status, _, _ = run_cli(capsys, "train", "histogram", "--data", "digits-bin", "--out", out,
                           "--quiet", "--steps", "3", "--overwrite")
    assert status == 0
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "log.csv", "metrics.json",
                                       "notes.txt", "samples.png"]
    with open(out / "log.csv", newline="") as f:
        assert [row["step"] for row in csv.DictReader(f)] == ["1", "2", "3"]
    assert (out / "notes.txt").read_text() == "mine"


def test_resume_and_overwrite_exclude_each_other_and_resume_keeps_its_settings(
        trained, capsys):
    status, _, err = run_cli(capsys, "train", "made", "--data", "digits-bin", "--out",
                             trained, "--resume", "--overwrite")
    assert status == 2 and "not allowed with argument" in err
    status, _, err = run_cli(capsys, "train", "made", "--data", "digits-bin", "--out",
                             trained, "--resume", "--steps", "10", "--lr", "0.1")
    assert status == 2
    one_line_error(err, "--resume", "--steps, --lr")


def test_a_live_lock_stops_a_second_process_and_a_stale_one_is_taken_over(tmp_path,
                                                                          capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from minigen import runfolder
        with runfolder.lock({str(out)!r}):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        status, _, err = run_cli(capsys, "train", "histogram", "--data", "digits-bin",
                                 "--out", out, "--quiet", "--steps", "2")
        assert status == 2
        one_line_error(err, "in use by another minigen process", f"pid {holder.pid}")
        assert os.listdir(out) == ["run.lock"]
    finally:
        holder.kill()
        holder.wait()
    # killed, it left its lock file behind: stale, since no process holds its flock
    assert (out / "run.lock").read_text().startswith(f"pid {holder.pid}")
    status, _, err = run_cli(capsys, "train", "histogram", "--data", "digits-bin", "--out",
                             out, "--quiet", "--steps", "2")
    assert status == 0, err
    assert not (out / "run.lock").exists()


def test_a_failed_start_leaves_no_folder_behind(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    status, _, err = run_cli(capsys, "train", "made", "--data", "digits-bin", "--out", out,
                             "--config", "hidden=0")
    assert status == 2
    one_line_error(err, "hidden=0", "hidden must be >= 1")
    assert not out.exists()


def test_out_naming_a_file_or_an_unwritable_folder_is_refused_before_training(
        tmp_path, capsys, read_only):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    status, _, err = run_cli(capsys, "train", "histogram", "--data", "digits-bin", "--out",
                             a_file)
    assert status == 2
    one_line_error(err, "is a file, not a run folder")
    status, _, err = run_cli(capsys, "train", "histogram", "--data", "digits-bin", "--out",
                             a_file / "run")
    assert status == 2
    one_line_error(err, "cannot create the run folder")

    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    status, out, err = run_cli(capsys, "train", "histogram", "--data", "digits-bin",
                               "--out", locked, "--quiet")
    assert status == 2 and out == ""
    one_line_error(err, str(locked), "not writable")


def test_sample_writes_beside_the_training_outputs_never_over_them(trained, capsys,
                                                                  tmp_path):
    before = snapshot(trained)
    for k in (1, 2):
        status, out, _ = run_cli(capsys, "sample", trained, "--n", 4)
        assert status == 0
        assert out.strip().endswith(f"samples-{k}.png")
        assert (trained / f"samples-{k}.png").is_file()
    after = snapshot(trained)
    assert {p: v for p, v in after.items() if p in before} == before
    status, _, err = run_cli(capsys, "sample", trained, "--out", tmp_path / "x.jpg")
    assert status == 2
    one_line_error(err, "x.jpg", ".png", ".npy")
    assert not (tmp_path / "x.jpg").exists()


def test_sample_and_probe_on_a_read_only_run_say_so_before_their_work(trained, capsys,
                                                                     read_only, tmp_path):
    before = snapshot(trained)
    read_only(trained)
    status, out, err = run_cli(capsys, "sample", trained, "--n", 4)
    assert status == 2 and out == ""
    one_line_error(err, "not writable")
    status, out, err = run_cli(capsys, "probe", trained, "--dims", 16, "--quiet")
    assert status == 2 and out == ""
    one_line_error(err, "not writable")
    assert snapshot(trained) == before
    status, _, _ = run_cli(capsys, "sample", trained, "--n", 4, "--out", tmp_path / "s.png")
    assert status == 0 and (tmp_path / "s.png").is_file()


# divergence and signals -------------------------------------------------------------------
def test_a_diverging_run_stops_with_step_loss_and_advice_and_keeps_its_checkpoint(
        tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run_cli(capsys, "train", "made", "--data", "digits-bin", "--out", out,
                             "--quiet", "--lr", "1e20",
                             "--config", *MADE, "steps=50", "checkpoint_every=1")
    assert status == 3
    line = one_line_error(err, "made diverged at step", "the loss became nan",
                          "last finite loss", "lower learning rate", "--lr 1e+19")
    step = int(re.search(r"diverged at step (\d+)", line)[1])
    state = checkpoint.load(out / "checkpoint.npz")
    assert state["step"] == step - 1
    assert all(np.isfinite(v).all() for v in state["params"].values())
    assert f"checkpoint of step {step - 1}" in line


def test_diverged_is_raised_before_the_update_reaches_the_parameters(tmp_path):
    run = trainer.Run("made", "digits-bin", out=tmp_path, config=MADE)
    run._train_step()
    run.step = 1
    before = [p.data.copy() for p in run.params]
    loss = run.model.loss
    run.model.loss = lambda *args, **kwargs: loss(*args, **kwargs) * float("nan")
    with pytest.raises(trainer.Diverged, match="diverged at step 2: the loss became nan "
                       r"\(last finite loss [0-9.]+ at step 1\)"):
        run._train_step()
    for a, p in zip(before, run.params):
        np.testing.assert_array_equal(a, p.data)


# numbers where they are parsed ---------------------------------------------------------------
BAD_ARGUMENTS = [
    (["train", "made", "--data", "digits-bin", "--steps", "0"], "--steps", ">= 1"),
    (["train", "made", "--data", "digits-bin", "--steps", "-5"], "--steps", ">= 1"),
    (["train", "made", "--data", "digits-bin", "--steps", "1.5"], "--steps", "integer"),
    (["train", "made", "--data", "digits-bin", "--batch-size", "0"], "--batch-size", ">= 1"),
    (["train", "made", "--data", "digits-bin", "--lr", "0"], "--lr", "> 0"),
    (["train", "made", "--data", "digits-bin", "--lr", "inf"], "--lr", "finite"),
    (["train", "made", "--data", "digits-bin", "--lr", "nan"], "--lr", "finite"),
    (["train", "made", "--data", "digits-bin", "--seed", "-1"], "--seed", ">= 0"),
    (["train", "made", "--data", "digits-bin", "--early-stop", "-3"], "--early-stop",
     ">= 1"),
    (["train", "made", "--data", "digits-bin", "--data-dir", "/no/such/folder"],
     "--data-dir", "does not exist"),
    (["sample", "RUN", "--n", "0"], "--n", ">= 1"),
    (["sample", "RUN", "--n", "-1"], "--n", ">= 1"),
    (["sample", "RUN", "--seed", "-1"], "--seed", ">= 0"),
    (["sample", "RUN", "--label", "-2"], "--label", ">= 0"),
    (["probe", "RUN", "--dims", "0"], "--dims", ">= 1"),
    (["receptive-field", "pixelcnn", "--size", "0"], "--size", ">= 1"),
    (["receptive-field", "pixelcnn", "--pixel", "-1", "2"], "--pixel", ">= 0"),
]


@pytest.mark.parametrize("argv, name, allowed", BAD_ARGUMENTS)
def test_bad_numbers_are_refused_naming_the_argument_and_range(argv, name, allowed,
                                                               capsys):
    status, out, err = run_cli(capsys, *argv)
    assert status == 2 and out == ""
    one_line_error(err, f"argument {name}", allowed)


@pytest.mark.parametrize("setting, words", [
    ("steps=0", ["steps must be >= 1, got 0"]),
    ("steps=-5", ["steps must be >= 1"]),
    ("lr=inf", ["lr must be finite and > 0"]),
    ("betas=0.5,1", ["betas must be in [0, 1)"]),
    ("ema=1", ["ema must be in [0, 1)"]),
    ("log_every=-1", ["log_every must be >= 0"]),
    ("hidden=0", ["hidden must be >= 1"]),
    ("hidden=16,-5", ["hidden must be >= 1, got -5"]),
    ("num_masks=0", ["num_masks must be >= 1"]),
    ("steps=x", ["steps=x", "expected an integer"]),
])
def test_bad_config_values_are_refused_naming_key_and_range(setting, words, capsys,
                                                            tmp_path):
    status, _, err = run_cli(capsys, "train", "made", "--data", "digits-bin", "--out",
                             tmp_path / "run", "--config", setting)
    assert status == 2
    one_line_error(err, f"--config {setting}", *words)
    assert not (tmp_path / "run").exists()


def test_every_models_ranges_are_declared_for_its_keys_and_refuse_out_of_range_values():
    """Each declared range refuses a value just outside it (and its defaults lie inside,
    which register checks); every integer width or depth key of every model has one."""
    for entry in models.list_models():
        for key, allowed in entry.ranges.items():
            outside = allowed.low - 1 if not allowed.low_open else allowed.low
            if allowed.low == -np.inf:
                outside = allowed.high + 1
            value = entry.config[key]
            if isinstance(value, tuple) and not value:
                continue
            kind = type(value[0] if isinstance(value, tuple) else value)
            text = str(kind(outside)) if kind is int else repr(float(outside))
            text = ",".join([text] * len(value)) if isinstance(value, tuple) else text
            with pytest.raises(models.ConfigError, match=f"{key} must be"):
                models.make_config(entry, [f"{key}={text}"])
        undeclared = [key for key, value in entry.config.items()
                      if key not in entry.ranges and not isinstance(value, (bool, str))
                      and (isinstance(value, (int, float)) or isinstance(value, tuple)
                           and value and isinstance(value[0], (int, float)))]
        assert not undeclared, f"{entry.name}: no range declared for {undeclared}"


def test_a_range_is_an_interval_as_written():
    r = models.Range("[0, 1)")
    assert 0 in r and 0.5 in r and 1 not in r and -1e-9 not in r and float("nan") not in r
    r = models.Range("(0, inf)")
    assert 1e-300 in r and 0 not in r and float("inf") not in r
    assert str(models.Range("[1, inf)")) == ">= 1" and str(r) == "> 0"
    assert str(models.Range("[0, 1)")) == "in [0, 1)"
    with pytest.raises(ValueError, match="interval"):
        models.Range("1..2")
    with pytest.raises(ValueError, match="no config key"):
        models.register("bad-range", "test only", data=(), ranges={"nope": "[1, inf)"})(
            type("Bad", (mg.model.Model,), {}))
    with pytest.raises(models.ConfigError, match="steps must be >= 1"):
        models.register("bad-default", "test only", data=(), steps=0)(
            type("Bad", (mg.model.Model,), {}))


# every error is one line --------------------------------------------------------------------
def test_user_errors_are_one_line_and_never_a_traceback(tmp_path, capsys, trained,
                                                        monkeypatch):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(3000))
    npy = tmp_path / "samples.npy"
    np.save(npy, np.zeros(3))
    cases = [
        (["sample", junk], "not a complete .npz archive"),
        (["eval", npy], "not a complete .npz archive"),
        (["eval", tmp_path / "nothing"], "no checkpoint at"),
        (["train", "made", "--data", "digits-bin", "--out", tmp_path / "m", "--config",
          "hidden=1000000000000"], "out of memory"),
        (["train", "nosuchmodel", "--data", "digits-bin"], "unknown model"),
        (["train", "made", "--data", "mnist", "--data-dir", tmp_path, "--out",
          tmp_path / "x"], "mnist"),
    ]
    from minigen import backend
    if not backend.cuda_available():
        cases.append((["train", "made", "--data", "digits-bin", "--device", "cuda",
                       "--out", tmp_path / "c"], "--device cuda"))
    for argv, words in cases:
        status, _, err = run_cli(capsys, *argv)
        assert status == 2, (argv, err)
        one_line_error(err, words)
    assert not (tmp_path / "m").exists() and not (tmp_path / "c").exists()

    monkeypatch.setenv("MINIGEN_DEBUG", "1")
    with pytest.raises(checkpoint.CheckpointError):
        cli.main(["sample", str(junk)])


def test_a_fault_of_minigen_itself_is_one_line_too(capsys, monkeypatch, trained):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("float division by zero")
    monkeypatch.setattr(trainer, "sample_examples", broken)
    status, _, err = run_cli(capsys, "sample", trained, "--out", "s.npy")
    assert status == 1
    one_line_error(err, "internal error", "ZeroDivisionError", "MINIGEN_DEBUG=1")


def test_tensor_refuses_what_is_not_numbers():
    with pytest.raises(TypeError, match="expected numbers"):
        mg.tensor(["a", "b"])
    with pytest.raises(TypeError, match="expected numbers, got None"):
        mg.tensor(None)
    with pytest.raises(ValueError, match="ragged"):
        mg.tensor([[1, 2], [3]])
    assert mg.tensor([[1, 2], [3, 4]]).shape == (2, 2)


# log.csv -------------------------------------------------------------------------------------
def _log(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_log_rows_every_log_every_steps_hold_the_mean_loss_of_those_steps(tmp_path):
    every = trainer.train("made", "digits-bin", out=tmp_path / "every", progress=False,
                          config=MADE + ["steps=12", "log_every=1"])
    fours = trainer.train("made", "digits-bin", out=tmp_path / "fours", progress=False,
                          config=MADE + ["steps=12", "log_every=4"])
    assert every["test_nll_nats"] == fours["test_nll_nats"]
    losses = [float(r["train_loss"]) for r in _log(tmp_path / "every" / "log.csv")]
    rows = _log(tmp_path / "fours" / "log.csv")
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    for k, row in enumerate(rows):
        assert float(row["train_loss"]) == pytest.approx(np.mean(losses[4 * k:4 * k + 4]),
                                                         rel=1e-12)


def test_log_has_about_a_hundred_rows_by_default(tmp_path):
    trainer.train("histogram", "digits-bin", out=tmp_path, progress=False,
                  config=["steps=250", "batch_size=16"])
    assert [int(r["step"]) for r in _log(tmp_path / "log.csv")] == \
        list(range(2, 251, 2))


def test_log_is_the_same_after_a_kill_and_a_resume(tmp_path):
    config = MADE + ["steps=14", "log_every=4", "checkpoint_every=3"]
    trainer.train("made", "digits-bin", out=tmp_path / "whole", config=config,
                  progress=False)
    parts = tmp_path / "parts"
    trainer.train("made", "digits-bin", out=parts, config=config, progress=False,
                  stop_after=7)  # a checkpoint in the middle of a log period
    at_7 = (parts / "checkpoint.npz").read_bytes()
    run = trainer.Run.from_checkpoint(parts / "checkpoint.npz")
    run.train(progress=False, stop_after=3)  # logs step 8
    # killed at step 10 with step 7's checkpoint on disk, in the middle of a row
    (parts / "checkpoint.npz").write_bytes(at_7)
    with open(parts / "log.csv", "a") as f:
        f.write("9,1.2")
    trainer.train("made", "digits-bin", out=parts, progress=False, resume=True)

    whole, resumed = _log(tmp_path / "whole" / "log.csv"), _log(parts / "log.csv")
    assert [r["step"] for r in resumed] == [r["step"] for r in whole] == \
        ["4", "8", "12", "14"]
    assert [r["train_loss"] for r in resumed] == [r["train_loss"] for r in whole]


def test_text_bits_per_dimension_are_bits_per_character():
    spec = models.DataSpec("fortunes", (), "discrete", levels=256)
    metrics = trainer.likelihood_metrics("test", 2.0, spec)
    assert metrics["test_bpc"] == metrics["test_bpd"] == pytest.approx(2.0 / np.log(2))
    image = models.DataSpec("digits-bin", (1, 8, 8), "discrete", levels=2)
    assert "test_bpc" not in trainer.likelihood_metrics("test", 2.0, image)


# what `minigen list` and README say ---------------------------------------------------------
def test_every_listed_dataset_is_accepted_by_some_model():
    accepted = {name for entry in models.list_models() for name in entry.data}
    listed = [name for name, _ in data.list_datasets()]
    assert not [name for name in listed if name not in accepted]


def test_mnist_trains_from_idx_files_in_data_dir(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (tmp_path / f"{prefix}-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 8, 3]) + np.array([n, 28, 28], ">i4").tobytes() + images.tobytes())
        (tmp_path / f"{prefix}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + np.array([n], ">i4").tobytes() + labels.tobytes())
    status, _, err = run_cli(capsys, "train", "histogram", "--data", "mnist", "--data-dir",
                             tmp_path, "--out", tmp_path / "run", "--quiet", "--steps", 2,
                             "--batch-size", 8)
    assert status == 0, err


def _readme_commands():
    """{command: set of its --flags} from README's Command line block."""
    text = README.read_text()
    block = text.split("## Command line", 1)[1].split("```", 2)[1]
    commands, current = {}, None
    for line in block.splitlines():
        words = line.split()
        if words[:1] == ["minigen"]:
            current = words[1]
            commands[current] = set()
        if current:
            commands[current] |= set(re.findall(r"(--[a-z-]+)", line.split("  ")[0]
                                                if line.startswith("minigen") else line))
    return commands


def test_readme_command_reference_is_the_tools():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions
                      if isinstance(a, argparse._SubParsersAction)).choices
    documented = _readme_commands()
    assert set(documented) == set(subparsers)
    for name, sub in subparsers.items():
        flags = {option for action in sub._actions for option in action.option_strings
                 if option.startswith("--") and option != "--help"}
        assert documented[name] == flags, name
