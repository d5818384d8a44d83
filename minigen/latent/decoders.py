"""Decoders: networks from latents to the parameters of p(x | z), and the likelihoods that
score data under those parameters.

    lik = likelihood("auto", spec)            # Bernoulli for binary data, ... (see below)
    decoder = MLPDecoder(16, (256, 256), spec.dims * lik.outputs, generator)
    y = lik.inputs(x, generator)              # x: uint8 levels (N, C, H, W) -> floats
    log_px_z = lik.log_prob(decoder(z), y)    # (N,): log p(x | z), summed over dimensions
    images = lik.sample(decoder(z), generator)  # uint8 levels, (N, C, H, W)

`y = lik.inputs(x)` is the data as the networks see it: x / (K - 1) in [0, 1] for the
discrete likelihoods (DATA.md's scale for representation learning), and for the Gaussian
the uniformly dequantized y = (x + u) / K. The encoder reads y and log_prob scores y, so a
model draws the dequantization noise once per example (generator=None: the middle of each
bin, u = 1/2, for features and pictures).

A decoder gives `lik.outputs` numbers per data dimension, flat: params of shape
lead + (outputs * D,), laid out (outputs, D) (output o of dimension d at o * D + d), for any
leading axes lead = (..., N) that broadcast against the N examples of y: an importance
sampler decodes (K, N, L) latents at once.

The likelihoods, by `decoder=` name:
    bernoulli     binary data: a logit per dimension, log p = -BCE(logits, x).
    categorical   K levels: K logits per dimension (a softmax over the levels).
    logistic      K levels: a discretized logistic per dimension (mean, log-scale), the
                  mass of the level's bin on [0, 1] (PixelCNN++'s likelihood, one component).
    gaussian      a density on y = (x + u) / K: N(mean, exp(log-scale)^2) per dimension.
    auto          bernoulli for binary data, categorical up to 32 levels, logistic beyond
                  (a categorical over 256 levels would need 256 outputs per pixel).

Every log_prob is in nats of the discrete data, so all four give comparable numbers and
bpd = -log_prob / (D ln 2). For the Gaussian that is DATA.md's rule: the density of the
levels x + u is p(y) K^-D (y = (x + u) / K scales each of the D dimensions by 1/K), so
log_prob = log p(y) - D log K, and its expectation over u is a lower bound on log P(x)
(Theis et al. 2016).

Networks: `MLPDecoder` (Linear/ReLU layers, `layers.{i}`) and `ConvDecoder` (Linear/ReLU
layers to a 2 * channels map at a quarter of the image side, then two 4x4 stride-2
transposed convolutions, `deconvs.{i}`; `upsample(h)` runs the transposed convolutions
alone on such a map, for a model whose latents are already a map). Both start at torch's
default initialisation drawn from `generator`.
"""
import math

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..distributions import Bernoulli, Categorical, DiscretizedLogisticMixture, Normal
from ..creation import zeros_like
from ..ops import broadcast_to, clip, exp, moveaxis, relu, sigmoid, softmax
from .encoders import MLP, conv_feature_shape

DECODERS = ("auto", "bernoulli", "categorical", "logistic", "gaussian")
MIN_LOG_SCALE = -7.0  # the logistic's floor, as PixelCNN++: exp(7) keeps its bins finite


def likelihood(name, spec):
    """The likelihood `name` (one of DECODERS) for discrete data described by spec (a
    DataSpec); a ValueError names the `decoder` key where it cannot model the data."""
    if spec.kind != "discrete":
        raise ValueError(f"{spec.name}: the decoders model discrete data (levels); got "
                         f"continuous data")
    levels = spec.levels
    if name == "auto":
        name = "bernoulli" if levels == 2 else "categorical" if levels <= 32 else "logistic"
    if name == "bernoulli":
        if levels != 2:
            raise ValueError(f"decoder=bernoulli models binary data; {spec.name} has "
                             f"{levels} levels: use categorical, logistic or gaussian")
        return BernoulliLikelihood(spec.shape, levels)
    kinds = {"categorical": CategoricalLikelihood, "logistic": LogisticLikelihood,
             "gaussian": GaussianLikelihood}
    if name not in kinds:
        raise ValueError(f"decoder={name}: unknown likelihood; choose one of "
                         f"{', '.join(DECODERS)}")
    return kinds[name](spec.shape, levels)


class Likelihood:
    """p(x | z) for data of `shape` on `levels` levels, given a decoder's params."""

    outputs = 1  # decoder outputs per data dimension

    def __init__(self, shape, levels):
        self.shape, self.levels = tuple(shape), int(levels)
        self.dims = int(np.prod(self.shape))

    def inputs(self, x, generator=None):
        """The data as the networks see it: x / (K - 1), float32, x's shape."""
        return x.astype("float32") * (1.0 / (self.levels - 1))

    def split(self, params):
        """params lead + (outputs * D,) -> lead + (outputs, D), or lead + (D,) for one."""
        lead = params.shape[:-1]
        if params.shape[-1] != self.outputs * self.dims:
            raise ValueError(f"{type(self).__name__}: expected {self.outputs} x {self.dims} "
                             f"decoder outputs per example, got {params.shape[-1]}")
        return params if self.outputs == 1 else \
            params.reshape(lead + (self.outputs, self.dims))

    def flat(self, y):
        return y.reshape(len(y), self.dims)

    def log_prob(self, params, y):
        """log p(x | z) per example, lead (..., N): summed over the D dimensions."""
        raise NotImplementedError

    def sample(self, params, generator):
        """Images x ~ p(x | z) as uint8 levels (N,) + shape, for params (N, outputs * D)."""
        raise NotImplementedError

    def mean(self, params):
        """E[x | z] in level units (float, (N,) + shape): what a reconstruction shows."""
        raise NotImplementedError

    def _images(self, values, dtype):
        values = values.numpy() if isinstance(values, Tensor) else values
        return values.reshape((len(values),) + self.shape).astype(dtype)


class BernoulliLikelihood(Likelihood):
    """log p(x | z) = sum_d x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d) = -BCE."""

    def log_prob(self, params, y):
        logits, target = self.split(params), self.flat(y)
        shape = np.broadcast_shapes(logits.shape, target.shape)
        return -F.binary_cross_entropy_with_logits(broadcast_to(logits, shape),
                                                   broadcast_to(target, shape),
                                                   reduction="none").sum(axis=-1)

    def sample(self, params, generator):
        return self._images(Bernoulli(self.split(params)).sample(generator=generator),
                            np.uint8)

    def mean(self, params):
        return self._images(sigmoid(self.split(params)), np.float64)


class CategoricalLikelihood(Likelihood):
    """A softmax over the K levels of each dimension: K logits per dimension."""

    def __init__(self, shape, levels):
        super().__init__(shape, levels)
        self.outputs = self.levels

    def _distribution(self, params):
        return Categorical(moveaxis(self.split(params), -2, -1))  # (..., D, K)

    def log_prob(self, params, y):
        values = np.rint(self.flat(y).numpy() * (self.levels - 1)).astype(np.int64)
        return self._distribution(params).log_prob(values).sum(axis=-1)

    def sample(self, params, generator):
        return self._images(self._distribution(params).sample(generator=generator), np.uint8)

    def mean(self, params):
        probs = softmax(moveaxis(self.split(params), -2, -1), axis=-1).numpy()
        return self._images(probs @ np.arange(self.levels), np.float64)


class LogisticLikelihood(Likelihood):
    """A discretized logistic per dimension on the levels i / (K - 1) of [0, 1]: the logistic
    mass of the level's bin, the end bins reaching to -inf and +inf. Outputs: mean, log-scale
    (floored at MIN_LOG_SCALE)."""

    outputs = 2

    def _distribution(self, params):
        out = self.split(params)
        means, log_scales = out[..., 0, :, None], out[..., 1, :, None]
        log_scales = clip(log_scales, MIN_LOG_SCALE, None)
        return DiscretizedLogisticMixture(zeros_like(means), means, log_scales,
                                          num_bins=self.levels, low=0.0, high=1.0)

    def log_prob(self, params, y):
        return self._distribution(params).log_prob(self.flat(y)).sum(axis=-1)

    def sample(self, params, generator):
        values = self._distribution(params).sample(generator=generator).numpy()
        return self._images(np.rint(values * (self.levels - 1)), np.uint8)

    def mean(self, params):
        means = self.split(params)[..., 0, :].numpy()
        return self._images(np.clip(means, 0, 1) * (self.levels - 1), np.float64)


class GaussianLikelihood(Likelihood):
    """A density on the dequantized data y = (x + u) / K, u ~ U[0, 1)^D: N(mean, scale^2)
    per dimension. Outputs: mean, log-scale."""

    outputs = 2

    def inputs(self, x, generator=None):
        x = x.astype("float32")
        u = 0.5 if generator is None else \
            generator.uniform(x.shape, dtype=np.float32, device=x.device)
        return (x + u) * (1.0 / self.levels)

    def _distribution(self, params):
        out = self.split(params)
        return Normal(out[..., 0, :], exp(out[..., 1, :]))

    def log_prob(self, params, y):
        # log p(x + u) = log p(y) - D log K: nats of the K-level data (module docstring)
        log_p_y = self._distribution(params).log_prob(self.flat(y)).sum(axis=-1)
        return log_p_y - self.dims * math.log(self.levels)

    def sample(self, params, generator):
        y = self._distribution(params).sample(generator=generator).numpy()
        return self._images(np.clip(np.floor(y * self.levels), 0, self.levels - 1), np.uint8)

    def mean(self, params):
        means = self.split(params)[..., 0, :].numpy()
        return self._images(np.clip(means * self.levels - 0.5, 0, self.levels - 1),
                            np.float64)


class MLPDecoder(MLP):
    """z (M, latent) -> Linear/ReLU layers of widths `hidden` -> (M, out_features)."""

    def __init__(self, latent, hidden, out_features, generator):
        super().__init__((latent, *hidden, out_features), generator)


class ConvDecoder(MLP):
    """z (M, latent) -> Linear/ReLU layers (widths `hidden`, then the map's size) -> a map
    (2 * channels, H/4, W/4) -> two 4x4 stride-2 transposed convolutions (channels, then
    outputs * C, with a ReLU between) -> (M, outputs * D), laid out (outputs, C, H, W)."""

    def __init__(self, latent, hidden, shape, channels, outputs, generator):
        map_shape = conv_feature_shape(shape, channels)
        super().__init__((latent, *hidden, int(np.prod(map_shape))), generator)
        self.map_shape = map_shape
        c = self.map_shape[0]
        self.deconvs = nn.ModuleList([
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, generator=generator),
            nn.ConvTranspose2d(c // 2, outputs * shape[0], 4, stride=2, padding=1,
                               generator=generator)])

    def forward(self, z):
        h = z
        for layer in self.layers:
            h = relu(layer(h))
        return self.upsample(h.reshape((len(h),) + self.map_shape))

    def upsample(self, h):
        """A map (M, 2 * channels, H/4, W/4) -> the decoder's params (M, outputs * D)."""
        first, last = list(self.deconvs)
        out = last(relu(first(h)))
        return out.reshape(len(out), -1)
