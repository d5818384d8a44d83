"""The pieces of the diffusion model's variational bound that are not the network: the
discretized Gaussian decoder L_0 of Ho et al. (sec. 3.3, eq. 13), in a form that stays finite
however small a bin's mass is.

For data on K levels scaled to [-1, 1] (spacing 2 / (K - 1), half a bin h = 1 / (K - 1)),
the decoder gives the level x the Gaussian mass of its bin:

    P(x | mu, sigma) = Phi((x + h - mu) / sigma) - Phi((x - h - mu) / sigma),

with the lowest level's bin open to -inf and the highest's to +inf, so the masses of the K
levels sum to 1. The difference of two CDFs is taken in logs, on the side of the bin away
from the mean's tail: with a > b,

    log(Phi(a) - Phi(b)) = log Phi(a) + log(1 - exp(log Phi(b) - log Phi(a)))     (a + b <= 0)
                         = log Phi(-b) + log(1 - exp(log Phi(-a) - log Phi(-b)))  (a + b > 0)

(Phi(a) - Phi(b) = Phi(-b) - Phi(-a)), each log Phi from log_normal_cdf (scipy's log_ndtr, its
asymptotic series in the tail), so a bin 40 standard deviations from the mean still has a
finite log-mass, where Phi(a) - Phi(b) itself would be 0 or 1 - 1. Everything is computed in
float64, whatever the inputs' dtype.
"""
import numpy as np

from ..ops import clip, exp, expm1, log, where
from ..ops.elementwise import log_normal_cdf


def log_cdf_difference(a, b):
    """log(Phi(a) - Phi(b)) for Tensors a > b elementwise, stable in both tails. The branch
    not taken is clipped away from log 0, so its gradient (multiplied by 0) stays finite."""
    upper = (a + b).data > 0
    hi = where(upper, -b, a)
    lo = where(upper, -a, b)
    log_hi, log_lo = log_normal_cdf(hi), log_normal_cdf(lo)
    gap = clip(log_hi - log_lo, float(np.finfo(np.float64).tiny), None)
    return log_hi + log(-expm1(-gap))


def discretized_gaussian_log_likelihood(x_levels, mean, log_variance, levels):
    """log P(x | mean, exp(log_variance)) per dimension, a float64 Tensor: x_levels is a
    Tensor of the data's integer levels (0 .. K-1); mean and log_variance are Tensors on the
    [-1, 1] scale that broadcast against it."""
    mean, log_variance = mean.astype("float64"), log_variance.astype("float64")
    k = levels - 1
    x = x_levels.astype("float64") * (2.0 / k) - 1.0
    inv_sigma = exp(-0.5 * log_variance)
    upper = (x + 1.0 / k - mean) * inv_sigma   # the bin's upper edge, standardised
    lower = (x - 1.0 / k - mean) * inv_sigma   # and its lower edge
    first, last = x_levels.data == 0, x_levels.data == k
    # the open bins take one log-CDF; the inner ones the difference, given a stand-in upper
    # edge in the last bin so that no branch, taken or not, computes log 0
    inner = log_cdf_difference(where(last, lower + 1.0, upper), lower)
    return where(first, log_normal_cdf(upper), where(last, log_normal_cdf(-lower), inner))
