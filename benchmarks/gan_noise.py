"""How far apart two trainings of the same DCGAN land when nothing but float32 rounding
differs: the noise floor under issue 16's gan parity target (fid_local means over 3 seeds
within 10%).

    python -m benchmarks.gan_noise [--seeds 0 1 2] [--steps 3000] [--threads 1]

For each seed, PyTorch's build of the checked gan config (benchmarks/torch_models/gan.py)
is trained twice by the parity loop (benchmarks.parity.train_torch_gan: minigen's initial
weights, batches and noise): once from minigen's initial weights as they are, once with
every initial weight w replaced by w * (1 + 2^-23), its float32 neighbour (a relative step
of one unit in the last place; zero weights stay zero). Both are scored by minigen.quality
exactly as the parity run scores PyTorch. The two sides of this comparison are the same
program; what separates them is the rounding that separates minigen from PyTorch too, so
the spread here is what the parity target is measured against. Writes
benchmarks/results/gan-noise-digits.json.
"""
import argparse
import statistics

import torch

from minigen import trainer

from . import common
from .parity import GAN_CASES, copy_weights, torch_gan_quality, train_torch_gan

ULP = 2.0 ** -23


def nudge(model):
    """Every parameter moved to its float32 neighbour away from zero."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1.0 + ULP)


def main(argv=None):
    from .torch_models.gan import DCGAN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gan", choices=sorted(GAN_CASES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    threads = common.set_threads(args.threads)
    case = GAN_CASES[args.model]
    config = dict(case["config"])
    if args.steps is not None:
        config["steps"] = args.steps
    rows = []
    for seed in args.seeds:
        run = trainer.Run(args.model, case["data"], seed, out=None, config=config)
        row = {"seed": seed}
        for side in ("as_is", "nudged"):
            torch.manual_seed(seed)
            model = DCGAN(run.model.latent, run.spec.shape, run.model.channels, case["loss"],
                          getattr(run.model, "gp_weight", 10.0))
            copy_weights(run.model, model)
            if side == "nudged":
                nudge(model)
            train_torch_gan(model, run, seed, run.config["steps"])
            quality = torch_gan_quality(model, run)
            row[f"fid_local_{side}"] = quality["fid_local"]
            row[f"kid_local_{side}"] = quality["kid_local"]
            print(f"seed {seed} {side}: fid_local {quality['fid_local']:.4f}, kid_local "
                  f"{quality['kid_local']:.3f}", flush=True)
        rows.append(row)
    means = {f"fid_local_{side}": statistics.fmean(r[f"fid_local_{side}"] for r in rows)
             for side in ("as_is", "nudged")}
    rel = (means["fid_local_nudged"] - means["fid_local_as_is"]) / means["fid_local_as_is"]
    print(f"fid_local over seeds {args.seeds}: as is {means['fid_local_as_is']:.4f}, nudged "
          f"{means['fid_local_nudged']:.4f}, relative difference {rel:+.1%}")
    if not args.no_write:
        result = {"model": args.model, "data": case["data"], "seeds": args.seeds,
                  "steps": run.config["steps"], "per_seed": rows, **means,
                  "relative_difference": rel, "machine": common.machine_info(threads)}
        common.RESULTS.mkdir(exist_ok=True)
        path = common.RESULTS / f"{args.model}-noise-{case['data']}.json"
        trainer.write_json(str(path), result)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
