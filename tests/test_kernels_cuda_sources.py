"""Every CUDA C source in kernels/ compiles, for float and double, with no headers: checked
with nvcc for sm_90 (the H100) on any machine that has nvcc, GPU or not, so that a source
error shows before the scarce GPU time. On the device CuPy compiles the same files with
NVRTC (kernels/cudasource.py); the device tests check what they compute."""
import pathlib
import re
import shutil
import subprocess

import pytest

KERNELS = pathlib.Path(__file__).resolve().parent.parent / "kernels"
SOURCES = sorted(KERNELS.glob("*/*.cu"))
NVCC = shutil.which("nvcc")


def test_there_are_cuda_sources():
    assert SOURCES, "no kernels/<name>/*.cu found"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_source_includes_no_headers(path):
    includes = re.findall(r"^\s*#\s*include.*$", path.read_text(), re.M)
    assert not includes, f"NVRTC has no host headers: {includes}"


@pytest.mark.skipif(NVCC is None, reason="needs nvcc (the CUDA toolkit) on PATH")
@pytest.mark.parametrize("real", ["float", "double"])
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_source_compiles_for_the_h100(path, real, tmp_path):
    done = subprocess.run(
        [NVCC, "--std=c++17", "-arch=sm_90", "--ptx", f"-Dreal={real}", "-Werror",
         "all-warnings", "-o", str(tmp_path / "out.ptx"), str(path)],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert ".entry" in (tmp_path / "out.ptx").read_text()
