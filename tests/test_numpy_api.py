"""NumPy's own functions on Tensors (minigen/numpy_api.py): they run minigen's ops and keep
the graph; what has no minigen op says so; np.asarray of a Tensor in a recorded graph
refuses; and minigen's own calls never go through the protocols.

The main check reuses test_op_forward's NumPy references: each is NumPy code, so called on
Tensors instead of arrays it must give the minigen op's values and gradients.
"""
import hypothesis.strategies as st
import numpy as np
import pytest
import scipy.special as sp
from hypothesis import given, settings
from test_op_forward import REFERENCES
from test_op_gradients import SPECS, as_list

import minigen as mg

# references that are not NumPy code on their arguments: np.r_ and np.c_ are index objects,
# not functions NumPy lets a Tensor override (see test_index_tricks_refuse_tensors_in_a_graph),
# and scipy.special.softmax and log_softmax begin with np.asarray (which refuses, as it must)
NOT_DISPATCHED = {"r_", "c_", "softmax", "log_softmax"}


@pytest.mark.parametrize("name", sorted(set(REFERENCES) - NOT_DISPATCHED))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_numpy_code_on_tensors_runs_minigen_ops(name, data):
    """Values equal to minigen's own op, to the last bit but for reassociation, and the same
    gradient, for every spec with a NumPy reference."""
    case = data.draw(SPECS[name])
    results = []
    for fn in (REFERENCES[name], case.fn):
        rng = np.random.default_rng(0)
        xs = [mg.tensor(a, requires_grad=True) for a in case.arrays]
        ys = as_list(fn(*xs, **case.params))
        assert all(isinstance(y, mg.Tensor) for y in ys), [type(y) for y in ys]
        live = [y for y in ys if y.requires_grad]
        weights = [mg.tensor(rng.standard_normal(y.shape)) for y in live]
        grads = mg.grad(live, xs, grad_outputs=weights) if live else ()
        results.append([y.numpy() for y in ys] + [g.numpy() for g in grads])
    assert len(results[0]) == len(results[1])
    for got, expected in zip(*results):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def logistic_loss(w, x, labels):
    """Plain NumPy: the mean negative log-likelihood of a logistic regression."""
    logits = np.dot(x, w)
    return np.mean(np.logaddexp(0.0, -labels * logits)) + 0.5 * np.sum(w ** 2)


def test_a_plain_numpy_function_is_differentiated_unchanged():
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((20, 3)), np.sign(rng.standard_normal(20))
    w0 = rng.standard_normal(3)
    w = mg.tensor(w0, requires_grad=True)
    loss = logistic_loss(w, x, labels)
    assert isinstance(loss, mg.Tensor)
    np.testing.assert_allclose(loss.item(), logistic_loss(w0, x, labels), rtol=1e-14)
    (grad,) = mg.grad(loss, w)
    margin = labels * (x @ w0)
    expected = -(x * (labels * sp.expit(-margin))[:, None]).mean(0) + w0
    np.testing.assert_allclose(grad.numpy(), expected, rtol=1e-12)
    assert mg.gradgradcheck(lambda t: logistic_loss(t, x, labels), [mg.tensor(w0)])


def hips_tanh(x):
    """HIPS autograd's first example, unchanged."""
    y = np.exp(-2.0 * x)
    return (1.0 - y) / (1.0 + y)


def test_hips_autograd_tanh_example():
    x = mg.tensor(np.linspace(-2, 2, 5), requires_grad=True)
    (g,) = mg.grad(hips_tanh(x).sum(), x)
    np.testing.assert_allclose(g.numpy(), 1 - np.tanh(x.numpy()) ** 2, rtol=1e-12)


OPERATORS = [np.add, np.subtract, np.multiply, np.divide, np.power, np.remainder,
             np.floor_divide, np.matmul, np.maximum, np.hypot]


@pytest.mark.parametrize("op", OPERATORS, ids=lambda op: op.__name__)
def test_an_array_beside_a_tensor_gives_a_tensor_in_the_graph(op):
    """ndarray (op) Tensor and Tensor (op) ndarray, including the operators' ufuncs."""
    a = np.array([1.5, 2.0, 3.25])
    t = mg.tensor([0.75, 1.25, 2.5], dtype="float64", requires_grad=True)
    for y, expected in [(op(a, t), op(a, t.numpy())), (op(t, a), op(t.numpy(), a))]:
        assert isinstance(y, mg.Tensor) and y.requires_grad
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-15)
    assert isinstance(a + t, mg.Tensor) and isinstance(a @ t, mg.Tensor)
    assert isinstance(a % t, mg.Tensor) and isinstance(np.float64(2.0) * t, mg.Tensor)
    assert (np.float64(2.0) * t).dtype == np.float64 and (a < t).dtype == np.bool_


def test_ufunc_reduce_and_accumulate():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    t = mg.tensor(x, requires_grad=True)
    for method, args, expected in [
            (np.add.reduce, {}, np.add.reduce(x)),
            (np.add.reduce, {"axis": 1, "keepdims": True}, np.add.reduce(x, 1, keepdims=True)),
            (np.add.reduce, {"axis": None}, np.add.reduce(x, None)),
            (np.multiply.reduce, {"axis": -1}, np.multiply.reduce(x, -1)),
            (np.maximum.reduce, {}, np.maximum.reduce(x)),
            (np.add.accumulate, {"axis": 1}, np.add.accumulate(x, 1))]:
        y = method(t, **args)
        assert isinstance(y, mg.Tensor) and y.requires_grad
        np.testing.assert_array_equal(y.numpy(), expected)


def test_scipy_special_ufuncs_take_the_same_protocol():
    t = mg.tensor([-1.0, 0.5], dtype="float64", requires_grad=True)
    for fn, op in [(sp.expit, mg.sigmoid), (sp.erf, mg.erf), (sp.log_ndtr, None)]:
        y = fn(t)
        assert isinstance(y, mg.Tensor) and y.requires_grad
        np.testing.assert_allclose(y.numpy(), fn(t.numpy()), rtol=1e-14)


MISSING = [
    (lambda t: np.fft.fft(t), "numpy.fft.fft has no minigen op"),
    (lambda t: np.linalg.svd(t), "numpy.linalg.svd has no minigen op"),
    (lambda t: np.sinc(t), "numpy.sinc has no minigen op"),
    (lambda t: np.spacing(t), "numpy.spacing has no minigen op"),
    (lambda t: np.add.outer(t, t), "numpy.add.outer has no minigen op"),
    (lambda t: np.subtract.reduce(t), "numpy.subtract.reduce has no minigen op"),
    (lambda t: np.sum(t, dtype=np.float32), r"numpy.sum on Tensors: minigen's sum takes no "
                                            r"dtype="),
    (lambda t: np.pad(t, 1, mode="edge"), r"minigen's pad takes no mode= \(got 'edge'\)"),
    (lambda t: np.sin(t, out=np.zeros(4)), "Tensors are immutable"),
    (lambda t: np.exp(t, where=np.ones(4, bool)), "numpy.exp on Tensors takes no where"),
    (lambda t: np.asarray(t), "requires grad was converted to a NumPy array"),
    (lambda t: np.array([t, t]), "requires grad was converted to a NumPy array"),
    (lambda t: np.r_[t, 1.0], "requires grad was converted to a NumPy array"),
]


@pytest.mark.parametrize("call, message", MISSING, ids=[m for _, m in MISSING])
def test_what_cannot_keep_the_graph_says_so(call, message):
    t = mg.tensor(np.linspace(0.1, 1, 4), requires_grad=True)
    with pytest.raises(TypeError, match=message):
        call(t)


def test_index_tricks_refuse_tensors_in_a_graph():
    """np.r_ converts its entries itself; mg.r_ is the differentiable one."""
    t = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="drop it from the graph"):
        np.r_[t, 3.0]
    assert mg.r_[t, 3.0].requires_grad


def test_asarray_gives_the_values_where_no_graph_is_lost():
    """A tensor that does not require grad, or one that does under no_grad: np.asarray and
    np.array give its values (np.asarray without a copy, as x.numpy() does)."""
    t = mg.tensor([1.0, 2.0])
    assert np.asarray(t) is t.data
    copy = np.array(t)
    assert copy is not t.data and np.array_equal(copy, [1.0, 2.0])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    leaf = mg.tensor([3.0], requires_grad=True)
    with mg.no_grad():
        np.testing.assert_array_equal(np.asarray(leaf), [3.0])
    np.testing.assert_array_equal(np.asarray(leaf.detach()), [3.0])
    np.testing.assert_allclose(mg.tensor([0.5]), [0.5])  # np.testing reads Tensors too


def test_functions_without_a_gradient_run_on_the_values():
    t = mg.tensor([[0.0, 1.5], [2.0, np.nan]], requires_grad=True)
    assert np.shape(t) == (2, 2) and np.ndim(t) == 2 and np.size(t) == 4
    assert np.allclose(t, t, equal_nan=True) and not np.array_equal(t, t)
    assert np.count_nonzero(t) == 3
    zeros = np.zeros_like(t)
    assert isinstance(zeros, mg.Tensor) and not zeros.requires_grad and zeros.shape == (2, 2)
    rows, cols = np.nonzero(np.isnan(t))
    assert rows.numpy().tolist() == [1] and cols.numpy().tolist() == [1]
    assert np.logical_and(np.isfinite(t), t > 1).numpy().tolist() == [[False, True],
                                                                       [True, False]]
    rows, cols = np.where(t > 1)  # one argument: the indices, as np.nonzero
    assert rows.numpy().tolist() == [0, 1] and cols.numpy().tolist() == [1, 0]


def refuse(*args, **kwargs):
    raise AssertionError("a minigen op went through NumPy's protocols")


def test_minigen_own_calls_never_go_through_the_protocols(monkeypatch):
    """The dispatch costs minigen's ops nothing: with the protocols made to fail, a forward
    and backward through elementwise ops, reductions, products, shapes, a linear layer,
    the matrix functions and the new ops still run."""
    for name in ("__array__", "__array_ufunc__", "__array_function__"):
        monkeypatch.setattr(mg.Tensor, name, refuse)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    layer = mg.nn.Linear(3, 3, generator=mg.random.Generator(0))
    h = mg.tanh(layer(x)) * 1.1 + 0.5
    h = mg.logsumexp(h, axis=1).sum() + mg.linalg.det(x.T @ x + mg.eye(3)) + mg.std(h)
    h = h + mg.linalg.norm(mg.roll(x, 1)) + mg.hstack([x, x]).sum() + (x % 2.0).sum()
    h = h + mg.einsum("ii", x[:3]) + mg.linspace(x[0, 0], x[1, 1], 3).sum()
    h = h + mg.gradient(x, axis=0).sum() + mg.sinh(x).mean() + mg.kron(x, x).sum()
    (g,) = mg.grad(h, x, create_graph=True)
    mg.grad(g.sum(), x)
