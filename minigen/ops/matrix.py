"""The matrix functions of np.linalg (mg.linalg): inv, solve, det, slogdet, cholesky, eigh,
eigvalsh and norm, batched over leading axes as in NumPy.

Forward is NumPy's (or CuPy's) LAPACK call; backward is written with these same ops, so
second derivatives work. The rules are the standard matrix-calculus ones (Giles 2008,
"Extended collection of matrix derivative results"; Murray 2016 for Cholesky):

    Y = inv(A):        dA = -Y^T g Y^T
    X = solve(A, B):   dB = solve(A^T, g),  dA = -dB X^T
    d = det(A):        dA = g d inv(A)^T      (logabsdet: g inv(A)^T)
    L = cholesky(A):   dA = sym(L^-T Phi(L^T g) L^-1), Phi = lower triangle, half diagonal
    w, V = eigh(A):    dA = sym(V (diag(gw) + F o (V^T gV)) V^T),  F_ij = 1 / (w_j - w_i)

cholesky and eigh read one triangle of a matrix that is taken to be symmetric; their
gradient is the symmetric one (as in PyTorch), the gradient of f(A) with respect to a
symmetric A. Where two eigenvalues are equal, F is 0 for that pair (the eigenvectors of a
repeated eigenvalue are not unique and have no derivative), so a loss of the eigenvalues
alone never meets inf * 0. det and slogdet at an exactly singular matrix raise
LinAlgError from the gradient (the adjugate is not computed).
"""
import collections
import math

import numpy as np

from .. import backend
from ..autograd import Function
from .elementwise import ZeroGradient, abs, constant, power, root_of_squares, where
from .reduce import max, min, normalize_axes, sum
from .shape import reshape, tril

SlogdetResult = collections.namedtuple("SlogdetResult", "sign logabsdet")
EighResult = collections.namedtuple("EighResult", "eigenvalues eigenvectors")


def _square(a, op):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: needs square matrices in the last two axes, not shape "
                         f"{a.shape}")


def _sym(x):
    return (x + x.mT) * 0.5


class Inv(Function):
    @staticmethod
    def forward(ctx, a):
        return backend.xp_of(a).linalg.inv(a)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return -(y.mT @ g @ y.mT)


class Solve(Function):
    """X with A X = B; a 1-d B is one vector (NumPy 2's rule)."""

    @staticmethod
    def forward(ctx, a, b):
        return backend.xp_of(a).linalg.solve(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        x = ctx.output
        if b.ndim == 1:  # one vector: as a one-column matrix
            g, x = g.reshape(g.shape + (1,)), x.reshape(x.shape + (1,))
        gb = Solve.apply(a.mT, g)
        ga = -(gb @ x.mT) if ctx.needs_input_grad[0] else None
        return ga, (gb.reshape(gb.shape[:-1]) if b.ndim == 1 else gb)


def _inverse_transpose(a, op):
    """inv(a)^T, for the gradients of det and slogdet."""
    try:
        return Inv.apply(a).mT
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(f"{op}: the gradient at a singular matrix (its "
                                    f"adjugate) is not computed") from None


class Det(Function):
    @staticmethod
    def forward(ctx, a):
        return backend.xp_of(a).linalg.det(a)

    @staticmethod
    def backward(ctx, g):
        a = ctx.inputs[0]
        scale = (g * ctx.output).reshape(g.shape + (1, 1))
        return scale * _inverse_transpose(a, "det")


class LogAbsDet(Function):
    """log|det A|, given the value slogdet already computed beside the sign."""

    @staticmethod
    def forward(ctx, a, value):
        return value

    @staticmethod
    def backward(ctx, g):
        return g.reshape(g.shape + (1, 1)) * _inverse_transpose(ctx.inputs[0], "slogdet")


class Cholesky(Function):
    @staticmethod
    def forward(ctx, a):
        return backend.xp_of(a).linalg.cholesky(a)

    @staticmethod
    def backward(ctx, g):
        lower = ctx.output
        n = lower.shape[-1]
        p = tril(lower.mT @ g) * constant(_half_diagonal(lower.data, n))
        x = Solve.apply(lower.mT, p)                  # L^-T Phi
        return _sym(Solve.apply(lower.mT, x.mT).mT)  # L^-T Phi L^-1


def _half_diagonal(like, n):
    """Ones with 1/2 on the diagonal, in like's dtype and device."""
    xp = backend.xp_of(like)
    return xp.ones((n, n), dtype=like.dtype) - 0.5 * xp.eye(n, dtype=like.dtype)


class Eigh(Function):
    """Eigenvalues and eigenvectors of symmetric matrices, packed into one array of shape
    (..., n + 1, n): row 0 the eigenvalues (ascending), rows 1.. the eigenvectors as
    columns. One node, so that both come from one decomposition and share one backward."""

    @staticmethod
    def forward(ctx, a, uplo):
        xp = backend.xp_of(a)
        w, v = xp.linalg.eigh(a, UPLO=uplo)
        return xp.concatenate([w[..., None, :], v], axis=-2)

    @staticmethod
    def backward(ctx, g):
        out = ctx.output
        w, v = out[..., 0, :], out[..., 1:, :]
        gw, gv = g[..., 0, :], g[..., 1:, :]
        gap = w[..., None, :] - w[..., :, None]           # w_j - w_i
        tied = gap.data == 0                               # the diagonal, and equal pairs
        f = where(tied, 0.0, 1.0 / where(tied, 1.0, gap))
        n = w.shape[-1]
        eye = constant(backend.xp_of(out.data).eye(n, dtype=out.dtype))
        inner = gw[..., None, :] * eye + f * (v.mT @ gv)
        return _sym(v @ inner @ v.mT)


def inv(a):
    _square(a, "inv")
    return Inv.apply(a)


def solve(a, b):
    _square(a, "solve")
    return Solve.apply(a, b)


def det(a):
    _square(a, "det")
    return Det.apply(a)


def slogdet(a):
    """(sign, log|det a|) as SlogdetResult; the sign is a constant, the log differentiable."""
    _square(a, "slogdet")
    sign, value = backend.xp_of(a.data).linalg.slogdet(a.data)
    return SlogdetResult(constant(sign), LogAbsDet.apply(a, value=value))


def cholesky(a, upper=False):
    """The lower factor L of a = L L^T (or L^T with upper=True)."""
    _square(a, "cholesky")
    lower = Cholesky.apply(a)
    return lower.mT if upper else lower


def eigh(a, UPLO="L"):
    """(eigenvalues ascending, eigenvectors as columns) of symmetric matrices, as
    EighResult. The eigenvectors' signs are LAPACK's."""
    _square(a, "eigh")
    packed = Eigh.apply(a, uplo=UPLO)
    return EighResult(packed[..., 0, :], packed[..., 1:, :])


def eigvalsh(a, UPLO="L"):
    return eigh(a, UPLO).eigenvalues


def _positive_power(s, p):
    """s ** p for p > 0 and s >= 0, with the subgradient 0 where s = 0 (see
    elementwise.root_of_squares)."""
    zero = s.data == 0
    if not zero.any():
        return power(s, p)
    return where(zero, 0.0, power(where(zero, 1.0, s), p))


def _vector_norm(x, ord, axis, keepdims):
    if ord is None or ord == 2:
        return root_of_squares(sum(x * x, axis, keepdims))
    if ord == math.inf:
        return max(abs(x), axis, keepdims)
    if ord == -math.inf:
        return min(abs(x), axis, keepdims)
    if ord == 0:
        return ZeroGradient.apply(x, fn=lambda a: (a != 0).sum(
            axis=axis, keepdims=keepdims).astype(a.dtype))
    if ord == 1:
        return sum(abs(x), axis, keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: ord {ord!r} is for matrices; give two axes")
    if ord > 0:
        return _positive_power(sum(_positive_power(abs(x), ord), axis, keepdims), 1.0 / ord)
    return power(sum(power(abs(x), ord), axis, keepdims), 1.0 / ord)


def _matrix_norm(x, ord, axes, keepdims):
    row, col = axes
    if ord in (None, "fro"):
        out = root_of_squares(sum(x * x, axis=axes))
    elif ord in (1, -1):
        pick = max if ord == 1 else min
        out = pick(sum(abs(x), axis=row), axis=col - (col > row))
    elif ord in (math.inf, -math.inf):
        pick = max if ord == math.inf else min
        out = pick(sum(abs(x), axis=col), axis=row - (row > col))
    elif ord in ("nuc", 2, -2):
        raise NotImplementedError(f"norm: ord={ord!r} of a matrix needs its singular values "
                                  f"(an SVD), which minigen does not have")
    else:
        raise ValueError(f"norm: invalid ord {ord!r} for a matrix")
    if keepdims:
        out = reshape(out, [1 if i in axes else n for i, n in enumerate(x.shape)])
    return out


def norm(x, ord=None, axis=None, keepdims=False):
    """np.linalg.norm: vector norms over one axis, matrix norms over two ('fro', 1, -1,
    inf, -inf). At 0, and wherever a norm has a kink, the gradient is a subgradient: 0 at
    the zero vector, never NaN."""
    if axis is None:
        if ord is None:
            out = root_of_squares(sum(x * x))
            return reshape(out, (1,) * x.ndim) if keepdims else out
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: ord={ord!r} without an axis needs a vector or a "
                             f"matrix, not shape {x.shape}")
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalize_axes(axes, x.ndim, "norm")  # in range, none repeated
    axes = tuple(a % x.ndim for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"norm: axis must be one axis or two, not {axis}")
