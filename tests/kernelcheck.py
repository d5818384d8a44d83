"""What the kernel tests share: the tolerance every one compares a kernel with its NumPy
reference by, and setting a kernel module's constants (block sizes, thresholds) for a test.

    from kernelcheck import assert_close, patched
"""
import contextlib

import numpy as np


@contextlib.contextmanager
def patched(module, **values):
    """Set module constants for the duration (hypothesis examples share one fixture)."""
    old = {name: getattr(module, name) for name in values}
    for name, value in values.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(module, name, value)


def assert_close(got, want, terms, what):
    """float64 to rounding; float32 to a few ulps per term of the longest sum, relative to
    the largest entry (a sum of n products loses about n * eps of its terms' size)."""
    eps = np.finfo(want.dtype).eps
    size = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 4 * eps * terms * size if want.dtype == np.float32 else 64 * eps * size
    assert got.dtype == want.dtype and got.shape == want.shape, what
    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=what)
