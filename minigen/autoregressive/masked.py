"""Autoregressive masks for fully connected layers (MADE, Germain et al. 2015).

Every unit gets a degree m: inputs their position in the ordering (1..D), hidden units a
number in [min of the layer below, D-1]. A hidden unit may see a unit below it when
m_below <= m_unit; an output for dimension d may see a unit when m_unit < d (strictly), so
output d depends only on inputs that come before d in the ordering.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor


def made_degrees(dims, hidden, rng, ordering="natural"):
    """Degrees of the input units and of each hidden layer's units.

    `ordering` is "natural" (1..D) or "random" (a permutation drawn from rng); hidden degrees
    are drawn uniformly from [min degree below, D - 1].
    """
    if ordering == "natural":
        inputs = np.arange(1, dims + 1)
    elif ordering == "random":
        inputs = rng.permutation(dims) + 1
    else:
        raise ValueError(f"ordering must be 'natural' or 'random', not {ordering!r}")
    degrees = [inputs]
    for width in hidden:
        low = min(degrees[-1].min(), dims - 1)
        degrees.append(rng.integers(low, dims, size=width) if dims > 1
                       else np.zeros(width, dtype=int))
    return degrees


def made_masks(degrees, outputs_per_dim=1):
    """(out, in) 0/1 masks for each layer, the last one for outputs_per_dim outputs per
    input dimension (laid out dimension-major: unit d * outputs_per_dim + k)."""
    masks = [(d_out[:, None] >= d_in[None, :]) for d_in, d_out in zip(degrees[:-1],
                                                                        degrees[1:])]
    out_degrees = np.repeat(degrees[0], outputs_per_dim)
    masks.append(out_degrees[:, None] > degrees[-1][None, :])
    return [m.astype(np.float32) for m in masks]


class MaskedLinear(nn.Linear):
    """A Linear layer whose weight is multiplied by a fixed 0/1 mask; the mask can be
    swapped (several mask sets in one MADE) without touching the weights."""

    def __init__(self, in_features, out_features, mask, generator=None, **kwargs):
        super().__init__(in_features, out_features, **kwargs)
        self.reset_parameters(generator)
        self.set_mask(mask)

    def set_mask(self, mask):
        mask = np.asarray(mask, dtype=self.weight.dtype)
        if mask.shape != self.weight.shape:
            raise ValueError(f"MaskedLinear: mask of shape {mask.shape} for a weight of shape "
                             f"{self.weight.shape}")
        self.mask = Tensor(mask).to(self.weight.device)

    def forward(self, x):
        if self.mask.device != self.weight.device:  # the module was moved after set_mask
            self.mask = self.mask.to(self.weight.device)
        return F.linear(x, self.weight * self.mask, self.bias)
