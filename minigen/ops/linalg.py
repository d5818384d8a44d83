"""Products: matmul (batched, broadcasting), dot, and einsum."""
import math
import string

import numpy as np

from .. import backend
from ..autograd import Function
from ..kernels import parallel
from .elementwise import multiply


# products of fewer multiply-adds are left to BLAS: holding it to one thread costs more
ONE_THREAD_WORK = 1 << 20


def _product(a, b):
    """a @ b, on the CPU never on OpenBLAS's own threads, which wait for each other at
    every product: a core busy elsewhere turns that wait into milliseconds. A product large
    enough for threads (kernels/parallel.py) is split by the rows of a (row i of a @ b needs
    only row i of a) over parallel's threads, BLAS held to one thread in each; a smaller one
    runs on the calling thread alone. Measured on the 2-core development machine under
    load, in one process, medians: (100, 512) @ (512, 512) took 10-37 ms on OpenBLAS's two
    threads, 2.5 ms split and 1.5-2.4 ms in PyTorch; (6400, 64) @ (64, 256) 12.7, 3.5 and
    11.1 ms; MADE's train step (M1), whose other products have 3.3M multiply-adds, 104-170
    ms with those on OpenBLAS's threads and 12-32 ms on one, against PyTorch's 18-41 ms."""
    # a.size * b.size bounds the multiply-adds from above: tiny products leave at once
    if a.ndim < 2 or not isinstance(a, np.ndarray) or a.size * b.size < ONE_THREAD_WORK:
        return a @ b
    rows = a.shape[-2]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    shape = batch + ((rows,) if b.ndim == 1 else (rows, b.shape[-1]))
    work = math.prod(shape) * a.shape[-1]
    n = min(parallel.threads(work), rows)
    if n < 2:
        if work < ONE_THREAD_WORK:
            return a @ b
        with parallel.one_blas_thread():
            return a @ b
    out = np.empty(shape, dtype=np.result_type(a, b))
    cuts = np.linspace(0, rows, n + 1).round().astype(int)
    pick = (lambda r: (Ellipsis, r)) if b.ndim == 1 else (lambda r: (Ellipsis, r, slice(None)))

    def task(r):
        np.matmul(a[..., r, :], b, out=out[pick(r)])

    parallel.run(task, [slice(i, j) for i, j in zip(cuts[:-1], cuts[1:])], work)
    return out


class Matmul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs at least 1-d operands; use * for scalars")
        return _product(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.inputs
        need_a, need_b = ctx.needs_input_grad
        # treat a vector as a 1-row (a) or 1-column (b) matrix, then undo it
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g2 = g.reshape(g.shape[:g.ndim - (a.ndim > 1) - (b.ndim > 1)]
                       + a2.shape[-2:-1] + b2.shape[-1:])
        ga = gb = None
        if need_a:
            ga = g2 @ b2.swapaxes(-1, -2)
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if need_b:
            gb = a2.swapaxes(-1, -2) @ g2
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb


class Einsum(Function):
    @staticmethod
    def forward(ctx, *operands, inputs, output):
        ctx.subscripts = inputs, output
        xp = backend.xp_of(operands[0])
        return xp.asarray(xp.einsum(",".join(inputs) + "->" + output, *operands))

    @staticmethod
    def backward(ctx, g):
        inputs, output = ctx.subscripts
        grads = []
        for i, (x, subs) in enumerate(zip(ctx.inputs, inputs)):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(inputs) if j != i]
            present = set(output).union(*others)
            # letters only this operand has were summed away: restore them by broadcasting
            kept = "".join(c for c in subs if c in present)
            gx = Einsum.apply(g, *(t for j, t in enumerate(ctx.inputs) if j != i),
                              inputs=[output] + others, output=kept)
            if kept != subs:
                # a '...' dim of size 1 in x may be wider in gx; the engine sums it back
                sizes = dict(zip(kept, gx.shape))
                gx = gx.reshape([sizes.get(c, 1) for c in subs]).broadcast_to(
                    [sizes.get(c, n) for c, n in zip(subs, x.shape)])
            grads.append(gx)
        return tuple(grads)


def matmul(a, b):
    return Matmul.apply(a, b)


def dot(a, b):
    """np.dot for vectors and matrices (a product of scalars for 0-d)."""
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.ndim > 2 or b.ndim > 2:
        raise ValueError(f"dot: operands of shapes {a.shape} and {b.shape}; for more than "
                         f"2 dimensions use matmul or einsum")
    return Matmul.apply(a, b)


def _parse_einsum(subscripts, shapes):
    """Explicit per-operand letters, with '...' spelled out as spare capital letters."""
    subscripts = subscripts.replace(" ", "")
    lhs, arrow, out = subscripts.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {len(terms)} operand subscripts for {len(shapes)} operands")
    spare = [c for c in string.ascii_uppercase if c not in subscripts]
    width = max([len(s) - (len(t.replace("...", "")))
                 for t, s in zip(terms, shapes) if "..." in t] or [0])
    ellipsis = "".join(spare[:width])
    spelled = []
    for t, shape in zip(terms, shapes):
        if "..." in t:
            n = len(shape) - len(t.replace("...", ""))
            t = t.replace("...", ellipsis[width - n:] if n else "")
        if len(t) != len(shape):
            raise ValueError(f"einsum: subscripts {t!r} for an operand of shape {shape}")
        if len(set(t)) != len(t):
            raise ValueError(f"einsum: repeated subscript within one operand ({t!r}: traces "
                             f"and diagonals) is not supported")
        spelled.append(t)
    if arrow:
        out = out.replace("...", ellipsis)
    else:
        letters = "".join(spelled)
        out = ellipsis + "".join(sorted(c for c in set(letters) - set(ellipsis)
                                        if letters.count(c) == 1))
    for c in out:
        if not any(c in t for t in spelled):
            raise ValueError(f"einsum: output subscript {c!r} appears in no operand")
    return spelled, out


def einsum(subscripts, *operands):
    """np.einsum over Tensors, differentiable in every operand (no repeated letters within
    one operand)."""
    inputs, output = _parse_einsum(subscripts, [x.shape for x in operands])
    return Einsum.apply(*operands, inputs=inputs, output=output)
