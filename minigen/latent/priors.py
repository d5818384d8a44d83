"""What the priors over VQ-VAE codes share: the trained VQ-VAE they read, frozen, and the
autoregressive networks over code grids.

A prior is trained after its VQ-VAE (van den Oord et al. 2017, section 3.1): the VQ-VAE is
loaded from its run's checkpoint (`--config vqvae=RUN`), kept out of the prior's parameters
(nothing trains it, the prior's checkpoint does not hold it, `params` does not count it) and
used under no_grad, so no gradient reaches it. A code grid (N, h, w) is to the prior an
image of one channel with K levels, modelled by minigen's PixelCNN or Transformer.

VQ-VAE-2's bottom prior is conditioned on the top codes (Razavi et al. 2019, section 3.2):
`ConditionedPixelCNN` reads a conditioning map the size of the grid through an unmasked
conditioning stack (a 3x3 convolution and a residual block), and adds an unmasked 1x1
convolution of the result to every residual block (the spatial conditioning
h = W * x + V * s of van den Oord et al. 2016b, "Conditional Image Generation with PixelCNN
Decoders", section 2.3), where the class-conditional PixelCNN adds a bias per class. The map
is given, not drawn, so a pixel may see it below and right of itself too.
"""
import os

import numpy as np

from .. import nn
from ..autograd import no_grad, tensor
from ..model import Model
from ..models import DataSpec
from ..models.pixelcnn import PixelCNN
from ..models.transformer import Transformer
from .grid import ResidualStack

PRIORS = ("pixelcnn", "transformer")


class Frozen:
    """A trained model used as a fixed function. Not a Module, so the model holding it
    neither trains, saves nor counts its parameters; `to` moves it along."""

    def __init__(self, model):
        self.model = model.eval()

    def to(self, device):
        self.model.to(device)


class CodePrior(Model):
    """The base of a prior over the codes of a frozen `wanted` run given by the config key
    vqvae= (vq-vae-prior, vq-vae-2-prior): the VQ-VAE as `self.vqvae`, moved by `to`, and
    its codes as the priors read them."""

    def __init__(self, spec, vqvae, wanted):
        super().__init__(spec)
        self.frozen = load_vqvae(vqvae, wanted, spec)

    @property
    def vqvae(self):
        return self.frozen.model

    def to(self, device):
        self.frozen.to(device)
        return super().to(device)

    def quantize(self, x):
        """The VQ-VAE's quantization of images x, without gradient."""
        with no_grad():
            return self.vqvae.encode(x)

    def grid(self, codes):
        """Integer codes (N, h, w) as the priors read them: (N, 1, h, w) int64 Tensor."""
        return tensor(np.asarray(codes)[:, None].astype(np.int64), device=self.device)


def load_vqvae(path, wanted, spec, key="vqvae"):
    """The model of a trained `wanted` run (a run folder or its checkpoint.npz), with its
    evaluation weights (the parameter EMA where the run kept one), frozen; an error naming
    the config key when the path is missing, holds another model or other data."""
    from .. import trainer  # the trainer imports every model: imported when a prior is built
    if not path:
        raise ValueError(f"{key}= is required: the folder of a trained {wanted} run (--config "
                         f"{key}=runs/{wanted}-{spec.name}-0)")
    file = os.path.join(path, "checkpoint.npz") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise ValueError(f"{key}={path}: no checkpoint there (looked for {file})")
    run = trainer.Run.from_checkpoint(file)
    if run.entry.name != wanted:
        raise ValueError(f"{key}={path} is a {run.entry.name} run, not a {wanted} run")
    if run.data_name != spec.name:
        raise ValueError(f"{key}={path} was trained on {run.data_name}; this prior is "
                         f"trained on {spec.name}")
    if run.ema:
        run.ema.copy_to()
    return Frozen(run.model)


def code_spec(name, grid, codes):
    """The data description of code grids (1, h, w) with `codes` levels."""
    if codes > 256:
        raise ValueError(f"codes={codes}: the priors draw code grids as uint8 images, so the "
                         f"VQ-VAE's codebook may have at most 256 entries")
    return DataSpec(f"{name}-codes", (1,) + tuple(grid), "discrete", int(codes))


def build_prior(kind, spec, generator, channels, blocks, first_kernel, kernel,
                condition_channels=0):
    """An autoregressive model of code grids `spec`: a PixelCNN (channels, blocks of
    kernel x kernel, a first_kernel first layer), with a conditioning map of
    condition_channels if any; or a Transformer (d_model = channels, `blocks` layers, 4
    heads)."""
    if kind == "pixelcnn":
        if condition_channels:
            return ConditionedPixelCNN(spec, generator, condition_channels, channels=channels,
                                       blocks=blocks, first_kernel=first_kernel, kernel=kernel)
        return PixelCNN(spec, generator, channels=channels, blocks=blocks,
                        first_kernel=first_kernel, kernel=kernel)
    if kind == "transformer" and not condition_channels:
        return Transformer(spec, generator, d_model=channels, heads=4, layers=blocks,
                           mlp=4 * channels)
    raise ValueError(f"prior={kind!r}: choose " + (
        "pixelcnn (the conditioned bottom prior is a PixelCNN)" if condition_channels
        else "pixelcnn or transformer"))


class ConditionedPixelCNN(PixelCNN):
    """A PixelCNN of p(x | s) for a conditioning map s (N, S, H, W): the map goes through an
    unmasked conditioning stack (3x3 convolution, residual block) to m(s), and every
    residual block adds V * m(s) (V an unmasked 1x1 convolution) to its masked features
    where the class-conditional model adds a bias per class. The map travels where PixelCNN
    passes labels (loss, nll, sample). Sampling recomputes the network for every pixel (the
    cached sampler reads a class bias at one pixel, not a map)."""

    def __init__(self, spec, generator, condition_channels, **config):
        super().__init__(spec, generator, **config)
        channels = self.first.weight.shape[0]
        self.condition = nn.Conv2d(condition_channels, channels, 3, padding=1,
                                   generator=generator)
        self.condition_stack = ResidualStack(channels, 1, generator)
        for block in self.blocks:
            inner = block.conv.weight.shape[0]
            block.class_bias = nn.Conv2d(channels, inner, 1, generator=generator)

    def forward(self, x, labels=None):
        """The logits for x (scaled to [0, 1]) given the conditioning map `labels`."""
        return super().forward(x, self.condition_stack(self.condition(labels)))

    def sampler(self, n, labels=None, cached=True):
        return super().sampler(n, labels, cached=False)
