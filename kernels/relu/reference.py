"""ReLU and its gradient, the plain reference: short and obviously right. The same
signatures as cpu.py.
"""
from minigen import backend


def forward(x):
    """max(x, 0), like x; NaN stays NaN."""
    return backend.xp_of(x).maximum(x, 0)


def grad(g, x):
    """g (x > 0): g where x > 0, g * 0 elsewhere (so NaN and inf in g still show)."""
    return g * (x > 0).astype(g.dtype)
