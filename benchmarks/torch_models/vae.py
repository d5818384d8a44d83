"""The variational autoencoder (Kingma and Welling 2014) in PyTorch, the reference for
minigen.models.vae with its default MLP architecture on binary data:

    q(z | x) = N(mu(x), diag e^logvar(x)),   p(z) = N(0, I),   p(x | z) = Bernoulli(logits(z))
    ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))                     (eq. 3, 10)
    L_K(x)  = E[log 1/K sum_k p(x | z_k) p(z_k) / q(z_k | x)]              (Burda et al., eq. 8)

encoder D -> hidden... -> 2 x latent (mu first, then logvar), decoder latent -> hidden
reversed -> D Bernoulli logits, ReLUs between, torch's default initialisation; one
reparameterised sample per example in the loss, the KL in closed form. Parameter names are
minigen's (encoder.layers.{i}, decoder.layers.{i}), so minigen's weights copy in by name.
Only the Bernoulli likelihood (the parity run's digits-bin) is here.

`noise` draws from a torch.Generator; elbo_terms and log_weights take the draws (eps)
themselves, so a test can hand both sides the same ones.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)


class MLP(nn.Module):
    """Linear layers of the given sizes with a ReLU after every one but the last."""

    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])

    def forward(self, h):
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))
        return self.layers[-1](h)


def gaussian_log_prob(z, mu=0.0, logvar=0.0):
    """log N(z; mu, diag e^logvar) summed over the last axis."""
    logvar = torch.as_tensor(logvar, dtype=z.dtype)
    return -0.5 * ((z - mu) ** 2 * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


class VAE(nn.Module):
    def __init__(self, dims, hidden, latent):
        super().__init__()
        self.dims, self.latent = int(dims), int(latent)
        hidden = tuple(int(h) for h in hidden)
        self.encoder = MLP((self.dims, *hidden, 2 * self.latent))
        self.decoder = MLP((self.latent, *hidden[::-1], self.dims))

    def inputs(self, x):
        return x.reshape(len(x), -1).float()

    def encode(self, y):
        out = self.encoder(y)
        return out[:, :self.latent], out[:, self.latent:]

    def log_px_z(self, z, y):
        """log Bernoulli(x; sigmoid(decoder(z))) summed over pixels; z (..., N, L)."""
        logits = self.decoder(z)
        return -F.binary_cross_entropy_with_logits(logits, y.expand_as(logits),
                                                   reduction="none").sum(-1)

    def noise(self, shape, generator):
        return torch.randn(tuple(shape) + (self.latent,), generator=generator)

    def elbo_terms(self, x, eps):
        """(log p(x | z), KL(q(z | x) || p(z))) per example, z = mu + sigma * eps."""
        y = self.inputs(x)
        mu, logvar = self.encode(y)
        z = mu + torch.exp(0.5 * logvar) * eps
        kl = 0.5 * (torch.exp(logvar) + mu ** 2 - 1.0 - logvar).sum(-1)
        return self.log_px_z(z, y), kl

    def log_weights(self, x, eps):
        """log p(x | z_k) + log p(z_k) - log q(z_k | x), (K, N), for eps (K, N, L)."""
        y = self.inputs(x)
        mu, logvar = self.encode(y)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.log_px_z(z, y) + gaussian_log_prob(z) - gaussian_log_prob(z, mu, logvar)

    def loss(self, x, generator):
        """-ELBO averaged over the batch, one sample of z per example."""
        log_px_z, kl = self.elbo_terms(x, self.noise((len(x),), generator))
        return (kl - log_px_z).mean()

    def iwae_bound(self, x, k, generator, chunk):
        """L_K per example (float64), the K samples drawn `chunk` at a time."""
        total = None
        for start in range(0, k, chunk):
            log_w = self.log_weights(x, self.noise((min(chunk, k - start), len(x)), generator))
            part = torch.logsumexp(log_w, 0).double()
            total = part if total is None else torch.logaddexp(total, part)
        return total - math.log(k)
