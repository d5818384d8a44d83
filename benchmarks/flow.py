"""K5, affine coupling with its log-determinant on x (256, 1, 28, 28), float32: forward,
backward (gradients for x, s and t from the output and the log-determinant) and the
inverse, against PyTorch doing the same with its own ops, and the kernels against the plain
NumPy reference.

PyTorch's side is how a flow is written in PyTorch: y = x * exp(s) + t, logdet = s.sum over
the non-batch axes (a float32 sum; minigen's is float64), autograd for the gradients; the
inverse, (y - t) * exp(-s) and -s.sum, under no_grad as when sampling. The Numba kernels'
first call (compiling, or loading them from Numba's on-disk cache) is timed on its own line.

Two OpenMP runtimes share this process (PyTorch's bundled libgomp and the system one under
Numba), and each keeps its worker spinning for milliseconds after a parallel region. On 2
cores the spinning worker of one side can hold the core that the other side's next region
needs. Measured here with the default wait policy, in 7 of 15 runs minigen's fwd+bwd took
0.95-1.23 ms instead of 0.31-0.41 ms, while PyTorch's stayed at 0.38-0.71 ms. With
OMP_WAIT_POLICY=PASSIVE that did not happen in 4 runs (fwd+bwd ratio 0.47-0.59), but
PyTorch's own K5 time, each side alone in a process of its own, rose from 0.70-0.83 ms to
1.5-2.3 ms (minigen's: 0.58 to 0.65-0.86 ms). So this file leaves the policy as it finds it
and prints it; benchmarks.conv sets PASSIVE for the whole `python -m benchmarks` run, which
flatters minigen here.

    python -m benchmarks.flow [--threads N] [--repeats R] [--no-write]
"""
import os
import time

import numpy as np
import torch

import minigen as mg
from minigen.kernels import coupling
from minigen.ops.flow import affine_coupling

from . import common

NAME = "flow"
SHAPE = (256, 1, 28, 28)
AXES = (1, 2, 3)


def _inputs():
    rng = np.random.default_rng(0)
    x, t, grad_y = (rng.standard_normal(SHAPE).astype(np.float32) for _ in range(3))
    s = (0.5 * rng.standard_normal(SHAPE)).astype(np.float32)  # as from a tanh-bounded net
    grad_logdet = rng.standard_normal(SHAPE[0])
    return x, s, t, grad_y, grad_logdet


def _kernel_first_call(x, s, t, grad_y, grad_logdet):
    """Seconds for the first forward and backward calls, and Numba's cache hits/misses."""
    start = time.perf_counter()
    scale = coupling.cpu.forward(x, s, t)[2]
    coupling.cpu.backward(x, scale, t, grad_y, grad_logdet)
    seconds = time.perf_counter() - start
    dispatchers = [coupling.cpu._forward_parallel, coupling.cpu._backward_parallel]
    hits = sum(sum(d.stats.cache_hits.values()) for d in dispatchers)
    misses = sum(sum(d.stats.cache_misses.values()) for d in dispatchers)
    return seconds, hits, misses


def run(args):
    x0, s0, t0, gy0, gl0 = _inputs()
    first_call = _kernel_first_call(x0, s0, t0, gy0, gl0)
    x, s, t = (mg.tensor(a, requires_grad=True) for a in (x0, s0, t0))
    gy, gl = mg.tensor(gy0), mg.tensor(gl0)
    xt, st, tt = (torch.tensor(a, requires_grad=True) for a in (x0, s0, t0))
    gyt, glt = torch.tensor(gy0), torch.tensor(gl0, dtype=torch.float32)

    def fwd_bwd():
        y, logdet = affine_coupling(x, s, t)
        return (y, logdet) + mg.grad([y, logdet], [x, s, t], grad_outputs=[gy, gl])

    def fwd_bwd_torch():
        y = xt * torch.exp(st) + tt
        logdet = st.sum(AXES)
        return (y, logdet) + torch.autograd.grad([y, logdet], [xt, st, tt], [gyt, glt])

    def inverse():
        with mg.no_grad():
            return affine_coupling(x, s, t, reverse=True)

    def inverse_torch():
        with torch.no_grad():
            return (xt - tt) * torch.exp(-st), -st.sum(AXES)

    def both():
        return fwd_bwd() + inverse()

    def both_torch():
        return fwd_bwd_torch() + inverse_torch()

    def kernels(module):
        def call():
            y, logdet, scale = module.forward(x0, s0, t0)
            grads = module.backward(x0, scale, t0, gy0, gl0)
            return (y, logdet, grads) + module.forward(x0, s0, t0, reverse=True)[:2]
        return call

    names = ["y", "logdet", "grad x", "grad s", "grad t", "inverse", "inverse logdet"]
    for name, ours, theirs in zip(names, both(), both_torch()):
        # logdet: float64 here, a float32 sum of 784 values near 0.5 in PyTorch
        common.check_close(f"K5 {name}", ours.numpy(), theirs.detach().numpy(),
                           rtol=1e-5, atol=1e-4 if "logdet" in name else 1e-5)
    ours, theirs = kernels(coupling.cpu)(), kernels(coupling.reference)()
    for name, a, b in zip(["y", "logdet", "grads", "inverse", "inverse logdet"], ours, theirs):
        common.check_close(f"K5 kernel {name}", a, b, rtol=1e-5, atol=1e-5)

    rows = []
    for name, ours, theirs, reference, target, goal in [
            ("K5 coupling fwd+bwd+inverse", both, both_torch, "torch", 1.25, 1.0),
            ("K5 coupling fwd+bwd", fwd_bwd, fwd_bwd_torch, "torch", None, None),
            ("K5 coupling inverse, no grad", inverse, inverse_torch, "torch", None, None),
            ("K5 kernels fwd+bwd+inverse", kernels(coupling.cpu), kernels(coupling.reference),
             "numpy reference", None, None)]:
        timing = common.time_pair(ours, theirs, args.repeats, args.warmup)
        rows.append(common.row(name, timing, reference, unit="ms", target=target, goal=goal))
    seconds, hits, misses = first_call
    rows[0]["numba_first_call_s"] = seconds
    print(f"K5 Numba kernels, first forward + backward call: {seconds:.3f} s "
          f"({hits} loaded from Numba's disk cache, {misses} compiled); "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    return rows


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
