"""minigen.backend.kernel, the one place where a kernel's version is chosen by device: the
Numba version for NumPy arrays, for other (CuPy) arrays the CUDA version where a folder has
cuda.py and the reference otherwise, None where the kernel does not take the array; and
every op on a kernel asks it. Checked without CuPy, on a stand-in for a device array."""
import importlib
import pathlib
import sys
import types

import devicestandin
from cudacheck import needs_gpu
import numpy as np
import pytest

import minigen as mg
import minigen.functional as F
from minigen import backend

KERNELS = ("adam", "attention", "causal_conv1d", "conv2d", "coupling", "gelu", "layer_norm",
           "masked_conv2d", "relu", "sigmoid", "silu", "sum")
# references for NumPy only: without a CUDA kernel their ops compose themselves on CuPy
NUMPY_ONLY_REFERENCE = ("gelu", "layer_norm", "sigmoid", "silu")
FLOAT32_ONLY = ("sum",)  # float64 needs no float64 accumulator: NumPy's own sum


class DeviceArray:
    """Stands for a CuPy array: not a NumPy array, with a dtype."""

    def __init__(self, dtype=np.float32):
        self.dtype = np.dtype(dtype)


def folder(name):
    return importlib.import_module(f"minigen.kernels.{name}")


@pytest.mark.parametrize("name", KERNELS)
def test_numpy_arrays_get_the_cpu_kernel(name):
    assert backend.kernel(name, np.zeros(3, np.float32)) is folder(name).cpu
    want = None if name in FLOAT32_ONLY else folder(name).cpu
    assert backend.kernel(name, np.zeros(3, np.float64)) is want


@pytest.fixture
def cupy_path(monkeypatch):
    """Device arrays take CuPy's path, also where MINIGEN_DEVICE=standin made the stand-in
    the device (whose arrays get the references)."""
    monkeypatch.setattr(backend, "_stand_in", False)
    monkeypatch.setattr(backend, "_kernels", {})


def has_cuda(name):
    return (pathlib.Path(folder(name).__file__).parent / "cuda.py").exists()


@pytest.mark.parametrize("name", KERNELS)
def test_device_arrays_get_the_cuda_kernel_where_there_is_one_else_the_reference(name,
                                                                                 cupy_path):
    if has_cuda(name):
        want = importlib.import_module(f"minigen.kernels.{name}.cuda")  # needs no CuPy
    else:
        want = None if name in NUMPY_ONLY_REFERENCE else folder(name).reference
    assert backend.kernel(name, DeviceArray()) is want


@needs_gpu
@pytest.mark.parametrize("name", KERNELS)
def test_cupy_arrays_get_the_cuda_kernel_of_the_dtypes_it_takes(name, monkeypatch):
    monkeypatch.setattr(backend, "_kernels", {})
    dtypes = getattr(folder(name), "DTYPES", None)
    for dtype in (np.float32, np.float64):
        want = importlib.import_module(f"minigen.kernels.{name}.cuda") \
            if dtypes is None or dtype in dtypes else None
        assert backend.kernel(name, backend.cupy().zeros(3, dtype)) is want


@pytest.mark.parametrize("name", KERNELS)
def test_the_device_stand_in_gets_the_references_never_cuda(name):
    devicestandin.install(default=False)
    try:
        array = backend.cupy().zeros(3, np.float32)
        assert backend.device_of(array) == "cuda"
        want = None if name in NUMPY_ONLY_REFERENCE else folder(name).reference
        assert backend.kernel(name, array) is want
    finally:
        devicestandin.uninstall()
    assert backend.kernel(name, np.zeros(3, np.float32)) is folder(name).cpu


@pytest.mark.parametrize("name", KERNELS)
def test_a_cuda_kernel_is_used_once_its_module_exists(name, monkeypatch, cupy_path):
    cuda = types.ModuleType(f"minigen.kernels.{name}.cuda")
    monkeypatch.setitem(sys.modules, cuda.__name__, cuda)
    assert backend.kernel(name, DeviceArray()) is cuda
    assert backend.kernel(name, np.zeros(3, np.float32)) is folder(name).cpu


@pytest.mark.parametrize("name", ["adam", "gelu", "layer_norm", "silu", "sum"])
def test_dtypes_a_kernel_does_not_take_get_none(name):
    for dtype in (np.float16, np.int64):
        assert backend.kernel(name, np.zeros(3, dtype)) is None
        assert backend.kernel(name, DeviceArray(dtype)) is None
    assert backend.kernel("conv2d", np.zeros(3, np.float16)) is folder("conv2d").cpu


def test_every_op_on_a_kernel_asks_the_dispatcher(monkeypatch):
    asked = set()
    choose = backend.kernel

    def spy(name, array):
        asked.add(name)
        return choose(name, array)

    monkeypatch.setattr(backend, "kernel", spy)
    rng = np.random.default_rng(0)

    def t(*shape):
        return mg.tensor(rng.standard_normal(shape), requires_grad=True)

    x, q = t(2, 3, 5, 5), t(1, 2, 4, 3)
    outputs = [F.conv2d(x, t(4, 3, 3, 3)), F.masked_conv2d(x, t(4, 3, 3, 3)),
               F.causal_conv1d(t(2, 3, 6), t(4, 3, 2)), F.attention(q, q, q),
               F.affine_coupling(x, t(2, 3, 5, 5), t(2, 3, 5, 5))[0], mg.gelu(x),
               F.layer_norm(x, 5), F.silu(x), mg.relu(x), mg.sigmoid(x)]
    sum(y.sum() for y in outputs).backward()
    mg.optim.Adam([x]).step()
    t(2, 3).astype(np.float32).sum()
    assert asked == set(KERNELS)
