"""SiLU and its derivative, the plain NumPy reference: short and obviously right.

    silu(x)  = x s(x),   s = sigmoid = scipy's expit (exact in both tails)
    silu'(x) = s(x) + x s(x) s(-x) = s(x) (1 + x s(-x))

s(-x) = 1 - s(x) is taken from expit(-x), not as 1 - s(x), which cancels for large x. The
same signatures as cpu.py.
"""
import numpy as np
import scipy.special

from .. import unary


def check(x):
    """x's dtype, after checking that x is a float32 or float64 NumPy array."""
    return unary.check(x, "silu")


def forward(x):
    """silu(x) = x sigmoid(x), like x."""
    check(x)
    x64 = x.astype(np.float64, copy=False)
    return (x64 * scipy.special.expit(x64)).astype(x.dtype, copy=False)


def derivative(x):
    """silu'(x) = sigmoid(x) (1 + x sigmoid(-x)), like x."""
    check(x)
    x64 = x.astype(np.float64, copy=False)
    return (scipy.special.expit(x64) * (1 + x64 * scipy.special.expit(-x64))).astype(
        x.dtype, copy=False)
