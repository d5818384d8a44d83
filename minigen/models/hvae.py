"""A hierarchical VAE with two stochastic layers and the ladder VAE's inference (Sønderby et
al. 2016, "Ladder Variational Autoencoders", section 2.2): precision-weighted posteriors,
not the simpler top-down parameterisation.

Generative model, top down:

    p(z2) = N(0, I),   p(z1 | z2) = N(mu_p(z2), sigma_p^2(z2)),   p(x | z1): the decoder

Inference: a deterministic bottom-up pass d1 = f1(x), d2 = f2(d1) gives each layer a
Gaussian "likelihood" term (mu_hat_i, sigma_hat_i^2) from d_i; then, top down,

    q(z2 | x)     = N(mu_hat_2, sigma_hat_2^2)
    q(z1 | x, z2) = N(mu_q, sigma_q^2),  sigma_q^-2 = sigma_hat_1^-2 + sigma_p^-2,
                    mu_q = (mu_hat_1 sigma_hat_1^-2 + mu_p sigma_p^-2) sigma_q^2   (eq. 17-19)

so the posterior of z1 combines what the data says (bottom up) with what z2 predicts (top
down), weighting each by its precision. The ELBO

    E_q[log p(x | z1)] - KL(q(z2 | x) || p(z2)) - E_q(z2|x)[KL(q(z1 | x, z2) || p(z1 | z2))]

has both KLs in closed form given the sampled z2 (each a KL between two Gaussians), with
one reparameterised sample of z2 and then z1. The importance weight of the IWAE bound is
p(x | z1) p(z1 | z2) p(z2) / (q(z1 | x, z2) q(z2 | x)).

Networks (ReLU MLPs): f1: x -> h1 -> h1, f2: d1 -> h2 -> h2, Linear heads d_i -> 2 x L_i;
p(z1 | z2): z2 -> h2 -> 2 x L1; p(x | z1): z1 -> h1 -> h1 -> the likelihood's outputs.
The KL weight rises from 0 to 1 over the first kl_warmup = 1000 updates, the paper's
warm-up (section 2.3): without it the digits-bin run (3000 steps) left z1 unused, its
posterior equal to p(z1 | z2) (KL_1 = 0.01 nats against KL_2 = 3.7), and ended at 19.73
nats test -ELBO against 18.29 with it. The paper's batch normalisation is left out.
"""
from .. import nn
from ..latent.bounds import gaussian_log_prob, kl_gaussians, reparameterize
from ..latent.decoders import MLPDecoder
from ..latent.encoders import MLP
from ..latent.model import VariationalModel, check_sizes
from ..ops import concatenate, relu, sigmoid, softplus
from . import register
from .vae import DATA


def precision_weighted(mu_hat, logvar_hat, mu_p, logvar_p):
    """The product of N(mu_hat, e^logvar_hat) and N(mu_p, e^logvar_p), normalised: the
    precisions add, the means average weighted by precision. Written with
    1 / (1/a + 1/b) = a / (1 + a/b) and the weights' sigmoids, finite for any log-variances."""
    logvar = logvar_hat - softplus(logvar_hat - logvar_p)
    mu = mu_hat * sigmoid(logvar_p - logvar_hat) + mu_p * sigmoid(logvar_hat - logvar_p)
    return mu, logvar


@register("hvae", "Hierarchical VAE: two stochastic layers, ladder (precision-weighted) "
          "inference, p(z2) p(z1|z2) p(x|z1)", data=DATA, latent=(16, 8), hidden=(256, 128),
          beta=1.0, decoder="auto", iwae_k=1000, train_k=1, kl_warmup=1000, steps=3000,
          batch_size=100,
          ranges={"latent": "[1, inf)", "hidden": "[1, inf)", "beta": "[0, inf)",
                  "iwae_k": "[1, inf)", "train_k": "[1, inf)", "kl_warmup": "[0, inf)"})
class HVAE(VariationalModel):
    def __init__(self, spec, generator, latent=(16, 8), hidden=(256, 128), beta=1.0,
                 decoder="auto", iwae_k=1000, train_k=1, kl_warmup=1000):
        super().__init__(spec, decoder, beta, iwae_k, train_k, kl_warmup)
        latent, hidden = check_sizes("latent", latent), check_sizes("hidden", hidden)
        if len(latent) != 2 or len(hidden) != 2:
            raise ValueError(f"latent={','.join(map(str, latent))} hidden="
                             f"{','.join(map(str, hidden))}: hvae has two stochastic layers, "
                             f"so each key takes two sizes (bottom layer first)")
        (l1, l2), (h1, h2) = latent, hidden
        self.sizes = latent
        self.top_size = l2
        self.up1 = MLP((spec.dims, h1, h1), generator)
        self.up2 = MLP((h1, h2, h2), generator)
        self.head1 = nn.Linear(h1, 2 * l1, generator=generator)
        self.head2 = nn.Linear(h2, 2 * l2, generator=generator)
        self.prior1 = MLP((l2, h2, 2 * l1), generator)
        self.decoder = MLPDecoder(l1, (h1, h1), self.likelihood.outputs * spec.dims,
                                  generator)

    # the networks, each on latents of any leading shape ---------------------------------
    def _rows(self, net, z):
        out = net(z.reshape(-1, z.shape[-1]))
        return out.reshape(z.shape[:-1] + out.shape[-1:])

    def _gaussian(self, out):
        half = out.shape[-1] // 2
        return out[..., :half], out[..., half:]

    def bottom_up(self, y):
        """(mu_hat_1, logvar_hat_1), (mu_hat_2, logvar_hat_2) per example."""
        d1 = relu(self.up1(y.reshape(len(y), -1)))
        d2 = relu(self.up2(d1))
        return self._gaussian(self.head1(d1)), self._gaussian(self.head2(d2))

    def prior_z1(self, z2):
        """mu_p, logvar_p of p(z1 | z2)."""
        return self._gaussian(self._rows(self.prior1, z2))

    def decode(self, z1):
        return self._rows(self.decoder, z1)

    # the contract of VariationalModel ----------------------------------------------------
    def noise(self, shape, generator):
        eps1 = generator.normal(tuple(shape) + (self.sizes[0],), device=self.device)
        eps2 = generator.normal(tuple(shape) + (self.sizes[1],), device=self.device)
        return eps1, eps2

    def _posterior(self, y, eps):
        """One sample of z2 then z1 from q, top down, and every distribution's parameters."""
        eps1, eps2 = eps
        (mu_hat1, logvar_hat1), (mu2, logvar2) = self.bottom_up(y)
        z2 = reparameterize(mu2, logvar2, eps2)                       # z2 ~ q(z2 | x)
        mu_p1, logvar_p1 = self.prior_z1(z2)                          # p(z1 | z2)
        mu1, logvar1 = precision_weighted(mu_hat1, logvar_hat1, mu_p1, logvar_p1)
        z1 = reparameterize(mu1, logvar1, eps1)                       # z1 ~ q(z1 | x, z2)
        return z1, z2, (mu1, logvar1), (mu2, logvar2), (mu_p1, logvar_p1)

    def elbo_terms(self, y, eps):
        z1, z2, q1, q2, p1 = self._posterior(y, eps)
        log_px_z = self.likelihood.log_prob(self.decode(z1), y)     # log p(x | z1)
        kl = kl_gaussians(*q2) + kl_gaussians(*q1, *p1)              # KL_2 + KL_1 given z2
        return log_px_z, kl

    def log_weights(self, y, eps):
        z1, z2, q1, q2, p1 = self._posterior(y, eps)
        # log w = log p(x | z1) + log p(z1 | z2) + log p(z2) - log q(z1 | x, z2) - log q(z2 | x)
        return (self.likelihood.log_prob(self.decode(z1), y) + gaussian_log_prob(z1, *p1)
                + gaussian_log_prob(z2) - gaussian_log_prob(z1, *q1)
                - gaussian_log_prob(z2, *q2))

    def top_mean(self, y):
        return self.bottom_up(y)[1][0]

    def decode_top(self, z2):
        return self.decode(self.prior_z1(z2)[0])

    def posterior_means(self, y):
        """The means of q(z1 | x, z2) at z2 = the mean of q(z2 | x), and of q(z2 | x)."""
        (mu_hat1, logvar_hat1), (mu2, _) = self.bottom_up(y)
        mu1, _ = precision_weighted(mu_hat1, logvar_hat1, *self.prior_z1(mu2))
        return mu1, mu2

    def reconstruct(self, y):
        return self.decode(self.posterior_means(y)[0])

    def features(self, x):
        """Both layers' posterior means side by side, (N, L1 + L2)."""
        return concatenate(self.posterior_means(self.likelihood.inputs(x)), axis=-1)

    def prior_params(self, n, generator):
        eps1, z2 = self.noise((n,), generator)
        mu_p1, logvar_p1 = self.prior_z1(z2)
        return self.decode(reparameterize(mu_p1, logvar_p1, eps1))   # z1 ~ p(z1 | z2)
