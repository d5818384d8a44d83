"""NumPy's smooth elementary functions beyond elementwise.py: trigonometric and hyperbolic
functions and their inverses, powers and logarithms in bases 2 and 10, the cube root, angle
units, logaddexp, logaddexp2, hypot and arctan2.

A function of one argument is one line of a table, as in HIPS autograd: NumPy's name and
its derivative written with Tensor ops of the input x and the output y, so that it can be
differentiated again. Where a derivative is infinite (arcsin and arccos at +-1, arccosh at
1, arctanh at +-1, cbrt at 0) the gradient is inf, as the calculus says. hypot and arctan2
have no derivative at the origin, where they have a cone's kink (hypot) or no limit at all
(arctan2): there they take the subgradient 0, never 0/0.
"""
import math

from .. import backend
from ..autograd import Function
from .elementwise import _binary, exp, sqrt, where


def _unary(name, derivative):
    """The Function for NumPy's one-argument `name`, with dy/dx = derivative(x, y)."""

    def forward(ctx, x):
        return getattr(backend.xp_of(x), name)(x)

    def backward(ctx, g):
        return g * derivative(ctx.inputs[0], ctx.output)

    return type(name.capitalize(), (Function,), {
        "forward": staticmethod(forward), "backward": staticmethod(backward),
        "__doc__": f"np.{name}, differentiable to any order.", "__module__": __name__})


_LN2, _LN10 = math.log(2.0), math.log(10.0)

Tan = _unary("tan", lambda x, y: 1.0 + y * y)
Arcsin = _unary("arcsin", lambda x, y: 1.0 / sqrt((1.0 - x) * (1.0 + x)))
Arccos = _unary("arccos", lambda x, y: -1.0 / sqrt((1.0 - x) * (1.0 + x)))
Arctan = _unary("arctan", lambda x, y: 1.0 / (1.0 + x * x))
Sinh = _unary("sinh", lambda x, y: cosh(x))
Cosh = _unary("cosh", lambda x, y: sinh(x))
Arcsinh = _unary("arcsinh", lambda x, y: 1.0 / sqrt(x * x + 1.0))
Arccosh = _unary("arccosh", lambda x, y: 1.0 / sqrt((x - 1.0) * (x + 1.0)))
Arctanh = _unary("arctanh", lambda x, y: 1.0 / ((1.0 - x) * (1.0 + x)))
Exp2 = _unary("exp2", lambda x, y: y * _LN2)
Log2 = _unary("log2", lambda x, y: 1.0 / (x * _LN2))
Log10 = _unary("log10", lambda x, y: 1.0 / (x * _LN10))
Cbrt = _unary("cbrt", lambda x, y: 1.0 / (3.0 * y * y))


def _nonzero(t):
    """t with its zeros replaced by 1, for a divisor whose quotient is wanted as 0 there
    (the numerator is 0 too); the gradient does not flow through the replaced entries."""
    zero = t.data == 0
    return where(zero, 1.0, t) if zero.any() else t


class Arctan2(Function):
    """The angle of the point (x, y) = (b, a): d/da = b / r^2, d/db = -a / r^2."""

    @staticmethod
    def forward(ctx, a, b):
        return backend.xp_of(a).arctan2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        r2 = _nonzero(a * a + b * b)
        return (g * b / r2 if need_a else None), (-g * a / r2 if need_b else None)


class Hypot(Function):
    """sqrt(a^2 + b^2) without overflow: d/da = a / out."""

    @staticmethod
    def forward(ctx, a, b):
        return backend.xp_of(a).hypot(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        h = _nonzero(ctx.output)
        return (g * a / h if need_a else None), (g * b / h if need_b else None)


class Logaddexp(Function):
    """log(e^a + e^b); d/da = e^(a - out), which is at most 1 and never overflows."""

    @staticmethod
    def forward(ctx, a, b):
        return backend.xp_of(a).logaddexp(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        y = ctx.output
        return (g * exp(a - y) if need_a else None), (g * exp(b - y) if need_b else None)


class Logaddexp2(Function):
    """log2(2^a + 2^b); d/da = 2^(a - out)."""

    @staticmethod
    def forward(ctx, a, b):
        return backend.xp_of(a).logaddexp2(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        y = ctx.output
        return (g * exp2(a - y) if need_a else None), (g * exp2(b - y) if need_b else None)


def tan(x):
    return Tan.apply(x)


def arcsin(x):
    return Arcsin.apply(x)


def arccos(x):
    return Arccos.apply(x)


def arctan(x):
    return Arctan.apply(x)


def sinh(x):
    return Sinh.apply(x)


def cosh(x):
    return Cosh.apply(x)


def arcsinh(x):
    return Arcsinh.apply(x)


def arccosh(x):
    return Arccosh.apply(x)


def arctanh(x):
    return Arctanh.apply(x)


def exp2(x):
    return Exp2.apply(x)


def log2(x):
    return Log2.apply(x)


def log10(x):
    return Log10.apply(x)


def cbrt(x):
    return Cbrt.apply(x)


def deg2rad(x):
    """x * (pi / 180), NumPy's own formula, so the values agree to the last bit."""
    return x * (math.pi / 180.0)


def rad2deg(x):
    return x * (180.0 / math.pi)


radians, degrees = deg2rad, rad2deg


def arctan2(a, b):
    """The angle of the point (b, a) in radians, as np.arctan2(a, b)."""
    return _binary(Arctan2, a, b)


def hypot(a, b):
    return _binary(Hypot, a, b)


def logaddexp(a, b):
    return _binary(Logaddexp, a, b)


def logaddexp2(a, b):
    return _binary(Logaddexp2, a, b)


