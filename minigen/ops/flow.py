"""Normalising-flow layers as engine ops: affine coupling (RealNVP, Glow), ActNorm and
Glow's invertible 1x1 convolution.

Each returns (y, logdet), logdet = log|det dy/dx| of one sample, shape (N,). With
reverse=True each runs its inverse and returns the log-determinant of the inverse (the
negative of the forward one). Log-determinants are float64 whatever the input dtype: they
are sums over every pixel (784 values of s near 10 sum to about 8000, where float32 moves in
steps of 0.0005); a float32 log-density plus a float64 logdet is float64, and `.astype`
brings it back where wanted.

Affine coupling runs on the fused kernel in minigen.kernels.coupling, which makes y and the
log-determinant in one pass, and one node of the graph with both results (AffineCoupling,
`outputs = 2`). Its backward is a single AffineCouplingGrad node: the kernel's fused
backward (from exp(s), which forward keeps), which takes the gradients of y and of the
log-determinant together and returns grad_x, grad_s and grad_t stacked in one array that
(differentiable) indexing cuts apart. AffineCouplingGrad's own backward is a handful of
plain ops (the gradients are products with exp(s)), so derivatives of every order work.
Why one node: with two (y from x, s, t; the log-determinant from s), the engine added the
log-determinant's share to grad_s in a separate pass over s, on one thread, reading what
the kernel's two threads had just written. On the development machine K5's step (README)
took 0.35 ms with that pass and 0.25 ms without (medians of two harness runs each), and
0.9-1.6 ms with it in stretches when one core reads the other's writes slowly
(`python -m benchmarks.crosscore`).

ActNorm and the 1x1 convolution are a few plain ops each (a per-channel scale, a C x C
matrix product): their gradients, of every order, follow from the primitives, and their
log-determinants need no kernel, being H * W times a sum over C parameters.
"""
import numpy as np
import scipy.linalg

from .. import backend, random
from ..autograd import Function, Tensor
from .elementwise import constant, exp
from .matrix import inv


class AffineCoupling(Function):
    """x, s, t -> (x * exp(s) + t, sum of s over all axes but the first, in float64); with
    reverse, ((x - t) * exp(-s), minus that sum). One pass of the fused kernel makes both;
    `scale`, the exp(+-s) it used, is kept for backward."""
    outputs = 2

    @staticmethod
    def forward(ctx, x, s, t, reverse):
        out, logdet, scale = backend.kernel("coupling", x).forward(x, s, t, reverse=reverse)
        ctx.reverse, ctx.scale = reverse, scale
        return out, logdet

    @staticmethod
    def backward(ctx, grads):
        g, g_logdet = grads
        x, s, t = ctx.inputs
        if g is None:  # only the log-determinant is used: its gradient, broadcast over s
            # cast and negate the N values before broadcasting, not the N * D after
            g_logdet = (-g_logdet if ctx.reverse else g_logdet).astype(s.dtype)
            return None, g_logdet.reshape((-1,) + (1,) * (s.ndim - 1)).broadcast_to(
                s.shape), None
        extra = () if g_logdet is None else (g_logdet,)
        grads = AffineCouplingGrad.apply(x, s, t, g, *extra, reverse=ctx.reverse,
                                         scale=ctx.scale)
        return grads[0], grads[1], grads[2]


class AffineCouplingGrad(Function):
    """(x, s, t, g[, g_logdet]) -> grad_x, grad_s, grad_t of the coupling for the output
    gradient g and the log-determinant's gradient g_logdet (float64, (N,); none for zero),
    stacked on a new first axis. `scale` is exp(+-s), saved by the forward pass."""

    @staticmethod
    def forward(ctx, x, s, t, g, *g_logdet, reverse, scale):
        ctx.reverse = reverse
        return backend.kernel("coupling", x).backward(x, scale, t, g, *g_logdet,
                                                      reverse=reverse)

    @staticmethod
    def backward(ctx, u):
        x, s, t, g = ctx.inputs[:4]
        u_x, u_s, u_t = u[0], u[1], u[2]
        # grad_s holds +-g_logdet in every entry of a sample: its share is the sample's sum
        # of u_s, in float64 like g_logdet
        u_logdet = ()
        if len(ctx.inputs) == 5:
            per_sample = u_s.astype(np.float64)
            if u_s.ndim > 1:
                per_sample = per_sample.sum(axis=tuple(range(1, u_s.ndim)))
            u_logdet = (-per_sample if ctx.reverse else per_sample,)
        if ctx.reverse:
            # grad_x = g e, grad_s = -g (x - t) e, grad_t = -g e, with e = exp(-s)
            e = exp(-s)
            u_g = (u_x - u_s * (x - t) - u_t) * e
            ge = g * e
            return (-(u_s * ge), u_g * -g, u_s * ge, u_g) + u_logdet
        # grad_x = g e, grad_s = g x e, grad_t = g, with e = exp(s)
        e = exp(s)
        v = (u_x + u_s * x) * e
        return (u_s * (g * e), g * v, None, v + u_t) + u_logdet


def _check_tensors(op, **tensors):
    for name, x in tensors.items():
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, not {type(x).__name__}")
        if x.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be floating-point, not {x.dtype}")


def affine_coupling(x, s, t, reverse=False):
    """The affine coupling of RealNVP and Glow: y = x * exp(s) + t, with
    logdet = sum of s over all axes but the first (float64, shape (N,)).

    reverse=True applies the inverse, x = (y - t) * exp(-s), and returns -sum(s) as its
    log-determinant. x, s and t share one shape (N, ...) and one dtype; in a coupling layer
    s and t are computed from the half of the input that passes through unchanged.
    """
    op = "affine_coupling"
    _check_tensors(op, x=x, s=s, t=t)
    if x.ndim == 0 or not x.shape == s.shape == t.shape:
        raise ValueError(f"{op}: x {x.shape}, s {s.shape}, t {t.shape}: expected one shape "
                         f"(N, ...) with a batch axis first")
    if not x.dtype == s.dtype == t.dtype:
        raise TypeError(f"{op}: x, s, t need one dtype, got {x.dtype}, {s.dtype}, {t.dtype}")
    return AffineCoupling.apply(x, s, t, reverse=bool(reverse))


def _logdet_per_sample(log_values, pixels, n, reverse):
    """H * W * sum(log_values), in float64, as the same value for each of n samples."""
    total = log_values.astype(np.float64).sum() * float(-pixels if reverse else pixels)
    return total.broadcast_to((n,))


def _check_images(op, x):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected x of shape (N, C, H, W), got {x.shape}")


def _check_shape(op, name, value, shape):
    if value.shape != shape:
        raise ValueError(f"{op}: {name} has shape {value.shape}; expected {shape} for an "
                         f"input with {shape[0]} channels")


def actnorm(x, log_scale, bias, reverse=False):
    """Glow's activation normalisation on (N, C, H, W): a learned scale and shift per
    channel, y = x * exp(log_scale) + bias, with logdet = H * W * sum(log_scale) per sample.

    reverse=True applies the inverse, x = (y - bias) * exp(-log_scale), and returns the
    negated log-determinant. log_scale and bias have shape (C,); `actnorm_init` gives the
    values Glow starts from.
    """
    op = "actnorm"
    _check_tensors(op, x=x, log_scale=log_scale, bias=bias)
    _check_images(op, x)
    n, c, h, w = x.shape
    _check_shape(op, "log_scale", log_scale, (c,))
    _check_shape(op, "bias", bias, (c,))
    if not x.dtype == log_scale.dtype == bias.dtype:
        raise TypeError(f"{op}: x, log_scale, bias need one dtype, got {x.dtype}, "
                        f"{log_scale.dtype}, {bias.dtype}")
    log_scale4, bias4 = log_scale.reshape(1, c, 1, 1), bias.reshape(1, c, 1, 1)
    if reverse:
        y = (x - bias4) * exp(-log_scale4)
    else:
        y = x * exp(log_scale4) + bias4
    return y, _logdet_per_sample(log_scale, h * w, n, reverse)


def actnorm_init(x, eps=1e-6):
    """Glow's data-dependent initialisation: the (log_scale, bias) with which actnorm gives
    this batch zero mean and unit variance in every channel. Statistics are taken in
    float64; the results have x's dtype and are outside the graph."""
    data = x.data if isinstance(x, Tensor) else x
    _check_images("actnorm_init", data)
    xp = backend.xp_of(data)
    wide = data.astype(xp.float64)
    mean, std = wide.mean(axis=(0, 2, 3)), wide.std(axis=(0, 2, 3))
    log_scale = -xp.log(std + eps)
    bias = -mean * xp.exp(log_scale)
    return constant(log_scale.astype(data.dtype)), constant(bias.astype(data.dtype))


def lu_init(channels, generator=None, dtype=np.float32):
    """Glow's LU parameters for a random orthogonal C x C weight (the Q of a Gaussian
    matrix, factored by scipy.linalg.lu): a dict of Tensors perm, lower, upper, log_s and
    sign_s, to pass as invertible_conv1x1(x, **params). perm and sign_s stay fixed; lower,
    upper and log_s are what training learns."""
    generator = random.default_generator if generator is None else generator
    q, _ = np.linalg.qr(generator.normal((channels, channels), dtype=np.float64).numpy())
    perm, lower, upper = scipy.linalg.lu(q)
    diagonal = np.diag(upper)
    params = dict(perm=perm, lower=np.tril(lower, -1), upper=np.triu(upper, 1),
                  log_s=np.log(np.abs(diagonal)), sign_s=np.sign(diagonal))
    return {name: constant(value.astype(dtype)) for name, value in params.items()}


def _fixed(value, like):
    """A fixed parameter (perm, sign_s) as a Tensor in the dtype and on the device of `like`;
    Tensors pass as they are."""
    if isinstance(value, Tensor):
        return value
    return constant(backend.to_device(np.asarray(value), like.device).astype(like.dtype))


def lu_weight(perm, lower, upper, log_s, sign_s):
    """W = P L (U + diag(sign_s * exp(log_s))) with L unit lower triangular and U strictly
    upper triangular. Only the strict triangles of `lower` and `upper` are read (the rest
    gets zero gradient), so W stays in this form whatever training does to them."""
    xp = backend.xp_of(log_s.data)
    ones = xp.ones((log_s.shape[0],) * 2, dtype=log_s.dtype)
    eye = constant(xp.eye(log_s.shape[0], dtype=log_s.dtype))
    unit_lower = lower * constant(xp.tril(ones, -1)) + eye
    upper_with_diagonal = upper * constant(xp.triu(ones, 1)) + eye * (
        _fixed(sign_s, log_s) * exp(log_s))
    return _fixed(perm, log_s) @ (unit_lower @ upper_with_diagonal)


def invertible_conv1x1(x, perm, lower, upper, log_s, sign_s, reverse=False):
    """Glow's invertible 1x1 convolution on (N, C, H, W): y[:, :, i, j] = W x[:, :, i, j] at
    every pixel, with W in LU form (see `lu_weight`; `lu_init` gives a starting point), so
    logdet = H * W * log|det W| = H * W * sum(log_s) per sample, with no determinant to
    compute.

    reverse=True applies W^-1 and returns the negated log-determinant. perm (C, C), lower
    (C, C), upper (C, C), log_s (C,), sign_s (C,).
    """
    op = "invertible_conv1x1"
    _check_tensors(op, x=x, lower=lower, upper=upper, log_s=log_s)
    _check_images(op, x)
    if not x.dtype == lower.dtype == upper.dtype == log_s.dtype:
        raise TypeError(f"{op}: x, lower, upper, log_s need one dtype, got {x.dtype}, "
                        f"{lower.dtype}, {upper.dtype}, {log_s.dtype}")
    n, c, h, w = x.shape
    for name, value, shape in (("perm", perm, (c, c)), ("lower", lower, (c, c)),
                               ("upper", upper, (c, c)), ("log_s", log_s, (c,)),
                               ("sign_s", sign_s, (c,))):
        _check_shape(op, name, value, shape)
    weight = lu_weight(perm, lower, upper, log_s, sign_s)
    if reverse:
        weight = inv(weight)
    y = (weight @ x.reshape(n, c, h * w)).reshape(x.shape)
    return y, _logdet_per_sample(log_s, h * w, n, reverse)
