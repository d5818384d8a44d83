"""The variational autoencoder (Kingma and Welling 2014, "Auto-Encoding Variational Bayes"),
with beta-VAE (Higgins et al. 2017) as its `beta` key and the importance-weighted
autoencoder (Burda et al. 2016) as `iwae`, the same model trained on the K-sample bound.

    p(z) = N(0, I),   p(x | z): the decoder's likelihood,   q(z | x) = N(mu(x), diag sigma^2(x))

    ELBO(x) = E_q(z|x)[log p(x | z)] - KL(q(z | x) || p(z)) <= log p(x)

The bounds and what is reported are in minigen/latent/bounds.py and minigen/latent/model.py;
the encoders, decoders and likelihoods in minigen/latent/. The default on 8x8 binary digits:
encoder 64 -> 256 -> 256 -> 2 x 16 (mu, log-variance), decoder 16 -> 256 -> 256 -> 64
Bernoulli logits, ReLUs between, PyTorch's initialisation (the PyTorch build is
benchmarks/torch_models/vae.py, with the same parameter names).
"""
from ..latent.bounds import gaussian_log_prob, kl_gaussians, reparameterize
from ..latent.decoders import ConvDecoder, MLPDecoder
from ..latent.encoders import ConvEncoder, MLPEncoder
from ..latent.model import VariationalModel, check_sizes
from . import register

DATA = ("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist", "shapes")
CONFIG = dict(hidden=(256, 256), latent=16, beta=1.0, decoder="auto", arch="mlp", channels=32,
              iwae_k=1000, train_k=1, kl_warmup=0, steps=3000, batch_size=100)
RANGES = {"hidden": "[1, inf)", "latent": "[1, inf)", "beta": "[0, inf)",
          "channels": "[1, inf)", "iwae_k": "[1, inf)", "train_k": "[1, inf)",
          "kl_warmup": "[0, inf)"}


@register("vae", "Variational autoencoder: Gaussian q(z|x), N(0, I) prior, the ELBO with "
          "a closed-form KL; beta-VAE (beta=), conv nets (arch=conv), IWAE bound (train_k=)",
          data=DATA, ranges=RANGES, **CONFIG)
class VAE(VariationalModel):
    def __init__(self, spec, generator, hidden=(256, 256), latent=16, beta=1.0,
                 decoder="auto", arch="mlp", channels=32, iwae_k=1000, train_k=1,
                 kl_warmup=0):
        super().__init__(spec, decoder, beta, iwae_k, train_k, kl_warmup)
        hidden = check_sizes("hidden", hidden)
        (self.top_size,) = check_sizes("latent", latent)
        outputs = self.likelihood.outputs
        if arch == "mlp":
            self.encoder = MLPEncoder(spec.dims, hidden, self.top_size, generator)
            self.decoder = MLPDecoder(self.top_size, hidden[::-1], outputs * spec.dims,
                                      generator)
        elif arch == "conv":
            if not spec.is_image:
                raise ValueError(f"arch=conv needs images (C, H, W); {spec.name} is "
                                 f"{spec.shape}: use arch=mlp")
            channels = check_sizes("channels", channels)[0]
            self.encoder = ConvEncoder(spec.shape, channels, hidden, self.top_size, generator)
            self.decoder = ConvDecoder(self.top_size, hidden[::-1], spec.shape, channels,
                                       outputs, generator)
        else:
            raise ValueError(f"arch={arch}: expected mlp or conv")

    def noise(self, shape, generator):
        return generator.normal(tuple(shape) + (self.top_size,), device=self.device)

    def decode(self, z):
        """Decoder params for latents z of any leading shape lead + (L,): lead + (P * D,)."""
        lead = z.shape[:-1]
        params = self.decoder(z.reshape(-1, self.top_size))
        return params.reshape(lead + params.shape[-1:])

    def elbo_terms(self, y, eps):
        mu, logvar = self.encoder(y)
        z = reparameterize(mu, logvar, eps)                      # z ~ q(z | x)
        log_px_z = self.likelihood.log_prob(self.decode(z), y)   # log p(x | z), one sample
        kl = kl_gaussians(mu, logvar)                            # KL(q(z | x) || N(0, I))
        return log_px_z, kl

    def log_weights(self, y, eps):
        mu, logvar = self.encoder(y)
        z = reparameterize(mu, logvar, eps)                      # (K, N, L) from q(z | x)
        # log w_k = log p(x | z_k) + log p(z_k) - log q(z_k | x)
        return (self.likelihood.log_prob(self.decode(z), y) + gaussian_log_prob(z)
                - gaussian_log_prob(z, mu, logvar))

    def top_mean(self, y):
        return self.encoder(y)[0]

    def decode_top(self, z):
        return self.decode(z)

    def reconstruct(self, y):
        return self.decode(self.top_mean(y))

    def prior_params(self, n, generator):
        return self.decode(self.noise((n,), generator))


@register("iwae", "Importance-weighted autoencoder: the vae trained on the K-sample bound "
          "L_K (train_k=5)", data=DATA, ranges=RANGES, **{**CONFIG, "train_k": 5})
class IWAE(VAE):
    """The VAE's model, trained on L_K = E[log 1/K sum_k p(x, z_k) / q(z_k | x)] with
    K = train_k samples per example (Burda et al. 2016, eq. 8)."""
