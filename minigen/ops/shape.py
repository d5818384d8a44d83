"""Ops that move values without changing them: reshape, transpose, broadcast, indexing,
concatenation, padding, flipping, sorting, and the dtype cast."""
import numpy as np

from .. import backend
from ..autograd import Function, Tensor
from .elementwise import where
from .reduce import normalize_axes


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.inputs[0].shape)


class Transpose(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(tuple(np.argsort(ctx.axes)))


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, x, shape):
        return backend.xp_of(x).broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine sums the gradient back down to the input's shape


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, key):
        ctx.key = key
        return x[key]

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, key=ctx.key, shape=ctx.inputs[0].shape)


class IndexAdd(Function):
    """zeros(shape) with g added at `key`; repeated indices add up. The adjoint of x[key]."""

    @staticmethod
    def forward(ctx, g, key, shape):
        ctx.key = key
        out = backend.xp_of(g).zeros(shape, dtype=g.dtype)
        if _is_basic(key):
            out[key] = g  # a basic index never repeats an element
        else:
            backend.index_add(out, key, g)
        return out

    @staticmethod
    def backward(ctx, gg):
        return GetItem.apply(gg, key=ctx.key)


class Concatenate(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        return backend.xp_of(xs[0]).concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        ends = np.cumsum([x.shape[ctx.axis] for x in ctx.inputs])
        lead = (slice(None),) * ctx.axis
        return tuple(g[lead + (slice(end - x.shape[ctx.axis], end),)]
                     for x, end in zip(ctx.inputs, ends))


class Pad(Function):
    @staticmethod
    def forward(ctx, x, pad_width, value):
        ctx.pad_width = pad_width
        return backend.xp_of(x).pad(x, pad_width, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[tuple(slice(lo, n - hi) for (lo, hi), n in zip(ctx.pad_width, g.shape))]


class Flip(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return backend.xp_of(x).flip(x, axis=axes)

    @staticmethod
    def backward(ctx, g):
        return Flip.apply(g, axes=ctx.axes)


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.inputs[0].dtype)


def _is_basic(key):
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice, np.integer))
               for k in key)


def _index_key(key, x):
    """A getitem key as a tuple of raw indices; boolean masks become integer arrays."""
    key = key if isinstance(key, tuple) else (key,)
    xp = backend.xp_of(x.data)
    out = []
    for k in key:
        if isinstance(k, Tensor):
            k = k.data
        if isinstance(k, (list, np.ndarray)) or hasattr(k, "__cuda_array_interface__"):
            k = xp.asarray(k)
            if k.dtype == bool:
                # a 0-d mask has no nonzero(); as in NumPy it adds an axis of length 1 or 0
                out.extend(k.nonzero() if k.ndim else (k,))
                continue
            if k.dtype.kind not in "iu":
                raise IndexError(f"getitem: index arrays must be integer or boolean, "
                                 f"not {k.dtype}")
        out.append(k)
    return tuple(out)


def getitem(x, key):
    return GetItem.apply(x, key=_index_key(key, x))


def reshape(x, *shape):
    shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
    shape = tuple(int(n) for n in shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


def transpose(x, *axes):
    axes = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
    axes = tuple(range(x.ndim))[::-1] if not axes else tuple(int(a) for a in axes)
    if normalize_axes(axes, x.ndim, "transpose") != tuple(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} "
                         f"axes of a tensor of shape {x.shape}")
    return Transpose.apply(x, axes=tuple(a % x.ndim for a in axes))


def swapaxes(x, axis1, axis2):
    a, b = (normalize_axes(ax, x.ndim, "swapaxes")[0] for ax in (axis1, axis2))
    axes = list(range(x.ndim))
    axes[a], axes[b] = b, a
    return transpose(x, axes)


def moveaxis(x, source, destination):
    source = [source] if isinstance(source, (int, np.integer)) else list(source)
    destination = [destination] if isinstance(destination, (int, np.integer)) else destination
    if len(source) != len(destination):
        raise ValueError("moveaxis: source and destination need the same number of axes")
    src = [normalize_axes(a, x.ndim, "moveaxis")[0] for a in source]
    dst = [normalize_axes(a, x.ndim, "moveaxis")[0] for a in destination]
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def expand_dims(x, axis):
    axes = normalize_axes(axis, x.ndim + (1 if isinstance(axis, int) else len(axis)),
                          "expand_dims")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x, axis=None):
    if axis is None:
        return reshape(x, [n for n in x.shape if n != 1])
    axes = normalize_axes(axis, x.ndim, "squeeze")
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 "
                             f"(shape {x.shape})")
    return reshape(x, [n for i, n in enumerate(x.shape) if i not in axes])


def broadcast_to(x, shape):
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def concatenate(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    axis = normalize_axes(axis, tensors[0].ndim, "concatenate")[0]
    return Concatenate.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    return concatenate([expand_dims(t, axis) for t in tensors], axis=axis)


def split(x, indices_or_sections, axis=0):
    """A list of pieces along `axis`, as np.split: a number of equal sections or cut points."""
    axis = normalize_axes(axis, x.ndim, "split")[0]
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of length {n} does not divide into "
                             f"{indices_or_sections} equal sections")
        step = n // indices_or_sections
        cuts = list(range(step, n, step))
    else:
        cuts = list(indices_or_sections)
    bounds = zip([0] + cuts, cuts + [n])
    lead = (slice(None),) * axis
    return [x[lead + (slice(lo, hi),)] for lo, hi in bounds]


def pad(x, pad_width, value=0.0):
    """Constant padding; pad_width as np.pad: an int, a (before, after) pair, or one per axis."""
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: negative width in {pad_width}")
    if x.ndim == 0:
        return x  # no axis to pad, as np.pad
    return Pad.apply(x, pad_width=tuple(map(tuple, widths.tolist())), value=value)


def flip(x, axis=None):
    return Flip.apply(x, axes=normalize_axes(axis, x.ndim, "flip"))


def take(x, indices, axis=None):
    if axis is None:
        return getitem(reshape(x, -1), indices)
    axis = normalize_axes(axis, x.ndim, "take")[0]
    return getitem(x, (slice(None),) * axis + (indices,))


def take_along_axis(x, indices, axis=-1):
    """out[..., i, ...] = x[..., indices[..., i, ...], ...] along `axis` (as NumPy)."""
    axis = normalize_axes(axis, x.ndim, "take_along_axis")[0]
    idx = indices.data if isinstance(indices, Tensor) else indices
    xp = backend.xp_of(x.data)
    idx = xp.asarray(idx)
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices have {idx.ndim} dimensions, the tensor "
                         f"{x.ndim}")
    key = []
    for d in range(x.ndim):
        if d == axis:
            key.append(idx)
        else:
            shape = [1] * x.ndim
            shape[d] = x.shape[d]  # broadcasts against idx, as in NumPy
            key.append(xp.arange(x.shape[d]).reshape(shape))
    return GetItem.apply(x, key=tuple(key))


def repeat(x, repeats, axis=None):
    """Each element repeated (np.repeat), as indexing, so the gradient is a scatter-add."""
    if axis is None:
        x, axis = reshape(x, -1), 0
    axis = normalize_axes(axis, x.ndim, "repeat")[0]
    index = np.repeat(np.arange(x.shape[axis]), repeats)
    return take(x, backend.to_device(index, x.device), axis)


def tile(x, reps):
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    ndim = max(len(reps), x.ndim)
    reps = (1,) * (ndim - len(reps)) + reps
    x = reshape(x, (1,) * (ndim - x.ndim) + x.shape)
    spread = broadcast_to(reshape(x, [d for n in x.shape for d in (1, n)]),
                          [d for r, n in zip(reps, x.shape) for d in (r, n)])
    return reshape(spread, [r * n for r, n in zip(reps, x.shape)])


def sort(x, axis=-1):
    """Sorted values (differentiable: the gradient follows each value to where it came from)."""
    axis = normalize_axes(axis, x.ndim, "sort")[0]
    order = backend.xp_of(x.data).argsort(x.data, axis=axis, kind="stable")
    return take_along_axis(x, order, axis)


def partition(x, kth, axis=-1):
    """np.partition: the kth value(s) where sorting would put them, smaller ones before and
    larger ones after, in no particular order; differentiable as sort is."""
    if axis is None:
        x, axis = reshape(x, -1), 0
    axis = normalize_axes(axis, x.ndim, "partition")[0]
    order = backend.xp_of(x.data).argpartition(x.data, kth, axis=axis)
    return take_along_axis(x, order, axis)


def argpartition(x, kth, axis=-1):
    """The indices partition would take (not differentiable)."""
    return Tensor._make(backend.xp_of(x.data).argpartition(x.data, kth, axis=axis), False,
                        None)


def argsort(x, axis=-1):
    return Tensor._make(backend.xp_of(x.data).argsort(x.data, axis=axis, kind="stable"),
                        False, None)


def astype(x, dtype):
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    return Cast.apply(x, dtype=dtype)


def ravel(x):
    """The entries as one axis, in C order (np.ravel; flatten is the same)."""
    return reshape(x, -1)


flatten = ravel


def _diagonal_indices(n, m, offset, device):
    """Row and column indices of the `offset` diagonal of an n x m matrix."""
    length = max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))
    i = np.arange(length)
    rows, cols = (i, i + offset) if offset >= 0 else (i - offset, i)
    return backend.to_device(rows, device), backend.to_device(cols, device)


def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal of the (axis1, axis2) planes as a new last axis (np.diagonal), by
    indexing: its gradient puts g back on the diagonal."""
    a1, a2 = (normalize_axes(a, x.ndim, "diagonal")[0] for a in (axis1, axis2))
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 are both axis {a1}")
    planes = moveaxis(x, (a1, a2), (-2, -1))
    rows, cols = _diagonal_indices(*planes.shape[-2:], offset, x.device)
    return GetItem.apply(planes, key=(Ellipsis, rows, cols))


def diag(v, k=0):
    """A square matrix with the vector v on its k-th diagonal, or the k-th diagonal of a
    matrix v (np.diag)."""
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError(f"diag: needs a vector or a matrix, not shape {v.shape}")
    n = v.shape[0] + abs(k)
    return IndexAdd.apply(v, key=_diagonal_indices(n, n, k, v.device), shape=(n, n))


def tril(x, k=0):
    """Zeros above the k-th diagonal of the last two axes (np.tril); gradient likewise."""
    return where(backend.xp_of(x.data).tri(*x.shape[-2:], k=k, dtype=bool), x, 0)


def triu(x, k=0):
    """Zeros below the k-th diagonal of the last two axes (np.triu)."""
    return where(~backend.xp_of(x.data).tri(*x.shape[-2:], k=k - 1, dtype=bool), x, 0)
