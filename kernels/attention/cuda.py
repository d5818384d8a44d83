"""Softmax attention on the GPU (CuPy arrays), FlashAttention-style: the kernels of
attention.cu, with the signatures of reference.py and cpu.py.

Forward (Dao et al., 2022). One block of 256 threads per (batch x head, tile of 64
queries) walks the tiles of 64 keys, staging K and V in shared memory, and keeps per query
a running maximum m, the running sum l of exp(S - m) and the output in registers, rescaled
by exp(m_old - m_new) when the maximum grows; at the end out = O / l and lse = m + log(l).
Each thread owns a 4 x 4 piece of the 64 x 64 tile of scores S = (Q scale) K^T, and the same
4 rows of the output (d / 16 columns); P goes through shared memory for O += P V. Under
`causal` a query tile stops at the key tile of its last query, and masks each score of the
tiles it shares with the diagonal.

Backward (FlashAttention-2, Dao, 2023). First delta = rowsum(dO * O), a warp a row. Then
one block per (batch x head, tile of 64 keys) holds K and V in shared memory and dK and dV
in registers while it walks the query tiles (under `causal`, from the key tile's diagonal
on), recomputing P = exp(S - lse) and dS = P (dO V^T - delta) for each. dQ gets scale dS K
from every key tile, added with atomics into a zeroed dq. The deterministic alternative, a
second kernel per query tile that recomputes P and dP, takes seven tile products where this
takes five (40% more arithmetic in the backward, about 20% more in forward and backward),
against one atomic add per dq entry per key tile, which sums 64 products. The price: the
partial sums of dq arrive in no fixed order, so its last bits may differ between runs.

Why these tiles. In float32 without tensor cores (which would mean TF32 products) the work
is fused multiply-adds fed from shared memory, so what counts is multiply-adds per value
loaded from it, which the threads' register tiles set (4 x 4 scores: 64 per 8 16-byte
loads), and how many warps an SM keeps busy. At d = 64 (NVRTC and nvcc 13.0, sm_90) the
forward takes 100 registers and 68 KiB of shared memory, the backward 128 and 102.5 KiB:
two blocks (16 warps) an SM each. The shared memory is dynamic, past the 48 KiB static
limit. TILES holds the register tiles per kernel for float32 (8 x 4 and 4 x 8 compile
without spilling too, and pass the same tests): the one knob to set by timing on the GPU.

The head size d is a compile-time constant (a module per d and dtype, cached by CuPy): any
d up to 128 runs, in tiles padded with zeros to 16, 32, 64 or 128 columns. float64 takes
4 x 4 tiles, or 2 x 2 (32 x 32 scores) at d > 64, where 4 x 4 would need more than the
227 KiB of shared memory a block may have.

Falls back to reference.py (which runs on CuPy, building the whole (T_q, T_k) matrix of
scores) for a `mask`, d > 128, a value size d_v other than d, and dtypes other than
float32 and float64.
"""
import functools
import math

import numpy as np

from minigen import backend

from .. import cudasource
from . import reference

THREADS = 256  # a block's threads, a 16 x 16 grid
LANES = 16
MAX_HEAD_DIM = 128
SHARED_LIMIT = 227 * 1024  # the most shared memory an H100 (sm_90) block may opt in to
# float32: rows x cols, each thread's tile of scores (a block's is 16 rows x 16 cols)
TILES = {"attention_forward": (4, 4), "attention_backward": (4, 4)}


def _padded(d):
    return next(n for n in (16, 32, 64, 128) if d <= n)


def _shared_bytes(name, dtype, d, rows, cols):
    """attention.cu's FORWARD_REALS and BACKWARD_REALS, in bytes."""
    pack = 16 // dtype.itemsize
    ld, ldc = _padded(d) + pack, LANES * cols + pack
    tile_r, tile_c = LANES * rows, LANES * cols
    reals = {
        "attention_forward": tile_r * ld + 2 * tile_c * ld + tile_r * ldc,
        "attention_backward": 2 * (tile_r * ld + tile_c * ld + tile_r * ldc + tile_c),
        "attention_row_dot": 0,
    }[name]
    return reals * dtype.itemsize


def _kernel(name, dtype, d):
    """(the kernel, the rows of its threads' tiles, its bytes of shared memory) for `dtype`
    and head size d: the tiles of TILES for float32, else the first of 4 x 4 and 2 x 2
    whose shared memory fits (2 x 2 for float64 at d > 64)."""
    dtype = np.dtype(dtype)
    choices = [TILES[name]] if dtype == np.float32 and name in TILES else []
    for rows, cols in choices + [(4, 4), (2, 2)]:
        shared = _shared_bytes(name, dtype, d, rows, cols)
        if shared <= SHARED_LIMIT:
            return _compiled(name, dtype, d, rows, cols, shared), rows, shared


@functools.lru_cache(maxsize=None)
def _compiled(name, dtype, d, rows, cols, shared):
    options = (f"-DHEAD_DIM={d}", f"-DROWS={rows}", f"-DCOLS={cols}")
    kernel = cudasource.function(__file__, "attention.cu", name, dtype, options)
    kernel.max_dynamic_shared_size_bytes = shared
    return kernel


def _runs_here(q, k, v, mask):
    """Whether the kernels take these arguments (the reference does the rest)."""
    d = q.shape[3]
    return (mask is None and 1 <= d <= MAX_HEAD_DIM and v.shape[3] == d
            and q.dtype == k.dtype == v.dtype and q.dtype in cudasource.REAL)


def _prepared(*arrays):
    """C-contiguous copies where the arrays are not, aligned to 16 bytes (a view may start
    anywhere): the kernels index flat memory and load 16 bytes at a time."""
    return tuple(a if a.data.ptr % 16 == 0 else a.copy()
                 for a in cudasource.contiguous(*arrays))


def _launch(kernel, grid, args, shared):
    """kernel on `grid` with 256 threads a block; nothing where the grid is empty (no
    queries or no keys)."""
    if min(grid) > 0:
        kernel(grid, (THREADS,), args, shared_mem=shared)


def _tile_count(t, size):
    return -(-t // size)


def forward(q, k, v, causal=False, mask=None, scale=None):
    """(out (B, H, T_q, d), lse (B, H, T_q)); scale defaults to 1 / sqrt(d)."""
    if not _runs_here(q, k, v, mask):
        return reference.forward(q, k, v, causal=causal, mask=mask, scale=scale)
    cp = backend.cupy()
    dtype = cudasource.check("attention", q, k, v)
    q, k, v = _prepared(q, k, v)
    batch, heads, tq, d = q.shape
    tk = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    kernel, rows, shared = _kernel("attention_forward", dtype, d)
    out = cp.empty_like(q)
    lse = cp.empty((batch, heads, tq), dtype=dtype)
    _launch(kernel, (batch * heads, _tile_count(tq, LANES * rows)),
            (q, k, v, out, lse, cudasource.int32(tq), cudasource.int32(tk),
             cudasource.int32(bool(causal)), cudasource.scalar(scale, dtype)), shared)
    return out, lse


def backward(q, k, v, out, lse, grad_out, causal=False, mask=None, scale=None):
    """(dq, dk, dv) for the gradient grad_out of the output, from the forward's out and
    lse."""
    if not _runs_here(q, k, v, mask):
        return reference.backward(q, k, v, out, lse, grad_out, causal=causal, mask=mask,
                                  scale=scale)
    cp = backend.cupy()
    dtype = cudasource.check("attention", q, k, v, out, lse, grad_out)
    q, k, v, out, lse, grad_out = _prepared(q, k, v, out, lse, grad_out)
    batch, heads, tq, d = q.shape
    tk = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    delta = cp.empty((batch, heads, tq), dtype=dtype)
    n = batch * heads * tq
    kernel, _, _ = _kernel("attention_row_dot", dtype, d)
    _launch(kernel, (_tile_count(n, THREADS // 32),),  # a warp a row
            (grad_out, out, delta, cudasource.int32(n)), 0)
    dq, dk, dv = cp.zeros_like(q), cp.empty_like(k), cp.empty_like(v)
    kernel, rows, shared = _kernel("attention_backward", dtype, d)
    _launch(kernel, (batch * heads, _tile_count(tk, LANES * rows)),
            (q, k, v, grad_out, lse, delta, dq, dk, dv, cudasource.int32(tq),
             cudasource.int32(tk), cudasource.int32(bool(causal)),
             cudasource.scalar(scale, dtype)), shared)
    return dq, dk, dv
