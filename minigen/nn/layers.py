"""The layers: each holds its Parameters (initialised as torch initialises them, drawn from
`generator` where one is given, else from mg.random's default) and calls one function of
minigen.functional in forward."""
import math

import numpy as np

from .. import functional as F
from .. import ops
from ..creation import ones, zeros
from . import init
from .module import Module, Parameter


def _parameter(shape, dtype, device):
    dtype = np.dtype(dtype or np.float32)
    if dtype.kind != "f":
        raise TypeError(f"layers hold floating-point parameters, not {dtype}")
    return Parameter(zeros(shape, dtype=dtype, device=device))


def _kernel(value, n):
    """A kernel size as an n-tuple (an int means the same size along every axis)."""
    return (int(value),) * n if isinstance(value, (int, np.integer)) else tuple(value)


def _default_init(weight, bias, generator):
    """torch's default for Linear and convolutions: kaiming_uniform with a = sqrt(5), which
    makes the weight uniform in +-1/sqrt(fan_in), and the bias uniform in the same range."""
    init.kaiming_uniform_(weight, a=math.sqrt(5.0), generator=generator)
    if bias is not None:
        fan_in, _ = init.fan_in_and_fan_out(weight)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, generator)


class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=None, device=None,
                 generator=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _parameter((out_features, in_features), dtype, device)
        self.bias = _parameter((out_features,), dtype, device) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        _default_init(self.weight, self.bias, generator)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class _Conv(Module):
    """What the convolutions share: channels, window geometry, weight, bias and init."""

    def __init__(self, in_channels, out_channels, weight_shape, kernel_size, stride, padding,
                 dilation, bias, dtype, device, generator):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.dilation = padding, dilation
        self.weight = _parameter(weight_shape, dtype, device)
        self.bias = _parameter((out_channels,), dtype, device) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        _default_init(self.weight, self.bias, generator)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"bias={self.bias is not None}")


class Conv1d(_Conv):
    """Input (N, in_channels, L); weight (out_channels, in_channels, kernel_size)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, dtype=None, device=None, generator=None):
        kernel_size = _kernel(kernel_size, 1)
        super().__init__(in_channels, out_channels, (out_channels, in_channels) + kernel_size,
                         kernel_size, stride, padding, dilation, bias, dtype, device, generator)

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class Conv2d(_Conv):
    """Input (N, in_channels, H, W); weight (out_channels, in_channels, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, dtype=None, device=None, generator=None):
        kernel_size = _kernel(kernel_size, 2)
        super().__init__(in_channels, out_channels, (out_channels, in_channels) + kernel_size,
                         kernel_size, stride, padding, dilation, bias, dtype, device, generator)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class ConvTranspose2d(_Conv):
    """Input (N, in_channels, H, W); weight (in_channels, out_channels, kh, kw), as torch."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, dilation=1, bias=True, dtype=None, device=None,
                 generator=None):
        kernel_size = _kernel(kernel_size, 2)
        super().__init__(in_channels, out_channels, (in_channels, out_channels) + kernel_size,
                         kernel_size, stride, padding, dilation, bias, dtype, device, generator)
        self.output_padding = output_padding

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.dilation)

    def extra_repr(self):
        return super().extra_repr() + f", output_padding={self.output_padding}"


class Embedding(Module):
    """A table of num_embeddings vectors of size embedding_dim, looked up by integer index;
    initialised N(0, 1) as in torch."""

    def __init__(self, num_embeddings, embedding_dim, dtype=None, device=None, generator=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = _parameter((num_embeddings, embedding_dim), dtype, device)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        init.normal_(self.weight, generator=generator)

    def forward(self, indices):
        return F.embedding(indices, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=None,
                 device=None):
        super().__init__()
        self.normalized_shape = ((normalized_shape,) if isinstance(normalized_shape, int)
                                 else tuple(normalized_shape))
        self.eps = eps
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = _parameter(self.normalized_shape, dtype, device)
            self.bias = _parameter(self.normalized_shape, dtype, device)
            init.ones_(self.weight)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.weight is not None}")


class GroupNorm(Module):
    """F.group_norm over (N, C, ...) inputs, with a per-channel scale (ones) and shift
    (zeros) when affine, as torch.nn.GroupNorm."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None,
                 device=None):
        super().__init__()
        if not (num_groups >= 1 and num_channels % num_groups == 0):
            raise ValueError(f"GroupNorm: num_groups must be a positive divisor of "
                             f"num_channels, got {num_groups} groups of {num_channels}")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = self.bias = None
        if affine:
            self.weight = _parameter((num_channels,), dtype, device)
            self.bias = _parameter((num_channels,), dtype, device)
            init.ones_(self.weight)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected an input (N, {self.num_channels}, ...), "
                             f"got shape {x.shape}")
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.weight is not None}")


class _BatchNorm(Module):
    """Batch statistics in training, running estimates (buffers) in evaluation."""

    input_ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None, device=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.track_running_stats = track_running_stats
        self.weight = self.bias = None
        if affine:
            self.weight = _parameter((num_features,), dtype, device)
            self.bias = _parameter((num_features,), dtype, device)
            init.ones_(self.weight)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dtype,
                                                       device=device))
            self.register_buffer("running_var", ones(num_features, dtype=dtype,
                                                     device=device))

    def forward(self, x):
        if x.ndim not in self.input_ndims:
            raise ValueError(f"{type(self).__name__}: expected an input with "
                             f"{' or '.join(map(str, self.input_ndims))} dimensions "
                             f"(N, C, ...), got shape {x.shape}")
        running = ((self.running_mean, self.running_var) if self.track_running_stats
                   else (None, None))
        return F.batch_norm(x, *running, self.weight, self.bias,
                            training=self.training or not self.track_running_stats,
                            momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.weight is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Over (N, C) or (N, C, L) inputs."""
    input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Over (N, C, H, W) inputs."""
    input_ndims = (4,)


class Dropout(Module):
    """Inverted dropout in training; the identity in evaluation."""

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Identity(Module):
    def forward(self, x):
        return x


class ReLU(Module):
    def forward(self, x):
        return ops.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return ops.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return ops.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def forward(self, x):
        return F.silu(x)


class Tanh(Module):
    def forward(self, x):
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x):
        return ops.sigmoid(x)


class Softplus(Module):
    def forward(self, x):
        return ops.softplus(x)
