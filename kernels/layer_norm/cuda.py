"""Layer normalisation without its affine part on the GPU: layer_norm.cu's two kernels, one
launch each way (forward keeps rstd per row for backward, as cpu.py does), for float32 and
float64 CuPy arrays. The same signatures as cpu.py.

A row is taken by one warp up to WARP_ROW_MAX columns (a block then takes several rows)
and by a whole block beyond: a short row would leave most of a block's threads idle, and a
long one would wait on 32. Statistics are summed in float64 and rounded once, as in cpu.py
and reference.py, so that float32 results do not drift with the row's length.
"""
import numpy as np

from minigen import backend

from .. import cudasource

WARP = 32
WARP_ROW_MAX = 1024  # columns: a row up to here to one warp, longer rows to a block


def _check(op, *arrays):
    x = arrays[0]
    for a in arrays:
        if getattr(a, "ndim", None) != 2 or a.shape != x.shape:
            raise ValueError(f"layer_norm {op}: expected (N, D) arrays of one shape, got "
                             f"{[getattr(b, 'shape', type(b).__name__) for b in arrays]}")
    cudasource.check(f"layer_norm {op}", *arrays)
    return cudasource.contiguous(*arrays)


def _launch(name, arrays, rows, cols, *scalars):
    """Run kernel `name` of layer_norm.cu over `rows` rows of `cols` values: its arguments
    are `arrays`, the sizes, then `scalars`."""
    width = WARP if cols <= WARP_ROW_MAX else cudasource.THREADS
    kernel = cudasource.function(__file__, "layer_norm.cu", name, arrays[0].dtype)
    sizes = tuple(cudasource.int32(n) for n in (rows, cols, width))
    kernel(cudasource.grid(rows, cudasource.THREADS // width), (cudasource.THREADS,),
           (*arrays, *sizes, *scalars))


def forward(x, eps):
    """-> (xhat, rstd): x normalised per row, and 1 / sqrt(var + eps) per row."""
    (x,) = _check("forward", x)
    cp = backend.cupy()
    xhat, rstd = cp.empty_like(x), cp.empty(x.shape[0], dtype=x.dtype)
    if x.shape[0]:
        _launch("layer_norm_forward", (x, xhat, rstd), *x.shape, np.float64(eps))
    return xhat, rstd


def backward(xhat, rstd, g):
    """dx for the output gradient g, from forward's xhat and rstd."""
    xhat, g = _check("backward", xhat, g)
    if rstd.shape != (g.shape[0],):  # the kernel would read past its end
        raise ValueError(f"layer_norm backward: rstd of shape {rstd.shape} for {g.shape[0]} "
                         f"rows; expected ({g.shape[0]},)")
    cp = backend.cupy()
    dx = cp.empty_like(g)
    if g.shape[0]:
        _launch("layer_norm_backward",
                (xhat, cp.ascontiguousarray(rstd, dtype=g.dtype), g, dx), *g.shape)
    return dx
