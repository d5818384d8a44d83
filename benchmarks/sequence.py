"""K3 and K4, the sequence kernels, forward and backward, float32: each side's call, timed
by benchmarks.harness, and the check that minigen, PyTorch and the plain NumPy reference
kernels of minigen.kernels agree.

K3: causal dilated conv1d, kernel 2, 64 -> 64 channels with bias, x (16, 64, 4096), for
dilations 1, 8, 64 and 512; PyTorch's side is conv1d on the input padded on the left.
K4: causal attention, d = 32, at (8, 4, 256, 32) and (8, 4, 1024, 32); PyTorch's side is
scaled_dot_product_attention(is_causal=True).

minigen's side is the engine op (minigen.ops.causal.causal_conv1d, minigen.ops.attention.
attention) and mg.grad with respect to every input and parameter, so the time includes
the graph. A side's call imports that side's library alone.

    python -m benchmarks.harness --cases K3-d1 K3-d8 K3-d64 K3-d512 K4-256 K4-1024
"""
import numpy as np

from . import common

K3_SHAPE = (16, 64, 4096)
K3_CASES = {f"K3-d{d}": d for d in (1, 8, 64, 512)}  # id: dilation
K4_CASES = {f"K4-{shape[2]}": shape for shape in ((8, 4, 256, 32), (8, 4, 1024, 32))}


def causal_conv_operands(shape=K3_SHAPE):
    """x, w, b and the output gradient g for K3, the same float32 arrays for every side."""
    rng = np.random.default_rng(0)
    channels = shape[1]
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((channels, channels, 2), dtype=np.float32) / \
        np.float32(np.sqrt(2 * channels))
    b = rng.standard_normal(channels, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    return x, w, b, g


def causal_conv_call(dilation, side, shape=K3_SHAPE):
    """One K3 fwd+bwd on `side` ("minigen" or "torch"): the output and the gradients for x,
    w and b, as that side's tensors."""
    x0, w0, b0, g0 = causal_conv_operands(shape)
    if side == "minigen":
        from minigen.ops.causal import causal_conv1d

        def op(x, w, b):
            return causal_conv1d(x, w, b, dilation=dilation)
    else:
        import torch.nn.functional as TF

        def op(x, w, b):
            return TF.conv1d(TF.pad(x, (dilation, 0)), w, b, dilation=dilation)
    return common.fwd_bwd(side, (x0, w0, b0), g0, op)


def causal_conv_reference(dilation, shape=K3_SHAPE):
    from minigen.kernels import causal_conv1d
    x, w, b, g = causal_conv_operands(shape)
    ref = causal_conv1d.reference
    return (ref.forward(x, w, b, dilation=dilation), ref.grad_input(g, w, dilation=dilation),
            ref.grad_weight(x, g, 2, dilation=dilation), g.sum(axis=(0, 2)))


def check_causal_conv(dilation, shape=K3_SHAPE):
    _agree(f"K3 d={dilation}", causal_conv_call(dilation, "minigen", shape),
           causal_conv_call(dilation, "torch", shape), causal_conv_reference(dilation, shape))


def attention_operands(shape):
    """q, k, v and the output gradient g for K4, the same float32 arrays for every side."""
    rng = np.random.default_rng(1)
    return tuple(rng.standard_normal(shape, dtype=np.float32) for _ in range(4))


def attention_call(shape, side):
    """One K4 fwd+bwd on `side`: the output and the gradients for q, k and v."""
    q0, k0, v0, g0 = attention_operands(shape)
    if side == "minigen":
        from minigen.ops.attention import attention

        def op(q, k, v):
            return attention(q, k, v, causal=True)
    else:
        from torch.nn.functional import scaled_dot_product_attention

        def op(q, k, v):
            return scaled_dot_product_attention(q, k, v, is_causal=True)
    return common.fwd_bwd(side, (q0, k0, v0), g0, op)


def attention_reference(shape):
    from minigen.kernels import attention
    q, k, v, g = attention_operands(shape)
    out, lse = attention.reference.forward(q, k, v, causal=True)
    return (out,) + attention.reference.backward(q, k, v, out, lse, g, causal=True)


def check_attention(shape):
    _agree(f"K4 {shape}", attention_call(shape, "minigen"), attention_call(shape, "torch"),
           attention_reference(shape))


def _agree(what, ours, theirs, reference, rtol=1e-4):
    """minigen against PyTorch and against the reference, float32 on every side, summed in
    different orders: agree to rtol of the largest entry (the worst measured is 5e-6, dw of
    K3, a sum of 65536 products)."""
    ours = [a.numpy() for a in ours()]
    for other, values in (("torch", [a.detach().numpy() for a in theirs()]),
                          ("reference", reference)):
        for i, (a, b) in enumerate(zip(ours, values)):
            common.check_close(f"{what} vs {other}, output {i}", a, b, rtol=rtol,
                               atol=rtol * float(np.abs(b).max()))
