"""PixelCNN's masked conv2d, the plain NumPy reference: conv2d with the masked weight.

The mask (van den Oord et al., 2016, "Pixel Recurrent Neural Networks", section 3.4) lets
output pixel (r, s) see only the input pixels before it in raster order: every row above the
centre of the kernel, and the pixels left of the centre in its row. At the centre tap itself
the channels are split into `color_groups` groups in order (R, G, B for 3): type A, used
by the first layer, lets output group g see input groups < g only (so with one group the
centre is masked entirely and a pixel never sees itself); type B, used by every later layer,
lets it see groups <= g.

Here the whole kernel is computed and the masked weights are replaced by zeros (never
multiplied by zero: a NaN or inf in a masked weight must not leak into the result). cpu.py
computes only the taps the mask keeps; the same signatures: forward, grad_input, grad_weight.
"""
import numpy as np

from minigen import backend

from ..conv2d import reference as conv2d

MASK_TYPES = ("A", "B")


def mask(out_channels, in_channels, kernel_size, mask_type="A", color_groups=1,
         dtype=np.float32):
    """The (out_channels, in_channels, k, k) mask: 1 where a weight is used, 0 where not."""
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be 'A' or 'B', not {mask_type!r}")
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)) \
            or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"a masked conv needs an odd kernel size (it has a centre), "
                         f"not {kernel_size!r}")
    if color_groups < 1 or in_channels % color_groups or out_channels % color_groups:
        raise ValueError(f"{color_groups} colour groups must divide both the input channels "
                         f"({in_channels}) and the output channels ({out_channels})")
    centre = kernel_size // 2
    m = np.zeros((out_channels, in_channels, kernel_size, kernel_size), dtype=bool)
    m[:, :, :centre, :] = True
    m[:, :, centre, :centre] = True
    group_out = np.arange(out_channels) // (out_channels // color_groups)
    group_in = np.arange(in_channels) // (in_channels // color_groups)
    sees = np.less if mask_type == "A" else np.less_equal
    m[:, :, centre, centre] = sees(group_in[None, :], group_out[:, None])
    return m.astype(dtype)


def same_padding(kernel_size, padding):
    """The padding to use: k // 2 (output the size of the input) unless one is given."""
    return kernel_size // 2 if padding is None else padding


def _masked(w, mask_type, color_groups):
    keep = mask(w.shape[0], w.shape[1], w.shape[2], mask_type, color_groups, dtype=bool)
    xp = backend.xp_of(w)
    return xp.where(xp.asarray(keep), w, xp.zeros((), dtype=w.dtype)), keep


def forward(x, w, b=None, mask_type="A", padding=None, color_groups=1):
    """x (N, C, H, W), w (O, C, k, k), b (O,) or None -> y (N, O, oh, ow)."""
    masked, _ = _masked(w, mask_type, color_groups)
    return conv2d.forward(x, masked, b, padding=same_padding(w.shape[2], padding))


def grad_input(grad_y, w, input_size, mask_type="A", padding=None, color_groups=1):
    """d(sum grad_y * y)/dx for an input of spatial size `input_size` (H, W)."""
    masked, _ = _masked(w, mask_type, color_groups)
    return conv2d.grad_input(grad_y, masked, input_size,
                             padding=same_padding(w.shape[2], padding))


def grad_weight(x, grad_y, kernel_size, mask_type="A", padding=None, color_groups=1):
    """d(sum grad_y * y)/dw, (O, C, k, k) for kernel_size k or (k, k): exactly zero at
    every masked weight."""
    kernel_size = conv2d.pair(kernel_size)[0]
    gw = conv2d.grad_weight(x, grad_y, kernel_size,
                            padding=same_padding(kernel_size, padding))
    keep = mask(gw.shape[0], gw.shape[1], kernel_size, mask_type, color_groups, dtype=bool)
    xp = backend.xp_of(gw)
    return xp.where(xp.asarray(keep), gw, xp.zeros((), dtype=gw.dtype))
