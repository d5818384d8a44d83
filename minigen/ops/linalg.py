"""Products: matmul (batched, broadcasting), dot, einsum, and NumPy's others (tensordot,
inner, outer, kron, cross, trace), composed from matmul, einsum and the shape ops."""
import math
import string

import numpy as np

from .. import backend
from ..autograd import Function
from ..kernels import parallel
from .elementwise import multiply
from .reduce import normalize_axes, sum
from .shape import GetItem, diagonal, moveaxis, reshape, stack, transpose


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
    if a.ndim < 2 or not backend.is_host(a) or a.size * b.size < ONE_THREAD_WORK:
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
        # the gradients' products go where the forward's do (_product), not to OpenBLAS's
        # threads
        if need_a:
            ga = _product(g2, b2.swapaxes(-1, -2))
            if a.ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if need_b:
            gb = _product(a2.swapaxes(-1, -2), g2)
            if b.ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb


class Einsum(Function):
    @staticmethod
    def forward(ctx, *operands, inputs, output, optimize=False):
        ctx.subscripts, ctx.optimize = (inputs, output), optimize
        xp = backend.xp_of(operands[0])
        return xp.asarray(xp.einsum(",".join(inputs) + "->" + output, *operands,
                                    optimize=optimize))

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
                              inputs=[output] + others, output=kept, optimize=ctx.optimize)
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
    """np.dot: a product of scalars for 0-d, matmul for vectors and matrices, and for more
    dimensions the sum over the last axis of a and the second-to-last of b."""
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return Matmul.apply(a, b)
    return tensordot(a, b, ([-1], [0 if b.ndim == 1 else -2]))


def tensordot(a, b, axes=2):
    """Sum over the given axes of a and b (np.tensordot; axes an int n for the last n of a
    and the first n of b, or two sequences), as one matrix product: the summed axes are
    moved together and flattened, the free ones kept in order."""
    if isinstance(axes, (int, np.integer)):
        if axes < 0:
            raise ValueError(f"tensordot: axes must be non-negative, not {axes}")
        a_axes, b_axes = list(range(a.ndim - axes, a.ndim)), list(range(axes))
    else:
        a_axes, b_axes = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
    if len(a_axes) != len(b_axes):
        raise ValueError(f"tensordot: {len(a_axes)} axes of a against {len(b_axes)} of b")
    a_axes = [normalize_axes(x, a.ndim, "tensordot")[0] for x in a_axes]
    b_axes = [normalize_axes(x, b.ndim, "tensordot")[0] for x in b_axes]
    if [a.shape[i] for i in a_axes] != [b.shape[i] for i in b_axes]:
        raise ValueError(f"tensordot: axes {a_axes} of shape {a.shape} do not match axes "
                         f"{b_axes} of shape {b.shape}")
    a_free = [i for i in range(a.ndim) if i not in a_axes]
    b_free = [i for i in range(b.ndim) if i not in b_axes]
    inner_size = math.prod(a.shape[i] for i in a_axes)
    a2 = reshape(transpose(a, a_free + a_axes), (-1, inner_size))
    b2 = reshape(transpose(b, b_axes + b_free), (inner_size, -1))
    return reshape(Matmul.apply(a2, b2),
                   [a.shape[i] for i in a_free] + [b.shape[i] for i in b_free])


def inner(a, b):
    """Sum over the last axes of a and b (np.inner)."""
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return tensordot(a, b, ([-1], [-1]))


def outer(a, b):
    """a.ravel()[i] * b.ravel()[j] (np.outer)."""
    return multiply(reshape(a, (-1, 1)), reshape(b, (1, -1)))


def kron(a, b):
    """The Kronecker product (np.kron): every entry of a times all of b, as one broadcast
    product of a and b with their axes interleaved."""
    ndim = max(a.ndim, b.ndim)
    a_shape = (1,) * (ndim - a.ndim) + a.shape
    b_shape = (1,) * (ndim - b.ndim) + b.shape
    spread = multiply(reshape(a, [d for n in a_shape for d in (n, 1)]),
                      reshape(b, [d for n in b_shape for d in (1, n)]))
    return reshape(spread, [m * n for m, n in zip(a_shape, b_shape)])


def trace(x, offset=0, axis1=0, axis2=1):
    """The sum of a diagonal (np.trace)."""
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """The cross product of 3-vectors along the given axes, broadcast (np.cross)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(a, axisa, -1), moveaxis(b, axisb, -1)
    if a.shape[-1] != 3 or b.shape[-1] != 3:
        raise ValueError(f"cross: needs vectors of 3 components, got {a.shape[-1]} and "
                         f"{b.shape[-1]} (NumPy 2 deprecates 2-component ones)")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    c = stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return moveaxis(c, -1, axisc)


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


def _distinct_letters(x, subs):
    """x with every letter repeated within its subscripts (a trace or a diagonal, 'ii' or
    'iij') taken once, as indexing: each axis is indexed by an arange of its letter,
    shaped so that axes of one letter share it. Returns the indexed x and its letters."""
    letters = "".join(dict.fromkeys(subs))
    if len(letters) == len(subs):
        return x, subs
    sizes = {}
    for c, n in zip(subs, x.shape):
        if sizes.setdefault(c, n) != n:
            raise ValueError(f"einsum: subscript {c!r} of {subs!r} stands for axes of sizes "
                             f"{sizes[c]} and {n} (shape {x.shape})")
    key = []
    for c in subs:
        shape = [1] * len(letters)
        shape[letters.index(c)] = sizes[c]
        key.append(backend.to_device(np.arange(sizes[c]).reshape(shape), x.device))
    return GetItem.apply(x, key=tuple(key)), letters


def einsum(subscripts, *operands, optimize=False):
    """np.einsum over Tensors, differentiable in every operand; a letter repeated within
    one operand takes its diagonal ('ii->i', 'ii' the trace). `optimize` is passed to
    np.einsum for the forward and backward contractions."""
    inputs, output = _parse_einsum(subscripts, [x.shape for x in operands])
    pairs = [_distinct_letters(x, subs) for x, subs in zip(operands, inputs)]
    return Einsum.apply(*(x for x, _ in pairs), inputs=[subs for _, subs in pairs],
                        output=output, optimize=optimize)
