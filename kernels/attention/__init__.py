"""Softmax attention with an online softmax: `cpu` (the default, blocked BLAS products in
threads) and `reference` (plain NumPy, the whole score matrix), one signature: forward
returns (out, lse), backward returns (dq, dk, dv).

    from minigen.kernels import attention
    out, lse = attention.forward(q, k, v, causal=True)
"""
from . import cpu, reference
from .cpu import backward, forward

__all__ = ["cpu", "reference", "forward", "backward"]
