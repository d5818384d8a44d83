"""K1, K2 and K6, the 2-d convolutions, forward and backward, float32, against PyTorch and
against the plain NumPy references of minigen.kernels.

K1: masked conv2d type A, 7x7, 1 -> 64 channels, x (32, 1, 28, 28).
K2: masked conv2d type B, 3x3, 64 -> 64 channels, x (32, 64, 28, 28).
PyTorch's side of both is conv2d with the masked weight (w * mask, the way PixelCNN is
written in PyTorch), so autograd gives it the masked weight gradient too.
K6: conv2d 3x3 stride 1 padding 1, conv2d 4x4 stride 2 padding 1, conv_transpose2d 4x4
stride 2 padding 1, 64 -> 64 channels, x (64, 64, 16, 16).

Every case has a bias, and fwd+bwd is the forward pass and the gradients with respect to
the input, the weight and the bias. minigen's side is the engine op (minigen.ops.conv) and
mg.grad, so the time includes the graph; the reference side calls the NumPy reference
kernels directly.

PyTorch's OpenMP threads spin for several milliseconds after each op before they sleep, and
in the alternating timing that spin lands on whichever side runs next: measured here,
minigen's 3x3 forward took 14.5 ms right after a PyTorch call against 10.0 ms after its own.
So, unless it is already set, OMP_WAIT_POLICY=PASSIVE (set before torch is imported) puts
them to sleep at once; PyTorch's own times did not change with it (K6 3x3 fwd+bwd 25.3
against 22.8 ms, K2 32.3 against 34.4 ms, within the noise of this machine).

    python -m benchmarks.conv [--threads N] [--repeats R] [--no-write]
"""
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from numba.core.dispatcher import Dispatcher  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import minigen as mg  # noqa: E402
from minigen.kernels import conv2d as conv_kernel  # noqa: E402
from minigen.kernels import masked_conv2d as masked_kernel  # noqa: E402
from minigen.ops.conv import conv2d, conv_transpose2d, masked_conv2d  # noqa: E402

from . import common  # noqa: E402

NAME = "conv"
MASKED_CASES = (  # id, mask type, kernel size, x shape, output channels
    ("K1", "A", 7, (32, 1, 28, 28), 64),
    ("K2", "B", 3, (32, 64, 28, 28), 64),
)
K6_SHAPE, K6_CHANNELS = (64, 64, 16, 16), 64
K6_CASES = (  # label, kind, kernel size, stride, padding
    ("conv2d 3x3 s1", "conv2d", 3, 1, 1),
    ("conv2d 4x4 s2", "conv2d", 4, 2, 1),
    ("conv_transpose2d 4x4 s2", "conv_transpose2d", 4, 2, 1),
)


def agree(what, ours, theirs, rtol=1e-3):
    """float32 on both sides, summed in different orders: agree to rtol of the largest
    entry."""
    for name, a, b in zip(("y", "dx", "dw", "db"), ours, theirs):
        b = np.asarray(b)
        common.check_close(f"{what}, {name}", a, b, rtol=rtol,
                           atol=rtol * float(np.abs(b).max()))


def as_numpy(result):
    return [r.detach().numpy() if isinstance(r, torch.Tensor) else
            r if isinstance(r, np.ndarray) else r.numpy() for r in result]


NUMBA_KERNELS = [f for f in vars(conv_kernel.cpu).values() if isinstance(f, Dispatcher)]


def numba_counts():
    """(compiled, loaded from the on-disk cache) so far, over the conv kernels' Numba
    functions (each compiles once per dtype)."""
    return (sum(sum(k.stats.cache_misses.values()) for k in NUMBA_KERNELS),
            sum(sum(k.stats.cache_hits.values()) for k in NUMBA_KERNELS))


def first_call(fn):
    """fn's result as NumPy arrays, and the seconds the call took (where a compiler would
    show up)."""
    start = time.perf_counter()
    result = fn()
    return as_numpy(result), time.perf_counter() - start


def data(seed, x_shape, w_shape, out_channels):
    rng = np.random.default_rng(seed)
    fan_in = w_shape[1] * w_shape[2] * w_shape[3]
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32) / np.float32(np.sqrt(fan_in))
    b = rng.standard_normal(out_channels, dtype=np.float32)
    return x, w, b


def compare(label, ours, theirs, reference, args, target, goal):
    """Check that the three sides agree, then time minigen against each of the others."""
    counts = numba_counts()
    mine, mine_s = first_call(ours)
    compiled, loaded = (after - before for after, before in zip(numba_counts(), counts))
    other, other_s = first_call(theirs)
    agree(f"{label} vs torch", mine, other)
    agree(f"{label} vs reference", mine, as_numpy(reference()))
    vs_torch = common.time_pair(ours, theirs, args.repeats, args.warmup)
    vs_ref = common.time_pair(ours, reference, args.repeats, args.warmup)
    rows = [common.row(label, vs_torch, "torch", target=target, goal=goal),
            common.row(label, vs_ref, "numpy reference")]
    line = (f"{label.split(',')[0]} first call: minigen {mine_s * 1e3:.1f} ms (Numba compiled "
            f"{compiled} and loaded {loaded} kernels from its cache), torch "
            f"{other_s * 1e3:.1f} ms")
    return rows, line


def masked_rows(args):
    rows, lines = [], []
    for name, mask_type, k, x_shape, out_channels in MASKED_CASES:
        w_shape = (out_channels, x_shape[1], k, k)
        x0, w0, b0 = data(0, x_shape, w_shape, out_channels)
        n, _, h, wd = x_shape
        g0 = np.random.default_rng(1).standard_normal((n, out_channels, h, wd),
                                                      dtype=np.float32)
        mask = masked_kernel.mask(out_channels, x_shape[1], k, mask_type)
        x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        g = mg.tensor(g0)
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        gt, mask_t = torch.tensor(g0), torch.tensor(mask)

        def ours():
            y = masked_conv2d(x, w, b, mask_type=mask_type)
            return (y,) + mg.grad(y, [x, w, b], grad_outputs=g)

        def theirs():
            y = TF.conv2d(xt, wt * mask_t, bt, padding=k // 2)
            return (y,) + torch.autograd.grad(y, [xt, wt, bt], gt)

        def reference():
            ref = masked_kernel.reference
            return (ref.forward(x0, w0, b0, mask_type),
                    ref.grad_input(g0, w0, (h, wd), mask_type),
                    ref.grad_weight(x0, g0, k, mask_type), g0.sum(axis=(0, 2, 3)))

        label = (f"{name} masked conv2d {mask_type} {k}x{k} {x_shape[1]}->{out_channels} "
                 f"{'x'.join(map(str, x_shape))}, fwd+bwd")
        new_rows, line = compare(label, ours, theirs, reference, args, 1.0, 0.7)
        rows += new_rows
        lines.append(line)
    return rows, lines


def k6_rows(args):
    rows, lines = [], []
    n, c, h, wd = K6_SHAPE
    for label, kind, k, stride, padding in K6_CASES:
        transpose = kind == "conv_transpose2d"
        w_shape = (c, K6_CHANNELS, k, k) if transpose else (K6_CHANNELS, c, k, k)
        x0, w0, b0 = data(2, K6_SHAPE, w_shape, K6_CHANNELS)
        if transpose:
            out = ((h - 1) * stride - 2 * padding + k, (wd - 1) * stride - 2 * padding + k)
        else:
            out = conv_kernel.output_size((h, wd), k, stride, padding)
        g0 = np.random.default_rng(3).standard_normal((n, K6_CHANNELS) + out, dtype=np.float32)
        x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        g = mg.tensor(g0)
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        gt = torch.tensor(g0)
        ours_op, torch_op = (conv_transpose2d, TF.conv_transpose2d) if transpose else \
            (conv2d, TF.conv2d)

        def ours():
            y = ours_op(x, w, b, stride=stride, padding=padding)
            return (y,) + mg.grad(y, [x, w, b], grad_outputs=g)

        def theirs():
            y = torch_op(xt, wt, bt, stride=stride, padding=padding)
            return (y,) + torch.autograd.grad(y, [xt, wt, bt], gt)

        def reference():
            ref = conv_kernel.reference
            gb = g0.sum(axis=(0, 2, 3))
            if transpose:  # conv_transpose2d is conv2d's input gradient, run forward
                y = ref.grad_input(x0, w0, out, stride, padding) + b0[:, None, None]
                return (y, ref.forward(g0, w0, None, stride, padding),
                        ref.grad_weight(g0, x0, k, stride, padding), gb)
            return (ref.forward(x0, w0, b0, stride, padding),
                    ref.grad_input(g0, w0, (h, wd), stride, padding),
                    ref.grad_weight(x0, g0, k, stride, padding), gb)

        new_rows, line = compare(f"K6 {label} {c}->{K6_CHANNELS} {'x'.join(map(str, K6_SHAPE))}"
                                 f", fwd+bwd", ours, theirs, reference, args, 1.5, 1.1)
        rows += new_rows
        lines.append(line)
    return rows, lines


def run(args):
    # NumPy's BLAS gets the same threads as PyTorch; the conv kernels run as many Python
    # threads as BLAS is allowed
    with threadpool_limits(args.threads, user_api="blas"):
        masked, masked_lines = masked_rows(args)
        k6, k6_lines = k6_rows(args)
    for line in masked_lines + k6_lines:
        print(line)
    return masked + k6


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
