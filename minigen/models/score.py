"""score: a noise-conditional score network (NCSN; Song & Ermon 2019, "Generative Modeling
by Estimating Gradients of the Data Distribution"), trained by denoising score matching at
L noise levels and sampled by annealed Langevin dynamics.

    sigmas        geometric from sigma_max down to sigma_min, `levels` of them
    s(x, sigma_i) = net(x, i) / sigma_i      (NCSNv2's parameterisation, Song & Ermon 2020:
                  the true score of data blurred by sigma is about -(x~ - x) / sigma^2,
                  of size ~1/sigma, so the network's own output keeps one scale)
    loss          minigen/energy/losses.py dsm_loss: (1/L) sum_i sigma_i^2 l(theta; sigma_i)
    sampling      annealed Langevin (minigen/energy/langevin.py) from uniform noise on the
                  data's box, steps_per_level steps at each level with
                  alpha_i = step_lr sigma_i^2 / sigma_L^2, and with denoise the last
                  Tweedie step x + sigma_L^2 s(x, sigma_L)

The network is an ELU MLP with a learned vector per level on 2-D points, a small residual
conv net with a per-level channel bias on images (minigen/energy/networks.py). evaluate
gives the held-out dsm_loss (noise drawn from a fixed seed) and the sample-quality metrics
of eval_samples samples (minigen/energy/model.py's sample_quality: fid_local etc. on
images, kid_points and the mode-collapse check on toy data); draw adds score_field.png on
2-D data: the learned score at three noise levels over the data and the samples.
"""
import os

import numpy as np

from .. import pictures
from ..autograd import no_grad, tensor
from ..energy import losses
from ..energy.langevin import annealed_langevin, geometric_sigmas
from ..energy.model import (EVALUATION_SEED, SAMPLE_BATCH, check_data, from_network,
                            network_box, sample_quality, to_network)
from ..energy.networks import ScoreConvNet, ScoreMLP
from ..gan.model import check_positive
from ..energy.pictures import points_over_data, score_field
from ..model import Model
from ..random import Generator
from . import register
from .ebm import IMAGES
from .gan import TOYS


@register("score", "noise-conditional score network (NCSN): denoising score matching at "
          "several noise levels, annealed Langevin sampling", data=TOYS + IMAGES,
          ranges={"sigma_max": "(0, inf)", "sigma_min": "(0, inf)", "levels": "[2, inf)",
                  "steps_per_level": "[1, inf)", "step_lr": "(0, inf)",
                  "hidden": "[1, inf)", "channels": "[1, inf)", "eval_samples": "[4, inf)"},
          sigma_max=10.0, sigma_min=0.01, levels=10, steps_per_level=50, step_lr=2e-5,
          denoise=True, hidden=(128, 128, 128), channels=32, eval_samples=2000,
          steps=2000, batch_size=128, lr=1e-3)
class ScoreModel(Model):
    validation_metric = "dsm_loss"
    validation_goal = "min"
    # the sampler's settings (`minigen sample RUN --config ...`); the levels are learned
    sampling_keys = ("steps_per_level", "step_lr", "denoise")

    def __init__(self, spec, generator, sigma_max=10.0, sigma_min=0.01, levels=10,
                 steps_per_level=50, step_lr=2e-5, denoise=True, hidden=(128, 128, 128),
                 channels=32, eval_samples=2000):
        super().__init__(spec)
        check_data("score", spec)
        self.sigmas = geometric_sigmas(float(sigma_max), float(sigma_min), levels)
        self.steps_per_level = check_positive("steps_per_level", steps_per_level)
        self.step_lr = check_positive("step_lr", step_lr, float)
        self.denoise = bool(denoise)
        self.eval_samples = check_positive("eval_samples", eval_samples)
        if spec.is_image:
            self.net = ScoreConvNet(spec.shape, check_positive("channels", channels),
                                    len(self.sigmas), generator)
        else:
            self.net = ScoreMLP(spec.dims, tuple(check_positive("hidden", h) for h in hidden),
                                len(self.sigmas), generator)
        self.box = network_box(spec)

    def score(self, x, levels):
        """s(x, sigma_i) = net(x, i) / sigma_i; levels an index or an int array (N,)."""
        levels = np.broadcast_to(np.asarray(levels, dtype=np.int64), (len(x),))
        sigma = self.sigmas[levels].astype(np.float32).reshape((-1,) + (1,) * (x.ndim - 1))
        return self.net(x, levels) / tensor(sigma, device=x.device)

    def loss(self, x, generator, labels=None):
        """Denoising score matching, one level per example drawn uniformly."""
        x = to_network(x, self.spec)
        levels = generator.integers(0, len(self.sigmas), (len(x),)).numpy()
        noise = generator.normal(x.shape, device=x.device)
        return losses.dsm_loss(self.score, x, self.sigmas, levels, noise)

    # samples ----------------------------------------------------------------------------
    def sample_scaled(self, n, generator):
        """n samples in network scale (NumPy), SAMPLE_BATCH chains at a time, from uniform
        noise on the box."""
        low, high = self.box
        out = []
        with no_grad():
            for start in range(0, n, SAMPLE_BATCH):
                m = min(SAMPLE_BATCH, n - start)
                x = generator.uniform((m,) + self.spec.shape, device=self.device)
                x = x * tensor(high - low, device=self.device) + tensor(low, device=self.device)
                out.append(annealed_langevin(self.score, x, self.sigmas, self.step_lr,
                                             self.steps_per_level, generator,
                                             self.denoise).numpy())
        return np.concatenate(out)

    def sample(self, n, generator, labels=None):
        return from_network(self.sample_scaled(n, generator), self.spec)

    # evaluation -------------------------------------------------------------------------
    def evaluate(self, batches, final=True):
        """The held-out DSM loss (levels and noise from a fixed seed) and sample quality."""
        generator = Generator(EVALUATION_SEED)
        held_out, total = [], 0.0
        with no_grad():
            for batch in batches:
                held_out.append(batch.x.numpy())
                total += self.loss(batch.x, generator).item() * len(batch.x)
        held_out = np.concatenate(held_out)
        samples = self.sample(self.eval_samples, generator)
        return {"dsm_loss": total / len(held_out),
                **sample_quality(samples, held_out, self.spec)}

    # pictures ---------------------------------------------------------------------------
    def draw(self, samples, path, reference):
        """samples.png (a grid, or for 2-D data the samples (blue) over the data (grey))
        and, for 2-D data, score_field.png beside it: s(x, sigma) at the widest, the middle
        and the narrowest level."""
        if self.spec.is_image:
            pictures.image_grid(samples, path, levels=self.spec.levels)
            return
        box = pictures.data_box(reference)
        points_over_data(samples, reference[:2000], box, path)
        chosen = sorted({0, len(self.sigmas) // 2, len(self.sigmas) - 1})
        score_field([(f"s(x, sigma={self.sigmas[i]:.3g})", self.field(i)) for i in chosen],
                    box, os.path.join(os.path.dirname(path), "score_field.png"),
                    data=reference[:1000], samples=samples)

    def field(self, level):
        def at(points):
            with no_grad():
                return self.score(tensor(points.astype(np.float32), device=self.device),
                                  level).numpy()
        return at
