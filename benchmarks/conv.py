"""K1, K2 and K6, the 2-d convolutions, forward and backward, float32: each side's call,
timed by benchmarks.harness, and the check that minigen, PyTorch and the plain NumPy
reference kernels of minigen.kernels agree.

K1: masked conv2d type A, 7x7, 1 -> 64 channels, x (32, 1, 28, 28).
K2: masked conv2d type B, 3x3, 64 -> 64 channels, x (32, 64, 28, 28).
PyTorch's side of both is conv2d with the masked weight (w * mask, the way PixelCNN is
written in PyTorch), so autograd gives it the masked weight gradient too.
K6: conv2d 3x3 stride 1 padding 1, conv2d 4x4 stride 2 padding 1, conv_transpose2d 4x4
stride 2 padding 1, 64 -> 64 channels, x (64, 64, 16, 16).

Every case has a bias, and fwd+bwd is the forward pass and the gradients with respect to
the input, the weight and the bias. minigen's side is the engine op (minigen.ops.conv) and
mg.grad, so the time includes the graph. A side's call imports that side's library alone
(the masked cases' PyTorch side takes its mask from minigen.kernels.masked_conv2d).

    python -m benchmarks.harness --cases K1 K2 K6-3x3 K6-4x4s2 K6-T4x4s2
"""
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import common

K6_SHAPE = (64, 64, 16, 16)


@dataclass(frozen=True)
class Conv:
    """One convolution case: `kind` is "masked_conv2d", "conv2d" or "conv_transpose2d";
    the operands are drawn from `seed` (the output gradient from seed + 1)."""
    id: str
    kind: str
    kernel: int
    x_shape: tuple
    out_channels: int = 64
    stride: int = 1
    padding: int = 0
    mask_type: str = None
    seed: int = 0

    @property
    def title(self):
        c, k, shape = self.x_shape[1], self.kernel, "x".join(map(str, self.x_shape))
        if self.kind == "masked_conv2d":
            what = f"masked conv2d {self.mask_type} {k}x{k}"
        else:
            what = f"{self.kind} {k}x{k} s{self.stride}"
        return f"{self.id.split('-')[0]} {what} {c}->{self.out_channels} {shape}, fwd+bwd"

    @property
    def weight_shape(self):
        c = self.x_shape[1]
        k = self.kernel
        if self.kind == "conv_transpose2d":
            return (c, self.out_channels, k, k)
        return (self.out_channels, c, k, k)

    @property
    def output_size(self):
        k, s, p = self.kernel, self.stride, self.padding
        if self.kind == "conv_transpose2d":
            return tuple((n - 1) * s - 2 * p + k for n in self.x_shape[2:])
        return tuple((n + 2 * p - k) // s + 1 for n in self.x_shape[2:])


CASES = {c.id: c for c in (
    Conv("K1", "masked_conv2d", 7, (32, 1, 28, 28), padding=3, mask_type="A"),
    Conv("K2", "masked_conv2d", 3, (32, 64, 28, 28), padding=1, mask_type="B"),
    Conv("K6-3x3", "conv2d", 3, K6_SHAPE, stride=1, padding=1, seed=2),
    Conv("K6-4x4s2", "conv2d", 4, K6_SHAPE, stride=2, padding=1, seed=2),
    Conv("K6-T4x4s2", "conv_transpose2d", 4, K6_SHAPE, stride=2, padding=1, seed=2),
)}


def operands(case):
    """x, w, b and the output gradient g, the same float32 arrays for every side."""
    rng = np.random.default_rng(case.seed)
    w_shape = case.weight_shape
    fan_in = w_shape[1] * w_shape[2] * w_shape[3]
    x = rng.standard_normal(case.x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
    b = rng.standard_normal(case.out_channels, dtype=np.float32)
    g_shape = (case.x_shape[0], case.out_channels) + tuple(case.output_size)
    g = np.random.default_rng(case.seed + 1).standard_normal(g_shape, dtype=np.float32)
    return x, w, b, g


def call(case, side):
    """One fwd+bwd on `side` ("minigen" or "torch"): the output and the gradients for x, w
    and b, as that side's tensors."""
    x0, w0, b0, g0 = operands(case)
    masked = case.kind == "masked_conv2d"
    if side == "minigen":
        from minigen.ops import conv
        op = partial(conv.masked_conv2d, mask_type=case.mask_type) if masked else \
            partial(getattr(conv, case.kind), stride=case.stride, padding=case.padding)
    elif masked:
        import torch
        import torch.nn.functional as TF
        from minigen.kernels import masked_conv2d as masked_kernel
        mask = torch.tensor(masked_kernel.mask(case.out_channels, case.x_shape[1],
                                               case.kernel, case.mask_type))

        def op(x, w, b):
            return TF.conv2d(x, w * mask, b, padding=case.padding)
    else:
        import torch.nn.functional as TF
        op = partial(getattr(TF, case.kind), stride=case.stride, padding=case.padding)
    return common.fwd_bwd(side, (x0, w0, b0), g0, op)


def reference(case):
    """The same output and gradients from the plain NumPy reference kernels."""
    from minigen.kernels import conv2d as conv_kernel
    from minigen.kernels import masked_conv2d as masked_kernel
    x, w, b, g = operands(case)
    k, stride, padding = case.kernel, case.stride, case.padding
    gb = g.sum(axis=(0, 2, 3))
    if case.kind == "masked_conv2d":
        ref, mask_type = masked_kernel.reference, case.mask_type
        return (ref.forward(x, w, b, mask_type), ref.grad_input(g, w, x.shape[2:], mask_type),
                ref.grad_weight(x, g, k, mask_type), gb)
    ref = conv_kernel.reference
    if case.kind == "conv_transpose2d":  # conv2d's input gradient, run forward
        return (ref.grad_input(x, w, case.output_size, stride, padding) + b[:, None, None],
                ref.forward(g, w, None, stride, padding),
                ref.grad_weight(g, x, k, stride, padding), gb)
    return (ref.forward(x, w, b, stride, padding),
            ref.grad_input(g, w, x.shape[2:], stride, padding),
            ref.grad_weight(x, g, k, stride, padding), gb)


def check(case, rtol=1e-3):
    """minigen against PyTorch and against the reference: y, dx, dw and db agree to rtol of
    the largest entry (float32 on every side, summed in different orders)."""
    ours = [a.numpy() for a in call(case, "minigen")()]
    theirs = [a.detach().numpy() for a in call(case, "torch")()]
    for other, values in (("torch", theirs), ("reference", reference(case))):
        for name, a, b in zip(("y", "dx", "dw", "db"), ours, values):
            common.check_close(f"{case.id} vs {other}, {name}", a, b, rtol=rtol,
                               atol=rtol * float(np.abs(b).max()))
