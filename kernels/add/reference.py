"""a + b for two arrays of one shape and dtype, NumPy's or CuPy's own addition. The same
signature as cpu.py."""


def check(a, b):
    """Raise unless a and b have one shape and one dtype."""
    if a.shape != b.shape or a.dtype != b.dtype:
        raise ValueError(f"add: a {a.shape} {a.dtype} and b {b.shape} {b.dtype} need one "
                         f"shape and one dtype")


def add(a, b):
    """a + b, a new array; either may be a view (broadcast, sliced)."""
    check(a, b)
    return a + b
