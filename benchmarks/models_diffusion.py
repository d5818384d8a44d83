"""M8, one DDPM training step (forward, backward, Adam update) on digits, batch 128, against
the PyTorch build of the same model (benchmarks.torch_models.ddpm); target <= 1.5x PyTorch
(issue 19).

The model is the checked config: T = 1000 linear betas, the 8x8 U-Net (channels 64,
multipliers 1 and 2, GroupNorm(8), one-head attention at 4x4), epsilon prediction with the
simple loss, Adam 2e-4. PyTorch starts from minigen's initial weights (copied by name), and
the batch is the trainer's first. A step on each side is what its training loop does per
step: draw t and eps, the loss, zero the gradients, backward, Adam step; PyTorch gets its t
and eps from torch's generator, which costs it no more than minigen's draws cost minigen.

Before timing, both sides compute the loss and every parameter gradient on the same batch,
t and eps and the same weights, and must agree to float32 rounding. conv_out starts at zero,
which leaves every other gradient zero: for the check only, both sides first give it the
same small random weights. The timing is benchmarks.harness's case M8 (each side in a
process of its own):

    python -m benchmarks.harness --cases M8
"""
import numpy as np
import torch

import minigen as mg
from minigen import data, models, trainer
from minigen.random import Generator

from . import common
from .parity import copy_weights
from .torch_models.ddpm import DDPM

CONFIG = dict(T=1000, schedule="linear", channels=64, batch_size=128, lr=2e-4)
SEED = 0


def build():
    """minigen's ddpm as the trainer builds it, the PyTorch copy, and the first batch."""
    x_train, y_train = data.load("digits", "train")
    spec = trainer.data_spec("digits", x_train, y_train)
    entry = models.get("ddpm")
    config = models.make_config(entry, CONFIG)
    model = entry.cls(spec, generator=Generator([SEED, 0]), **models.model_config(config))
    torch_model = DDPM(spec.shape, spec.levels, model.schedule.betas, model.variance,
                       channels=model.net.channels, channel_mults=model.net.mults,
                       groups=config["groups"], clip_denoised=model.clip_denoised)
    copy_weights(model, torch_model)
    batch = x_train[data.BatchSampler(len(x_train), config["batch_size"], SEED).indices(0)]
    return model, torch_model, batch


def check_same_loss(model, torch_model, batch):
    """Loss and parameter gradients of both sides on the same batch, t and eps, with
    conv_out given the same small random weights on both (see the module docstring). The
    attention's key bias has no gradient but rounding (softmax ignores a constant added to
    every key of a query) and is left out."""
    rng = np.random.default_rng(SEED)
    conv_out = (model.net.conv_out.weight, model.net.conv_out.bias)
    saved = [p.numpy().copy() for p in conv_out]
    for p in conv_out:
        p.data[...] = (0.05 * rng.standard_normal(p.shape)).astype(p.dtype)
    copy_weights(model, torch_model)
    t, eps = model.training_noise(len(batch), Generator([SEED, 1]))
    loss, _ = model.objective(mg.tensor(batch), t, eps)
    params = dict(model.named_parameters())
    grads = mg.grad(loss, list(params.values()))
    torch_loss, _ = torch_model.loss(torch.from_numpy(batch), torch.from_numpy(t),
                                     torch.from_numpy(eps.numpy()))
    torch_params = dict(torch_model.named_parameters())
    torch_grads = torch.autograd.grad(torch_loss, [torch_params[n] for n in params])
    common.check_close("M8 loss", float(loss.numpy()), torch_loss.item(), rtol=1e-5, atol=0)
    for name, g, theirs in zip(params, grads, torch_grads):
        if name.endswith("attn.k.bias"):
            continue
        theirs = theirs.numpy()
        common.check_close(f"M8 gradient of {name}", g.numpy(), theirs, rtol=1e-3,
                           atol=1e-4 * float(np.abs(theirs).max()))
    for p, value in zip(conv_out, saved):
        p.data[...] = value
    copy_weights(model, torch_model)
