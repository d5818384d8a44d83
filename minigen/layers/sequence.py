"""Pieces of the autoregressive sequence models (WaveNet, the causal Transformer).

Both models read their data as one sequence of discrete values x_1 .. x_T (an image in
raster order, or a window of text) and factorise

    p(x) = prod_t p(x_t | x_<t)                                   (the chain rule)

with a network whose output at step t sees only x_<t. `SequenceModel` holds what follows
from that and is the same for every such network: the data layout, the exact
log-likelihood (Bernoulli for binary values, a categorical over K levels otherwise),
`loss`, `nll`, and naive sampling one step at a time through `next_step`. A model supplies
`encode(values)`, the per-step input features (kept in the steps of x, so a test can
differentiate with respect to them), and `network(features)`, the logits of every step.

Text (a dataset whose examples have shape ()) is modelled as independent windows of
`context` characters: training batches are (B, context) windows, and a 1-D stretch of text
is scored window by window, giving nats per character.

Initialisation follows torch's defaults layer by layer (Linear and convolutions: kaiming-
uniform with a = sqrt(5), biases uniform in +-1/sqrt(fan_in); LayerNorm: 1 and 0), drawn
from the model's generator, so a PyTorch port of the same architecture starts alike.
"""
import math

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import no_grad, tensor
from ..distributions import Bernoulli, Categorical
from ..ops import concatenate, gelu, log_softmax, sigmoid, softplus, split, take_along_axis, tanh


# ---------------------------------------------------------------------------------------
# The likelihood and the sampler


class SequenceModel(nn.Module):
    """Base of the autoregressive sequence models. Subclasses define

        encode(values)      values (N, T) int64 Tensor -> input features, in the steps of x
        network(features)   -> logits (N, T, outputs): step t from features of steps < t

    where outputs is 1 (a Bernoulli logit) for binary data and K for K levels.
    """

    def __init__(self, spec, context):
        super().__init__()
        if spec.kind != "discrete":
            raise ValueError(f"{type(self).__name__} models discrete data (binary, K levels "
                             f"or text), not {spec.kind} data {spec.name!r}")
        self.shape = tuple(spec.shape)
        self.levels = int(spec.levels)
        self.is_text = self.shape == ()
        self.length = int(context) if self.is_text else spec.dims
        if self.length < 1:
            raise ValueError(f"{type(self).__name__}: sequence length must be >= 1, got "
                             f"{self.length} (context={context}, data shape {self.shape})")
        self.outputs = 1 if self.levels == 2 else self.levels

    def logits(self, values):
        return self.network(self.encode(values))

    def log_likelihood(self, values):
        """log p(x_t | x_<t) for every step, (N, T), exactly (no clipping)."""
        logits = self.logits(values)
        if self.outputs == 1:
            # log Bernoulli(x; sigmoid(l)) = x l - softplus(l), finite for any logit
            logit = logits[..., 0]
            return values.astype(logit.dtype) * logit - softplus(logit)
        return take_along_axis(log_softmax(logits, axis=-1), values.data[..., None],
                               axis=-1)[..., 0]

    def sequences(self, x, op):
        """A raw batch as (N, T) int64 values: images in raster order; text windows as
        they are."""
        if self.is_text:
            if x.ndim != 2:
                raise ValueError(f"{type(self).__name__}.{op}: text is read as (batch, "
                                 f"context) windows of consecutive characters, got a batch "
                                 f"of shape {x.shape}")
            if x.shape[1] > self.length:
                raise ValueError(f"{type(self).__name__}.{op}: windows of {x.shape[1]} "
                                 f"characters are longer than context={self.length}")
            return x.astype("int64")
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"{type(self).__name__}.{op}: expected a batch of shape "
                             f"(N,) + {self.shape}, got {x.shape}")
        return x.reshape(len(x), -1).astype("int64")

    def loss(self, x, generator=None):
        """-1/N sum_n log p(x_n): the mean negative log-likelihood of a batch."""
        return -self.log_likelihood(self.sequences(x, "loss")).sum(axis=1).mean()

    def nll(self, x):
        """-log p(x) in nats per example; for a 1-D stretch of text, per character (it is
        cut into windows of `context` characters, each scored from its start)."""
        if self.is_text and x.ndim == 1:
            n = len(x)
            windows = -(-n // self.length)
            # zeros after the end change nothing before it: every step sees only its past
            padded = backend.xp_of(x.data).zeros(windows * self.length, dtype=np.int64)
            padded[:n] = x.data
            per_step = self.log_likelihood(tensor(padded.reshape(windows, self.length),
                                                    device=x.device))
            return -per_step.reshape(-1)[:n]
        return -self.log_likelihood(self.sequences(x, "nll")).sum(axis=1)

    def next_step(self, values, t):
        """The distribution of x_t given x_<t = values[:, :t], for every row of values
        (N, >= t + 1); what values holds at t and later is never read. Naive: one pass over
        the prefix. A cached sampler replaces this method."""
        logits = self.logits(values[:, :t + 1])[:, t]
        return Bernoulli(logits=logits[:, 0]) if self.outputs == 1 else \
            Categorical(logits=logits)

    def sample(self, n, generator):
        """n draws, one step at a time: x_t ~ p(x_t | x_<t). Images come back as uint8
        (n,) + shape, text as uint8 (n, context) byte codes."""
        device = next(iter(self.parameters())).device
        values = np.zeros((n, self.length), dtype=np.int64)
        with no_grad():
            for t in range(self.length):
                dist = self.next_step(tensor(values[:, :t + 1], device=device), t)
                values[:, t] = dist.sample(generator=generator).numpy()
        values = values.astype(np.uint8)
        return values if self.is_text else values.reshape((n,) + self.shape)


# ---------------------------------------------------------------------------------------
# WaveNet pieces


class CausalConv1d(nn.Conv1d):
    """A Conv1d (same weight layout and initialisation) applied causally: output t sees
    inputs t, t - d, ..., t - (k - 1) d, or with shift=True the steps before t only
    (F.causal_conv1d)."""

    def __init__(self, in_channels, out_channels, kernel_size, dilation=1, shift=False,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, dilation=int(dilation))
        self.shift = bool(shift)
        self.reset_parameters(generator)

    def forward(self, x):
        return F.causal_conv1d(x, self.weight, self.bias, self.dilation, self.shift)

    def extra_repr(self):
        return super().extra_repr() + f", shift={self.shift}"


class GatedResidualBlock(nn.Module):
    """One WaveNet layer (van den Oord et al. 2016, section 2.3-2.4):

        z = tanh(W_f * h) . sigmoid(W_g * h)          (eq. 2, one dilated causal conv
                                                       giving both halves)
        skip = 1x1(z),  h' = h + 1x1(z)               (residual and skip connections)

    The last block of a stack has no residual output (nothing reads it): residual=False.
    """

    def __init__(self, channels, kernel_size, dilation, residual=True, generator=None):
        super().__init__()
        self.dilated = CausalConv1d(channels, 2 * channels, kernel_size, dilation,
                                    generator=generator)
        self.skip = CausalConv1d(channels, channels, 1, generator=generator)
        self.residual = CausalConv1d(channels, channels, 1, generator=generator) \
            if residual else None

    def forward(self, h):
        """(h', skip) for h (N, C, T); h' is None without a residual output."""
        f, g = split(self.dilated(h), 2, axis=1)
        z = tanh(f) * sigmoid(g)
        return (h + self.residual(z) if self.residual is not None else None), self.skip(z)


# ---------------------------------------------------------------------------------------
# Transformer pieces


class Dense(nn.Linear):
    """nn.Linear with its default initialisation drawn from the model's generator (F.linear
    already computes an input of any rank as one 2-D product)."""

    def __init__(self, in_features, out_features, generator=None):
        super().__init__(in_features, out_features)
        self.reset_parameters(generator)


def sinusoidal_positions(length, dim):
    """Vaswani et al. 2017, section 3.5: PE[t, 2i] = sin(t / 10000^(2i/dim)),
    PE[t, 2i+1] = cos(t / 10000^(2i/dim)); (length, dim) float32."""
    t = np.arange(length)[:, None]
    frequencies = np.exp(-math.log(10000.0) * np.arange(0, dim, 2) / dim)
    table = np.zeros((length, dim))
    table[:, 0::2] = np.sin(t * frequencies)
    table[:, 1::2] = np.cos(t * frequencies[:dim // 2])
    return table.astype(np.float32)


class Positions(nn.Module):
    """What a step's position adds to its features, (T, dim) for the first T steps:
    "learned" (a trained table, initialised N(0, std^2)), "sinusoidal" (fixed) or "none"."""

    KINDS = ("none", "learned", "sinusoidal")

    def __init__(self, kind, length, dim, std=1.0, generator=None):
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"positions must be one of {', '.join(self.KINDS)}, not {kind!r}")
        self.kind, self.length = kind, length
        if kind == "learned":
            self.table = nn.Parameter(np.zeros((length, dim), dtype=np.float32))
            if std > 0:
                nn.init.normal_(self.table, 0.0, std, generator)
        elif kind == "sinusoidal":
            self.register_buffer("table", tensor(sinusoidal_positions(length, dim)))

    def forward(self, steps):
        """(steps, dim), or None for "none"."""
        if self.kind == "none":
            return None
        if steps > self.length:
            raise ValueError(f"Positions: {steps} steps, but positions were made for "
                             f"{self.length}")
        return self.table[:steps]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which step t attends to steps <= t (Vaswani et al.
    2017, section 3.2): one Linear gives queries, keys and values for all heads,
    F.attention(causal=True) mixes them, one Linear projects the heads back."""

    def __init__(self, d_model, heads, generator=None):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"CausalSelfAttention: d_model={d_model} is not divisible by "
                             f"heads={heads}")
        self.heads = heads
        self.qkv = Dense(d_model, 3 * d_model, generator)
        self.out = Dense(d_model, d_model, generator)

    def forward(self, h):
        n, steps, d = h.shape
        qkv = self.qkv(h).reshape(n, steps, 3, self.heads, d // self.heads)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (N, H, T, d/H)
        mixed = F.attention(q, k, v, causal=True)
        return self.out(mixed.transpose(0, 2, 1, 3).reshape(n, steps, d))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block (as GPT-2; Xiong et al. 2020):
    h = h + attention(LN(h)),  h = h + W_2 GELU(W_1 LN(h))."""

    def __init__(self, d_model, heads, mlp, generator=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, heads, generator)
        self.norm2 = nn.LayerNorm(d_model)
        self.fc1 = Dense(d_model, mlp, generator)
        self.fc2 = Dense(mlp, d_model, generator)

    def forward(self, h):
        h = h + self.attention(self.norm1(h))
        return h + self.fc2(gelu(self.fc1(self.norm2(h))))


def shift_right(features, start):
    """[start, f_0, ..., f_{T-2}]: step t then carries what is known before x_t."""
    n, _, d = features.shape
    first = start.reshape(1, 1, d).broadcast_to((n, 1, d))
    return concatenate([first, features[:, :-1]], axis=1)
