"""VQ-VAE-2 (Razavi et al. 2019, "Generating Diverse High-Fidelity Images with VQ-VAE-2"):
two levels of codes and a prior over each.

The encoder (figure 2a) maps x to a bottom feature map h_b at 1 / 2^downsample of the image
side, and h_b to the top grid z_e,top at half that side, quantized to z_top. A decoder
brings z_top back to the bottom's side, and the bottom grid z_e,bottom is a 1x1 convolution
of [h_b, that map], quantized to z_bottom: the bottom codes hold what the top ones leave
out. The decoder reads [z_bottom, z_top upsampled by a stride-2 transposed convolution].
The loss is VQ-VAE's eq. 3 with the VQ terms of both levels (minigen.latent.quantize):

    L = -log p(x | z_top, z_bottom)
        + sum_{level in top, bottom} ||sg[z_e,level] - e||^2 + beta ||z_e,level - sg[e]||^2

With no prior of its own, `sample` decodes uniformly drawn codes (the model as trained);
`vq-vae-2-prior` fits the two priors, p(z_top) and p(z_bottom | z_top), and gives the
bound -log p(x) <= -log p(x | z) - log p(z_top) - log p(z_bottom | z_top) (q is one-hot:
no entropy term), reported as nll_nats and bpd with each level's bits_per_code.

Metrics of vq-vae-2: recon_nats, mse, and the perplexity and codes_used of each level
(`_top`, `_bottom`), which every training step also logs.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import no_grad, tensor
from ..latent.decoders import likelihood
from ..latent.grid import GridDecoder, GridEncoder, check_side
from ..latent.priors import CodePrior, build_prior, code_spec
from ..latent.quantize import VectorQuantizer, codebook_usage
from ..latent.reconstruction import draw_reconstructions, squared_error
from ..model import Model, Update
from ..ops import concatenate
from . import register
from .vqvae import CONFIG, IMAGES, check_config
from .vqvae_prior import bound_metrics

LEVELS = ("top", "bottom")


@register("vq-vae-2", "VQ-VAE-2: top and bottom code grids (top at half the bottom's side), "
          "decoder from both", data=IMAGES, **CONFIG)
class VQVAE2(Model):
    validation_metric = "recon_nats"

    def __init__(self, spec, generator, codes=64, code_dim=16, channels=32, downsample=1,
                 beta=0.25, codebook_ema=False, restart_after=20, decoder="auto"):
        super().__init__(spec)
        check_config("vq-vae-2", spec, beta, channels)
        c, h, w = spec.shape
        bottom = (check_side(h, downsample), check_side(w, downsample))
        self.grids = {"bottom": bottom, "top": (check_side(bottom[0], 1),
                                                check_side(bottom[1], 1))}
        self.beta, self.codebook_ema = float(beta), bool(codebook_ema)
        self.likelihood = likelihood(decoder, spec)

        def quantizer():
            return VectorQuantizer(codes, code_dim, generator, ema=codebook_ema,
                                   restart_after=restart_after)

        self.encoder_bottom = GridEncoder(c, channels, channels, downsample, generator)
        self.encoder_top = GridEncoder(channels, channels, code_dim, 1, generator)
        self.quantizer_top = quantizer()
        self.decoder_top = GridDecoder(code_dim, channels, code_dim, 1, generator)
        self.to_bottom = nn.Conv2d(channels + code_dim, code_dim, 1, generator=generator)
        self.quantizer_bottom = quantizer()
        self.upsample_top = nn.ConvTranspose2d(code_dim, code_dim, 4, stride=2, padding=1,
                                               generator=generator)
        self.decoder = GridDecoder(2 * code_dim, channels, self.likelihood.outputs * c,
                                   downsample, generator)

    @property
    def codes(self):
        return self.quantizer_top.codes

    @property
    def quantizers(self):
        return {"top": self.quantizer_top, "bottom": self.quantizer_bottom}

    def encode(self, x):
        """{"top": ..., "bottom": ...}: the quantization of each level for images x."""
        return self.quantize(self.likelihood.inputs(x))

    def quantize(self, y):
        """encode for images y as the networks read them (likelihood.inputs)."""
        h_bottom = self.encoder_bottom(y)
        top = self.quantizer_top(self.encoder_top(h_bottom))
        z_e_bottom = self.to_bottom(concatenate([h_bottom, self.decoder_top(top.z)], axis=1))
        return {"top": top, "bottom": self.quantizer_bottom(z_e_bottom)}

    def decode(self, z_top, z_bottom):
        """The likelihood's parameters (N, outputs * D) from both grids."""
        params = self.decoder(concatenate([z_bottom, self.upsample_top(z_top)], axis=1))
        return params.reshape(len(params), -1)

    def decode_codes(self, top, bottom):
        """Images (uint8 levels) of integer code grids top and bottom (N, h, w): the
        decoder's mean, rounded to the nearest level."""
        with no_grad():
            params = self.decode(self.quantizer_top.lookup(top),
                                 self.quantizer_bottom.lookup(bottom))
            return np.rint(self.likelihood.mean(params)).astype(np.uint8)

    def updates(self, batches, generator):
        x = batches.next().x
        y = self.likelihood.inputs(x, generator)
        q = self.quantize(y)
        recon = -self.likelihood.log_prob(self.decode(q["top"].z, q["bottom"].z), y)
        # L = -log p(x | z_top, z_bottom) + the VQ terms of each level (eq. 3); with the EMA
        # codebook the codebook term is the running-mean update below instead
        loss = recon
        logs = {"recon_nats": recon.mean().item()}
        for level in LEVELS:
            loss = loss + self.beta * q[level].commitment
            if not self.codebook_ema:
                loss = loss + q[level].codebook_loss
            logs[f"perplexity_{level}"], logs[f"codes_used_{level}"] = \
                codebook_usage(q[level].codes, self.codes)
        yield Update("model", loss.mean(), logs=logs)
        for level in LEVELS:
            self.quantizers[level].update(q[level], generator)

    def evaluate(self, batches, final=True):
        recon, squared, count = 0.0, 0.0, 0
        codes = {level: [] for level in LEVELS}
        with no_grad():
            for batch in batches:
                x = batch.x
                q = self.encode(x)
                params = self.decode(q["top"].z, q["bottom"].z)
                recon += float(-self.likelihood.log_prob(params, self.likelihood.inputs(x))
                               .numpy().sum())
                squared += squared_error(self.likelihood, params, x)
                count += len(x)
                for level in LEVELS:
                    codes[level].append(q[level].codes.ravel())
        metrics = {"recon_nats": recon / count, "mse": squared / count}
        for level in LEVELS:
            metrics[f"perplexity_{level}"], metrics[f"codes_used_{level}"] = \
                codebook_usage(np.concatenate(codes[level]), self.codes)
        return metrics

    def sample(self, n, generator, labels=None):
        """Codes of both levels drawn uniformly (the prior the model trained with),
        decoded."""
        top, bottom = (generator.rng.integers(0, self.codes, size=(n,) + self.grids[level])
                       for level in LEVELS)
        return self.decode_codes(top, bottom)

    def draw(self, samples, path, reference):
        """samples.png, and reconstructions.png beside it: rows of training images over
        their reconstructions."""
        super().draw(samples, path, reference)
        scale = 1.0 / (self.spec.levels - 1)
        inputs = reference[:32]
        with no_grad():
            q = self.encode(tensor(inputs, device=self.device))
            mean = self.likelihood.mean(self.decode(q["top"].z, q["bottom"].z))
        draw_reconstructions(path, [inputs * scale, mean * scale])

    def extra_state(self):
        return {level: self.quantizers[level].extra_state() for level in LEVELS}

    def load_extra_state(self, state):
        for level in LEVELS:
            self.quantizers[level].load_extra_state(state[level])


@register("vq-vae-2-prior", "PixelCNN priors over a trained VQ-VAE-2's codes: p(z_top) and "
          "p(z_bottom | z_top) (--config vqvae=RUN)", data=IMAGES, vqvae="", channels=32,
          blocks=3, first_kernel=5, kernel=3, steps=1000, batch_size=64, lr=1e-3,
          ranges={"channels": "[1, inf)", "blocks": "[0, inf)", "first_kernel": "[1, inf)",
                  "kernel": "[1, inf)"})
class VQVAE2Prior(CodePrior):
    """p(z_top) p(z_bottom | z_top) over the codes of a frozen VQ-VAE-2: two PixelCNNs
    trained as one player on the sum of their losses. The bottom one is conditioned on the
    top codes' codebook vectors, upsampled (nearest) to the bottom grid
    (minigen.latent.priors.ConditionedPixelCNN)."""

    def __init__(self, spec, generator, vqvae="", channels=32, blocks=3, first_kernel=5,
                 kernel=3):
        super().__init__(spec, vqvae, "vq-vae-2")
        vq = self.vqvae

        def prior(level, **condition):
            return build_prior("pixelcnn", code_spec(spec.name, vq.grids[level], vq.codes),
                               generator, channels, blocks, first_kernel, kernel, **condition)

        self.top = prior("top")
        self.bottom = prior("bottom", condition_channels=vq.quantizer_top.code_dim)

    def condition(self, top):
        """The bottom prior's map: the top codes' vectors (N, D, h/2, w/2) upsampled to
        (N, D, h, w)."""
        return F.upsample_nearest(self.vqvae.quantizer_top.lookup(top), 2)

    def prior_nll(self, q):
        """{"top": -log p(z_top), "bottom": -log p(z_bottom | z_top)} per example, for the
        quantization q of both levels."""
        return {"top": self.top.nll(self.grid(q["top"].codes)),
                "bottom": self.bottom.nll(self.grid(q["bottom"].codes),
                                          self.condition(q["top"].codes))}

    def loss(self, x, generator, labels=None):
        """-log p(z_top) - log p(z_bottom | z_top), the batch mean."""
        nll = self.prior_nll(self.quantize(x))
        return (nll["top"] + nll["bottom"]).mean()

    def evaluate(self, batches, final=True):
        prior = {level: 0.0 for level in LEVELS}
        recon, count = 0.0, 0
        vq = self.vqvae
        with no_grad():
            for batch in batches:
                q = self.quantize(batch.x)
                for level, nll in self.prior_nll(q).items():
                    prior[level] += float(nll.numpy().sum())
                params = vq.decode(q["top"].z, q["bottom"].z)
                recon += float(-vq.likelihood.log_prob(params, vq.likelihood.inputs(batch.x))
                               .numpy().sum())
                count += len(batch.x)
        return bound_metrics(self.spec, recon / count,
                             {f"_{level}": prior[level] / count for level in LEVELS},
                             {f"_{level}": int(np.prod(vq.grids[level])) for level in LEVELS})

    def sample(self, n, generator, labels=None):
        """Top codes from p(z_top), bottom codes from p(z_bottom | z_top), decoded."""
        top = np.asarray(self.top.sample(n, generator))[:, 0]
        bottom = np.asarray(self.bottom.sample(n, generator, labels=self.condition(top)))
        return self.vqvae.decode_codes(top, bottom[:, 0])
