"""PixelCNN's masked conv2d on the GPU: conv2d's CUDA passes (minigen.kernels.conv2d.cuda)
on the taps the mask keeps and no others, as cpu.py does on the CPU; float32 and float64
CuPy arrays, the same signatures as reference.py.

The im2col gathers the kept taps only, so every product has C*T rows instead of C*k*k
(24 of 49 taps for 7 x 7 type A, 5 of 9 for 3 x 3 type B): the columns, the products and
the col2im shrink with the mask, and masked weights are never read (a NaN there changes
nothing). The plan is cpu.py's (the same function): with colour groups the centre tap is
kept for the channel pairs whose groups the mask allows, and the other pairs get zero in
the gathered weight, and their weight gradient is zeroed; the weight gradient is written
into zeros at the kept taps only, so masked weights get exactly zero.
"""
from minigen import backend

from .. import cudasource
from ..conv2d import cuda as conv2d
from ..conv2d.reference import output_size, pair
from .cpu import _plan
from .reference import same_padding

STRIDE = (1, 1)


def _kept_index(k, rows, cols):
    """The kept taps' positions in the flattened k x k kernel, on the device."""
    return conv2d.device_ints(r * k + c for r, c in zip(rows, cols))


def _channel_masked(kept, channels):
    """kept (O, C, T) with zero where the plan's channel mask (O, T, C) drops a pair."""
    if channels is None:
        return kept
    cp = backend.cupy()
    return cp.where(cp.asarray(channels.transpose(0, 2, 1)), kept,
                    cp.zeros((), dtype=kept.dtype))


def _kept_weight(w, rows, cols, channels):
    """w at the kept taps, (O, C, T)."""
    o, c, k = w.shape[:3]
    kept = backend.cupy().take(w.reshape(o, c, k * k), _kept_index(k, rows, cols), axis=2)
    return _channel_masked(kept, channels)


def _check(*arrays):
    cudasource.check("masked_conv2d", *(a for a in arrays if a is not None))


def forward(x, w, b=None, mask_type="A", padding=None, color_groups=1):
    """x (N, C, H, W), w (O, C, k, k), b (O,) or None -> y (N, O, oh, ow)."""
    _check(x, w, b)
    rows, cols, shifts, channels = _plan(w.shape, mask_type, padding, color_groups)
    size = output_size(x.shape[2:], w.shape[2], padding=same_padding(w.shape[2], padding))
    return conv2d.forward_taps(x, shifts, _kept_weight(w, rows, cols, channels), size,
                               STRIDE, b)


def grad_input(grad_y, w, input_size, mask_type="A", padding=None, color_groups=1):
    """d(sum grad_y * y)/dx for an input of spatial size `input_size` (H, W)."""
    _check(grad_y, w)
    rows, cols, shifts, channels = _plan(w.shape, mask_type, padding, color_groups)
    return conv2d.grad_input_taps(grad_y, shifts, _kept_weight(w, rows, cols, channels),
                                  pair(input_size), STRIDE)


def grad_weight(x, grad_y, kernel_size, mask_type="A", padding=None, color_groups=1):
    """d(sum grad_y * y)/dw, (O, C, k, k) for kernel_size k or (k, k): exactly zero at
    every masked weight."""
    _check(x, grad_y)
    k = pair(kernel_size)[0]
    o, c = grad_y.shape[1], x.shape[1]
    rows, cols, shifts, channels = _plan((o, c, k, k), mask_type, padding, color_groups)
    gw = backend.cupy().zeros((o, c, k * k), dtype=x.dtype)
    if shifts:
        kept = conv2d.grad_weight_taps(x, shifts, grad_y, STRIDE)
        gw[:, :, _kept_index(k, rows, cols)] = _channel_masked(kept, channels)
    return gw.reshape(o, c, k, k)
