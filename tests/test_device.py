"""Every registered model trains, is evaluated and draws its samples on the device through
the trainer, as `minigen train NAME --device cuda` does, and ends where the same run on the
CPU ends: the same metrics.json numbers, to float32's accuracy.

With MINIGEN_DEVICE=cuda the device is the GPU. Anywhere else it is the NumPy stand-in
(tests/devicestandin.py): a device array type that refuses to mix with host arrays, as
CuPy's does, so a model that leaves the device anywhere (a host array made beside device
ones, a tensor made without device=) fails here, on a CPU machine, before GPU time is spent
on it. The default device stays the CPU in both runs, as it is for the command line.
"""
import glob
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import devicestandin
from minigen import backend, models, trainer
from minigen.data import DatasetNotFoundError

FAST_DATA = ("digits-bin", "digits", "toy-moons", "toy-1d", "shapes")
NEEDS_A_RUN = {"vq-vae-prior", "vq-vae-2-prior"}  # priors over a trained VQ-VAE's codes
WIDTHS = {"hidden", "channels", "width", "embedding", "latent", "dim", "code_dim",
          "joint_hidden", "mlp", "filters", "features"}
CHEAP = {"T": 10, "sample_steps": 5, "eval_samples": 16, "iwae_k": 4}  # evaluation's costs
ON_GPU = os.environ.get("MINIGEN_DEVICE") == "cuda"


@pytest.fixture
def device():
    """"cuda": the GPU under MINIGEN_DEVICE=cuda, else the stand-in for this test."""
    if ON_GPU or os.environ.get("MINIGEN_DEVICE") == "standin":
        previous = backend.default_device()
        backend.set_default_device("cpu")
        yield "cuda"
        backend.set_default_device(previous)
        return
    devicestandin.install(default=False)
    try:
        yield "cuda"
    finally:
        devicestandin.uninstall()


def tiny(entry):
    """The model's defaults with its widths cut to 8 (which the default group counts
    divide) and its evaluation cut to a few samples and steps (CHEAP), 2 steps, with learning rates so small that the steps leave the metrics where
    they were. (Adam moves a weight by about lr whatever its gradient's size, so the
    float32 noise between the devices' gradients would otherwise show in the metrics as if
    it were a mistake.)"""
    config = ["steps=2", "batch_size=8", "eval_batch_size=200"]
    config += [f"{key}=1e-7" for key in entry.config if key in ("lr", "d_lr", "g_lr")]
    for key, allowed in entry.ranges.items():
        default = entry.config[key]
        element = default[0] if isinstance(default, tuple) and default else default
        if key in CHEAP:
            config.append(f"{key}={CHEAP[key]}")
        if key not in WIDTHS or isinstance(element, bool) or not isinstance(element, int):
            continue
        low = allowed.low if math.isfinite(allowed.low) else 1
        value = min(max(8, math.ceil(low)), element)
        text = ",".join([str(value)] * len(default)) if isinstance(default, tuple) \
            else str(value)
        config.append(f"{key}={text}")
    return config


def numbers(metrics):
    """The metrics that are numbers, but for the ones that time the run."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))
            and not isinstance(v, bool) and "seconds" not in k}


def run(name, device, folder):
    entry = models.get(name)
    data = next((d for d in entry.data if d in FAST_DATA), entry.data[0])
    try:
        return trainer.train(name, data, out=os.path.join(folder, device), device=device,
                             config=tiny(entry), progress=False)
    except DatasetNotFoundError as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("name", [e.name for e in models.list_models()
                                  if e.name not in NEEDS_A_RUN])
def test_a_model_trains_evaluates_and_samples_on_the_device_as_on_the_cpu(name, device,
                                                                         tmp_path):
    on_cpu = numbers(run(name, "cpu", str(tmp_path)))
    on_device = numbers(run(name, device, str(tmp_path)))
    assert on_device.keys() == on_cpu.keys()
    for key, value in on_cpu.items():
        assert np.isclose(on_device[key], value, rtol=1e-3, atol=1e-4), \
            f"{name}: {key} is {on_device[key]} on the device, {value} on the CPU"


MODEL_TESTS = ("test_models_*.py", "test_gan_*.py", "test_flows_*.py",
               "test_representation*.py", "test_trainer*.py", "test_sampling*.py",
               "test_semi*.py")


@pytest.mark.slow
def test_the_model_test_files_pass_with_the_stand_in_as_the_default_device():
    """Every model test file again, in a process of its own, with MINIGEN_DEVICE=standin:
    the tensors they make start on the stand-in, so a model or a test that leaves the
    device shows (about 5 minutes on the 2-core development machine)."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted({f for pattern in MODEL_TESTS
                    for f in glob.glob(os.path.join(here, pattern))})
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-m", "not slow", *files], env={**os.environ,
                                                          "MINIGEN_DEVICE": "standin"},
                          capture_output=True, text=True, cwd=os.path.dirname(here))
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
