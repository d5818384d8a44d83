"""Forward values and gradients of the op library against PyTorch, in float64.

Each case runs the same function on the same random inputs in minigen and in PyTorch and
compares the outputs and the vector-Jacobian products with respect to every input (the
cotangent is random, not ones, so a wrong sign or a transposed gradient cannot hide).
Where the two compute the same formula the results agree to rounding, hence rtol=1e-10.
PyTorch is only a test dependency: without it this module is skipped.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch parity tests need PyTorch "
                                            "(pip install -e '.[bench]')")
import torch.nn.functional as TF  # noqa: E402

import minigen as mg  # noqa: E402

RTOL, ATOL = 1e-10, 1e-12


def _as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


def check(mg_fn, torch_fn, *arrays, rtol=RTOL, atol=ATOL, seed=0):
    """Compare mg_fn and torch_fn (each taking one tensor per array) in value and gradient.

    Integer and boolean arrays are passed as constants; float arrays require grad.
    """
    diff = [np.issubdtype(a.dtype, np.floating) for a in arrays]
    mg_in = [mg.tensor(a, requires_grad=d) for a, d in zip(arrays, diff)]
    t_in = [torch.tensor(a, requires_grad=d) for a, d in zip(arrays, diff)]
    mg_out, t_out = _as_list(mg_fn(*mg_in)), _as_list(torch_fn(*t_in))
    assert len(mg_out) == len(t_out)
    for i, (y, yt) in enumerate(zip(mg_out, t_out)):
        assert y.shape == tuple(yt.shape), f"output {i}: shape {y.shape} vs torch {tuple(yt.shape)}"
        assert y.dtype == np.float64, f"output {i}: dtype {y.dtype}"
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"forward, output {i}")
    wrt = [i for i, d in enumerate(diff) if d]
    if not wrt:
        return
    rng = np.random.default_rng(seed + 1)
    cotangents = [rng.standard_normal(tuple(yt.shape)) for yt in t_out]
    grads = mg.grad(mg_out, [mg_in[i] for i in wrt],
                    grad_outputs=[mg.tensor(c) for c in cotangents])
    t_grads = torch.autograd.grad(t_out, [t_in[i] for i in wrt],
                                  grad_outputs=[torch.tensor(c) for c in cotangents],
                                  allow_unused=True, materialize_grads=True)
    for i, g, gt in zip(wrt, grads, t_grads):
        assert g.shape == arrays[i].shape, f"grad of input {i}: shape {g.shape}"
        np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient w.r.t. input {i}")


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.2, 3.0, shape)


# ---------------------------------------------------------------- elementwise, unary

UNARY = {
    "negative": (lambda x: -x, lambda x: -x, randn),
    "exp": (mg.exp, torch.exp, randn),
    "log": (mg.log, torch.log, positive),
    "log1p": (mg.log1p, torch.log1p, positive),
    "expm1": (mg.expm1, torch.expm1, randn),
    "sqrt": (mg.sqrt, torch.sqrt, positive),
    "square": (mg.square, torch.square, randn),
    "abs": (mg.abs, torch.abs, randn),
    "sin": (mg.sin, torch.sin, randn),
    "cos": (mg.cos, torch.cos, randn),
    "tanh": (mg.tanh, torch.tanh, randn),
    "sigmoid": (mg.sigmoid, torch.sigmoid, randn),
    "erf": (mg.erf, torch.erf, randn),
    "softplus": (mg.softplus, TF.softplus, randn),
    "log_sigmoid": (mg.log_sigmoid, TF.logsigmoid, randn),
    "relu": (mg.relu, torch.relu, randn),
    "leaky_relu": (mg.leaky_relu, TF.leaky_relu, randn),
    "leaky_relu_0.2": (lambda x: mg.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), randn),
    "elu": (mg.elu, TF.elu, randn),
    "elu_alpha": (lambda x: mg.elu(x, alpha=1.7), lambda x: TF.elu(x, alpha=1.7), randn),
    "gelu": (mg.gelu, TF.gelu, randn),
    "gelu_tanh": (lambda x: mg.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh"), randn),
    "clip_both": (lambda x: mg.clip(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7), randn),
    "clip_low": (lambda x: mg.clip(x, -0.5), lambda x: torch.clamp(x, min=-0.5), randn),
    "clip_high": (lambda x: mg.clip(x, None, 0.7), lambda x: torch.clamp(x, max=0.7), randn),
    "pow_int": (lambda x: x ** 3, lambda x: x ** 3, randn),
    "pow_float": (lambda x: x ** 1.7, lambda x: x ** 1.7, positive),
    "rpow": (lambda x: 2.5 ** x, lambda x: 2.5 ** x, randn),
    "scalar_ops": (lambda x: (2.0 - x) * 3.0 / (x * x + 1.0) + 0.5,
                   lambda x: (2.0 - x) * 3.0 / (x * x + 1.0) + 0.5, randn),
    "rdiv": (lambda x: 1.5 / x, lambda x: 1.5 / x, positive),
}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("shape", [(), (7,), (3, 4, 5)])
def test_unary(name, shape):
    f, ft, make = UNARY[name]
    check(f, ft, make(*shape, seed=len(shape)))


# Far into both tails, where naive formulas overflow or cancel. Where both sides compute
# the same formula the results must agree to rounding even relative to tiny values
# (atol=1e-300). tanh and gelu(tanh) differentiate through 1 - tanh^2 and expm1 through
# expm1(x) + 1 on both sides, so their gradients carry an absolute error of about one ulp
# of 1 and are compared to that.
TAILS = {
    "sigmoid": (mg.sigmoid, torch.sigmoid, 1e-300),
    "softplus": (mg.softplus, lambda x: TF.softplus(x, threshold=1000.0), 1e-300),
    "log_sigmoid": (mg.log_sigmoid, TF.logsigmoid, 1e-300),
    "exp": (mg.exp, torch.exp, 1e-300),
    "expm1": (mg.expm1, torch.expm1, 1e-15),
    "tanh": (mg.tanh, torch.tanh, 1e-15),
    "gelu_tanh": (lambda x: mg.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh"), 1e-15),
}
TAIL_X = np.concatenate([np.linspace(-40.0, 40.0, 81), [-700.0, -100.0, 100.0, 700.0]])


@pytest.mark.parametrize("name", list(TAILS))
def test_unary_tails(name):
    f, ft, atol = TAILS[name]
    x = TAIL_X if name not in ("exp", "expm1") else np.clip(TAIL_X, -700.0, 40.0)
    check(f, ft, x, atol=atol)


def test_gelu_tails():
    # PyTorch computes gelu as x (1 + erf(x / sqrt 2)) / 2, which cancels below about
    # x = -5 (relative error 0.02 at -8, and -0.0 from -9 on, where x Phi(x) is still
    # -1e-20). Ours takes Phi from erfc there, so the lower tail is checked against the
    # exact values (mpmath, 50 digits): scipy's erfc keeps about 13 digits that far out.
    # Subnormal results (x <= -38) keep few bits and are compared to atol=1e-300.
    x = TAIL_X
    check(mg.gelu, TF.gelu, x[x >= -4.0], atol=1e-300)
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        want = np.array([float(mpmath.mpf(v) * mpmath.ncdf(v)) for v in x])
        want_grad = np.array([float(mpmath.ncdf(v) + mpmath.mpf(v) * mpmath.npdf(v))
                              for v in x])
    xt = mg.tensor(x, requires_grad=True)
    y = mg.gelu(xt)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(xt.grad.numpy(), want_grad, rtol=1e-12, atol=1e-300)


def test_elu_negative_tail_gradient():
    # d elu / dx = alpha * e^x for x < 0. PyTorch computes e^x; taking it as expm1(x) + 1
    # cancels to 0 for x < -37 (float64) or x < -17 (float32).
    x = np.array([-3.0, -10.0, -20.0, -30.0, -40.0, -60.0])
    check(mg.elu, TF.elu, x, atol=1e-300)
    check(lambda a: mg.elu(a, alpha=0.5), lambda a: TF.elu(a, alpha=0.5), x, atol=1e-300)


# ---------------------------------------------------------------- elementwise, binary

BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((5,), ()),
                   ((), (2, 3))]

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, randn, randn),
    "subtract": (lambda a, b: a - b, lambda a, b: a - b, randn, randn),
    "multiply": (lambda a, b: a * b, lambda a, b: a * b, randn, randn),
    "divide": (lambda a, b: a / b, lambda a, b: a / b, randn, positive),
    "power": (lambda a, b: a ** b, lambda a, b: a ** b, positive, randn),
    "maximum": (mg.maximum, torch.maximum, randn, randn),
    "minimum": (mg.minimum, torch.minimum, randn, randn),
    "fn_add": (mg.add, torch.add, randn, randn),
    "fn_subtract": (mg.subtract, torch.subtract, randn, randn),
    "fn_multiply": (mg.multiply, torch.multiply, randn, randn),
    "fn_divide": (mg.divide, torch.divide, randn, positive),
    "fn_power": (mg.power, torch.pow, positive, randn),
}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", BROADCAST_PAIRS, ids=str)
def test_binary(name, shapes):
    f, ft, make_a, make_b = BINARY[name]
    check(f, ft, make_a(*shapes[0], seed=1), make_b(*shapes[1], seed=2))


def test_maximum_minimum_with_scalars():
    x = randn(4, 3)
    check(lambda a: mg.maximum(a, 0.3) + mg.minimum(-0.2, a),
          lambda a: torch.clamp(a, min=0.3) + torch.clamp(a, max=-0.2), x)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4), (3, 4)), ((3, 4), (4,), (3, 1)),
                                    ((2, 1, 4), (3, 4), (4,))], ids=str)
def test_where(shapes):
    cond_shape, a_shape, b_shape = shapes
    cond = randn(*cond_shape, seed=3) > 0
    check(lambda c, a, b: mg.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
          cond, randn(*a_shape, seed=4), randn(*b_shape, seed=5))


def test_where_with_scalar_branch():
    x = randn(3, 5)
    check(lambda a: mg.where(a > 0.1, a * 2.0, 0.25),
          lambda a: torch.where(a > 0.1, a * 2.0, torch.tensor(0.25, dtype=a.dtype)), x)


# ---------------------------------------------------------------- reductions

AXES = [None, 0, -1, 1, (0, 2), (0, 1, 2), (-1, 0)]


def _dims(axis, ndim):
    return tuple(range(ndim)) if axis is None else axis


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_mean_logsumexp(axis, keepdims):
    x = randn(3, 4, 5, seed=6)
    check(lambda a: mg.sum(a, axis=axis, keepdims=keepdims),
          lambda a: torch.sum(a, dim=_dims(axis, 3), keepdim=keepdims), x)
    check(lambda a: a.mean(axis=axis, keepdims=keepdims),
          lambda a: torch.mean(a, dim=_dims(axis, 3), keepdim=keepdims), x)
    check(lambda a: mg.logsumexp(a, axis=axis, keepdims=keepdims),
          lambda a: torch.logsumexp(a, dim=_dims(axis, 3), keepdim=keepdims), x)


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_var_std(axis, keepdims, ddof):
    x = randn(3, 4, 5, seed=7)
    check(lambda a: mg.var(a, axis=axis, ddof=ddof, keepdims=keepdims),
          lambda a: torch.var(a, dim=_dims(axis, 3), correction=ddof, keepdim=keepdims), x)
    check(lambda a: a.std(axis=axis, ddof=ddof, keepdims=keepdims),
          lambda a: torch.std(a, dim=_dims(axis, 3), correction=ddof, keepdim=keepdims), x)


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_min(axis, keepdims):
    x = randn(3, 4, 5, seed=8)
    check(lambda a: mg.max(a, axis=axis, keepdims=keepdims),
          lambda a: torch.amax(a, dim=_dims(axis, 3), keepdim=keepdims), x)
    check(lambda a: a.min(axis=axis, keepdims=keepdims),
          lambda a: torch.amin(a, dim=_dims(axis, 3), keepdim=keepdims), x)


def test_max_min_ties_share_the_gradient():
    # amax/amin split the gradient evenly between tied extremes, as minigen documents
    x = np.array([[1.0, 3.0, 3.0, -2.0], [0.5, 0.5, 0.5, 0.5], [-1.0, -4.0, 2.0, -4.0]])
    for axis in (None, 0, 1):
        check(lambda a: mg.max(a, axis=axis), lambda a: torch.amax(a, dim=_dims(axis, 2)), x)
        check(lambda a: mg.min(a, axis=axis), lambda a: torch.amin(a, dim=_dims(axis, 2)), x)


def _torch_prod(a, axis, keepdims):
    dims = sorted(d % a.ndim for d in _dims(axis, a.ndim)) if not isinstance(axis, int) \
        else [axis % a.ndim]
    for d in reversed(dims):
        a = torch.prod(a, dim=d, keepdim=True)
    if not keepdims:
        a = a.reshape([n for i, n in enumerate(a.shape) if i not in dims])
    return a


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_prod(axis, keepdims):
    x = np.random.default_rng(9).uniform(0.5, 1.5, (3, 4, 5)) * np.sign(randn(3, 4, 5))
    check(lambda a: mg.prod(a, axis=axis, keepdims=keepdims),
          lambda a: _torch_prod(a, axis, keepdims), x)


@pytest.mark.parametrize("zeros", [[(0, 1)], [(0, 1), (2, 3)], [(1, 0), (1, 2)]], ids=str)
def test_prod_with_zeros(zeros):
    # one zero in a row: its gradient is the product of the others; two: all zero
    x = randn(3, 5, seed=10)
    for ij in zeros:
        x[ij] = 0.0
    for axis in (1, 0):
        check(lambda a: mg.prod(a, axis=axis), lambda a: torch.prod(a, dim=axis), x)


@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_prod_lengths(n):
    x = np.random.default_rng(n).uniform(0.5, 1.5, (2, n))
    check(lambda a: mg.prod(a, axis=-1), lambda a: torch.prod(a, dim=-1), x)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_cumsum(axis):
    x = randn(3, 4, 5, seed=11)
    check(lambda a: mg.cumsum(a, axis=axis),
          lambda a: torch.cumsum(a.reshape(-1) if axis is None else a, dim=axis or 0), x)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_log_softmax(axis):
    x = randn(3, 4, 5, seed=12) * 3.0
    check(lambda a: mg.softmax(a, axis=axis), lambda a: torch.softmax(a, dim=axis), x)
    check(lambda a: mg.log_softmax(a, axis=axis), lambda a: torch.log_softmax(a, dim=axis), x)


def test_softmax_logsumexp_large_logits():
    x = randn(4, 6, seed=13) * 300.0
    check(lambda a: mg.softmax(a, axis=-1), lambda a: torch.softmax(a, dim=-1), x)
    check(lambda a: mg.log_softmax(a, axis=-1), lambda a: torch.log_softmax(a, dim=-1), x)
    check(lambda a: mg.logsumexp(a, axis=1), lambda a: torch.logsumexp(a, dim=1), x)


# ---------------------------------------------------------------- products

MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)),
                 ((2, 1, 3, 4), (5, 4, 2)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (4,)), ((4,), (2, 4, 3)), ((1, 3, 4), (2, 4, 6))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes):
    a, b = randn(*shapes[0], seed=14), randn(*shapes[1], seed=15)
    check(lambda x, y: x @ y, lambda x, y: x @ y, a, b)
    check(mg.matmul, torch.matmul, a, b)


@pytest.mark.parametrize("shapes", [((4,), (4,)), ((3, 4), (4,)), ((4,), (4, 2)),
                                    ((3, 4), (4, 2)), ((), (3,))], ids=str)
def test_dot(shapes):
    a, b = randn(*shapes[0], seed=16), randn(*shapes[1], seed=17)
    check(mg.dot, lambda x, y: torch.tensordot(x, y, dims=min(x.ndim, 1) if y.ndim else 0), a, b)


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ij->j", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(5,), (5,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,jk->...ik", [(2, 2, 3, 4), (4, 5)]),
    ("ijk,ik->j", [(3, 4, 5), (3, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("abc,cd->abd", [(1, 3, 4), (4, 2)]),
]


@pytest.mark.parametrize("spec", EINSUMS, ids=lambda s: s[0])
def test_einsum(spec):
    subscripts, shapes = spec
    arrays = [randn(*s, seed=18 + i) for i, s in enumerate(shapes)]
    check(lambda *xs: mg.einsum(subscripts, *xs),
          lambda *xs: torch.einsum(subscripts, *xs), *arrays)


# ---------------------------------------------------------------- moving values around

@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_stack(axis):
    a, b, c = randn(2, 3, 4, seed=20), randn(2, 3, 4, seed=21), randn(2, 3, 4, seed=22)
    check(lambda *xs: mg.concatenate(xs, axis=axis), lambda *xs: torch.cat(xs, dim=axis),
          a, b, c)
    check(lambda *xs: mg.stack(xs, axis=axis), lambda *xs: torch.stack(xs, dim=axis), a, b, c)


def test_concatenate_unequal_lengths():
    a, b = randn(2, 3, seed=23), randn(2, 5, seed=24)
    check(lambda x, y: mg.concatenate([x, y], axis=1), lambda x, y: torch.cat([x, y], 1), a, b)


@pytest.mark.parametrize("split", [(3, 0), (2, 1), ([1, 4], 1), ([2, 2, 5], -1), ([0, 3], 1)],
                         ids=str)
def test_split(split):
    sections, axis = split
    x = randn(6, 6, 5, seed=25)

    def torch_split(a):
        n = a.shape[axis]
        if isinstance(sections, int):
            return torch.split(a, n // sections, dim=axis)
        cuts = [0] + list(sections) + [n]
        return [a.narrow(axis, lo, max(hi - lo, 0)) for lo, hi in zip(cuts, cuts[1:])]

    check(lambda a: mg.split(a, sections, axis=axis), torch_split, x)


@pytest.mark.parametrize("width", [((1, 2), (0, 3)), 1, (2, 1), ((0, 0), (4, 0))], ids=str)
@pytest.mark.parametrize("value", [0.0, -1.5])
def test_pad(width, value):
    x = randn(3, 4, seed=26)
    w = np.broadcast_to(np.asarray(width), (2, 2))
    torch_pad = tuple(int(v) for pair in w[::-1] for v in pair)
    check(lambda a: mg.pad(a, width, value=value),
          lambda a: TF.pad(a, torch_pad, value=value), x)


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)], ids=str)
def test_flip(axis):
    x = randn(2, 3, 4, seed=27)
    dims = (axis,) if isinstance(axis, int) else _dims(axis, 3)
    check(lambda a: mg.flip(a, axis=axis), lambda a: torch.flip(a, dims=dims), x)


@pytest.mark.parametrize("repeats,axis", [(3, 1), (2, None), ([1, 0, 2], 0), (2, -1)], ids=str)
def test_repeat(repeats, axis):
    x = randn(3, 4, seed=28)
    t_repeats = torch.tensor(repeats) if isinstance(repeats, list) else repeats
    check(lambda a: mg.repeat(a, repeats, axis=axis),
          lambda a: torch.repeat_interleave(a, t_repeats, dim=axis), x)


@pytest.mark.parametrize("reps", [2, (2, 3), (1, 2), (2, 1, 3)], ids=str)
def test_tile(reps):
    x = randn(3, 4, seed=29)
    check(lambda a: mg.tile(a, reps), lambda a: torch.tile(a, (reps,) if isinstance(reps, int)
                                                           else reps), x)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_take_along_axis(axis):
    x = randn(4, 5, 3, seed=30)
    shape = list(x.shape)
    shape[axis] = 7  # more picks than entries: indices repeat
    idx = np.random.default_rng(31).integers(0, x.shape[axis], shape)
    check(lambda a, i: mg.take_along_axis(a, i, axis=axis),
          lambda a, i: torch.gather(a, axis % 3, i), x, idx)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_take(axis):
    x = randn(4, 5, seed=32)
    idx = np.array([3, 0, 3, 3, 1])
    check(lambda a: mg.take(a, idx, axis=axis),
          lambda a: (a.reshape(-1)[torch.tensor(idx)] if axis is None
                     else torch.index_select(a, axis, torch.tensor(idx))), x)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_sort(axis):
    x = randn(4, 6, 5, seed=33)
    check(lambda a: mg.sort(a, axis=axis), lambda a: torch.sort(a, dim=axis, stable=True)[0], x)


def test_sort_with_ties():
    # stable sort on both sides sends each tied value's gradient back to the same place
    x = np.array([[2.0, 1.0, 2.0, 1.0, 0.0], [3.0, 3.0, 3.0, -1.0, 3.0]])
    check(lambda a: mg.sort(a, axis=1), lambda a: torch.sort(a, dim=1, stable=True)[0], x)


_IDX = np.array([0, 2, 0, 0, 3])
_IDX2 = np.array([[1, 1], [0, 3]])
_MASK = np.random.default_rng(34).standard_normal((4, 5)) > 0
_ROWS = np.array([True, False, True, True])

GETITEM = {
    "int": lambda a: a[2],
    "negative_int": lambda a: a[-1, 1],
    "slices": lambda a: a[1:3, ::2],
    "none_ellipsis": lambda a: a[None, ..., 1],
    "int_array_repeated": lambda a: a[_IDX],
    "int_array_axis1_repeated": lambda a: a[:, np.array([4, 1, 1, 4])],
    "int_array_2d": lambda a: a[_IDX2],
    "two_int_arrays": lambda a: a[np.array([0, 1, 1, 3]), np.array([2, 2, 2, 0])],
    "int_array_and_slice": lambda a: a[np.array([3, 3, 0]), 1:4],
    "bool_mask_full": lambda a: a[_MASK],
    "bool_mask_rows": lambda a: a[_ROWS],
    "bool_mask_rows_then_col": lambda a: a[_ROWS, 2],
}


def _torch_key(key_fn):
    """The same indexing on a torch tensor: NumPy index arrays become torch tensors."""
    class Recorder:
        def __getitem__(self, key):
            return key
    key = key_fn(Recorder())
    key = key if isinstance(key, tuple) else (key,)
    return tuple(torch.from_numpy(k) if isinstance(k, np.ndarray) else k for k in key)


@pytest.mark.parametrize("name", list(GETITEM))
def test_getitem(name):
    x = randn(4, 5, seed=35)
    key = _torch_key(GETITEM[name])
    check(GETITEM[name], lambda a: a[key], x)


def test_getitem_negative_step():
    x = randn(4, 5, seed=35)
    check(lambda a: a[::-2, 1:], lambda a: torch.flip(a, dims=(0,))[::2, 1:], x)


def test_getitem_with_tensor_keys():
    x = randn(4, 5, seed=36)
    check(lambda a: a[mg.tensor(_IDX)] + 0.0 * a[mg.tensor(_MASK)].sum(),
          lambda a: a[torch.from_numpy(_IDX)] + 0.0 * a[torch.from_numpy(_MASK)].sum(), x)


SHAPE_OPS = {
    "reshape": (lambda a: a.reshape(4, 6), lambda a: a.reshape(4, 6)),
    "reshape_infer": (lambda a: a.reshape(-1, 3), lambda a: a.reshape(-1, 3)),
    "transpose": (lambda a: a.transpose(), lambda a: a.permute(2, 1, 0)),
    "transpose_axes": (lambda a: mg.transpose(a, (1, 2, 0)), lambda a: a.permute(1, 2, 0)),
    "T": (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
    "swapaxes": (lambda a: mg.swapaxes(a, 0, 2), lambda a: a.transpose(0, 2)),
    "moveaxis": (lambda a: mg.moveaxis(a, 0, -1), lambda a: torch.movedim(a, 0, -1)),
    "expand_dims": (lambda a: mg.expand_dims(a, 1), lambda a: a.unsqueeze(1)),
    "squeeze": (lambda a: mg.squeeze(mg.expand_dims(a, 0), 0), lambda a: a),
    "broadcast_to": (lambda a: mg.broadcast_to(a[:, :1], (5, 2, 3, 4)),
                     lambda a: a[:, :1].expand(5, 2, 3, 4)),
}


@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_ops(name):
    f, ft = SHAPE_OPS[name]
    check(f, ft, randn(2, 3, 4, seed=37))


# ---------------------------------------------------------------- compositions

def test_mlp_loss_and_parameter_gradients():
    rng = np.random.default_rng(38)
    x, w1, b1 = rng.standard_normal((8, 5)), rng.standard_normal((5, 16)), rng.standard_normal(16)
    w2, b2 = rng.standard_normal((16, 3)), rng.standard_normal(3)
    labels = rng.integers(0, 3, 8)

    def mg_loss(x, w1, b1, w2, b2):
        h = mg.gelu(x @ w1 + b1)
        logp = mg.log_softmax(h @ w2 + b2, axis=-1)
        return -mg.take_along_axis(logp, labels[:, None], axis=1).mean()

    def torch_loss(x, w1, b1, w2, b2):
        h = TF.gelu(x @ w1 + b1)
        return TF.cross_entropy(h @ w2 + b2, torch.from_numpy(labels))

    check(mg_loss, torch_loss, x, w1, b1, w2, b2)


def test_backward_accumulates_like_torch():
    x = randn(3, 4, seed=39)
    a, at = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (a * a).sum().backward()
    mg.tanh(a).mean().backward()
    (at * at).sum().backward()
    torch.tanh(at).mean().backward()
    np.testing.assert_allclose(a.grad.numpy(), at.grad.numpy(), rtol=RTOL, atol=ATOL)


# ---------------------------------------------------------------- second order

SECOND_ORDER = ["exp", "log", "sqrt", "tanh", "sigmoid", "softplus", "log_sigmoid", "erf",
                "gelu", "gelu_tanh", "elu", "sin", "cos", "pow_float", "rdiv", "scalar_ops"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivative_unary(name):
    f, ft, make = UNARY[name]
    x = make(6, seed=40)
    w, v = randn(6, seed=41), randn(6, seed=42)
    a = mg.tensor(x, requires_grad=True)
    (g,) = mg.grad(f(a), a, grad_outputs=mg.tensor(w), create_graph=True)
    (gg,) = mg.grad(g, a, grad_outputs=mg.tensor(v))
    at = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad(ft(at), at, grad_outputs=torch.tensor(w), create_graph=True)
    (ggt,) = torch.autograd.grad(gt, at, grad_outputs=torch.tensor(v))
    np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gg.numpy(), ggt.numpy(), rtol=RTOL, atol=ATOL)


def test_hessian_vector_product_of_mlp():
    """H v for a two-layer net's loss in all parameters, by double backward on both sides."""
    rng = np.random.default_rng(43)
    x = rng.standard_normal((6, 4))
    target = rng.standard_normal((6, 2))
    params = [rng.standard_normal(s) * 0.7 for s in [(4, 8), (8,), (8, 2), (2,)]]
    vs = [rng.standard_normal(p.shape) for p in params]

    def loss(lib, act, soft, xx, w1, b1, w2, b2):
        out = soft(act(xx @ w1 + b1) * 1.5) @ w2 + b2
        return ((out - lib(target)) ** 2).mean() + (w1 * w1).sum() * 1e-2

    ps = [mg.tensor(p, requires_grad=True) for p in params]
    grads = mg.grad(loss(mg.tensor, mg.tanh, mg.softplus, mg.tensor(x), *ps), ps,
                    create_graph=True)
    gv = sum((g * mg.tensor(v)).sum() for g, v in zip(grads, vs))
    hvp = mg.grad(gv, ps)

    pts = [torch.tensor(p, requires_grad=True) for p in params]
    t_grads = torch.autograd.grad(loss(torch.tensor, torch.tanh, TF.softplus,
                                       torch.tensor(x), *pts), pts, create_graph=True)
    t_gv = sum((g * torch.tensor(v)).sum() for g, v in zip(t_grads, vs))
    t_hvp = torch.autograd.grad(t_gv, pts)

    for i, (g, gt) in enumerate(zip(grads, t_grads)):
        np.testing.assert_allclose(g.numpy(), gt.detach().numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"gradient of parameter {i}")
    for i, (h, ht) in enumerate(zip(hvp, t_hvp)):
        np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"Hessian-vector product, parameter {i}")
