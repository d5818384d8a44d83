"""The functional layer: convolutions, pooling, normalisation, dropout and losses.

    import minigen.functional as F
    y = F.conv2d(x, w, b, stride=2, padding=1)

The convolutions, attention, layer normalisation and the coupling layer run on the
hand-written kernels of minigen.kernels (through minigen.ops: conv, causal, attention,
normalize, flow), whose backward passes are made of the kernels' own adjoints, so gradients
of every order work (WGAN-GP differentiates the gradient of a conv net). Pooling reduces the
windows that ops.unfold's `Unfold` (im2col) lays out as columns.
"""
import math

import numpy as np

from . import backend, ops, random
from .autograd import Tensor
from .kernels.conv2d.reference import output_size, pair
from .ops import (expand_dims, exp, log_softmax, mean, pad, reshape, softplus, sqrt, squeeze,
                  take_along_axis, var)
from .ops import conv as _conv
from .ops.attention import attention
from .ops.causal import causal_conv1d
from .ops.conv import masked_conv2d
from .ops.elementwise import constant, lift, silu  # noqa: F401 (F.silu)
from .ops.flow import actnorm, affine_coupling, invertible_conv1x1
from .ops.normalize import normalize
from .ops.unfold import Unfold

__all__ = [
    "actnorm", "affine_coupling", "attention", "causal_conv1d", "masked_conv2d",
    "invertible_conv1x1", "avg_pool2d", "batch_norm", "binary_cross_entropy_with_logits", "conv1d", "conv2d",
    "conv_transpose2d", "cross_entropy", "dropout", "embedding", "group_norm", "kl_normal",
    "layer_norm", "linear", "max_pool2d", "mse_loss", "nll_loss", "one_hot", "silu",
    "upsample_nearest",
]


def _single(value, name, op):
    single = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(single) != 1 or not isinstance(single[0], (int, np.integer)):
        raise ValueError(f"{op}: {name} must be an int, not {value!r}")
    return int(single[0])


def linear(x, w, b=None):
    """x @ w.T + b, with w of shape (out_features, in_features) as in torch."""
    if x.shape[-1:] != w.shape[-1:] or w.ndim != 2:
        raise ValueError(f"linear: input of shape {x.shape} needs a weight of shape "
                         f"(out_features, {x.shape[-1] if x.ndim else '?'}), got {w.shape}")
    if x.ndim > 2:
        # one 2-d product: NumPy's batched matmul with a transposed weight loops without BLAS
        # (measured 2x slower on one thread, far worse on a busy machine)
        y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(x.shape[:-1] + (w.shape[0],))
    else:
        y = x @ w.T
    return y if b is None else y + b


def _image_major(y, n, size):
    """(C, N*oh*ow), the layout of columns, as an (N, C, oh, ow) batch of images."""
    return y.reshape((y.shape[0], n) + size).transpose(1, 0, 2, 3)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    """2-d cross-correlation of x (N, C, H, W) with w (O, C, kh, kw), as torch's conv2d,
    on the conv2d kernel (minigen.kernels.conv2d: im2col in Numba, one BLAS product per
    group of images). Its backward is made of the same kernel's adjoints, themselves
    differentiable, so gradients of every order work."""
    return _conv.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)


def conv1d(x, w, b=None, stride=1, padding=0, dilation=1):
    """1-d cross-correlation of x (N, C, L) with w (O, C, k): conv2d on a height-1 image."""
    if x.ndim != 3 or w.ndim != 3:
        raise ValueError(f"conv1d: expected input (N, C, L) and weight (O, C, k), got "
                         f"{x.shape} and {w.shape}")
    y = conv2d(expand_dims(x, 2), expand_dims(w, 2), b,
               stride=(1, _single(stride, "stride", "conv1d")),
               padding=(0, _single(padding, "padding", "conv1d")),
               dilation=(1, _single(dilation, "dilation", "conv1d")))
    return squeeze(y, 2)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, dilation=1):
    """The adjoint of conv2d in x (its gradient with respect to the input), with w of shape
    (C_in, C_out, kh, kw) as torch's conv_transpose2d: each input pixel adds a weighted copy
    of the kernel onto the output. Runs conv2d's input-gradient kernel."""
    return _conv.conv_transpose2d(x, w, b, stride=stride, padding=padding,
                                  output_padding=output_padding, dilation=dilation)


def _pool_windows(op, x, kernel_size, stride, padding):
    """Window geometry of a pooling op, checked as torch checks it."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input of shape (N, C, H, W), got {x.shape}")
    params = {"kernel_size": pair(kernel_size, "kernel_size", op, 1),
              "stride": pair(kernel_size if stride is None else stride, "stride", op, 1),
              "padding": pair(padding, "padding", op, 0), "dilation": (1, 1)}
    for p, k in zip(params["padding"], params["kernel_size"]):
        if 2 * p > k:
            raise ValueError(f"{op}: padding {params['padding']} must be at most half the "
                             f"kernel size {params['kernel_size']}")
    size = output_size(x.shape[2:], **params)
    if min(size) < 1:
        raise ValueError(f"{op}: input {x.shape} is smaller than the kernel "
                         f"{params['kernel_size']}")
    return params, size


def _pool(reduce, x, params, size):
    """reduce over each window: the columns of one channel's windows, reduced along the
    kernel taps, back in image layout."""
    n, c = x.shape[:2]
    k = params["kernel_size"][0] * params["kernel_size"][1]
    cols = Unfold.apply(x, **params).reshape(c, k, -1)        # (C, kh*kw, N*oh*ow)
    return _image_major(reduce(cols, axis=1), n, size)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window; zero padding counts in the mean (torch's default)."""
    params, size = _pool_windows("avg_pool2d", x, kernel_size, stride, padding)
    return _pool(mean, x, params, size)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each window; padding never wins. Ties share the gradient equally."""
    params, size = _pool_windows("max_pool2d", x, kernel_size, stride, padding)
    (ph, pw) = params["padding"]
    x = pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), value=-math.inf)
    return _pool(ops.max, x, dict(params, padding=(0, 0)), size)


def upsample_nearest(x, scale_factor):
    """Each pixel repeated scale_factor times along every spatial axis (all axes after the
    first two): (N, C, H, W) -> (N, C, H*s, W*s)."""
    spatial = x.shape[2:]
    scales = ((scale_factor,) * len(spatial) if isinstance(scale_factor, (int, np.integer))
              else tuple(scale_factor))
    if len(scales) != len(spatial) or min(scales, default=1) < 1:
        raise ValueError(f"upsample_nearest: scale_factor {scale_factor!r} does not fit the "
                         f"{len(spatial)} spatial axes of input {x.shape}")
    x = reshape(x, x.shape[:2] + tuple(d for n in spatial for d in (n, 1)))
    x = x.broadcast_to(x.shape[:2] + tuple(d for n, s in zip(spatial, scales) for d in (n, s)))
    return reshape(x, x.shape[:2] + tuple(n * s for n, s in zip(spatial, scales)))


def dropout(x, p, training=True, generator=None):
    """Inverted dropout: zero each entry with probability p and scale the survivors by
    1 / (1 - p), so the expected value is unchanged and evaluation needs no rescaling."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    generator = random.default_generator if generator is None else generator
    keep = generator.bernoulli(1.0 - p, shape=x.shape, device=x.device).data
    return x * constant(keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p)))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise over the trailing `normalized_shape` axes of each example, then scale and
    shift elementwise (Ba, Kiros and Hinton 2016, eqs. 3-4)."""
    normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, (int, np.integer))
                        else tuple(normalized_shape))
    k = len(normalized_shape)
    if k == 0 or x.shape[x.ndim - k:] != normalized_shape:
        raise ValueError(f"layer_norm: normalized_shape {normalized_shape} must match the "
                         f"last axes of the input, whose shape is {x.shape}")
    y = normalize(x, k, eps)
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each example over groups of channels (Wu and He 2018, eq. 1 with the sets
    S_i of sec. 3.1): the C channels of x (N, C, ...) split into num_groups groups of
    C / num_groups, each normalised with the mean and variance over its channels and
    positions, then scaled and shifted per channel. Independent of the batch, so training
    and evaluation compute the same thing. On the layer_norm kernel: a group is a row."""
    if x.ndim < 2:
        raise ValueError(f"group_norm: expected input (N, C, ...), got {x.shape}")
    n, c = x.shape[:2]
    if not (isinstance(num_groups, (int, np.integer)) and num_groups >= 1
            and c % num_groups == 0):
        raise ValueError(f"group_norm: num_groups must be a positive divisor of the "
                         f"{c} channels of input {x.shape}, got {num_groups!r}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"group_norm: {name} has shape {t.shape}, expected ({c},) for "
                             f"input {x.shape}")
    y = reshape(normalize(reshape(x, (n, int(num_groups), -1)), 1, eps), x.shape)
    per_channel = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(per_channel)
    return y if bias is None else y + bias.reshape(per_channel)


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel (axis 1) over the batch and spatial axes, as torch.

    In training the batch statistics normalise, and the running estimates (when given) move
    towards them in place: running = (1 - momentum) * running + momentum * batch, with the
    unbiased batch variance. In evaluation the running estimates normalise.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input (N, C, ...), got {x.shape}")
    c = x.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (c,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, expected ({c},) for "
                             f"input {x.shape}")
    axes = (0,) + tuple(range(2, x.ndim))
    per_channel = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // c
        if n < 2:
            raise ValueError(f"batch_norm: training needs more than one value per channel, "
                             f"got input {x.shape}")
        mu, sigma2 = mean(x, axes, keepdims=True), var(x, axes, keepdims=True)
        for running, batch, unbias in ((running_mean, mu, 1.0), (running_var, sigma2,
                                                                  n / (n - 1))):
            if running is not None:
                update = batch.data.reshape(c) * (momentum * unbias)
                running.data *= 1.0 - momentum
                running.data += update.astype(running.dtype)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean "
                             "and running_var")
        mu, sigma2 = running_mean.reshape(per_channel), running_var.reshape(per_channel)
    y = (x - mu) / sqrt(sigma2 + eps)
    if weight is not None:
        y = y * weight.reshape(per_channel)
    return y if bias is None else y + bias.reshape(per_channel)


def _index_array(indices, n, op, device_of=None):
    """Integer indices in [0, n) as a raw array, on the device of the tensor `device_of`."""
    data = indices.data if isinstance(indices, Tensor) else indices
    data = (np if device_of is None else backend.xp_of(device_of.data)).asarray(data)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, not {data.dtype}")
    if data.size and (data.min() < 0 or data.max() >= n):
        raise IndexError(f"{op}: indices must lie in [0, {n}), got range "
                         f"[{int(data.min())}, {int(data.max())}]")
    return data


def embedding(indices, weight):
    """Rows of weight (num_embeddings, dim) picked by integer indices: indices.shape + (dim,)."""
    return weight[_index_array(indices, weight.shape[0], "embedding", weight)]


def one_hot(indices, num_classes):
    """float32 one-hot vectors, indices.shape + (num_classes,); a constant (no gradient)."""
    idx = _index_array(indices, num_classes, "one_hot",
                       indices if isinstance(indices, Tensor) else None)
    xp = backend.xp_of(idx)
    return constant((idx[..., None] == xp.arange(num_classes)).astype(np.float32))


_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss, reduction):
    if reduction == "mean":
        return mean(loss)
    return loss.sum() if reduction == "sum" else loss


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, not {reduction!r}")


def binary_cross_entropy_with_logits(logits, target, reduction="mean"):
    """-[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] = softplus(x) - t x, which stays
    finite for logits of any size."""
    _check_reduction(reduction, "binary_cross_entropy_with_logits")
    target = lift(target, logits)
    if target.shape != logits.shape:
        raise ValueError(f"binary_cross_entropy_with_logits: target shape {target.shape} "
                         f"differs from logits shape {logits.shape}")
    return _reduce(softplus(logits) - target * logits, reduction)


def nll_loss(log_probs, target, reduction="mean"):
    """-log_probs[n, target[n], ...]: log_probs (N, C, ...) with the classes on axis 1,
    integer target (N, ...)."""
    _check_reduction(reduction, "nll_loss")
    if log_probs.ndim < 2:
        raise ValueError(f"nll_loss: expected log_probs (N, C, ...), got {log_probs.shape}")
    idx = _index_array(target, log_probs.shape[1], "nll_loss", log_probs)
    if idx.shape != log_probs.shape[:1] + log_probs.shape[2:]:
        raise ValueError(f"nll_loss: target of shape {idx.shape} does not fit log_probs of "
                         f"shape {log_probs.shape} (classes on axis 1; target drops that axis)")
    picked = take_along_axis(log_probs, idx[:, None], axis=1)
    return _reduce(-squeeze(picked, 1), reduction)


def cross_entropy(logits, target, reduction="mean"):
    """nll_loss of log_softmax over the class axis 1: logits (N, C, ...), integer target."""
    if logits.ndim < 2:
        raise ValueError(f"cross_entropy: expected logits (N, C, ...), got {logits.shape}")
    return nll_loss(log_softmax(logits, axis=1), target, reduction)


def mse_loss(input, target, reduction="mean"):
    _check_reduction(reduction, "mse_loss")
    target = lift(target, input)
    if target.shape != input.shape:
        raise ValueError(f"mse_loss: target shape {target.shape} differs from input shape "
                         f"{input.shape}")
    diff = input - target
    return _reduce(diff * diff, reduction)


def kl_normal(mu_q, logvar_q, mu_p=0.0, logvar_p=0.0):
    """KL(N(mu_q, e^logvar_q) || N(mu_p, e^logvar_p)) per element (not reduced):
    1/2 [logvar_p - logvar_q + (e^logvar_q + (mu_q - mu_p)^2) / e^logvar_p - 1]."""
    mu_p, logvar_p = lift(mu_p, mu_q), lift(logvar_p, logvar_q)
    diff = mu_q - mu_p
    return (logvar_p - logvar_q + exp(logvar_q - logvar_p) + diff * diff * exp(-logvar_p)
            - 1.0) * 0.5
