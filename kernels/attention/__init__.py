"""Softmax attention with an online softmax: `cpu` (the default, blocked BLAS products in
threads), `reference` (plain NumPy, the whole score matrix) and, for CuPy arrays, `cuda`
(FlashAttention-style kernels, attention.cu), one signature: forward returns (out, lse),
backward returns (dq, dk, dv). minigen.backend.kernel picks the version for an array.

    from minigen.kernels import attention
    out, lse = attention.forward(q, k, v, causal=True)
"""
from . import cpu, reference
from .cpu import backward, forward

__all__ = ["cpu", "reference", "forward", "backward"]
