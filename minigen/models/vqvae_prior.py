"""The prior of a VQ-VAE (van den Oord et al. 2017, section 3.1): after the VQ-VAE is
trained with a uniform prior, an autoregressive model p(z) is fitted to the code grids
z_q(x) of the training images, and samples are codes drawn from it, decoded.

    minigen train vq-vae --data digits
    minigen train vq-vae-prior --data digits --config vqvae=runs/vq-vae-digits-0

The VQ-VAE is frozen (minigen.latent.priors): each batch is encoded to its codes without a
gradient, and the prior (a PixelCNN, or `prior=transformer`) learns -log p(z) of those
grids as images of one channel and K levels. Since q(z | x) is one-hot at z_q(x), its
entropy is zero and the ELBO gives the bound (eq. 3 without the VQ terms)

    -log p(x) <= -log p(x | z_q(x)) - log p(z_q(x)),

reported as `nll_nats` and `bpd`, with its two terms `recon_nats` and `prior_nats`, and
`bits_per_code`: -log2 p(z_q(x)) per grid position.
"""
import math

import numpy as np

from ..autograd import no_grad
from ..latent.priors import CodePrior, build_prior, code_spec
from ..model import likelihood_metrics
from . import register
from .vqvae import IMAGES


@register("vq-vae-prior", "PixelCNN (or Transformer) prior over the codes of a trained "
          "VQ-VAE (--config vqvae=RUN); samples decoded by its decoder", data=IMAGES,
          vqvae="", prior="pixelcnn", channels=32, blocks=3, first_kernel=5, kernel=3,
          steps=1000, batch_size=64, lr=1e-3,
          ranges={"channels": "[1, inf)", "blocks": "[0, inf)", "first_kernel": "[1, inf)",
                  "kernel": "[1, inf)"})
class VQVAEPrior(CodePrior):
    def __init__(self, spec, generator, vqvae="", prior="pixelcnn", channels=32, blocks=3,
                 first_kernel=5, kernel=3):
        super().__init__(spec, vqvae, "vq-vae")
        self.prior = build_prior(prior, code_spec(spec.name, self.vqvae.grid, self.vqvae.codes),
                                 generator, channels, blocks, first_kernel, kernel)

    def loss(self, x, generator, labels=None):
        """-log p(z_q(x)) per example, the batch mean: the prior alone trains."""
        return self.prior.nll(self.grid(self.quantize(x).codes)).mean()

    def evaluate(self, batches, final=True):
        prior_nats, recon, count = 0.0, 0.0, 0
        vq = self.vqvae
        with no_grad():
            for batch in batches:
                q = self.quantize(batch.x)
                prior_nats += float(self.prior.nll(self.grid(q.codes)).numpy().sum())
                recon += float(-vq.likelihood.log_prob(vq.decode(q.z), vq.likelihood.inputs(
                    batch.x)).numpy().sum())
                count += len(batch.x)
        return bound_metrics(self.spec, recon / count, {"": prior_nats / count},
                             {"": int(np.prod(vq.grid))})

    def sample(self, n, generator, labels=None):
        """Codes drawn from the prior, decoded (the decoder's mean, rounded to levels)."""
        codes = np.asarray(self.prior.sample(n, generator))[:, 0]
        return self.vqvae.decode_codes(codes)


def bound_metrics(spec, recon, prior_nats, positions):
    """The bound -log p(x) <= -log p(x | z_q) + sum over levels of -log p(z_level) as
    nll_nats and bpd, with recon_nats, and for each level (a suffix: "" for one level,
    "_top", "_bottom") prior_nats and bits_per_code (over its grid positions)."""
    metrics = likelihood_metrics(recon + sum(prior_nats.values()), spec)
    metrics["recon_nats"] = recon
    for level, nats in prior_nats.items():
        metrics[f"prior_nats{level}"] = nats
        metrics[f"bits_per_code{level}"] = nats / (positions[level] * math.log(2))
    return metrics
