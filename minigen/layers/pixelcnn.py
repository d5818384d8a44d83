"""What PixelCNN and Gated PixelCNN share: masked convolutions, their blocks, the per-pixel
likelihood, raster-order sampling, and the receptive field of an output pixel.

An image model p(x) = prod_i p(x_i | x_<i) over pixels in raster order (and, within a pixel,
over colour channels R, G, B) is valid only if the logits at pixel i never depend on x_i or
anything after it. The masked convolutions here are built so; `receptive_field` checks it
with the engine's own gradients rather than trusting the masks.

    van den Oord et al., 2016a, "Pixel Recurrent Neural Networks" (masks A and B, the
        residual block, the colour masks), and
    van den Oord et al., 2016b, "Conditional Image Generation with PixelCNN Decoders"
        (the gated vertical and horizontal stacks).
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor, grad, no_grad, tensor
from ..distributions import Bernoulli, Categorical
from ..kernels.masked_conv2d import mask as masked_conv2d_mask
from ..ops import moveaxis, pad, relu, sigmoid, tanh


def _conv2d(in_channels, out_channels, kernel_size, generator):
    """A Conv2d initialised from `generator` as torch initialises one (uniform in
    +-1/sqrt(fan_in) over the whole kernel, masked taps included), so a PyTorch build that
    multiplies a mask into nn.Conv2d starts from the same distribution."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size)
    conv.reset_parameters(generator)
    return conv


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
        rows = labels.data if isinstance(labels, Tensor) else labels
        return self.table[rows.astype(np.int64)][:, :, None, None]


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


def gate(x, color_groups=1):
    """The gated activation tanh(W_f * x) . sigmoid(W_g * x) (van den Oord et al. 2016b,
    eq. 2) on features holding both pre-activations: within each colour group the first half
    of the channels is f and the second g, so the output keeps the groups in order."""
    n, c, height, width = x.shape
    x = x.reshape(n, color_groups, 2, c // (2 * color_groups), height, width)
    return (tanh(x[:, :, 0]) * sigmoid(x[:, :, 1])).reshape(n, c // 2, height, width)


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


class OutputHead(nn.Module):
    """ReLU -> 1x1 -> ReLU -> 1x1 to the logits (van den Oord et al. 2016a, table 4: "ReLU
    followed by 1x1 conv, mask B, 2 layers"); masked to keep colour groups ordered."""

    def __init__(self, channels, out_channels, color_groups=1, generator=None):
        super().__init__()
        self.hidden = MaskedConv2d(channels, channels, 1, "B", color_groups, generator)
        self.out = MaskedConv2d(channels, out_channels, 1, "B", color_groups, generator)

    def forward(self, x):
        return self.out(relu(self.hidden(relu(x))))


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
        if self.binary:
            return Bernoulli(logits=logits[:, :, row, col])
        return Categorical(logits=logits[:, :, row, col].reshape(len(logits), self.channels,
                                                                 self.levels))


class PixelModel(nn.Module):
    """What every PixelCNN shares around its network: the data it takes, the likelihood
    head, -log p(x) and raster-order sampling. A subclass builds its layers and writes
    forward(x, labels), the logits of every p(x_i | x_<i) for an image scaled to [0, 1].

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
        if self.num_classes and labels is None:
            raise ValueError(f"{self.name}: a conditional model needs the labels (N,) of the "
                             f"images")
        return self(x.astype("float32") * (1.0 / (self.levels - 1)), labels)

    def nll(self, x, labels=None):
        """-log p(x) per example, exactly: the sum over subpixels of -log p(x_i | x_<i)."""
        return -self.likelihood.log_prob(self.logits(x, labels), x)

    def loss(self, x, generator, labels=None):
        return self.nll(x, labels).mean()

    def distribution_at(self, x, row, col, labels=None):
        """p(x_(row, col) | x_<(row, col)) for the C subpixels, batch shape (N, C), given the
        image drawn so far (naive: the whole image is recomputed)."""
        return self.likelihood.at(self.logits(x, labels), row, col)

    def sample(self, n, generator, labels=None):
        """n images (uint8 levels), one network pass per subpixel in raster order."""
        device = next(iter(self.parameters())).device
        return sample_raster(lambda x, row, col: self.distribution_at(x, row, col, labels),
                             self.shape, n, generator, device)


def sample_raster(distribution_at, shape, n, generator, device="cpu"):
    """Naive sampling: for each pixel in raster order and each colour channel in order, one
    full pass of the network on the image drawn so far, then one draw of that subpixel.
    `distribution_at(x, row, col)` gives the (N, C)-batched distribution at a pixel; a cached
    sampler can replace it with one that only recomputes what a new pixel changes."""
    channels, height, width = shape
    x = np.zeros((n, channels, height, width), dtype=np.uint8)
    with no_grad():
        for row in range(height):
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
