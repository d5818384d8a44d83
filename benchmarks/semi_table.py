"""Issue 17's semi-supervised table: every semi-supervised model trained with its defaults
on one labelled subset, over seeds, test_accuracy (the teacher's where there is one) per
seed, mean and standard deviation, and each method's difference from `supervised` on the
same seed.

    python -m benchmarks.semi_table [--data digits] [--labels 50] [--steps N]
           [--seeds 0 1 2] [--models M ...] [--threads 1] [--results FILE]
    python -m benchmarks.semi_table --print [FILE ...]

Each run is `minigen train MODEL --data DATA --seed S --config labels=N` in this process
(minigen.trainer.Run, nothing else changed). Every finished run is written at once to
benchmarks/results/semi-DATA-labelsN.json, and a run already there (same model, seed and
steps) is not run again, so an interrupted table goes on where it stopped.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import tempfile

from minigen import trainer

from . import common

MODELS = ("supervised", "entropy-min", "pseudo-label", "vat", "pi-model",
          "temporal-ensembling", "mean-teacher", "mixmatch", "uda", "noisy-student")


def result_path(data, labels):
    return common.RESULTS / f"semi-{data}-labels{labels}.json"


def load(path):
    if path.exists():
        with open(path) as f:
            return json.load(f)
    return None


def semi_table(data, labels, seeds, models=MODELS, steps=None, threads=None, path=None):
    path = path or result_path(data, labels)
    result = load(path) or {"data": data, "labels": labels, "runs": []}
    done = {(r["model"], r["seed"], r["steps"]) for r in result["runs"]}
    common.RESULTS.mkdir(exist_ok=True)
    for seed in seeds:
        for name in models:
            out = tempfile.mkdtemp(prefix=f"semi-{name}-")
            config = {"labels": labels}
            if steps is not None:
                config["steps"] = steps
            run = trainer.Run(name, data, seed, out=out, config=config)
            if (name, seed, run.config["steps"]) in done:
                shutil.rmtree(out)
                continue
            run.train(progress=False)
            metrics = run.finish()
            shutil.rmtree(out)
            row = {"model": name, "seed": seed, "steps": run.config["steps"],
                   "test_accuracy": metrics["test_accuracy"],
                   "seconds_per_step": metrics["seconds_per_step"],
                   "machine": common.machine_info(threads),
                   "load_average": os.getloadavg()}
            result["runs"].append(row)
            trainer.write_json(str(path), result)
            print(f"{name} seed {seed}: test_accuracy {row['test_accuracy']:.4f} "
                  f"({row['seconds_per_step']:.3f} s/step)", flush=True)
    print(table(result))
    return result


def table(result, steps=None):
    """The README's table: per seed, mean +- sd, and the mean difference from supervised
    (with its per-seed differences), of the runs of `steps` (default: the most common)."""
    runs = result["runs"]
    if steps is None:
        counts = {}
        for r in runs:
            counts[r["steps"]] = counts.get(r["steps"], 0) + 1
        steps = max(counts, key=counts.get)
    acc = {(r["model"], r["seed"]): r["test_accuracy"] for r in runs if r["steps"] == steps}
    seeds = sorted({s for _, s in acc})
    lines = [f"| model ({steps} steps) | " + " | ".join(f"seed {s}" for s in seeds)
             + " | mean ± sd | minus supervised, mean (per seed) |",
             "| --- | " + " | ".join("---" for _ in seeds) + " | --- | --- |"]
    for name in MODELS:
        values = [acc.get((name, s)) for s in seeds]
        if all(v is None for v in values):
            continue
        cells = [f"{v:.4f}" if v is not None else "-" for v in values]
        have = [v for v in values if v is not None]
        spread = f"{statistics.fmean(have):.4f} ± {statistics.stdev(have):.4f}" \
            if len(have) > 1 else f"{have[0]:.4f}"
        if name == "supervised":
            diff = "(the baseline)"
        else:
            pairs = [(v, acc.get(("supervised", s))) for v, s in zip(values, seeds)]
            per = [v - b for v, b in pairs if v is not None and b is not None]
            diff = f"{statistics.fmean(per):+.3f} (" + ", ".join(f"{d:+.3f}" for d in per) \
                + ")" if per else "-"
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {spread} | {diff} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--labels", type=int, default=50)
    parser.add_argument("--steps", type=int, help="training steps (default: each model's, "
                        "3000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads (default: all cores)")
    parser.add_argument("--results", type=pathlib.Path, help="results file (default "
                        "benchmarks/results/semi-DATA-labelsN.json; another one lets two "
                        "processes share the work, each with its own seeds)")
    parser.add_argument("--print", nargs="*", type=pathlib.Path, metavar="FILE",
                        help="only print the table of the results file (or of these files "
                        "together)")
    args = parser.parse_args(argv)
    default = result_path(args.data, args.labels)
    if args.print is not None:
        parts = [load(p) for p in args.print or [args.results or default]]
        if any(part is None for part in parts):
            parser.error("no results yet in " + ", ".join(map(str, args.print or [default])))
        print(table({"runs": [r for part in parts for r in part["runs"]]}, args.steps))
        return
    threads = common.set_threads(args.threads or os.cpu_count())
    semi_table(args.data, args.labels, args.seeds, args.models, args.steps, threads,
               args.results)


if __name__ == "__main__":
    main()
