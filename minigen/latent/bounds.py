"""The variational bounds on log p(x) that the VAE family trains on and reports.

The evidence lower bound (Kingma and Welling 2014, eq. 3), for any q(z | x):

    log p(x) >= E_q(z|x)[log p(x | z)] - KL(q(z | x) || p(z)) = ELBO(x)

With Gaussians on both sides the KL is in closed form (`kl_gaussians`, F.kl_normal summed
over the latents) and the expectation is estimated with one reparameterised sample,
z = mu + sigma * eps with eps ~ N(0, I) (eq. 10), which carries gradients to mu and sigma.

The importance-weighted bound (Burda et al. 2016, eq. 8) averages K weights inside the log:

    L_K(x) = E[log 1/K sum_k w_k],  w_k = p(x, z_k) / q(z_k | x),  z_k ~ q(z | x)

L_1 is the ELBO (with the KL estimated by the same sample), L_K <= L_(K+1) <= log p(x), and
L_K -> log p(x) as K grows (theorem 1): with K = 1000 it is the usual estimate of a VAE's
test log-likelihood. `log_mean_weight` computes it from the (K, N) log-weights with
logsumexp; `log_mean_weight_chunked` draws the K samples a chunk at a time so that
K = 1000 on 784-pixel images fits in memory.
"""
import math

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..ops import exp, lift, logsumexp, square

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mu, logvar, eps):
    """z = mu + exp(logvar / 2) * eps: a sample of N(mu, diag e^logvar) for eps ~ N(0, I),
    differentiable in mu and logvar. eps may carry leading sample axes (K, N, L)."""
    return mu + exp(logvar * 0.5) * eps


def gaussian_log_prob(z, mu=0.0, logvar=0.0):
    """log N(z; mu, diag e^logvar), summed over the last (latent) axis:
    -1/2 sum_l [(z_l - mu_l)^2 e^-logvar_l + logvar_l + log 2 pi]. The defaults give the
    standard normal prior."""
    mu, logvar = lift(mu, z), lift(logvar, z)
    return (square(z - mu) * exp(-logvar) + logvar + LOG_2PI).sum(axis=-1) * -0.5


def kl_gaussians(mu_q, logvar_q, mu_p=0.0, logvar_p=0.0):
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) in closed form, summed over the last
    (latent) axis; the defaults give the KL to the standard normal prior."""
    return F.kl_normal(mu_q, logvar_q, mu_p, logvar_p).sum(axis=-1)


def log_mean_weight(log_weights):
    """log 1/K sum_k w_k from log w of shape (K, N): the K-sample bound per example (N,),
    differentiable (the IWAE training objective)."""
    return logsumexp(log_weights, axis=0) - math.log(log_weights.shape[0])


def log_mean_weight_chunked(log_weights_of, k, chunk):
    """log 1/K sum_k w_k per example, float64 NumPy (N,), without gradients, from
    `log_weights_of(c)`: the (c, N) log-weights of c fresh samples, asked for in chunks of
    at most `chunk` until K are drawn. The chunks' log-sum-exps combine exactly by logaddexp,
    so only one chunk of decoder outputs is ever in memory."""
    total = None
    with no_grad():
        for start in range(0, k, chunk):
            log_w = log_weights_of(min(chunk, k - start))
            part = logsumexp(log_w, axis=0).numpy().astype(np.float64)
            total = part if total is None else np.logaddexp(total, part)
    return total - math.log(k)
