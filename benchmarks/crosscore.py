"""Whether this machine is in a stretch where one core reads the other's writes slowly, and
what that costs a one-thread pass over a two-thread kernel's output: minigen against
itself, in one process, the variants taking turns so that every stretch falls on all.

Each line is one round: microseconds per call (median of --calls) of
    kernel   the coupling forward of K5's shape on the thread pool (kernels/coupling)
    +numpy   the same, then NumPy's out + scale on the calling thread
    +rows    the same, then out + scale on the thread pool, each thread adding the rows it
             wrote (Numba's prange splits the batch into the same equal blocks each time)
    serial   the coupling forward on one thread, then NumPy's out + scale
and a last column saying "slow" where +numpy took more than twice +rows. The summary gives
each variant's median, 90th percentile and largest round, and the share of slow rounds.

On the 2-core development machine (a virtual machine) there were stretches of seconds to a
minute (4% to 42% of the samples in spans of 2 to 4 minutes) in which +numpy took 500-600
us against 112 usually, while kernel (85), +rows (100-110) and serial (183) kept their
times; K5's minigen step then took 0.9-1.6 ms instead of 0.33, its backward adding the
log-determinant's gradient to the coupling's gradient for s in one such NumPy pass, and
PyTorch's, whose ops all split their work over the threads alike, kept its speed. Adding
gradients the +rows way in the engine cured K5 but slowed M4's step by 13% (why was not
measured; likely Numba's workers spinning after each addition while OpenBLAS wants the
cores, as README's "Benchmarks" found for M5), so the engine keeps NumPy's addition.

    python -m benchmarks.crosscore [--seconds 120] [--calls 200] [--threads N]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np
from numba import njit, prange

from . import common
from .flow import operands

VARIANTS = ("kernel", "+numpy", "+rows", "serial")
SLOW = 2.0  # +numpy over +rows above which a round is in a slow stretch


@njit(parallel=True, cache=True)
def add_rows(a, b):
    """a + b for (N, D) arrays, thread k adding the k-th block of rows."""
    out = np.empty_like(a)
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] + b[i, j]
    return out


def variants():
    """{name: call} for the four variants, on K5's arrays."""
    from minigen.kernels.coupling import cpu
    x, s, t, _, _ = operands()

    def kernel():
        return cpu.forward(x, s, t)

    def then_numpy():
        out, _, scale = cpu.forward(x, s, t)
        return out + scale

    def then_rows():
        out, _, scale = cpu.forward(x, s, t)
        rows = (x.shape[0], -1)
        return add_rows(out.reshape(rows), scale.reshape(rows)).reshape(x.shape)

    def serial():
        saved, cpu.PARALLEL_MIN = cpu.PARALLEL_MIN, x.size + 1
        try:
            out, _, scale = cpu.forward(x, s, t)
        finally:
            cpu.PARALLEL_MIN = saved
        return out + scale

    return dict(zip(VARIANTS, (kernel, then_numpy, then_rows, serial)))


def time_call(fn, calls):
    """Microseconds per call, the median of `calls` single calls after a few untimed."""
    for _ in range(max(1, calls // 10)):
        fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e6 * statistics.median(times)


def summary(rows):
    """Lines: each variant's median, 90th percentile and largest round; the slow share."""
    lines = []
    for name in VARIANTS:
        values = sorted(row[name] for row in rows)
        p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
        lines.append(f"{name:>7}: median {statistics.median(values):6.0f} us, 90th "
                     f"percentile {p90:6.0f}, largest {values[-1]:6.0f}")
    slow = sum(is_slow(row) for row in rows)
    lines.append(f"slow rounds (+numpy over {SLOW:g} x +rows): {slow} of {len(rows)}")
    return lines


def is_slow(row):
    return row["+numpy"] > SLOW * row["+rows"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crosscore",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be more than 0")
    if args.calls < 1:
        parser.error("--calls must be at least 1")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    common.limit_blas(args.threads)
    import minigen
    minigen.keep_freed_memory()
    calls = variants()
    for fn in calls.values():  # compile or load every kernel before the clock starts
        fn()
    print("time      " + " ".join(f"{name:>7}" for name in VARIANTS) + "  (us per call)")
    rows, interrupted = [], False
    ends = time.monotonic() + args.seconds
    try:
        while time.monotonic() < ends:
            row = {name: time_call(fn, args.calls) for name, fn in calls.items()}
            rows.append(row)
            print(time.strftime("%H:%M:%S") + "  "
                  + " ".join(f"{row[name]:7.0f}" for name in VARIANTS)
                  + ("  slow" if is_slow(row) else ""), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        interrupted = True
    if rows:
        print("\n".join(summary(rows)))
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
