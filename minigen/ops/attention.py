"""Softmax attention as an engine op, on the online-softmax kernel in minigen.kernels.

Two Functions. `Attention` runs the kernel's forward and keeps its log-sum-exp per query.
Its backward is one `AttentionBackward` node that runs the kernel's backward, so first-order
gradients never build the (T_q, T_k) matrix. That node returns dq, dk and dv laid end to
end in one flat array (written before the engine took ops of several results,
`Function.outputs`), and `Attention.backward` cuts it apart with (differentiable) slicing.

Derivatives of every order are supported (the tests check up to the third). The gradient
of `AttentionBackward` (needed for a second derivative: a gradient penalty, a Hessian-vector
product) is obtained by writing dq, dk and dv once more as plain ops (matmul, where,
softmax, sum) and differentiating those; that pass builds the whole (T_q, T_k) weight
matrix, so a second derivative costs the time and memory of unfused attention. Third and
higher derivatives follow from the plain ops.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function, Tensor, enable_grad, grad, is_grad_enabled
from ..kernels.attention.reference import allowed_keys
from .elementwise import constant, where
from .reduce import softmax


class Attention(Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, mask, scale):
        ctx.params = dict(causal=causal, mask=mask, scale=scale)
        out, ctx.lse = backend.kernel("attention", q).forward(q, k, v, causal, mask, scale)
        return out

    @staticmethod
    def backward(ctx, g):
        q, k, v = ctx.inputs
        packed = AttentionBackward.apply(q, k, v, g, out=ctx.output.data, lse=ctx.lse,
                                         **ctx.params)
        return _unpack(packed, [q.shape, k.shape, v.shape])


class AttentionBackward(Function):
    """(q, k, v, g) -> dq, dk, dv of attention for the output gradient g, flattened and laid
    end to end. `out` and `lse` are the forward's, saved so the kernel need not redo it."""

    @staticmethod
    def forward(ctx, q, k, v, g, out, lse, causal, mask, scale):
        ctx.params = dict(causal=causal, mask=mask, scale=scale)
        grads = backend.kernel("attention", q).backward(q, k, v, out, lse, g, causal, mask, scale)
        return backend.xp_of(q).concatenate([a.reshape(-1) for a in grads])

    @staticmethod
    def backward(ctx, u):
        create_graph = is_grad_enabled()
        with enable_grad():
            # each input enters the plain-op formulas through a stand-in node, so that the
            # grad below gives the partial derivative for that input alone; on q itself it
            # would also follow g (which may depend on q) back into q, counting twice
            slots = [Slot.apply(x) if need else x
                     for x, need in zip(ctx.inputs, ctx.needs_input_grad)]
            grads = _gradients_as_plain_ops(*slots, **ctx.params)
        pieces = _unpack(u, [gx.shape for gx in grads])
        # retain_graph: the walk from grads goes on through the stand-ins into the graph
        # behind q, k, v and g, which the backward pass that called this one still needs
        found = iter(grad(grads, [x for x, need in zip(slots, ctx.needs_input_grad) if need],
                          grad_outputs=pieces, retain_graph=True, create_graph=create_graph))
        return tuple(next(found) if need else None for need in ctx.needs_input_grad)


def _unpack(packed, shapes):
    """Tensors of these shapes, cut in order from the flat `packed` (differentiably)."""
    pieces, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        pieces.append(packed[start:start + size].reshape(shape))
        start += size
    return tuple(pieces)


class Slot(Function):
    """x itself, as a node of its own: a place where a gradient can be collected."""

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, g):
        return g


def _gradients_as_plain_ops(q, k, v, g, causal, mask, scale):
    """dq, dk, dv of attention written with differentiable ops: the whole weight matrix P,
    dv = P^T g, dS = P * (g v^T - rowsum(P * g v^T)), dq = scale dS k, dk = scale dS^T q."""
    xp = backend.xp_of(q.data)
    s = (q @ k.swapaxes(-1, -2)) * scale
    allowed = allowed_keys(q.shape[-2], k.shape[-2], causal, mask, xp)
    seen = None
    if allowed is not None:
        seen = allowed.any(axis=-1, keepdims=True)
        # a query with no allowed key softmaxes over all of them, then its weights are zeroed
        s = where(allowed | ~seen, s, -math.inf)
    p = softmax(s, axis=-1)
    if seen is not None and not seen.all():
        p = p * constant(seen.astype(p.dtype))
    dp = g @ v.swapaxes(-1, -2)
    ds = p * (dp - (p * dp).sum(axis=-1, keepdims=True)) * scale
    return ds @ k, ds.swapaxes(-1, -2) @ q, p.swapaxes(-1, -2) @ g


def attention(q, k, v, causal=False, mask=None, scale=None):
    """Softmax attention, softmax(scale q k^T) v, on (batch, heads, T, d):
    q (B, H, T_q, d), k (B, H, T_k, d), v (B, H, T_k, d_v) -> (B, H, T_q, d_v).

    causal: query i sees keys 0..i only (top-left aligned, as PyTorch's is_causal).
    mask: boolean, broadcastable to (B, H, T_q, T_k), True where a query may attend a key
    (arbitrary orderings, as PixelSNAIL's); combined with causal when both are given. A query
    with no key allowed gets output 0 (and zero gradients), not nan.
    scale: defaults to 1 / sqrt(d).
    """
    op = "attention"
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, not {type(x).__name__}")
        if x.ndim != 4:
            raise ValueError(f"{op}: expected {name} of shape (batch, heads, T, d), got "
                             f"{x.shape}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3] or q.shape[3] != k.shape[3]:
        raise ValueError(f"{op}: q {q.shape}, k {k.shape}, v {v.shape} do not fit: expected "
                         f"q (B, H, T_q, d), k (B, H, T_k, d), v (B, H, T_k, d_v)")
    if not (q.dtype == k.dtype == v.dtype) or q.dtype.kind != "f":
        raise TypeError(f"{op}: q, k, v need one floating dtype, got {q.dtype}, {k.dtype}, "
                        f"{v.dtype}")
    if mask is not None:
        mask = mask.data if isinstance(mask, Tensor) else backend.to_device(
            np.asarray(mask), q.device)
        if mask.dtype != bool:
            raise TypeError(f"{op}: mask must be boolean (True = may attend), not {mask.dtype}")
        full = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        try:
            fits = np.broadcast_shapes(mask.shape, full) == full
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{op}: mask of shape {mask.shape} does not broadcast to "
                             f"(B, H, T_q, T_k) = {full}")
    scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else float(scale)
    return Attention.apply(q, k, v, causal=bool(causal), mask=mask, scale=scale)
