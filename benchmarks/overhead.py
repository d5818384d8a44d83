"""K7, per-op overhead: a chain of 100 elementwise ops on 16 float32 values, forward and
backward, against PyTorch, in microseconds per op. With 16 values the arithmetic is
nothing; what is timed is the engine: building nodes, tensors and the backward sweep.

Also the large-array check: one elementwise op on 10^7 float32 values must cost no more
than the bare NumPy expression (ratio <= 1.2), with and without graph recording.

    python -m benchmarks.overhead [--threads N] [--repeats R]
"""
import numpy as np
import torch

import minigen as mg

from . import common

NAME = "overhead"
SIZE = 16
CYCLES = 10  # of the 10-op body below: 100 ops
OPS = 10 * CYCLES
LARGE = 10 ** 7


def chain(lib, x, b, w):
    """The same 100 ops for lib = minigen or torch; tanh and sigmoid keep values bounded."""
    for _ in range(CYCLES):
        x = x * 1.1
        x = x + b
        x = lib.tanh(x)
        x = x * w
        x = lib.sigmoid(x)
        x = x - 0.25
        x = lib.exp(x)
        x = x * 0.5
        x = x * x
        x = x + 0.1
    return x


def chain_rows(args):
    rng = np.random.default_rng(0)
    x0, b0, w0, g0 = (rng.standard_normal(SIZE).astype(np.float32) for _ in range(4))
    x, b, w, g = mg.tensor(x0, requires_grad=True), mg.tensor(b0), mg.tensor(w0), mg.tensor(g0)
    xt = torch.tensor(x0, requires_grad=True)
    bt, wt, gt = torch.tensor(b0), torch.tensor(w0), torch.tensor(g0)

    def fwd_bwd():
        return mg.grad(chain(mg, x, b, w), x, grad_outputs=g)[0]

    def fwd_bwd_torch():
        return torch.autograd.grad(chain(torch, xt, bt, wt), xt, grad_outputs=gt)[0]

    def fwd():
        return chain(mg, x, b, w)

    def fwd_torch():
        return chain(torch, xt, bt, wt)

    def fwd_no_grad():
        with mg.no_grad():
            return chain(mg, x, b, w)

    def fwd_no_grad_torch():
        with torch.no_grad():
            return chain(torch, xt, bt, wt)

    common.check_close("K7 forward", fwd().numpy(), fwd_torch().detach().numpy(),
                       rtol=1e-5, atol=1e-6)
    common.check_close("K7 gradient", fwd_bwd().numpy(), fwd_bwd_torch().numpy(),
                       rtol=1e-4, atol=1e-6)
    rows = []
    for name, ours, theirs, target, goal in [
            ("K7 100 ops fwd+bwd, per op", fwd_bwd, fwd_bwd_torch, 3.0, 1.5),
            ("K7 100 ops fwd (graph recorded), per op", fwd, fwd_torch, None, None),
            ("K7 100 ops fwd under no_grad, per op", fwd_no_grad, fwd_no_grad_torch, None,
             None)]:
        timing = common.time_pair(ours, theirs, args.repeats, args.warmup)
        rows.append(common.row(name, timing, "torch", unit="us", scale=OPS, target=target,
                               goal=goal))
    return rows


def large_rows(args):
    rng = np.random.default_rng(1)
    x0, y0 = (rng.standard_normal(LARGE).astype(np.float32) for _ in range(2))
    rows = []
    for requires_grad in (False, True):
        x, y = mg.tensor(x0, requires_grad=requires_grad), mg.tensor(y0)
        tag = "requires_grad" if requires_grad else "no grad"
        cases = [("x * y", lambda: x * y, lambda: x.data * y.data),
                 ("mg.exp(x)", lambda: mg.exp(x), lambda: np.exp(x.data))]
        for expr, ours, theirs in cases:
            common.check_close(f"{expr} on 10^7", ours().numpy(), theirs(), rtol=0, atol=0)
            timing = common.time_pair(ours, theirs, args.repeats, args.warmup)
            rows.append(common.row(f"{expr}, 10^7 float32, fwd, {tag}", timing, "numpy",
                                   unit="ms", target=1.2))
    return rows


def run(args):
    return chain_rows(args) + large_rows(args)


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
