"""The one place where NumPy or CuPy is chosen, and with it the kernel that runs.

Every op asks `xp_of(array)` for the array module that owns its input, so the same op code
runs on the CPU (NumPy) and on the GPU (CuPy), and `kernel(name, array)` for the version of
a hand-written kernel (minigen.kernels) that runs on that array. CuPy is imported only when
a CUDA array or device is actually asked for; a CPU machine never needs it.

A stand-in may play CuPy's part (use_device_module): NumPy arrays of a type marked
DeviceArray, so that the device paths of every op and model run, and are tested, on a
machine without a GPU (tests/devicestandin.py, `MINIGEN_DEVICE=standin pytest`).
"""
import importlib

import numpy as np
import scipy.special

DEVICES = ("cpu", "cuda")
_cupy = None
_special = None  # cupyx.scipy.special, or the stand-in's
_stand_in = False  # whether a stand-in plays CuPy's part (use_device_module)
_default_device = "cpu"
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


class DeviceArray:
    """The mark of a stand-in device's arrays: NumPy arrays that count as device arrays.
    CuPy's arrays need no mark (they are not NumPy arrays)."""
    __slots__ = ()


def use_device_module(module, special=None):
    """Let `module` play CuPy's part for device "cuda" (None: CuPy again, on next use).
    `module` makes arrays marked DeviceArray; `special` stands for cupyx.scipy.special.
    Kernels then run their references, which are written with xp_of, never cuda.py."""
    global _cupy, _special, _stand_in
    _cupy, _special, _stand_in = module, special, module is not None
    _kernels.clear()


def is_host(array):
    """Whether `array` is a host (NumPy) array: the one test of where an array lives."""
    return type(array) is np.ndarray or (isinstance(array, np.ndarray)
                                          and not isinstance(array, DeviceArray))


def default_device():
    """The device that tensors are made on where no device is given."""
    return _default_device


def set_default_device(device):
    """Make tensors on `device` ("cpu" or "cuda") where no device is given: mg.tensor,
    mg.zeros and the other constructors, and the random draws."""
    global _default_device
    device = check_device(device)
    if device == "cuda":
        cupy()
    _default_device = device


def cuda_available():
    try:
        cupy()
        return True
    except RuntimeError:
        return False


def check_device(device):
    if device is None:
        return _default_device
    device = str(device)
    if device.startswith("cuda"):
        return "cuda"
    if device != "cpu":
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return device


def xp_of(array):
    """NumPy for host arrays, CuPy for device arrays."""
    return np if type(array) is np.ndarray or is_host(array) else cupy()  # the first: fast


def device_of(array):
    return "cpu" if type(array) is np.ndarray or is_host(array) else "cuda"


def array_module(device):
    return np if check_device(device) == "cpu" else cupy()


def special_of(array):
    """scipy.special or cupyx.scipy.special, matching the array (erf, expit, ...)."""
    global _special
    if is_host(array):
        return scipy.special
    if _special is None:
        cupy()
        import cupyx.scipy.special
        _special = cupyx.scipy.special
    return _special


def to_device(array, device):
    """Move a raw array to `device` ("cpu" or "cuda"); no copy if it is already there."""
    device = check_device(device)
    if device == device_of(array):
        return array
    if device == "cpu":
        return array.get()
    return cupy().asarray(array)


def to_numpy(array):
    return array if is_host(array) else array.get()


def index_add(array, key, values):
    """array[key] += values, adding repeated indices once each (a scatter-add), in place."""
    if is_host(array):
        np.add.at(array, key, values)
    elif hasattr(cupy(), "scatter_add"):  # a stand-in's
        cupy().scatter_add(array, key, values)
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
    version = folder.cpu if device == "cpu" else None
    if device == "cuda" and not _stand_in:
        try:
            version = importlib.import_module(f"minigen.kernels.{name}.cuda")
        except ModuleNotFoundError as e:
            if e.name != f"minigen.kernels.{name}.cuda":
                raise  # cuda.py is there but needs a module that is not
    if version is None and getattr(folder, "REFERENCE_ON_CUPY", True):
        version = folder.reference  # written with xp_of: runs on CuPy and on a stand-in
    return version, getattr(folder, "DTYPES", None)
