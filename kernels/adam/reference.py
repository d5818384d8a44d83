"""Adam's update of one parameter in place, in plain array operations (NumPy or CuPy): the
equations of minigen.optim.Adam, each step rounded in the parameter's dtype as PyTorch's
(non-fused) Adam rounds it.

    p = p (1 - lr wd)                        (decoupled weight decay: AdamW)
    g = g + wd p                             (L2 weight decay: Adam)
    m = m + (1 - beta1) (g - m)
    v = beta2 v + (1 - beta2) g g
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The scalars are computed in Python floats and enter each array operation as NumPy's weak
Python scalars, in the array's dtype.
"""
import math

from minigen import backend


def update(p, g, m, v, lr, beta1, beta2, eps, step, weight_decay=0.0, decoupled=False):
    """Change p, m and v in place for Adam step `step` (1 for the first) from gradient g."""
    if weight_decay and decoupled:
        p *= 1 - lr * weight_decay
    elif weight_decay:
        g = g + weight_decay * p
    m += (1 - beta1) * (g - m)
    v *= beta2
    v += (1 - beta2) * g * g
    denom = backend.xp_of(p).sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
    p -= lr / (1 - beta1 ** step) * (m / denom)
