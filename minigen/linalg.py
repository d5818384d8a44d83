"""mg.linalg, as np.linalg: the matrix functions (minigen/ops/matrix.py) and the products
NumPy 2 also lists there. Differentiable to any order; batched over leading axes.

    sign, logabsdet = mg.linalg.slogdet(a)
    w, v = mg.linalg.eigh(a)           # symmetric a; the gradient is the symmetric one
"""
from .ops.linalg import cross, matmul, outer, tensordot
from .ops.matrix import (EighResult, SlogdetResult, cholesky, det, eigh, eigvalsh, inv, norm,
                         slogdet, solve)

__all__ = ["EighResult", "SlogdetResult", "cholesky", "cross", "det", "eigh", "eigvalsh",
           "inv", "matmul", "norm", "outer", "slogdet", "solve", "tensordot"]
