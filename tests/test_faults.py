"""Faults injected into real training processes: SIGKILL and SIGTERM at random moments of
training and of checkpoint writing (a checkpoint every step, so a signal often lands in the
middle of one). Whatever the moment, the run folder holds a checkpoint that loads, SIGTERM
ends in a message and exit status 143, and `--resume` runs to the end with the same
parameters, bit for bit, as a run never interrupted. The default run kills twice; the slow
one many times."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minigen import checkpoint, trainer

# a checkpoint every step, large enough (about 1 MB) that writing it takes a good share
CONFIG = ["hidden=512", "batch_size=16", "checkpoint_every=1", "eval_batch_size=400"]


def start(out, steps):
    return subprocess.Popen(
        [sys.executable, "-m", "minigen.cli", "train", "made", "--data", "digits-bin",
         "--out", str(out), "--quiet", "--config", f"steps={steps}", *CONFIG],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def interrupt(out, steps, signum, delay):
    """Start a run, wait until it has written its first checkpoint, send signum after
    `delay` seconds more; returns (exit status, stderr)."""
    process = start(out, steps)
    path = out / "checkpoint.npz"
    deadline = time.monotonic() + 60
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def check_fault(tmp_path, steps, signum, delay, reference):
    out = tmp_path / f"{signal.Signals(signum).name}-{delay:.3f}"
    status, err = interrupt(out, steps, signum, delay)
    assert "Traceback" not in err, err
    state = checkpoint.load(out / "checkpoint.npz")  # whatever the moment: it loads
    if signum == signal.SIGTERM:
        assert status in (143, 0), err
        if status == 143:
            assert "minigen: stopped by SIGTERM" in err.strip().splitlines()[-1]
    else:
        assert status in (-signal.SIGKILL, 0), err
    assert 0 <= state["step"] <= steps
    assert [p for p in os.listdir(out) if p.startswith(".checkpoint")] == [] or \
        signum == signal.SIGKILL  # SIGTERM never leaves a temporary file behind
    metrics = trainer.train("made", "digits-bin", out=out, resume=True, progress=False) \
        if status != 0 else None
    if metrics is not None:
        assert metrics["steps"] == steps
    resumed = checkpoint.load(out / "checkpoint.npz")
    assert resumed["step"] == steps
    for key, value in reference.items():
        np.testing.assert_array_equal(resumed["params"][key], value, err_msg=key)


def reference_params(tmp_path, steps):
    run = trainer.Run("made", "digits-bin", out=tmp_path / "whole",
                      config=[f"steps={steps}", *CONFIG])
    run.train(progress=False)
    return run.model.state_dict()


def test_sigkill_and_sigterm_leave_a_loadable_checkpoint_and_a_resumable_run(tmp_path):
    steps = 40
    reference = reference_params(tmp_path, steps)
    rng = np.random.default_rng()
    for signum in (signal.SIGKILL, signal.SIGTERM):
        check_fault(tmp_path, steps, signum, float(rng.uniform(0, 0.3)), reference)


@pytest.mark.slow
def test_many_kills_at_random_moments(tmp_path):
    steps = 150
    reference = reference_params(tmp_path, steps)
    rng = np.random.default_rng()
    for _ in range(16):
        signum = signal.SIGKILL if rng.random() < 0.5 else signal.SIGTERM
        check_fault(tmp_path, steps, signum, float(rng.uniform(0, 1.5)), reference)
