"""Masked layers: weights whose taps on the future are zero, so that output i sees only the
inputs before i in an ordering.

Fully connected (MADE, Germain et al. 2015): every unit gets a degree m: inputs their
position in the ordering (1..D), hidden units a number in [min of the layer below, D-1]. A
hidden unit may see a unit below it when m_below <= m_unit; an output for dimension d may
see a unit when m_unit < d (strictly), so output d depends only on inputs that come before d
in the ordering.

Convolutional (PixelCNN, van den Oord et al. 2016a): `MaskedConv2d`, a k x k convolution
whose output pixel sees only earlier pixels in raster order (masks A and B, and colour
groups within a pixel), and `ConvAtPixel`, any masked convolution computed one output
pixel at a time for cached sampling.
"""
import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import Tensor
from ..kernels.masked_conv2d import mask as masked_conv2d_mask


def made_degrees(dims, hidden, rng, ordering="natural"):
    """Degrees of the input units and of each hidden layer's units.

    `ordering` is "natural" (1..D) or "random" (a permutation drawn from rng); hidden degrees
    are drawn uniformly from [min degree below, D - 1].
    """
    if ordering == "natural":
        inputs = np.arange(1, dims + 1)
    elif ordering == "random":
        inputs = rng.permutation(dims) + 1
    else:
        raise ValueError(f"ordering must be 'natural' or 'random', not {ordering!r}")
    degrees = [inputs]
    for width in hidden:
        low = min(degrees[-1].min(), dims - 1)
        degrees.append(rng.integers(low, dims, size=width) if dims > 1
                       else np.zeros(width, dtype=int))
    return degrees


def made_masks(degrees, outputs_per_dim=1):
    """(out, in) 0/1 masks for each layer, the last one for outputs_per_dim outputs per
    input dimension (laid out dimension-major: unit d * outputs_per_dim + k)."""
    masks = [(d_out[:, None] >= d_in[None, :]) for d_in, d_out in zip(degrees[:-1],
                                                                        degrees[1:])]
    out_degrees = np.repeat(degrees[0], outputs_per_dim)
    masks.append(out_degrees[:, None] > degrees[-1][None, :])
    return [m.astype(np.float32) for m in masks]


class MaskedLinear(nn.Linear):
    """A Linear layer whose weight is multiplied by a fixed 0/1 mask; the mask can be
    swapped (several mask sets in one MADE) without touching the weights."""

    def __init__(self, in_features, out_features, mask, generator=None, **kwargs):
        super().__init__(in_features, out_features, **kwargs)
        self.reset_parameters(generator)
        self.set_mask(mask)

    def set_mask(self, mask):
        mask = np.asarray(mask, dtype=self.weight.dtype)
        if mask.shape != self.weight.shape:
            raise ValueError(f"MaskedLinear: mask of shape {mask.shape} for a weight of shape "
                             f"{self.weight.shape}")
        # moved by to() with the weight; not saved, as the model's config makes it again
        self.register_buffer("mask", Tensor(mask).to(self.weight.device), persistent=False)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


def make_conv2d(in_channels, out_channels, kernel_size, generator):
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
        conv = make_conv2d(in_channels, out_channels, kernel_size, generator)
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
