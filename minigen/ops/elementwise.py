"""Elementwise ops: arithmetic, math functions, activations, where, comparisons.

Each primitive is a Function with its forward (raw arrays) beside its backward (Tensor ops).
Activations that are a line of other ops (leaky_relu, elu, log_sigmoid, maximum) are
written as that line: their gradients, of every order, follow from the primitives. Exact
GELU on NumPy float arrays is the exception: composed it was a dozen passes over the largest
activations of a transformer, so it is a primitive on a fused kernel (kernels/gelu/).
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, is_float

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def lift(value, like):
    """A constant Tensor for a Python scalar or array used beside the tensor `like`.

    Python scalars take `like`'s dtype (so x * 0.5 stays float32), except a float beside an
    integer tensor, which promotes as in NumPy; arrays keep their dtype.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, float):
        dtype = like.dtype if is_float(like.dtype) else None
    elif isinstance(value, (int, bool)):
        dtype = like.dtype
    else:
        return Tensor._make(backend.xp_of(like.data).asarray(value), False, None)
    if not backend.is_host(like.data):
        return Tensor._make(backend.xp_of(like.data).asarray(value, dtype=dtype), False, None)
    # a NumPy scalar's 0-d array is made once and shared, read-only (a write raises instead
    # of changing every later x * 0.5): np.asarray of a scalar costs about what the op does
    key = (type(value), value, dtype)
    array = _SCALARS.get(key)
    if array is None:
        array = np.asarray(value, dtype=dtype)
        array.flags.writeable = False
        if value == value and len(_SCALARS) < _SCALARS_KEPT:  # NaN never compares equal
            _SCALARS[key] = array
    return Tensor._make(array, False, None)


_SCALARS = {}  # (type, value, dtype) -> read-only 0-d array, for lift
_SCALARS_KEPT = 4096


def constant(array):
    """Wrap a raw array (a mask, a sign) as a Tensor outside the graph."""
    if isinstance(array, np.generic):  # NumPy gives scalars, not 0-d arrays, for 0-d inputs
        array = np.asarray(array)
    return Tensor._make(array, False, None)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        # d(a/b)/db = -a/b^2 = -out/b
        return (g / b if need_a else None), (-g * ctx.output / b if need_b else None)


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a ** b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        ga = g * b * a ** (b - 1) if need_a else None
        gb = g * ctx.output * log(a) if need_b else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).exp(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.output


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).log(x)

    @staticmethod
    def backward(ctx, g):
        return g / ctx.inputs[0]


class Log1p(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).log1p(x)

    @staticmethod
    def backward(ctx, g):
        return g / (ctx.inputs[0] + 1.0)


class Expm1(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).expm1(x)

    @staticmethod
    def backward(ctx, g):
        return g * exp(ctx.inputs[0])  # not out + 1, which cancels to 0 for x << 0


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).sqrt(x)

    @staticmethod
    def backward(ctx, g):
        return g / (ctx.output * 2.0)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).abs(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0].data
        return g * constant(backend.xp_of(x).sign(x))


class Sin(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).sin(x)

    @staticmethod
    def backward(ctx, g):
        return g * cos(ctx.inputs[0])


class Cos(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).cos(x)

    @staticmethod
    def backward(ctx, g):
        return -g * sin(ctx.inputs[0])


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).tanh(x)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return g * (1.0 - y * y)


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        kernel = backend.kernel("sigmoid", x)  # float32 and float64 NumPy arrays
        if kernel is not None:
            return kernel.forward(x)
        return backend.special_of(x).expit(x)  # exact in both tails, unlike 1 / (1 + e^-x)

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return g * y * (1.0 - y)


class Softplus(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.xp_of(x).logaddexp(0, x)  # log(1 + e^x), finite for any x

    @staticmethod
    def backward(ctx, g):
        return g * sigmoid(ctx.inputs[0])


class Erf(Function):
    @staticmethod
    def forward(ctx, x):
        return backend.special_of(x).erf(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * (2.0 / math.sqrt(math.pi)) * exp(-(x * x))


class LogNormalCDF(Function):
    """log Phi(x), the standard normal log-CDF. Composed from erf it would be
    log((1 + erf(x / sqrt 2)) / 2), which cancels to log 0 for x < -8; scipy's log_ndtr
    (cupyx's on the GPU) switches to the asymptotic series in the lower tail. Its derivative
    phi(x) / Phi(x) = exp(log phi(x) - log Phi(x)) is written with Tensor ops, so it is
    differentiable again."""

    @staticmethod
    def forward(ctx, x):
        return backend.special_of(x).log_ndtr(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        return g * exp(-0.5 * square(x) - _HALF_LOG_2PI - ctx.output)


class Gelu(Function):
    """x Phi(x) on the gelu kernel; its gradient is a node of its own, GeluDerivative, so
    that the kernel's derivative can be fused and still be differentiated again."""

    @staticmethod
    def forward(ctx, x):
        return backend.kernel("gelu", x).forward(x)

    @staticmethod
    def backward(ctx, g):
        return g * GeluDerivative.apply(ctx.inputs[0])


class GeluDerivative(Function):
    """gelu'(x) = Phi(x) + x phi(x), whose own derivative is phi(x) (2 - x^2)."""

    @staticmethod
    def forward(ctx, x):
        return backend.kernel("gelu", x).derivative(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        density = exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        return g * density * (2.0 - x * x)


class Silu(Function):
    """x sigmoid(x) on the silu kernel; its gradient is a node of its own, SiluDerivative,
    as for Gelu."""

    @staticmethod
    def forward(ctx, x):
        return backend.kernel("silu", x).forward(x)

    @staticmethod
    def backward(ctx, g):
        return g * SiluDerivative.apply(ctx.inputs[0])


class SiluDerivative(Function):
    """silu'(x) = s (1 + x c), s = sigmoid(x), c = sigmoid(-x); its own derivative is
    s c (2 + x (c - s))."""

    @staticmethod
    def forward(ctx, x):
        return backend.kernel("silu", x).derivative(x)

    @staticmethod
    def backward(ctx, g):
        x = ctx.inputs[0]
        s, c = sigmoid(x), sigmoid(-x)
        return g * s * c * (2.0 + x * (c - s))


class Relu(Function):
    """max(x, 0) on the relu kernel (one Numba pass for float32 and float64 arrays)."""

    @staticmethod
    def forward(ctx, x):
        return _relu_kernel(x).forward(x)

    @staticmethod
    def backward(ctx, g):
        return ReluGrad.apply(g, ctx.inputs[0])


class ReluGrad(Function):
    """g (x > 0), Relu's gradient, as a node of its own so that the kernel's one pass
    stays differentiable again: linear in g (the same mask again), flat in x."""

    @staticmethod
    def forward(ctx, g, x):
        return _relu_kernel(g).grad(g, x)

    @staticmethod
    def backward(ctx, gg):
        return ReluGrad.apply(gg, ctx.inputs[1]), None


def _relu_kernel(array):
    """minigen.kernels.relu's version for `array`: Numba for float32 and float64 NumPy
    arrays, the NumPy/CuPy reference for any other."""
    found = backend.kernel("relu", array)
    if found is None:
        from minigen.kernels.relu import reference as found
    return found


class Clip(Function):
    @staticmethod
    def forward(ctx, x, low, high):
        return backend.xp_of(x).clip(x, low, high)

    @staticmethod
    def backward(ctx, g):
        x, low, high = (t.data for t in ctx.inputs)
        inside = (x >= low) & (x <= high)
        return g * constant(inside.astype(x.dtype)), None, None


class ZeroGradient(Function):
    """A function that is flat wherever it is defined: floor, ceil, rint, trunc, round,
    floor_divide. Its gradient is 0 everywhere, the jumps included (the subgradient NumPy
    users expect, as in HIPS autograd), so a loss through it trains nothing behind it but
    stays differentiable."""

    @staticmethod
    def forward(ctx, *arrays, fn):
        return fn(*arrays)

    @staticmethod
    def backward(ctx, g):
        return tuple(constant(backend.xp_of(x.data).zeros_like(x.data)) for x in ctx.inputs)


class Remainder(Function):
    """a - q b with q = floor(a / b) (np.remainder, Python's %) or trunc(a / b) (np.fmod).
    d/da = 1 and d/db = -q, with q read back from the result; where b = 0 (the result is
    NaN, as in NumPy) q is taken as 0."""

    @staticmethod
    def forward(ctx, a, b, name):
        return getattr(backend.xp_of(a), name)(a, b)

    @staticmethod
    def backward(ctx, g):
        (a, b), out = ctx.inputs, ctx.output
        need_a, need_b = ctx.needs_input_grad
        gb = None
        if need_b:
            xp = backend.xp_of(out.data)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = xp.round((a.data - out.data) / b.data)
            gb = -g * constant(xp.nan_to_num(q, nan=0.0, posinf=0.0, neginf=0.0))
        return (g if need_a else None), gb


class Where(Function):
    @staticmethod
    def forward(ctx, a, b, condition):
        ctx.condition = condition
        return backend.xp_of(a).where(condition, a, b)

    @staticmethod
    def backward(ctx, g):
        zero = lift(0.0, g)
        need_a, need_b = ctx.needs_input_grad
        return (Where.apply(g, zero, condition=ctx.condition) if need_a else None,
                Where.apply(zero, g, condition=ctx.condition) if need_b else None)


def _binary(op, a, b):
    if isinstance(a, Tensor):
        return op.apply(a, lift(b, a))
    return op.apply(lift(a, b), b)


def add(a, b):
    return _binary(Add, a, b)


def subtract(a, b):
    return _binary(Sub, a, b)


def multiply(a, b):
    return _binary(Mul, a, b)


def divide(a, b):
    return _binary(Div, a, b)


true_divide = divide


def power(a, b):
    return _binary(Pow, a, b)


def negative(x):
    return Neg.apply(x)


def exp(x):
    return Exp.apply(x)


def log(x):
    return Log.apply(x)


def log1p(x):
    return Log1p.apply(x)


def expm1(x):
    return Expm1.apply(x)


def sqrt(x):
    return Sqrt.apply(x)


def square(x):
    return Mul.apply(x, x)


def abs(x):
    """|x|; at 0 the gradient is the subgradient 0 (sign(0))."""
    return Abs.apply(x)


absolute = fabs = abs


def sin(x):
    return Sin.apply(x)


def cos(x):
    return Cos.apply(x)


def tanh(x):
    return Tanh.apply(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def softplus(x):
    return Softplus.apply(x)


def reciprocal(x):
    return divide(1.0, x)


def root_of_squares(s):
    """sqrt(s) for s a sum of squares (std, norms), with the subgradient 0 where s = 0.

    There the function it belongs to (the std of equal values, a norm at 0) has the kink of
    |x| at 0, and the plain chain rule would multiply d sqrt(s)/ds = inf by ds/dx = 0 into
    NaN. The second `where` keeps the unused branch finite, so no NaN comes back through
    it either."""
    zero = s.data == 0
    if not zero.any():
        return sqrt(s)
    return where(zero, 0.0, sqrt(where(zero, 1.0, s)))


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return -softplus(-x)


def erf(x):
    return Erf.apply(x)


def log_normal_cdf(x):
    return LogNormalCDF.apply(x)


def relu(x):
    return Relu.apply(x)


def leaky_relu(x, negative_slope=0.01):
    return where(x > 0, x, x * negative_slope)


def elu(x, alpha=1.0):
    # expm1 of min(x, 0): the unused branch never overflows, so its zero gradient stays zero
    return where(x > 0, x, expm1(clip(x, None, 0.0)) * alpha)


def gelu(x, approximate="none"):
    """x * Phi(x), exact (erf) by default; approximate="tanh" is the GPT-2 formula."""
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)
        return x * 0.5 * (tanh(inner) + 1.0)
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', not {approximate!r}")
    if backend.kernel("gelu", x.data) is not None:
        return Gelu.apply(x)
    return x * 0.5 * (erf(x * (1.0 / math.sqrt(2.0))) + 1.0)


def silu(x):
    """x sigmoid(x), the SiLU (Elfwing et al. 2018; "swish" in Ramachandran et al. 2017): on
    the fused kernel where it takes x, else composed (derivatives from sigmoid's)."""
    if backend.kernel("silu", x.data) is not None:
        return Silu.apply(x)
    return x * sigmoid(x)


def clip(x, a_min=None, a_max=None):
    """Values limited to [a_min, a_max]; the gradient passes where a_min <= x <= a_max."""
    if a_min is None and a_max is None:
        raise ValueError("clip: give a_min, a_max or both")
    low = lift(-math.inf if a_min is None else a_min, x)
    high = lift(math.inf if a_max is None else a_max, x)
    return Clip.apply(x, low, high)


def where(condition, a, b):
    """a where condition holds, else b (all three broadcast together)."""
    condition = condition.data if isinstance(condition, Tensor) else condition
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError("where: a or b must be a Tensor")
    a, b = lift(a, like), lift(b, like)
    condition = backend.xp_of(like.data).asarray(condition, dtype=bool)
    return Where.apply(a, b, condition=condition)


def _pair(a, b):
    """Both operands as Tensors, a Python or NumPy value lifted beside the Tensor one."""
    return (a, lift(b, a)) if isinstance(a, Tensor) else (lift(a, b), b)


def _pick(takes_a, a, b):
    a, b = _pair(a, b)
    return where(takes_a(a, b), a, b)


def maximum(a, b):
    """Elementwise max; at ties the gradient goes to a. A NaN on either side wins, as in
    NumPy, and takes the gradient."""
    return _pick(_maximum_takes_a, a, b)


def minimum(a, b):
    return _pick(_minimum_takes_a, a, b)


def fmax(a, b):
    """Elementwise max that ignores NaN (the other value wins, and its gradient)."""
    return _pick(_fmax_takes_a, a, b)


def fmin(a, b):
    return _pick(_fmin_takes_a, a, b)


def floor(x):
    """Gradient 0 (ZeroGradient), as for ceil, rint, trunc, round and floor_divide."""
    return ZeroGradient.apply(x, fn=backend.xp_of(x.data).floor)


def ceil(x):
    return ZeroGradient.apply(x, fn=backend.xp_of(x.data).ceil)


def rint(x):
    return ZeroGradient.apply(x, fn=backend.xp_of(x.data).rint)


def trunc(x):
    return ZeroGradient.apply(x, fn=backend.xp_of(x.data).trunc)


fix = trunc


def round(x, decimals=0):
    """Halves to even, as np.round; gradient 0."""
    return ZeroGradient.apply(x, fn=lambda a: backend.xp_of(a).round(a, decimals))


def floor_divide(a, b):
    """a // b, floor(a / b); gradient 0."""
    a, b = _pair(a, b)
    return ZeroGradient.apply(a, b, fn=backend.xp_of(a.data).floor_divide)


def remainder(a, b):
    """a % b with the sign of b (np.remainder, np.mod, Python's %)."""
    return Remainder.apply(*_pair(a, b), name="remainder")


mod = remainder


def fmod(a, b):
    """The C remainder, with the sign of a (np.fmod)."""
    return Remainder.apply(*_pair(a, b), name="fmod")


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN and infinities replaced by finite numbers (np.nan_to_num); the gradient passes
    where x is finite and is 0 at the replaced entries."""
    if not is_float(x.dtype):
        return x
    xp = backend.xp_of(x.data)
    finite = xp.isfinite(x.data)
    if finite.all():
        return x
    return where(finite, x, constant(xp.nan_to_num(x.data, nan=nan, posinf=posinf,
                                                   neginf=neginf)))


def select(condlist, choicelist, default=0):
    """The choice of the first condition that holds, else `default` (np.select)."""
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: {len(condlist)} conditions for {len(choicelist)} choices")
    if not condlist:
        raise ValueError("select: needs at least one condition")
    like = next((c for c in list(choicelist) + [default] if isinstance(c, Tensor)), None)
    if like is None:
        raise TypeError("select: a choice or the default must be a Tensor")
    result = lift(default, like)
    for condition, choice in zip(reversed(condlist), reversed(choicelist)):
        result = where(condition, lift(choice, like), result)
    return result


def _compare(name, fn):
    def compare(a, b):
        a_data = a.data if isinstance(a, Tensor) else a
        b_data = b.data if isinstance(b, Tensor) else b
        try:
            result = fn(a_data, b_data)
        except ValueError as e:  # shapes that do not broadcast: name the op, as Function does
            raise ValueError(f"{name}: {e}") from None
        return constant(backend.xp_of(a_data if isinstance(a, Tensor) else b_data)
                        .asarray(result))
    compare.__name__ = name
    return compare


less = _compare("less", lambda a, b: a < b)
less_equal = _compare("less_equal", lambda a, b: a <= b)
greater = _compare("greater", lambda a, b: a > b)
greater_equal = _compare("greater_equal", lambda a, b: a >= b)
equal = _compare("equal", lambda a, b: a == b)
not_equal = _compare("not_equal", lambda a, b: a != b)
_maximum_takes_a = _compare("maximum", lambda a, b: (a >= b) | (a != a))
_minimum_takes_a = _compare("minimum", lambda a, b: (a <= b) | (a != a))
_fmax_takes_a = _compare("fmax", lambda a, b: (a >= b) | (b != b))
_fmin_takes_a = _compare("fmin", lambda a, b: (a <= b) | (b != b))


def logical_not(x):
    return constant(~x.data.astype(bool))


def sign(x):
    """Not differentiable (its derivative is zero almost everywhere)."""
    return constant(backend.xp_of(x.data).sign(x.data))


def isfinite(x):
    return constant(backend.xp_of(x.data).isfinite(x.data))


def isnan(x):
    return constant(backend.xp_of(x.data).isnan(x.data))


def isinf(x):
    return constant(backend.xp_of(x.data).isinf(x.data))
