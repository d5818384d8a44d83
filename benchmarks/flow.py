"""K5, affine coupling with its log-determinant on x (256, 1, 28, 28), float32: forward,
backward (gradients for x, s and t from the output and the log-determinant) and the
inverse; each side's call, timed by benchmarks.harness, and the check that minigen and
PyTorch agree, and minigen's Numba kernels with the plain NumPy reference.

PyTorch's side is how a flow is written in PyTorch: y = x * exp(s) + t, logdet = s.sum over
the non-batch axes (a float32 sum; minigen's is float64), autograd for the gradients; the
inverse, (y - t) * exp(-s) and -s.sum, under no_grad as when sampling. A side's call
imports that side's library alone.

Measured in one process (the older way, both sides alternating), the two OpenMP runtimes
(PyTorch's bundled libgomp and the system one under Numba) disturbed each other: with the
default wait policy minigen's fwd+bwd took 0.95-1.23 ms instead of 0.31-0.41 ms in 7 of 15
runs, and OMP_WAIT_POLICY=PASSIVE, which cured that, raised PyTorch's own time from
0.70-0.83 ms to 1.5-2.3 ms. Hence the harness: each side in a process of its own.

    python -m benchmarks.harness --cases K5
"""
import numpy as np

from . import common

SHAPE = (256, 1, 28, 28)


def operands(shape=SHAPE):
    """x, s, t and the gradients of y and of the log-determinant, the same for every side."""
    rng = np.random.default_rng(0)
    x, t, grad_y = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    s = (0.5 * rng.standard_normal(shape)).astype(np.float32)  # as from a tanh-bounded net
    grad_logdet = rng.standard_normal(shape[0])
    return x, s, t, grad_y, grad_logdet


def call(side, shape=SHAPE):
    """One fwd+bwd and one inverse on `side` ("minigen" or "torch"): y, logdet, the
    gradients for x, s and t, the inverse and its logdet, as that side's tensors."""
    x0, s0, t0, gy0, gl0 = operands(shape)
    if side == "minigen":
        import minigen as mg
        from minigen.ops.flow import affine_coupling
        x, s, t = (mg.tensor(a, requires_grad=True) for a in (x0, s0, t0))
        gy, gl = mg.tensor(gy0), mg.tensor(gl0)

        def step():
            y, logdet = affine_coupling(x, s, t)
            grads = mg.grad([y, logdet], [x, s, t], grad_outputs=[gy, gl])
            with mg.no_grad():
                return (y, logdet) + grads + affine_coupling(x, s, t, reverse=True)
        return step

    import torch
    x, s, t = (torch.tensor(a, requires_grad=True) for a in (x0, s0, t0))
    gy, gl = torch.tensor(gy0), torch.tensor(gl0, dtype=torch.float32)
    axes = tuple(range(1, len(shape)))

    def step():
        y = x * torch.exp(s) + t
        logdet = s.sum(axes)
        grads = torch.autograd.grad([y, logdet], [x, s, t], [gy, gl])
        with torch.no_grad():
            return (y, logdet) + grads + ((x - t) * torch.exp(-s), -s.sum(axes))
    return step


def kernels(module, shape=SHAPE):
    """The coupling kernels alone (module: coupling.cpu or coupling.reference): forward,
    backward and inverse on the same arrays."""
    x, s, t, grad_y, grad_logdet = operands(shape)
    y, logdet, scale = module.forward(x, s, t)
    grads = module.backward(x, scale, t, grad_y, grad_logdet)
    return (y, logdet, grads) + module.forward(x, s, t, reverse=True)[:2]


def check(shape=SHAPE):
    """minigen against PyTorch (logdet: float64 here, a float32 sum of 784 values near 0.5
    in PyTorch), and the Numba kernels against the NumPy reference."""
    from minigen.kernels import coupling
    names = ["y", "logdet", "grad x", "grad s", "grad t", "inverse", "inverse logdet"]
    for name, ours, theirs in zip(names, call("minigen", shape)(), call("torch", shape)()):
        common.check_close(f"K5 {name}", ours.numpy(), theirs.detach().numpy(),
                           rtol=1e-5, atol=1e-4 if "logdet" in name else 1e-5)
    names = ["y", "logdet", "grads", "inverse", "inverse logdet"]
    for name, a, b in zip(names, kernels(coupling.cpu, shape),
                          kernels(coupling.reference, shape)):
        common.check_close(f"K5 kernel {name}", a, b, rtol=1e-5, atol=1e-5)
