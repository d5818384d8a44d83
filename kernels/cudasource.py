"""What the CUDA versions (kernels/<name>/cuda.py) share: compiling their CUDA C sources
(kernels/<name>/*.cu) through CuPy, and the launch arithmetic.

A source is compiled once per element type: it is written for `real`, which the compile
defines as float or double (`-Dreal=float`), and its kernels are `extern "C"`, so each has
one plain name. CuPy keeps the compiled module on disk (~/.cupy/kernel_cache), so a later
process loads it instead of compiling again. Nothing here imports CuPy until a kernel is
first asked for (minigen.backend.cupy), so a CPU machine can import every cuda.py.

The sources include no headers: NVRTC, which compiles them on the device, has none of the
host's. tests/test_kernels_cuda_sources.py compiles every .cu here with nvcc for sm_90,
where nvcc is installed, so a source that does not compile is caught on a CPU machine.

    from minigen.kernels import cudasource
    k = cudasource.function(__file__, "gelu.cu", "gelu_forward", x.dtype)
    k(cudasource.grid(n), (cudasource.THREADS,), (x, out, cudasource.int32(n)))
"""
import functools
import pathlib

import numpy as np

from minigen import backend

THREADS = 256  # threads a block for the elementwise and row kernels
REAL = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
OPTIONS = ("--std=c++17",)


def real_of(dtype):
    """The C type that `real` stands for, for arrays of `dtype` (float32 or float64)."""
    try:
        return REAL[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"the CUDA kernels take float32 or float64 arrays, not "
                        f"{np.dtype(dtype)}") from None


def source_path(near, filename):
    """kernels/<name>/<filename>, given the path of a file in that folder (its cuda.py)."""
    return pathlib.Path(near).resolve().parent / filename


@functools.lru_cache(maxsize=None)
def _module(path, real, extra):
    cp = backend.cupy()
    code = pathlib.Path(path).read_text()
    return cp.RawModule(code=code, options=OPTIONS + (f"-Dreal={real}",) + extra)


@functools.lru_cache(maxsize=None)
def elementwise(in_params, out_params, body, name, **options):
    """The cupy.ElementwiseKernel of these arguments, made on first use and kept (CuPy
    compiles it on its first call for each dtype): the small kernels' one-line bodies
    (gelu, silu, sigmoid, relu, adam), with ElementwiseKernel's keywords as `options`."""
    return backend.cupy().ElementwiseKernel(in_params, out_params, body, name, **options)


def function(near, filename, name, dtype, options=()):
    """The kernel `name` of kernels/<name>/<filename>, compiled for `dtype`'s `real`;
    `options` are further NVRTC options (-DNAME=value), part of what is cached."""
    path = str(source_path(near, filename))
    return _module(path, real_of(dtype), tuple(options)).get_function(name)


def grid(n, threads=THREADS):
    """Blocks enough for n threads, `threads` a block (at least one block)."""
    return (max(1, -(-int(n) // threads)),)


def int32(n):
    """A size as the kernels' int, checked to fit."""
    n = int(n)
    if not -2**31 <= n < 2**31:
        raise ValueError(f"{n} does not fit the CUDA kernels' 32-bit int; split the work")
    return np.int32(n)


def scalar(value, dtype):
    """A float argument as the kernel's `real`."""
    return np.dtype(dtype).type(value)


def contiguous(*arrays):
    """C-contiguous versions of CuPy arrays (the arrays themselves where they already are):
    the kernels index flat memory."""
    cp = backend.cupy()
    return tuple(cp.ascontiguousarray(a) for a in arrays)


def check(name, *arrays):
    """One dtype for all, float32 or float64, on the device; returns it."""
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) != 1:
        raise TypeError(f"{name}: the arrays must share one dtype, got "
                        f"{', '.join(sorted(str(d) for d in dtypes))}")
    dtype = dtypes.pop()
    real_of(dtype)
    for a in arrays:
        if isinstance(a, np.ndarray):
            raise TypeError(f"{name}: the CUDA version takes CuPy arrays, got a NumPy array")
    return dtype
