"""K7, per-op overhead: a chain of 100 elementwise ops on 16 float32 values, forward and
backward, against PyTorch, in microseconds per op. With 16 values the arithmetic is
nothing; what is timed is the engine: building nodes, tensors and the backward sweep.
Each side's call is here; benchmarks.harness times them, each in a process of its own:

    python -m benchmarks.harness --cases K7

Run as a module, this file times the large-array check instead, minigen against the bare
NumPy expression, alternating in one process (PyTorch takes no part): one elementwise op on
10^7 float32 values must cost no more than NumPy (ratio <= 1.2), with and without graph
recording.

    python -m benchmarks.overhead [--threads N] [--repeats R] [--no-write]
"""
import numpy as np

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


def call(side):
    """One K7 fwd+bwd on `side` ("minigen" or "torch"): the gradient of the chain with
    respect to x; only that side's library is imported."""
    rng = np.random.default_rng(0)
    x0, b0, w0, g0 = (rng.standard_normal(SIZE).astype(np.float32) for _ in range(4))
    if side == "minigen":
        import minigen as lib
        grad = lib.grad
    else:
        import torch as lib
        grad = lib.autograd.grad
    x = lib.tensor(x0, requires_grad=True)
    b, w, g = lib.tensor(b0), lib.tensor(w0), lib.tensor(g0)
    return lambda: grad(chain(lib, x, b, w), x, grad_outputs=g)[0]


def check():
    common.check_close("K7 gradient", call("minigen")().numpy(), call("torch")().numpy(),
                       rtol=1e-4, atol=1e-6)


def large_rows(args):
    import minigen as mg
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
    return large_rows(args)


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
