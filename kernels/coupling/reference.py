"""Affine coupling (RealNVP, Glow), the plain NumPy reference: short and obviously right.

    forward:   out = x * exp(s) + t,       logdet = log|det d out/dx| =  sum of s
    reverse:   out = (x - t) * exp(-s),    logdet = log|det d out/dx| = -sum of s

The Jacobian is diagonal, so its log-determinant is the sum of s over all axes but the first
(the batch), one value per sample, always accumulated and returned in float64: over a
784-pixel image with s near 10 the sum is near 8000, where float32 moves in steps of 0.0005
and a float32 accumulation drifts by more.

x, s and t have one shape, (N, ...), and one floating dtype. The same signatures as cpu.py.
Written with the array's own module, so CuPy arrays work too.
"""
from minigen import backend


def forward(x, s, t, reverse=False):
    """-> (out, logdet, scale): out like x; logdet float64 of shape (N,); scale = exp(s)
    (reverse: exp(-s)), the factor each entry of x was multiplied by, for backward."""
    xp = backend.xp_of(x)
    logdet = s.sum(axis=tuple(range(1, s.ndim)), dtype=xp.float64)
    if reverse:
        scale = xp.exp(-s)
        return (x - t) * scale, -logdet, scale
    scale = xp.exp(s)
    return x * scale + t, logdet, scale


def backward(x, scale, t, grad_out, grad_logdet=None, reverse=False):
    """The gradients of sum(grad_out * out) + sum(grad_logdet * logdet) with respect to x, s
    and t, stacked in one array of shape (3,) + x.shape that unpacks as
    grad_x, grad_s, grad_t. scale is forward's third result; grad_logdet (float64, (N,))
    may be None for zero."""
    xp = backend.xp_of(x)
    grad_x = grad_out * scale
    if reverse:
        grad_s = -grad_x * (x - t)  # d/ds of (x - t) e^-s is -(x - t) e^-s
        grad_t = -grad_x
    else:
        grad_s = grad_x * x
        grad_t = grad_out
    if grad_logdet is not None:
        per_sample = grad_logdet.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        grad_s = grad_s - per_sample if reverse else grad_s + per_sample
    return xp.stack([grad_x, grad_s, grad_t])
