"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015).

An MLP whose weights are masked so that output d sees only the inputs before d in an
ordering: then p(x) = prod_d p(x_d | x_<d) is a valid density evaluated in one pass.
Binary data get a Bernoulli logit per dimension, K-level data a categorical over K.

With num_masks > 1 each training step uses one of several mask sets (orderings and
connectivities); the likelihood is then the ensemble average of the mask sets'
likelihoods, p(x) = 1/S sum_s p_s(x), computed as a log-mean-exp of log-likelihoods
(never by averaging logits, which would not be a density).
"""
import math

import numpy as np

from .. import nn
from ..model import Model
from ..autograd import no_grad, tensor
from ..autoregressive.likelihood import DiscreteLikelihood
from ..autoregressive.masked import MaskedLinear, made_degrees, made_masks
from ..ops import logsumexp, relu, stack
from . import register


@register("made", "MADE: masked MLP, natural or random orderings, order-agnostic ensembles",
          data=("digits-bin", "digits", "fashion-mnist-bin", "shapes"),
          hidden=(512, 512), num_masks=1, ordering="natural", steps=2000, batch_size=100,
          ranges={"hidden": "[1, inf)", "num_masks": "[1, inf)"})
class MADE(Model):
    def __init__(self, spec, generator, hidden=(512, 512), num_masks=1, ordering="natural"):
        super().__init__(spec)
        if spec.kind != "discrete":
            raise ValueError("made models discrete data (binary or K levels)")
        self.dims, self.levels = spec.dims, spec.levels
        self.shape = spec.shape
        self.likelihood = DiscreteLikelihood(self.levels)
        outputs = self.likelihood.outputs  # logits per dimension
        hidden = tuple(int(h) for h in hidden)
        rng = generator.rng
        self.degrees, self.masks = [], []
        for _ in range(int(num_masks)):
            # every set draws new connectivity; with "random" also a new ordering
            degrees = made_degrees(self.dims, hidden, rng, ordering)
            self.degrees.append(degrees)
            self.masks.append(made_masks(degrees, outputs))
        sizes = (self.dims,) + hidden + (self.dims * outputs,)
        self.layers = nn.ModuleList([
            MaskedLinear(n_in, n_out, mask, generator=generator)
            for n_in, n_out, mask in zip(sizes[:-1], sizes[1:], self.masks[0])])
        self.mask_index = 0

    def use_masks(self, s):
        if s != self.mask_index:
            for layer, mask in zip(self.layers, self.masks[s]):
                layer.set_mask(mask)
            self.mask_index = s

    def logits(self, x):
        """Per-dimension logits (N, D, outputs): a Bernoulli logit for binary data, K
        otherwise."""
        h = x.reshape(len(x), -1).astype("float32") * (1.0 / (self.levels - 1))
        for layer in self.layers[:-1]:
            h = relu(layer(h))
        return self.layers[-1](h).reshape(len(x), self.dims, self.likelihood.outputs)

    def log_likelihood(self, x):
        """log p_s(x) per example under the current mask set."""
        return self.likelihood.log_prob(self.logits(x), x.reshape(len(x), -1)).sum(axis=1)

    def loss(self, x, generator):
        """Mean negative log-likelihood of the batch under one mask set, drawn per step."""
        if len(self.masks) > 1:
            self.use_masks(int(generator.rng.integers(len(self.masks))))
        return -self.log_likelihood(x).mean()

    def nll(self, x):
        """-log (1/S sum_s p_s(x)) per example: the ensemble over all mask sets."""
        per_mask = []
        for s in range(len(self.masks)):
            self.use_masks(s)
            per_mask.append(self.log_likelihood(x))
        log_p = logsumexp(stack(per_mask, axis=0), axis=0) - math.log(len(self.masks))
        return -log_p

    def sample(self, n, generator):
        """D passes, one per dimension in the ordering of mask set 0."""
        self.use_masks(0)
        device = self.layers[0].weight.device
        x = np.zeros((n, self.dims), dtype=np.int64)
        with no_grad():
            for d in np.argsort(self.degrees[0][0]):
                dist = self.likelihood.distribution(self.logits(tensor(x, device=device))[:, d])
                x[:, d] = dist.sample(generator=generator).numpy()
        return x.reshape((n,) + tuple(self.shape))
