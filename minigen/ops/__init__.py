"""The op library. Importing it also gives Tensor its operators and NumPy-style methods."""
from ..autograd import Tensor
from .elementwise import (abs, add, clip, cos, divide, elu, equal, erf, exp, expm1, gelu,
                          greater, greater_equal, isfinite, leaky_relu, less, less_equal,
                          lift, log, log1p, log_sigmoid, logical_not, maximum, minimum,
                          multiply, negative, not_equal, power, relu, sigmoid, sign, sin,
                          softplus, sqrt, square, subtract, tanh, where)
from .linalg import dot, einsum, matmul
from .reduce import (argmax, argmin, cumsum, log_softmax, logsumexp, max, mean, min, prod,
                     softmax, std, sum, var)
from .shape import (argsort, astype, broadcast_to, concatenate, expand_dims, flatten, flip,
                    getitem, moveaxis, pad, repeat, reshape, sort, split, squeeze, stack,
                    swapaxes, take, take_along_axis, tile, transpose)

__all__ = [
    "abs", "add", "argmax", "argmin", "argsort", "astype", "broadcast_to", "clip",
    "concatenate", "cos", "cumsum", "divide", "dot", "einsum", "elu", "equal", "erf",
    "exp", "expand_dims", "expm1", "flatten", "flip", "gelu", "getitem", "greater",
    "greater_equal", "isfinite", "leaky_relu", "less", "less_equal", "log", "log1p",
    "log_sigmoid", "log_softmax", "logical_not", "logsumexp", "matmul", "max",
    "maximum", "mean", "min", "minimum", "moveaxis", "multiply", "negative",
    "not_equal", "pad", "power", "prod", "relu", "repeat", "reshape", "sigmoid", "sign",
    "sin", "softmax", "softplus", "sort", "split", "sqrt", "square", "squeeze", "stack",
    "std", "subtract", "sum", "swapaxes", "take", "take_along_axis", "tanh", "tile",
    "transpose", "var", "where",
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
    "__invert__": logical_not,
}

_METHODS = [exp, log, log1p, expm1, sqrt, square, abs, sin, cos, tanh, sigmoid, softplus,
            relu, clip, sum, mean, var, std, max, min, prod, cumsum, logsumexp, softmax,
            log_softmax, log_sigmoid, matmul, dot, reshape, transpose, swapaxes, moveaxis,
            expand_dims, squeeze, broadcast_to, pad, flip, repeat, take, sort, argsort, argmax,
            argmin, astype, flatten, tile]

for _name, _fn in _OPERATORS.items():
    setattr(Tensor, _name, _fn)
for _fn in _METHODS:
    setattr(Tensor, _fn.__name__, _fn)
Tensor.T = property(lambda self: transpose(self))
Tensor.mT = property(lambda self: swapaxes(self, -1, -2))
