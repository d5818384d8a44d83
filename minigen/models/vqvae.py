"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning").

A conv encoder maps an image to a grid of D-dim vectors z_e(x) (minigen.latent.grid); each
is replaced by its nearest codebook vector z_q(x) (minigen.latent.quantize) and a conv
decoder gives p(x | z_q(x)) (minigen.latent.decoders: Bernoulli for binary data, a
categorical over the levels of digits, a discretized logistic for 256 levels). The loss is
eq. 3 of the paper, the squared norms summed over the grid:

    L = -log p(x | z_q(x)) + ||sg[z_e(x)] - e||^2 + beta ||z_e(x) - sg[e]||^2

with the decoder's gradient copied straight through the quantization to the encoder. With
`codebook_ema=true` the codebook term is dropped and the codebook follows running means of
the encoder outputs (appendix A.1); `restart_after=N` (20 by default, 0 for never) moves a
code unused for N steps onto an encoder output of the batch: a codebook drawn N(0, 1) lies
far from the first encoder outputs, and without restarts one code takes them all. The
codebook's running state is checkpointed (extra_state), so a killed and resumed run ends bit
for bit where an uninterrupted one does.

The prior over codes is uniform while the VQ-VAE trains (section 3.1), so `sample` decodes
codes drawn uniformly, the model as trained; a PixelCNN fitted to the codes afterwards
(`minigen train vq-vae-prior --config vqvae=RUN`) gives the real samples and the bound on
-log p(x). Metrics: `recon_nats` (-log p(x | z_q(x)) per example), `mse` (mean squared error
per pixel of the decoder's mean on the [0, 1] scale), the codes' `perplexity` and
`codes_used` (the share of the codebook that the test images use). Every training step
logs the batch's perplexity and codes_used to log.csv.

(The trainer's own `ema` key averages the parameters, hence the codebook's
`codebook_ema`.)
"""
import numpy as np

from ..autograd import no_grad, tensor
from ..latent.decoders import likelihood
from ..latent.grid import GridDecoder, GridEncoder, check_side
from ..latent.quantize import VectorQuantizer, codebook_usage
from ..latent.reconstruction import draw_reconstructions, squared_error
from ..model import Model, Update
from . import register

IMAGES = ("digits", "digits-bin", "fashion-mnist", "mnist", "fashion-mnist-bin", "shapes")


def check_config(name, spec, beta, channels):
    """The checks every VQ-VAE shares: discrete images, beta >= 0, channels >= 1."""
    if spec.kind != "discrete" or not spec.is_image:
        raise ValueError(f"{name} models discrete images (C, H, W), not {spec.kind} data of "
                         f"shape {spec.shape}")
    if beta < 0:
        raise ValueError(f"beta={beta}: the commitment weight must be >= 0")
    if channels < 1:
        raise ValueError(f"channels={channels}: the networks need at least 1 channel")


# the registered config of vq-vae and vq-vae-2 (one codebook per level in vq-vae-2)
CONFIG = dict(codes=64, code_dim=16, channels=32, downsample=1, beta=0.25, codebook_ema=False,
              restart_after=20, decoder="auto", steps=2000, batch_size=64, lr=1e-3,
              ranges={"codes": "[2, inf)", "code_dim": "[1, inf)", "channels": "[1, inf)",
                      "downsample": "[1, inf)", "beta": "[0, inf)",
                      "restart_after": "[0, inf)"})


@register("vq-vae", "VQ-VAE: conv encoder to a grid of codes, nearest-codebook quantization, "
          "straight-through gradients", data=IMAGES, **CONFIG)
class VQVAE(Model):
    validation_metric = "recon_nats"

    def __init__(self, spec, generator, codes=64, code_dim=16, channels=32, downsample=1,
                 beta=0.25, codebook_ema=False, restart_after=20, decoder="auto"):
        super().__init__(spec)
        check_config("vq-vae", spec, beta, channels)
        c, h, w = spec.shape
        self.grid = (check_side(h, downsample), check_side(w, downsample))
        self.beta, self.codebook_ema = float(beta), bool(codebook_ema)
        self.likelihood = likelihood(decoder, spec)
        self.encoder = GridEncoder(c, channels, code_dim, downsample, generator)
        self.quantizer = VectorQuantizer(codes, code_dim, generator, ema=codebook_ema,
                                         restart_after=restart_after)
        self.decoder = GridDecoder(code_dim, channels, self.likelihood.outputs * c, downsample,
                                   generator)

    @property
    def codes(self):
        return self.quantizer.codes

    def encode(self, x):
        """The quantization (minigen.latent.quantize.Quantized) of images x (levels)."""
        return self.quantizer(self.encoder(self.likelihood.inputs(x)))

    def decode(self, z):
        """The likelihood's parameters (N, outputs * D) for a grid z (N, D, h, w)."""
        params = self.decoder(z)
        return params.reshape(len(params), -1)

    def decode_codes(self, codes):
        """Images (uint8 levels) of integer code grids (N, h, w): the decoder's mean,
        rounded to the nearest level."""
        with no_grad():
            mean = self.likelihood.mean(self.decode(self.quantizer.lookup(codes)))
        return np.rint(mean).astype(np.uint8)

    def updates(self, batches, generator):
        x = batches.next().x
        y = self.likelihood.inputs(x, generator)
        q = self.quantizer(self.encoder(y))
        recon = -self.likelihood.log_prob(self.decode(q.z), y)
        # L = -log p(x | z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2 (eq. 3); with the
        # EMA codebook the middle term is the running-mean update below instead
        loss = recon + self.beta * q.commitment
        if not self.codebook_ema:
            loss = loss + q.codebook_loss
        perplexity, used = codebook_usage(q.codes, self.codes)
        yield Update("model", loss.mean(), logs={"recon_nats": recon.mean().item(),
                                                 "perplexity": perplexity,
                                                 "codes_used": used})
        self.quantizer.update(q, generator)

    def evaluate(self, batches, final=True):
        recon, squared, count, codes = 0.0, 0.0, 0, []
        with no_grad():
            for batch in batches:
                x = batch.x
                y = self.likelihood.inputs(x)
                q = self.quantizer(self.encoder(y))
                params = self.decode(q.z)
                recon += float(-self.likelihood.log_prob(params, y).numpy().sum())
                squared += squared_error(self.likelihood, params, x)
                count += len(x)
                codes.append(q.codes.ravel())
        perplexity, used = codebook_usage(np.concatenate(codes), self.codes)
        return {"recon_nats": recon / count, "mse": squared / count,
                "perplexity": perplexity, "codes_used": used}

    def features(self, x):
        """The quantized grid z_q(x), flattened: (N, D h w)."""
        z = self.encode(x).z_q
        return z.reshape(len(z), -1)

    def sample(self, n, generator, labels=None):
        """Codes drawn uniformly (the prior the VQ-VAE trained with), decoded to images."""
        codes = generator.rng.integers(0, self.codes, size=(n,) + self.grid)
        return self.decode_codes(codes)

    def reconstruct(self, x):
        """The decoder's mean for images x, in level units (float)."""
        with no_grad():
            z = self.encode(tensor(x, device=self.device)).z
            return self.likelihood.mean(self.decode(z))

    def draw(self, samples, path, reference):
        """samples.png, and reconstructions.png beside it: training images (odd rows) over
        their reconstructions (even rows), in eval mode."""
        super().draw(samples, path, reference)
        scale = 1.0 / (self.spec.levels - 1)
        inputs = reference[:32]
        draw_reconstructions(path, [inputs * scale, self.reconstruct(inputs) * scale])

    def extra_state(self):
        return {"quantizer": self.quantizer.extra_state()}

    def load_extra_state(self, state):
        self.quantizer.load_extra_state(state["quantizer"])

