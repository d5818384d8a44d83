"""The base of the variational models (vae, iwae, hvae): one player trained on a variational
bound, the metrics every one of them reports, and their pictures.

A subclass builds its networks and defines, for y = likelihood.inputs(x) (the data as the
networks see it):

    noise(shape, generator)    the standard normal draws of one sample of every latent, each
                               of shape `shape` + (latent,): (N,) for the ELBO, (K, N) for K
                               samples
    elbo_terms(y, eps)         (log p(x | z), KL) per example (N,), z from one draw eps: the
                               ELBO is their difference, with each KL in closed form given
                               the latents above it
    log_weights(y, eps)        log p(x, z_k) - log q(z_k | x), (K, N), for eps of K draws
    top_mean(y)                the mean of q over the top latent (N, L): traversals, the
                               2-D latent picture and, unless a model says otherwise,
                               features for the linear probe
    decode_top(z)              decoder params for a top latent z (its lower latents at their
                               prior means): traversals
    reconstruct(y)             decoder params with every latent at its posterior mean
    prior_params(n, gen)       decoder params of n ancestral samples from the prior
    top_size                   the number of dimensions of the top latent

and this class does the rest: the loss (the beta-weighted ELBO, or the K-sample bound when
train_k > 1), `evaluate` (elbo_nats each time; iwae_nats with K = iwae_k and bpd of it when
final), sampling, and the pictures beside samples.png.

Evaluation draws its noise (and the Gaussian decoder's dequantization) from a generator
seeded with fixed numbers, never the training one, so the same weights always give the
same figures, whenever and however often they are evaluated.
"""
import math
import os

import numpy as np

from .. import data, pictures
from ..autograd import no_grad, tensor
from ..model import Model, Update
from ..random import Generator
from .bounds import log_mean_weight, log_mean_weight_chunked
from .decoders import likelihood

EVALUATION_SEED = (20160901, 1)   # the noise of every evaluation
IWAE_FLOATS = 2 ** 22              # decoder outputs per IWAE chunk (16 MB of float32)
RECONSTRUCTIONS = 16               # images in reconstructions.png, then their reconstructions
TRAVERSAL_DIMS, TRAVERSAL_STEPS = 8, 9


def check_sizes(key, values, minimum=1):
    """The tuple of ints of a width or latent config key, or a ValueError naming the key."""
    values = tuple(int(v) for v in (values if isinstance(values, (tuple, list))
                                    else (values,)))
    if not values or min(values) < minimum:
        raise ValueError(f"{key}={','.join(map(str, values))}: every size must be at least "
                         f"{minimum}")
    return values


class VariationalModel(Model):
    """See the module docstring. `decoder` names the likelihood (minigen.latent.decoders),
    `beta` weights the KL of the training loss (1: the ELBO; other values: beta-VAE,
    Higgins et al. 2017), `kl_warmup` > 0 raises that weight linearly from 0 to beta over
    the first kl_warmup updates (Bowman et al. 2016; the ladder VAE's warm-up, Sønderby et
    al. 2016, section 2.3), `train_k` > 1 trains on the K-sample bound instead (IWAE),
    `iwae_k` is the K of the reported test bound. Evaluation always scores the ELBO itself."""

    validation_metric = "elbo_nats"

    def __init__(self, spec, decoder, beta, iwae_k, train_k, kl_warmup=0):
        super().__init__(spec)
        if spec.kind != "discrete":
            raise ValueError(f"{type(self).__name__.lower()} models discrete data (binary or "
                             f"K levels), not continuous {spec.name}")
        if not beta >= 0:
            raise ValueError(f"beta={beta}: the weight of the KL term must be >= 0")
        if int(iwae_k) < 1:
            raise ValueError(f"iwae_k={iwae_k}: the importance-weighted bound needs at least "
                             f"1 sample")
        if int(train_k) < 1:
            raise ValueError(f"train_k={train_k}: the training bound needs at least 1 sample")
        if int(train_k) > 1 and beta != 1:
            raise ValueError(f"beta={beta} with train_k={train_k}: the K-sample bound has no "
                             f"separate KL term to weight; use beta=1")
        if int(kl_warmup) < 0:
            raise ValueError(f"kl_warmup={kl_warmup}: the number of warm-up updates must be "
                             f">= 0")
        if int(train_k) > 1 and int(kl_warmup):
            raise ValueError(f"kl_warmup={kl_warmup} with train_k={train_k}: the K-sample "
                             f"bound has no separate KL term to warm up; use kl_warmup=0")
        self.likelihood = likelihood(decoder, spec)
        self.beta, self.iwae_k, self.train_k = float(beta), int(iwae_k), int(train_k)
        self.kl_warmup = int(kl_warmup)
        self.updates_done = 0  # training updates so far: the warm-up's clock

    # training ---------------------------------------------------------------------------
    def objective(self, x, generator):
        """The training loss of a batch (a scalar Tensor) and the numbers to log."""
        y = self.likelihood.inputs(x, generator)
        if self.train_k > 1:
            # IWAE: loss = -1/N sum_n log 1/K sum_k p(x_n, z_k) / q(z_k | x_n), z_k ~ q(z | x_n)
            eps = self.noise((self.train_k, len(x)), generator)
            return -log_mean_weight(self.log_weights(y, eps)).mean(), {}
        log_px_z, kl = self.elbo_terms(y, self.noise((len(x),), generator))
        # -ELBO_beta = -E_q(z|x)[log p(x | z)] + beta KL(q(z | x) || p(z)),
        # the expectation by one sample of z per example, the KL in closed form
        loss = (-log_px_z + kl * self.kl_weight).mean()
        return loss, {"reconstruction": -float(log_px_z.numpy().mean()),
                      "kl": float(kl.numpy().mean()), "kl_weight": self.kl_weight}

    @property
    def kl_weight(self):
        """beta, or during the warm-up beta times the fraction of it done."""
        if self.updates_done >= self.kl_warmup:
            return self.beta
        return self.beta * self.updates_done / self.kl_warmup

    def loss(self, x, generator, labels=None):
        return self.objective(x, generator)[0]

    def updates(self, batches, generator):
        loss, logs = self.objective(batches.next().x, generator)
        self.updates_done += 1
        yield Update("model", loss, logs)

    def extra_state(self):
        return {"updates_done": self.updates_done}

    def load_extra_state(self, state):
        self.updates_done = int(state["updates_done"])

    # evaluation ------------------------------------------------------------------------
    def evaluate(self, batches, final=True):
        """elbo_nats: -ELBO per example (one sample of z, the KL in closed form); with final
        also iwae_nats, -L_K with K = iwae_k, and bpd, iwae_nats / (D ln 2)."""
        generator = Generator(EVALUATION_SEED)
        elbo, iwae, count = 0.0, 0.0, 0
        with no_grad():
            for batch in batches:
                y = self.likelihood.inputs(batch.x, generator)
                log_px_z, kl = self.elbo_terms(y, self.noise((len(y),), generator))
                elbo -= float((log_px_z - kl).numpy().astype(np.float64).sum())
                if final:
                    iwae -= self.iwae_bound(y, self.iwae_k, generator).sum()
                count += len(y)
        metrics = {"elbo_nats": elbo / count}
        if final:
            metrics["iwae_nats"] = iwae / count
            metrics["bpd"] = metrics["iwae_nats"] / (self.spec.dims * math.log(2))
        return metrics

    def iwae_bound(self, y, k, generator):
        """L_K per example (float64 NumPy (N,)), K samples drawn in chunks that fit memory."""
        chunk = max(1, min(k, IWAE_FLOATS // (len(y) * self.likelihood.outputs
                                              * self.spec.dims)))
        return log_mean_weight_chunked(
            lambda c: self.log_weights(y, self.noise((c, len(y)), generator)), k, chunk)

    def features(self, x):
        """The posterior mean of the top latent: what the linear probe reads."""
        return self.top_mean(self.likelihood.inputs(x))

    # samples and pictures --------------------------------------------------------------
    def sample(self, n, generator, labels=None):
        """x ~ p(x | z) with z from the prior (ancestrally, top down), as uint8 levels."""
        with no_grad():
            return self.likelihood.sample(self.prior_params(n, generator), generator)

    def draw(self, samples, path, reference):
        """samples.png, and beside it reconstructions.png, traversal.png and, for a top latent
        of 2 dimensions on labelled data, latent-space.png."""
        super().draw(samples, path, reference)
        folder = os.path.dirname(path)
        picked = reference[np.linspace(0, len(reference) - 1, RECONSTRUCTIONS).astype(int)]
        with no_grad():
            means = self.reconstruct(self.likelihood.inputs(tensor(picked, device=self.device)))
            self.draw_reconstructions(picked, self.likelihood.mean(means),
                                      os.path.join(folder, "reconstructions.png"))
            self.draw_traversal(reference, os.path.join(folder, "traversal.png"))
            if self.top_size == 2 and self.spec.num_classes:
                self.draw_latent_space(os.path.join(folder, "latent-space.png"))

    def draw_reconstructions(self, inputs, reconstructions, path):
        """Rows of inputs, then as many rows of their reconstructions (the decoder's mean
        at the posterior means), 8 to a row."""
        pictures.image_grid(np.concatenate([inputs, reconstructions]), path,
                            levels=self.spec.levels, columns=8)

    def draw_traversal(self, reference, path):
        """One row per top-latent dimension, the most active first (the variance over the
        reference images of its posterior mean: Burda et al.'s activity): that dimension
        swept from -3 to 3 with the others at the first reference image's posterior mean;
        each image the decoder's mean."""
        means = self.encode_means(reference[:500])
        dims = np.argsort(-means.var(axis=0))[:TRAVERSAL_DIMS]
        z = np.repeat(means[:1], len(dims) * TRAVERSAL_STEPS, axis=0)
        sweep = np.linspace(-3, 3, TRAVERSAL_STEPS)
        for row, d in enumerate(dims):
            z[row * TRAVERSAL_STEPS:(row + 1) * TRAVERSAL_STEPS, d] = sweep
        params = self.decode_top(tensor(z.astype(np.float32), device=self.device))
        pictures.image_grid(self.likelihood.mean(params), path, levels=self.spec.levels,
                            columns=TRAVERSAL_STEPS)

    def draw_latent_space(self, path):
        """The posterior means of the test images, coloured by their labels."""
        x, labels = data.load(self.spec.name, "test")
        pictures.scatter_by_label(self.encode_means(x), labels, path)

    def encode_means(self, x, batch_size=500):
        """top_mean of raw images x (NumPy), float64 NumPy (N, L)."""
        return np.concatenate([
            self.top_mean(self.likelihood.inputs(tensor(x[i:i + batch_size],
                                                        device=self.device))).numpy()
            for i in range(0, len(x), batch_size)]).astype(np.float64)
