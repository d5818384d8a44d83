"""Parity of issue 17's checked configs: minigen's simclr, supervised and mean-teacher and
their PyTorch builds (benchmarks/torch_models/ssl.py), trained the same way on digits, must
reach the same accuracy: the mean over seeds (default 0 1 2) of linear_probe_acc (simclr) or
test_accuracy (supervised, mean-teacher: the teacher's) within 1.5 points.

    python -m benchmarks.ssl_parity simclr|supervised|mean-teacher [--steps N]
           [--seeds 0 1 2] [--threads T] [--keep DIR] [--no-write]

"The same way": minigen's side is its own trainer (minigen.trainer.Run, the registered
config: inputs x / 16, shift [-1, 1], brightness U(0.8, 1.2), 3x3 erasing with p = 0.5,
noise sigma 0.05, Adam 1e-3, 3000 steps). PyTorch starts from minigen's initial weights
(copied by name) and trains on the same batches (minigen.data.BatchSampler of the run's
seed, as the trainer draws them; mean-teacher's labelled images are the run's labelled
subset) and the same augmentation draws: the views come from the model's own view
functions with a generator of the trainer's seed ([seed, 1]), called in the trainer's
order, so each side sees exactly the arrays the other does. What differs is float32
arithmetic (each library's order of sums), which training carries forward. Adam with the
same lr, betas and eps; the mean teacher's EMA after each optimiser step.

The probe (simclr) is minigen.eval.linear_probe (logistic regression, C = 1.0, on the
standardised features of the train split, scored on the test split) on each side's encoder
features. After training, minigen's trained weights copied into a fresh PyTorch model must
score what minigen scored (the evaluation isolated from training). The result goes to
benchmarks/results/parity-MODEL-digits.json.
"""
import argparse
import csv
import os
import shutil
import statistics
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from minigen import data, trainer  # noqa: E402
from minigen import eval as evaluation  # noqa: E402
from minigen.random import Generator  # noqa: E402

from . import common  # noqa: E402
from .parity import copy_weights  # noqa: E402
from .torch_models import ssl  # noqa: E402

DATA = "digits"
TARGET_POINTS = 1.5
CASES = {  # minigen config overrides (none: the registered defaults are the checked config)
    "simclr": dict(metric="test_linear_probe_acc", config={}),
    "supervised": dict(metric="test_accuracy", config={"labels": 50}),
    "mean-teacher": dict(metric="test_accuracy", config={"labels": 50}),
}


def build_torch(name, model, config):
    """The PyTorch build of minigen's `model` with its config."""
    channels, width = model.spec.shape[0], config["width"]
    if name == "simclr":
        return ssl.SimCLR(channels, width, config["projection"], config["temperature"])
    if name == "supervised":
        return ssl.Supervised(channels, width, model.spec.num_classes)
    return ssl.MeanTeacher(channels, width, model.spec.num_classes, config["teacher_decay"],
                           config["consistency"], config["rampup"])


def as_torch(array):
    return torch.from_numpy(np.ascontiguousarray(array))


def train_torch(name, torch_model, run, seed, steps):
    """minigen's trainer loop for one of the three, in PyTorch; the views drawn by
    run.model's view functions (augmentations only: they read no parameter) from
    Generator([seed, 1]), the trainer's generator. Returns seconds per step and the mean
    loss per log period."""
    ours, config = run.model, run.config
    trained = list(torch_model.classifier.parameters()) if name == "mean-teacher" \
        else list(torch_model.parameters())
    optimizer = torch.optim.Adam(trained, lr=config["lr"], betas=tuple(config["betas"]))
    sampler = data.BatchSampler(len(run.x_train), config["batch_size"], seed)
    generator = Generator([seed, 1])
    if name != "simclr":
        labelled = ours.scale(run.x_train[ours.labelled])
        labels = torch.from_numpy(run.y_train[ours.labelled])
    every = config["log_every"] or max(1, steps // 100)
    seconds, curve, period = 0.0, [], []
    for step in range(steps):
        started = time.perf_counter()
        if name == "supervised":
            loss = torch_model.loss(as_torch(ours.augment(labelled, generator)), labels)
        else:
            x = ours.scale(run.x_train[sampler.indices(step)])
            if name == "simclr":
                loss = torch_model.loss(*map(as_torch, ours.views(x, generator)))
            else:
                views = [as_torch(v) for v in ours.views(labelled, x, generator)]
                loss = torch_model.loss(views[0], labels, views[1], views[2], step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if name == "mean-teacher":
            torch_model.update_teacher()
        seconds += time.perf_counter() - started
        period.append(loss.item())
        if (step + 1) % every == 0 or step + 1 == steps:
            curve.append({"step": step + 1, "train_loss": statistics.fmean(period)})
            period = []
    return seconds / steps, curve


def _log_rows(out):
    with open(os.path.join(out, "log.csv"), newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("train_loss")]


def torch_features(module, x, batch_size=500):
    with torch.no_grad():
        return np.concatenate([module(as_torch(x[i:i + batch_size])).double().numpy()
                               for i in range(0, len(x), batch_size)])


def torch_metric(name, torch_model, run):
    """What minigen's evaluation reports, of the PyTorch model: linear_probe_acc of its
    encoder (simclr), or test_accuracy of its evaluated classifier (the teacher for
    mean-teacher)."""
    torch_model.eval()
    x_train, x_test = run.model.scale(run.x_train), run.model.scale(run.x_test)
    if name == "simclr":
        return evaluation.linear_probe(torch_features(torch_model.encoder, x_train),
                                       run.y_train,
                                       torch_features(torch_model.encoder, x_test),
                                       run.y_test)
    logits = torch_features(torch_model.evaluated(), x_test)
    return float((logits.argmax(axis=1) == run.y_test).mean())


def ssl_parity(name, seeds, steps=None, keep=None, write=True, threads=None):
    case = CASES[name]
    config = dict(case["config"])
    if steps is not None:
        config["steps"] = steps
    per_seed = []
    for seed in seeds:
        out = os.path.join(keep, f"{name}-{DATA}-{seed}") if keep else \
            tempfile.mkdtemp(prefix="parity-ssl-")
        run = trainer.Run(name, DATA, seed, out=out, config=config)
        torch.manual_seed(seed)
        torch_model = build_torch(name, run.model, run.config)
        copy_weights(run.model, torch_model)
        print(f"seed {seed}: minigen's {name} on {DATA}, {run.config['steps']} steps -> {out}",
              flush=True)
        run.train(progress=False)
        ours = run.finish()
        trained = build_torch(name, run.model, run.config)
        copy_weights(run.model, trained)
        same = torch_metric(name, trained, run)
        print(f"seed {seed}: minigen's trained weights in PyTorch: {case['metric']} "
              f"{same:.4f} (minigen {ours[case['metric']]:.4f})", flush=True)
        print(f"seed {seed}: torch's {name} ...", flush=True)
        sps, curve = train_torch(name, torch_model, run, seed, run.config["steps"])
        theirs = torch_metric(name, torch_model, run)
        minigen_curve = [{"step": int(r["step"]), "train_loss": float(r["train_loss"])}
                         for r in _log_rows(out)]
        if not keep:
            shutil.rmtree(out)
        row = {"seed": seed, "run": out if keep else None, "minigen": ours[case["metric"]],
               "torch": theirs,
               "torch_of_minigen_weights": same,
               "seconds_per_step_minigen": ours["seconds_per_step"],
               "seconds_per_step_torch": sps, "minigen_curve": minigen_curve,
               "torch_curve": curve}
        per_seed.append(row)
        last = minigen_curve[-1]["train_loss"], curve[-1]["train_loss"]
        print(f"seed {seed}: last log period's loss minigen {last[0]:.5f}, torch "
              f"{last[1]:.5f}", flush=True)
        print(f"seed {seed}: {case['metric']} minigen {row['minigen']:.4f}, torch "
              f"{theirs:.4f}; s/step minigen {row['seconds_per_step_minigen']:.3f}, torch "
              f"{sps:.3f}", flush=True)
    means = {side: statistics.fmean(r[side] for r in per_seed) for side in ("minigen", "torch")}
    points = 100 * (means["minigen"] - means["torch"])
    meets = abs(points) <= TARGET_POINTS
    print(f"{case['metric']} over seeds {list(seeds)}: minigen {means['minigen']:.4f}, torch "
          f"{means['torch']:.4f}, difference {points:+.2f} points (allowed {TARGET_POINTS}: "
          f"{'ok' if meets else 'MISSED'})")
    result = {"model": name, "data": DATA, "seeds": list(seeds), "config": run.config,
              "metric": case["metric"], "mean_minigen": means["minigen"],
              "mean_torch": means["torch"], "difference_points": points,
              "target_points": TARGET_POINTS, "meets_target": meets, "per_seed": per_seed,
              "machine": common.machine_info(threads)}
    if write:
        common.RESULTS.mkdir(exist_ok=True)
        path = common.RESULTS / f"parity-{name}-{DATA}.json"
        trainer.write_json(str(path), result)
        print(f"wrote {path}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(CASES))
    parser.add_argument("--steps", type=int, help="training steps (default: the config's "
                        "3000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both sides; default: all cores")
    parser.add_argument("--keep", metavar="DIR", help="keep minigen's runs in "
                        "DIR/MODEL-digits-SEED")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    threads = common.set_threads(args.threads or os.cpu_count())
    common.keep_freed_memory()
    ssl_parity(args.model, args.seeds, args.steps, args.keep, not args.no_write, threads)


if __name__ == "__main__":
    main()
