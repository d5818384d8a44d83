"""What the kernel tests share: the tolerance every one compares a kernel with its NumPy
reference by, the layer norm's error bounds (its CPU and CUDA versions do the same
arithmetic), and setting a kernel module's constants (block sizes, thresholds) for a test.

    from kernelcheck import assert_close, assert_layer_norm_close, patched
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


def assert_layer_norm_close(x, g, xhat, rstd, dx):
    """A layer norm's xhat, rstd (its forward on x, eps 1e-5) and dx (its backward of g),
    host arrays, against the reference's, to the error bounds derived below."""
    from minigen.kernels.layer_norm import reference
    dtype, d = x.dtype, x.shape[1]
    want_xhat, want_rstd = reference.forward(x, 1e-5)
    eps = np.finfo(dtype).eps
    assert xhat.dtype == rstd.dtype == dx.dtype == dtype
    assert xhat.shape == dx.shape == x.shape and rstd.shape == (x.shape[0],)
    size = (np.abs(x).max(axis=1) * want_rstd)[:, None].astype(np.float64)
    error = np.abs(xhat - want_xhat.astype(np.float64))
    if dtype == np.float32:
        # both sides sum in float64 and round once: an ulp of rstd each, and x - mean
        # rounds once in float32, an ulp of |x| times rstd
        np.testing.assert_allclose(rstd, want_rstd, rtol=2 * eps, atol=0)
        assert np.all(error <= 4 * eps * (size + 1))
    else:
        # float64 sums round in the data's own precision, in another order on each side
        # (LLVM's vector lanes against NumPy's pairwise sum): the first-order worst case,
        # with u = eps / 2, is (D - 1) u for a sum of D terms. The sum of squares of D
        # values each with 3u of its own is off by (D + 2) u, the mean by u more; half
        # that through the square root, and 2u for the root and the division: rstd is
        # off by (D + 7) u / 2 on either side, (D + 7) u between them. A mean of values
        # of both signs is off by D u of max |x| on each side, so x - mean by (D + 2) u
        # of it between them, and xhat also by rstd's error times |xhat|. (Sampled rows
        # show about 2.6 eps for rstd at D = 54; the former 2 eps failed at D = 60.)
        rtol = (d + 7) * eps / 2
        np.testing.assert_allclose(rstd, want_rstd, rtol=rtol, atol=0)
        assert np.all(error <= (d + 2) * eps * size + (rtol + eps) * np.abs(want_xhat))
    want_dx = reference.backward(xhat, rstd, g)
    size = (want_rstd * (np.abs(g).max(axis=1) * 3))[:, None]
    assert np.all(np.abs(dx - want_dx.astype(np.float64)) <= 8 * eps * size)
