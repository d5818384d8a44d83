"""Building tensors from pieces and pieces from tensors, as NumPy spells it: the stacks
(hstack, vstack, dstack, column_stack), append, the splits (array_split, hsplit, vsplit,
dsplit), atleast_1d/2d/3d, roll, rot90, rollaxis, and the index tricks r_ and c_.

All are composed from shape.py's ops (concatenate, split, reshape, transpose, flip), so
their gradients, of any order, are those ops' own. Pieces that are not Tensors (arrays,
lists, scalars) join as constants beside the first Tensor.
"""
import numpy as np

from ..autograd import Tensor
from .elementwise import lift
from .reduce import normalize_axes
from .shape import concatenate, flip, moveaxis, reshape, split, transpose


def _tensors(pieces, op):
    pieces = list(pieces)
    like = next((p for p in pieces if isinstance(p, Tensor)), None)
    if like is None:
        raise TypeError(f"{op}: needs at least one Tensor among its pieces")
    return [lift(p, like) for p in pieces]


def _one_or_all(results):
    return results[0] if len(results) == 1 else tuple(results)


def atleast_1d(*xs):
    """Each tensor with at least one axis (a 0-d one becomes shape (1,)); one tensor for
    one argument, a tuple for several, as in NumPy."""
    return _one_or_all([reshape(x, (1,)) if x.ndim == 0 else x for x in xs])


def atleast_2d(*xs):
    """0-d to (1, 1), (n,) to (1, n)."""
    return _one_or_all([reshape(x, (1,) * (2 - x.ndim) + x.shape) if x.ndim < 2 else x
                        for x in xs])


def atleast_3d(*xs):
    """0-d to (1, 1, 1), (n,) to (1, n, 1), (m, n) to (m, n, 1)."""
    shapes = {0: lambda s: (1, 1, 1), 1: lambda s: (1,) + s + (1,), 2: lambda s: s + (1,)}
    return _one_or_all([reshape(x, shapes[x.ndim](x.shape)) if x.ndim < 3 else x
                        for x in xs])


def hstack(tensors):
    """Along axis 1, or axis 0 for vectors."""
    pieces = [atleast_1d(t) for t in _tensors(tensors, "hstack")]
    return concatenate(pieces, axis=0 if pieces[0].ndim == 1 else 1)


def vstack(tensors):
    """Along axis 0, vectors as rows."""
    return concatenate([atleast_2d(t) for t in _tensors(tensors, "vstack")], axis=0)


row_stack = vstack


def dstack(tensors):
    """Along axis 2 (depth)."""
    return concatenate([atleast_3d(t) for t in _tensors(tensors, "dstack")], axis=2)


def column_stack(tensors):
    """Vectors as columns, matrices as they are, along axis 1."""
    pieces = [reshape(t, (-1, 1)) if t.ndim < 2 else t
              for t in _tensors(tensors, "column_stack")]
    return concatenate(pieces, axis=1)


def append(x, values, axis=None):
    """x and values joined along axis; both flattened first where axis is None."""
    x, values = _tensors([x, values], "append")
    if axis is None:
        return concatenate([reshape(x, -1), reshape(values, -1)], axis=0)
    return concatenate([x, values], axis=axis)


def array_split(x, indices_or_sections, axis=0):
    """np.array_split: like split, but n sections need not be equal (the first ones are one
    longer)."""
    if not isinstance(indices_or_sections, (int, np.integer)):
        return split(x, indices_or_sections, axis)
    if indices_or_sections <= 0:
        raise ValueError(f"array_split: the number of sections must be positive, not "
                         f"{indices_or_sections}")
    n = x.shape[normalize_axes(axis, x.ndim, "array_split")[0]]
    size, extra = divmod(n, indices_or_sections)
    lengths = [size + 1] * extra + [size] * (indices_or_sections - extra)
    return split(x, np.cumsum(lengths)[:-1].tolist(), axis)


def _split_along(x, indices_or_sections, axis, op, min_ndim):
    if x.ndim < min_ndim:
        raise ValueError(f"{op}: needs at least {min_ndim} dimensions, not shape {x.shape}")
    return split(x, indices_or_sections, axis)


def hsplit(x, indices_or_sections):
    """split along axis 1, or axis 0 for vectors."""
    return _split_along(x, indices_or_sections, 1 if x.ndim > 1 else 0, "hsplit", 1)


def vsplit(x, indices_or_sections):
    return _split_along(x, indices_or_sections, 0, "vsplit", 2)


def dsplit(x, indices_or_sections):
    return _split_along(x, indices_or_sections, 2, "dsplit", 3)


def roll(x, shift, axis=None):
    """Entries shifted along axes, those pushed off the end coming back at the start; the
    axis flattened where axis is None. Two slices concatenated per axis."""
    if axis is None:
        return reshape(roll(reshape(x, -1), shift, 0), x.shape)
    shifts, axes = np.broadcast_arrays(np.atleast_1d(shift), np.atleast_1d(axis))
    total = {}
    for s, a in zip(shifts.tolist(), axes.tolist()):
        a = normalize_axes(a, x.ndim, "roll")[0]
        total[a] = total.get(a, 0) + s
    for a, s in total.items():
        n = x.shape[a]
        s = s % n if n else 0
        if s:
            lead = (slice(None),) * a
            x = concatenate([x[lead + (slice(n - s, None),)], x[lead + (slice(0, n - s),)]],
                            axis=a)
    return x


def rot90(x, k=1, axes=(0, 1)):
    """Rotated by 90 degrees k times in the plane of `axes`, from the first towards the
    second (np.rot90): flips and a transpose."""
    if len(axes) != 2:
        raise ValueError(f"rot90: axes must name 2 axes, not {axes}")
    if x.ndim < 2:
        raise ValueError(f"rot90: needs at least 2 dimensions, not shape {x.shape}")
    a, b = (normalize_axes(ax, x.ndim, "rot90")[0] for ax in axes)
    if a == b:
        raise ValueError(f"rot90: axes {axes} name the same axis")
    k %= 4
    if k == 0:
        return x
    if k == 2:
        return flip(flip(x, a), b)
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    return transpose(flip(x, b), order) if k == 1 else flip(transpose(x, order), b)


def rollaxis(x, axis, start=0):
    """Axis `axis` moved to before position `start` (np.rollaxis; moveaxis is clearer)."""
    axis = normalize_axes(axis, x.ndim, "rollaxis")[0]
    given, start = start, start + x.ndim if start < 0 else start
    if not 0 <= start <= x.ndim:
        raise np.exceptions.AxisError(f"rollaxis: start {given} is out of range for a "
                                      f"tensor with {x.ndim} dimensions")
    if axis < start:
        start -= 1
    return moveaxis(x, axis, start)


class _Concatenator:
    """mg.r_ and mg.c_, NumPy's index tricks: `mg.r_[t, 0:3, [5, 6]]` concatenates Tensors,
    arrays, scalars and slices (an arange, or a linspace where the step is imaginary:
    `0:1:5j`); a first string 'axis' or 'axis,ndmin[,trans1d]' sets how. The rules and the
    dtype promotion are NumPy's; everything but the Tensors joins as a constant."""

    def __init__(self, axis, ndmin, trans1d):
        self.axis, self.ndmin, self.trans1d = axis, ndmin, trans1d

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d = self.axis, self.ndmin, self.trans1d
        pieces, dtypes = [], []
        for i, item in enumerate(key):
            if isinstance(item, str):
                if i:
                    raise ValueError("r_/c_: a directive string must be the first entry")
                if item in ("r", "c"):
                    raise NotImplementedError("r_/c_: 'r' and 'c' make np.matrix objects, "
                                              "which minigen does not have")
                try:
                    numbers = [int(v) for v in item.split(",")]
                except ValueError:
                    raise ValueError(f"r_/c_: unknown directive {item!r}") from None
                axis = numbers[0]
                if len(numbers) > 1:
                    ndmin = numbers[1]
                if len(numbers) > 2:
                    trans1d = numbers[2]
                continue
            if isinstance(item, slice):
                piece = _slice_values(item)
                if ndmin > 1:
                    piece = np.array(piece, ndmin=ndmin)
                    if trans1d != -1:
                        piece = piece.swapaxes(-1, trans1d)
                dtypes.append(piece.dtype)
            elif isinstance(item, (int, float, bool, complex, np.generic)):
                piece = item
                dtypes.append(item)
            else:
                piece = _expand(item, ndmin, trans1d)
                dtypes.append(piece.dtype)
            pieces.append(piece)
        if not pieces:
            raise ValueError("r_/c_: nothing to concatenate")
        dtype = np.result_type(*dtypes)
        like = next((p for p in pieces if isinstance(p, Tensor)), None)
        if like is None:
            like = Tensor(np.array(pieces[0], ndmin=ndmin, dtype=dtype))
        tensors = []
        for piece in pieces:
            if not isinstance(piece, Tensor):
                piece = lift(np.array(piece, ndmin=ndmin, dtype=dtype), like)
            tensors.append(piece.astype(dtype))
        return concatenate(tensors, axis=axis)


def _slice_values(item):
    start = 0 if item.start is None else item.start
    step = 1 if item.step is None else item.step
    if isinstance(step, (complex, np.complexfloating)):
        return np.linspace(start, item.stop, num=int(abs(step)))
    return np.arange(start, item.stop, step)


def _expand(item, ndmin, trans1d):
    """An entry with at least ndmin axes, its own axes placed at trans1d (NumPy's rule)."""
    item_ndim = item.ndim if isinstance(item, Tensor) else np.ndim(item)
    if isinstance(item, Tensor):
        piece = reshape(item, (1,) * (ndmin - item.ndim) + item.shape) if item_ndim < ndmin \
            else item
    else:
        piece = np.array(item, ndmin=ndmin)
    if trans1d != -1 and item_ndim < ndmin:
        k2, k1 = ndmin - item_ndim, trans1d
        if k1 < 0:
            k1 += k2 + 1
        default = list(range(ndmin))
        order = default[:k1] + default[k2:] + default[k1:k2]
        piece = transpose(piece, order) if isinstance(piece, Tensor) else piece.transpose(order)
    return piece


r_ = _Concatenator(0, ndmin=1, trans1d=-1)
c_ = _Concatenator(-1, ndmin=2, trans1d=0)
