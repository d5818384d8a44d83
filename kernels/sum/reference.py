"""A float32 sum over axes as NumPy (or CuPy) computes it with a float64 accumulator, then
rounded once to float32.

Why float64: along an axis that is not the innermost, NumPy adds the rows one after
another, so in float32 the error grows with the number of rows (a sum over a batch of
20,000 lost four digits); in float64 it stays below float32's last place.
"""
from minigen import backend


def sum_axes(x, axes, keepdims=False):
    """x summed over `axes` (a tuple of non-negative ints, sorted), float64 inside, x.dtype
    out."""
    return backend.xp_of(x).sum(x, axis=axes, keepdims=keepdims, dtype="float64").astype(
        x.dtype)
