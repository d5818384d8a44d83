"""Products: matmul (batched, broadcasting), dot, and einsum."""
import string

from .. import backend
from ..autograd import Function
from .elementwise import multiply


class Matmul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs at least 1-d operands; use * for scalars")
        return a @ b

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
