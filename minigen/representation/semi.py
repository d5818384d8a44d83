"""The pieces the semi-supervised models share (issue 17), each the paper's equation: the
entropy of predictions (Grandvalet and Bengio 2005), sharpening and mixup (MixMatch,
Berthelot et al. 2019), the KL consistency with a confidence mask (UDA, Xie et al. 2020),
the virtual adversarial direction by power iteration (VAT, Miyato et al. 2018), and the
ramp-ups of an unlabelled loss's weight.

Targets (a guessed label, a sharpened prediction) carry no gradient: they are NumPy or CuPy
arrays of probabilities (N, C), as are the inputs that mixup mixes. Losses are Tensors.
"""
import numpy as np

from .. import backend
from ..autograd import grad, tensor


def entropy(logits):
    """The mean entropy of the predicted class distributions (Grandvalet and Bengio 2005):
    1/N sum_n H(p_n) = -1/N sum_n sum_c p_nc log p_nc, p = softmax(logits)."""
    log_p = logits.log_softmax(axis=1)
    return -(log_p.exp() * log_p).sum(axis=1).mean()


def soft_cross_entropy(logits, targets):
    """-1/N sum_n sum_c q_nc log softmax(logits)_nc of target distributions q (an array)."""
    q = tensor(targets, device=logits.device)
    return -(q * logits.log_softmax(axis=1)).sum(axis=1).mean()


def sharpen(p, temperature):
    """MixMatch's Sharpen (eq. 7): p_c^(1/T) / sum_k p_k^(1/T), for rows of probabilities
    p (an array); T -> 0 gives the one-hot of the argmax. Computed as softmax(log p / T), so
    a small T neither overflows nor divides 0 by 0."""
    if not temperature > 0:
        raise ValueError(f"sharpen: the temperature must be > 0, got {temperature}")
    xp = backend.xp_of(p)
    scaled = xp.log(xp.maximum(p, xp.finfo(p.dtype).tiny)) / p.dtype.type(temperature)
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    e = xp.exp(scaled)
    return e / e.sum(axis=1, keepdims=True)


def mixup(x1, y1, x2, y2, generator, alpha):
    """MixMatch's MixUp (eqs. 8-11) of pairs (x1_n, y1_n), (x2_n, y2_n), one lambda per pair:

        lambda ~ Beta(alpha, alpha),  lambda' = max(lambda, 1 - lambda)
        x' = lambda' x1 + (1 - lambda') x2,     p' = lambda' y1 + (1 - lambda') y2

    lambda' >= 1/2 keeps each mixed example closer to its first one. Returns x', p' and
    lambda' (a host array (N,))."""
    if not alpha > 0:
        raise ValueError(f"mixup: alpha must be > 0, got {alpha}")
    lam = generator.rng.beta(alpha, alpha, len(x1))
    lam = np.maximum(lam, 1.0 - lam)
    device = backend.device_of(x1)
    lx = backend.to_device(lam.astype(x1.dtype).reshape((-1,) + (1,) * (x1.ndim - 1)), device)
    ly = backend.to_device(lam.astype(y1.dtype)[:, None], device)
    return lx * x1 + (1 - lx) * x2, ly * y1 + (1 - ly) * y2, lam


def confident(p, threshold):
    """The mask (an array of 0/1 in p's dtype, (N,)) of rows whose largest probability is
    at least the threshold: FixMatch's and UDA's confidence-based masking."""
    return (p.max(axis=1) >= threshold).astype(p.dtype)


def masked_kl(targets, logits, mask):
    """UDA's consistency (Xie et al. 2020, eq. 1 with confidence masking):
    1/N sum_n m_n KL(q_n || softmax(logits)_n), targets q an array of probabilities, the
    mean over the whole batch (masked rows count as 0)."""
    xp = backend.xp_of(targets)
    q = tensor(targets, device=logits.device)
    log_q = tensor(xp.log(xp.maximum(targets, xp.finfo(targets.dtype).tiny)),
                   device=logits.device)
    kl = (q * (log_q - logits.log_softmax(axis=1))).sum(axis=1)
    return (kl * tensor(mask, device=logits.device)).mean()


def kl_divergence(log_p, logits):
    """sum_n KL(p_n || softmax(logits)_n) for fixed log p (a Tensor without a gradient)."""
    return (log_p.exp() * (log_p - logits.log_softmax(axis=1))).sum()


def unit_rows(d):
    """Each example of d (an array (N, ...)) scaled to unit L2 norm; scaled first by its
    largest entry, as in VAT's code, so that tiny gradients do not underflow the norm."""
    xp = backend.xp_of(d)
    axes = tuple(range(1, d.ndim))
    d = d / (xp.abs(d).max(axis=axes, keepdims=True) + 1e-12)
    return d / xp.sqrt((d * d).sum(axis=axes, keepdims=True) + 1e-12)


def adversarial_direction(f, x, log_p, generator, xi, iterations=1):
    """VAT's virtual adversarial direction (Miyato et al. 2018, sec. 3.3): the direction d
    of unit norm (per example) in which the predictions of f (a function of an input
    Tensor to logits) at x (an array, from either device: d comes on log_p's), log p(x) =
    log_p (a Tensor), change fastest,

        argmax_{|d| = 1} KL(p(x) || p(x + xi d)) ~ the top eigenvector of the Hessian H of
        D(r) = KL(p(x) || p(x + r)) at r = 0,

    found by power iteration, each step d <- normalise(grad_d D(xi d)) ~ normalise(H d)
    (the gradient at r = 0 is 0, so the gradient at xi d is xi H d to first order), from
    d ~ N(0, I) drawn from the generator. The parameters of f get no gradient.

    xi must stay well above float32's resolution of x: the paper's xi = 1e-6, on images of
    values near 1 and a unit d spread over their pixels, is lost when x + xi d is rounded
    (on a linear softmax model the direction found is then as good as random); with
    xi = 1e-3 one step already gives the top eigenvector's direction to within 0.99 and a
    few steps to 1e-5 there (tests/test_semi_supervised.py)."""
    device = log_p.device  # where f computes: x may come from either device
    x = backend.to_device(x, device)
    xp = backend.xp_of(x)
    log_p = log_p.detach()
    d = unit_rows(backend.to_device(generator.rng.normal(size=x.shape).astype(x.dtype),
                                    device))
    for _ in range(iterations):
        r = tensor(xp.asarray(xi, dtype=x.dtype) * d, requires_grad=True, device=device)
        divergence = kl_divergence(log_p, f(tensor(x, device=device) + r))
        d = unit_rows(grad(divergence, [r])[0].data)
    return d


def virtual_adversarial_loss(f, x, logits, generator, eps, xi, iterations=1):
    """VAT's local distributional smoothness (eq. 7 with r_vadv of eq. 12) at x (an array)
    whose logits f(x) are given: LDS = 1/N sum_n KL(p(x_n) || p(x_n + eps d_n)), d the
    adversarial direction; p(x) is a constant, the gradient flows through p(x + r_vadv)."""
    if not eps > 0:
        raise ValueError(f"vat: eps (the perturbation's radius) must be > 0, got {eps}")
    log_p = logits.log_softmax(axis=1).detach()
    x = backend.to_device(x, logits.device)
    d = adversarial_direction(f, x, log_p, generator, xi, iterations)
    adversarial = x + backend.xp_of(x).asarray(eps, dtype=x.dtype) * d
    return kl_divergence(log_p, f(tensor(adversarial, device=logits.device))) / len(x)


def linear_rampup(step, maximum, length):
    """maximum * min(step / length, 1): MixMatch's ramp-up of lambda_U."""
    if length <= 0:
        return float(maximum)
    return float(maximum) * min(step, length) / length


def tsa_threshold(schedule, step, length, classes):
    """UDA's training signal annealing (sec. 3.3): labelled examples whose correct class has
    probability above eta_t = alpha_t (1 - 1/K) + 1/K leave the supervised loss, with
    alpha_t = t/T ("linear"), 1 - exp(-5 t/T) ("log") or exp(5 (t/T - 1)) ("exp"),
    t/T capped at 1; "none": eta_t = 1 (every example counts)."""
    if schedule == "none":
        return 1.0
    t = min(step, length) / length if length > 0 else 1.0
    alpha = {"linear": lambda: t, "log": lambda: 1 - np.exp(-5 * t),
             "exp": lambda: np.exp(5 * (t - 1))}
    if schedule not in alpha:
        raise ValueError(f"tsa={schedule}: expected none, linear, log or exp")
    return float(alpha[schedule]() * (1 - 1 / classes) + 1 / classes)
