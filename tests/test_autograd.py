"""The engine's behaviour: backward, accumulation, retained and freed graphs, higher order,
no_grad, dtypes, devices, errors, and memory over many training steps."""
import gc
import tracemalloc

import numpy as np
import pytest

import minigen as mg


def test_backward_fills_leaf_grads():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    assert x.grad.dtype == np.float32 and not x.grad.requires_grad


def test_grads_accumulate_until_reset():
    x = mg.tensor([1.0, -2.0], requires_grad=True)
    for _ in range(3):
        (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [9.0, 9.0])
    x.grad = None
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_broadcast_gradients_come_back_in_input_shape():
    a = mg.randn(3, 1, requires_grad=True)
    b = mg.randn(4, requires_grad=True)
    c = mg.randn((), requires_grad=True)
    ((a * b + c) ** 2).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == ()
    full = 2 * (a.numpy() * b.numpy() + c.numpy())
    np.testing.assert_allclose(a.grad.numpy()[:, 0], (full * b.numpy()).sum(1), rtol=1e-5)
    np.testing.assert_allclose(c.grad.numpy(), full.sum(), rtol=1e-5)


def test_shared_subexpression_gets_both_paths():
    x = mg.tensor(2.0, requires_grad=True)
    y = x * x
    (y + y * x).backward()  # x^2 + x^3 -> 2x + 3x^2
    assert x.grad.item() == pytest.approx(16.0)


def test_chain_of_100000_ops_backpropagates():
    x = mg.tensor(1.0, dtype="float64", requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    y.backward()
    assert x.grad.item() == pytest.approx(1.00001 ** 100_000, rel=1e-9)


def test_freed_graph_raises_and_retained_graph_does_not():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (mg.exp(x) * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]) * [2.0, 3.0], rtol=1e-6)
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()


def test_backward_releases_saved_arrays():
    x = mg.randn(5, requires_grad=True)
    h = mg.tanh(x)
    y = (h * h).sum()
    node = h._node
    y.backward()
    assert node.inputs is None and not hasattr(node, "_output")


def test_second_and_third_derivatives():
    x = mg.tensor(1.5, dtype="float64", requires_grad=True)
    y = x ** 4
    (d1,) = mg.grad(y, x, create_graph=True)
    (d2,) = mg.grad(d1, x, create_graph=True)
    (d3,) = mg.grad(d2, x)
    assert (d1.item(), d2.item(), d3.item()) == pytest.approx(
        (4 * 1.5 ** 3, 12 * 1.5 ** 2, 24 * 1.5))


def test_backward_with_create_graph_gives_differentiable_grad():
    x = mg.tensor([0.3, -0.7], dtype="float64", requires_grad=True)
    mg.sin(x).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    g = x.grad
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -np.sin([0.3, -0.7]))


def test_grad_leaves_dot_grad_alone_and_handles_unused_inputs():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    unused = mg.tensor([5.0], requires_grad=True)
    gx, gu = mg.grad((x ** 2).sum(), [x, unused])
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])
    np.testing.assert_allclose(gu.numpy(), [0.0])
    assert x.grad is None and unused.grad is None


def test_grad_with_respect_to_an_intermediate_tensor():
    # the WGAN-GP pattern: a penalty on the critic's gradient with respect to its input
    def penalty(w):
        h = mg.tensor([0.5, -1.0], dtype="float64", requires_grad=True) * 2.0
        (gh,) = mg.grad(mg.tanh(h @ w).sum(), h, create_graph=True)
        return ((gh ** 2).sum() - 1.0) ** 2

    w = mg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float64", requires_grad=True)
    penalty(w).backward()
    assert w.grad is not None and w.grad.shape == (2, 2)
    assert mg.gradcheck(penalty, [w])


def test_hessian_vector_product_matches_closed_form():
    a = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = mg.tensor([0.2, -0.4], dtype="float64", requires_grad=True)
    v = mg.tensor([1.0, 0.5], dtype="float64")
    f = 0.5 * (x @ mg.tensor(a) @ x) + mg.sum(x ** 3)
    (g,) = mg.grad(f, x, create_graph=True)
    (hv,) = mg.grad((g * v).sum(), x)
    hessian = a + np.diag(6 * x.numpy())
    np.testing.assert_allclose(hv.numpy(), hessian @ v.numpy())


def test_no_grad_records_nothing():
    x = mg.randn(3, requires_grad=True)
    with mg.no_grad():
        y = mg.exp(x) * 2.0
    assert not y.requires_grad and y.is_leaf

    @mg.no_grad()
    def f(t):
        return t * t

    assert not f(x).requires_grad
    assert mg.is_grad_enabled()
    with mg.no_grad(), mg.enable_grad():
        assert (x * x).requires_grad


def test_detach_cuts_the_graph():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    z = (y.detach() * x).sum()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 4.0])


def test_user_function_with_double_backward():
    class Cube(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x ** 3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.inputs
            return grad * 3.0 * x * x

    x = mg.tensor([0.5, -1.2], dtype="float64", requires_grad=True)
    assert mg.gradcheck(lambda t: Cube.apply(t), [x])
    assert mg.gradgradcheck(lambda t: Cube.apply(t), [x])


def test_gradcheck_reports_the_wrong_input_and_entry():
    class BadSquare(mg.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * a + b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.inputs
            return grad * 2.0 * a, grad * 1.5  # d/db is 1, not 1.5

    a, b = mg.randn(3, dtype="float64"), mg.randn(2, 1, dtype="float64")
    with pytest.raises(mg.GradcheckError, match=r"input 1 \(shape \(2, 1\)\).*expected 1 "):
        mg.gradcheck(lambda p, q: BadSquare.apply(p, q), [a, b])
    assert mg.gradcheck(lambda p, q: BadSquare.apply(p, q), [a, b],
                        raise_exception=False) is False


def test_gradcheck_of_views_and_nans():
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert mg.gradcheck(lambda t: t.reshape(-1), [x])  # an output that views the input
    assert mg.gradgradcheck(lambda t: t[1:] + 0.0, [x])

    class NanGrad(mg.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2.0

        @staticmethod
        def backward(ctx, grad):
            return grad * float("nan")

    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(lambda t: NanGrad.apply(t), [x])


def test_dtypes_and_promotion():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([1.0], dtype="float64").dtype == np.float64
    assert mg.zeros(2, 3).dtype == np.float32 and mg.randn(2).dtype == np.float32
    x32, x64 = mg.ones(2, requires_grad=True), mg.ones(2, dtype="float64", requires_grad=True)
    assert (x32 * 0.5).dtype == np.float32  # Python scalars do not promote
    y = (x32 * x64).sum()
    assert y.dtype == np.float64
    y.backward()
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    assert (mg.tensor([1, 2]) * 0.5).dtype == np.float64  # as in NumPy


def test_integer_tensors_are_not_differentiable():
    with pytest.raises(TypeError, match="floating-point"):
        mg.tensor([1, 2], requires_grad=True)
    i = mg.tensor([1, 2])
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="not floating-point"):
        mg.grad((x * i).sum(), [i])
    assert not (x > 1.0).requires_grad and (x > 1.0).dtype == bool
    assert not mg.argmax(x).requires_grad


def test_non_scalar_backward_needs_a_gradient():
    x = mg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\).*grad="):
        (x * 2.0).backward()
    (x * 2.0).backward(mg.ones(3))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="grad of shape"):
        (x * 2.0).backward(mg.ones(4))


def test_backward_of_tensor_without_graph_is_an_error():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.ones(2).sum().backward()


def test_shape_errors_name_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"Add.*\(2, 3\).*\(4,\)"):
        mg.ones(2, 3) + mg.ones(4)
    with pytest.raises(ValueError, match=r"Matmul.*\(2, 3\), \(2, 3\)"):
        mg.ones(2, 3) @ mg.ones(2, 3)
    with pytest.raises(np.exceptions.AxisError, match="axis 2"):
        mg.ones(2, 3).sum(axis=2)


def test_tensors_are_immutable():
    x = mg.ones(3)
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 2.0


def test_devices():
    x = mg.ones(2)
    assert x.device == "cpu" and x.to("cpu") is x
    with pytest.raises(ValueError, match="unknown device"):
        mg.ones(2, device="tpu")
    if mg.cuda_available():
        y = x.to("cuda")
        assert y.device == "cuda" and isinstance(y.numpy(), np.ndarray)
        with pytest.raises(RuntimeError, match="different devices"):
            x + y
    else:
        with pytest.raises(RuntimeError, match="CuPy"):
            x.to("cuda")


def test_random_is_reproducible():
    mg.random.seed(3)
    a = mg.randn(4)
    mg.random.seed(3)
    b = mg.randn(4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g1, g2 = mg.random.Generator(7), mg.random.Generator(7)
    np.testing.assert_array_equal(g1.uniform((3,)).numpy(), g2.uniform((3,)).numpy())


def _train_steps(n, w, b, x, y):
    for _ in range(n):
        logits = x @ w + b
        loss = (mg.softplus(logits) - y * logits).mean()
        w.grad = b.grad = None
        loss.backward()
        with mg.no_grad():
            w.data -= 0.1 * w.grad.data
            b.data -= 0.1 * b.grad.data
    return loss.item()


def test_memory_does_not_grow_over_1000_training_steps():
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((64, 32)).astype(np.float32))
    y = mg.tensor((rng.random((64, 1)) < 0.5).astype(np.float32))
    w = mg.tensor(rng.standard_normal((32, 1)).astype(np.float32) * 0.1, requires_grad=True)
    b = mg.zeros(1, requires_grad=True)
    first = _train_steps(20, w, b, x, y)
    gc.collect()
    tracemalloc.start()
    _train_steps(100, w, b, x, y)
    gc.collect()
    after_100 = tracemalloc.get_traced_memory()[0]
    last = _train_steps(1000, w, b, x, y)
    gc.collect()
    after_1100 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert last < first
    assert after_1100 - after_100 < 20_000, (after_100, after_1100)


def test_elementwise_op_makes_no_hidden_copy():
    x = mg.ones(10 ** 6, requires_grad=True)
    y = mg.ones(10 ** 6)
    tracemalloc.start()
    z = x * y
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1.1 * z.data.nbytes, peak


def test_jacobian_vector_product_by_two_reverse_passes():
    """Forward mode is out of scope (README); J v is the gradient in u of (J^T u) . v, which
    second-order reverse mode gives, as docs/numpy.md shows."""
    a = np.arange(6.0).reshape(2, 3)
    x = mg.tensor([0.5, 1.0, 2.0], dtype="float64", requires_grad=True)
    v = mg.tensor([1.0, -1.0, 0.5], dtype="float64")
    y = mg.tensor(a) @ mg.sin(x)
    u = mg.zeros(y.shape, dtype=y.dtype, requires_grad=True)
    (vjp,) = mg.grad(y, x, grad_outputs=u, create_graph=True)
    (jv,) = mg.grad(vjp, u, grad_outputs=v)
    np.testing.assert_allclose(jv.numpy(), a @ (np.cos(x.numpy()) * v.numpy()), rtol=1e-14)
