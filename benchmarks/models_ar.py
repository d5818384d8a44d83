"""M1-M5, one training step (forward, backward, Adam update) of each autoregressive model
against its PyTorch build (benchmarks/torch_models/), float32, the same threads.

    M1  made, hidden 512-512                                   digits-bin, batch 100
    M2  pixelcnn, type A 7x7, 5 residual type B 3x3 blocks,    fashion-mnist-bin, batch 32
        64 channels
    M3  gated-pixelcnn, 5 layers, 64 channels, 3x3             fashion-mnist-bin, batch 32
    M4  wavenet, dilations 1..32 twice (12 blocks), 64         digits-bin as length-64
        channels, kernel 2                                     sequences, batch 100
    M5  transformer, d 64, 4 heads, 2 layers, MLP 256          digits-bin as length-64
                                                               sequences, batch 100

Each minigen model is built as the trainer builds it (its registry entry, seed 0), PyTorch
starts from its initial weights (copied by name) and both get the trainer's first batch; a
step on each side is what its training loop does: loss, zero the gradients, backward, Adam
step (lr 1e-3). PyTorch's masked convolutions multiply the mask into the full weight, as
PyTorch users write PixelCNN; its causal convolutions are F.conv1d on a left-padded input
and its attention scaled_dot_product_attention(is_causal=True) (BENCHMARKS.md).

Before timing, both sides compute the loss and every parameter gradient on that batch with
the same weights, and must agree to float32 rounding. minigen's first step (where Numba
compiles, or loads its kernels from the on-disk cache) is timed on its own line.
OMP_WAIT_POLICY=PASSIVE unless already set, as in benchmarks.conv.

    python -m benchmarks.models_ar [--threads N] [--repeats R] [--no-write]
"""
import os
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import minigen as mg  # noqa: E402
from minigen import data, models, optim, trainer  # noqa: E402
from minigen.random import Generator  # noqa: E402

from . import common  # noqa: E402
from .parity import copy_weights  # noqa: E402
from .torch_models.gated_pixelcnn import GatedPixelCNN  # noqa: E402
from .torch_models.made import MADE  # noqa: E402
from .torch_models.pixelcnn import PixelCNN  # noqa: E402
from .torch_models.transformer import Transformer  # noqa: E402
from .torch_models.wavenet import WaveNet  # noqa: E402

NAME = "models-ar"
SEED = 0
LR = 1e-3


@dataclass
class Benchmark:
    id: str
    model: str     # minigen's registry name
    data: str
    config: dict   # the model's keys
    batch_size: int
    build_torch: callable  # (spec, config, minigen model) -> the PyTorch module

    @property
    def title(self):
        return f"{self.id} {self.model} train step, {self.data} {self.batch_size}"


BENCHMARKS = [
    Benchmark("M1", "made", "digits-bin", dict(hidden=(512, 512)), 100,
              lambda spec, c, m: MADE(spec.dims, spec.levels, c["hidden"], m.masks[0])),
    Benchmark("M2", "pixelcnn", "fashion-mnist-bin",
              dict(channels=64, blocks=5, first_kernel=7, kernel=3), 32,
              lambda spec, c, m: PixelCNN(spec.shape, spec.levels, c["channels"], c["blocks"],
                                          c["first_kernel"], c["kernel"])),
    Benchmark("M3", "gated-pixelcnn", "fashion-mnist-bin",
              dict(channels=64, layers=5, kernel=3), 32,
              lambda spec, c, m: GatedPixelCNN(spec.shape, spec.levels, c["channels"],
                                               c["layers"], c["kernel"])),
    Benchmark("M4", "wavenet", "digits-bin",
              dict(channels=64, dilations=(1, 2, 4, 8, 16, 32) * 2, kernel=2), 100,
              lambda spec, c, m: WaveNet(spec.shape, spec.levels, c["channels"],
                                         c["dilations"], c["kernel"], c["positions"])),
    Benchmark("M5", "transformer", "digits-bin",
              dict(d_model=64, heads=4, layers=2, mlp=256), 100,
              lambda spec, c, m: Transformer(spec.shape, spec.levels, c["d_model"], c["heads"],
                                             c["layers"], c["mlp"], c["positions"])),
]


def build(bench):
    """minigen's model as the trainer builds it, the PyTorch copy, and the first batch."""
    x_train, y_train = data.load(bench.data, "train")
    spec = trainer.data_spec(bench.data, x_train, y_train)
    entry = models.get(bench.model)
    config = models.model_config(models.make_config(entry, bench.config))
    model = entry.cls(spec, generator=Generator([SEED, 0]), **config)
    torch_model = bench.build_torch(spec, config, model)
    copy_weights(model, torch_model)
    batch = x_train[data.BatchSampler(len(x_train), bench.batch_size, SEED).indices(0)]
    return model, torch_model, batch


def check_same_loss(bench, model, torch_model, batch):
    """The loss and every parameter gradient on the same batch and weights; the likelihood
    is exact on both sides, so there is no noise to share."""
    params = dict(model.named_parameters())
    loss = model.loss(mg.tensor(batch), Generator([SEED, 1]))
    grads = mg.grad(loss, list(params.values()))
    torch_params = dict(torch_model.named_parameters())
    torch_loss = torch_model.loss(torch.from_numpy(batch))
    torch_grads = torch.autograd.grad(torch_loss, [torch_params[n] for n in params])
    common.check_close(f"{bench.id} loss", float(loss.numpy()), torch_loss.item(),
                       rtol=1e-5, atol=0)
    for name, g, theirs in zip(params, grads, torch_grads):
        theirs = theirs.numpy()
        common.check_close(f"{bench.id} gradient of {name}", g.numpy(), theirs, rtol=1e-3,
                           atol=1e-4 * float(np.abs(theirs).max()))


def bench_row(bench, args):
    model, torch_model, batch = build(bench)
    check_same_loss(bench, model, torch_model, batch)
    optimizer = optim.Adam(list(model.parameters()), lr=LR)
    torch_optimizer = torch.optim.Adam(torch_model.parameters(), lr=LR)
    x, x_torch = mg.tensor(batch), torch.from_numpy(batch)
    generator = Generator([SEED, 1])

    step = common.train_step(lambda: model.loss(x, generator), optimizer)
    step_torch = common.train_step(lambda: torch_model.loss(x_torch), torch_optimizer)
    timing = common.time_pair(step, step_torch, args.repeats, args.warmup)
    first, first_torch = timing["first_call_s"]
    print(f"{bench.id} first train step: minigen {first * 1e3:.1f} ms (Numba compiles or "
          f"loads its kernels here), torch {first_torch * 1e3:.1f} ms", flush=True)
    row = common.row(bench.title, timing, "torch", unit="ms", target=1.5, goal=1.0)
    row["first_call_s"] = {"minigen": first, "torch": first_torch}
    return row


def run(args):
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}", flush=True)
    return [bench_row(bench, args) for bench in BENCHMARKS]


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
