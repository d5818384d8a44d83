"""The losses of the score and energy models, each the paper's equation.

    dsm_loss              denoising score matching at several noise levels (Song & Ermon
                          2019, eq. 5-6)
    contrastive_divergence  E(x+) - E(x-) with Du & Mordatch's L2 regulariser (2019,
                          sec. 3.3), for an energy model and for JEM's p(x) term
"""
import numpy as np

from ..autograd import tensor


def dsm_loss(score, x, sigmas, levels, noise):
    """Song & Ermon 2019, eq. (5) and (6): with x~ = x + sigma_i z,

        l(theta; sigma) = 1/2 E || s(x~, sigma) + (x~ - x) / sigma^2 ||^2
        L(theta) = mean over the levels of lambda(sigma_i) l(theta; sigma_i),
                   lambda(sigma) = sigma^2

    so each example's term is 1/2 || sigma s(x~, sigma) + z ||^2 (x~ - x = sigma z), of the
    same size at every level. One level per example (`levels`, indices into sigmas, drawn
    uniformly by the caller), as Song & Ermon's code does: an unbiased estimate of the
    mean over the levels. score(x~, levels) gives s (N, ...); x and noise (N, ...)
    Tensors. Returns the mean over the examples of the per-example sum over dimensions."""
    sigma = tensor(np.asarray(sigmas, dtype=np.float32)[np.asarray(levels)]
                   .reshape((-1,) + (1,) * (x.ndim - 1)), device=x.device)
    noisy = x + sigma * noise
    residual = sigma * score(noisy, levels) + noise        # sigma (s + (x~ - x) / sigma^2)
    per_example = 0.5 * (residual * residual).reshape(len(x), -1).sum(axis=1)
    return per_example.mean()


def contrastive_divergence(e_positive, e_negative, alpha):
    """Du & Mordatch 2019, sec. 2 and 3.3: the maximum-likelihood gradient of an energy
    model, E_data grad E(x+) - E_model grad E(x-), as the gradient of

        L = mean E(x+) - mean E(x-) + alpha (mean E(x+)^2 + mean E(x-)^2)

    with x- the SGLD samples (no gradient through the sampler). The L2 term keeps the
    energies near zero, so that they cannot drift off together (the CD term sees only
    their difference). Returns (loss, the CD term alone)."""
    cd = e_positive.mean() - e_negative.mean()
    regulariser = (e_positive * e_positive).mean() + (e_negative * e_negative).mean()
    return cd + alpha * regulariser, cd
