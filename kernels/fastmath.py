"""Float32 math that LLVM can vectorise inside Numba kernels.

Without Intel's SVML (absent here) LLVM cannot vectorise a call to the C library's expf, so
a kernel calling `math.exp` computes one value at a time. `exp_float32` is Cephes' expf in
plain float32 arithmetic and selects, which LLVM does vectorise; kernels call `fast_exp`,
which picks it for float32 and the C library's exp for float64. Measured in
kernels/coupling/cpu.py (its docstring) and kernels/gelu/cpu.py.
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bit pattern is the int32 `bits` (a reinterpretation)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


_LOG2E = np.float32(1.44269504088896341)
# ln 2 in two parts: _LN2_HI has 9 significant bits, so n * _LN2_HI is exact for |n| < 2^15
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_C0, _C1, _C2, _C3, _C4, _C5 = (np.float32(c) for c in (
    1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
    5.0000001201e-1))
_OVERFLOW = np.float32(88.72283935546875)  # the largest x with exp(x) <= float32's max


def exp_float32(x):
    """exp(x) = 2^n exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2, exp(r) from a
    degree-7 polynomial (Cephes' expf). Only arithmetic and selects, so LLVM vectorises it.
    x is clamped first so that n fits an exponent; 2^n is built from its bit pattern in two
    halves, so results down to the smallest subnormal come out without overflow."""
    clamped = x if x < np.float32(89.0) else np.float32(89.0)  # NaN compares false: 89
    clamped = clamped if clamped > np.float32(-104.0) else np.float32(-104.0)
    n = np.floor(clamped * _LOG2E + np.float32(0.5))
    r = clamped - n * _LN2_HI - n * _LN2_LO
    p = ((((_C0 * r + _C1) * r + _C2) * r + _C3) * r + _C4) * r + _C5
    p = p * r * r + r + np.float32(1.0)
    k = np.int32(n)
    half = k >> 1
    y = p * _float32_from_bits((half + 127) << 23) * _float32_from_bits((k - half + 127) << 23)
    if x > _OVERFLOW:
        y = np.float32(np.inf)
    if x != x:
        y = x
    return y


def fast_exp(x):
    """exp inside a Numba kernel: vectorisable in float32, the C library's in float64."""
    return np.exp(x)


@overload(fast_exp)
def _fast_exp_typed(x):
    if x == types.float32:
        return exp_float32
    return lambda x: math.exp(x)


def sigmoids(x):
    """(sigmoid(x), sigmoid(-x)) inside a Numba kernel, float32 x. With e = exp(-|x|) and
    r = 1 / (1 + e), sigmoid(|x|) = r and sigmoid(-|x|) = e r: neither cancels and e never
    overflows. Shared by kernels/silu and kernels/sigmoid (their accuracy: their tests)."""


# an overload, not an njit function, so that it compiles into each kernel, inlined (a cached
# njit function is linked as object code, which LLVM can neither inline nor vectorise)
@overload(sigmoids, inline="always", jit_options={"error_model": "numpy"})
def _sigmoids_float32(x):
    def pair(x):
        e = fast_exp(-abs(x))
        r = np.float32(1.0) / (np.float32(1.0) + e)
        if x < 0:
            return e * r, r
        return r, e * r
    return pair
