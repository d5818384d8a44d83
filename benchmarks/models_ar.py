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
the same weights, and must agree to float32 rounding. The timing is benchmarks.harness's
(each side in a process of its own; M4f and M5f are M4's and M5's models at full size):

    python -m benchmarks.harness --cases M1 M2 M3 M4 M5
"""
from dataclasses import dataclass

import numpy as np
import torch

import minigen as mg
from minigen import data, models, trainer
from minigen.random import Generator

from . import common
from .parity import copy_weights
from .torch_models.gated_pixelcnn import GatedPixelCNN
from .torch_models.made import MADE
from .torch_models.pixelcnn import PixelCNN
from .torch_models.transformer import Transformer
from .torch_models.wavenet import WaveNet

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
