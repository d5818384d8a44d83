"""Softmax attention on the CPU, FlashAttention-style: an online softmax over key blocks.

Queries go in blocks of BLOCK_Q, and for each, keys in blocks of BLOCK_K. A block of scores
is computed, its row maximum folded into a running maximum m, and what was accumulated so
far rescaled by exp(m_old - m_new) (Milakov and Gimelshein, 2018; Dao et al., 2022):

    acc <- acc * exp(m_old - m_new) + exp(S - m_new) [V, 1]

The column of ones appended to V makes the running sum of exp(S - m) come out of the same
matrix product as the weighted values. The full (T_q, T_k) matrix never exists: memory per
head is BLOCK_Q * BLOCK_K plus O(T d). The backward pass recomputes each block's weights
from the saved log-sum-exp, P = exp(S - lse), again with the subtraction folded into the
product ([q scale, -lse] [k, 1]^T = S - lse), and likewise dP - rowsum(g * out) as
[g, -rowsum(g * out)] [v, 1]^T. Blocks that the causal pattern or the mask rule out
entirely are skipped. Scores are kept transposed, (keys, queries), because NumPy takes the
maximum over the second-to-last axis (adding whole rows) about twice as fast as along the
last one.

Why NumPy's BLAS in Python threads, not Numba. Measured on the (shared, so +-30% noisy)
development machine, 2 cores, K4's larger shape (8, 4, 1024, 32), causal, float32, medians;
PyTorch's scaled_dot_product_attention takes 90-110 ms for forward and backward:
- blocked BLAS products and NumPy's vectorised exp on all 32 heads in one thread: 175 ms.
  NumPy's elementwise work (max, exp, products) runs on one core, and OpenBLAS's own
  threads only share out the matrix products, which are small at d = 32;
- the same split over two Python threads, half of the heads each, BLAS held to one thread
  (NumPy releases the GIL in both): 90 ms in a first version, 100 ms for this file (10.9 ms
  against PyTorch's 11.3 at (8, 4, 256, 32)). Without holding BLAS to one thread the
  threads' BLAS pools fight over the two cores: 220 ms;
- a Numba `@njit(parallel=True)` forward, one query row at a time: 64 ms, against 31-37 ms
  for the forward here. Without Intel's SVML (absent here) Numba's exp is a scalar call,
  about 3 ns an element against NumPy's 0.5 ns, and its loops reach a fraction of BLAS's
  speed for the products at d = 32.
The threads (kernels/parallel.py) are as many as BLAS itself is set to use; each
takes an equal share of the batch, or of the heads where the batch is smaller.

The same signatures as reference.py.
"""
import math

import numpy as np

from .. import parallel

# of 64, 96, 128 and 256 each way, the fastest for K4: a float32 block of scores for the 16
# heads one thread takes there (512 KB) stays in that core's L2 cache
BLOCK_Q = 64
BLOCK_K = 128


def _in_parallel(task, q, k, v):
    """task(piece) for (batch slice, head slice) pieces that cover all heads, one piece per
    thread (more, smaller pieces measured slower, even with a core busy elsewhere)."""
    batch, heads, tq, d = q.shape
    work = batch * heads * tq * k.shape[2] * (d + v.shape[3])
    parallel.run(task, _split(batch, heads, parallel.threads(work)), work)


# a piece's heads go through the blocks CHUNK_HEADS at a time (whole batch entries) when
# there are several key blocks: at (100, 4, 784, 16), 200 heads a thread, a float32 block
# of scores for all of them is 6.5 MB and each pass over it went to memory; in runs of 32
# heads forward and backward took 0.43 s instead of 0.50. With one key block (T <= 128)
# the Python calls of the extra runs cost more than they save (7.6 ms -> 9.0 at T = 64).
CHUNK_HEADS = 32


def _chunks(piece, batch, heads, tk):
    """The piece as runs of about CHUNK_HEADS heads where the keys span several blocks."""
    rows, cols = piece
    if tk <= BLOCK_K or cols != slice(None):
        return [piece]
    start, stop, _ = rows.indices(batch)
    step = max(1, CHUNK_HEADS // heads)
    return [(slice(a, min(a + step, stop)), cols) for a in range(start, stop, step)]


def _split(batch, heads, n):
    """Up to n (batch slice, head slice) pieces of about equal size."""
    axis, size = (0, batch) if batch >= n or batch >= heads else (1, heads)
    cuts = np.linspace(0, size, min(n, size) + 1).round().astype(int)
    whole = slice(None)
    return [(slice(a, b), whole) if axis == 0 else (whole, slice(a, b))
            for a, b in zip(cuts[:-1], cuts[1:])]


def _mask4(mask, shape):
    """The mask as a 4-d view broadcast over (T_q, T_k) but not over batch and heads, whose
    size-1 axes are kept so that a piece of the batch can slice it without a copy."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
    return np.broadcast_to(mask, mask.shape[:2] + tuple(shape[2:]))


def _piece_of(mask, piece):
    if mask is None:
        return None
    return mask[tuple(s if n > 1 else slice(None) for s, n in zip(piece, mask.shape[:2]))]


def _block_bias(mask, causal, rows, cols, dtype):
    """What to add to a transposed (keys, queries) block of scores: None (nothing is
    masked), False (everything is: skip the block) or 0 / -inf of shape (.., keys, queries)."""
    allowed = None
    if causal and cols.stop - 1 > rows.start:
        allowed = np.arange(cols.start, cols.stop)[:, None] <= np.arange(rows.start, rows.stop)
    if mask is not None:
        block = mask[:, :, rows, cols].swapaxes(-1, -2)
        allowed = block if allowed is None else block & allowed
    if allowed is None:
        return None
    if not allowed.any():
        return False
    if allowed.all():
        return None
    return np.where(allowed, dtype.type(0), dtype.type(-np.inf))


def _key_blocks(tk, rows, causal):
    stop = min(tk, rows.stop) if causal else tk
    return [slice(j, min(j + BLOCK_K, stop)) for j in range(0, stop, BLOCK_K)]


def _query_blocks(tq):
    return [slice(i, min(i + BLOCK_Q, tq)) for i in range(0, tq, BLOCK_Q)]


def _with_column(a, value):
    """a with one more column on its last axis, filled with `value` (a scalar or (.., T))."""
    col = np.broadcast_to(np.asarray(value, dtype=a.dtype)[..., None], a.shape[:-1] + (1,))
    return np.concatenate([a, col], axis=-1)


def _forward_piece(q, k, v, mask, causal, scale, out, lse):
    tk, dv = k.shape[2], v.shape[3]
    qs_t = (q * q.dtype.type(scale)).swapaxes(-1, -2)
    v1 = _with_column(v, 1)
    for rows in _query_blocks(q.shape[2]):
        acc = m = None
        for cols in _key_blocks(tk, rows, causal):
            bias = _block_bias(mask, causal, rows, cols, q.dtype)
            if bias is False:
                continue
            s = np.matmul(k[:, :, cols], qs_t[:, :, :, rows])
            if bias is not None:
                s += bias
            m_new = s.max(axis=-2, keepdims=True)
            if m is not None:
                np.maximum(m, m_new, out=m_new)
            # a query with no allowed key so far has m = -inf: subtract 0 instead of -inf
            shift = m_new if mask is None else np.where(m_new == -np.inf, 0, m_new)
            s -= shift
            np.exp(s, out=s)
            part = np.matmul(s.swapaxes(-1, -2), v1[:, :, cols])
            if acc is None:
                acc = part
            else:
                acc *= np.exp(m - shift).swapaxes(-1, -2)
                acc += part
            m = m_new
        if acc is None:
            out[:, :, rows] = 0
            lse[:, :, rows] = -np.inf
            continue
        total = acc[..., dv:]
        seen = total > 0
        safe = np.where(seen, total, 1)
        np.divide(acc[..., :dv], safe, out=out[:, :, rows])
        lse[:, :, rows] = np.where(seen, m.swapaxes(-1, -2) + np.log(safe), -np.inf)[..., 0]


def _backward_piece(q, k, v, out, lse, g, mask, causal, scale, dq, dk, dv):
    tk = k.shape[2]
    qs = q * q.dtype.type(scale)
    qs_lse_t = _with_column(qs, -np.where(np.isfinite(lse), lse, 0)).swapaxes(-1, -2)
    k1 = _with_column(k, 1)
    g_d_t = _with_column(g, -(g * out).sum(axis=-1)).swapaxes(-1, -2)
    v1 = _with_column(v, 1)
    for rows in _query_blocks(q.shape[2]):
        for cols in _key_blocks(tk, rows, causal):
            bias = _block_bias(mask, causal, rows, cols, q.dtype)
            if bias is False:
                continue
            p = np.matmul(k1[:, :, cols], qs_lse_t[:, :, :, rows])  # S^T - lse
            if bias is not None:
                p += bias
            np.exp(p, out=p)
            dv[:, :, cols] += np.matmul(p, g[:, :, rows])
            ds = np.matmul(v1[:, :, cols], g_d_t[:, :, :, rows])  # dP^T - rowsum(g * out)
            ds *= p
            dk[:, :, cols] += np.matmul(ds, qs[:, :, rows])
            dq[:, :, rows] += np.matmul(ds.swapaxes(-1, -2), k[:, :, cols])
    dq *= q.dtype.type(scale)


def _default_scale(q, scale):
    return 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale


def forward(q, k, v, causal=False, mask=None, scale=None):
    """(out (B, H, T_q, d_v), lse (B, H, T_q)); scale defaults to 1 / sqrt(d)."""
    # a Transformer's q, k and v are strided views of one (N, T, 3, H, d) array: with
    # contiguous copies its attention at (100, 4, 784, 16) took 0.48 s, not 0.59
    q, k, v = (np.ascontiguousarray(a) for a in (q, k, v))
    batch, heads, tq, _ = q.shape
    scale = _default_scale(q, scale)
    mask = _mask4(mask, (batch, heads, tq, k.shape[2]))
    out = np.empty((batch, heads, tq, v.shape[3]), dtype=q.dtype)
    lse = np.empty((batch, heads, tq), dtype=q.dtype)

    def task(piece):
        for c in _chunks(piece, batch, heads, k.shape[2]):
            _forward_piece(q[c], k[c], v[c], _piece_of(mask, c), causal, scale, out[c],
                           lse[c])

    _in_parallel(task, q, k, v)
    return out, lse


def backward(q, k, v, out, lse, grad_out, causal=False, mask=None, scale=None):
    """(dq, dk, dv) for the gradient grad_out of the output, from the forward's out and lse."""
    q, k, v, out, grad_out = (np.ascontiguousarray(a) for a in (q, k, v, out, grad_out))
    batch, heads, tq, _ = q.shape
    scale = _default_scale(q, scale)
    mask = _mask4(mask, (batch, heads, tq, k.shape[2]))
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)

    def task(piece):
        for c in _chunks(piece, batch, heads, k.shape[2]):
            _backward_piece(q[c], k[c], v[c], out[c], lse[c], grad_out[c], _piece_of(mask, c),
                            causal, scale, dq[c], dk[c], dv[c])

    _in_parallel(task, q, k, v)
    return dq, dk, dv
