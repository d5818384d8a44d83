"""Probability distributions with differentiable log-densities, and their samplers.

    d = mg.distributions.Normal(mu, mg.exp(log_sigma))
    z = d.rsample(generator=g)                 # reparameterised: gradients reach mu, sigma
    nll = -d.log_prob(x).sum()

Shapes follow torch.distributions. The parameters broadcast together to the batch shape;
`sample(shape)` returns shape + batch_shape (+ the event shape of a multi-channel
mixture); `log_prob(x)` broadcasts x against the batch shape and returns one value per
element (per event). Mixtures and Categorical keep their component (category) axis last.
Parameters given as Python numbers or arrays beside a Tensor take that Tensor's dtype and
device; all randomness comes from a `mg.random.Generator` (default: the global one).
"""
import math

import numpy as np

from . import backend, random
from .autograd import Tensor, no_grad, tensor
from .ops import (broadcast_to, clip, erf, exp, expand_dims, expm1, log, log_softmax,
                  logsumexp, sigmoid, softmax, softplus, square, take_along_axis, where)

__all__ = ["Bernoulli", "Categorical", "DiscretizedLogisticMixture", "MixtureOfGaussians",
           "Normal", "kl_divergence"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _float_tensors(name, *values):
    """The parameters as floating-point Tensors, non-Tensors following the first Tensor."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    out = []
    for v in values:
        if isinstance(v, Tensor):
            if v.dtype.kind != "f":
                raise TypeError(f"{name}: parameters must be floating-point, got {v.dtype}")
        elif like is not None:
            v = tensor(v, dtype=like.dtype, device=like.device)
        else:
            v = tensor(v)
            if v.dtype.kind != "f":  # Normal(0, 1)
                v = v.astype(np.float32)
        out.append(v)
    return out


def _value(x, like):
    return x if isinstance(x, Tensor) else tensor(x, dtype=like.dtype, device=like.device)


def _shape(shape):
    return (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)


def _generator(generator):
    return random.default_generator if generator is None else generator


def _normal_log_density(z, log_scale):
    """log N(x; loc, scale) written with z = (x - loc) / scale."""
    return -0.5 * square(z) - log_scale - _HALF_LOG_2PI


def _standard_normal_cdf(z):
    return (erf(z * (1 / math.sqrt(2))) + 1.0) * 0.5


def _take_component(array, k, event_ndim):
    """Raw array of shape batch + event + (K,) at the component k (shape sample + batch)
    drawn for each element: shape sample + batch + event."""
    xp = backend.xp_of(array)
    shape = k.shape + array.shape[array.ndim - 1 - event_ndim:-1]
    index = xp.broadcast_to(k.reshape(k.shape + (1,) * (event_ndim + 1)), shape + (1,))
    array = xp.broadcast_to(array, shape + array.shape[-1:])
    return xp.take_along_axis(array, index, axis=-1)[..., 0]


class Normal:
    """Independent normals N(loc, scale^2), one per element of the batch shape."""

    def __init__(self, loc, scale):
        loc, scale = _float_tensors("Normal", loc, scale)
        self.batch_shape = np.broadcast_shapes(loc.shape, scale.shape)
        self.loc = broadcast_to(loc, self.batch_shape)
        self.scale = broadcast_to(scale, self.batch_shape)

    mean = property(lambda self: self.loc)
    stddev = property(lambda self: self.scale)
    variance = property(lambda self: square(self.scale))

    def log_prob(self, x):
        x = _value(x, self.loc)
        return _normal_log_density((x - self.loc) / self.scale, log(self.scale))

    def cdf(self, x):
        """(1 + erf(z / sqrt 2)) / 2: exact to rounding in absolute terms (so a far lower
        tail, below about 1e-16 of mass, comes out as 0)."""
        return _standard_normal_cdf((_value(x, self.loc) - self.loc) / self.scale)

    def entropy(self):
        return log(self.scale) + (0.5 + _HALF_LOG_2PI)

    def rsample(self, shape=(), generator=None):
        """loc + scale * eps with eps ~ N(0, 1): differentiable in loc and scale."""
        eps = _generator(generator).normal(_shape(shape) + self.batch_shape,
                                           dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * eps

    def sample(self, shape=(), generator=None):
        with no_grad():
            return self.rsample(shape, generator)


class Bernoulli:
    """Independent coin flips with P(x = 1) = sigmoid(logits). Note the first argument is
    the logits (torch.distributions.Bernoulli takes probs first).

    log p(x) = -(x softplus(-logits) + (1 - x) softplus(logits)), which is finite (and
    exact) for logits of any size, where log(sigmoid(.)) would give log 0.
    """

    def __init__(self, logits):
        (self.logits,) = _float_tensors("Bernoulli", logits)
        self.batch_shape = self.logits.shape

    probs = property(lambda self: sigmoid(self.logits))
    mean = probs

    def log_prob(self, x):
        x = _value(x, self.logits)
        return -(x * softplus(-self.logits) + (1.0 - x) * softplus(self.logits))

    def entropy(self):
        logits = self.logits
        return sigmoid(logits) * softplus(-logits) + sigmoid(-logits) * softplus(logits)

    def sample(self, shape=(), generator=None):
        """0.0 / 1.0 values in the logits' dtype, of shape `shape + batch_shape`."""
        # float64 uniforms: a float32 draw can round up to 1.0 and fail a certain event
        u = _generator(generator).uniform(_shape(shape) + self.batch_shape, dtype=np.float64,
                                          device=self.logits.device).data
        probs = backend.special_of(u).expit(self.logits.data)
        return Tensor((u < probs).astype(self.logits.dtype))


class Categorical:
    """One draw from {0, ..., K-1} per batch element, P(k) = softmax(logits)[..., k]; the
    categories are the last axis of `logits` (shape batch + (K,))."""

    def __init__(self, logits):
        (self.logits,) = _float_tensors("Categorical", logits)
        if self.logits.ndim == 0:
            raise ValueError("Categorical: logits need a last axis of categories")
        self.batch_shape = self.logits.shape[:-1]
        self.num_categories = self.logits.shape[-1]

    probs = property(lambda self: softmax(self.logits, axis=-1))

    def log_prob(self, value):
        """log P(value) for integer values broadcasting against the batch shape."""
        xp = backend.xp_of(self.logits.data)
        k = xp.asarray(value.data if isinstance(value, Tensor) else value)
        if k.dtype.kind not in "iu":
            raise TypeError(f"Categorical.log_prob: values must be integers, got {k.dtype}")
        if k.size and (k.min() < 0 or k.max() >= self.num_categories):
            raise ValueError(f"Categorical.log_prob: values must lie in [0, "
                             f"{self.num_categories}), got {int(k.min())}..{int(k.max())}")
        shape = np.broadcast_shapes(k.shape, self.batch_shape)
        log_p = broadcast_to(log_softmax(self.logits, axis=-1),
                             shape + (self.num_categories,))
        return take_along_axis(log_p, xp.broadcast_to(k, shape)[..., None], axis=-1)[..., 0]

    def entropy(self):
        log_p = log_softmax(self.logits, axis=-1)
        return -(exp(log_p) * log_p).sum(axis=-1)

    def sample(self, shape=(), generator=None):
        """int64 categories of shape `shape + batch_shape`, by the Gumbel-max trick
        (argmax of logits + Gumbel noise), which works on the logits directly, so even a
        category with probability below the float range is handled exactly."""
        u = _generator(generator).uniform(_shape(shape) + self.logits.shape, dtype=np.float64,
                                          device=self.logits.device).data
        xp = backend.xp_of(u)
        return Tensor((self.logits.data - xp.log(-xp.log(u))).argmax(axis=-1))


def _mixture_params(name, logit_weights, means, log_scales):
    """Broadcast the parameters: weights to batch + (K,), the others to batch + event + (K,),
    where the event axes are those that means has beyond the weights."""
    weights, means, log_scales = _float_tensors(name, logit_weights, means, log_scales)
    event_ndim = means.ndim - weights.ndim
    if weights.ndim == 0 or event_ndim < 0 or log_scales.ndim != means.ndim:
        raise ValueError(f"{name}: expected logit_weights of shape batch + (K,) and means, "
                         f"log_scales of shape batch + event + (K,); got {weights.shape}, "
                         f"{means.shape}, {log_scales.shape}")
    inner = slice(means.ndim - 1 - event_ndim, means.ndim - 1)
    batch = np.broadcast_shapes(weights.shape[:-1], means.shape[:inner.start],
                                log_scales.shape[:inner.start])
    event = np.broadcast_shapes(means.shape[inner], log_scales.shape[inner])
    k = np.broadcast_shapes(weights.shape[-1:], means.shape[-1:], log_scales.shape[-1:])
    return (broadcast_to(weights, batch + k), broadcast_to(means, batch + event + k),
            broadcast_to(log_scales, batch + event + k), batch, event)


def _log1mexp(d, log_d):
    """log(1 - e^-d) for d > 0, given d and log d. Below the dtype's epsilon it equals
    log d - d/2 + ..., so log d is exact to rounding; the clip keeps the unused branch (and
    so its gradient) finite."""
    eps = float(np.finfo(d.dtype).eps)
    return where(d.data > eps, log(-expm1(-clip(d, eps, None))), log_d)


class DiscretizedLogisticMixture:
    """The PixelCNN++ likelihood (Salimans et al. 2017, eq. 2) for data on `num_bins`
    evenly spaced levels from `low` to `high` (8-bit pixels scaled to [-1, 1] by default).

    Layout: logit_weights has shape batch + (K,), the K mixture components last; means and
    log_scales have shape batch + event + (K,). The event is () for one value per mixture
    draw, or (C,) for C channels that share their pixel's component (PixelCNN++'s R, G, B;
    its channel coupling coefficients belong in the means, computed by the model). x has
    shape [sample +] batch + event; log_prob returns [sample +] batch.

    Component k puts on the level x the logistic mass of [x - h, x + h] (h = half the
    spacing), with the first bin reaching down to -inf and the last up to +inf:

        log P(x) = log sigmoid(a) + log sigmoid(-b) + log(1 - e^-(a - b)),
        a = (x + h - mean) / s, b = (x - h - mean) / s, a - b = 2h / s,

    which is sigmoid(a) - sigmoid(b) in a form that cannot underflow (each term is a
    softplus). Where 2h / s underflows, log(1 - e^-(a-b)) is log(2h / s) to rounding, and
    the bin's mass becomes density x width: PixelCNN++'s mid-bin fallback, used only where
    it is exact. The bin masses of each component therefore sum to 1 to rounding for any
    log_scales for which exp(-log_scales) is finite (models clamp them, PixelCNN++ at -7).
    """

    def __init__(self, logit_weights, means, log_scales, num_bins=256, low=-1.0, high=1.0):
        if num_bins < 2 or not high > low:
            raise ValueError(f"DiscretizedLogisticMixture: need num_bins >= 2 and high > low, "
                             f"got {num_bins}, [{low}, {high}]")
        (self.logit_weights, self.means, self.log_scales, self.batch_shape,
         self.event_shape) = _mixture_params("DiscretizedLogisticMixture", logit_weights,
                                             means, log_scales)
        self.num_bins, self.low, self.high = num_bins, low, high
        self.half_bin = (high - low) / (2 * (num_bins - 1))

    def log_prob(self, x):
        x = _value(x, self.means)
        h = self.half_bin
        centered = expand_dims(x, -1) - self.means
        inv_scale = exp(-self.log_scales)
        upper = inv_scale * (centered + h)
        lower = inv_scale * (centered - h)
        log_cdf_upper = -softplus(-upper)  # log P(X < x + h)
        log_sf_lower = -softplus(lower)    # log P(X > x - h)
        log_width = math.log(2 * h) - self.log_scales
        interior = log_cdf_upper + log_sf_lower + _log1mexp(exp(log_width), log_width)
        first = (x.data < self.low + h)[..., None]
        last = (x.data > self.high - h)[..., None]
        log_p = where(first, log_cdf_upper, where(last, log_sf_lower, interior))
        event_axes = tuple(range(log_p.ndim - 1 - len(self.event_shape), log_p.ndim - 1))
        if event_axes:
            log_p = log_p.sum(axis=event_axes)
        return logsumexp(log_softmax(self.logit_weights, axis=-1) + log_p, axis=-1)

    def sample(self, shape=(), generator=None):
        """Values on the levels, of shape `shape + batch_shape + event_shape`."""
        generator = _generator(generator)
        k = Categorical(self.logit_weights).sample(shape, generator).data
        event_ndim = len(self.event_shape)
        means = _take_component(self.means.data, k, event_ndim)
        xp = backend.xp_of(means)
        scales = xp.exp(_take_component(self.log_scales.data, k, event_ndim))
        u = generator.uniform(means.shape, dtype=np.float64, device=self.means.device).data
        x = means + scales * (xp.log(u) - xp.log1p(-u))  # the logistic quantile function
        level = xp.clip(xp.rint((x - self.low) / (2 * self.half_bin)), 0, self.num_bins - 1)
        return Tensor((self.low + level * (2 * self.half_bin)).astype(self.means.dtype))


class MixtureOfGaussians:
    """A mixture of K scalar normals per batch element: weights softmax(logit_weights),
    means and exp(log_scales), each of shape batch + (K,) with the components last.
    `cdf` is differentiable, in the parameters and in x (its derivative is the density),
    for mixture-CDF flows."""

    def __init__(self, logit_weights, means, log_scales):
        (self.logit_weights, self.means, self.log_scales, self.batch_shape,
         event) = _mixture_params("MixtureOfGaussians", logit_weights, means, log_scales)
        if event:
            raise ValueError(f"MixtureOfGaussians: logit_weights, means and log_scales need "
                             f"the same number of axes (batch + (K,)); means have "
                             f"{len(event)} more than logit_weights")

    def _z(self, x):
        return (expand_dims(_value(x, self.means), -1) - self.means) * exp(-self.log_scales)

    def log_prob(self, x):
        log_p = _normal_log_density(self._z(x), self.log_scales)
        return logsumexp(log_softmax(self.logit_weights, axis=-1) + log_p, axis=-1)

    def cdf(self, x):
        weights = softmax(self.logit_weights, axis=-1)
        return (weights * _standard_normal_cdf(self._z(x))).sum(axis=-1)

    def sample(self, shape=(), generator=None):
        """Values of shape `shape + batch_shape`."""
        generator = _generator(generator)
        k = Categorical(self.logit_weights).sample(shape, generator).data
        means = _take_component(self.means.data, k, 0)
        scales = backend.xp_of(means).exp(_take_component(self.log_scales.data, k, 0))
        eps = generator.normal(means.shape, dtype=self.means.dtype, device=self.means.device)
        return Tensor(means + scales * eps.data)


def kl_divergence(p, q):
    """KL(p || q) in closed form, per batch element; implemented for two Normals:
    log(sq / sp) + (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2."""
    if isinstance(p, Normal) and isinstance(q, Normal):
        var_ratio = square(p.scale / q.scale)
        return (var_ratio + square((p.loc - q.loc) / q.scale) - 1.0 - log(var_ratio)) * 0.5
    raise NotImplementedError(f"kl_divergence: no closed form here for "
                              f"{type(p).__name__} and {type(q).__name__}")
