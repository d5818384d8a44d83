"""The tolerance every kernel test compares a kernel with its NumPy reference by.

    from kernelcheck import assert_close
"""
import numpy as np


def assert_close(got, want, terms, what):
    """float64 to rounding; float32 to a few ulps per term of the longest sum, relative to
    the largest entry (a sum of n products loses about n * eps of its terms' size)."""
    eps = np.finfo(want.dtype).eps
    size = max(1.0, float(np.abs(want).max(initial=0.0)))
    tol = 4 * eps * terms * size if want.dtype == np.float32 else 64 * eps * size
    assert got.dtype == want.dtype and got.shape == want.shape, what
    np.testing.assert_allclose(got, want, rtol=0, atol=tol, err_msg=what)
