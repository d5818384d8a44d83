"""MAF against IAF on digits' shape (D = 64): the cost of a density and of a sample.

A MAF layer computes z from x in one MADE pass, and x from z in D = 64 passes; IAF uses the
same layer the other way round. So each model is timed on both of its directions with the
same batch: the negative log-likelihood of a batch of 128 test digits (dequantization,
logit transform and flow) and the sampling of 128 digits, under no_grad as in evaluation.
Each row compares a model's density with its own sampling (the "reference" column): MAF's
ratio is far below 1, IAF's far above. Both models are built with the registered default
config (layers=5, hidden=64,64), untrained; the cost does not depend on the weights.

Before timing, each model's samples are checked to carry the log-density that its forward
evaluation gives them, so that both directions compute the same flow. Pure minigen: no
PyTorch side here.

The MADE's products are small ((128, 64) @ (64, 128)). On a 2-core machine loaded by other
processes, OpenBLAS with 2 threads took 16-22 ms for one of them, against 0.08 ms with one
thread (its threads wait for a core the other processes hold), which made every figure
here 5-200x too slow. Time on a quiet machine, or with OPENBLAS_NUM_THREADS=1; the line
printed says which was set.

    python -m benchmarks.ar_flows [--threads N] [--repeats R] [--no-write]
"""

import minigen as mg
from minigen import data, models, trainer
from minigen.random import Generator

from . import common

NAME = "ar-flows"
BATCH = 128


def _model(name, spec):
    entry = models.get(name)
    config = models.model_config(models.make_config(entry))
    model = entry.cls(spec, generator=Generator(0), **config)
    model.eval()
    return model, config


def run(args):
    x, labels = data.load("digits", "test")
    spec = trainer.data_spec("digits", x, labels)
    batch = mg.tensor(x[:BATCH])
    rows = []
    for name in ("maf", "iaf"):
        model, config = _model(name, spec)
        with mg.no_grad():
            y, log_p = model.sample_with_log_density(BATCH, Generator(1))
            common.check_close(f"{name}: log-density of its samples, sampling pass vs "
                               f"density pass", log_p.numpy(), model.log_density(y).numpy(),
                               rtol=1e-4, atol=1e-2)

        def density():
            with mg.no_grad():
                return model.nll(batch)

        def sampling():
            with mg.no_grad():
                return model.sample(BATCH, Generator(2))

        timing = common.time_pair(density, sampling, args.repeats, args.warmup)
        one, many = ("density", "sampling") if name == "maf" else ("sampling", "density")
        row = common.row(f"{name} density (nll of {BATCH} digits, D={spec.dims})", timing,
                         f"{name} sampling of {BATCH}", unit="ms")
        row.update(model=name, layers=config["layers"], hidden=list(config["hidden"]),
                   batch=BATCH, dims=spec.dims, one_pass=one, dims_passes=many)
        rows.append(row)
    return rows


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
