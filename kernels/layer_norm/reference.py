"""Layer normalisation without its affine part, the plain NumPy reference: short and
obviously right. Over each row of length D (Ba, Kiros and Hinton 2016, eqs. 3-4):

    mean = sum(x) / D,   var = sum((x - mean)^2) / D,   rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) rstd

and for an output gradient g, the input gradient (the projection of g that keeps each row's
mean at 0 and its variance fixed, scaled by rstd):

    dx = rstd (g - mean(g) - xhat mean(g xhat))

Statistics are accumulated in float64 and rounded once. x is (N, D), any float dtype; rstd
is (N,) in x's dtype. The same signatures as cpu.py.
"""
import numpy as np


def forward(x, eps):
    """-> (xhat, rstd): x normalised per row, and 1 / sqrt(var + eps) per row."""
    x64 = x.astype(np.float64)
    centered = x64 - x64.mean(axis=1, keepdims=True)
    rstd = 1 / np.sqrt((centered * centered).mean(axis=1) + eps)
    return (centered * rstd[:, None]).astype(x.dtype), rstd.astype(x.dtype)


def backward(xhat, rstd, g):
    """dx for the output gradient g, from forward's xhat and rstd."""
    xhat64, g64 = xhat.astype(np.float64), g.astype(np.float64)
    mean_g = g64.mean(axis=1, keepdims=True)
    mean_gx = (g64 * xhat64).mean(axis=1, keepdims=True)
    return (rstd.astype(np.float64)[:, None] * (g64 - mean_g - xhat64 * mean_gx)).astype(g.dtype)
