"""conv2d, the plain NumPy reference: short and obviously right.

    y[n, o, p, q] = b[o] + sum_{c,i,j} w[o,c,i,j] * x[n, c, p*sh + i*dh - ph, q*sw + j*dw - pw]

with x taken as zero outside the image (the padding). One einsum per kernel tap (i, j) over
the padded input's strided window of that tap; the two gradients are the same loop with the
roles swapped. grad_input is also the forward pass of conv_transpose2d.

The same signatures as cpu.py: forward, grad_input (the adjoint in x), grad_weight (the
adjoint in w). Written with the array's own module, so CuPy arrays work too.
"""
import numpy as np

from minigen import backend


def pair(value, name="size", op="conv2d", low=0):
    """(a, b) from an int a (used for both axes) or a pair of ints, each at least `low`;
    otherwise a ValueError that names the op and the argument. The ops check their window
    arguments (kernel_size, stride, padding, dilation) with it, the kernels read them."""
    if isinstance(value, (int, np.integer)):
        values = (value, value)
    else:
        try:
            values = tuple(value)
        except TypeError:
            values = ()
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                               for v in values):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, not {value!r}")
    if min(values) < low:
        raise ValueError(f"{op}: {name} must be >= {low}, got {value!r}")
    return int(values[0]), int(values[1])


def output_size(input_size, kernel_size, stride=1, padding=0, dilation=1):
    """(oh, ow): how many windows fit along each axis."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, k, s, p, d in
                 zip(pair(input_size), pair(kernel_size), pair(stride), pair(padding),
                     pair(dilation)))


def _tap_windows(kernel_size, out_size, stride, dilation):
    """((i, j), index into the padded input) of each tap's window at every output pixel."""
    (kh, kw), (oh, ow), (sh, sw), (dh, dw) = kernel_size, out_size, stride, dilation
    for i in range(kh):
        for j in range(kw):
            yield (i, j), (slice(None), slice(None),
                           slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                           slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _padded(x, padding):
    ph, pw = padding
    return backend.xp_of(x).pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def forward(x, w, b=None, stride=1, padding=0, dilation=1):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) or None -> y (N, O, oh, ow)."""
    xp = backend.xp_of(x)
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    out = output_size(x.shape[2:], w.shape[2:], stride, padding, dilation)
    xpad = _padded(x, padding)
    y = xp.zeros((x.shape[0], w.shape[0]) + out, dtype=x.dtype)
    for (i, j), window in _tap_windows(w.shape[2:], out, stride, dilation):
        y += xp.einsum("oc,nchw->nohw", w[:, :, i, j], xpad[window])
    if b is not None:
        y += b[:, None, None]
    return y


def grad_input(grad_y, w, input_size, stride=1, padding=0, dilation=1):
    """d(sum grad_y * y)/dx for an input of spatial size `input_size` (H, W): each tap sends
    grad_y back through w[:, :, i, j]^T onto its window. Pixels no window covers get 0."""
    xp = backend.xp_of(grad_y)
    stride, padding, dilation = pair(stride), pair(padding), pair(dilation)
    (h, wd), (ph, pw) = pair(input_size), padding
    gx = xp.zeros((grad_y.shape[0], w.shape[1], h + 2 * ph, wd + 2 * pw), dtype=grad_y.dtype)
    for (i, j), window in _tap_windows(w.shape[2:], grad_y.shape[2:], stride, dilation):
        gx[window] += xp.einsum("oc,nohw->nchw", w[:, :, i, j], grad_y)
    return gx[:, :, ph:ph + h, pw:pw + wd]


def grad_weight(x, grad_y, kernel_size, stride=1, padding=0, dilation=1):
    """d(sum grad_y * y)/dw, (O, C, kh, kw): for each tap, grad_y against that tap's window
    of x, summed over images and output pixels."""
    xp = backend.xp_of(x)
    stride, padding, dilation, kernel_size = (pair(stride), pair(padding), pair(dilation),
                                              pair(kernel_size))
    xpad = _padded(x, padding)
    gw = xp.zeros((grad_y.shape[1], x.shape[1]) + kernel_size, dtype=x.dtype)
    for (i, j), window in _tap_windows(kernel_size, grad_y.shape[2:], stride, dilation):
        gw[:, :, i, j] = xp.einsum("nohw,nchw->oc", grad_y, xpad[window])
    return gw
