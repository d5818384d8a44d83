"""What the elementwise kernels (gelu, silu, sigmoid, relu) share: the check of their input
and the drivers that run a Numba loop over flat copies of their inputs, serial or over the
thread pool.

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


def one_pass(loop, x, *more):
    """out = loop(x, ...) elementwise, like x: `loop(flat_x, *flat_more, flat_out)` on
    contiguous flat copies (views where the arrays already are), `more` of x's shape."""
    flats = [np.ascontiguousarray(a).reshape(-1) for a in (x,) + more]
    out = np.empty_like(flats[0])
    loop(*flats, out)
    return out.reshape(x.shape)


def run(parallel, serial, x, parallel_min):
    """out = loop(x) elementwise, like x: `parallel(flat_x, flat_out)` from parallel_min
    elements on, else `serial`."""
    return one_pass(parallel if x.size >= parallel_min else serial, x)
