"""Helpers shared by the benchmarks, following the rules in BENCHMARKS.md.

check_close, train_step, machine_info and write_results serve every benchmark. time_pair
and main_for_group are the one-process timing of the groups that time minigen against
itself or against NumPy (benchmarks.sampling, .ar_flows, .overhead's large-array check):
both sides get the same threads, are warmed up, checked to agree numerically, and then
timed alternately in one process (which side goes first alternates too), so that drift on
a shared machine hits both alike; every figure is a median of per-call times. minigen
against PyTorch is timed by benchmarks.harness, each side in a process of its own.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
MIN_SAMPLE_SECONDS = 0.01  # calls per sample are batched until a sample takes this long


def parse_args(description, argv=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both sides (torch and Numba); default: all cores")
    parser.add_argument("--repeats", type=int, default=20,
                        help="timed samples per side (median reported; at least 5)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per side first")
    parser.add_argument("--no-write", action="store_true",
                        help="print the table only; do not write benchmarks/results/*.json")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5 (BENCHMARKS.md)")
    return args


def keep_freed_memory():
    """minigen's malloc settings (minigen/memory.py) for this benchmark process, as every
    timing in README.md had them; they help both sides."""
    import minigen  # here, not at the top: set_threads must run before Numba loads
    minigen.keep_freed_memory()


def set_threads(n):
    """The same thread count for PyTorch and minigen: Numba's pool, and BLAS's, by which
    minigen's kernels/parallel.py sizes its Python threads for large products. Before Numba
    is imported the environment sizes its pool; after, the variable must stay as Numba read
    it (Numba rereads the environment at every compilation and refuses a pool size that
    changed once its threads run), so only the number of threads in use is set, at most the
    pool's size."""
    import sys
    if "numba" in sys.modules:
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    limit_blas(n)
    import torch
    torch.set_num_threads(n)
    return n


def limit_blas(n):
    """NumPy's BLAS held to n threads for the rest of the process: kernels/parallel.py runs
    as many Python threads as BLAS is set to use, so without this `--threads 1` would still
    split minigen's large products and convolutions over every core."""
    import numpy  # noqa: F401  (NumPy's and SciPy's BLAS, loaded now: the limit must
    import scipy.linalg  # noqa: F401  find both, and minigen imports SciPy)
    from threadpoolctl import ThreadpoolController
    ThreadpoolController().select(user_api="blas").limit(limits=n)


def machine_info(threads):
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "threads": threads,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "minigen_commit": _git("rev-parse", "HEAD"),
        "minigen_modified": bool(_git("status", "--porcelain", "--", "minigen", "kernels")),
    }


def _git(*args):
    """Which code was timed: the commit, and whether minigen differed from it."""
    try:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent,
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _calls_per_sample(fn):
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, int(MIN_SAMPLE_SECONDS / max(once, 1e-9)))


def time_pair(ours, theirs, repeats=20, warmup=3):
    """Median seconds per call of `ours` and `theirs`, timed alternately.

    Returns a dict with the medians, every sample (seconds per call) and the time of each
    side's first call (where a compiler would show up).
    """
    first = []
    for fn in (ours, theirs):
        start = time.perf_counter()
        fn()
        first.append(time.perf_counter() - start)
        for _ in range(warmup):
            fn()
    numbers = [_calls_per_sample(ours), _calls_per_sample(theirs)]
    samples = ([], [])
    for r in range(repeats):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn, number = (ours, theirs)[side], numbers[side]
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[side].append((time.perf_counter() - start) / number)
    return {"ours_s": statistics.median(samples[0]), "theirs_s": statistics.median(samples[1]),
            "ours_samples_s": samples[0], "theirs_samples_s": samples[1],
            "calls_per_sample": numbers, "first_call_s": first}


def train_step(loss, optimizer):
    """One step of a training loop, the same on both sides (minigen and PyTorch share these
    method names): loss(), zero the gradients, backward, update; returns the loss value."""
    def step():
        value = loss()
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        return value.item()
    return step


def fwd_bwd(side, inputs, grad_output, forward):
    """One forward and backward pass on `side` ("minigen" or "torch"): the arrays `inputs`
    become that side's tensors (gradients wanted), `forward(*tensors)` computes the output,
    and the returned step() gives the output and its gradients for the inputs given
    `grad_output`, as that side's tensors."""
    if side == "minigen":
        import minigen as lib

        def grad(y, xs, g):
            return lib.grad(y, xs, grad_outputs=g)
    else:
        import torch as lib

        def grad(y, xs, g):
            return lib.autograd.grad(y, xs, g)
    xs = [lib.tensor(a, requires_grad=True) for a in inputs]
    g = lib.tensor(grad_output)

    def step():
        y = forward(*xs)
        return (y,) + tuple(grad(y, xs, g))
    return step


def check_close(what, ours, theirs, rtol, atol):
    """Both sides must agree before they are timed; a mismatch stops the benchmark."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        raise AssertionError(f"{what}: shapes differ, {ours.shape} vs {theirs.shape}")
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol,
                               err_msg=f"{what}: the two sides disagree; not timing it")


def row(name, timing, reference, unit="ms", scale=1.0, target=None, goal=None):
    """One table line: per-call medians shown in `unit` after dividing by `scale`."""
    factor = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit] / scale
    ratio = timing["ours_s"] / timing["theirs_s"]
    return {"name": name, "reference": reference, "unit": unit,
            "minigen": timing["ours_s"] * factor, "other": timing["theirs_s"] * factor,
            "ratio": ratio, "target": target, "goal": goal,
            "meets_target": None if target is None else ratio <= target,
            "timing": timing}


def format_table(rows):
    header = ["benchmark", "minigen", "reference", "ratio", "target", "goal", ""]
    lines = []
    for r in rows:
        verdict = "" if r["target"] is None else ("ok" if r["meets_target"] else "MISSED")
        lines.append([r["name"], f"{r['minigen']:.4g} {r['unit']}",
                      f"{r['other']:.4g} {r['unit']} ({r['reference']})", f"{r['ratio']:.2f}",
                      "" if r["target"] is None else f"<= {r['target']}",
                      "" if r["goal"] is None else f"<= {r['goal']}", verdict])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    return "\n".join(out + [fmt(cells) for cells in lines])


def write_results(name, rows, info, config):
    """benchmarks/results/<name>.json, written whole or not at all."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"benchmark": name, "machine": info, "config": config,
                               "rows": rows}, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def main_for_group(name, run, doc, argv=None):
    """What `python -m benchmarks.<group>` does for every group: parse the common options,
    give both sides the threads and minigen's malloc settings, run, print the machine line
    and the table, write benchmarks/results/<name>.json (unless --no-write)."""
    args = parse_args(doc.splitlines()[0], argv)
    threads = set_threads(args.threads)
    keep_freed_memory()
    info = machine_info(threads)
    rows = run(args)
    settings = ", ".join(f"{var}={os.environ.get(var, 'unset')}"
                         for var in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS"))
    print(f"{info['cpu']}, {info['cores_available']} cores, {threads} threads, "
          f"numpy {info['numpy']}, torch {info['torch']}, median of {args.repeats}, "
          f"{settings}")
    print(format_table(rows))
    if not args.no_write:
        print(f"wrote {write_results(name, rows, info, vars(args))}")
