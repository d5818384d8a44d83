"""The `minigen` command: list, train, sample, eval, probe, receptive-field."""
import argparse
import json
import os
import sys

import numpy as np

from . import checkpoint, data, memory, models, pictures, trainer
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
    metrics = trainer.train(args.model, args.data, seed=args.seed, out=args.out,
                            device=args.device, data_dir=args.data_dir, config=overrides,
                            early_stop=args.early_stop, resume=args.resume,
                            progress=not args.quiet)
    shown = {k: v for k, v in metrics.items() if k != "config"}
    print(json.dumps(shown, indent=2))


def cmd_sample(args):
    """Samples of a trained run (with its evaluation weights: the EMA where it keeps one):
    a picture (.png, or .txt for text) or the raw samples as data (.npy)."""
    if args.n < 1:
        raise ValueError(f"--n {args.n}: the number of samples must be at least 1")
    run = trainer.Run.from_checkpoint(_checkpoint_path(args.target), device=args.device,
                                      data_dir=args.data_dir)
    out = args.out or os.path.join(run.out, "samples.png")
    if args.label is not None and not run.model.num_classes:
        raise ValueError(f"--label: {run.entry.name} was not trained as a conditional model "
                         f"(--config conditional=true)")
    if args.label is not None and not 0 <= args.label < run.spec.num_classes:
        raise ValueError(f"--label {args.label}: {run.data_name} has classes 0 to "
                         f"{run.spec.num_classes - 1}")
    with run.evaluation_weights():
        if out.endswith(".npy"):
            samples = trainer.sample_examples(run.model, args.n, Generator(args.seed),
                                              args.label)
            checkpoint.save_array(out, samples)
        else:
            trainer.draw_samples(run.model, run.spec, out, Generator(args.seed), run.x_train,
                                 args.n, labels=args.label)
    print(f"wrote {args.n} samples to {out}")


def cmd_eval(args):
    run = trainer.Run.from_checkpoint(_checkpoint_path(args.target), device=args.device,
                                      data_dir=args.data_dir)
    x, y = data.load(run.data_name, args.split, data_dir=args.data_dir)
    result = {"model": run.entry.name, "data": run.data_name, "split": args.split,
              "step": run.step, **trainer.prefixed(args.split, run.evaluate_data(x, y))}
    print(json.dumps(result, indent=2))


def cmd_probe(args):
    """linear_probe_acc of a trained run: a logistic regression on the Fisher scores of its
    training images, scored on the test images; added to the run's metrics.json."""
    from . import eval as evaluation
    run = trainer.Run.from_checkpoint(_checkpoint_path(args.target), device=args.device,
                                      data_dir=args.data_dir)
    x_train, y_train = data.load(run.data_name, "train", data_dir=args.data_dir)
    x_test, y_test = data.load(run.data_name, "test", data_dir=args.data_dir)
    if y_train is None:
        raise ValueError(f"probe: {run.data_name} has no labels to probe for")
    with run.evaluation_weights():
        accuracy = evaluation.linear_probe_acc(run.model, x_train, y_train, x_test, y_test,
                                               dims=args.dims, seed=run.seed,
                                               fisher_kernel=args.fisher_kernel,
                                               progress=not args.quiet)
    probe = {"linear_probe_acc": accuracy, "fisher_dims": args.dims,
             "fisher_kernel": args.fisher_kernel}
    result = {"model": run.entry.name, "data": run.data_name, "step": run.step, **probe}
    metrics_path = os.path.join(run.out, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
        metrics.update(probe)
        trainer.write_json(metrics_path, metrics)
    print(json.dumps(result, indent=2))


def cmd_receptive_field(args):
    """Draw which input pixels one output pixel of each model depends on, found with the
    engine (the gradient of that pixel's logits), for untrained models of the given config
    on binary images of side --size."""
    size = args.size
    row, col = args.pixel if args.pixel else (size // 2, size // 2)
    if not (0 <= row < size and 0 <= col < size):
        raise ValueError(f"--pixel {row} {col} is outside a {size}x{size} image")
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


def build_parser():
    parser = argparse.ArgumentParser(prog="minigen", description="Deep generative models "
                                     "from scratch: train, sample and evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="models and datasets, one line each").set_defaults(
        func=cmd_list)

    p = sub.add_parser("train", help="train a model on a dataset")
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", help="run folder (default runs/MODEL-DATA-SEED)")
    p.add_argument("--early-stop", dest="early_stop", type=int, metavar="N",
                   help="every N steps evaluate on the validation split; keep the best")
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's "
                   "checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained model")
    p.add_argument("target", metavar="DIR|CHECKPOINT")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--label", type=int, help="the class to draw, for a conditional model "
                   "(default: each class in turn)")
    p.add_argument("--out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--data-dir", dest="data_dir")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="evaluate a trained model")
    p.add_argument("target", metavar="DIR|CHECKPOINT")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--data-dir", dest="data_dir")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("probe", help="linear_probe_acc: a logistic regression on the "
                       "Fisher scores of a trained likelihood model (into metrics.json)")
    p.add_argument("target", metavar="DIR|CHECKPOINT")
    p.add_argument("--dims", type=int, default=4096, help="count-sketch size of the "
                   "Fisher scores (default 4096)")
    p.add_argument("--fisher-kernel", dest="fisher_kernel", action="store_true",
                   help="normalise the scores by the diagonal Fisher information of the "
                   "training split")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--data-dir", dest="data_dir")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("receptive-field", help="draw the input pixels one output pixel "
                       "depends on, for models side by side")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--size", type=int, default=16, help="image side (default 16)")
    p.add_argument("--pixel", type=int, nargs=2, metavar=("ROW", "COL"),
                   help="the output pixel (default: the centre)")
    p.add_argument("--config", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="receptive_field.png")
    p.set_defaults(func=cmd_receptive_field)
    return parser


def main(argv=None):
    memory.keep_freed_memory()  # a training process reuses its large arrays (minigen/memory.py)
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into head or less that closed: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (checkpoint.CheckpointError, FileNotFoundError, ValueError, KeyError) as e:
        if os.environ.get("MINIGEN_DEBUG"):
            raise
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"minigen: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
