"""A stand-in for the GPU on a machine without one: NumPy playing CuPy's part.

Its arrays (StandInArray) are NumPy arrays marked minigen.backend.DeviceArray, so minigen
takes them for device arrays, and they behave like CuPy's where a mistake would show on
the GPU: mixing one with a host array in an operation raises TypeError, as CuPy does, and
so does handing a host array to the module's functions (other than asarray and array). So
a model whose code leaves the device somewhere (an np.asarray, a host array made with np
and then combined) fails here as it would on the GPU, while the values stay NumPy's.

What it cannot catch: np.asarray(a) of a stand-in array quietly gives a host copy (CuPy's
raises), and the CUDA kernels themselves (kernels/<name>/cuda.py) do not run: the kernels'
NumPy references, written with xp_of, run instead. tests/test_kernels_cuda_*.py check the
CUDA kernels on the GPU.

    MINIGEN_DEVICE=standin pytest tests/test_models_vae.py     (see tests/conftest.py)
"""
import functools
import types

import numpy as np
import scipy.special

from minigen import backend

# functions that take host arrays on CuPy too: they are how data reaches the device
TAKE_HOST = {"asarray", "array", "ascontiguousarray", "asanyarray"}


class StandInArray(np.ndarray, backend.DeviceArray):
    """A device array of the stand-in: NumPy's, with CuPy's `get` and its refusals."""

    def get(self):
        """A host copy, as CuPy's get()."""
        return np.array(self.view(np.ndarray))

    def __getitem__(self, key):
        """An element is a 0-d device array, as in CuPy, not a NumPy scalar."""
        return _wrap(super().__getitem__(key))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _refuse_host(ufunc.__name__, inputs + tuple(kwargs.get("out", ())))
        inputs = tuple(_host_view(a) for a in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(_host_view(a) for a in kwargs["out"])
        return _wrap(getattr(ufunc, method)(*inputs, **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(func.__name__, _leaves(args) + _leaves(tuple(kwargs.values())))
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))


def _leaves(items):
    found = []
    for a in items:
        if isinstance(a, (list, tuple)):
            found.extend(_leaves(a))
        else:
            found.append(a)
    return tuple(found)


def _refuse_host(name, arrays):
    for a in arrays:
        if backend.is_host(a) and a.ndim > 0:
            raise TypeError(f"{name}: a host (NumPy) array of shape {a.shape} mixed with "
                            "device arrays; CuPy refuses this too")


def _host_view(a):
    return a.view(np.ndarray) if isinstance(a, StandInArray) else a


def _unwrap(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    return _host_view(value)


def _wrap(value):
    if isinstance(value, np.generic):  # CuPy gives 0-d device arrays, not scalars
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and not isinstance(value, StandInArray):
        return value.view(StandInArray)
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class _Namespace(types.SimpleNamespace):
    """numpy (or one of its submodules) whose functions make stand-in arrays."""

    def __init__(self, module, name):
        super().__init__()
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "__name__", name)

    def __getattr__(self, name):
        value = getattr(self._module, name)
        if isinstance(value, types.ModuleType):
            return _Namespace(value, f"{self.__name__}.{name}")
        if isinstance(value, (type, np.ufunc)) or not callable(value):
            return value
        return _device_function(value, name)


def _device_function(func, name):
    @functools.wraps(func)
    def on_device(*args, **kwargs):
        if name not in TAKE_HOST:
            _refuse_host(name, _leaves(args) + _leaves(tuple(kwargs.values())))
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))
    return on_device


class StandInCupy(_Namespace):
    """What minigen asks of CuPy: numpy's functions on stand-in arrays, ndarray, the
    scatter-add of cupyx, and a device count."""
    ndarray = StandInArray

    def __init__(self):
        super().__init__(np, "cupy (stand-in)")

    @staticmethod
    def scatter_add(array, key, values):
        np.add.at(array.view(np.ndarray), _unwrap(key), _host_view(values))

    @staticmethod
    def asarray(a, dtype=None):
        """A device copy of a host array, as CuPy's (which copies to the GPU); a device
        array itself where it already is one, of that dtype."""
        if isinstance(a, StandInArray):
            return a if dtype is None or a.dtype == dtype else a.astype(dtype)
        return np.array(a, dtype=dtype).view(StandInArray)

    array = asarray

    @staticmethod
    def asnumpy(a):
        return a.get() if isinstance(a, StandInArray) else np.asarray(a)


_installs = []  # per install: the default device before it, and whether it put CuPy aside


def install(default=True):
    """Make device "cuda" this stand-in, and (`default`) the default device. Within an
    install (MINIGEN_DEVICE=standin) it only sets the default."""
    replaces = not isinstance(backend._cupy, StandInCupy)
    _installs.append((backend.default_device(), replaces))
    if replaces:
        backend.use_device_module(StandInCupy(),
                                  _Namespace(scipy.special, "special (stand-in)"))
    if default:
        backend.set_default_device("cuda")


def uninstall():
    """Undo the last install: CuPy again for device "cuda" where it put CuPy aside, and the
    default device from before it (the GPU where MINIGEN_DEVICE=cuda runs the tests)."""
    default, replaced = _installs.pop()
    if replaced:
        backend.use_device_module(None)
    backend.set_default_device(default)
