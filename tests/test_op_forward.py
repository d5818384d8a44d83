"""Forward values of every op against NumPy and SciPy, in float32 and float64; the
invariants that hold whatever the values (softmax sums to 1, finite at +-1e4, the gradient
is linear and accumulates); and the errors that bad inputs raise.

The ops draw their cases from the specs of test_op_gradients, so both files cover the same
ops with the same parameters. Each case is run in float32 and float64 and compared with a
float64 NumPy/SciPy reference on the very same values; the result must keep the input dtype.
"""
import functools
import operator

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from test_op_gradients import SPECS, as_list, axis_args, broadcast_shapes, diff_with, shapes

import minigen as mg
from minigen.kernels import parallel
from minigen.ops import linalg

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 2e-6, np.float64: 1e-12}  # relative, and absolute on scale 1


def gelu_reference(x):
    return x * 0.5 * (1 + sp.erf(x / np.sqrt(2)))


def gelu_tanh_reference(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def elu_reference(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def cholesky_reference(a, upper):
    return np.linalg.cholesky((a + a.swapaxes(-1, -2)) / 2, upper=upper)


def group_norm_reference(x, weight, bias, num_groups, eps=1e-5):
    """Each example's channels in num_groups groups, each normalised over its channels and
    positions (population variance), then the per-channel scale and shift."""
    n, c = x.shape[:2]
    g = x.reshape(n, num_groups, -1)
    y = (g - g.mean(axis=2, keepdims=True)) / np.sqrt(g.var(axis=2, keepdims=True) + eps)
    per_channel = (1, c) + (1,) * (x.ndim - 2)
    return y.reshape(x.shape) * weight.reshape(per_channel) + bias.reshape(per_channel)


def eigh_reference(a):
    w, v = np.linalg.eigh((a + a.swapaxes(-1, -2)) / 2)
    return w, v * v[..., :1, :]


# NumPy/SciPy for each spec of test_op_gradients whose function is not already generic (an
# operator, a method, indexing), called as reference(*arrays, **params). The spec values are
# small, so logsumexp is written out (SciPy's turns axis=() on a 0-d array into shape (1,)).
REFERENCES = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
    "square": np.square, "abs": np.abs, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": sp.expit, "softplus": lambda x: np.logaddexp(0, x),
    "log_sigmoid": lambda x: -np.logaddexp(0, -x), "relu": lambda x: np.maximum(x, 0),
    "leaky_relu_default": lambda x: np.where(x > 0, x, 0.01 * x),
    "leaky_relu": lambda x, negative_slope: np.where(x > 0, x, negative_slope * x),
    "elu": elu_reference, "gelu_exact": gelu_reference, "gelu_tanh": gelu_tanh_reference,
    "erf": sp.erf, "maximum": np.maximum, "minimum": np.minimum,
    "where": lambda a, b, condition: np.where(condition, a, b),
    "where_scalar_branch": lambda a, b, condition: np.where(condition, a, b),
    "sum": np.sum, "mean": np.mean, "var_ddof0": np.var, "var_ddof1": np.var,
    "std_ddof0": np.std, "std_ddof1": np.std, "max": np.max, "min": np.min, "prod": np.prod,
    "logsumexp": lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis, keepdims=keepdims)),
    "cumsum": np.cumsum, "softmax": sp.softmax,
    "log_softmax": sp.log_softmax, "matmul": np.matmul, "dot": np.dot,
    "einsum": lambda *xs, subscripts: np.einsum(subscripts, *xs),
    "einsum_ellipsis": lambda *xs, subscripts: np.einsum(subscripts, *xs),
    "swapaxes": np.swapaxes, "moveaxis": np.moveaxis, "expand_dims": np.expand_dims,
    "squeeze": np.squeeze, "broadcast_to": np.broadcast_to,
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis),
    "stack": lambda *xs, axis: np.stack(xs, axis), "split": np.split,
    "pad": lambda x, pad_width, value: np.pad(x, pad_width, constant_values=value),
    "flip": np.flip, "repeat": np.repeat, "tile": np.tile, "take": np.take,
    "take_along_axis": np.take_along_axis, "sort": np.sort,
    "tan": np.tan, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "arcsinh": np.arcsinh, "arccosh": np.arccosh,
    "arctanh": np.arctanh, "exp2": np.exp2, "log2": np.log2, "log10": np.log10,
    "cbrt": np.cbrt, "reciprocal": np.reciprocal, "deg2rad": np.deg2rad,
    "rad2deg": np.rad2deg, "fabs": np.fabs, "floor": np.floor, "ceil": np.ceil,
    "rint": np.rint, "trunc": np.trunc, "round": np.round, "round_method": np.round,
    "nan_to_num": np.nan_to_num,
    "select": lambda *choices, condlist, default: np.select(condlist, choices, default),
    "arctan2": np.arctan2, "hypot": np.hypot, "logaddexp": np.logaddexp,
    "logaddexp2": np.logaddexp2, "remainder": np.remainder, "fmod": np.fmod,
    "fmax": np.fmax, "fmin": np.fmin,
    "einsum_repeated_letters": lambda *xs, subscripts: np.einsum(subscripts, *xs),
    "tensordot": np.tensordot, "dot_nd": np.dot, "inner": np.inner, "outer": np.outer,
    "kron": np.kron, "trace": np.trace, "trace_method": np.trace, "diagonal": np.diagonal,
    "diagonal_method": np.diagonal, "diag": np.diag, "tril": np.tril, "triu": np.triu,
    "cross": np.cross, "inv": np.linalg.inv, "solve": np.linalg.solve, "det": np.linalg.det,
    "slogdet": np.linalg.slogdet, "cholesky": cholesky_reference, "eigh": eigh_reference,
    "vector_norm": np.linalg.norm, "matrix_norm": np.linalg.norm,
    # minigen's partition gathers by np.argpartition, which puts the other values in the
    # same places as np.partition (both run one introselect)
    "partition": np.partition, "ravel": np.ravel, "ravel_method": np.ravel,
    "flatten_method": np.ravel, "roll": np.roll, "rot90": np.rot90, "rollaxis": np.rollaxis,
    "append": np.append, "hstack": lambda *xs, name: np.hstack(xs),
    "vstack": lambda *xs, name: np.vstack(xs), "row_stack": lambda *xs, name: np.vstack(xs),
    "dstack": lambda *xs, name: np.dstack(xs),
    "column_stack": lambda *xs, name: np.column_stack(xs),
    "array_split": np.array_split, "hsplit": np.hsplit, "vsplit": np.vsplit,
    "dsplit": np.dsplit, "atleast_1d": lambda *xs, ndim: np.atleast_1d(*xs),
    "atleast_2d": lambda *xs, ndim: np.atleast_2d(*xs),
    "atleast_3d": lambda *xs, ndim: np.atleast_3d(*xs),
    "diff": functools.partial(diff_with, lib=np),
    "gradient": lambda f, spacing, axis, edge_order: np.gradient(f, *spacing, axis=axis,
                                                                 edge_order=edge_order),
    "r_": lambda *xs, name, constant_piece, directive: np.r_[
        ((directive,) if directive else ()) + (xs[0], constant_piece) + xs[1:]],
    "c_": lambda *xs, name, constant_piece, directive: np.c_[
        (xs[0], constant_piece) + xs[1:]],
    "linspace": np.linspace,
    "silu": lambda x: x * sp.expit(x), "group_norm": group_norm_reference,
}
GENERIC = {"abs_operator", "clip", "negative", "add", "subtract", "multiply", "divide",
           "power_tensor_tensor", "power_tensor_scalar", "power_scalar_tensor",
           "scalar_arithmetic", "matmul_operator", "reshape", "transpose", "getitem_int",
           "getitem_slice", "getitem_none_ellipsis", "getitem_int_array", "getitem_mask",
           "getitem_comparison_mask", "remainder_operator", "floor_divide_operator"}


# r_ and c_ join constants (an arange, a float64 array) that promote float32, as in NumPy
PROMOTING = {"r_", "c_"}


def test_every_spec_has_a_reference():
    assert set(SPECS) == set(REFERENCES) | GENERIC and not set(REFERENCES) & GENERIC


def assert_matches(got, expected, dtype):
    """got (a Tensor) has the input dtype and the values of expected, to dtype's precision."""
    tol = TOLERANCE[dtype]
    assert got.dtype == dtype, f"{dtype.__name__} in, {got.dtype} out"
    assert got.shape == np.shape(expected)
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", SPECS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_forward_matches_numpy(name, dtype, data):
    case = data.draw(SPECS[name])
    arrays = [a.astype(dtype) for a in case.arrays]
    reference = case.fn if name in GENERIC else REFERENCES[name]
    expected = as_list(reference(*[a.astype(np.float64) for a in arrays], **case.params))
    got = as_list(case(*[mg.tensor(a) for a in arrays]))
    assert len(got) == len(expected)
    if name in PROMOTING:  # NumPy's own result dtype, which the constants may raise
        dtype = as_list(reference(*arrays, **case.params))[0].dtype.type
    for g, e in zip(got, expected):
        assert_matches(g, e, dtype)


@pytest.mark.filterwarnings("ignore:Degrees of freedom:RuntimeWarning")
def test_var_without_degrees_of_freedom_is_nan_as_in_numpy():
    """It was 0: the divisor n - ddof was raised to 1."""
    x = np.arange(6.0).reshape(3, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        for axis, ddof in [(None, 6), (1, 2), (0, 3), (1, 3)]:
            expected = np.var(x, axis=axis, ddof=ddof)
            np.testing.assert_array_equal(mg.var(mg.tensor(x), axis=axis, ddof=ddof).numpy(),
                                          expected)
        assert np.isnan(mg.std(mg.tensor(x[:, :1]), axis=1, ddof=1).numpy()).all()


# Ops without gradients: argmax, argmin, argsort, comparisons. Values on a coarse grid, so
# that ties (where the first index must win) and equal pairs are common.

def tied(dtype, shape):
    return hnp.arrays(dtype, shape, elements=st.integers(-3, 3).map(float))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_argmax_argmin(name, dtype, data):
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(tied(dtype, shape))
    axis = data.draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    keepdims = data.draw(st.booleans())
    got = getattr(mg, name)(mg.tensor(x), axis=axis, keepdims=keepdims)
    method = getattr(mg.tensor(x), name)(axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    for result in (got, method):
        assert result.dtype.kind == "i" and not result.requires_grad
        np.testing.assert_array_equal(result.numpy(), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_argsort_is_stable(dtype, data):
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(tied(dtype, shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    got = mg.argsort(mg.tensor(x), axis=axis)
    np.testing.assert_array_equal(got.numpy(), np.argsort(x, axis=axis, kind="stable"))
    np.testing.assert_array_equal(mg.tensor(x).argsort(axis).numpy(), got.numpy())


COMPARISONS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("op", COMPARISONS, ids=lambda op: op.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_comparisons(op, dtype, data):
    """Broadcast tensor pairs and tensor-scalar either way round; bool, never differentiable."""
    a_shape, b_shape = data.draw(broadcast_shapes())
    a, b = data.draw(tied(dtype, a_shape)), data.draw(tied(dtype, b_shape))
    scalar = data.draw(st.integers(-3, 3).map(float))
    ta = mg.tensor(a, requires_grad=True)
    for got, expected in [(op(ta, mg.tensor(b)), op(a, b)), (op(ta, scalar), op(a, scalar)),
                          (op(scalar, ta), op(scalar, a))]:
        assert got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.numpy(), expected)


# Invariants.

def large_values(dtype, shape):
    """Moderate values mixed with +-1e4, where exp overflows in either precision."""
    return hnp.arrays(dtype, shape, elements=st.one_of(
        st.sampled_from([-1e4, 1e4]), st.floats(-20, 20, width=32)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_softmax_sums_to_one(dtype, data):
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(large_values(dtype, shape))
    axis = data.draw(axis_args(len(shape), allow_empty=False))
    y = mg.softmax(mg.tensor(x), axis=axis).numpy()
    assert y.dtype == dtype and ((y >= 0) & (y <= 1)).all()
    np.testing.assert_allclose(y.astype(np.float64).sum(axis=axis), 1.0,
                               rtol=10 * np.finfo(dtype).eps * x.size)


# (op, reference value, reference gradient of sum(w * op(x))), all on the last axis
STABLE_OPS = {
    "logsumexp": (lambda x: mg.logsumexp(x, axis=-1),
                  lambda x: sp.logsumexp(x, axis=-1),
                  lambda x, w: w[..., None] * sp.softmax(x, axis=-1)),
    "log_softmax": (lambda x: mg.log_softmax(x, axis=-1),
                    lambda x: sp.log_softmax(x, axis=-1),
                    lambda x, w: w - sp.softmax(x, axis=-1) * w.sum(-1, keepdims=True)),
    "softmax": (lambda x: mg.softmax(x, axis=-1),
                lambda x: sp.softmax(x, axis=-1),
                lambda x, w: sp.softmax(x, axis=-1) * (
                    w - (w * sp.softmax(x, axis=-1)).sum(-1, keepdims=True))),
    "softplus": (mg.softplus, lambda x: np.logaddexp(0, x), lambda x, w: w * sp.expit(x)),
    "log_sigmoid": (mg.log_sigmoid, lambda x: -np.logaddexp(0, -x),
                    lambda x, w: w * sp.expit(-x)),
    "sigmoid": (mg.sigmoid, sp.expit, lambda x, w: w * sp.expit(x) * sp.expit(-x)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name", STABLE_OPS)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_finite_and_right_at_large_inputs(name, dtype, data):
    """Values and gradients at +-1e4 are finite and equal the float64 SciPy ones."""
    op, value, gradient = STABLE_OPS[name]
    x = data.draw(large_values(dtype, data.draw(shapes(min_dims=1))))
    t = mg.tensor(x, requires_grad=True)
    y = op(t)
    w = data.draw(hnp.arrays(dtype, y.shape, elements=st.floats(-2, 2, width=32)))
    (y * mg.tensor(w)).sum().backward()
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    for got, expected in [(y, value(x64)), (t.grad, gradient(x64, w64))]:
        assert np.isfinite(got.numpy()).all()
        assert_matches(got, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_gradient_of_sum_is_ones(dtype, data):
    x = mg.tensor(data.draw(hnp.arrays(dtype, data.draw(shapes()),
                                       elements=st.floats(-3, 3, width=32))),
                  requires_grad=True)
    x.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(x.shape))


UNARY = {
    "exp": mg.exp, "sin": mg.sin, "tanh": mg.tanh, "softplus": mg.softplus,
    "square": mg.square, "softmax": lambda x: mg.softmax(x, axis=-1),
    "cumsum": lambda x: mg.cumsum(x, axis=0), "gelu": mg.gelu,
}


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_gradient_is_linear(data):
    """grad of sum(a f(x) + b g(x)) is a grad f + b grad g."""
    f, g = (UNARY[data.draw(st.sampled_from(sorted(UNARY)))] for _ in range(2))
    a, b = data.draw(st.floats(-3, 3)), data.draw(st.floats(-3, 3))
    x = mg.tensor(data.draw(hnp.arrays(np.float64, data.draw(shapes(min_dims=1)),
                                       elements=st.floats(-2, 2))), requires_grad=True)
    (combined,) = mg.grad((f(x) * a + g(x) * b).sum(), x)
    (grad_f,), (grad_g,) = mg.grad(f(x).sum(), x), mg.grad(g(x).sum(), x)
    np.testing.assert_allclose(combined.numpy(), a * grad_f.numpy() + b * grad_g.numpy(),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_two_backward_calls_accumulate_twice_one(data):
    f = UNARY[data.draw(st.sampled_from(sorted(UNARY)))]
    x = mg.tensor(data.draw(hnp.arrays(np.float64, data.draw(shapes(min_dims=1)),
                                       elements=st.floats(-2, 2))), requires_grad=True)
    y = f(x).sum()
    y.backward(retain_graph=True)
    once = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once, rtol=1e-15, atol=0)


# Bad inputs.

BINARY_OPS = [("Add", operator.add), ("Sub", operator.sub), ("Mul", operator.mul),
              ("Div", operator.truediv), ("Pow", operator.pow), ("maximum", mg.maximum),
              ("minimum", mg.minimum), ("less", operator.lt), ("equal", operator.eq)]


@pytest.mark.parametrize("name, op", BINARY_OPS, ids=[n for n, _ in BINARY_OPS])
def test_shape_mismatch_names_the_op_and_both_shapes(name, op):
    a, b = mg.ones(2, 3), mg.ones(4)
    with pytest.raises(ValueError) as error:
        op(a, b)
    message = str(error.value).replace(" ", "")
    assert name in message and "(2,3)" in message and "(4,)" in message


def test_matmul_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"Matmul.*\(2, 3\), \(4, 5\)"):
        mg.ones(2, 3) @ mg.ones(4, 5)


@pytest.mark.parametrize("a_shape, b_shape", [((7, 5), (5, 3)), ((2, 7, 5), (5,)),
                                              ((2, 1, 7, 5), (3, 5, 4)), ((7, 5), (2, 5, 3))])
def test_matmul_split_by_rows_over_threads_matches_numpy(monkeypatch, a_shape, b_shape):
    """Large products are split by the rows of a over kernels/parallel.py's threads: made
    to happen here to a small one, in three pieces, it must give NumPy's product."""
    monkeypatch.setattr(linalg, "ONE_THREAD_WORK", 0)
    monkeypatch.setattr(parallel, "threads", lambda work: 3)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    np.testing.assert_allclose((mg.tensor(a) @ mg.tensor(b)).numpy(), a @ b, rtol=1e-12)


def test_where_mismatch_names_the_op():
    with pytest.raises(ValueError, match=r"Where.*\(2, 3\).*\(4,\)"):
        mg.where(np.ones((2, 3), bool), mg.ones(2, 3), mg.ones(4))


AXIS_OPS = {
    "sum": lambda x, a: mg.sum(x, axis=a), "mean": lambda x, a: mg.mean(x, axis=a),
    "var": lambda x, a: mg.var(x, axis=a), "std": lambda x, a: mg.std(x, axis=a),
    "max": lambda x, a: mg.max(x, axis=a), "min": lambda x, a: mg.min(x, axis=a),
    "prod": lambda x, a: mg.prod(x, axis=a), "cumsum": lambda x, a: mg.cumsum(x, axis=a),
    "logsumexp": lambda x, a: mg.logsumexp(x, axis=a),
    "softmax": lambda x, a: mg.softmax(x, axis=a),
    "log_softmax": lambda x, a: mg.log_softmax(x, axis=a),
    "argmax": lambda x, a: mg.argmax(x, axis=a), "argmin": lambda x, a: mg.argmin(x, axis=a),
    "argsort": lambda x, a: mg.argsort(x, axis=a), "sort": lambda x, a: mg.sort(x, axis=a),
    "flip": lambda x, a: mg.flip(x, axis=a), "squeeze": lambda x, a: mg.squeeze(x, axis=a),
    "expand_dims": lambda x, a: mg.expand_dims(x, a + 1 if a > 0 else a - 1),
    "swapaxes": lambda x, a: mg.swapaxes(x, 0, a),
    "moveaxis": lambda x, a: mg.moveaxis(x, a, 0),
    "transpose": lambda x, a: mg.transpose(x, (0, a)),
    "concatenate": lambda x, a: mg.concatenate([x, x], axis=a),
    "stack": lambda x, a: mg.stack([x, x], axis=a + 1 if a > 0 else a - 1),
    "split": lambda x, a: mg.split(x, 1, axis=a), "take": lambda x, a: mg.take(x, [0], axis=a),
    "take_along_axis": lambda x, a: mg.take_along_axis(x, np.zeros((2, 3), int), axis=a),
    "repeat": lambda x, a: mg.repeat(x, 2, axis=a),
}


@pytest.mark.parametrize("axis", [2, -3, 5])
@pytest.mark.parametrize("name", AXIS_OPS)
def test_out_of_range_axis_is_an_axis_error_naming_it(name, axis):
    """On a (2, 3) tensor; ops that add a dim (expand_dims, stack) get one more."""
    shown = axis + 1 if axis > 0 else axis - 1
    shown = shown if name in ("expand_dims", "stack") else axis
    with pytest.raises(np.exceptions.AxisError, match=rf"axis {shown}\b"):
        AXIS_OPS[name](mg.ones(2, 3), axis)


def test_squeeze_of_an_axis_that_is_not_1_is_a_value_error():
    with pytest.raises(ValueError, match=r"squeeze: axis 1 has size 3"):
        mg.squeeze(mg.ones(1, 3), axis=1)
    with pytest.raises(ValueError, match=r"axis 0"):
        mg.ones(2, 1).squeeze(0)


@pytest.mark.parametrize("shape", [(4, 2), (7,), (-1, 4), (2, -1, 4)])
def test_reshape_to_another_size_is_a_value_error(shape):
    with pytest.raises(ValueError, match=r"Reshape.*\(2, 3\)"):
        mg.ones(2, 3).reshape(shape)


def test_transpose_needs_a_permutation():
    with pytest.raises(ValueError, match="not a permutation"):
        mg.transpose(mg.ones(2, 3, 4), (0, 1))
    with pytest.raises(ValueError, match="repeated axis"):
        mg.transpose(mg.ones(2, 3), (1, -1))


# Regressions: each of these once failed.

@pytest.mark.parametrize("op", [mg.abs, mg.relu, mg.elu, lambda x: mg.clip(x, -1.0, 1.0),
                                mg.max, lambda x: mg.maximum(x, 0.0)])
def test_backward_through_masks_of_a_0d_tensor(op):
    """NumPy returns a scalar, not a 0-d array, for a mask of a 0-d input; it must stay a
    tensor on the CPU (it was taken for a CUDA array: 'inputs are on different devices')."""
    x = mg.tensor(np.float64(-0.5), requires_grad=True)
    op(x).backward()
    assert x.grad.device == "cpu" and np.isfinite(x.grad.numpy()).all()


def test_take_along_axis_broadcasts_size_1_index_dims_as_numpy():
    x = np.arange(12.0).reshape(3, 4)
    for indices, axis in [(np.array([[0, 3]]), 1), (np.array([[2], [0]]), 0)]:
        np.testing.assert_array_equal(mg.take_along_axis(mg.tensor(x), indices, axis).numpy(),
                                      np.take_along_axis(x, indices, axis))


def test_boolean_mask_of_a_0d_tensor():
    x = mg.tensor(np.float64(2.0), requires_grad=True)
    for threshold, expected in [(1.0, [2.0]), (3.0, [])]:
        y = x[x > threshold]
        np.testing.assert_array_equal(y.numpy(), expected)
    x[x > 1.0].sum().backward()
    assert x.grad.item() == 1.0


def test_pad_of_a_0d_tensor_is_itself():
    np.testing.assert_array_equal(mg.pad(mg.tensor(np.float64(3.0)), 2).numpy(),
                                  np.pad(np.float64(3.0), 2))


# NumPy's names and conventions.

ALIASES = {"absolute": "abs", "fabs": "abs", "true_divide": "divide", "mod": "remainder",
           "radians": "deg2rad", "degrees": "rad2deg", "fix": "trunc"}


@pytest.mark.parametrize("alias", ALIASES)
def test_numpy_aliases_are_the_same_op(alias):
    assert getattr(mg, alias) is getattr(mg, ALIASES[alias])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_nan_to_num_defaults_are_the_dtype_limits(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 1.5], dtype=dtype)
    assert_matches(mg.nan_to_num(mg.tensor(x)), np.nan_to_num(x), dtype)
    assert mg.nan_to_num(mg.tensor([1, 2])).dtype == np.int64


@pytest.mark.parametrize("decimals", [-1, 0, 1, 2])
def test_round_with_decimals_as_numpy(decimals):
    x = np.array([-151.25, -0.5, 0.5, 1.5, 2.5, 0.125, 12.345, 77.0])
    np.testing.assert_array_equal(mg.round(mg.tensor(x), decimals).numpy(),
                                  np.round(x, decimals))
    np.testing.assert_array_equal(mg.tensor(x).round(decimals).numpy(), np.round(x, decimals))


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_nan_as_in_numpy(name):
    """maximum and minimum propagate NaN; fmax and fmin take the other value."""
    a = np.array([np.nan, 1.0, np.nan, 2.0])
    b = np.array([1.0, np.nan, np.nan, 3.0])
    for x, y in [(a, b), (b, a)]:
        got = getattr(mg, name)(mg.tensor(x), mg.tensor(y)).numpy()
        np.testing.assert_array_equal(got, getattr(np, name)(x, y))


@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite"])
def test_isnan_isinf_isfinite(name):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -2.0])
    got = getattr(mg, name)(mg.tensor(x, requires_grad=True))
    assert got.dtype == np.bool_ and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), getattr(np, name)(x))


def test_remainder_and_floor_division_operators_match_python():
    x = np.array([-7.5, -1.0, 0.0, 2.25, 7.0])
    for b in [2.0, -2.0, 0.75]:
        np.testing.assert_array_equal((mg.tensor(x) % b).numpy(), x % b)
        np.testing.assert_array_equal((mg.tensor(x) // b).numpy(), x // b)
        np.testing.assert_array_equal((b % mg.tensor(x[x != 0])).numpy(), b % x[x != 0])
    ints = mg.tensor([-7, 7])
    assert (ints % 3).dtype == np.int64 and (ints // 3).numpy().tolist() == [-3, 2]


LINALG_ERRORS = [
    (lambda: mg.linalg.inv(mg.ones(2, 3)), ValueError, r"inv: needs square matrices.*\(2, 3\)"),
    (lambda: mg.linalg.det(mg.ones(3)), ValueError, r"det: needs square matrices"),
    (lambda: mg.linalg.norm(mg.ones(2, 2), ord=2), NotImplementedError, r"ord=2 of a matrix"),
    (lambda: mg.linalg.norm(mg.ones(2, 2), ord="nuc"), NotImplementedError, r"SVD"),
    (lambda: mg.linalg.norm(mg.ones(3), ord="fro"), ValueError, r"for matrices"),
    (lambda: mg.linalg.norm(mg.ones(2, 2, 2), ord=1), ValueError, r"vector or a matrix"),
    (lambda: mg.linalg.norm(mg.ones(2, 2), axis=(0, 1, 0)), ValueError, r"repeated axis"),
    (lambda: mg.cross(mg.ones(2), mg.ones(2)), ValueError, r"3 components"),
    (lambda: mg.tensordot(mg.ones(2, 3), mg.ones(2, 3), 1), ValueError,
     r"tensordot: axes \[1\] of shape \(2, 3\) do not match axes \[0\]"),
    (lambda: mg.einsum("ii->i", mg.ones(2, 3)), ValueError, r"'i' of 'ii'.*sizes 2 and 3"),
    (lambda: mg.diagonal(mg.ones(2, 2), 0, 1, -1), ValueError, r"both axis 1"),
    (lambda: mg.diag(mg.ones(2, 2, 2)), ValueError, r"vector or a matrix"),
]


@pytest.mark.parametrize("call, error, message", LINALG_ERRORS)
def test_linalg_errors_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name", ["det", "slogdet"])
def test_gradient_of_det_at_a_singular_matrix_says_so(name):
    a = mg.tensor([[1.0, 2.0], [2.0, 4.0]], dtype="float64", requires_grad=True)
    out = getattr(mg.linalg, name)(a)
    out = out.logabsdet if name == "slogdet" else out
    with pytest.raises(np.linalg.LinAlgError, match=rf"{name}: the gradient at a singular"):
        out.backward()


def test_linalg_results_are_named_tuples_as_in_numpy():
    a = mg.tensor([[2.0, 1.0], [1.0, 3.0]], dtype="float64")
    sign, logabsdet = mg.linalg.slogdet(a)
    assert mg.linalg.slogdet(a).logabsdet.item() == logabsdet.item()
    np.testing.assert_allclose(logabsdet.item(), np.log(5.0))
    w, v = mg.linalg.eigh(a)
    np.testing.assert_allclose(mg.linalg.eigh(a).eigenvectors.numpy(), v.numpy())
    np.testing.assert_allclose(mg.linalg.eigvalsh(a).numpy(), np.linalg.eigvalsh(a.numpy()))
    np.testing.assert_allclose(mg.linalg.eigh(a, UPLO="U").eigenvalues.numpy(),
                               np.linalg.eigh(a.numpy(), UPLO="U").eigenvalues)


def test_einsum_optimize_gives_the_same_values_and_gradients():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in [(2, 3), (3, 4), (4, 2)]]
    results = []
    for optimize in (False, True):
        xs = [mg.tensor(a, requires_grad=True) for a in arrays]
        y = mg.einsum("ij,jk,kl->il", *xs, optimize=optimize)
        results.append([y.numpy()] + [g.numpy() for g in mg.grad(y.sum(), xs)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12)


SHAPE_ERRORS = [
    (lambda: mg.rot90(mg.ones(2, 2), axes=(1, -1)), ValueError, r"rot90: axes \(1, -1\) name"),
    (lambda: mg.rot90(mg.ones(2)), ValueError, r"rot90: needs at least 2 dimensions"),
    (lambda: mg.rollaxis(mg.ones(2, 2), 0, 4), np.exceptions.AxisError, r"start 4"),
    (lambda: mg.vsplit(mg.ones(4), 2), ValueError, r"vsplit: needs at least 2 dimensions"),
    (lambda: mg.array_split(mg.ones(4), 0), ValueError, r"must be positive"),
    (lambda: mg.diff(mg.ones(3), -1), ValueError, r"diff: order n must be non-negative"),
    (lambda: mg.gradient(mg.ones(2), edge_order=2), ValueError, r"gradient: axis 0 has 2"),
    (lambda: mg.gradient(mg.ones(3), [0.0, 1.0]), ValueError, r"coordinates along axis 0"),
    (lambda: mg.r_["r", mg.ones(2)], NotImplementedError, r"np.matrix"),
    (lambda: mg.r_[mg.ones(2), "0"], ValueError, r"must be the first entry"),
    (lambda: mg.hstack([np.ones(2)]), TypeError, r"hstack: needs at least one Tensor"),
    (lambda: mg.select([np.ones(2, bool)], [np.ones(2)]), TypeError, r"select: a choice"),
]


@pytest.mark.parametrize("call, error, message", SHAPE_ERRORS)
def test_assembly_errors_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_pieces_that_are_not_tensors_join_as_constants():
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    y = mg.hstack([t, np.array([3.0]), [4.0]])
    np.testing.assert_array_equal(y.numpy(), [1, 2, 3, 4])
    y.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [1, 1])
    np.testing.assert_array_equal(mg.r_[1:3, [7]].numpy(), np.r_[1:3, [7]])


def test_linspace_with_numbers_is_a_new_leaf_as_before():
    y, step = mg.linspace(0, 1, 5, retstep=True)
    assert y.dtype == np.float32 and y.is_leaf and step == 0.25
    np.testing.assert_array_equal(y.numpy(), np.linspace(0, 1, 5, dtype=np.float32))
    assert mg.linspace(0, 1, 3, requires_grad=True, dtype="float64").requires_grad
    np.testing.assert_array_equal(mg.linspace(0, 1, 4, endpoint=False).numpy(),
                                  np.linspace(0, 1, 4, endpoint=False, dtype=np.float32))


def test_linspace_between_tensors_is_differentiable_in_both_ends():
    start = mg.tensor(1.0, dtype="float64", requires_grad=True)
    stop = mg.tensor([2.0, 5.0], dtype="float64", requires_grad=True)
    y = mg.linspace(start, stop, 5)
    np.testing.assert_allclose(y.numpy(), np.linspace(1.0, [2.0, 5.0], 5))
    grads = mg.grad(y.sum(), [start, stop])
    np.testing.assert_allclose(grads[0].numpy(), 5.0)       # each row: 1 - t summed
    np.testing.assert_allclose(grads[1].numpy(), [2.5, 2.5])
