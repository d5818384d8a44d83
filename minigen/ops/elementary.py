"""NumPy's smooth elementary functions beyond elementwise.py: trigonometric and hyperbolic
functions and their inverses, powers and logarithms in bases 2 and 10, the cube root, angle
units, logaddexp, logaddexp2, hypot and arctan2.

Each function is one line of a table, as in HIPS autograd: NumPy's name and its derivative
in each argument, written with Tensor ops of the inputs and the output y, so that it can be
differentiated again. Where a derivative is infinite (arcsin and arccos at +-1, arccosh at
1, arctanh at +-1, cbrt at 0) the gradient is inf, as the calculus says. hypot and arctan2
have no derivative at the origin, where they have a cone's kink (hypot) or no limit at all
(arctan2): there they take the subgradient 0, never 0/0.
"""
import math

from .. import backend
from ..autograd import Function
from .elementwise import _binary, exp, sqrt, where


def _function(name, *derivatives):
    """The Function for NumPy's `name` of as many arguments as derivatives; derivatives[i]
    of (*inputs, y) is d y / d input i, written with Tensor ops."""

    def forward(ctx, *arrays):
        return getattr(backend.xp_of(arrays[0]), name)(*arrays)

    def backward(ctx, g):
        inputs, y = ctx.inputs, ctx.output
        return tuple(g * d(*inputs, y) if need else None
                     for d, need in zip(derivatives, ctx.needs_input_grad))

    return type(name.capitalize(), (Function,), {
        "forward": staticmethod(forward), "backward": staticmethod(backward),
        "__doc__": f"np.{name}, differentiable to any order.", "__module__": __name__})


def _nonzero(t):
    """t with its zeros replaced by 1, for a divisor whose quotient is wanted as 0 there
    (the numerator is 0 too); the gradient does not flow through the replaced entries."""
    zero = t.data == 0
    return where(zero, 1.0, t) if zero.any() else t


_LN2, _LN10 = math.log(2.0), math.log(10.0)

Tan = _function("tan", lambda x, y: 1.0 + y * y)
Arcsin = _function("arcsin", lambda x, y: 1.0 / sqrt((1.0 - x) * (1.0 + x)))
Arccos = _function("arccos", lambda x, y: -1.0 / sqrt((1.0 - x) * (1.0 + x)))
Arctan = _function("arctan", lambda x, y: 1.0 / (1.0 + x * x))
Sinh = _function("sinh", lambda x, y: cosh(x))
Cosh = _function("cosh", lambda x, y: sinh(x))
Arcsinh = _function("arcsinh", lambda x, y: 1.0 / sqrt(x * x + 1.0))
Arccosh = _function("arccosh", lambda x, y: 1.0 / sqrt((x - 1.0) * (x + 1.0)))
Arctanh = _function("arctanh", lambda x, y: 1.0 / ((1.0 - x) * (1.0 + x)))
Exp2 = _function("exp2", lambda x, y: y * _LN2)
Log2 = _function("log2", lambda x, y: 1.0 / (x * _LN2))
Log10 = _function("log10", lambda x, y: 1.0 / (x * _LN10))
Cbrt = _function("cbrt", lambda x, y: 1.0 / (3.0 * y * y))
# arctan2(a, b) is the angle of the point (b, a): d/da = b / r^2, d/db = -a / r^2
Arctan2 = _function("arctan2", lambda a, b, y: b / _nonzero(a * a + b * b),
                    lambda a, b, y: -a / _nonzero(a * a + b * b))
# hypot(a, b) = sqrt(a^2 + b^2) without overflow: d/da = a / y
Hypot = _function("hypot", lambda a, b, y: a / _nonzero(y), lambda a, b, y: b / _nonzero(y))
# log(e^a + e^b): d/da = e^(a - y), at most 1, never overflowing; likewise in base 2
Logaddexp = _function("logaddexp", lambda a, b, y: exp(a - y), lambda a, b, y: exp(b - y))
Logaddexp2 = _function("logaddexp2", lambda a, b, y: exp2(a - y), lambda a, b, y: exp2(b - y))


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


