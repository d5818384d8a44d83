"""Every differentiable op against central finite differences, first and second order.

Each op has a spec: a hypothesis strategy that draws one `Case`, the op with its parameters
(axes, keepdims, shapes, indices) and its float64 inputs. One parametrized test per order
runs mg.gradcheck or mg.gradgradcheck, with their default tolerances, on every spec.

Values stay clear of the points where an op has no derivative (the kinks of abs, relu and
clip, ties in max and sort, zero for log and sqrt): there finite differences and backward
have nothing to agree on. Inputs hold at most MAX_SIZE elements so the file runs quickly.
"""
import functools
import math
import operator

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import assume, given, settings

import minigen as mg
import minigen.functional as F

MAX_SIZE = 24


# Strategies shared by the specs.

def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side).filter(lambda s: math.prod(s) <= MAX_SIZE)


def broadcast_shapes(num_shapes=2, max_dims=3):
    """Shapes that broadcast together: size-1 dims, missing leading dims and 0-d included."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=0, max_dims=max_dims, max_side=4,
    ).filter(lambda b: math.prod(b.result_shape) <= MAX_SIZE).map(lambda b: b.input_shapes)


def axis_args(ndim, allow_empty=True):
    """What a reduction takes as `axis`: None, one axis, or a tuple of distinct axes."""
    if ndim == 0:
        return st.sampled_from([None, ()] if allow_empty else [None])
    one = st.integers(-ndim, ndim - 1)
    many = st.lists(one, unique_by=lambda a: a % ndim, min_size=0 if allow_empty else 1,
                    max_size=ndim).map(tuple)
    return st.one_of(st.none(), one, many)


def reduced_count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if isinstance(axis, int) else axis
    return math.prod(shape[a] for a in axes)


def smooth(shape, low=-2.0, high=2.0):
    """Any float64 values in [low, high], for ops with a derivative everywhere there."""
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high))


def nonzero(shape, low=0.5, high=2.0):
    """Values of either sign with low <= |x| <= high (divisors, negative powers)."""
    magnitude = st.floats(low, high)
    return hnp.arrays(np.float64, shape, elements=st.one_of(magnitude, magnitude.map(
        operator.neg)))


@st.composite
def spaced(draw, shape, offset=0.125):
    """Distinct values in about [-4, 4], on a grid of step 1/4 shifted by `offset`, each moved
    by at most 0.05. With the default offset no two are within 0.15 of each other and none is
    within 0.075 of a multiple of 1/4, where the kinks (0, clip bounds) are put; offset=0.0
    gives values that never tie with those of the default offset (for maximum, minimum)."""
    n = math.prod(shape)
    cells = np.array(draw(st.permutations(range(32)))[:n], dtype=np.float64) - 16
    jitter = draw(hnp.arrays(np.float64, n, elements=st.floats(-0.05, 0.05)))
    return (cells / 4 + offset + jitter).reshape(shape)


class Case:
    """One draw: `fn(*tensors, **params)` on float64 `arrays`."""

    def __init__(self, fn, arrays, **params):
        self.fn, self.arrays, self.params = fn, list(arrays), params

    def __call__(self, *tensors):
        return self.fn(*tensors, **self.params)

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        shapes_ = ", ".join(str(a.shape) for a in self.arrays)
        return f"{self.fn.__name__}({params}) on inputs of shapes {shapes_}"


def unary(fn, values=smooth, **bounds):
    return shapes().flatmap(lambda s: values(s, **bounds)).map(lambda x: Case(fn, [x]))


@st.composite
def binary(draw, fn, left=smooth, right=smooth):
    left_shape, right_shape = draw(broadcast_shapes())
    return Case(fn, [draw(left(left_shape)), draw(right(right_shape))])


def divisors(shape):
    """Divisors for remainders and floor division: with spaced dividends, a / b stays at
    least 0.03 away from every integer, where the remainder jumps."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.5, 1.0, 2.0, -1.0, -2.0]))


@st.composite
def with_nans(draw, shape, values=spaced):
    """values with some entries NaN (fmax and fmin take the other operand there)."""
    x = draw(values(shape))
    nan = draw(hnp.arrays(np.bool_, shape))
    return np.where(nan, np.nan, x)


@st.composite
def non_finite(draw, shape):
    """Smooth values with some entries NaN, inf or -inf (for nan_to_num)."""
    x = draw(smooth(shape))
    pick = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 5)))
    return np.asarray(np.choose(pick, [x, x, x, np.nan, np.inf, -np.inf]), dtype=np.float64)


def positive_base(shape):
    return smooth(shape, 0.5, 3.0)


def spaced_on_grid(shape):
    """spaced values that never tie with those of spaced(shape)."""
    return spaced(shape, offset=0.0)


# Wrappers giving each op (or method) a name and keyword parameters for Case.

def gelu_tanh(x):
    return mg.gelu(x, approximate="tanh")


def clip(x, a_min, a_max):
    return x.clip(a_min, a_max)


def where(a, b, condition):
    return mg.where(condition, a, b)


def scalar_left(x, op, scalar):
    return op(scalar, x)


def scalar_right(x, op, scalar):
    return op(x, scalar)


def reshape(x, shape):
    return x.reshape(shape)


def transpose(x, axes):
    return x.T if axes is None else x.transpose(axes)


def concatenate(*xs, axis):
    return mg.concatenate(xs, axis=axis)


def stack(*xs, axis):
    return mg.stack(xs, axis=axis)


def einsum(*operands, subscripts):
    return mg.einsum(subscripts, *operands)


def float32_and_back(x):
    return x.astype(np.float32), x.astype("float32").astype(mg.float64)


def getitem(x, key):
    return x[key]


def round_method(x):
    return x.round()


def getitem_by_comparison(x, threshold):
    """A boolean mask made by a comparison of the tensor itself."""
    return x[x > threshold]


# Elementwise, operators.

@st.composite
def leaky_relu_cases(draw):
    slope = draw(st.sampled_from([0.01, 0.2, -0.5]))
    return Case(mg.leaky_relu, [draw(spaced(draw(shapes())))], negative_slope=slope)


@st.composite
def elu_cases(draw):
    alpha = draw(st.sampled_from([1.0, 0.5, 2.0]))
    return Case(mg.elu, [draw(spaced(draw(shapes())))], alpha=alpha)


@st.composite
def clip_cases(draw):
    """Bounds on the quarter grid, which spaced values keep clear of."""
    low = draw(st.integers(-8, 4)) / 4
    high = low + draw(st.integers(0, 12)) / 4
    a_min, a_max = draw(st.sampled_from([(low, high), (low, None), (None, high)]))
    return Case(clip, [draw(spaced(draw(shapes())))], a_min=a_min, a_max=a_max)


@st.composite
def where_cases(draw):
    condition_shape, a_shape, b_shape = draw(broadcast_shapes(3))
    condition = draw(hnp.arrays(np.bool_, condition_shape))
    return Case(where, [draw(smooth(a_shape)), draw(smooth(b_shape))], condition=condition)


@st.composite
def where_scalar_branch_cases(draw):
    shape = draw(shapes())
    condition = draw(hnp.arrays(np.bool_, shape))
    return Case(where, [draw(smooth(shape))], b=draw(st.floats(-2, 2)), condition=condition)


@st.composite
def scalar_arithmetic_cases(draw):
    """tensor (op) scalar and scalar (op) tensor, with int and float scalars."""
    op = draw(st.sampled_from([operator.add, operator.sub, operator.mul, operator.truediv]))
    scalar = draw(st.one_of(st.integers(-3, 3).filter(bool), nonzero(()).map(float)))
    x = draw(nonzero(draw(shapes())))
    return Case(draw(st.sampled_from([scalar_left, scalar_right])), [x], op=op, scalar=scalar)


@st.composite
def power_scalar_exponent_cases(draw):
    """tensor ** scalar: integer exponents on bases of either sign, others on positive ones."""
    exponent = draw(st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -0.5, 2.5]))
    shape = draw(shapes())
    x = draw(nonzero(shape) if isinstance(exponent, int) else positive_base(shape))
    return Case(scalar_right, [x], op=operator.pow, scalar=exponent)


@st.composite
def power_scalar_base_cases(draw):
    """scalar ** tensor, positive scalar base."""
    base = draw(st.floats(0.3, 3.0))
    return Case(scalar_left, [draw(smooth(draw(shapes())))], op=operator.pow, scalar=base)


@st.composite
def nan_to_num_cases(draw):
    shape = draw(shapes())
    # explicit infinities: the defaults (the dtype's largest values) are checked on their own
    replacements = draw(st.sampled_from([{"posinf": 3.0, "neginf": -3.0},
                                         {"nan": 1.5, "posinf": 3.0, "neginf": -3.0}]))
    return Case(mg.nan_to_num, [draw(non_finite(shape))], **replacements)


def select(*choices, condlist, default):
    return mg.select(condlist, list(choices), default)


@st.composite
def select_cases(draw):
    """Conditions and choices that broadcast together, a scalar or no default."""
    count = draw(st.integers(1, 3))
    all_shapes = draw(broadcast_shapes(2 * count))
    condlist = [draw(hnp.arrays(np.bool_, s)) for s in all_shapes[:count]]
    choices = [draw(smooth(s)) for s in all_shapes[count:]]
    return Case(select, choices, condlist=condlist, default=draw(st.sampled_from([0, -1.5])))


# Reductions.

@st.composite
def reduction_cases(draw, fn, values=smooth, min_count=1, **params):
    shape = draw(shapes())
    axis = draw(axis_args(len(shape)))
    assume(reduced_count(shape, axis) >= min_count)
    return Case(fn, [draw(values(shape))], axis=axis, keepdims=draw(st.booleans()), **params)


@st.composite
def cumsum_cases(draw):
    shape = draw(shapes())
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    return Case(mg.cumsum, [draw(smooth(shape))], axis=axis)


@st.composite
def softmax_cases(draw, fn):
    shape = draw(shapes(min_dims=1))
    return Case(fn, [draw(smooth(shape, -3, 3))], axis=draw(axis_args(len(shape), False)))


# Products.

@st.composite
def matmul_cases(draw, fn=mg.matmul):
    """Matrix and vector operands, with batch dims that broadcast against each other."""
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    batch_a, batch_b = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2,
                                                              max_side=2)).input_shapes
    a_shape = (k,) if draw(st.booleans()) else batch_a + (n, k)
    b_shape = (k,) if draw(st.booleans()) else batch_b + (k, m)
    assume(math.prod(a_shape) <= MAX_SIZE and math.prod(b_shape) <= MAX_SIZE)
    return Case(fn, [draw(smooth(a_shape)), draw(smooth(b_shape))])


@st.composite
def dot_cases(draw):
    n, k, m = (draw(st.integers(1, 4)) for _ in range(3))
    a_shape, b_shape = draw(st.sampled_from([
        ((), (n, k)), ((n, k), ()), ((), ()), ((k,), (k,)), ((n, k), (k,)), ((k,), (k, m)),
        ((n, k), (k, m))]))
    return Case(mg.dot, [draw(smooth(a_shape)), draw(smooth(b_shape))])


EINSUMS = ["ij,jk->ik", "i,i->", "i,j->ij", "ij->ji", "ij->", "ij->j", "bij,bjk->bik",
           "ij,ij->i", "ij,jk", "ba", "ij,jk,kl->il"]
EINSUMS_WITH_ELLIPSIS = ["...ij,...jk->...ik", "...i,...j->...", "...i,...i->...i",
                         "i...->...", "...i,...j"]


@st.composite
def einsum_cases(draw, expressions):
    """Explicit and implicit outputs, three operands, and '...' dims that broadcast."""
    subscripts = draw(st.sampled_from(expressions))
    terms = subscripts.split("->")[0].split(",")
    sizes = {c: draw(st.integers(1, 3)) for c in set(subscripts) if c.isalpha()}
    # each operand's '...' dims: the full batch dims, some of them 1 (broadcast) or left out
    full = draw(st.lists(st.integers(2, 3), max_size=2))
    batches = [tuple(draw(st.sampled_from([n, 1])) for n in full)[draw(st.integers(0, 1)):]
               for _ in terms]
    operand_shapes = []
    for term, batch in zip(terms, batches):
        before, dots, after = term.partition("...")
        operand_shapes.append(tuple(sizes[c] for c in before) + (batch if dots else ())
                              + tuple(sizes[c] for c in after))
    assume(all(math.prod(s) <= MAX_SIZE for s in operand_shapes))
    return Case(einsum, [draw(smooth(s)) for s in operand_shapes], subscripts=subscripts)


EINSUMS_WITH_REPEATS = ["ii->i", "ii", "lli", "iij->j", "ii,i->", "iji->ij", "...ii->...i",
                        "iii->", "ij,jj->i"]


@st.composite
def tensordot_cases(draw):
    """axes as an int, as two lists (negative axes, any order) or as two ints."""
    shape = draw(shapes(max_dims=3, max_side=3))
    count = draw(st.integers(0, len(shape)))
    a_axes = draw(st.permutations(range(len(shape))))[:count]
    extra = draw(shapes(max_dims=2, max_side=3))
    b_shape = [shape[a] for a in a_axes] + list(extra)
    b_order = draw(st.permutations(range(len(b_shape))))
    b_shape = tuple(b_shape[i] for i in b_order)
    b_axes = [b_order.index(i) for i in range(count)]
    form = draw(st.sampled_from(["lists", "int", "ints"]))
    if form == "int" or (form == "ints" and count != 1):
        # the last `count` axes of a and the first of b, in order
        a_shape = tuple(shape[a] for a in range(len(shape)) if a not in a_axes) + tuple(
            shape[a] for a in a_axes)
        b_shape = tuple(shape[a] for a in a_axes) + tuple(extra)
        axes = count
    else:
        a_shape = shape
        a_axes = [a - len(shape) * draw(st.booleans()) for a in a_axes]
        axes = (a_axes[0], b_axes[0]) if form == "ints" else (a_axes, b_axes)
    assume(math.prod(a_shape) <= MAX_SIZE and math.prod(b_shape) <= MAX_SIZE)
    return Case(mg.tensordot, [draw(smooth(a_shape)), draw(smooth(b_shape))], axes=axes)


@st.composite
def dot_nd_cases(draw):
    """np.dot beyond matrices: a (..., k) with b (k,) or b (..., k, m)."""
    k = draw(st.integers(1, 3))
    a_shape = draw(shapes(max_dims=2, max_side=3)) + (k,)
    b_shape = (k,) if draw(st.booleans()) else (
        draw(shapes(max_dims=1, max_side=2)) + (k, draw(st.integers(1, 3))))
    assume(len(a_shape) > 2 or len(b_shape) > 2)
    return Case(mg.dot, [draw(smooth(a_shape)), draw(smooth(b_shape))])


@st.composite
def inner_cases(draw):
    k = draw(st.integers(1, 3))
    a_shape, b_shape = (draw(shapes(max_dims=2, max_side=3)) + (k,) for _ in range(2))
    if draw(st.booleans()):  # a 0-d operand: a product
        a_shape, b_shape = draw(st.sampled_from([((), b_shape), (a_shape, ())]))
    return Case(mg.inner, [draw(smooth(a_shape)), draw(smooth(b_shape))])


@st.composite
def two_operands(draw, fn, max_size=8):
    a_shape, b_shape = (draw(shapes(max_dims=3, max_side=3).filter(
        lambda s: math.prod(s) <= max_size)) for _ in range(2))
    return Case(fn, [draw(smooth(a_shape)), draw(smooth(b_shape))])


@st.composite
def diagonal_cases(draw, fn):
    """diagonal or trace of a drawn pair of axes (negative ones too), any offset."""
    shape = draw(shapes(min_dims=2))
    axis = st.integers(-len(shape), len(shape) - 1)
    axis1 = draw(axis)
    axis2 = draw(axis.filter(lambda a: a % len(shape) != axis1 % len(shape)))
    offset = draw(st.integers(-shape[axis1], shape[axis2]))
    return Case(fn, [draw(smooth(shape))], offset=offset, axis1=axis1, axis2=axis2)


def diagonal_method(x, offset, axis1, axis2):
    return x.diagonal(offset, axis1, axis2)


def trace_method(x, offset, axis1, axis2):
    return x.trace(offset, axis1, axis2)


@st.composite
def diag_cases(draw):
    shape = draw(shapes(min_dims=1, max_dims=2))
    k = draw(st.integers(-3, 3))
    return Case(mg.diag, [draw(smooth(shape))], k=k)


@st.composite
def triangle_cases(draw, fn):
    shape = draw(shapes(min_dims=1))
    return Case(fn, [draw(smooth(shape))], k=draw(st.integers(-3, 3)))


@st.composite
def cross_cases(draw):
    """3-vectors along drawn axes, leading dims that broadcast."""
    a_lead, b_lead = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2,
                                                             max_side=2)).input_shapes
    a_axis = draw(st.integers(-len(a_lead) - 1, len(a_lead)))
    b_axis = draw(st.integers(-len(b_lead) - 1, len(b_lead)))
    a_shape, b_shape = list(a_lead), list(b_lead)
    a_shape.insert(a_axis % (len(a_lead) + 1), 3)
    b_shape.insert(b_axis % (len(b_lead) + 1), 3)
    out_ndim = len(np.broadcast_shapes(a_lead, b_lead)) + 1
    params = {"axisa": a_axis, "axisb": b_axis,
              "axisc": draw(st.integers(-out_ndim, out_ndim - 1))}
    if a_axis % len(a_shape) == len(a_shape) - 1 and b_axis % len(b_shape) == len(b_shape) - 1:
        params = draw(st.sampled_from([{}, {"axis": -1}, params]))
    return Case(mg.cross, [draw(smooth(tuple(a_shape))), draw(smooth(tuple(b_shape)))],
                **params)


# Matrix functions (mg.linalg).

@st.composite
def invertible(draw, batch=None, n=None, positive=False):
    """Diagonally dominant matrices, well conditioned: diagonal entries of size 1.5 to 2
    (either sign, or positive), the others at most 0.5 / n."""
    n = n if n is not None else draw(st.integers(1, 3))
    batch = batch if batch is not None else draw(shapes(max_dims=1, max_side=2))
    diagonal = draw(hnp.arrays(np.float64, batch + (n,), elements=st.floats(1.5, 2.0)))
    if not positive:
        diagonal = diagonal * draw(hnp.arrays(np.float64, batch + (n,),
                                              elements=st.sampled_from([1.0, -1.0])))
    rest = draw(hnp.arrays(np.float64, batch + (n, n), elements=st.floats(-0.5, 0.5))) / n
    return rest * (1 - np.eye(n)) + diagonal[..., None] * np.eye(n)


def symmetric(x):
    return (x + x.mT) * 0.5


def inv(a):
    return mg.linalg.inv(a)


def solve(a, b):
    return mg.linalg.solve(a, b)


def det(a):
    return mg.linalg.det(a)


def slogdet(a):
    return mg.linalg.slogdet(a)


def cholesky(a, upper):
    """Of the symmetric part: cholesky reads one triangle of a matrix taken as symmetric."""
    return mg.linalg.cholesky(symmetric(a), upper=upper)


def eigh(a):
    """Eigenvalues, and eigenvectors times their first row: a product that does not change
    when LAPACK flips an eigenvector's sign."""
    w, v = mg.linalg.eigh(symmetric(a))
    return w, v * v[..., :1, :]


@st.composite
def solve_cases(draw):
    a = draw(invertible())
    n = a.shape[-1]
    b_shape = draw(st.sampled_from([(n,), (n, draw(st.integers(1, 2))),
                                    a.shape[:-1] + (draw(st.integers(1, 2)),)]))
    return Case(solve, [a, draw(smooth(b_shape))])


@st.composite
def cholesky_cases(draw):
    return Case(cholesky, [draw(invertible(positive=True))], upper=draw(st.booleans()))


@st.composite
def eigh_cases(draw):
    """Eigenvalues at least 0.2 apart: distinct diagonal entries 0.5 apart, the others at
    most 0.05 (close eigenvalues make the eigenvectors' derivatives ill-conditioned)."""
    n = draw(st.integers(1, 3))
    batch = draw(shapes(max_dims=1, max_side=2))
    diagonal = np.stack([np.array(draw(st.permutations(range(n))), dtype=np.float64) * 0.5
                         for _ in range(math.prod(batch))]).reshape(batch + (n,))
    rest = draw(hnp.arrays(np.float64, batch + (n, n), elements=st.floats(-0.05, 0.05)))
    return Case(eigh, [rest * (1 - np.eye(n)) + diagonal[..., None] * np.eye(n) - 0.3])


@st.composite
def magnitudes(draw, shape):
    """Values of either sign with distinct magnitudes, none within 0.075 of 0 (for max and
    min of |x|)."""
    x = draw(spaced(shape)) + 4.2
    return x * draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([1.0, -1.0])))


@st.composite
def vector_norm_cases(draw):
    shape = draw(shapes(min_dims=1))
    x = draw(magnitudes(shape))
    ord_ = draw(st.sampled_from([None, 2, 1, math.inf, -math.inf, 3, 0.5, -1, 0]))
    if len(shape) == 1 and draw(st.booleans()):
        return Case(mg.linalg.norm, [x], ord=ord_)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Case(mg.linalg.norm, [x], ord=ord_, axis=axis, keepdims=draw(st.booleans()))


@st.composite
def matrix_norm_cases(draw):
    """Matrix norms; the sums whose max or min is taken stay 0.01 apart (no ties)."""
    shape = draw(shapes(min_dims=2))
    x = draw(magnitudes(shape))
    ord_ = draw(st.sampled_from(["fro", None, 1, -1, math.inf, -math.inf]))
    axes = draw(st.permutations(range(len(shape))))[:2]
    axes = [a - len(shape) * draw(st.booleans()) for a in axes]
    if ord_ in (1, -1, math.inf, -math.inf):
        summed = axes[0] if ord_ in (1, -1) else axes[1]
        sums = np.moveaxis(np.abs(x).sum(axis=summed, keepdims=True), axes, (-2, -1))
        gaps = np.diff(np.sort(sums.reshape(-1, sums.shape[-2] * sums.shape[-1]), -1), axis=-1)
        assume(gaps.size == 0 or gaps.min() > 0.01)
    if len(shape) == 2 and draw(st.booleans()):
        return Case(mg.linalg.norm, [x], ord=ord_)
    return Case(mg.linalg.norm, [x], ord=ord_, axis=tuple(axes), keepdims=draw(st.booleans()))


# Shape ops.

def prime_factors(n):
    factors, p = [], 2
    while n > 1:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors


@st.composite
def reshape_cases(draw):
    """A new shape for the same elements, each prime factor put in a random dim, maybe -1."""
    shape = draw(shapes())
    size = math.prod(shape)
    ndim = draw(st.integers(0 if size == 1 else 1, 3))
    target = [1] * ndim
    for p in prime_factors(size):
        target[draw(st.integers(0, ndim - 1))] *= p
    if ndim and draw(st.booleans()):
        target[draw(st.integers(0, ndim - 1))] = -1
    return Case(reshape, [draw(smooth(shape))], shape=tuple(target))


@st.composite
def transpose_cases(draw):
    shape = draw(shapes())
    ndim = len(shape)
    axes = None
    if draw(st.booleans()):
        axes = tuple(a - ndim * draw(st.booleans()) for a in draw(st.permutations(range(ndim))))
    return Case(transpose, [draw(smooth(shape))], axes=axes)


@st.composite
def swapaxes_cases(draw):
    shape = draw(shapes(min_dims=1))
    axis = st.integers(-len(shape), len(shape) - 1)
    return Case(mg.swapaxes, [draw(smooth(shape))], axis1=draw(axis), axis2=draw(axis))


@st.composite
def moveaxis_cases(draw):
    shape = draw(shapes(min_dims=1))
    ndim = len(shape)
    axis = st.integers(-ndim, ndim - 1)
    source = draw(st.lists(axis, unique_by=lambda a: a % ndim, min_size=1, max_size=ndim))
    destination = draw(st.lists(axis, unique_by=lambda a: a % ndim, min_size=len(source),
                                max_size=len(source)))
    if len(source) == 1 and draw(st.booleans()):
        source, destination = source[0], destination[0]
    return Case(mg.moveaxis, [draw(smooth(shape))], source=source, destination=destination)


@st.composite
def expand_dims_cases(draw):
    shape = draw(shapes(max_dims=2))
    count = draw(st.integers(1, 2))
    ndim = len(shape) + count
    axis = st.integers(-ndim, ndim - 1)
    axes = draw(st.lists(axis, unique_by=lambda a: a % ndim, min_size=count, max_size=count))
    return Case(mg.expand_dims, [draw(smooth(shape))],
                axis=axes[0] if count == 1 and draw(st.booleans()) else tuple(axes))


@st.composite
def squeeze_cases(draw):
    shape = draw(st.lists(st.sampled_from([1, 1, 2, 3]), max_size=3).map(tuple))
    ones = [a for a, n in enumerate(shape) if n == 1]
    chosen = draw(st.lists(st.sampled_from(ones), unique=True)) if ones else []
    chosen = [a - len(shape) * draw(st.booleans()) for a in chosen]
    axis = None if not chosen or draw(st.booleans()) else tuple(chosen)
    return Case(mg.squeeze, [draw(smooth(shape))], axis=axis)


@st.composite
def broadcast_to_cases(draw):
    shape, other = draw(broadcast_shapes())
    return Case(mg.broadcast_to, [draw(smooth(shape))], shape=np.broadcast_shapes(shape, other))


@st.composite
def concatenate_cases(draw):
    shape = draw(shapes(min_dims=1, max_side=3))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    lengths = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    pieces = [shape[:axis % len(shape)] + (n,) + shape[axis % len(shape) + 1:] for n in lengths]
    assume(sum(math.prod(p) for p in pieces) <= MAX_SIZE)
    return Case(concatenate, [draw(smooth(p)) for p in pieces], axis=axis)


@st.composite
def stack_cases(draw):
    shape = draw(shapes(max_dims=2, max_side=3))
    count = draw(st.integers(1, 3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Case(stack, [draw(smooth(shape)) for _ in range(count)], axis=axis)


@st.composite
def split_cases(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    if draw(st.booleans()):
        sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    else:
        sections = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    return Case(mg.split, [draw(smooth(shape))], indices_or_sections=sections, axis=axis)


@st.composite
def pad_cases(draw):
    shape = draw(shapes(max_side=3))
    width = st.integers(0, 2)
    per_axis = st.tuples(*[st.tuples(width, width) for _ in shape])
    pad_width = draw(st.one_of(width, st.tuples(width, width), *[per_axis] if shape else []))
    return Case(mg.pad, [draw(smooth(shape))], pad_width=pad_width,
                value=draw(st.floats(-2, 2)))


@st.composite
def flip_cases(draw):
    shape = draw(shapes())
    return Case(mg.flip, [draw(smooth(shape))], axis=draw(axis_args(len(shape))))


@st.composite
def repeat_cases(draw):
    shape = draw(shapes(max_side=3))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    n = math.prod(shape) if axis is None else shape[axis]
    repeats = draw(st.integers(1, 3) | st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return Case(mg.repeat, [draw(smooth(shape))], repeats=repeats, axis=axis)


@st.composite
def tile_cases(draw):
    shape = draw(shapes(max_side=3))
    reps = draw(st.integers(1, 3) | st.lists(st.integers(1, 2), min_size=1, max_size=3)
                .map(tuple))
    assume(math.prod(shape) * math.prod(np.atleast_1d(reps)) <= 2 * MAX_SIZE)
    return Case(mg.tile, [draw(smooth(shape))], reps=reps)


def index_arrays(length, shape=None):
    """Integer indices into an axis of `length`, negative ones and repeats included."""
    shape = shape if shape is not None else shapes(min_dims=1, max_dims=2, max_side=5)
    return hnp.arrays(np.int64, shape, elements=st.integers(-length, length - 1))


@st.composite
def take_cases(draw):
    shape = draw(shapes())
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    n = math.prod(shape) if axis is None else shape[axis]
    return Case(mg.take, [draw(smooth(shape))], indices=draw(index_arrays(n)), axis=axis)


@st.composite
def take_along_axis_cases(draw):
    """Indices with the tensor's ndim; other dims either match or are 1 and broadcast."""
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = tuple(draw(st.integers(1, 4)) if d == axis % len(shape)
                        else draw(st.sampled_from([n, 1])) for d, n in enumerate(shape))
    indices = draw(index_arrays(shape[axis], index_shape))
    return Case(mg.take_along_axis, [draw(smooth(shape))], indices=indices, axis=axis)


@st.composite
def sort_cases(draw):
    shape = draw(shapes(min_dims=1))
    return Case(mg.sort, [draw(spaced(shape))],
                axis=draw(st.integers(-len(shape), len(shape) - 1)))


def ravel_method(x):
    return x.ravel()


def flatten_method(x):
    return x.flatten()


@st.composite
def partition_cases(draw):
    shape = draw(shapes(min_dims=1))
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1))
    n = math.prod(shape) if axis is None else shape[axis]
    kth = draw(st.integers(-n, n - 1) | st.lists(st.integers(0, n - 1), min_size=1,
                                                    max_size=2, unique=True))
    return Case(mg.partition, [draw(spaced(shape))], kth=kth, axis=axis)


@st.composite
def roll_cases(draw):
    shape = draw(shapes())
    shift = st.integers(-5, 5)
    if not shape or draw(st.booleans()):
        return Case(mg.roll, [draw(smooth(shape))], shift=draw(shift), axis=None)
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))
    if len(axes) == 1:
        return Case(mg.roll, [draw(smooth(shape))], shift=draw(shift), axis=axes[0])
    shifts = draw(st.lists(shift, min_size=len(axes), max_size=len(axes)))
    return Case(mg.roll, [draw(smooth(shape))], shift=tuple(shifts), axis=tuple(axes))


@st.composite
def rot90_cases(draw):
    shape = draw(shapes(min_dims=2))
    axes = draw(st.permutations(range(len(shape))))[:2]
    axes = tuple(a - len(shape) * draw(st.booleans()) for a in axes)
    return Case(mg.rot90, [draw(smooth(shape))], k=draw(st.integers(-2, 5)), axes=axes)


@st.composite
def rollaxis_cases(draw):
    shape = draw(shapes(min_dims=1))
    n = len(shape)
    return Case(mg.rollaxis, [draw(smooth(shape))], axis=draw(st.integers(-n, n - 1)),
                start=draw(st.integers(-n, n)))


@st.composite
def append_cases(draw):
    shape = draw(shapes(max_side=3))
    if not shape or draw(st.booleans()):
        other = draw(shapes(max_side=3))
        return Case(mg.append, [draw(smooth(shape)), draw(smooth(other))], axis=None)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    other = list(shape)
    other[axis] = draw(st.integers(1, 3))
    return Case(mg.append, [draw(smooth(shape)), draw(smooth(tuple(other)))], axis=axis)


# per stack: the dimensions it makes its pieces have at least, and the axis of a piece with
# that many that it joins along (hstack: the first of a vector, else the second)
STACKS = {"hstack": (1, 1), "vstack": (2, 0), "row_stack": (2, 0), "dstack": (3, 2),
          "column_stack": (2, 1)}


def stack_with(*xs, name):
    return getattr(mg, name)(list(xs))


@st.composite
def numpy_stack_cases(draw, name):
    """1 to 3 pieces with one number of dimensions (0 to 3), equal but along the joined
    axis; pieces with fewer dimensions than the stack makes are joined whole."""
    at_least, axis = STACKS[name]
    ndim = draw(st.integers(0, 3))
    axis = 0 if name == "hstack" and ndim == 1 else axis
    base = draw(shapes(min_dims=ndim, max_dims=ndim, max_side=3))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        shape = list(base)
        if axis < ndim and (ndim >= at_least or name == "hstack"):
            shape[axis] = draw(st.integers(1, 3))
        pieces.append(tuple(shape))
    assume(sum(math.prod(p) for p in pieces) <= MAX_SIZE)
    return Case(stack_with, [draw(smooth(p)) for p in pieces], name=name)


@st.composite
def array_split_cases(draw, fn=mg.array_split, name=None):
    shape = draw(shapes(min_dims={"vsplit": 2, "dsplit": 3}.get(name, 1)))
    axis = {"hsplit": 1 if len(shape) > 1 else 0, "vsplit": 0, "dsplit": 2}.get(
        name, draw(st.integers(-len(shape), len(shape) - 1)))
    n = shape[axis]
    if draw(st.booleans()):
        equal = name is not None
        sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0])
                        if equal else st.integers(1, n + 2))
    else:
        sections = sorted(draw(st.lists(st.integers(0, n), max_size=3)))
    params = {"indices_or_sections": sections}
    if name is None:
        params["axis"] = axis
    return Case(fn, [draw(smooth(shape))], **params)


def atleast(*xs, ndim):
    return getattr(mg, f"atleast_{ndim}d")(*xs)


@st.composite
def atleast_cases(draw, ndim):
    count = draw(st.integers(1, 2))
    return Case(atleast, [draw(smooth(draw(shapes()))) for _ in range(count)], ndim=ndim)


def diff_with(x, *pieces, n, axis, prepend=None, append=None, lib=mg):
    """lib.diff, where a prepend or append given as "input" is the next of the inputs (so
    that it is differentiated, and takes the dtype of the check)."""
    pieces, extra = iter(pieces), {}
    for side, value in (("prepend", prepend), ("append", append)):
        if value is not None:  # NumPy takes None for an array
            extra[side] = next(pieces) if value == "input" else value
    return lib.diff(x, n, axis, **extra)


@st.composite
def diff_cases(draw):
    """n up to the length, prepend and append absent, scalars or arrays."""
    shape = draw(shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    length, extra, pieces = shape[axis], {}, []
    for side in ("prepend", "append"):
        kind = draw(st.sampled_from(["none", "scalar", "input"]))
        if kind == "scalar":
            extra[side] = draw(st.floats(-2, 2))
            length += 1
        elif kind == "input":
            piece = list(shape)
            piece[axis] = draw(st.integers(1, 2))
            pieces.append(draw(smooth(tuple(piece))))
            extra[side] = "input"
            length += piece[axis]
    return Case(diff_with, [draw(smooth(shape))] + pieces, n=draw(st.integers(0, length)),
                axis=axis, **extra)


def gradient_of(f, spacing, axis, edge_order):
    return mg.gradient(f, *spacing, axis=axis, edge_order=edge_order)


@st.composite
def gradient_cases(draw):
    """One axis or several; no spacing, one scalar, or per axis a scalar or coordinates
    (evenly spaced or not)."""
    edge_order = draw(st.sampled_from([1, 2]))
    shape = draw(shapes(min_dims=1, min_side=edge_order + 1, max_side=5))
    axes = draw(st.none() | st.integers(-len(shape), len(shape) - 1)
                | st.permutations(range(len(shape))).map(tuple))
    listed = list(range(len(shape))) if axes is None else (
        [axes] if isinstance(axes, int) else list(axes))
    kind = draw(st.sampled_from(["none", "scalar", "each"]))
    spacing = ()
    if kind == "scalar":
        spacing = (draw(st.sampled_from([0.5, 2.0, -1.0])),)
    elif kind == "each":
        spacing = tuple(draw(st.sampled_from([0.5, 2.0])) if draw(st.booleans()) else
                        np.cumsum(draw(hnp.arrays(np.float64, shape[a], elements=st.sampled_from(
                            [0.5, 1.0, 1.5])))) for a in listed)
    return Case(gradient_of, [draw(smooth(shape))], spacing=spacing, axis=axes,
                edge_order=edge_order)


def concatenator(*xs, name, constant_piece, directive):
    """mg.r_ or mg.c_ on the tensors with a constant (a slice, an array, a scalar) between."""
    items = ((directive,) if directive else ()) + (xs[0], constant_piece) + xs[1:]
    return getattr(mg, name)[items]


@st.composite
def concatenator_cases(draw, name):
    """Vectors (and, for r_, one drawn directive) that join along axis 0 for r_ and as
    columns for c_."""
    length = draw(st.integers(1, 3))
    count = draw(st.integers(1, 2))
    directive = None
    if name == "r_":
        pieces = [(draw(st.integers(0, 3)) or (),) for _ in range(count)]
        pieces = [p if p != ((),) else () for p in pieces]
        constant_piece = draw(st.sampled_from([slice(0, 3), slice(1, 0, -0.5), slice(0, 1, 3j),
                                               1.5, [2.0, 3.0]]))
        if draw(st.booleans()):
            directive, pieces = "0,2", [(length,)] * count
            constant_piece = np.linspace(0, 1, length)
    else:
        pieces = [(length,)] * count
        constant_piece = draw(st.sampled_from([slice(0, length), np.ones(length)]))
    return Case(concatenator, [draw(smooth(p)) for p in pieces], name=name,
                constant_piece=constant_piece, directive=directive)


@st.composite
def linspace_cases(draw):
    """Tensor end points that broadcast, differentiable in both."""
    start_shape, stop_shape = draw(broadcast_shapes(max_dims=2))
    num = draw(st.integers(0, 5))
    ndim = len(np.broadcast_shapes(start_shape, stop_shape)) + 1
    return Case(mg.linspace, [draw(smooth(start_shape)), draw(smooth(stop_shape))], num=num,
                endpoint=draw(st.booleans()), axis=draw(st.integers(-ndim, ndim - 1)))


# getitem, one kind of key per spec.

def slices(n):
    bound = st.none() | st.integers(-n - 1, n + 1)
    step = st.none() | st.sampled_from([1, 2, -1, -2])
    return st.builds(slice, bound, bound, step)


@st.composite
def getitem_int_cases(draw):
    shape = draw(shapes(min_dims=1))
    count = draw(st.integers(1, len(shape)))
    key = tuple(draw(st.integers(-n, n - 1)) for n in shape[:count])
    return Case(getitem, [draw(smooth(shape))], key=key[0] if count == 1 else key)


@st.composite
def getitem_slice_cases(draw):
    shape = draw(shapes(min_dims=1))
    key = tuple(draw(slices(n)) for n in shape[:draw(st.integers(1, len(shape)))])
    return Case(getitem, [draw(smooth(shape))], key=key)


@st.composite
def getitem_none_ellipsis_cases(draw):
    """None and ... mixed with slices and an int ("i", drawn) into the last dim."""
    shape = draw(shapes(min_dims=1))
    template = draw(st.sampled_from([
        (None,), (Ellipsis,), (None, Ellipsis, "i"), (Ellipsis, None), (slice(None), None),
        (Ellipsis, "i"), (None, Ellipsis, slice(None, None, -1), None)]))
    i = draw(st.integers(-shape[-1], shape[-1] - 1))
    key = tuple(i if k == "i" else k for k in template)
    return Case(getitem, [draw(smooth(shape))], key=key)


@st.composite
def getitem_int_array_cases(draw):
    """x[idx], x[:, idx] and x[idx0, idx1], with repeated and negative indices."""
    shape = draw(shapes(min_dims=1))
    kind = draw(st.sampled_from(["first", "second", "paired"]) if len(shape) > 1
                else st.just("first"))
    x = draw(smooth(shape))
    if kind == "first":
        return Case(getitem, [x], key=draw(index_arrays(shape[0])))
    if kind == "second":
        return Case(getitem, [x], key=(slice(None), draw(index_arrays(shape[1]))))
    index_shape = draw(shapes(min_dims=1, max_dims=2, max_side=4))
    key = (draw(index_arrays(shape[0], index_shape)), draw(index_arrays(shape[1], index_shape)))
    return Case(getitem, [x], key=key)


@st.composite
def getitem_mask_cases(draw):
    """A boolean mask over the leading dims (all of them included), as an array or a list."""
    shape = draw(shapes(min_dims=1))
    mask = draw(hnp.arrays(np.bool_, shape[:draw(st.integers(1, len(shape)))]))
    return Case(getitem, [draw(smooth(shape))],
                key=mask.tolist() if draw(st.booleans()) else mask)


@st.composite
def getitem_comparison_mask_cases(draw):
    return Case(getitem_by_comparison, [draw(spaced(draw(shapes())))],
                threshold=draw(st.integers(-8, 8)) / 4)


def group_norm(x, weight, bias, num_groups):
    return F.group_norm(x, num_groups, weight, bias)


@st.composite
def group_norm_cases(draw):
    """(N, C, ...) with C a multiple of the groups, 0 to 2 spatial axes, a per-channel
    weight and bias. The values are spaced, so that no group has a variance near zero,
    where 1 / sqrt(var + eps) would make the finite differences meaningless."""
    groups, per_group = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    c = groups * per_group
    spatial = draw(shapes(min_dims=0, max_dims=2, max_side=3).filter(
        lambda s: per_group * math.prod(s) >= 2 and c * math.prod(s) <= 12))
    n = draw(st.integers(1, max(1, MAX_SIZE // (c * math.prod(spatial)))))
    shape = (n, c) + spatial
    values = np.concatenate([draw(spaced((math.prod(shape[1:]),))) for _ in range(n)])
    return Case(group_norm, [values.reshape(shape), draw(smooth((c,))), draw(smooth((c,)))],
                num_groups=groups)


SPECS = {
    "exp": unary(mg.exp, low=-3, high=3),
    "log": unary(mg.log, low=0.2, high=5),
    "log1p": unary(mg.log1p, low=-0.8, high=5),
    "expm1": unary(mg.expm1, low=-3, high=3),
    "sqrt": unary(mg.sqrt, low=0.2, high=5),
    "square": unary(mg.square, low=-3, high=3),
    "abs": unary(mg.abs, spaced),
    "abs_operator": unary(abs, spaced),
    "sin": unary(mg.sin, low=-4, high=4),
    "cos": unary(mg.cos, low=-4, high=4),
    "tanh": unary(mg.tanh, low=-3, high=3),
    "sigmoid": unary(mg.sigmoid, low=-5, high=5),
    "softplus": unary(mg.softplus, low=-5, high=5),
    "log_sigmoid": unary(mg.log_sigmoid, low=-5, high=5),
    "relu": unary(mg.relu, spaced),
    "leaky_relu_default": unary(mg.leaky_relu, spaced),
    "leaky_relu": leaky_relu_cases(),
    "elu": elu_cases(),
    "gelu_exact": unary(mg.gelu, low=-3, high=3),
    "gelu_tanh": unary(gelu_tanh, low=-3, high=3),
    "silu": unary(F.silu, low=-5, high=5),
    "group_norm": group_norm_cases(),
    "erf": unary(mg.erf, low=-2.5, high=2.5),
    "tan": unary(mg.tan, low=-1.2, high=1.2),
    "arcsin": unary(mg.arcsin, low=-0.9, high=0.9),
    "arccos": unary(mg.arccos, low=-0.9, high=0.9),
    "arctan": unary(mg.arctan, low=-3, high=3),
    "sinh": unary(mg.sinh, low=-3, high=3),
    "cosh": unary(mg.cosh, low=-3, high=3),
    "arcsinh": unary(mg.arcsinh, low=-3, high=3),
    "arccosh": unary(mg.arccosh, low=1.2, high=4),
    "arctanh": unary(mg.arctanh, low=-0.9, high=0.9),
    "exp2": unary(mg.exp2, low=-3, high=3),
    "log2": unary(mg.log2, low=0.2, high=5),
    "log10": unary(mg.log10, low=0.2, high=5),
    "cbrt": unary(mg.cbrt, nonzero),
    "reciprocal": unary(mg.reciprocal, nonzero),
    "deg2rad": unary(mg.deg2rad, low=-200, high=200),
    "rad2deg": unary(mg.rad2deg, low=-4, high=4),
    "fabs": unary(mg.fabs, spaced),
    "floor": unary(mg.floor, spaced),
    "ceil": unary(mg.ceil, spaced),
    "rint": unary(mg.rint, spaced),
    "trunc": unary(mg.trunc, spaced),
    "round": unary(mg.round, spaced),
    "round_method": unary(round_method, spaced),
    "nan_to_num": nan_to_num_cases(),
    "select": select_cases(),
    "clip": clip_cases(),
    "negative": unary(operator.neg),
    "add": binary(operator.add),
    "subtract": binary(operator.sub),
    "multiply": binary(operator.mul),
    "divide": binary(operator.truediv, right=nonzero),
    "power_tensor_tensor": binary(operator.pow, left=positive_base),
    "power_tensor_scalar": power_scalar_exponent_cases(),
    "power_scalar_tensor": power_scalar_base_cases(),
    "scalar_arithmetic": scalar_arithmetic_cases(),
    "maximum": binary(mg.maximum, left=spaced, right=spaced_on_grid),
    "minimum": binary(mg.minimum, left=spaced_on_grid, right=spaced),
    "arctan2": binary(mg.arctan2, left=nonzero),
    "hypot": binary(mg.hypot, left=nonzero),
    "logaddexp": binary(mg.logaddexp),
    "logaddexp2": binary(mg.logaddexp2),
    "remainder": binary(mg.remainder, left=spaced, right=divisors),
    "remainder_operator": binary(operator.mod, left=spaced, right=divisors),
    "fmod": binary(mg.fmod, left=spaced, right=divisors),
    "floor_divide_operator": binary(operator.floordiv, left=spaced, right=divisors),
    "fmax": binary(mg.fmax, left=spaced, right=functools.partial(with_nans,
                                                                 values=spaced_on_grid)),
    "fmin": binary(mg.fmin, left=functools.partial(with_nans, values=spaced_on_grid),
                   right=spaced),
    "where": where_cases(),
    "where_scalar_branch": where_scalar_branch_cases(),
    "sum": reduction_cases(mg.sum),
    "mean": reduction_cases(mg.mean),
    "var_ddof0": reduction_cases(mg.var, ddof=0),
    "var_ddof1": reduction_cases(mg.var, min_count=2, ddof=1),
    "std_ddof0": reduction_cases(mg.std, spaced, min_count=2, ddof=0),
    "std_ddof1": reduction_cases(mg.std, spaced, min_count=2, ddof=1),
    "max": reduction_cases(mg.max, spaced),
    "min": reduction_cases(mg.min, spaced),
    "prod": reduction_cases(mg.prod, functools.partial(smooth, low=-1.5, high=1.5)),
    "logsumexp": reduction_cases(mg.logsumexp, functools.partial(smooth, low=-3, high=3)),
    "cumsum": cumsum_cases(),
    "softmax": softmax_cases(mg.softmax),
    "log_softmax": softmax_cases(mg.log_softmax),
    "matmul": matmul_cases(),
    "matmul_operator": matmul_cases(operator.matmul),
    "dot": dot_cases(),
    "einsum": einsum_cases(EINSUMS),
    "einsum_ellipsis": einsum_cases(EINSUMS_WITH_ELLIPSIS),
    "einsum_repeated_letters": einsum_cases(EINSUMS_WITH_REPEATS),
    "tensordot": tensordot_cases(),
    "dot_nd": dot_nd_cases(),
    "inner": inner_cases(),
    "outer": two_operands(mg.outer),
    "kron": two_operands(mg.kron, max_size=6),
    "trace": diagonal_cases(mg.trace),
    "trace_method": diagonal_cases(trace_method),
    "diagonal": diagonal_cases(mg.diagonal),
    "diagonal_method": diagonal_cases(diagonal_method),
    "diag": diag_cases(),
    "tril": triangle_cases(mg.tril),
    "triu": triangle_cases(mg.triu),
    "cross": cross_cases(),
    "inv": st.builds(lambda a: Case(inv, [a]), invertible()),
    "solve": solve_cases(),
    "det": st.builds(lambda a: Case(det, [a]), invertible()),
    "slogdet": st.builds(lambda a: Case(slogdet, [a]), invertible()),
    "cholesky": cholesky_cases(),
    "eigh": eigh_cases(),
    "vector_norm": vector_norm_cases(),
    "matrix_norm": matrix_norm_cases(),
    "reshape": reshape_cases(),
    "transpose": transpose_cases(),
    "swapaxes": swapaxes_cases(),
    "moveaxis": moveaxis_cases(),
    "expand_dims": expand_dims_cases(),
    "squeeze": squeeze_cases(),
    "broadcast_to": broadcast_to_cases(),
    "concatenate": concatenate_cases(),
    "stack": stack_cases(),
    "split": split_cases(),
    "pad": pad_cases(),
    "flip": flip_cases(),
    "repeat": repeat_cases(),
    "tile": tile_cases(),
    "take": take_cases(),
    "take_along_axis": take_along_axis_cases(),
    "sort": sort_cases(),
    "partition": partition_cases(),
    "ravel": unary(mg.ravel),
    "ravel_method": unary(ravel_method),
    "flatten_method": unary(flatten_method),
    "roll": roll_cases(),
    "rot90": rot90_cases(),
    "rollaxis": rollaxis_cases(),
    "append": append_cases(),
    **{name: numpy_stack_cases(name) for name in STACKS},
    "array_split": array_split_cases(),
    "hsplit": array_split_cases(mg.hsplit, "hsplit"),
    "vsplit": array_split_cases(mg.vsplit, "vsplit"),
    "dsplit": array_split_cases(mg.dsplit, "dsplit"),
    "atleast_1d": atleast_cases(1),
    "atleast_2d": atleast_cases(2),
    "atleast_3d": atleast_cases(3),
    "diff": diff_cases(),
    "gradient": gradient_cases(),
    "r_": concatenator_cases("r_"),
    "c_": concatenator_cases("c_"),
    "linspace": linspace_cases(),
    "getitem_int": getitem_int_cases(),
    "getitem_slice": getitem_slice_cases(),
    "getitem_none_ellipsis": getitem_none_ellipsis_cases(),
    "getitem_int_array": getitem_int_array_cases(),
    "getitem_mask": getitem_mask_cases(),
    "getitem_comparison_mask": getitem_comparison_mask_cases(),
}


# The checks.

def as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def assert_finite_derivatives(case, order):
    """Outputs and derivatives up to `order` are finite: gradcheck lets NaN pass unnoticed."""
    rng = np.random.default_rng(0)
    xs = [mg.tensor(a, requires_grad=True) for a in case.arrays]
    ys = as_list(case(*xs))
    vs = [mg.tensor(rng.standard_normal(y.shape)) for y in ys]
    derivatives = list(mg.grad(ys, xs, grad_outputs=vs, create_graph=order > 1))
    if order > 1:
        derivatives += mg.grad(derivatives, xs,
                               grad_outputs=[mg.tensor(rng.standard_normal(g.shape))
                                             for g in derivatives])
    for t in ys + derivatives:
        assert np.isfinite(t.numpy()).all(), f"{case}: non-finite {t}"


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_first_order(spec, data):
    case = data.draw(spec)
    assert_finite_derivatives(case, order=1)
    assert mg.gradcheck(case, [mg.tensor(a) for a in case.arrays])


@pytest.mark.parametrize("spec", SPECS.values(), ids=SPECS.keys())
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_second_order(spec, data):
    case = data.draw(spec)
    assert_finite_derivatives(case, order=2)
    assert mg.gradgradcheck(case, [mg.tensor(a) for a in case.arrays])


BINARY = {
    "add": (operator.add, smooth, smooth),
    "subtract": (operator.sub, smooth, smooth),
    "multiply": (operator.mul, smooth, smooth),
    "divide": (operator.truediv, smooth, nonzero),
    "power": (operator.pow, positive_base, smooth),
    "maximum": (mg.maximum, spaced, spaced_on_grid),
    "minimum": (mg.minimum, spaced, spaced_on_grid),
}
BROADCAST_PAIRS = [((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2, 3)), ((2, 3), ()),
                   ((2, 1, 3), (4, 1)), ((1,), (3, 1))]


@pytest.mark.parametrize("shapes_", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("name", BINARY)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_binary_op_broadcast_pairs(name, shapes_, data):
    """The named broadcasting patterns, whatever the random shapes above happen to draw."""
    fn, left, right = BINARY[name]
    case = Case(fn, [data.draw(left(shapes_[0])), data.draw(right(shapes_[1]))])
    assert_finite_derivatives(case, order=2)
    inputs = [mg.tensor(a) for a in case.arrays]
    assert mg.gradcheck(case, inputs)
    assert mg.gradgradcheck(case, inputs)


def test_einsum_where_ellipsis_dims_broadcast_and_a_letter_is_summed():
    """It once failed: "cannot reshape array of size 2 into shape (1,1)"."""
    case = Case(einsum, [np.linspace(-1, 1, 3).reshape(1, 3), np.linspace(0, 2, 8).reshape(2, 4)],
                subscripts="...i,...j->...")
    inputs = [mg.tensor(a) for a in case.arrays]
    assert mg.gradcheck(case, inputs) and mg.gradgradcheck(case, inputs)


@pytest.mark.parametrize("order", [1, 2])
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_astype_float64_float32_round_trip(order, data):
    """Both casts, float64 -> float32 -> float64, and the float32 result itself.

    The default step of 1e-6 is below float32's resolution, so this check uses values k/64
    and a step of 2**-10: both exact in float32, the finite differences see no rounding, and
    as the cast is linear the larger step costs no accuracy. Tolerances stay the defaults.
    """
    def exact(shape):
        return hnp.arrays(np.float64, shape, elements=st.integers(-192, 192).map(
            lambda k: k / 64))

    shape = data.draw(shapes())
    case = Case(float32_and_back, [data.draw(exact(shape))])
    x = mg.tensor(case.arrays[0])
    if order == 1:
        assert mg.gradcheck(case, [x], eps=2.0 ** -10)
    else:
        v = [mg.tensor(data.draw(exact(shape))) for _ in range(2)]
        assert mg.gradgradcheck(case, [x], grad_outputs=v, eps=2.0 ** -10)


# Where a function has no derivative: the subgradient 0 where it is flat or undefined,
# never NaN, at first and second order.

def first_and_second(fn, *arrays):
    xs = [mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    grads = mg.grad(fn(*xs), xs, create_graph=True)
    seconds = mg.grad(sum(g.sum() for g in grads), xs)
    return [g.numpy() for g in grads], [h.numpy() for h in seconds]


KINKS = {
    "std of one value": (lambda x: mg.std(x), [[1.5]], [[0.0]]),
    "std of equal values": (lambda x: mg.std(x), [[2.0, 2.0, 2.0]], [[0.0, 0.0, 0.0]]),
    "std of equal values, ddof=1": (lambda x: mg.std(x, ddof=1), [[2.0, 2.0]], [[0.0, 0.0]]),
    "std along an axis with one equal row": (
        lambda x: mg.std(x, axis=1).sum(), [[[1.0, 1.0], [0.0, 2.0]]], [[[0.0, 0.0],
                                                                          [-0.5, 0.5]]]),
    "var without degrees of freedom": (lambda x: mg.var(x, ddof=1), [[3.0]], [[0.0]]),
    "std without degrees of freedom": (lambda x: mg.std(x, ddof=2), [[3.0, 1.0]],
                                       [[0.0, 0.0]]),
    "hypot at the origin": (lambda a, b: mg.hypot(a, b).sum(), [[0.0, 3.0], [0.0, 4.0]],
                            [[0.0, 0.6], [0.0, 0.8]]),
    "arctan2 at the origin": (lambda a, b: mg.arctan2(a, b).sum(), [[0.0], [0.0]],
                              [[0.0], [0.0]]),
    "abs at 0": (lambda x: mg.abs(x).sum(), [[0.0, -1.0]], [[0.0, -1.0]]),
    "floor at an integer": (lambda x: mg.floor(x).sum(), [[1.0, -2.0]], [[0.0, 0.0]]),
    "round at a half": (lambda x: mg.round(x).sum(), [[0.5, 1.5]], [[0.0, 0.0]]),
    "remainder by 0": (lambda a, b: mg.remainder(a, b).sum(), [[1.0], [0.0]],
                       [[1.0], [0.0]]),
    "norm at 0": (lambda x: mg.linalg.norm(x), [[0.0, 0.0]], [[0.0, 0.0]]),
    "norm along an axis, one vector 0": (
        lambda x: mg.linalg.norm(x, axis=1), [[[0.0, 0.0], [3.0, 4.0]]],
        [[[0.0, 0.0], [0.6, 0.8]]]),
    "3-norm at 0": (lambda x: mg.linalg.norm(x, ord=3), [[0.0, 0.0]], [[0.0, 0.0]]),
    "0.5-norm with an entry 0": (lambda x: mg.linalg.norm(x, ord=0.5), [[0.0, 4.0]],
                                 [[0.0, 1.0]]),
    "Frobenius norm at 0": (lambda x: mg.linalg.norm(x, "fro"), [np.zeros((2, 2))],
                            [np.zeros((2, 2))]),
    "eigenvalues, repeated": (lambda a: mg.linalg.eigh(symmetric(a)).eigenvalues,
                              [2 * np.eye(3)], [np.eye(3)]),
    "eigenvectors of a repeated eigenvalue": (
        lambda a: mg.linalg.eigh(symmetric(a)).eigenvectors ** 2, [np.diag([1.0, 1.0, 2.0])],
        [np.zeros((3, 3))]),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", KINKS)
def test_subgradient_at_points_without_a_derivative(name):
    fn, arrays, expected = KINKS[name]
    with np.errstate(all="ignore"):
        grads, seconds = first_and_second(lambda *xs: fn(*xs).sum(), *arrays)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, atol=1e-12)
    for h in seconds:
        assert np.isfinite(h).all(), f"{name}: second derivative {h}"
