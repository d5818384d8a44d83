"""What the CUDA kernel tests share: they run only where CuPy and a GPU are (skipped with the
reason elsewhere), and check each CUDA version against its NumPy reference on the same
values, moved to the host."""
import numpy as np
import pytest

from minigen import backend



def _on_a_gpu():
    """CuPy and a GPU, not the stand-in (whose arrays are NumPy's): the kernels' CUDA
    versions run on the first alone."""
    return backend.cuda_available() and not isinstance(backend.cupy().zeros(0), np.ndarray)


needs_gpu = pytest.mark.skipif(not _on_a_gpu(),
                               reason="needs CuPy and an NVIDIA GPU (pip install -e '.[gpu]')")


def cupy():
    return backend.cupy()


def to_gpu(*arrays):
    cp = cupy()
    return tuple(cp.asarray(a) for a in arrays)


def close(got, want, dtype, rtol32=1e-4, atol32=1e-5, rtol64=1e-10, atol64=1e-12):
    """got (CuPy or NumPy) against want (NumPy), to the tolerance of got's precision."""
    got = backend.to_numpy(got)
    want = backend.to_numpy(want)
    assert got.shape == want.shape and got.dtype == np.dtype(dtype)
    if np.dtype(dtype) == np.float32:
        np.testing.assert_allclose(got, want, rtol=rtol32, atol=atol32)
    else:
        np.testing.assert_allclose(got, want, rtol=rtol64, atol=atol64)
