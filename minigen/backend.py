"""The one place where NumPy or CuPy is chosen, and with it the kernel that runs.

Every op asks `xp_of(array)` for the array module that owns its input, so the same op code
runs on the CPU (NumPy) and on the GPU (CuPy), and `kernel(name, array)` for the version of
a hand-written kernel (minigen.kernels) that runs on that array. CuPy is imported only when
a CUDA array or device is actually asked for; a CPU machine never needs it.
"""
import importlib

import numpy as np
import scipy.special

DEVICES = ("cpu", "cuda")
_cupy = None
_kernels = {}  # (name, device) -> (the version's module or None, the dtypes it takes or None)


def cupy():
    """The cupy module, imported on first use, with a clear error where it cannot be."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp
            cp.cuda.runtime.getDeviceCount()
        except Exception as e:  # ImportError, or CUDA present but no usable GPU
            raise RuntimeError(
                "device 'cuda' needs CuPy and a working NVIDIA GPU "
                f"(pip install -e '.[gpu]'); importing it failed: {e}") from None
        _cupy = cp
    return _cupy


def cuda_available():
    try:
        cupy()
        return True
    except RuntimeError:
        return False


def check_device(device):
    if device is None:
        return "cpu"
    device = str(device)
    if device.startswith("cuda"):
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return device


def xp_of(array):
    """NumPy for host arrays, CuPy for device arrays."""
    return np if isinstance(array, np.ndarray) else cupy()


def device_of(array):
    return "cpu" if isinstance(array, np.ndarray) else "cuda"


def array_module(device):
    return np if check_device(device) == "cpu" else cupy()


def special_of(array):
    """scipy.special or cupyx.scipy.special, matching the array (erf, expit, ...)."""
    if isinstance(array, np.ndarray):
        return scipy.special
    cupy()
    import cupyx.scipy.special
    return cupyx.scipy.special


def to_device(array, device):
    """Move a raw array to `device` ("cpu" or "cuda"); no copy if it is already there."""
    device = check_device(device)
    if device == device_of(array):
        return array
    if device == "cpu":
        return array.get()
    return cupy().asarray(array)


def to_numpy(array):
    return array if isinstance(array, np.ndarray) else array.get()


def index_add(array, key, values):
    """array[key] += values, adding repeated indices once each (a scatter-add), in place."""
    if isinstance(array, np.ndarray):
        np.add.at(array, key, values)
    else:
        import cupyx
        cupyx.scatter_add(array, key, values)


def kernel(name, array):
    """The version of the kernel minigen.kernels.<name> that runs on `array`, or None where
    none does (the op then composes itself from engine ops).

    A kernel's folder holds `cpu` (Numba), `reference` (plain NumPy) and, once written,
    `cuda`: modules with the same functions. NumPy arrays get `cpu`. CuPy arrays get `cuda`
    where the folder has one, else `reference`, which is written with xp_of and so runs on
    either; adding kernels/<name>/cuda.py is all it takes for the ops to use it. The
    folder's __init__ may narrow this: DTYPES, the only dtypes its versions take, and
    REFERENCE_ON_CUPY = False where its reference takes NumPy arrays only.

        backend.kernel("conv2d", x).forward(x, w, b, stride=(1, 1), ...)
    """
    device = device_of(array)
    found = _kernels.get((name, device))
    if found is None:
        found = _kernels[name, device] = _find_kernel(name, device)
    version, dtypes = found
    if dtypes is not None and array.dtype not in dtypes:
        return None
    return version


def _find_kernel(name, device):
    folder = importlib.import_module(f"minigen.kernels.{name}")
    if device == "cpu":
        version = folder.cpu
    else:
        try:
            version = importlib.import_module(f"minigen.kernels.{name}.cuda")
        except ModuleNotFoundError as e:
            if e.name != f"minigen.kernels.{name}.cuda":
                raise  # cuda.py is there but needs a module that is not
            version = folder.reference if getattr(folder, "REFERENCE_ON_CUPY", True) else None
    return version, getattr(folder, "DTYPES", None)
