"""M6, one RealNVP training step (forward, backward, Adam update) on digits, batch 128,
against the PyTorch build of the same model (benchmarks.torch_models.realnvp).

The model is the parity config: 6 checkerboard affine couplings, each s and t from a 3x3
conv net with 64 channels and two hidden layers, logit transform with alpha 0.05, on
(128, 1, 8, 8) images; Adam with lr 1e-3. PyTorch starts from minigen's initial weights
(copied by name), and the batch is the trainer's first. A step on each side is what its
training loop does per step: dequantize the batch with its own noise, loss, zero the
gradients, backward, Adam step.

Before timing, both sides compute the loss and every parameter gradient on the same batch,
the same noise and the same weights, and must agree to float32 rounding. The timing is
benchmarks.harness's case M6 (each side in a process of its own):

    python -m benchmarks.harness --cases M6
"""
import math

import numpy as np
import torch

import minigen as mg
from minigen import data, models, trainer
from minigen.random import Generator

from . import common
from .parity import copy_weights
from .torch_models.realnvp import RealNVP

CONFIG = dict(couplings=6, channels=64, hidden_layers=2, alpha=0.05, batch_size=128, lr=1e-3)
SEED = 0


def build():
    """minigen's realnvp as the trainer builds it, the PyTorch copy, and the first batch."""
    x_train, y_train = data.load("digits", "train")
    spec = trainer.data_spec("digits", x_train, y_train)
    entry = models.get("realnvp")
    config = models.make_config(entry, CONFIG)
    model = entry.cls(spec, generator=Generator([SEED, 0]), **models.model_config(config))
    torch_model = RealNVP(spec.shape, spec.levels, config["couplings"], config["channels"],
                          config["hidden_layers"], config["alpha"])
    copy_weights(model, torch_model)
    batch = x_train[data.BatchSampler(len(x_train), config["batch_size"], SEED).indices(0)]
    return spec, model, torch_model, batch


def check_same_loss(spec, model, torch_model, batch):
    """Loss and parameter gradients of both sides on the same noise: minigen's Generator(s)
    draws u with NumPy's default_rng(s).uniform, so PyTorch gets that u.

    The last conv of every coupling starts at zero, which makes every coupling the identity
    and every other gradient zero; so the check first gives those layers the same small
    random weights on both sides (the timing that follows does the same work either way)."""
    rng = np.random.default_rng(SEED)
    params = dict(model.named_parameters())
    for name, p in params.items():
        if p.numpy().any() or name.endswith("scale"):
            continue
        p.data[...] = (0.05 * rng.standard_normal(p.shape)).astype(p.dtype)
    copy_weights(model, torch_model)
    loss = model.loss(mg.tensor(batch), Generator(1))
    grads = mg.grad(loss, list(params.values()))
    u = np.random.default_rng(1).uniform(0.0, 1.0, batch.shape).astype(np.float32)
    y = (torch.from_numpy(batch).float() + torch.from_numpy(u)) * (1.0 / spec.levels)
    torch_loss = -torch_model.log_prob(y).mean() + spec.dims * math.log(spec.levels)
    torch_params = dict(torch_model.named_parameters())
    torch_grads = torch.autograd.grad(torch_loss, list(torch_params.values()))
    common.check_close("M6 loss", float(loss.numpy()), torch_loss.item(), rtol=1e-5, atol=0)
    by_name = dict(zip(torch_params, torch_grads))
    for name, g in zip(params, grads):
        theirs = by_name[name].numpy()
        common.check_close(f"M6 gradient of {name}", g.numpy(), theirs, rtol=1e-3,
                           atol=1e-4 * float(np.abs(theirs).max()))

