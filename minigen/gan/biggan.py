"""BigGAN's two generator tricks (Brock, Donahue and Simonyan 2019, "Large Scale GAN
Training for High Fidelity Natural Image Synthesis", section 3.1).

Orthogonal regularisation, eq. 3, added to the generator's loss:

    R_beta(W) = beta || W^T W o (1 - I) ||_F^2

for every weight W of the generator taken as a matrix whose columns are the layer's filters
(one per output unit or channel), so W^T W holds the inner products of pairs of filters.
Only the off-diagonal terms are penalised: the filters are pushed towards orthogonal
directions without fixing their norms (the full ||W^T W - I||^2 of earlier work did, and
was found too limiting). A generator whose layers do not mix their inputs' directions
stays smooth in z, which is what the truncation trick below needs.

The truncation trick: at sampling time, draw z from a truncated normal, each component
resampled until |z_i| < threshold. Smaller thresholds give samples nearer the modes: better
quality, less variety (the trade-off that FID and KID over a sweep of thresholds show).
Training always uses the full N(0, I).

`BigGANTricks` gives a GAN model both as config keys: mix it in before the base,
`class Model(BigGANTricks, GAN)`, and register `orthogonal=0.0` (beta; 0: off) and
`truncation=None` (the threshold; none: the full normal at sampling too).
"""
import numpy as np

from .. import nn
from ..autograd import tensor


def filter_matrices(module):
    """(name, W^T as a Tensor (filters, fan-in)) for every Linear and (transposed)
    convolution weight inside `module`; a transposed convolution's filters are its second
    axis."""
    for name, layer in module.named_modules():
        if isinstance(layer, nn.ConvTranspose2d):
            w = layer.weight.swapaxes(0, 1)
        elif isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            w = layer.weight
        else:
            continue
        yield name, w.reshape(w.shape[0], -1)


def orthogonal_penalty(module, beta):
    """R_beta = beta * sum over the weights W of `module` of ||W^T W o (1 - I)||_F^2
    (eq. 3), a scalar Tensor."""
    if beta < 0:
        raise ValueError(f"orthogonal={beta}: the penalty's weight beta must be >= 0")
    total = None
    for _, filters in filter_matrices(module):
        gram = filters @ filters.T                                  # W^T W: filter products
        off = 1.0 - np.eye(gram.shape[0], dtype=gram.dtype)
        term = ((gram * tensor(off, device=gram.device)) ** 2).sum()  # o (1 - I), ||.||_F^2
        total = term if total is None else total + term
    if total is None:
        raise ValueError(f"orthogonal_penalty: {type(module).__name__} has no weight matrix")
    return beta * total


def check_truncation(threshold):
    """The truncation threshold as a float, None for none; <= 0 is an error (no z
    would pass)."""
    if threshold is None or threshold == "":
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"truncation={threshold!r}: expected a number > 0") from None
    if not value > 0:
        raise ValueError(f"truncation={threshold}: the threshold must be > 0 (z is "
                         f"resampled until |z| < threshold)")
    return value


def truncated_normal(generator, shape, threshold):
    """N(0, 1) draws (float32, NumPy) with every entry redrawn until |z| < threshold."""
    rng = generator.rng
    z = rng.standard_normal(shape)
    outside = np.abs(z) >= threshold
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) >= threshold
    return z.astype(np.float32)


class BigGANTricks:
    """Mixin for a GAN (minigen.gan.model.GAN) whose generator reads z ~ N(0, I) of size
    `latent`: adds beta R(W) to the generator's loss (logged as orthogonal_penalty) and
    draws a truncated z whenever the model is not training (samples and evaluation)."""

    def __init__(self, spec, generator, orthogonal=0.0, truncation=None, **config):
        if not float(orthogonal) >= 0:
            raise ValueError(f"orthogonal={orthogonal}: the penalty's weight beta must be "
                             f">= 0")
        self.orthogonal = float(orthogonal)
        self.truncation = check_truncation(truncation)
        super().__init__(spec, generator, **config)

    sampling_keys = ("truncation",)

    def set_sampling(self, truncation=None):
        """`minigen sample RUN --config truncation=T`: the truncation trick on a trained
        generator (training always used the full normal)."""
        self.truncation = check_truncation(truncation)

    def noise(self, n, generator):
        if self.truncation is None or self.training:
            return super().noise(n, generator)
        return tensor(truncated_normal(generator, (n, self.latent), self.truncation),
                      device=self.device)

    def g_loss(self, fake, batch, generator):
        loss, logs = super().g_loss(fake, batch, generator)
        if not self.orthogonal:
            return loss, logs
        penalty = orthogonal_penalty(self.G, self.orthogonal)
        return loss + penalty, {**logs, "orthogonal_penalty": penalty.item()}
