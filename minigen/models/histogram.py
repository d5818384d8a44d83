"""The baseline every other model must beat: a histogram.

Discrete data (images): each dimension an independent categorical over its K levels,
p(x) = prod_d softmax(theta_d)[x_d]. Continuous data of few dimensions (the 2-D toys): one
joint histogram of `bins` cells per axis over the training data's box, with the density
uniform inside a cell: p(x) = softmax(theta)[cell(x)] / cell volume. Points outside the box
are counted in the nearest edge cell.

Both are fitted by maximum likelihood with the same trainer as every other model; the
softmax parameterisation keeps every probability positive, so held-out data never gets
probability zero.
"""
import numpy as np

from .. import nn
from ..model import Model
from ..distributions import Categorical
from ..ops import log_softmax, take_along_axis
from . import register


@register("histogram", "Baseline: independent per-dimension categoricals for images, a "
          "joint histogram for 2-D data",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist",
                "shapes", "toy-moons", "toy-8gaussians", "toy-checkerboard", "toy-spirals",
                "toy-rings"),
          bins=40, steps=500, batch_size=256, lr=0.05,
          ranges={"bins": "[1, inf)"})
class Histogram(Model):
    def __init__(self, spec, generator, bins=40):
        super().__init__(spec)
        if spec.kind == "discrete":
            self.theta = nn.Parameter(np.zeros((spec.dims, spec.levels), np.float32))
        else:
            if spec.dims > 3:
                raise ValueError(f"histogram: a joint histogram of {spec.dims} continuous "
                                 f"dimensions would need {bins}^{spec.dims} cells; use it "
                                 f"for data of at most 3 dimensions")
            self.bins = int(bins)
            self.low = np.array([lo for lo, _ in spec.box])
            self.width = np.array([hi - lo for lo, hi in spec.box]) / self.bins
            self.theta = nn.Parameter(np.zeros(self.bins ** spec.dims, np.float32))

    def _cells(self, x):
        """Flat cell index of each point (N,), clipped into the box."""
        idx = np.floor((x - self.low) / self.width).astype(np.int64).clip(0, self.bins - 1)
        return np.ravel_multi_index(tuple(idx.T), (self.bins,) * idx.shape[1])

    def log_likelihood(self, x):
        log_p = log_softmax(self.theta, axis=-1)
        if self.spec.kind == "discrete":
            values = x.reshape(len(x), -1).numpy().astype(np.int64)
            return take_along_axis(log_p, values.T, axis=1).sum(axis=0)
        cells = self._cells(x.numpy().astype(np.float64))
        return log_p[cells] - float(np.log(self.width).sum())

    def loss(self, x, generator):
        return -self.log_likelihood(x).mean()

    def nll(self, x):
        return -self.log_likelihood(x)

    def sample(self, n, generator):
        if self.spec.kind == "discrete":
            values = Categorical(logits=self.theta).sample((n,), generator=generator)
            return values.numpy().reshape((n,) + tuple(self.spec.shape))
        cells = Categorical(logits=self.theta).sample((n,), generator=generator).numpy()
        idx = np.stack(np.unravel_index(cells, (self.bins,) * len(self.low)), axis=1)
        offsets = generator.uniform(idx.shape).numpy()
        return ((idx + offsets) * self.width + self.low).astype(np.float32)
