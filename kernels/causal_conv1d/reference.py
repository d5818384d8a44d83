"""Causal dilated conv1d (WaveNet), the plain NumPy reference: short and obviously right.

    y[n, o, t] = b[o] + sum_{i, j} w[o, i, j] * x[n, i, t - s_j],   s_j = (k - 1 - j) * d + shift

with x taken as zero before the start. Tap j = k - 1 is the current step (offset 0), unless
`shift` moves every tap one step further into the past so that no output sees its own
input. Each tap is one product of w[:, :, j] with x shifted right by s_j; a tap that reaches
past the whole sequence contributes nothing and is skipped.

The same signatures as cpu.py: forward, grad_input (the adjoint in x), grad_weight (the
adjoint in w). Written with the array's own module, so CuPy arrays work too.
"""
from minigen import backend


def offsets(kernel_size, dilation, shift):
    """How many steps into the past each tap j = 0 .. k-1 reads."""
    return [(kernel_size - 1 - j) * dilation + int(shift) for j in range(kernel_size)]


def forward(x, w, b=None, dilation=1, shift=False):
    """x (N, C_in, T), w (C_out, C_in, k), b (C_out,) or None -> y (N, C_out, T)."""
    xp = backend.xp_of(x)
    n, _, length = x.shape
    y = xp.zeros((n, w.shape[0], length), dtype=x.dtype)
    for j, s in enumerate(offsets(w.shape[2], dilation, shift)):
        if s < length:
            y[:, :, s:] += xp.einsum("oi,nit->not", w[:, :, j], x[:, :, :length - s])
    if b is not None:
        y += b[:, None]
    return y


def grad_input(grad_y, w, dilation=1, shift=False):
    """d(sum grad_y * y)/dx: each tap sends grad_y back s_j steps, through w[:, :, j]^T."""
    xp = backend.xp_of(grad_y)
    n, _, length = grad_y.shape
    gx = xp.zeros((n, w.shape[1], length), dtype=grad_y.dtype)
    for j, s in enumerate(offsets(w.shape[2], dilation, shift)):
        if s < length:
            gx[:, :, :length - s] += xp.einsum("oi,not->nit", w[:, :, j], grad_y[:, :, s:])
    return gx


def grad_weight(x, grad_y, kernel_size, dilation=1, shift=False):
    """d(sum grad_y * y)/dw: for each tap, grad_y against x shifted by s_j, summed over
    samples and steps."""
    xp = backend.xp_of(x)
    length = x.shape[2]
    gw = xp.zeros((grad_y.shape[1], x.shape[1], kernel_size), dtype=x.dtype)
    for j, s in enumerate(offsets(kernel_size, dilation, shift)):
        if s < length:
            gw[:, :, j] = xp.einsum("not,nit->oi", grad_y[:, :, s:], x[:, :, :length - s])
    return gw
