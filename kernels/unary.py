"""What the one-input elementwise kernels (gelu, silu) share: the check of their input and
the driver that runs a Numba loop over a flat copy of it, serial or over the thread pool.

Below `parallel_min` elements the serial loop runs: waking the pool costs about what a
pass over that many values does (kernels/coupling/cpu.py measured it).
"""
import numpy as np


def check(x, name):
    """x's dtype, after checking that x is a float32 or float64 NumPy array."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 NumPy array, got "
                        f"{type(x).__name__} of dtype {getattr(x, 'dtype', None)}")
    return x.dtype


def run(parallel, serial, x, parallel_min):
    """out = loop(x) elementwise, like x: `parallel(flat_x, flat_out)` from parallel_min
    elements on, else `serial`."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    (parallel if flat.size >= parallel_min else serial)(flat, out)
    return out.reshape(x.shape)
