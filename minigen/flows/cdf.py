"""Mixture-CDF flows: a scalar bijection through the CDF of a mixture, then an inverse sigmoid.

For a mixture with weights w_k, means m_k and scales s_k, F(x) = sum_k w_k C((x - m_k) / s_k)
(C the standard normal or logistic CDF) maps the line onto (0, 1), and its derivative is
the mixture's density f(x) > 0: a monotone bijection. An inverse sigmoid then maps (0, 1)
back onto the line,

    z = logit F(x) = log F(x) - log(1 - F(x)),     dz/dx = f(x) / (F(x) (1 - F(x))),

and with a standard logistic base, log p_L(z) = log sigmoid(z) + log sigmoid(-z)
= log F + log(1 - F), the change of variables

    log p(x) = log p_L(z) + log dz/dx = log F + log(1 - F) + log f - log F - log(1 - F)

leaves exactly the mixture's log-density, log f(x). Every term is still computed: it is
what makes the flow stackable and checkable, and z is the latent that sampling inverts.

Nothing here forms F(x) itself: F rounds to 1 a few scales past the last component and
logit(1) is infinite. log F and log(1 - F) are logsumexps of per-component log-CDFs and
log-survivals (log_normal_cdf from minigen.ops, or log_sigmoid for logistics), finite for
|x| = 1e4 and beyond. The inverse has no closed form; it is found by bisection on the
monotone z(x).
"""
import math

import numpy as np

from .. import backend, nn
from ..autograd import no_grad, tensor
from ..ops import exp, expand_dims, log_sigmoid, log_softmax, logsumexp, square
from ..ops.elementwise import log_normal_cdf
from .base import Bijector

MIXTURES = ("gaussian", "logistic")
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# the bracket starts this many component scales beyond the outermost components: a
# logistic's logit-CDF only reaches -40 there, a Gaussian's about -800; wider is found
# by doubling
_BRACKET_SCALES = 40.0
_MAX_BRACKET_DOUBLINGS = 64
_MAX_BISECTIONS = 200


def _component_log_terms(t, mixture):
    """Per component, at standardised t = (x - m) / s: (log C(t), log(1 - C(t)), log c(t)),
    the log-CDF, log-survival and log-density of the standard component."""
    if mixture == "gaussian":
        return log_normal_cdf(t), log_normal_cdf(-t), -0.5 * square(t) - _HALF_LOG_2PI
    if mixture == "logistic":
        log_cdf, log_sf = log_sigmoid(t), log_sigmoid(-t)
        return log_cdf, log_sf, log_cdf + log_sf
    raise ValueError(f"mixture must be one of {', '.join(MIXTURES)}, not {mixture!r}")


def _check_params(op, x, logit_weights, means, log_scales):
    shapes = (logit_weights.shape, means.shape, log_scales.shape)
    if len(set(shapes)) != 1 or means.ndim < 1:
        raise ValueError(f"{op}: logit_weights, means and log_scales must share one shape "
                         f"batch + (K,), got {', '.join(map(str, shapes))}")
    try:
        np.broadcast_shapes(tuple(x.shape), means.shape[:-1])
    except ValueError:
        raise ValueError(f"{op}: x of shape {tuple(x.shape)} does not broadcast against the "
                         f"mixtures' batch shape {means.shape[:-1]} (parameters "
                         f"{means.shape}, components last)") from None


def mixture_logit_cdf(x, logit_weights, means, log_scales, mixture="gaussian"):
    """z = logit F(x) and log dz/dx = log f - log F - log(1 - F), element by element.

    x: Tensor of any shape; the parameters: Tensors of shape batch + (K,) that broadcast
    against x with the components last (one mixture per element of x, or shared). They are
    computed in x's dtype: float64 x gives float64 throughout, whatever the parameters'
    dtype (in the far tails log F and log(1 - F) are large and cancel in log dz/dx).
    """
    _check_params("mixture_logit_cdf", x, logit_weights, means, log_scales)
    logit_weights, means, log_scales = (p.astype(x.dtype) for p in
                                        (logit_weights, means, log_scales))
    t = (expand_dims(x, -1) - means) * exp(-log_scales)
    log_cdf, log_sf, log_density = _component_log_terms(t, mixture)
    log_w = log_softmax(logit_weights, axis=-1)
    log_F = logsumexp(log_w + log_cdf, axis=-1)
    log_S = logsumexp(log_w + log_sf, axis=-1)
    log_f = logsumexp(log_w + log_density - log_scales, axis=-1)
    return log_F - log_S, log_f - log_F - log_S


def inverse_mixture_logit_cdf(z, logit_weights, means, log_scales, mixture="gaussian"):
    """The x with logit F(x) = z, by vectorised bisection in float64, in z's dtype.

    z(x) is strictly increasing, so a bracket [lo, hi] with z(lo) <= z <= z(hi) halves
    towards the root until lo and hi are neighbouring floats (to within a few ulps of the
    root's size, or of the smallest component scale near 0). The bracket starts 40 scales
    past the outermost components and doubles its width outwards where z lies beyond it.
    Nothing is recorded in the graph: the caller evaluates the forward at the result for the
    log-determinant.
    """
    _check_params("inverse_mixture_logit_cdf", z, logit_weights, means, log_scales)
    with no_grad():
        params = [p.detach().astype("float64") for p in (logit_weights, means, log_scales)]
        target = z.detach().astype("float64")
        xp = backend.xp_of(target.data)
        if not bool(xp.all(xp.isfinite(target.data))):
            raise ValueError("inverse_mixture_logit_cdf: z must be finite (a uniform u of "
                             "exactly 0 or 1 has no preimage)")
        shape = np.broadcast_shapes(target.shape, params[1].shape[:-1])
        target = xp.broadcast_to(target.data, shape)
        means, scales = params[1].data, xp.exp(params[2].data)

        def z_at(x):
            return mixture_logit_cdf(tensor(x), *params, mixture=mixture)[0].data

        lo = xp.broadcast_to((means - _BRACKET_SCALES * scales).min(-1), shape).copy()
        hi = xp.broadcast_to((means + _BRACKET_SCALES * scales).max(-1), shape).copy()
        for _ in range(_MAX_BRACKET_DOUBLINGS):
            low_side, high_side = z_at(lo) > target, z_at(hi) < target
            if not (low_side.any() or high_side.any()):
                break
            width = hi - lo
            lo, hi = xp.where(low_side, lo - width, lo), xp.where(high_side, hi + width, hi)
        else:
            raise ValueError(f"inverse_mixture_logit_cdf: z up to {float(abs(target).max())} "
                             f"lies beyond the bracket after {_MAX_BRACKET_DOUBLINGS} "
                             f"doublings")
        tolerance = 4 * np.finfo(np.float64).eps * xp.broadcast_to(scales.min(-1), shape)
        for _ in range(_MAX_BISECTIONS):
            mid = lo + 0.5 * (hi - lo)
            if bool(xp.all(hi - lo <= tolerance + 4 * np.finfo(np.float64).eps
                           * xp.abs(mid))):
                break
            below = z_at(mid) < target
            lo, hi = xp.where(below, mid, lo), xp.where(below, hi, mid)
        return tensor(lo + 0.5 * (hi - lo)).astype(z.dtype)


def standard_logistic_log_prob(z):
    """log p(z) of the standard logistic, log sigmoid(z) + log sigmoid(-z), summed over all
    but the first axis, in float64: the base density of the CDF flows, whose CDF (the
    sigmoid) undoes the flow's final inverse sigmoid."""
    flat = z.reshape(len(z), -1).astype("float64")
    return (log_sigmoid(flat) + log_sigmoid(-flat)).sum(axis=1)


def logistic_from_uniform(u):
    """z = logit u = log u - log(1 - u) for u in (0, 1): the inverse of the logistic base's
    CDF, so a uniform u gives a logistic z. float64 NumPy in, float64 Tensor out."""
    u = np.asarray(u, dtype=np.float64)
    if not np.all((u > 0) & (u < 1)):
        raise ValueError(f"from_uniform: u must lie in the open interval (0, 1), got values "
                         f"in [{u.min()}, {u.max()}]")
    return tensor(np.log(u) - np.log1p(-u))


class MixtureCDF(Bijector):
    """D independent scalar CDF flows, z_d = logit F_d(x_d), each with its own free mixture
    of `components` Gaussians or logistics. Forward on (N, D), log-determinant summed over d.

    The parameters live in the data's units through `box` ((low, high) per dimension):
    means = centre + half_width * m and scales = half_width * exp(s), so that m and s are of
    order 1 whatever the data's range and one learning rate suits every dataset. They start
    with equal weights, the means evenly spread over the box and scales 2 / K half-widths:
    a smooth density with its mass on the box.
    """

    def __init__(self, dims, components, box, mixture="gaussian"):
        super().__init__()
        if mixture not in MIXTURES:
            raise ValueError(f"mixture must be one of {', '.join(MIXTURES)}, not {mixture!r}")
        if len(box) != dims:
            raise ValueError(f"MixtureCDF: box has {len(box)} (low, high) pairs for {dims} "
                             f"dimensions")
        self.dims, self.components, self.mixture = int(dims), int(components), mixture
        self.centre, self.half_width = box_affine(box)
        logit_weights, means, log_scales = initial_mixture(self.components)
        self.logit_weights = nn.Parameter(np.tile(logit_weights, (self.dims, 1)))
        self.means = nn.Parameter(np.tile(means, (self.dims, 1)))
        self.log_scales = nn.Parameter(np.tile(log_scales, (self.dims, 1)))

    def mixture_params(self):
        """(logit_weights, means, log_scales), each (D, K), the means and scales in the
        data's units."""
        return to_data_units(self.logit_weights, self.means, self.log_scales,
                             self.centre[:, None], self.half_width[:, None])

    def _check(self, op, x):
        if x.ndim != 2 or x.shape[1] != self.dims:
            raise ValueError(f"MixtureCDF.{op}: expected (N, {self.dims}) input, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x, cond=None):
        self._check("forward", x)
        z, log_dz = mixture_logit_cdf(x, *self.mixture_params(), mixture=self.mixture)
        return z, log_dz.astype("float64").sum(axis=1)

    def inverse(self, z, cond=None):
        self._check("inverse", z)
        x = inverse_mixture_logit_cdf(z, *self.mixture_params(), mixture=self.mixture)
        _, logdet = self.forward(x)
        return x, -logdet


def box_affine(box):
    """(centre, half_width) per dimension of a ((low, high), ...) box, float32 arrays."""
    box = np.asarray(box, dtype=np.float64).reshape(-1, 2)
    if not np.all(box[:, 1] > box[:, 0]):
        raise ValueError(f"box must have low < high in every dimension, got {box.tolist()}")
    return ((box[:, 0] + box[:, 1]) / 2).astype(np.float32), \
        ((box[:, 1] - box[:, 0]) / 2).astype(np.float32)


def initial_mixture(components):
    """Box-normalised (logit_weights, m, s) of K equal components evenly spread over
    [-1, 1], each with scale 2 / K: neighbours overlap by about one scale."""
    k = int(components)
    if k < 1:
        raise ValueError(f"a mixture needs at least one component, got {components}")
    means = ((np.arange(k) + 0.5) / k * 2 - 1).astype(np.float32)
    return np.zeros(k, np.float32), means, np.full(k, math.log(2.0 / k), np.float32)


def to_data_units(logit_weights, m, s, centre, half_width):
    """Box-normalised mixture parameters in the data's units: means centre + half_width m,
    log-scales log(half_width) + s. centre and half_width: NumPy arrays that broadcast
    against the parameters."""
    def like_m(value):
        return tensor(np.asarray(value), dtype=m.dtype, device=m.device)
    return logit_weights, m * like_m(half_width) + like_m(centre), s + like_m(np.log(half_width))


__all__ = ["MIXTURES", "MixtureCDF", "box_affine", "initial_mixture", "inverse_mixture_logit_cdf",
           "log_normal_cdf", "logistic_from_uniform", "mixture_logit_cdf",
           "standard_logistic_log_prob", "to_data_units"]
