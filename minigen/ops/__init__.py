"""The op library. Importing it also gives Tensor its operators and NumPy-style methods."""
from ..autograd import Tensor
from .assembly import (append, array_split, atleast_1d, atleast_2d, atleast_3d, c_,
                       column_stack, dsplit, dstack, hsplit, hstack, r_, roll, rollaxis, rot90,
                       row_stack, vsplit, vstack)
from .differences import diff, gradient
from .elementary import (arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, cbrt,
                         cosh, deg2rad, degrees, exp2, hypot, log2, log10, logaddexp,
                         logaddexp2, rad2deg, radians, sinh, tan)
from .elementwise import (abs, absolute, add, ceil, clip, cos, divide, elu, equal, erf, exp,
                          expm1, fabs, fix, floor, floor_divide, fmax, fmin, fmod, gelu,
                          greater, greater_equal, isfinite, isinf, isnan, leaky_relu, less,
                          less_equal, lift, log, log1p, log_sigmoid, logical_not, maximum,
                          minimum, mod, multiply, nan_to_num, negative, not_equal, power,
                          reciprocal, relu, remainder, rint, round, select, sigmoid, sign, sin,
                          softplus, sqrt, square, subtract, tanh, true_divide, trunc, where)
from .linalg import cross, dot, einsum, inner, kron, matmul, outer, tensordot, trace
from .reduce import (argmax, argmin, cumsum, log_softmax, logsumexp, max, mean, min, prod,
                     softmax, std, sum, var)
from .shape import (argpartition, argsort, astype, broadcast_to, concatenate, diag, diagonal,
                    expand_dims, flatten, flip, getitem, moveaxis, pad, partition, ravel,
                    repeat, reshape, sort, split, squeeze, stack, swapaxes, take,
                    take_along_axis, tile, transpose, tril, triu)

__all__ = [
    "abs", "absolute", "add", "append", "arccos", "arccosh", "arcsin", "arcsinh", "arctan",
    "arctan2", "arctanh", "argmax", "argmin", "argpartition", "argsort", "array_split",
    "astype", "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_to", "c_", "cbrt",
    "ceil", "clip", "column_stack", "concatenate", "cos", "cosh", "cross", "cumsum",
    "deg2rad", "degrees", "diag", "diagonal", "diff", "divide", "dot", "dsplit", "dstack",
    "einsum", "elu", "equal", "erf", "exp", "exp2", "expand_dims", "expm1", "fabs", "fix",
    "flatten", "flip", "floor", "floor_divide", "fmax", "fmin", "fmod", "gelu", "getitem",
    "gradient", "greater", "greater_equal", "hsplit", "hstack", "hypot", "inner",
    "isfinite", "isinf", "isnan", "kron", "leaky_relu", "less", "less_equal", "log",
    "log10", "log1p", "log2", "log_sigmoid", "log_softmax", "logaddexp", "logaddexp2",
    "logical_not", "logsumexp", "matmul", "max", "maximum", "mean", "min", "minimum",
    "mod", "moveaxis", "multiply", "nan_to_num", "negative", "not_equal", "outer", "pad",
    "partition", "power", "prod", "r_", "rad2deg", "radians", "ravel", "reciprocal",
    "relu", "remainder", "repeat", "reshape", "rint", "roll", "rollaxis", "rot90", "round",
    "row_stack", "select", "sigmoid", "sign", "sin", "sinh", "softmax", "softplus", "sort",
    "split", "sqrt", "square", "squeeze", "stack", "std", "subtract", "sum", "swapaxes",
    "take", "take_along_axis", "tan", "tanh", "tensordot", "tile", "trace", "transpose",
    "tril", "triu", "true_divide", "trunc", "var", "vsplit", "vstack", "where",
]


def _reflected(fn):
    return lambda self, other: fn(lift(other, self), self)


_OPERATORS = {
    "__add__": add, "__radd__": _reflected(add), "__sub__": subtract,
    "__rsub__": _reflected(subtract), "__mul__": multiply, "__rmul__": _reflected(multiply),
    "__truediv__": divide, "__rtruediv__": _reflected(divide), "__pow__": power,
    "__rpow__": _reflected(power), "__matmul__": matmul,
    "__rmatmul__": _reflected(matmul), "__neg__": negative, "__pos__": lambda x: x,
    "__abs__": abs, "__lt__": less, "__le__": less_equal, "__gt__": greater,
    "__ge__": greater_equal, "__eq__": equal, "__ne__": not_equal, "__getitem__": getitem,
    "__invert__": logical_not, "__mod__": remainder, "__rmod__": _reflected(remainder),
    "__floordiv__": floor_divide, "__rfloordiv__": _reflected(floor_divide),
}

_METHODS = [exp, log, log1p, expm1, sqrt, square, abs, sin, cos, tanh, sigmoid, softplus,
            relu, clip, sum, mean, var, std, max, min, prod, cumsum, logsumexp, softmax,
            log_softmax, log_sigmoid, matmul, dot, reshape, transpose, swapaxes, moveaxis,
            expand_dims, squeeze, broadcast_to, pad, flip, repeat, take, sort, argsort, argmax,
            argmin, astype, ravel, tile, round, trace, diagonal, argpartition]

for _name, _fn in _OPERATORS.items():
    setattr(Tensor, _name, _fn)
for _fn in _METHODS:
    setattr(Tensor, _fn.__name__, _fn)
Tensor.flatten = ravel
Tensor.T = property(lambda self: transpose(self))
Tensor.mT = property(lambda self: swapaxes(self, -1, -2))
