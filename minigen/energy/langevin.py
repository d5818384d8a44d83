"""The Langevin samplers that score and energy models share.

Langevin dynamics draws from p(x) with only the score grad_x log p(x):

    x <- x + (alpha / 2) grad_x log p(x) + sqrt(alpha) z,    z ~ N(0, I)

which tends to p as alpha -> 0 and the number of steps grows. Two uses of it:

    annealed_langevin  Song & Ermon 2019, Algorithm 1: the score s(x, sigma_i) of the data
                       blurred by N(0, sigma_i^2 I), from the widest level to the narrowest,
                       T steps at each with alpha_i = eps * sigma_i^2 / sigma_L^2 (so
                       alpha_i / sigma_i^2, the step against the blurred density's width, is
                       the same at every level): the wide levels mix between modes, the
                       narrow ones refine
    sgld               stochastic gradient Langevin dynamics on an energy, p ~ exp(-E):
                       x <- x - (step / 2) dE/dx + noise_scale * z (Du & Mordatch 2019,
                       eq. 3; noise_scale = sqrt(step) is Langevin dynamics proper, EBM
                       training takes a smaller one), the gradient from the engine (mg.grad
                       of the energies' sum), optionally clipped to the data's box

Both check the samples after every step: a score, an energy or a sample that is not finite
stops the sampler with LangevinDiverged naming the step and the level, never a NaN that a
picture would draw as black.
"""
import math

import numpy as np

from .. import backend
from ..autograd import enable_grad, grad


class LangevinDiverged(FloatingPointError, ValueError):
    """Samples (or the score or energy that moved them) that became NaN or infinite."""


def geometric_sigmas(sigma_max, sigma_min, levels):
    """NCSN's noise levels: `levels` values from sigma_max down to sigma_min, each a
    constant ratio below the one before (float64 NumPy)."""
    if not (0 < sigma_min < sigma_max and math.isfinite(sigma_max)):
        raise ValueError(f"sigma_min={sigma_min} must be below sigma_max={sigma_max}, both "
                         f"positive: the levels run from the widest noise to the narrowest")
    if int(levels) < 2:
        raise ValueError(f"levels={levels}: at least 2 noise levels, sigma_max and sigma_min")
    return np.exp(np.linspace(math.log(sigma_max), math.log(sigma_min), int(levels)))


def non_finite(values):
    """None where every entry of the Tensor is finite, else what is wrong ("nan", "inf")."""
    xp = backend.xp_of(values.data)
    if bool(xp.isfinite(values.data).all()):
        return None
    return "nan" if bool(xp.isnan(values.data).any()) else "inf"


def _check(what, values, sampler, step, steps, where, advice):
    bad = non_finite(values)
    if bad:
        raise LangevinDiverged(f"{sampler}: the {what} became {bad} at step {step} of "
                               f"{steps}{where}; {advice}")


def annealed_langevin(score, x, sigmas, step_lr, steps, generator, denoise=False):
    """Song & Ermon 2019, Algorithm 1, from the starting samples x (a Tensor).

    score(x, i) is the model's s(x, sigma_i) for the i-th level of `sigmas` (widest first);
    step_lr is eps, steps is T. With denoise, one last step x + sigma_L^2 s(x, sigma_L)
    (Tweedie's formula: the mean of the clean x given the noisy one; NCSNv2, Song & Ermon
    2020, appendix) removes the last level's noise. Returns the final samples."""
    sigmas = [float(s) for s in sigmas]
    last = sigmas[-1]
    for i, sigma in enumerate(sigmas):
        alpha = step_lr * (sigma / last) ** 2
        where = f" of noise level {i + 1} of {len(sigmas)} (sigma {sigma:.4g})"
        advice = f"try a smaller step_lr than {step_lr:g}"
        for t in range(1, steps + 1):
            z = generator.normal(x.shape, device=x.device)
            s = score(x, i)
            _check("score", s, "annealed Langevin", t, steps, where, advice)
            x = x + (alpha / 2) * s + math.sqrt(alpha) * z
            _check("samples", x, "annealed Langevin", t, steps, where, advice)
    if denoise:
        x = x + last ** 2 * score(x, len(sigmas) - 1)
        _check("denoised samples", x, "annealed Langevin", steps, steps,
               f" of noise level {len(sigmas)} (the final denoising step)",
               "the last level's score is not finite there")
    return x


def sgld(energy, x, steps, step_size, noise_scale, generator, box=None, name="SGLD"):
    """`steps` steps of x <- x - (step_size / 2) dE/dx + noise_scale * z from the samples x
    (a Tensor), clipped to box = (low, high) (arrays that broadcast against one sample)
    after each step where a box is given. energy(x) gives one energy per sample, (N,).
    Records a graph only for each step's gradient (inside no_grad too); returns the final
    samples, detached."""
    x = x.detach()
    for t in range(1, steps + 1):
        with enable_grad():
            x.requires_grad = True
            e = energy(x)
            _check("energy", e, name, t, steps, "", f"try a smaller sgld_step than "
                   f"{step_size:g}")
            dx, = grad(e.sum(), [x])
        x = x.detach() - (step_size / 2) * dx.detach() + \
            noise_scale * generator.normal(x.shape, device=x.device)
        if box is not None:
            x = x.clip(box[0], box[1])
        _check("samples", x, name, t, steps, "", f"try a smaller sgld_step than "
               f"{step_size:g}")
    return x.detach()
