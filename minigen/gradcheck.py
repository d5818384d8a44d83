"""Check backward against central finite differences, in float64.

gradcheck compares the whole Jacobian of fn, built row by row with `grad`, to the one
from (f(x + eps) - f(x - eps)) / 2 eps. gradgradcheck does the same for the function
x, v -> grad(fn(x), x, v, create_graph=True), which checks every second derivative.
"""
import numpy as np

from . import backend
from .autograd import Tensor, grad, is_float


class GradcheckError(AssertionError):
    pass


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _prepare(inputs):
    """float64 leaf copies of the floating inputs; everything else passes through."""
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    prepared, checked = [], []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and is_float(x.dtype):
            x = Tensor(x.data.astype(np.float64), requires_grad=True)
            checked.append(i)
        prepared.append(x)
    if not checked:
        raise ValueError("gradcheck: no floating-point Tensor among the inputs")
    return prepared, checked


def _outputs(fn, args):
    outs = [y for y in _as_list(fn(*args)) if isinstance(y, Tensor) and is_float(y.dtype)]
    if not outs:
        raise ValueError("gradcheck: fn returned no floating-point Tensor")
    return outs


def _analytical(fn, args, checked):
    outs = _outputs(fn, args)
    xs = [args[i] for i in checked]
    jac = [[np.zeros((y.size, x.size)) for x in xs] for y in outs]
    for o, y in enumerate(outs):
        if not y.requires_grad:
            continue
        xp_ones = np.zeros(y.size)
        for r in range(y.size):
            xp_ones[:] = 0
            xp_ones[r] = 1
            seed = xp_ones.reshape(y.shape).astype(y.dtype)
            seed = Tensor(backend.to_device(seed, y.device))
            grads = grad(y, xs, grad_outputs=seed, retain_graph=True)
            for k, g in enumerate(grads):
                jac[o][k][r] = g.numpy().reshape(-1)
    return jac


def _numerical(fn, args, checked, eps):
    outs = _outputs(fn, args)
    jac = [[np.zeros((y.size, args[i].size)) for i in checked] for y in outs]
    for k, i in enumerate(checked):
        flat = args[i].data.reshape(-1)  # a view: editing it moves the input
        for c in range(flat.size):
            orig = flat[c]
            flat[c] = orig + eps
            plus = [y.numpy().reshape(-1).copy() for y in _outputs(fn, args)]  # may view x
            flat[c] = orig - eps
            minus = [y.numpy().reshape(-1).copy() for y in _outputs(fn, args)]
            flat[c] = orig
            for o in range(len(outs)):
                jac[o][k][:, c] = (plus[o] - minus[o]) / (2 * eps)
    return jac, [y.shape for y in outs]


def _compare(fn, args, checked, eps, atol, rtol, raise_exception, what):
    numerical, out_shapes = _numerical(fn, args, checked, eps)
    analytical = _analytical(fn, args, checked)
    for o, shape in enumerate(out_shapes):
        for k, i in enumerate(checked):
            expected, got = numerical[o][k], analytical[o][k]
            bad = np.abs(got - expected) - (atol + rtol * np.abs(expected))
            bad[np.isnan(got) != np.isnan(expected)] = np.inf  # a NaN on one side only
            if bad.size and bad.max() > 0:
                r, c = np.unravel_index(np.argmax(bad), bad.shape)
                out_idx = np.unravel_index(r, shape) if shape else ()
                in_idx = np.unravel_index(c, args[i].shape) if args[i].shape else ()
                message = (f"{what}: input {i} (shape {args[i].shape}), output {o} (shape "
                           f"{shape}): d out{list(out_idx)} / d in{list(in_idx)} expected "
                           f"{expected[r, c]:.8g} (finite differences), got {got[r, c]:.8g} "
                           f"(backward); {int((bad > 0).sum())} of {bad.size} entries differ")
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=True):
    """True if backward through fn(*inputs) matches finite differences, else an error naming
    the input and its worst entry. Floating inputs are checked in float64 copies."""
    args, checked = _prepare(inputs)
    return _compare(fn, args, checked, eps, atol, rtol, raise_exception, "gradcheck")


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-4,
                  raise_exception=True, seed=0):
    """gradcheck of the vector-Jacobian product x, v -> v^T dfn/dx: checks second order.

    grad_outputs (the v) are random unless given; they are checked as inputs too.
    """
    args, checked = _prepare(inputs)
    xs = [args[i] for i in checked]
    if grad_outputs is None:
        rng = np.random.default_rng(seed)
        grad_outputs = [Tensor(backend.to_device(rng.standard_normal(y.shape), y.device))
                        for y in _outputs(fn, args)]
    device = xs[0].device
    vs = [v.data if isinstance(v, Tensor) else np.asarray(v)
          for v in _as_list(grad_outputs)]
    vs = [Tensor(backend.to_device(v, device).astype(np.float64), requires_grad=True)
          for v in vs]

    def vjp(*flat):
        call = list(args)
        for k, i in enumerate(checked):
            call[i] = flat[k]
        outs = _outputs(fn, call)
        return grad(outs, list(flat[:len(xs)]), grad_outputs=list(flat[len(xs):]),
                    create_graph=True)

    all_args = xs + vs
    return _compare(vjp, all_args, list(range(len(all_args))), eps, atol, rtol,
                    raise_exception, "gradgradcheck")
