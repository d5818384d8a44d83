"""The sigmoid, the plain reference: scipy's expit, exact in both tails (1 / (1 + e^-x)
overflows e^-x below x = -88 in float32). The same signature as cpu.py.
"""
import scipy.special

from .. import unary


def check(x):
    """x's dtype, after checking that x is a float32 or float64 NumPy array."""
    return unary.check(x, "sigmoid")


def forward(x):
    """sigmoid(x), like x."""
    check(x)
    return scipy.special.expit(x)
