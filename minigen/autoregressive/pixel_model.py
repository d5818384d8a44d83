"""What PixelCNN and Gated PixelCNN share: masked convolutions, their blocks, the per-pixel
likelihood, raster-order sampling, and the receptive field of an output pixel.

An image model p(x) = prod_i p(x_i | x_<i) over pixels in raster order (and, within a pixel,
over colour channels R, G, B) is valid only if the logits at pixel i never depend on x_i or
anything after it. The masked convolutions here are built so; `receptive_field` checks it
with the engine's own gradients rather than trusting the masks.

The same property makes sampling cheap: an activation at pixel p depends on pixels <= p
only, so once computed it never changes. Cached sampling (`SamplingCache`, the layers' `at`
methods) keeps every layer's activation map and computes each layer at the new pixel
alone; naive sampling recomputes the whole image for every subpixel.

    van den Oord et al., 2016a, "Pixel Recurrent Neural Networks" (masks A and B, the
        residual block, the colour masks), and
    van den Oord et al., 2016b, "Conditional Image Generation with PixelCNN Decoders"
        (the gated vertical and horizontal stacks).
"""
import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import Tensor, grad, no_grad, tensor
from ..distributions import Bernoulli, Categorical
from ..kernels.masked_conv2d import mask as masked_conv2d_mask
from ..ops import concatenate, elu, moveaxis, pad, relu, sigmoid, split, stack, tanh
from .cache import SamplingCache


def _conv2d(in_channels, out_channels, kernel_size, generator):
    """A Conv2d initialised from `generator` as torch initialises one (uniform in
    +-1/sqrt(fan_in) over the whole kernel, masked taps included), so a PyTorch build that
    multiplies a mask into nn.Conv2d starts from the same distribution."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size)
    conv.reset_parameters(generator)
    return conv


class ConvAtPixel:
    """A convolution computed one output pixel at a time, for cached sampling.

    It keeps the layer's input map so far, zero-padded as the whole-image convolution pads
    it, and its weight cut down to the taps that `keep` (a mask of the weight's shape) lets
    it read, as one (in * taps, out) matrix with the masked weights of a kept tap set to
    zero. The output at a pixel is then the kept taps of the input window there times that
    matrix: a product of (N, in * taps) by (in * taps, out), where the whole-image
    convolution computes all H * W pixels. `anchor` is the kernel tap over the output
    pixel, (k // 2, k // 2) for a masked k x k convolution. It works on the raw arrays and
    records no graph: sampling needs none, and an engine op's overhead is more than these
    small products cost.
    """

    def __init__(self, weight, bias, keep, anchor, n, height, width):
        data = weight.data
        xp = backend.xp_of(data)
        out_channels, in_channels, kh, kw = data.shape
        rows, cols = np.nonzero(keep.any(axis=(0, 1)))
        # a masked weight is skipped, never multiplied by zero (a nan must not leak)
        kept = xp.where(xp.asarray(keep, dtype=bool), data, xp.zeros((), data.dtype))
        self.weight = xp.ascontiguousarray(kept[:, :, rows, cols].reshape(out_channels, -1).T)
        self.bias = 0 if bias is None else bias.data
        self.anchor = anchor
        self.rows, self.cols = xp.asarray(rows), xp.asarray(cols)
        # a layer that reads the output pixel alone (1x1) needs no map of its input
        self.inputs = None if list(zip(rows, cols)) == [tuple(anchor)] else \
            xp.zeros((n, in_channels, height + kh - 1, width + kw - 1), dtype=data.dtype)

    def __call__(self, x, row, col):
        """The output (N, out) at (row, col), from the input there, x (N, in), or from the
        whole input map x (N, in, H, W) where it is known in full (the image itself: it
        changes at every draw, and copying it is cheap)."""
        if self.inputs is None:
            window = x.data if x.ndim == 2 else x.data[:, :, row, col]
        else:
            top, left = self.anchor
            if x.ndim == 4:
                self.inputs[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x.data
            else:
                self.inputs[:, :, top + row, left + col] = x.data
            # the input pixel under tap (i, j) is (row + i - top, col + j - left)
            window = self.inputs[:, :, row + self.rows, col + self.cols]
        return Tensor(window.reshape(len(window), -1) @ self.weight + self.bias)


class MaskedConv2d(nn.Module):
    """A k x k convolution whose output pixel sees only earlier pixels in raster order:
    type A hides the centre pixel (the first layer: x_i must not see x_i), type B shows it
    (later layers: their centre holds features of x_<i only). With colour groups the centre
    tap lets output group g see input groups < g (A) or <= g (B). The weight keeps its full
    (out, in, k, k) shape; F.masked_conv2d never reads the masked taps."""

    def __init__(self, in_channels, out_channels, kernel_size, mask_type, color_groups=1,
                 generator=None):
        super().__init__()
        self.mask_type, self.color_groups = mask_type, int(color_groups)
        # the mask's own checks: odd kernel, groups dividing the channels
        masked_conv2d_mask(out_channels, in_channels, kernel_size, mask_type, color_groups)
        conv = _conv2d(in_channels, out_channels, kernel_size, generator)
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x):
        return F.masked_conv2d(x, self.weight, self.bias, mask_type=self.mask_type,
                               color_groups=self.color_groups)

    def at(self, cache, x, row, col):
        """The output (N, out) at pixel (row, col) alone, from the input there x (N, in) (or
        the whole input map, for a first layer reading the image) and the earlier pixels'
        inputs that `cache` (a SamplingCache) keeps: only the unmasked taps are computed."""
        return cache.entry(self, lambda: self._at_pixel(cache))(x, row, col)

    def _at_pixel(self, cache):
        out_channels, in_channels, k, _ = self.weight.shape
        keep = masked_conv2d_mask(out_channels, in_channels, k, self.mask_type,
                                  self.color_groups, dtype=bool)
        return ConvAtPixel(self.weight, self.bias, keep, (k // 2, k // 2), cache.n,
                           cache.height, cache.width)

    def extra_repr(self):
        out_channels, in_channels, k, _ = self.weight.shape
        return (f"{in_channels}, {out_channels}, kernel_size={k}, mask_type={self.mask_type}, "
                f"color_groups={self.color_groups}")


class ClassBias(nn.Module):
    """A learned bias per class, added to a layer's features: V^T h for a one-hot label h
    (van den Oord et al. 2016b, eq. 4), started at zero so that an untrained conditional
    model is the unconditional one."""

    def __init__(self, num_classes, channels):
        super().__init__()
        self.table = nn.Parameter(np.zeros((num_classes, channels), dtype=np.float32))

    def forward(self, labels):
        """(N,) integer labels -> (N, channels, 1, 1), to broadcast over the pixels."""
        return self.lookup(labels)[:, :, None, None]

    def lookup(self, labels):
        """(N,) integer labels -> (N, channels), the bias at one pixel."""
        rows = labels.data if isinstance(labels, Tensor) else labels
        return self.table[rows.astype(np.int64)]


class ResidualBlock(nn.Module):
    """PixelRNN's residual block for PixelCNN (van den Oord et al. 2016a, figure 5):
    2h features -> ReLU -> 1x1 to h -> ReLU -> k x k mask B -> ReLU -> 1x1 to 2h, added to
    the input. Every convolution is masked (the 1x1s too) so that colour groups stay
    ordered; with one group a 1x1 type B mask keeps everything."""

    def __init__(self, channels, kernel_size, color_groups=1, num_classes=None,
                 generator=None):
        super().__init__()
        if channels % (2 * color_groups):
            raise ValueError(f"ResidualBlock: channels={channels} must be a multiple of "
                             f"2 * color_groups = {2 * color_groups} (the block halves them)")
        inner = channels // 2
        self.reduce = MaskedConv2d(channels, inner, 1, "B", color_groups, generator)
        self.conv = MaskedConv2d(inner, inner, kernel_size, "B", color_groups, generator)
        self.expand = MaskedConv2d(inner, channels, 1, "B", color_groups, generator)
        self.class_bias = ClassBias(num_classes, inner) if num_classes else None

    def forward(self, x, labels=None):
        h = self.conv(relu(self.reduce(relu(x))))
        if self.class_bias is not None:
            h = h + self.class_bias(labels)
        return x + self.expand(relu(h))

    def at(self, cache, x, row, col, labels=None):
        """forward at pixel (row, col) alone, for x (N, channels) there
        (MaskedConv2d.at)."""
        h = self.conv.at(cache, relu(self.reduce.at(cache, relu(x), row, col)), row, col)
        if self.class_bias is not None:
            h = h + self.class_bias.lookup(labels)
        return x + self.expand.at(cache, relu(h), row, col)


def gate(x, color_groups=1):
    """The gated activation tanh(W_f * x) . sigmoid(W_g * x) (van den Oord et al. 2016b,
    eq. 2) on features holding both pre-activations: within each colour group the first half
    of the channels is f and the second g, so the output keeps the groups in order."""
    n, c, *pixels = x.shape  # (N, c, H, W), or (N, c) at one pixel
    x = x.reshape(n, color_groups, 2, c // (2 * color_groups), *pixels)
    return (tanh(x[:, :, 0]) * sigmoid(x[:, :, 1])).reshape(n, c // 2, *pixels)


def shift_down(x):
    """Row i gets row i - 1 (zeros in row 0): features of rows <= i - 1 only."""
    return pad(x[:, :, :-1], ((0, 0), (0, 0), (1, 0), (0, 0)))


class GatedLayer(nn.Module):
    """One layer of the Gated PixelCNN (van den Oord et al. 2016b, figure 2).

    The vertical stack convolves (k//2 + 1) x k windows of the rows at and above each pixel:
    at row i it sees rows <= i, the whole width of the window, so it has no blind spot. It
    may see the current row because the horizontal stack takes it shifted down by one row
    (features of rows < i only), through a 1x1 convolution of the vertical pre-activations.
    The horizontal stack convolves 1 x (k//2 + 1) windows of the current row up to the
    pixel: the first layer (type A) sees strictly left of it, later ones (type B) the pixel
    too, through a residual connection. Both stacks use the gated activation, and with
    conditioning add a learned bias per class inside each gate (eq. 4).
    """

    def __init__(self, in_channels, channels, kernel_size, mask_type, color_groups=1,
                 num_classes=None, generator=None):
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"GatedLayer: kernel_size must be odd, not {kernel_size}")
        if channels % color_groups or in_channels % color_groups:
            raise ValueError(f"GatedLayer: {color_groups} colour groups must divide "
                             f"in_channels={in_channels} and channels={channels}")
        self.half, self.mask_type = kernel_size // 2, mask_type
        self.color_groups = color_groups
        self.residual = mask_type == "B"
        if self.residual and in_channels != channels:
            raise ValueError(f"GatedLayer: a type B layer adds its input back, so in_channels "
                             f"({in_channels}) must equal channels ({channels})")
        two = 2 * channels
        self.vertical = _conv2d(in_channels, two, (self.half + 1, kernel_size), generator)
        self.vertical_to_horizontal = _conv2d(two, two, 1, generator)
        self.horizontal = _conv2d(in_channels, two, (1, self.half + 1), generator)
        self.horizontal_mask = Tensor(self._horizontal_mask(two, in_channels))
        self.horizontal_out = MaskedConv2d(channels, channels, 1, "B", color_groups, generator)
        self.class_bias = ClassBias(num_classes, two) if num_classes else None

    def _horizontal_mask(self, out_channels, in_channels):
        """The 1 x (k//2 + 1) window's taps left of the pixel are all kept; the last one, the
        pixel itself, is a 1x1 masked conv's centre (groups; nothing at all for type A with
        one group)."""
        keep = np.ones((out_channels, in_channels, 1, self.half + 1), dtype=np.float32)
        keep[:, :, :, -1:] = masked_conv2d_mask(out_channels, in_channels, 1, self.mask_type,
                                                self.color_groups)
        return keep

    def forward(self, v, h, labels=None):
        half = self.half
        v_pre = self.vertical(pad(v, ((0, 0), (0, 0), (half, 0), (half, half))))
        if self.horizontal_mask.device != self.horizontal.weight.device:
            self.horizontal_mask = self.horizontal_mask.to(self.horizontal.weight.device)
        h_pre = F.conv2d(pad(h, ((0, 0), (0, 0), (0, 0), (half, 0))),
                         self.horizontal.weight * self.horizontal_mask, self.horizontal.bias)
        h_pre = h_pre + self.vertical_to_horizontal(shift_down(v_pre))
        if self.class_bias is not None:
            bias = self.class_bias(labels)
            v_pre, h_pre = v_pre + bias, h_pre + bias
        h_out = self.horizontal_out(gate(h_pre, self.color_groups))
        return gate(v_pre, self.color_groups), (h + h_out if self.residual else h_out)

    def vertical_row(self, cache, v, row, labels=None):
        """Cached sampling, once row `row` is drawn: the vertical stack at that whole row,
        from v (N, in, W), the layer's vertical input there. The vertical stack at row i sees
        rows <= i, all of which are known once row i is complete, and the horizontal stack
        reads it only from row i + 1 on (shifted down): so it is computed a row at a time,
        and what the horizontal stack will take from it is kept for the next row. Returns
        the gated output row (N, channels, W), the next layer's vertical input."""
        state = cache.entry(self, lambda: _GatedLayerAtPixel(self, cache))
        half = self.half
        state.vertical_inputs[:, :, half + row, half:half + v.shape[2]] = v.data
        v_pre = self.vertical(Tensor(state.vertical_inputs[:, :, row:row + half + 1]))
        state.from_above = self.vertical_to_horizontal(v_pre)
        if self.class_bias is not None:
            v_pre = v_pre + self.class_bias(labels)
        return gate(v_pre, self.color_groups)[:, :, 0]

    def at(self, cache, h, row, col, labels=None):
        """Cached sampling: the horizontal stack at pixel (row, col) alone, from its input
        there h (N, in) (or the whole image, for the first layer) and the cache: the
        horizontal inputs of the pixels to the left, and the vertical stack of the row
        above (vertical_row)."""
        state = cache.entry(self, lambda: _GatedLayerAtPixel(self, cache))
        h_pre = state.horizontal(h, row, col) + state.from_above[:, :, 0, col]
        if self.class_bias is not None:
            h_pre = h_pre + self.class_bias.lookup(labels)
        h_out = self.horizontal_out.at(cache, gate(h_pre, self.color_groups), row, col)
        return h + h_out if self.residual else h_out


class _GatedLayerAtPixel:
    """A GatedLayer's entry in a SamplingCache: its vertical input map so far (padded as
    forward pads it), what the horizontal stack takes from the vertical stack of the row
    above (at first row 0's: zeros shifted in, through the 1x1 convolution), and its
    horizontal convolution one pixel at a time."""

    def __init__(self, layer, cache):
        half = layer.half
        weight = layer.vertical.weight
        xp = backend.xp_of(weight.data)
        in_channels = weight.shape[1]
        self.vertical_inputs = xp.zeros((cache.n, in_channels, half + cache.height,
                                         cache.width + 2 * half), dtype=weight.dtype)
        self.from_above = layer.vertical_to_horizontal(Tensor(
            xp.zeros((cache.n, weight.shape[0], 1, cache.width), dtype=weight.dtype)))
        self.horizontal = ConvAtPixel(layer.horizontal.weight, layer.horizontal.bias,
                                      layer.horizontal_mask.numpy() != 0, (0, half), cache.n,
                                      cache.height, cache.width)


class OutputHead(nn.Module):
    """ReLU -> 1x1 -> ReLU -> 1x1 to the logits (van den Oord et al. 2016a, table 4: "ReLU
    followed by 1x1 conv, mask B, 2 layers"); masked to keep colour groups ordered."""

    def __init__(self, channels, out_channels, color_groups=1, generator=None):
        super().__init__()
        self.hidden = MaskedConv2d(channels, channels, 1, "B", color_groups, generator)
        self.out = MaskedConv2d(channels, out_channels, 1, "B", color_groups, generator)

    def forward(self, x):
        return self.out(relu(self.hidden(relu(x))))

    def at(self, cache, x, row, col):
        """forward at pixel (row, col) alone, for x (N, channels) there."""
        return self.out.at(cache, relu(self.hidden.at(cache, relu(x), row, col)), row, col)


class PixelLikelihood:
    """p(x_i | x_<i) for every subpixel from the network's logits: a Bernoulli logit per
    subpixel for binary data, a categorical over the K levels otherwise. Logit channels are
    laid out channel-major ((C, K) for categoricals), so colour group c owns a contiguous
    block, as the masks' groups require."""

    def __init__(self, channels, levels):
        self.channels, self.levels = channels, levels
        self.binary = levels == 2
        self.out_channels = channels if self.binary else channels * levels

    def distribution(self, logits):
        """Every subpixel's distribution, batch shape (N, C, H, W)."""
        if self.binary:
            return Bernoulli(logits=logits)
        n, _, height, width = logits.shape
        return Categorical(logits=moveaxis(
            logits.reshape(n, self.channels, self.levels, height, width), 2, -1))

    def log_prob(self, logits, x):
        """log p(x) per example: the sum over subpixels of log p(x_i | x_<i)."""
        values = x.astype(logits.dtype) if self.binary else x.astype("int64")
        return self.distribution(logits).log_prob(values).sum(axis=(1, 2, 3))

    def at(self, logits, row, col):
        """The distribution of the C subpixels at (row, col), batch shape (N, C)."""
        return self.pixel(logits[:, :, row, col])

    def pixel(self, logits):
        """The distribution of the C subpixels of one pixel from its logits (N, C or C*K),
        batch shape (N, C)."""
        if self.binary:
            return Bernoulli(logits=logits)
        return Categorical(logits=logits.reshape(len(logits), self.channels, self.levels))


class PixelModel(nn.Module):
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
        super().__init__()
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
        return -self.likelihood.log_prob(self.logits(x, labels), x)

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


def sample_raster(distribution_at, shape, n, generator, device="cpu", rows=None):
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


# -- PixelCNN++'s shifted convolutions (Salimans et al. 2017, and its code) -----------------
#
# Instead of masking a k x k kernel, PixelCNN++ pads the input on the top (and left) only, so
# that an unmasked kernel never reads below (or right of) its output pixel; a shift by one row
# (column) then makes the view strict. Strided versions downsample, and transposed versions
# upsample back onto the same grid, keeping every output's view above and left of it.

def shift_right(x):
    """Column j gets column j - 1 (zeros in column 0): features of columns <= j - 1 only."""
    return pad(x[:, :, :, :-1], ((0, 0), (0, 0), (0, 0), (1, 0)))


def _shifted_kernel(name, kernel_size, stride, odd_width):
    kernel_size, stride = tuple(int(k) for k in kernel_size), int(stride)
    width = "kw odd (centred on the column)" if odd_width else "kw >= 1"
    if len(kernel_size) != 2 or min(kernel_size) < 1 or stride < 1 or \
            (odd_width and kernel_size[1] % 2 == 0):
        raise ValueError(f"{name}: expected a kernel (kh, kw) with kh >= 1 and {width}, and a "
                         f"stride >= 1; got kernel_size={kernel_size}, stride={stride}")
    return kernel_size, stride


class DownShiftedConv2d(nn.Module):
    """A kh x kw convolution (kw odd) padded kh - 1 rows on top and kw // 2 columns on each
    side, so output (r, c) sees input rows r - kh + 1 .. r and columns c - kw//2 .. c + kw//2:
    never a row below its own. With stride s, output (r, c) sits at input (s r, s c) and sees
    rows s r - kh + 1 .. s r; the output has ceil(H / s) x ceil(W / s) pixels."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 3), stride=1,
                 generator=None):
        super().__init__()
        self.kernel_size, self.stride = _shifted_kernel("DownShiftedConv2d", kernel_size,
                                                        stride, odd_width=True)
        conv = _conv2d(in_channels, out_channels, self.kernel_size, generator)
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x):
        kh, kw = self.kernel_size
        x = pad(x, ((0, 0), (0, 0), (kh - 1, 0), (kw // 2, kw // 2)))
        return F.conv2d(x, self.weight, self.bias, stride=self.stride)


class DownRightShiftedConv2d(nn.Module):
    """A kh x kw convolution padded kh - 1 rows on top and kw - 1 columns on the left, so
    output (r, c) sees input rows r - kh + 1 .. r and columns c - kw + 1 .. c: never below
    its row, nor right of its column. With stride s, output (r, c) sits at input (s r, s c)
    and sees the window ending there."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 2), stride=1,
                 generator=None):
        super().__init__()
        self.kernel_size, self.stride = _shifted_kernel("DownRightShiftedConv2d", kernel_size,
                                                        stride, odd_width=False)
        conv = _conv2d(in_channels, out_channels, self.kernel_size, generator)
        self.weight, self.bias = conv.weight, conv.bias

    def forward(self, x):
        kh, kw = self.kernel_size
        x = pad(x, ((0, 0), (0, 0), (kh - 1, 0), (kw - 1, 0)))
        return F.conv2d(x, self.weight, self.bias, stride=self.stride)


def _transposed(in_channels, out_channels, kernel_size, generator):
    """A ConvTranspose2d's weight and bias, initialised from `generator` as torch does."""
    conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size)
    conv.reset_parameters(generator)
    return conv.weight, conv.bias


def _crop(name, y, rows, cols):
    if rows.stop > y.shape[2] or cols.stop > y.shape[3]:
        raise ValueError(f"{name}: cannot crop rows {rows.start}..{rows.stop - 1} and columns "
                         f"{cols.start}..{cols.stop - 1} from the upsampled {y.shape[2:]}; "
                         f"the input is too small for that output size")
    return y[:, :, rows, cols]


class DownShiftedConvTranspose2d(nn.Module):
    """The upsampling partner of a strided DownShiftedConv2d: input (i, j) adds onto output
    rows s i .. s i + kh - 1 and columns s j - kw//2 .. s j + kw//2, so output row r only
    gets inputs of rows <= r / s, which (from the strided conv) saw rows above s i <= r.
    `forward(x, size)` crops to `size` = (H, W), the size before downsampling."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 3), stride=2,
                 generator=None):
        super().__init__()
        self.kernel_size, self.stride = _shifted_kernel("DownShiftedConvTranspose2d",
                                                        kernel_size, stride, odd_width=True)
        self.weight, self.bias = _transposed(in_channels, out_channels, self.kernel_size,
                                             generator)

    def forward(self, x, size):
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride)
        half = self.kernel_size[1] // 2
        return _crop("DownShiftedConvTranspose2d", y, slice(0, size[0]),
                     slice(half, half + size[1]))


class DownRightShiftedConvTranspose2d(nn.Module):
    """The upsampling partner of a strided DownRightShiftedConv2d: input (i, j) adds onto
    output rows s i .. s i + kh - 1 and columns s j .. s j + kw - 1, so output (r, c) only
    gets inputs at or above-left of (r / s, c / s). `forward(x, size)` crops to (H, W)."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 2), stride=2,
                 generator=None):
        super().__init__()
        self.kernel_size, self.stride = _shifted_kernel("DownRightShiftedConvTranspose2d",
                                                        kernel_size, stride, odd_width=False)
        self.weight, self.bias = _transposed(in_channels, out_channels, self.kernel_size,
                                             generator)

    def forward(self, x, size):
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride)
        return _crop("DownRightShiftedConvTranspose2d", y, slice(0, size[0]),
                     slice(0, size[1]))


def concat_elu(x):
    """ELU of [x, -x] along the channels, the nonlinearity of the PixelCNN++ and PixelSNAIL
    code: both signs of every feature pass through (an ELU alone flattens the negative
    side). Doubles the channels."""
    return elu(concatenate([x, -x], axis=1))


class GatedResnet(nn.Module):
    """The gated resnet block of PixelCNN++ (Salimans et al. 2017, figure 2, as in the
    paper's code), which PixelSNAIL's residual blocks are made of too:

        c = conv(concat_elu(x)) [+ nin(concat_elu(aux))]
        [a, b] = conv(dropout(concat_elu(c))),       x' = x + a . sigmoid(b)

    `conv(in_channels, out_channels, generator)` makes the block's convolutions, which keep
    the view of its stream: shifted convolutions in PixelCNN++, type-B masked ones in
    PixelSNAIL. nin is a 1x1 convolution of an auxiliary input (the other stream, short-cuts,
    attention output), which must already see only what this stream may."""

    def __init__(self, channels, conv, aux_channels=0, dropout=0.0, generator=None):
        super().__init__()
        self.conv_in = conv(2 * channels, channels, generator=generator)
        self.aux = _conv2d(2 * aux_channels, channels, 1, generator) if aux_channels else None
        self.conv_out = conv(2 * channels, 2 * channels, generator=generator)
        self.dropout = dropout

    def forward(self, x, aux=None, generator=None):
        h = self.conv_in(concat_elu(x))
        if aux is not None:
            h = h + self.aux(concat_elu(aux))
        h = F.dropout(concat_elu(h), self.dropout, self.training, generator)
        a, b = split(self.conv_out(h), 2, axis=1)
        return x + a * sigmoid(b)
