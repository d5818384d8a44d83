"""M6 and M6f, one RealNVP training step (forward, backward, Adam update) against the
PyTorch build of the same model (benchmarks.torch_models.realnvp).

M6 is the parity config on digits, batch 128: 6 checkerboard affine couplings, each s and t
from a 3x3 conv net with 64 channels and two hidden layers, logit transform with alpha
0.05, on (128, 1, 8, 8) images. M6f is issue 20's full size: the multi-scale RealNVP that
the README trains on fashion-mnist (`scales=3 norm=actnorm`, batch 64, the registry's
defaults otherwise: 64 channels, two hidden layers, alpha 0.05; 697,585 parameters) on
(64, 1, 28, 28) images. (The bare defaults, scales=1, would be M6's single-scale model
on 28x28 images, not the multi-scale architecture.) Both use Adam with lr 1e-3. PyTorch
starts from minigen's initial weights (copied by name; actnorm initialised on the first
batch first, as minigen's first training step would), and the batch is the trainer's
first. A step on each side is what its training loop does per step: dequantize the batch
with its own noise, loss, zero the gradients, backward, Adam step.

Before timing, both sides compute the loss and every parameter gradient on the same batch,
the same noise and the same weights, and must agree to float32 rounding. The timing is
benchmarks.harness's cases M6 and M6f (each side in a process of its own):

    python -m benchmarks.harness --cases M6 M6f
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
FULL_CONFIG = dict(scales=3, norm="actnorm", batch_size=64, lr=1e-3)
SEED = 0


def build_pair(spec, config, batch):
    """minigen's realnvp for `spec` with `config` over the registry's defaults, as the
    trainer builds it, and the PyTorch copy with the same weights. Actnorm initialises on
    its first batch in training; so minigen's runs on `batch` first (without a gradient)
    and its `initialized` flags go over with the weights, else PyTorch's actnorm would
    initialise again on its own first batch."""
    entry = models.get("realnvp")
    config = models.make_config(entry, config)
    model = entry.cls(spec, generator=Generator([SEED, 0]), **models.model_config(config))
    torch_model = RealNVP(spec.shape, spec.levels, config["couplings"], config["channels"],
                          config["hidden_layers"], config["alpha"], scales=config["scales"],
                          norm=config["norm"])
    if config["norm"] == "actnorm":
        with mg.no_grad():
            model.loss(mg.tensor(batch), Generator([SEED, 1]))
    copy_weights(model, torch_model)
    flags = {name: torch.from_numpy(np.array(value))
             for name, value in model.state_dict().items() if name.endswith(".initialized")}
    torch_model.load_state_dict(flags, strict=False)
    return model, torch_model


def _build(data_name, config):
    x_train, y_train = data.load(data_name, "train")
    spec = trainer.data_spec(data_name, x_train, y_train)
    batch = x_train[data.BatchSampler(len(x_train), config["batch_size"], SEED).indices(0)]
    model, torch_model = build_pair(spec, config, batch)
    return spec, model, torch_model, batch


def build():
    """M6: (spec, minigen's realnvp, the PyTorch copy, the trainer's first batch)."""
    return _build("digits", CONFIG)


def build_full():
    """M6f: (spec, minigen's multi-scale realnvp, the PyTorch copy, the trainer's first
    batch of fashion-mnist)."""
    return _build("fashion-mnist", FULL_CONFIG)


def check_same_loss(spec, model, torch_model, batch, case="M6"):
    """Loss and parameter gradients of both sides on the same noise: minigen's Generator(s)
    draws u with NumPy's default_rng(s).uniform, so PyTorch gets that u. Returns the
    differences seen: the loss's relative difference, and for the gradients the largest
    over parameters of max |ours - theirs| / max |theirs|.

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
    ours_loss, theirs_loss = float(loss.numpy()), torch_loss.item()
    common.check_close(f"{case} loss", ours_loss, theirs_loss, rtol=1e-5, atol=0)
    by_name = dict(zip(torch_params, torch_grads))
    gradient_diff = 0.0
    for name, g in zip(params, grads):
        ours, theirs = g.numpy(), by_name[name].numpy()
        largest = float(np.abs(theirs).max())
        common.check_close(f"{case} gradient of {name}", ours, theirs, rtol=1e-3,
                           atol=1e-4 * largest)
        gradient_diff = max(gradient_diff,
                            float(np.abs(ours - theirs).max()) / max(largest, 1e-30))
    return {"loss": abs(ours_loss - theirs_loss) / abs(theirs_loss),
            "gradients": gradient_diff}
