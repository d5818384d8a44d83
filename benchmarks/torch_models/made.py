"""MADE (Germain et al., 2015) in PyTorch, the reference for minigen.models.made.

    p(x) = prod_d p(x_d | x_<d)                                     (section 3)

An MLP whose weights are multiplied by 0/1 masks, so that output d sees only the inputs
before d in the ordering (section 4). The inputs are the levels scaled to [0, 1], the hidden
layers ReLU, and the outputs a Bernoulli logit per dimension for binary data or K logits of
a categorical otherwise. The masks are part of the architecture, drawn from minigen's
generator (its hidden-unit degrees), so they are taken from minigen's model: one mask set,
as the parity config uses (minigen's num_masks > 1 ensembles are not ported).

Parameter names are minigen's (layers.{i}.weight/bias). The per-dimension likelihood,
`log_likelihood`, is shared with the other autoregressive builds here.
"""
import torch
import torch.nn.functional as F
from torch import nn


def log_likelihood(logits, values):
    """log p(x_d | x_<d) for every dimension, float32, values' shape.

    Binary data (logits of values' shape): log Bernoulli(x; sigmoid(l)), which
    binary_cross_entropy_with_logits computes finite for any logit. K levels (logits with a
    last axis of K): the log-softmax of the observed level.
    """
    if logits.shape == values.shape:
        return -F.binary_cross_entropy_with_logits(logits, values.to(logits.dtype),
                                                   reduction="none")
    picked = torch.log_softmax(logits, dim=-1).gather(-1, values.long().unsqueeze(-1))
    return picked.squeeze(-1)


class MaskedLinear(nn.Linear):
    """nn.Linear with its weight multiplied by a fixed (out, in) 0/1 mask."""

    def __init__(self, in_features, out_features, mask):
        super().__init__(in_features, out_features)
        # not a parameter and not saved: minigen keeps its mask outside the state dict too
        self.register_buffer("mask", torch.as_tensor(mask, dtype=torch.float32),
                             persistent=False)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """`masks` are minigen's, one (out, in) array per layer (MADE.masks[0])."""

    def __init__(self, dims, levels, hidden, masks):
        super().__init__()
        self.dims, self.levels = int(dims), int(levels)
        self.out_per_dim = 1 if self.levels == 2 else self.levels
        sizes = (self.dims,) + tuple(int(h) for h in hidden) + (self.dims * self.out_per_dim,)
        if len(masks) != len(sizes) - 1:
            raise ValueError(f"MADE: {len(masks)} masks for {len(sizes) - 1} layers")
        self.layers = nn.ModuleList([MaskedLinear(n_in, n_out, mask) for n_in, n_out, mask
                                     in zip(sizes[:-1], sizes[1:], masks)])

    def logits(self, x):
        """(N, D) Bernoulli logits for binary data, (N, D, K) otherwise."""
        h = x.reshape(len(x), -1).float() * (1.0 / (self.levels - 1))
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        out = self.layers[-1](h)
        return out if self.out_per_dim == 1 else out.reshape(len(x), self.dims, self.levels)

    def nll(self, x, generator=None):
        """-log p(x) per example, nats. The likelihood is exact: `generator` (the parity
        run's noise, which a dequantized flow draws from) is not used."""
        return -log_likelihood(self.logits(x), x.reshape(len(x), -1)).sum(dim=1)

    def loss(self, x, generator=None):
        return self.nll(x).mean()
