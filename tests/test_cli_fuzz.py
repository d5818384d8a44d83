"""The command line fuzzed: random commands, flags and config values (valid, at the edge of
their range, and outside it) for every model, each run in a workspace that already holds a
finished run and a file of the user's. Whatever is drawn: no traceback, exit status 0, 2 or
3 (an error is one line `minigen: error: ...`), and no file changed that the command was
not asked to write. The default run draws a few commands on tiny models (seconds); the
slow one (`pytest -m slow`) draws 15 for every model."""
import contextlib
import io
import math
import os
import shutil
import tempfile

import pytest
from clicheck import snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigen import cli, models, trainer

# data that a tiny model trains and is evaluated on in well under a second
FAST_DATA = ("digits-bin", "digits", "toy-moons", "toy-8gaussians", "toy-1d", "shapes")
TRAINER_VALUES = {  # (valid, at the edge, outside) for the trainer's own keys
    "steps": (["1", "2", "3"], ["1"], ["0", "-1", "2.5", "x"]),
    "batch_size": (["2", "8", "16"], ["1"], ["0", "-3"]),
    "lr": (["0.001", "0.01"], ["1e-30", "1e6"], ["0", "-1", "inf", "nan"]),
    "clip_grad": (["0", "1.0"], ["1e-9"], ["-1", "nan"]),
    "warmup": (["0", "1"], ["0"], ["-1"]),
    "cosine": (["true", "false"], ["0"], ["maybe"]),
    "eval_every": (["0", "2"], ["1"], ["-2"]),
    "checkpoint_every": (["0", "1", "2"], ["1"], ["-1"]),
    "eval_batch_size": (["200", "500"], ["500"], ["0"]),
    "betas": (["0.9,0.999", "0.5,0.9"], ["0,0"], ["1,1", "-0.1,0.9", "0.5,x"]),
    "ema": (["0", "0.5"], ["0.999"], ["1", "-0.5", "nan"]),
    "log_every": (["0", "1", "2"], ["1"], ["-1"]),
}


def _number_values(allowed, integer):
    """(valid and tiny, at the edges, outside) as text for a key of range `allowed`."""
    low = allowed.low if math.isfinite(allowed.low) else -2.0
    if integer:
        first = math.floor(low) + 1 if allowed.low_open else math.ceil(low)
        high = allowed.high - (1 if allowed.high_open else 0) if math.isfinite(allowed.high) \
            else first + 2
        valid = [str(v) for v in range(first, min(first + 2, int(high)) + 1)]
        return valid, [str(first)], [str(first - 1), "-1", "1.5", "x"]
    high = allowed.high if math.isfinite(allowed.high) else low + 2
    inside = [low + (high - low) * f for f in (0.25, 0.5)]
    edges = [low + 1e-9 if allowed.low_open else low, high - 1e-9 if allowed.high_open
             else high]
    outside = ["nan", "inf", "-inf", repr(low - 1)]
    return [repr(v) for v in inside], [repr(v) for v in edges], outside


def value_choices(entry, key):
    """(valid, edge, outside) texts for one config key of a registered model."""
    if key in TRAINER_VALUES:
        return TRAINER_VALUES[key]
    default = entry.config[key]
    if isinstance(default, bool):
        return ["true", "false"], ["0"], ["maybe"]
    if default is None or isinstance(default, str):
        return [str(default or "")], [str(default or "")], ["zzz"]
    element = default[0] if isinstance(default, tuple) and default else default
    integer = isinstance(element, int)
    allowed = entry.ranges.get(key, models.Range("(-inf, inf)"))
    valid, edges, outside = _number_values(allowed, integer)
    if isinstance(default, tuple):
        n = max(len(default), 1)
        return ([",".join([v] * n) for v in valid], [",".join([e] * n) for e in edges],
                [",".join([o] * n) for o in outside] + [""])
    return valid, edges, outside


@st.composite
def config_setting(draw, entry, key):
    valid, edges, outside = value_choices(entry, key)
    kind = draw(st.sampled_from(["valid"] * 6 + ["edge"] * 2 + ["outside"]))
    return f"{key}={draw(st.sampled_from({'valid': valid, 'edge': edges, 'outside': outside}[kind]))}"


@st.composite
def tiny_config(draw, entry):
    """Every integer width and depth of the model near the bottom of its range: a model
    that trains and samples in a moment."""
    out = []
    for key, allowed in entry.ranges.items():
        default = entry.config[key]
        element = default[0] if isinstance(default, tuple) and default else default
        if key in TRAINER_VALUES or isinstance(element, bool) or not isinstance(element, int):
            continue
        valid, _, _ = value_choices(entry, key)
        out.append(f"{key}={draw(st.sampled_from(valid))}")
    return out


@st.composite
def train_command(draw, names, workspace):
    """argv of a `minigen train` and the folder it may write (None: none)."""
    entry = models.get(draw(st.sampled_from(names)))
    fast = [d for d in entry.data if d in FAST_DATA] or list(entry.data)
    data = draw(st.sampled_from(fast * 8 + ["toy-moons", "nosuchdata"]))
    where = draw(st.sampled_from(["new"] * 4 + ["existing", "file"]))
    out = {"new": os.path.join(workspace, "runs", f"r{draw(st.integers(0, 10**9))}"),
           "existing": os.path.join(workspace, "existing"),
           "file": os.path.join(workspace, "notes.txt")}[where]
    again = draw(st.sampled_from([[]] * 4 + [["--resume"], ["--overwrite"],
                                             ["--resume", "--overwrite"]]))
    argv = ["train", entry.name, "--data", data, "--out", out, "--quiet", *again]
    if again == ["--resume"] and draw(st.integers(0, 3)):
        return argv, out  # a resume with the run's own settings, as it should be
    keys = [k for k in entry.config if k not in ("steps", "eval_batch_size")]
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=4)) if keys else []
    argv += ["--config", *draw(tiny_config(entry)), "steps=2", "eval_batch_size=500",
             *(draw(config_setting(entry, k)) for k in chosen)]
    for flag, values in (("--steps", ["1", "2", "3", "0", "-5"]),
                         ("--batch-size", ["4", "16", "0"]),
                         ("--lr", ["0.001", "0.01", "0", "inf", "1e6"]),
                         ("--seed", ["0", "3", "-1"]),
                         ("--early-stop", ["1", "2", "0", "-3"]),
                         ("--device", ["cpu", "cpu", "cuda"]),
                         ("--data-dir", [workspace, os.path.join(workspace, "missing")])):
        if draw(st.integers(0, 9)) == 0:
            argv += [flag, draw(st.sampled_from(values))]
    writes = out if where == "new" or again in (["--resume"], ["--overwrite"]) else None
    return argv, writes


@st.composite
def other_command(draw, workspace):
    """argv of a sample, eval or probe of the workspace's run, and the file it may write."""
    run = os.path.join(workspace, "existing")
    target = draw(st.sampled_from([run, os.path.join(run, "checkpoint.npz"),
                                   os.path.join(workspace, "notes.txt"),
                                   os.path.join(workspace, "nothing")]))
    command = draw(st.sampled_from(["sample", "sample", "eval", "probe"]))
    argv, writes = [command, target], None
    if command == "sample":
        out = draw(st.sampled_from([None, "s.png", "s.npy", "s.txt", "s.jpg", "sub/s.png"]))
        if out:
            writes = os.path.join(workspace, "out", out)
            argv += ["--out", writes]
        else:
            writes = "new files in the run"
        argv += ["--n", draw(st.sampled_from(["1", "4", "0", "-1"])),
                 "--seed", draw(st.sampled_from(["0", "7", "-1"]))]
        if draw(st.booleans()):
            argv += ["--label", draw(st.sampled_from(["0", "9", "10", "-1"]))]
    elif command == "eval":
        argv += ["--split", draw(st.sampled_from(["test", "valid", "train", "bogus"]))]
    else:
        argv += ["--dims", draw(st.sampled_from(["8", "0"])), "--quiet"]
        writes = os.path.join(run, "metrics.json")
    return argv, writes


_TEMPLATE = []


@contextlib.contextmanager
def workspace():
    """A new folder holding a finished run (existing/) and a user's file (notes.txt)."""
    if not _TEMPLATE:
        template = tempfile.mkdtemp(prefix="minigen-fuzz-template-")
        trainer.train("made", "digits-bin", out=os.path.join(template, "existing"),
                      config=["steps=2", "hidden=4", "batch_size=8"], progress=False)
        with open(os.path.join(template, "notes.txt"), "w") as f:
            f.write("the user's own notes\n")
        _TEMPLATE.append(template)
    folder = tempfile.mkdtemp(prefix="minigen-fuzz-")
    try:
        shutil.copytree(_TEMPLATE[0], folder, dirs_exist_ok=True)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check(argv, writes, folder):
    """Run argv; the properties every command has."""
    before = snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    err = err.getvalue()
    assert "Traceback" not in err, (argv, err)
    assert status in (0, 2, 3), (argv, status, err)
    if status:
        assert err.strip().splitlines()[-1].startswith("minigen: error: "), (argv, err)
    after = snapshot(folder)
    changed = [p for p in before if after.get(p) != before[p]] + \
        [p for p in after if p not in before]
    for path in changed:
        allowed = writes is not None and (
            path.startswith(writes + os.sep) or path == writes
            or writes == "new files in the run" and path not in before
            and os.path.basename(path).startswith("samples-"))
        assert allowed, (argv, status, path, err)


def _fuzz(names, examples):
    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def run(data):
        with workspace() as folder:
            command = data.draw(st.one_of(train_command(names, folder),
                                          other_command(folder)) if data.draw(
                st.integers(0, 3)) == 0 else train_command(names, folder))
            check(*command, folder)
    run()


# one model of each kind, quick with tiny widths: the default run's few seconds
QUICK = ["histogram", "made", "pixelcnn", "realnvp", "vae", "ar-flow-2d"]


def test_fuzzed_commands_never_trace_back_nor_touch_other_files():
    _fuzz(QUICK, examples=8)


@pytest.mark.slow
@pytest.mark.parametrize("name", [e.name for e in models.list_models()])
def test_fuzzed_commands_never_trace_back_nor_touch_other_files_for_every_model(name):
    _fuzz([name], examples=15)
