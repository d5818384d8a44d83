"""The losses of the representation-learning models, each the paper's equation."""
import math

import numpy as np

from .. import functional as F
from ..autograd import tensor
from ..ops import where


def nt_xent(z, temperature):
    """NT-Xent (SimCLR, Chen et al. 2020, eq. 1) of 2N projections z (2N, D) whose rows i
    and i + N are two views of one image:

        l(i, j) = -log exp(sim(z_i, z_j) / t) / sum_{k != i} exp(sim(z_i, z_k) / t)
        L = 1/2N sum_k [l(k, k + N) + l(k + N, k)],     sim(u, v) = u.v / (|u| |v|)

    the other 2N - 2 views of the batch are the negatives."""
    if not temperature > 0:
        raise ValueError(f"nt_xent: the temperature must be > 0, got {temperature}")
    if z.ndim != 2 or len(z) % 2:
        raise ValueError(f"nt_xent: expected 2N projections (2N, D), got shape {z.shape}")
    n = len(z) // 2
    unit = z / ((z * z).sum(axis=1, keepdims=True).sqrt() + 1e-12)
    logits = unit @ unit.T / temperature
    # k != i: the view's similarity to itself leaves the denominator
    self_pair = tensor(np.eye(2 * n, dtype=bool), device=z.device)
    logits = where(self_pair, -1e9, logits)
    positive = tensor(np.concatenate([np.arange(n, 2 * n), np.arange(n)]), device=z.device)
    return F.cross_entropy(logits, positive)


def softmax_mse(student_logits, teacher_probabilities):
    """Mean teacher's consistency cost (Tarvainen and Valpola 2017, sec. 2): the squared
    difference of the student's and the teacher's class probabilities, mean over the batch
    and the classes."""
    return ((student_logits.softmax(axis=1) - teacher_probabilities) ** 2).mean()


def sigmoid_rampup(step, maximum, length):
    """The consistency weight at `step`: maximum * exp(-5 (1 - t / length)^2), t = step
    capped at length (Laine and Aila 2017, appendix A); the maximum from `length` on."""
    if length <= 0:
        return float(maximum)
    t = min(step, length) / length
    return float(maximum * math.exp(-5.0 * (1.0 - t) ** 2))
