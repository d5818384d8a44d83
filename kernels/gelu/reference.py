"""Exact GELU and its derivative, the plain NumPy reference: short and obviously right.

    gelu(x)  = x Phi(x)                      (Hendrycks and Gimpel 2016, eq. 1)
    gelu'(x) = Phi(x) + x phi(x)

Phi is the standard normal CDF and phi = exp(-x^2 / 2) / sqrt(2 pi) its density. Phi comes
from scipy's ndtr, which is erfc(-x / sqrt 2) / 2 for negative x and so stays exact in
relative terms far out in the lower tail, where (1 + erf(x / sqrt 2)) / 2 cancels to 0.
The same signatures as cpu.py.
"""
import math

import numpy as np
import scipy.special

from .. import unary


def check(x):
    """x's dtype, after checking that x is a float32 or float64 NumPy array."""
    return unary.check(x, "gelu")


def forward(x):
    """gelu(x) = x Phi(x), like x."""
    check(x)
    x64 = x.astype(np.float64, copy=False)
    return (x64 * scipy.special.ndtr(x64)).astype(x.dtype, copy=False)


def derivative(x):
    """gelu'(x) = Phi(x) + x phi(x), like x."""
    check(x)
    x64 = x.astype(np.float64, copy=False)
    density = np.exp(-0.5 * x64 * x64) * (1 / math.sqrt(2 * math.pi))
    return (scipy.special.ndtr(x64) + x64 * density).astype(x.dtype, copy=False)
