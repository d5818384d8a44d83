"""NumPy's own functions on Tensors: np.sin(t), np.sum(t, axis=0), np.concatenate([t, u]),
np.linalg.solve(a, b) run minigen's ops and return Tensors that keep the graph, so a plain
NumPy function can be differentiated unchanged (docs/numpy.md).

NumPy hands any call with a Tensor among its arguments to the Tensor: a ufunc (np.sin,
np.add, and an ndarray's operators with a Tensor on the other side) to
`Tensor.__array_ufunc__`, every other overridable function to `Tensor.__array_function__`.
Both look the function up in the tables below and call the minigen op. A function that is
not in them raises TypeError naming it: computing it on the arrays instead would silently
cut the graph. Functions whose result has no gradient (comparisons, predicates, shapes,
indices, new constant arrays) run on the arrays; so does np.asarray, for a Tensor that
does not take part in a recorded graph (see `array`).

minigen's own calls never pass through here, so the protocols cost them nothing.
"""
import functools
import inspect

import numpy as np
import scipy.special

from . import creation, linalg
from . import ops as mg
from .autograd import Tensor, is_grad_enabled
from .ops.elementwise import log_normal_cdf

UFUNCS = {
    np.add: mg.add, np.subtract: mg.subtract, np.multiply: mg.multiply,
    np.divide: mg.divide, np.power: mg.power, np.negative: mg.negative,
    np.positive: lambda x: x, np.reciprocal: mg.reciprocal, np.square: mg.square,
    np.sqrt: mg.sqrt, np.cbrt: mg.cbrt, np.exp: mg.exp, np.exp2: mg.exp2,
    np.expm1: mg.expm1, np.log: mg.log, np.log2: mg.log2, np.log10: mg.log10,
    np.log1p: mg.log1p, np.logaddexp: mg.logaddexp, np.logaddexp2: mg.logaddexp2,
    np.sin: mg.sin, np.cos: mg.cos, np.tan: mg.tan, np.arcsin: mg.arcsin,
    np.arccos: mg.arccos, np.arctan: mg.arctan, np.arctan2: mg.arctan2, np.hypot: mg.hypot,
    np.sinh: mg.sinh, np.cosh: mg.cosh, np.tanh: mg.tanh, np.arcsinh: mg.arcsinh,
    np.arccosh: mg.arccosh, np.arctanh: mg.arctanh, np.deg2rad: mg.deg2rad,
    np.radians: mg.deg2rad, np.rad2deg: mg.rad2deg, np.degrees: mg.rad2deg,
    np.absolute: mg.abs, np.fabs: mg.abs, np.maximum: mg.maximum, np.minimum: mg.minimum,
    np.fmax: mg.fmax, np.fmin: mg.fmin, np.floor: mg.floor, np.ceil: mg.ceil,
    np.rint: mg.rint, np.trunc: mg.trunc, np.floor_divide: mg.floor_divide,
    np.remainder: mg.remainder, np.fmod: mg.fmod, np.matmul: mg.matmul,
    np.sign: mg.sign, np.isfinite: mg.isfinite, np.isnan: mg.isnan, np.isinf: mg.isinf,
    np.logical_not: mg.logical_not, np.less: mg.less, np.less_equal: mg.less_equal,
    np.greater: mg.greater, np.greater_equal: mg.greater_equal, np.equal: mg.equal,
    np.not_equal: mg.not_equal,
}
# SciPy's ufuncs take the same protocol
UFUNCS.update({scipy.special.expit: mg.sigmoid, scipy.special.erf: mg.erf,
               scipy.special.log_ndtr: log_normal_cdf})
# ufunc.reduce and ufunc.accumulate: np.add.reduce(t, axis=0) is a sum
REDUCE = {np.add: mg.sum, np.multiply: mg.prod, np.maximum: mg.max, np.minimum: mg.min}
ACCUMULATE = {np.add: mg.cumsum}


def _last_two(fn):
    """np.linalg.trace and np.linalg.diagonal: over the last two axes, offset by keyword."""
    def over_last_two(x, offset=0):
        return fn(x, offset, -2, -1)
    over_last_two.__name__ = fn.__name__
    return over_last_two


def _reshape(a, shape):
    return mg.reshape(a, shape)


def _transpose(a, axes=None):
    return mg.transpose(a) if axes is None else mg.transpose(a, axes)


def _where(condition, x=None, y=None):
    """np.where(condition, x, y) picks; np.where(condition) alone is np.nonzero (indices)."""
    if x is None and y is None:
        return _constants(np.nonzero(_arrays(condition)))
    return mg.where(condition, x, y)


def _copy(a):
    return a  # Tensors are immutable: a copy would hold the same values


FUNCTIONS = {
    # reductions and elementwise functions that are not ufuncs
    np.sum: mg.sum, np.mean: mg.mean, np.var: mg.var, np.std: mg.std, np.max: mg.max,
    np.amax: mg.max, np.min: mg.min, np.amin: mg.min, np.prod: mg.prod,
    np.cumsum: mg.cumsum, np.argmax: mg.argmax, np.argmin: mg.argmin, np.clip: mg.clip,
    np.round: mg.round, np.fix: mg.trunc, np.where: _where,
    np.select: mg.select, np.nan_to_num: mg.nan_to_num, np.diff: mg.diff,
    np.gradient: mg.gradient,
    # products
    np.dot: mg.dot, np.inner: mg.inner, np.outer: mg.outer, np.kron: mg.kron,
    np.tensordot: mg.tensordot, np.einsum: mg.einsum, np.cross: mg.cross,
    np.trace: mg.trace, np.diagonal: mg.diagonal, np.diag: mg.diag, np.tril: mg.tril,
    np.triu: mg.triu,
    # shapes and assembly
    np.reshape: _reshape, np.transpose: _transpose,
    np.ravel: mg.ravel, np.swapaxes: mg.swapaxes, np.moveaxis: mg.moveaxis,
    np.rollaxis: mg.rollaxis, np.expand_dims: mg.expand_dims, np.squeeze: mg.squeeze,
    np.broadcast_to: mg.broadcast_to, np.atleast_1d: mg.atleast_1d,
    np.atleast_2d: mg.atleast_2d, np.atleast_3d: mg.atleast_3d,
    np.concatenate: mg.concatenate, np.stack: mg.stack, np.hstack: mg.hstack,
    np.vstack: mg.vstack, np.dstack: mg.dstack, np.column_stack: mg.column_stack,
    np.append: mg.append, np.split: mg.split, np.array_split: mg.array_split,
    np.hsplit: mg.hsplit, np.vsplit: mg.vsplit, np.dsplit: mg.dsplit, np.pad: mg.pad,
    np.flip: mg.flip, np.roll: mg.roll, np.rot90: mg.rot90, np.repeat: mg.repeat,
    np.tile: mg.tile, np.take: mg.take, np.take_along_axis: mg.take_along_axis,
    np.sort: mg.sort, np.argsort: mg.argsort, np.partition: mg.partition,
    np.argpartition: mg.argpartition, np.linspace: creation.linspace, np.copy: _copy,
    # np.linalg
    np.linalg.det: linalg.det, np.linalg.slogdet: linalg.slogdet, np.linalg.inv: linalg.inv,
    np.linalg.solve: linalg.solve, np.linalg.cholesky: linalg.cholesky,
    np.linalg.eigh: linalg.eigh, np.linalg.eigvalsh: linalg.eigvalsh,
    np.linalg.norm: linalg.norm, np.linalg.matmul: mg.matmul,
    np.linalg.tensordot: mg.tensordot, np.linalg.outer: mg.outer,
    np.linalg.cross: mg.cross, np.linalg.trace: _last_two(mg.trace),
    np.linalg.diagonal: _last_two(mg.diagonal),
}
for _old, _op in [("around", mg.round), ("row_stack", mg.vstack)]:  # deprecated names
    if hasattr(np, _old):
        FUNCTIONS[getattr(np, _old)] = _op
# minigen's names for NumPy's keywords where they differ
RENAMES = {np.pad: {"constant_values": "value"}, np.clip: {"min": "a_min", "max": "a_max"}}

# No gradient to lose: these run on the arrays (array results become constant Tensors)
VALUES = {np.logical_and, np.logical_or, np.logical_xor, np.signbit, np.bitwise_and,
          np.bitwise_or, np.bitwise_xor, np.invert, np.allclose, np.isclose, np.array_equal,
          np.array_equiv, np.count_nonzero, np.nonzero, np.argwhere, np.flatnonzero,
          np.searchsorted, np.shape, np.ndim, np.size, np.zeros_like, np.ones_like,
          np.empty_like, np.full_like}


def array(self, dtype=None, copy=None):
    """Tensor.__array__: np.asarray(t) and np.array(t) give the values, unless t requires
    grad while the graph is being recorded: then the array would leave the graph without
    a word, and TypeError says so (t.detach() or t.numpy() asks for the values alone)."""
    if self._requires_grad and is_grad_enabled():
        raise TypeError(
            "a Tensor that requires grad was converted to a NumPy array (np.asarray, "
            "np.array, or a NumPy function without a minigen op), which would drop it from "
            "the graph; use minigen ops, or t.detach() / t.numpy() for the values alone")
    values = self.numpy()
    if dtype is not None and values.dtype != dtype:
        return values.astype(dtype)
    if copy:
        return values.copy()
    if copy is False and values is not self.data:
        raise ValueError("np.asarray(..., copy=False): a CUDA tensor's values must be "
                         "copied to the host")
    return values


def _name(func):
    module = getattr(func, "__module__", None) or "numpy"
    return f"{'numpy' if module.startswith('numpy._') else module}.{func.__name__}"


def _missing(name):
    return TypeError(f"{name} has no minigen op, so it cannot keep the graph of its Tensor "
                     f"arguments; write it with minigen ops (mg.*) or mg.Function, or call "
                     f"it on t.numpy() for the values alone")


def _arrays(value):
    """value with its Tensors (also inside lists and tuples) replaced by their arrays."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, (list, tuple)):
        return type(value)(_arrays(v) for v in value)
    return value


def _constants(value):
    """A NumPy result as minigen would give it: arrays as constant Tensors."""
    if isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        return Tensor._make(value, False, None)
    if isinstance(value, tuple):
        return tuple(_constants(v) for v in value)
    return value


def array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """Tensor.__array_ufunc__."""
    if kwargs.pop("out", None) is not None:
        raise TypeError(f"{_name(ufunc)} with out=: Tensors are immutable; use the result")
    if ufunc in VALUES and method == "__call__":
        return _constants(getattr(ufunc, method)(*_arrays(inputs), **kwargs))
    table = {"__call__": UFUNCS, "reduce": REDUCE, "accumulate": ACCUMULATE}.get(method, {})
    if ufunc not in table:
        raise _missing(_name(ufunc) + ("" if method == "__call__" else f".{method}"))
    if method == "__call__":
        if kwargs:
            raise TypeError(f"{_name(ufunc)} on Tensors takes no {', '.join(kwargs)}")
        return table[ufunc](*inputs)
    # reduce(array, axis=0, ...) and accumulate(array, axis=0, ...): NumPy's default axis
    return _call(table[ufunc], _UFUNC_METHOD, inputs, {"axis": 0, **kwargs},
                 f"{_name(ufunc)}.{method}")


def array_function(self, func, types, args, kwargs):
    """Tensor.__array_function__."""
    if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
        return NotImplemented
    if func in VALUES:
        return _constants(func(*_arrays(args), **_arrays(kwargs)))
    op = FUNCTIONS.get(func)
    if op is None:
        raise _missing(_name(func))
    return _call(op, _signature(func), args, kwargs, _name(func), RENAMES.get(func, {}))


_signature = functools.lru_cache(maxsize=None)(inspect.signature)
# ufunc.reduce and ufunc.accumulate have no signature to inspect; the part minigen takes:
_UFUNC_METHOD = inspect.Signature([
    inspect.Parameter("array", inspect.Parameter.POSITIONAL_ONLY),
    *(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
      for name, default in [("axis", 0), ("dtype", None), ("out", None),
                            ("keepdims", False)])])


def _call(op, signature, args, kwargs, name, renames=None):
    """op with the arguments of a call to a NumPy function of that signature: those NumPy
    requires (and *args) positionally, the others by NumPy's name (renamed where minigen's
    differs). A keyword the op does not take is dropped where it has NumPy's default value
    (out=None), and named in a TypeError otherwise."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{name}: {e}") from None
    positional, keywords = [], {}
    for key, value in bound.arguments.items():
        param = signature.parameters[key]
        if param.kind is param.VAR_POSITIONAL:
            positional.extend(value)
        elif param.kind is param.VAR_KEYWORD:
            keywords.update(value)
        elif param.kind is param.POSITIONAL_ONLY or (
                param.kind is param.POSITIONAL_OR_KEYWORD and param.default is param.empty):
            positional.append(value)
        else:
            keywords[key] = value
    keywords = {(renames or {}).get(k, k): v for k, v in keywords.items()}
    accepted = _signature(op).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        for key in [k for k in keywords if k not in accepted]:
            default = signature.parameters[key].default if key in signature.parameters else None
            if not _is_default(keywords[key], default):
                raise TypeError(f"{name} on Tensors: minigen's {op.__name__} takes no "
                                f"{key}= (got {keywords[key]!r})")
            del keywords[key]
    return op(*positional, **keywords)


def _is_default(value, default):
    if value is default or default is inspect.Parameter.empty and value is None:
        return True
    return isinstance(value, (str, bool, int, float, type(None))) and value == default


Tensor.__array__ = array
Tensor.__array_ufunc__ = array_ufunc
Tensor.__array_function__ = array_function
