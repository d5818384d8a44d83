"""Autoencoders: a deterministic one (`ae`) and the denoising one (`dae`, Vincent et al.
2008, "Extracting and Composing Robust Features with Denoising Autoencoders").

An encoder maps x to a code c = f(x), a decoder gives the likelihood p(x | g(c))
(minigen.latent: Bernoulli for binary data, a categorical over the levels of digits, a
discretized logistic for 256 levels). Both are trained on the reconstruction error

    ae:   L = -log p(x | g(f(x)))
    dae:  L = -log p(x | g(f(x~))),   x~ ~ q(x~ | x), the corruption

where the denoising autoencoder sees a corrupted x~ and reconstructs the clean x. Its
corruptions (`noise=`, each of strength `noise_level`, on the [0, 1] scale of the data):
`gaussian` adds N(0, noise_level^2) noise to every input; `masking` sets a share
noise_level of the inputs, drawn at random, to 0; `salt-and-pepper` sets a share
noise_level to 0 or 1 (the data's maximum), each with probability 1/2.

The encoders read the data on [0, 1] (`arch=mlp`: Linear/ReLU layers of widths `hidden`;
`arch=conv`: two stride-2 convolutions first), the decoders mirror them; both are the VAEs'
(minigen.latent.encoders, decoders), of which the autoencoder takes the mean head as its
code (the log-variance head is built and left unused).

An autoencoder has no prior of its own. `sample` decodes codes drawn from a Gaussian fitted
to the training codes: running means of the codes and of their outer products over the
training batches (decay 0.99, about the last hundred batches), saved with the checkpoint;
images are the decoder's mean rounded to the nearest level. Metrics: `recon_nats`
(-log p(x | g(f(x))) of the clean test images, per example), `mse` (mean squared error per
pixel of the decoder's mean, on [0, 1]); a dae also `denoise_nats`, the same for corrupted
test images (noise drawn from a fixed seed). `features(x)` is the code, for the linear
probe; draw writes reconstructions.png (inputs, for a dae the corrupted inputs, and
reconstructions) beside samples.png.
"""
import numpy as np

from ..autograd import no_grad, tensor
from ..latent.decoders import ConvDecoder, MLPDecoder, likelihood
from ..latent.encoders import ConvEncoder, MLPEncoder
from ..latent.reconstruction import draw_reconstructions, squared_error
from ..model import Model, Update
from ..ops import where
from ..random import Generator
from . import register

IMAGES = ("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist", "shapes")
NOISES = ("gaussian", "masking", "salt-and-pepper")
CODE_DECAY = 0.99  # the running code statistics behind `sample`


@register("ae", "autoencoder: MLP or conv encoder to a code, decoder to p(x | code)",
          data=IMAGES, arch="mlp", hidden=(256,), latent=16, channels=32, decoder="auto",
          steps=2000, batch_size=64, lr=1e-3,
          ranges={"hidden": "[1, inf)", "latent": "[1, inf)", "channels": "[1, inf)"})
class Autoencoder(Model):
    validation_metric = "recon_nats"

    def __init__(self, spec, generator, arch="mlp", hidden=(256,), latent=16, channels=32,
                 decoder="auto"):
        super().__init__(spec)
        if spec.kind != "discrete" or not spec.is_image:
            raise ValueError(f"{self.registry_name} models discrete images (C, H, W), not "
                             f"{spec.kind} data of shape {spec.shape}")
        if latent < 1:
            raise ValueError(f"latent={latent}: the code needs at least 1 dimension")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden={hidden}: every layer needs at least 1 unit")
        self.latent = int(latent)
        self.likelihood = likelihood(decoder, spec)
        outputs = self.likelihood.outputs
        if arch == "mlp":
            self.encoder = MLPEncoder(spec.dims, hidden, latent, generator)
            self.decoder = MLPDecoder(latent, hidden[::-1], outputs * spec.dims, generator)
        elif arch == "conv":
            if channels < 1:
                raise ValueError(f"channels={channels}: arch=conv needs at least 1 channel")
            self.encoder = ConvEncoder(spec.shape, channels, hidden, latent, generator)
            self.decoder = ConvDecoder(latent, hidden[::-1], spec.shape, channels, outputs,
                                       generator)
        else:
            raise ValueError(f"arch={arch!r}: choose mlp or conv")
        self.code_mean = np.zeros(self.latent)
        self.code_moment = np.eye(self.latent)  # running E[c c^T]

    def encode(self, y):
        """The code f(y) (N, latent) of inputs y on the [0, 1] scale: the encoder's mean
        head."""
        code, _ = self.encoder(y)
        return code

    def corrupt(self, y, generator):
        """The encoder's input during training: y itself (a dae corrupts it)."""
        return y

    def updates(self, batches, generator):
        x = batches.next().x
        y = self.likelihood.inputs(x, generator)
        code = self.encode(self.corrupt(y, generator))
        # L = -log p(x | g(f(x))), or for a dae -log p(x | g(f(x~)))
        recon = -self.likelihood.log_prob(self.decoder(code), y)
        yield Update("model", recon.mean())
        self._track_codes(code.numpy().astype(np.float64))

    def _track_codes(self, codes):
        g = CODE_DECAY
        self.code_mean = g * self.code_mean + (1 - g) * codes.mean(axis=0)
        self.code_moment = g * self.code_moment + (1 - g) * (codes.T @ codes) / len(codes)

    def evaluate(self, batches, final=True):
        totals, count = {}, 0
        noise = Generator(0)  # the same corruption at every evaluation
        with no_grad():
            for batch in batches:
                for key, value in self._batch_metrics(batch.x, noise).items():
                    totals[key] = totals.get(key, 0.0) + value
                count += len(batch.x)
        return {key: value / count for key, value in totals.items()}

    def _batch_metrics(self, x, noise):
        """Sums over the batch: recon_nats and mse of the clean images."""
        y = self.likelihood.inputs(x)
        params = self.decoder(self.encode(y))
        return {"recon_nats": float(-self.likelihood.log_prob(params, y).numpy().sum()),
                "mse": squared_error(self.likelihood, params, x)}

    def features(self, x):
        return self.encode(self.likelihood.inputs(x))

    def sample(self, n, generator, labels=None):
        """Codes from N(m, S), the running mean and covariance of the training codes,
        decoded; the decoder's mean rounded to the nearest level."""
        cov = self.code_moment - np.outer(self.code_mean, self.code_mean)
        # a covariance from running sums can be a rounding error short of positive
        w, v = np.linalg.eigh((cov + cov.T) / 2)
        eps = generator.rng.standard_normal((n, self.latent))
        codes = self.code_mean + (eps * np.sqrt(np.clip(w, 0, None))) @ v.T
        with no_grad():
            params = self.decoder(tensor(codes.astype(np.float32), device=self.device))
            return np.rint(self.likelihood.mean(params)).astype(np.uint8)

    def draw(self, samples, path, reference):
        """samples.png, and reconstructions.png beside it: rows of training images over
        (for a dae: their corrupted versions over) their reconstructions."""
        super().draw(samples, path, reference)
        with no_grad():
            y = self.likelihood.inputs(tensor(reference[:32], device=self.device))
            seen = self.corrupt(y, Generator(0))
            mean = self.likelihood.mean(self.decoder(self.encode(seen)))
        shown = [y.numpy()] + ([seen.numpy()] if seen is not y else []) + \
            [mean / (self.spec.levels - 1)]
        draw_reconstructions(path, shown)

    def extra_state(self):
        return {"code_mean": self.code_mean.copy(), "code_moment": self.code_moment.copy()}

    def load_extra_state(self, state):
        self.code_mean = np.array(state["code_mean"], dtype=np.float64)
        self.code_moment = np.array(state["code_moment"], dtype=np.float64)


@register("dae", "denoising autoencoder: gaussian, masking or salt-and-pepper corruption",
          data=IMAGES, arch="mlp", hidden=(256,), latent=16, channels=32, decoder="auto",
          noise="masking", noise_level=0.25, steps=2000, batch_size=64, lr=1e-3,
          ranges={"hidden": "[1, inf)", "latent": "[1, inf)", "channels": "[1, inf)",
                  "noise_level": "[0, inf)"})
class DenoisingAutoencoder(Autoencoder):

    def __init__(self, spec, generator, noise="masking", noise_level=0.25, **config):
        if noise not in NOISES:
            raise ValueError(f"noise={noise!r}: choose one of {', '.join(NOISES)}")
        if noise_level < 0 or (noise != "gaussian" and noise_level > 1):
            raise ValueError(f"noise_level={noise_level}: a standard deviation >= 0 for "
                             f"gaussian noise, a share in [0, 1] for {noise}")
        super().__init__(spec, generator, **config)
        self.noise, self.noise_level = noise, float(noise_level)

    def corrupt(self, y, generator):
        """x~ ~ q(x~ | x) for inputs y on [0, 1] (the module docstring)."""
        level = self.noise_level
        if self.noise == "gaussian":
            return y + generator.normal(y.shape, std=level, device=y.device)
        hit = tensor(generator.uniform(y.shape, dtype=np.float64).numpy() < level,
                     device=y.device)
        if self.noise == "masking":
            return where(hit, 0.0, y)
        salt = generator.uniform(y.shape, dtype=np.float64).numpy() < 0.5
        return where(hit, tensor(salt.astype(np.float32), device=y.device), y)

    def _batch_metrics(self, x, noise):
        """recon_nats and mse of the clean images, and denoise_nats: -log p(x | g(f(x~)))
        for corrupted images x~."""
        metrics = super()._batch_metrics(x, noise)
        y = self.likelihood.inputs(x)
        params = self.decoder(self.encode(self.corrupt(y, noise)))
        metrics["denoise_nats"] = float(-self.likelihood.log_prob(params, y).numpy().sum())
        return metrics
