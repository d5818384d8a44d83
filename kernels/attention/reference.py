"""Softmax attention, the plain NumPy reference: the whole (T_q, T_k) score matrix at once.

    out = softmax(scale * q k^T, masked) v,    lse = log(sum(exp(scale * q k^T, masked)))

q (B, H, T_q, d), k (B, H, T_k, d), v (B, H, T_k, d_v). A key may be attended where `mask`
(boolean, broadcastable to (B, H, T_q, T_k), True = allowed) allows it and, with `causal`,
where its index is not after the query's (top-left aligned, as PyTorch's is_causal). A row
with no allowed key gets output 0 and lse = -inf. The same signatures as cpu.py. Written
with the array's own module, so CuPy arrays work too.
"""
import math

from minigen import backend


def allowed_keys(tq, tk, causal, mask, xp):
    """The boolean (.., T_q, T_k) pattern of keys each query may see, or None for all."""
    allowed = xp.tril(xp.ones((tq, tk), dtype=bool)) if causal else None
    if mask is not None:
        mask = xp.asarray(mask, dtype=bool)
        allowed = mask if allowed is None else allowed & mask
    return allowed


def _scores(q, k, causal, mask, scale):
    xp = backend.xp_of(q)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.swapaxes(-1, -2)) * q.dtype.type(scale)
    allowed = allowed_keys(q.shape[-2], k.shape[-2], causal, mask, xp)
    return s if allowed is None else xp.where(allowed, s, -xp.inf).astype(q.dtype)


def forward(q, k, v, causal=False, mask=None, scale=None):
    """(out (B, H, T_q, d_v), lse (B, H, T_q)); scale defaults to 1 / sqrt(d)."""
    xp = backend.xp_of(q)
    s = _scores(q, k, causal, mask, scale)
    m = s.max(axis=-1, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # a fully masked row: exp(-inf - 0) = 0, not nan
    e = xp.exp(s - m)
    total = e.sum(axis=-1, keepdims=True)
    seen = total > 0
    out = (e @ v) / xp.where(seen, total, 1)
    lse = xp.where(seen, m + xp.log(xp.where(seen, total, 1)), -xp.inf)
    return out, lse[..., 0].astype(q.dtype)


def backward(q, k, v, out, lse, grad_out, causal=False, mask=None, scale=None):
    """(dq, dk, dv) for the gradient grad_out of the output, from the forward's out and lse:
    with P the attention weights, dv = P^T g, dS = P * (g v^T - rowsum(g * out)),
    dq = scale dS k, dk = scale dS^T q."""
    xp = backend.xp_of(q)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = _scores(q, k, causal, mask, scale)
    p = xp.exp(s - xp.where(xp.isfinite(lse), lse, 0)[..., None])
    dv = p.swapaxes(-1, -2) @ grad_out
    ds = p * (grad_out @ v.swapaxes(-1, -2) - (grad_out * out).sum(axis=-1, keepdims=True))
    ds *= q.dtype.type(scale)
    return ds @ k, ds.swapaxes(-1, -2) @ q, dv
