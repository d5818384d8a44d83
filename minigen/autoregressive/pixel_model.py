"""The model base of the PixelCNNs: `PixelModel` (the data it takes, the likelihood of
every subpixel from the network's logits, raster-order sampling, naive or cached),
`sample_raster`, and `receptive_field`, the inputs an output pixel depends on.

An image model p(x) = prod_i p(x_i | x_<i) over pixels in raster order (and, within a pixel,
over colour channels R, G, B) is valid only if the logits at pixel i never depend on x_i or
anything after it. The masked convolutions (minigen.autoregressive.masked, .gated, .shifted)
are built so; `receptive_field` checks it with the engine's own gradients rather than
trusting the masks.

The same property makes sampling cheap: an activation at pixel p depends on pixels <= p
only, so once computed it never changes. Cached sampling (`SamplingCache`, the layers' `at`
methods) keeps every layer's activation map and computes each layer at the new pixel
alone; naive sampling recomputes the whole image for every subpixel.

    van den Oord et al., 2016a, "Pixel Recurrent Neural Networks".
"""
import numpy as np

from ..autograd import grad, no_grad, tensor
from ..model import Model
from ..ops import stack
from .cache import SamplingCache
from .likelihood import PixelLikelihood


class PixelModel(Model):
    """What every PixelCNN shares around its network: the data it takes, the likelihood
    head, -log p(x) and raster-order sampling. A subclass builds its layers and writes
    forward(x, labels), the logits of every p(x_i | x_<i) for an image scaled to [0, 1].
    It may also write forward_at(cache, x, row, col, labels), the logits (N, C or C*K) of
    pixel (row, col) alone from activations of earlier pixels kept in a SamplingCache: sample
    then computes one pixel per subpixel drawn (cached sampling) instead of the whole image.

    log p(x) = sum_i log p(x_i | x_<i) (van den Oord et al. 2016a, eq. 1 and 2): every
    conditional comes out of one pass, so the likelihood is exact. With `conditional` the
    model is p(x | y), and loss, nll and sample take the labels y.
    """

    def __init__(self, spec, name, conditional=False):
        super().__init__(spec)
        if spec.kind != "discrete" or not spec.is_image:
            raise ValueError(f"{name} models discrete images (C, H, W), not {spec.kind} data "
                             f"of shape {spec.shape}")
        if conditional and not spec.num_classes:
            raise ValueError(f"{name}: conditional=true needs labelled data; {spec.name} has "
                             f"no labels")
        self.name = name
        self.shape, self.levels = tuple(spec.shape), spec.levels
        self.color_groups = self.shape[0]  # one group per colour channel, in order R, G, B
        self.num_classes = spec.num_classes if conditional else None
        self.likelihood = PixelLikelihood(self.color_groups, self.levels)

    def logits(self, x, labels=None):
        """The logits for raw levels x (N, C, H, W) in 0..K-1."""
        return self(self._scaled(x, labels), labels)

    def _scaled(self, x, labels):
        """Raw levels x as the network reads them, in [0, 1] (checking the labels are there
        for a conditional model)."""
        if self.num_classes and labels is None:
            raise ValueError(f"{self.name}: a conditional model needs the labels (N,) of the "
                             f"images")
        return x.astype("float32") * (1.0 / (self.levels - 1))

    def nll(self, x, labels=None):
        """-log p(x) per example, exactly: the sum over subpixels of -log p(x_i | x_<i)."""
        subpixels = self.likelihood.subpixels(self.logits(x, labels))
        return -self.likelihood.log_prob(subpixels, x).sum(axis=(1, 2, 3))

    def loss(self, x, generator, labels=None):
        return self.nll(x, labels).mean()

    def distribution_at(self, x, row, col, labels=None):
        """p(x_(row, col) | x_<(row, col)) for the C subpixels, batch shape (N, C), given the
        image drawn so far (naive: the whole image is recomputed)."""
        return self.likelihood.at(self.logits(x, labels), row, col)

    def incremental_logits(self, x, labels=None):
        """The logits (N, C or C*K, H, W) of raw levels x, computed as cached sampling
        computes them: pixel after pixel in raster order through forward_at and a
        SamplingCache. Equal to logits(x) up to float rounding, which is what makes cached
        sampling exact."""
        image = self._scaled(x, labels)
        _, height, width = self.shape
        cache = SamplingCache(len(x), height=height, width=width)
        # no graph: the cache's maps are written in place, pixel after pixel
        with no_grad():
            pixels = [self.forward_at(cache, image, row, col, labels)
                      for row in range(height) for col in range(width)]
        return stack(pixels, axis=-1).reshape(pixels[0].shape + (height, width))

    def sampler(self, n, labels=None, cached=True):
        """distribution_at(x, row, col) for sample_raster, drawing n images: with cached=True
        (and a forward_at) each call computes pixel (row, col) alone, from a SamplingCache of
        the earlier pixels' activations (the pixel itself is recomputed for each of its
        colour channels, cheaply); with cached=False every call recomputes the whole image
        (naive, the reference)."""
        if not (cached and hasattr(self, "forward_at")):
            return lambda x, row, col: self.distribution_at(x, row, col, labels)
        _, height, width = self.shape
        cache = SamplingCache(n, height=height, width=width)
        return lambda x, row, col: self.likelihood.pixel(
            self.forward_at(cache, self._scaled(x, labels), row, col, labels))

    def sample(self, n, generator, labels=None, cached=True):
        """n images (uint8 levels) in raster order, given the labels (n,) for a conditional
        model: cached (the default, for a model with forward_at) computes one pixel per
        subpixel drawn, cached=False one pass of the whole image. Both give the same images
        for the same generator."""
        device = next(iter(self.parameters())).device
        return sample_raster(self.sampler(n, labels, cached), self.shape, n, generator, device)


def sample_raster(distribution_at, shape, n, generator, device=None, rows=None):
    """For each pixel in raster order and each colour channel in order: the distribution at
    that pixel given the image drawn so far, then one draw of that subpixel.
    `distribution_at(x, row, col)` gives the (N, C)-batched distribution at a pixel: naive,
    one full pass of the network per call, or cached (PixelModel.sampler), only what the new
    pixel changes. `rows` draws only the first rows (the rest stay 0), for timing part of
    an image."""
    channels, height, width = shape
    x = np.zeros((n, channels, height, width), dtype=np.uint8)
    with no_grad():
        for row in range(height if rows is None else rows):
            for col in range(width):
                for c in range(channels):
                    dist = distribution_at(tensor(x, device=device), row, col)
                    x[:, c, row, col] = dist.sample(generator=generator).numpy()[:, c]
    return x


def receptive_field(model, shape, pixel, group=None, labels=None, batch=8, seed=0):
    """Which inputs the logits at `pixel` = (row, col) depend on: a boolean map of the
    input's shape (C, H, W), True where the gradient of those logits reaches. `group` picks
    the logits of one colour group; by default all of them. The gradient is taken at a batch
    of random inputs of both signs (at one input a path can be dark, a ReLU off at every
    unit on it; an input in [0, 1] alone can keep a unit with a negative weight off).
    `model(x, labels)` must give the logits (N, out, H, W) for a float image x."""
    row, col = pixel
    rng = np.random.default_rng(seed)
    x = tensor(rng.normal(0, 2, (batch,) + tuple(shape)).astype(np.float32),
               requires_grad=True, device=next(iter(model.parameters())).device)
    logits = model(x, labels)
    per_group = logits.shape[1] // (shape[0] if group is not None else 1)
    first = 0 if group is None else group * per_group
    chosen = logits[:, first:first + per_group, row, col]
    (g,) = grad(chosen.sum(), x)
    return np.abs(g.numpy()).sum(axis=0) > 0
