"""K3 and K4, the sequence kernels, forward and backward, float32, against PyTorch and
against the plain NumPy references of minigen.kernels.

K3: causal dilated conv1d, kernel 2, 64 -> 64 channels with bias, x (16, 64, 4096), for
dilations 1, 8, 64 and 512; PyTorch's side is conv1d on the input padded on the left.
K4: causal attention, d = 32, at (8, 4, 256, 32) and (8, 4, 1024, 32); PyTorch's side is
scaled_dot_product_attention(is_causal=True).

minigen's side is the engine op (minigen.ops.causal.causal_conv1d, minigen.ops.attention.
attention) and mg.grad with respect to every input and parameter, so the time includes
the graph; the reference side calls the NumPy reference kernels directly.

    python -m benchmarks.sequence [--threads N] [--repeats R] [--no-write]
"""
import time

import numpy as np
import torch
import torch.nn.functional as TF
from threadpoolctl import threadpool_limits

import minigen as mg
from minigen.kernels import attention as attention_kernel
from minigen.kernels import causal_conv1d as conv_kernel
from minigen.ops.attention import attention
from minigen.ops.causal import causal_conv1d

from . import common

NAME = "sequence"
K3_SHAPE, K3_DILATIONS = (16, 64, 4096), (1, 8, 64, 512)
K4_SHAPES = ((8, 4, 256, 32), (8, 4, 1024, 32))


def agree(what, ours, theirs, rtol=1e-4):
    """float32 on both sides, summed in different orders: agree to rtol of the largest
    entry (the worst measured is 5e-6, dw of K3, a sum of 65536 products)."""
    for i, (a, b) in enumerate(zip(ours, theirs)):
        b = np.asarray(b)
        common.check_close(f"{what}, output {i}", a, b, rtol=rtol,
                           atol=rtol * float(np.abs(b).max()))


def first_call(fn):
    """fn's result as NumPy arrays, and the seconds the call took (where a compiler would
    show up; these kernels have none to run)."""
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return [r.detach().numpy() if isinstance(r, torch.Tensor) else r.numpy() for r in result], \
        seconds


def first_call_line(what, ours_s, theirs_s):
    return (f"{what} first call: minigen {ours_s * 1e3:.1f} ms (nothing to compile: BLAS "
            f"and NumPy), torch {theirs_s * 1e3:.1f} ms")


def k3_rows(args):
    rng = np.random.default_rng(0)
    n, c, length = K3_SHAPE
    x0 = rng.standard_normal(K3_SHAPE, dtype=np.float32)
    w0 = rng.standard_normal((c, c, 2), dtype=np.float32) / np.float32(np.sqrt(2 * c))
    b0 = rng.standard_normal(c, dtype=np.float32)
    g0 = rng.standard_normal(K3_SHAPE, dtype=np.float32)
    x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    g = mg.tensor(g0)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x0, w0, b0))
    gt = torch.tensor(g0)
    rows, lines = [], []
    for d in K3_DILATIONS:
        def ours():
            y = causal_conv1d(x, w, b, dilation=d)
            return (y,) + mg.grad(y, [x, w, b], grad_outputs=g)

        def theirs():
            y = TF.conv1d(TF.pad(xt, (d, 0)), wt, bt, dilation=d)
            return (y,) + torch.autograd.grad(y, [xt, wt, bt], gt)

        def reference():
            y = conv_kernel.reference.forward(x0, w0, b0, dilation=d)
            return (y, conv_kernel.reference.grad_input(g0, w0, dilation=d),
                    conv_kernel.reference.grad_weight(x0, g0, 2, dilation=d),
                    g0.sum(axis=(0, 2)))

        mine, mine_s = first_call(ours)
        other, other_s = first_call(theirs)
        agree(f"K3 d={d} vs torch", mine, other)
        agree(f"K3 d={d} vs reference", mine, reference())
        label = f"K3 causal conv1d k=2 d={d} {n}x{c}x{length}, fwd+bwd"
        vs_torch = common.time_pair(ours, theirs, args.repeats, args.warmup)
        vs_ref = common.time_pair(ours, reference, args.repeats, args.warmup)
        rows.append(common.row(label, vs_torch, "torch", target=1.25, goal=0.9))
        rows.append(common.row(label, vs_ref, "numpy reference"))
        lines.append(first_call_line(f"K3 d={d}", mine_s, other_s))
    return rows, lines


def k4_rows(args):
    rows, lines = [], []
    for shape in K4_SHAPES:
        rng = np.random.default_rng(1)
        q0, k0, v0, g0 = (rng.standard_normal(shape, dtype=np.float32) for _ in range(4))
        q, k, v = (mg.tensor(a, requires_grad=True) for a in (q0, k0, v0))
        g = mg.tensor(g0)
        qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q0, k0, v0))
        gt = torch.tensor(g0)

        def ours():
            out = attention(q, k, v, causal=True)
            return (out,) + mg.grad(out, [q, k, v], grad_outputs=g)

        def theirs():
            out = TF.scaled_dot_product_attention(qt, kt, vt, is_causal=True)
            return (out,) + torch.autograd.grad(out, [qt, kt, vt], gt)

        def reference():
            out, lse = attention_kernel.reference.forward(q0, k0, v0, causal=True)
            return (out,) + attention_kernel.reference.backward(q0, k0, v0, out, lse, g0,
                                                                causal=True)

        mine, mine_s = first_call(ours)
        other, other_s = first_call(theirs)
        agree(f"K4 {shape} vs torch", mine, other)
        agree(f"K4 {shape} vs reference", mine, reference())
        label = f"K4 causal attention {'x'.join(map(str, shape))}, fwd+bwd"
        vs_torch = common.time_pair(ours, theirs, args.repeats, args.warmup)
        vs_ref = common.time_pair(ours, reference, args.repeats, args.warmup)
        rows.append(common.row(label, vs_torch, "torch", target=1.5, goal=1.0))
        rows.append(common.row(label, vs_ref, "numpy reference"))
        lines.append(first_call_line(f"K4 {shape}", mine_s, other_s))
    return rows, lines


def run(args):
    # NumPy's BLAS gets the same threads as PyTorch; the attention kernel runs as many
    # Python threads as BLAS is allowed
    with threadpool_limits(args.threads, user_api="blas"):
        k3, k3_lines = k3_rows(args)
        k4, k4_lines = k4_rows(args)
    for line in k3_lines + k4_lines:
        print(line)
    return k3 + k4


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
