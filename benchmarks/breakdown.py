"""Where a benchmark case's step loses: the same step op by op on both sides (issue 20).

    python -m benchmarks.breakdown CASE [CASE ...] [--steps 5] [--top 15] [--threads N]

CASE is a benchmarks.harness case id (M1 ... M8, M4f, M5f, K7). Each side is built as the
harness builds it, warmed up, then `steps` calls are profiled: minigen's by
minigen.profiler (self time per op and phase, and "outside ops": the optimiser's in-place
updates and the Python between ops), PyTorch's by torch.profiler (self CPU time per
aten op). Profilers add their own cost per op, so read the tables op against op; the
step times themselves come from benchmarks.harness.
"""
import argparse
import os

from .harness import get_case


def minigen_table(fn, steps, top):
    from minigen import profiler
    with profiler.profile() as prof:
        for _ in range(steps):
            fn()
    return prof.table(steps=steps, top=top)


def torch_table(fn, steps, top):
    import torch
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            fn()
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages)
    rows = sorted(averages, key=lambda e: -e.self_cpu_time_total)
    lines = [f"{'op':<44} {'calls':>7} {'self ms':>9} {'share':>6}"]
    for e in rows[:top]:
        lines.append(f"{e.key[:44]:<44} {e.count / steps:>7.0f} "
                     f"{e.self_cpu_time_total / 1e3 / steps:>9.3f} "
                     f"{e.self_cpu_time_total / total if total else 0:>6.1%}")
    rest = rows[top:]
    if rest:
        lines.append(f"{f'{len(rest)} more ops':<44} {sum(e.count for e in rest) / steps:>7.0f} "
                     f"{sum(e.self_cpu_time_total for e in rest) / 1e3 / steps:>9.3f}")
    lines.append(f"per step: {total / 1e3 / steps:.3f} ms of op self time (torch "
                 f"{torch.__version__}, {torch.get_num_threads()} threads)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)
    from . import common
    common.set_threads(args.threads)
    import minigen
    minigen.keep_freed_memory()
    for case_id in args.cases:
        case = get_case(case_id)
        for side, table in (("minigen", minigen_table), ("torch", torch_table)):
            fn = case.make(side)
            for _ in range(args.warmup):
                fn()
            print(f"\n{case.title}: {side}, per step over {args.steps} steps")
            print(table(fn, args.steps, args.top))


if __name__ == "__main__":
    main()
