"""PixelCNN's masked conv2d on the CPU: only the taps the mask keeps are computed.

A k x k type-A mask keeps the k * (k // 2) taps of the rows above the centre and the k // 2
left of it in its row (24 of 49 for 7 x 7, 4 of 9 for 3 x 3); type B keeps the centre too.
The three passes are conv2d's (minigen.kernels.conv2d.cpu) on the list of kept taps: the
columns of the im2col are gathered for those taps only, so each product has T * C rows
instead of k * k * C, and the work, the copies and the memory shrink with the mask. Masked
weights are never read, and the weight gradient is written into zeros at the kept taps only,
so masked weights get exactly zero. With colour groups the centre tap is kept for the
(output, input) channel pairs whose groups the mask allows; the other pairs get zero in the
gathered weight matrix (its centre block is block triangular: computed whole, it keeps one
product per group of images).

Measured on the development machine (2 threads, float32, forward and both gradients of the
kernels, medians): K2 (3x3 type B, 64 -> 64, x (32, 64, 28, 28)) 28.2 ms against 44.0 ms
for the whole kernel, for 5 of 9 taps; K1 (7x7 type A, 1 -> 64, x (32, 1, 28, 28)) 4.8
against 6.1 ms, for 24 of 49 taps (with one input channel the products are short and the
copies of the 64-channel outputs weigh more). The same signatures as reference.py.
"""
import numpy as np

from ..conv2d.cpu import (tap_offsets, tap_products, tap_products_grad_input,
                          tap_products_grad_weight)
from ..conv2d.reference import output_size, pair
from .reference import mask, same_padding


def _plan(w_shape, mask_type, padding, color_groups):
    """The kept taps as (rows, cols, shifts), and their (O, T, C) channel mask, or None
    where every channel pair of every kept tap is used."""
    out_channels, in_channels, k = w_shape[:3]
    keep = mask(out_channels, in_channels, k, mask_type, color_groups, dtype=bool)
    taps = tap_offsets(k, same_padding(k, padding), 1, keep.any(axis=(0, 1)))
    rows, cols = [t[0] for t in taps], [t[1] for t in taps]
    channels = keep[:, :, rows, cols].transpose(0, 2, 1)
    return rows, cols, [(a, b) for _, _, a, b in taps], None if channels.all() else channels


def _kept_weight(w, rows, cols, channels):
    """w at the kept taps, (O, T, C); zero where the channel mask drops a pair."""
    kept = np.ascontiguousarray(w[:, :, rows, cols].transpose(0, 2, 1))
    return kept if channels is None else np.where(channels, kept, w.dtype.type(0))


def forward(x, w, b=None, mask_type="A", padding=None, color_groups=1):
    """x (N, C, H, W), w (O, C, k, k), b (O,) or None -> y (N, O, oh, ow)."""
    rows, cols, shifts, channels = _plan(w.shape, mask_type, padding, color_groups)
    size = output_size(x.shape[2:], w.shape[2], padding=same_padding(w.shape[2], padding))
    return tap_products(x, shifts, _kept_weight(w, rows, cols, channels), size, bias=b)


def grad_input(grad_y, w, input_size, mask_type="A", padding=None, color_groups=1):
    """d(sum grad_y * y)/dx for an input of spatial size `input_size` (H, W)."""
    rows, cols, shifts, channels = _plan(w.shape, mask_type, padding, color_groups)
    return tap_products_grad_input(grad_y, shifts, _kept_weight(w, rows, cols, channels),
                                   input_size)


def grad_weight(x, grad_y, kernel_size, mask_type="A", padding=None, color_groups=1):
    """d(sum grad_y * y)/dw, (O, C, k, k) for kernel_size k or (k, k): exactly zero at
    every masked weight."""
    kernel_size = pair(kernel_size)[0]
    shape = (grad_y.shape[1], x.shape[1], kernel_size, kernel_size)
    rows, cols, shifts, channels = _plan(shape, mask_type, padding, color_groups)
    kept = tap_products_grad_weight(x, shifts, grad_y)
    if channels is not None:
        kept = np.where(channels, kept, x.dtype.type(0))
    gw = np.zeros(shape, dtype=x.dtype)
    gw[:, :, rows, cols] = kept.transpose(0, 2, 1)
    return gw
