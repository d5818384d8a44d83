"""The `minigen` command: list, train, sample, eval, probe, receptive-field.

Every error a user can make ends in one line `minigen: error: ...` and exit status 2 (a
diverged run: 3); numbers are checked where they are parsed, naming the argument and its
range. SIGINT and SIGTERM stop a run at a step boundary with a checkpoint (130, 143)."""
import argparse
import contextlib
import json
import os
import signal
import sys
import threading

import numpy as np

from . import backend, checkpoint, data, memory, models, pictures, runfolder, trainer
from .autoregressive.pixel_model import PixelModel, receptive_field
from .random import Generator


def _checkpoint_path(target):
    return os.path.join(target, "checkpoint.npz") if os.path.isdir(target) else target


def cmd_list(args):
    print("models:")
    for entry in models.list_models():
        print(f"  {entry.name:<16} {entry.description}  [data: {', '.join(entry.data)}]")
    print("datasets:")
    for name, description in data.list_datasets():
        print(f"  {name:<18} {description}")


def cmd_train(args):
    overrides = list(args.config or [])
    for key in ("steps", "batch_size", "lr"):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.resume:
        settings = {"--steps": args.steps, "--batch-size": args.batch_size, "--lr": args.lr,
                    "--seed": args.seed, "--early-stop": args.early_stop,
                    "--config": args.config}
        given = [flag for flag, value in settings.items() if value is not None]
        if given:
            raise ValueError(f"--resume continues a run with the settings it was started "
                             f"with; {', '.join(given)} cannot change them (train a new run "
                             f"with --overwrite or another --out instead)")
    _check_device(args.device)
    metrics = trainer.train(args.model, args.data, seed=args.seed or 0, out=args.out,
                            device=args.device, data_dir=args.data_dir, config=overrides,
                            early_stop=args.early_stop, resume=args.resume,
                            overwrite=args.overwrite, progress=not args.quiet)
    shown = {k: v for k, v in metrics.items() if k not in ("config", "pictures")}
    print(json.dumps(shown, indent=2))


def cmd_profile(args):
    """Where one training step's time goes: `warmup` steps untimed (Numba compiles, caches
    fill), then `steps` steps under minigen.profiler, the op table per step."""
    from . import profiler
    overrides = list(args.config or [])
    if args.batch_size is not None:
        overrides.append(f"batch_size={args.batch_size}")
    _check_device(args.device)
    run = trainer.Run(args.model, args.data, args.seed or 0, out=None, device=args.device,
                      data_dir=args.data_dir, config=overrides)
    for _ in range(args.warmup):
        run._train_step()
        run.step += 1
    with profiler.profile() as prof:
        for _ in range(args.steps):
            run._train_step()
            run.step += 1
    print(f"{args.model} on {args.data}, batch {run.config['batch_size']}, "
          f"{int(sum(p.size for p in run.params)):,} parameters, {args.steps} steps after "
          f"{args.warmup} untimed")
    print(prof.table(steps=args.steps, top=args.top))


def _set_sampling(run, overrides):
    """`minigen sample --config`: sampling settings of the trained model (its
    sampling_keys), parsed and range-checked as at training."""
    keys = [models._split_override(o)[0] for o in overrides]
    allowed = type(run.model).sampling_keys
    refused = [k for k in keys if k not in allowed]
    if refused:
        raise ValueError(f"--config {', '.join(refused)}: not a sampling setting of "
                         f"{run.entry.name} (what it learned stays as trained); "
                         + (f"its sampling settings: {', '.join(allowed)}" if allowed else
                            "it has none"))
    settings = models.make_config(run.entry, {**run.config, **dict(
        models._split_override(o) for o in overrides)})
    run.model.set_sampling(**{k: settings[k] for k in keys})


def cmd_sample(args):
    """Samples of a trained run (with its evaluation weights: the EMA where it keeps one):
    their picture (.png, or .txt for text) or the raw samples as data (.npy), in one file:
    --out, by default RUN/samples-K (the first K free), never a file of the training."""
    _check_device(args.device)
    run = trainer.Run.from_checkpoint(_checkpoint_path(args.target), device=args.device,
                                      data_dir=args.data_dir)
    if args.config:
        _set_sampling(run, args.config)
    picture = pictures.picture_suffix(run.spec)
    out = args.out or runfolder.free_name(run.out, "samples", picture)
    suffix = os.path.splitext(out)[1].lower()
    if suffix not in (picture, ".npy"):
        raise ValueError(f"--out {out}: samples of {run.data_name} are written as {picture} "
                         f"(their picture) or .npy (the samples as data), not "
                         f"{suffix or 'a file without a suffix'}")
    if os.path.isdir(out):
        raise ValueError(f"--out {out} is a folder; name the file to write")
    if args.label is not None and not run.model.num_classes:
        raise ValueError(f"--label: {run.entry.name} was not trained as a conditional model "
                         f"(--config conditional=true)")
    if args.label is not None and not 0 <= args.label < run.spec.num_classes:
        raise ValueError(f"--label {args.label}: {run.data_name} has classes 0 to "
                         f"{run.spec.num_classes - 1}")
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {out}: cannot create {folder} ({e.strerror})") from None
    # drawn apart and moved to `out`: the model's companion pictures never land on files
    with run.evaluation_weights(), runfolder.scratch(folder) as drawn:
        if suffix == ".npy":
            samples = trainer.sample_examples(run.model, args.n, Generator(args.seed),
                                              args.label)
            checkpoint.save_array(os.path.join(drawn, "samples.npy"), samples)
        else:
            trainer.draw_samples(run.model, run.spec, os.path.join(drawn, "samples.png"),
                                 Generator(args.seed), run.x_train, args.n, labels=args.label)
        os.replace(os.path.join(drawn, "samples" + suffix), out)
    print(f"wrote {args.n} samples to {out}")


def cmd_eval(args):
    _check_device(args.device)
    run = trainer.Run.from_checkpoint(_checkpoint_path(args.target), device=args.device,
                                      data_dir=args.data_dir)
    x, y = data.load(run.data_name, args.split, data_dir=args.data_dir)
    result = {"model": run.entry.name, "data": run.data_name, "split": args.split,
              "step": run.step,
              **trainer.prefixed(args.split, run.evaluate_data(x, y), run.spec)}
    print(json.dumps(result, indent=2))


def cmd_probe(args):
    """linear_probe_acc of a trained run: a logistic regression on the Fisher scores of its
    training images, scored on the test images; added to the run's metrics.json (whose
    folder is locked and checked writable before the work)."""
    from . import eval as evaluation
    _check_device(args.device)
    run = trainer.Run.from_checkpoint(_checkpoint_path(args.target), device=args.device,
                                      data_dir=args.data_dir)
    x_train, y_train = data.load(run.data_name, "train", data_dir=args.data_dir)
    x_test, y_test = data.load(run.data_name, "test", data_dir=args.data_dir)
    if y_train is None:
        raise ValueError(f"probe: {run.data_name} has no labels to probe for")
    metrics_path = os.path.join(run.out, "metrics.json")
    writes = os.path.exists(metrics_path)
    with runfolder.lock(run.out) if writes else contextlib.nullcontext():
        with run.evaluation_weights():
            accuracy = evaluation.linear_probe_acc(run.model, x_train, y_train, x_test,
                                                   y_test, dims=args.dims, seed=run.seed,
                                                   fisher_kernel=args.fisher_kernel,
                                                   progress=not args.quiet)
        probe = {"linear_probe_acc": accuracy, "fisher_dims": args.dims,
                 "fisher_kernel": args.fisher_kernel}
        if writes:
            with open(metrics_path) as f:
                metrics = json.load(f)
            metrics.update(probe)
            trainer.write_json(metrics_path, metrics)
    print(json.dumps({"model": run.entry.name, "data": run.data_name, "step": run.step,
                      **probe}, indent=2))


def cmd_receptive_field(args):
    """Draw which input pixels one output pixel of each model depends on, found with the
    engine (the gradient of that pixel's logits), for untrained models of the given config
    on binary images of side --size."""
    size = args.size
    row, col = args.pixel if args.pixel else (size // 2, size // 2)
    if not (0 <= row < size and 0 <= col < size):
        raise ValueError(f"--pixel {row} {col} is outside a {size}x{size} image")
    if os.path.splitext(args.out)[1].lower() != ".png":
        raise ValueError(f"--out {args.out}: the picture is written as .png")
    spec = models.DataSpec("receptive-field", (1, size, size), "discrete", levels=2)
    maps = []
    for name in args.models:
        entry = models.get(name)
        config = models.model_config(models.make_config(entry, args.config or ()))
        try:
            model = entry.cls(spec, generator=Generator(args.seed), **config)
        except TypeError as e:
            raise ValueError(f"{name} is not an image model with a pixel grid ({e})") from None
        if not isinstance(model, PixelModel):
            raise ValueError(f"receptive-field draws autoregressive image models "
                             f"(pixelcnn, gated-pixelcnn); {name} is not one")
        maps.append(receptive_field(model, spec.shape, (row, col))[0])
    pictures.receptive_fields(maps, (row, col), args.models, args.out)
    for name, seen in zip(args.models, maps):
        before = (np.arange(size)[:, None] * size + np.arange(size)) < row * size + col
        print(f"{name}: output ({row}, {col}) sees {int(seen.sum())} input pixels; "
              f"{int((seen & ~before).sum())} at or after it")
    print(f"wrote {args.out}")


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors worded as every other error of the command."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"minigen: error: {message}\n")


def _number(kind, interval):
    """An argparse type: a number of `kind` (int or float) in `interval` (models.Range)."""
    allowed = models.Range(interval)

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        problem = allowed.problem("", value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value
    return parse


def _folder(text):
    """An argparse type: a folder that exists."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is not a folder" if os.path.exists(text)
                                         else f"{text} does not exist")
    return text


def _check_device(device):
    """--device cuda where CuPy or the GPU is missing: a user's error, said before work."""
    if device == "cuda":
        try:
            backend.cupy()
        except RuntimeError as e:
            raise ValueError(f"--device cuda: {e}") from None


COUNT, SEED = _number(int, "[1, inf)"), _number(int, "[0, inf)")


def build_parser():
    parser = _Parser(prog="minigen", description="Deep generative models "
                     "from scratch: train, sample and evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="models and datasets, one line each").set_defaults(
        func=cmd_list)

    p = sub.add_parser("train", help="train a model on a dataset")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=COUNT)
    p.add_argument("--batch-size", dest="batch_size", type=COUNT)
    p.add_argument("--lr", type=_number(float, "(0, inf)"))
    p.add_argument("--seed", type=SEED, help="(default 0)")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])  # None: the default
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-SEED)")
    p.add_argument("--early-stop", dest="early_stop", type=COUNT, metavar="N",
                   help="every N steps evaluate on the validation split; keep the best")
    p.add_argument("--data-dir", dest="data_dir", type=_folder)
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE")
    again = p.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue the run in the run "
                       "folder from its checkpoint")
    again.add_argument("--overwrite", action="store_true", help="replace the run the run "
                       "folder holds (without it, a folder holding a run is refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("profile", help="time one training step op by op (minigen's "
                       "profiler): forward, backward and what no op accounts for")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=COUNT, default=5, help="profiled steps (default 5)")
    p.add_argument("--warmup", type=_number(int, "[0, inf)"), default=2,
                   help="untimed steps first (default 2)")
    p.add_argument("--batch-size", dest="batch_size", type=COUNT)
    p.add_argument("--top", type=COUNT, default=25, help="rows shown (default 25)")
    p.add_argument("--seed", type=SEED, help="(default 0)")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])  # None: the default
    p.add_argument("--data-dir", dest="data_dir", type=_folder)
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("sample", help="draw samples from a trained model")
    p.add_argument("target", metavar="DIR|CHECKPOINT")
    p.add_argument("--n", type=COUNT, default=64)
    p.add_argument("--label", type=SEED, help="the class to draw, for a conditional model "
                   "(default: each class in turn)")
    p.add_argument("--out", help="a .png (or .txt for text) picture or .npy samples (default "
                   "DIR/samples-K.png, the first K free)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])  # None: the default
    p.add_argument("--data-dir", dest="data_dir", type=_folder)
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE", help="sampling settings of "
                   "the trained model (ddpm: sampler, sample_steps, eta; GANs: truncation; ebm, jem: "
                   "sample_from, sample_steps; score: steps_per_level, step_lr, denoise)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="evaluate a trained model")
    p.add_argument("target", metavar="DIR|CHECKPOINT")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])  # None: the default
    p.add_argument("--data-dir", dest="data_dir", type=_folder)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("probe", help="linear_probe_acc: a logistic regression on the "
                       "Fisher scores of a trained likelihood model (into metrics.json)")
    p.add_argument("target", metavar="DIR|CHECKPOINT")
    p.add_argument("--dims", type=COUNT, default=4096, help="count-sketch size of the "
                   "Fisher scores (default 4096)")
    p.add_argument("--fisher-kernel", dest="fisher_kernel", action="store_true",
                   help="normalise the scores by the diagonal Fisher information of the "
                   "training split")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])  # None: the default
    p.add_argument("--data-dir", dest="data_dir", type=_folder)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("receptive-field", help="draw the input pixels one output pixel "
                       "depends on, for models side by side")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--size", type=COUNT, default=16, help="image side (default 16)")
    p.add_argument("--pixel", type=SEED, nargs=2, metavar=("ROW", "COL"),
                   help="the output pixel (default: the centre)")
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default="receptive_field.png", help="a .png file (default "
                   "receptive_field.png)")
    p.set_defaults(func=cmd_receptive_field)
    return parser


def _message(error):
    """The one line a user reads for an error."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, MemoryError):
        return (f"out of memory ({error or 'MemoryError'}); a smaller model (--config), "
                f"--batch-size or eval_batch_size needs less")
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error)


def _stop(signum, frame):
    raise trainer.Interrupted(signum, f"stopped by {signal.Signals(signum).name}")


def main(argv=None):
    """Run one command; returns the exit status: 0, 1 for a fault of minigen itself, 2 for
    an error of the user's (one line `minigen: error: ...`; MINIGEN_DEBUG=1 shows the
    traceback), 3 for a run that diverged, 128 + the signal for SIGINT and SIGTERM."""
    memory.keep_freed_memory()  # a training process reuses its large arrays (minigen/memory.py)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already printed
        return e.code
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):  # as Ctrl-C everywhere, not a kill
            previous[signum] = signal.signal(signum, _stop)
    try:
        args.func(args)
    except trainer.Interrupted as e:
        print(f"minigen: {e}", file=sys.stderr)
        return 128 + e.signum
    except BrokenPipeError:  # output piped into head or less that closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        if os.environ.get("MINIGEN_DEBUG"):
            raise
        if isinstance(e, trainer.Diverged):
            status = 3
        elif isinstance(e, (ValueError, KeyError, OSError, MemoryError)):
            status = 2
        else:
            status = 1
            e = f"internal error, {type(e).__name__}: {e} (MINIGEN_DEBUG=1 shows where)"
        print(f"minigen: error: {_message(e) if status != 1 else e}", file=sys.stderr)
        return status
    finally:
        # called from Python with arguments: the caller's handlers come back. As the
        # program (argv None: the `minigen` command, python -m minigen.cli) the work is
        # done and the process is about to exit: a SIGTERM or Ctrl-C that lands now is
        # ignored, so the exit status says how the work ended instead of a bare kill
        for signum, handler in previous.items():
            signal.signal(signum, handler if argv is not None else signal.SIG_IGN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
