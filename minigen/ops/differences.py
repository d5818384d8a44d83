"""Finite differences along axes: diff and gradient (np.diff, np.gradient), composed from
slices and arithmetic, so they are differentiable in the values (the spacings given to
gradient are constants)."""
import numpy as np

from ..autograd import Tensor, is_float
from .elementwise import lift
from .reduce import normalize_axes
from .shape import broadcast_to, concatenate


def _along(axis):
    """A function giving the key x[..., s, ...] with the slice or index s on `axis`."""
    return lambda s: (slice(None),) * axis + (s,)


def diff(x, n=1, axis=-1, prepend=None, append=None):
    """The n-th difference along axis: out[i] = x[i + 1] - x[i], n times, after prepend
    and append (a scalar broadcast to one slice) are joined on."""
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, not {n}")
    if n == 0:
        return x  # as NumPy: prepend and append are not joined either
    axis = normalize_axes(axis, x.ndim, "diff")[0]
    pieces = []
    for extra in (prepend, x, append):
        if extra is None:
            continue
        extra = lift(extra, x)
        if extra.ndim == 0:
            extra = broadcast_to(extra, x.shape[:axis] + (1,) + x.shape[axis + 1:])
        pieces.append(extra)
    x = concatenate(pieces, axis=axis) if len(pieces) > 1 else x
    at = _along(axis)
    for _ in range(n):
        x = x[at(slice(1, None))] - x[at(slice(None, -1))]
    return x


def _spacings(varargs, x, axes):
    """Per axis: a scalar step, or the steps between given coordinates (NumPy's rule: a
    constant step where the coordinates are evenly spaced)."""
    if not varargs:
        return [1.0] * len(axes)
    varargs = [v.numpy() if isinstance(v, Tensor) else v for v in varargs]
    if len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        return [varargs[0]] * len(axes)
    if len(varargs) != len(axes):
        raise TypeError(f"gradient: {len(varargs)} spacings for {len(axes)} axes")
    spacings = []
    for coordinates, axis in zip(varargs, axes):
        coordinates = np.asarray(coordinates)
        if coordinates.ndim == 0:
            spacings.append(coordinates)
            continue
        if coordinates.ndim != 1 or len(coordinates) != x.shape[axis]:
            raise ValueError(f"gradient: coordinates along axis {axis} must be 1-d with "
                             f"{x.shape[axis]} entries, not shape {coordinates.shape}")
        steps = np.diff(coordinates.astype(np.float64)
                        if coordinates.dtype.kind in "iub" else coordinates)
        spacings.append(steps[0] if (steps == steps[0]).all() else steps)
    return spacings


def gradient(f, *varargs, axis=None, edge_order=1):
    """np.gradient: second-order central differences inside, one-sided differences of
    order edge_order (1 or 2) at the ends; uniform or coordinate spacings. One tensor for
    one axis, a tuple for several."""
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, not {edge_order}")
    if not is_float(f.dtype):
        f = f.astype(np.float64)
    axes = normalize_axes(axis, f.ndim, "gradient") if axis is not None else tuple(
        range(f.ndim))
    if axis is not None and not isinstance(axis, (int, np.integer)):
        axes = tuple(a % f.ndim for a in axis)  # in the order given
    outs = []
    for a, dx in zip(axes, _spacings(varargs, f, axes)):
        if f.shape[a] < edge_order + 1:
            raise ValueError(f"gradient: axis {a} has {f.shape[a]} entries; at least "
                             f"edge_order + 1 = {edge_order + 1} are needed")
        outs.append(_gradient_along(f, a, dx, edge_order))
    return outs[0] if len(outs) == 1 else tuple(outs)


def _gradient_along(f, axis, dx, edge_order):
    at = _along(axis)
    uniform = np.ndim(dx) == 0

    def coefficient(values):
        """Per-position coefficients as a constant shaped to broadcast along axis."""
        values = np.asarray(values, dtype=f.dtype)
        return lift(values.reshape((-1,) + (1,) * (f.ndim - axis - 1)), f)

    if uniform:
        inside = (f[at(slice(2, None))] - f[at(slice(None, -2))]) / (2.0 * float(dx))
    else:
        dx1, dx2 = dx[:-1], dx[1:]
        a = -dx2 / (dx1 * (dx1 + dx2))
        b = (dx2 - dx1) / (dx1 * dx2)
        c = dx1 / (dx2 * (dx1 + dx2))
        inside = (coefficient(a) * f[at(slice(None, -2))] + coefficient(b) * f[at(slice(1, -1))]
                  + coefficient(c) * f[at(slice(2, None))])
    first, last = at(slice(0, 1)), at(slice(-1, None))
    if edge_order == 1:
        d0, dn = (float(dx), float(dx)) if uniform else (float(dx[0]), float(dx[-1]))
        start = (f[at(slice(1, 2))] - f[first]) / d0
        end = (f[last] - f[at(slice(-2, -1))]) / dn
    else:
        if uniform:
            a, b, c = -1.5 / float(dx), 2.0 / float(dx), -0.5 / float(dx)
        else:
            dx1, dx2 = float(dx[0]), float(dx[1])
            a = -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2))
            b = (dx1 + dx2) / (dx1 * dx2)
            c = -dx1 / (dx2 * (dx1 + dx2))
        start = a * f[first] + b * f[at(slice(1, 2))] + c * f[at(slice(2, 3))]
        if uniform:
            a, b, c = 0.5 / float(dx), -2.0 / float(dx), 1.5 / float(dx)
        else:
            dx1, dx2 = float(dx[-2]), float(dx[-1])
            a = dx2 / (dx1 * (dx1 + dx2))
            b = -(dx2 + dx1) / (dx1 * dx2)
            c = (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2))
        end = (a * f[at(slice(-3, -2))] + b * f[at(slice(-2, -1))] + c * f[last])
    return concatenate([start, inside, end], axis=axis)
