"""Pieces of the autoregressive sequence models (WaveNet, the causal Transformer).

Both models read their data as one sequence of discrete values x_1 .. x_T (an image in
raster order, or a window of text) and factorise

    p(x) = prod_t p(x_t | x_<t)                                   (the chain rule)

with a network whose output at step t sees only x_<t. `SequenceModel` holds what follows
from that and is the same for every such network: the data layout, the exact
log-likelihood (Bernoulli for binary values, a categorical over K levels otherwise),
`loss`, `nll`, and sampling one step at a time. A model supplies `encode(values)`, the
per-step input features (kept in the steps of x, so a test can differentiate with respect to
them), and `network(features)`, the logits of every step.

Sampling is cached when the model also supplies `logits_at(cache, values, t)`, the logits of
step t alone: a step's activations depend on earlier steps only, so once computed they never
change, and a `SamplingCache` keeps them (per-layer input queues for WaveNet, Paine et al. 2016,
"Fast Wavenet Generation Algorithm"; keys and values for the Transformer). Step t then
costs one column of the network instead of a pass over the whole prefix. `next_step` is the
naive reference, one pass per step; both draw the same samples from the same generator.

A conditional model (`conditional=True`, p(x | y) for labelled data) takes the labels y as
the second argument of its `network` and `logits_at`; loss, nll and sample take them too.

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
from ..autograd import Tensor, no_grad, tensor
from ..distributions import Bernoulli, Categorical
from ..kernels.causal_conv1d.reference import offsets as causal_offsets
from ..ops import (concatenate, gelu, log_softmax, sigmoid, softplus, split, stack,
                   take_along_axis, tanh)
from .cache import SamplingCache


# ---------------------------------------------------------------------------------------
# The likelihood and the sampler


class SequenceModel(nn.Module):
    """Base of the autoregressive sequence models. Subclasses define

        encode(values)      values (N, T) int64 Tensor -> input features, in the steps of x
        network(features)   -> logits (N, T, outputs): step t from features of steps < t

    where outputs is 1 (a Bernoulli logit) for binary data and K for K levels, and may
    define logits_at(cache, values, t) -> logits (N, outputs) of step t alone (cached
    sampling). With conditional=True the model is p(x | y): network and logits_at take the
    labels y (N,) as one more argument.
    """

    def __init__(self, spec, context, conditional=False):
        super().__init__()
        name = type(self).__name__
        if spec.kind != "discrete":
            raise ValueError(f"{name} models discrete data (binary, K levels or text), not "
                             f"{spec.kind} data {spec.name!r}")
        if conditional and not spec.num_classes:
            raise ValueError(f"{name}: conditional=true needs labelled data; {spec.name} has "
                             f"no labels")
        self.shape = tuple(spec.shape)
        self.levels = int(spec.levels)
        self.is_text = self.shape == ()
        self.length = int(context) if self.is_text else spec.dims
        if self.length < 1:
            raise ValueError(f"{name}: sequence length must be >= 1, got {self.length} "
                             f"(context={context}, data shape {self.shape})")
        self.outputs = 1 if self.levels == 2 else self.levels
        self.num_classes = spec.num_classes if conditional else None

    def _conditioning(self, labels, op):
        """The extra arguments of network and logits_at: (labels,) for a conditional model,
        () otherwise (an unconditional model ignores labels, as the PixelCNNs do)."""
        if not self.num_classes:
            return ()
        if labels is None:
            raise ValueError(f"{type(self).__name__}.{op}: a conditional model needs the "
                             f"labels (N,) of the sequences")
        return (labels,)

    def logits(self, values, labels=None):
        return self.network(self.encode(values), *self._conditioning(labels, "logits"))

    def log_likelihood(self, values, labels=None):
        """log p(x_t | x_<t) for every step, (N, T), exactly (no clipping)."""
        logits = self.logits(values, labels)
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

    def loss(self, x, generator=None, labels=None):
        """-1/N sum_n log p(x_n): the mean negative log-likelihood of a batch."""
        return -self.log_likelihood(self.sequences(x, "loss"), labels).sum(axis=1).mean()

    def nll(self, x, labels=None):
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
        return -self.log_likelihood(self.sequences(x, "nll"), labels).sum(axis=1)

    def distribution(self, logits):
        """p(x_t | x_<t) from the logits (N, outputs) of one step."""
        return Bernoulli(logits=logits[:, 0]) if self.outputs == 1 else \
            Categorical(logits=logits)

    def next_step(self, values, t, labels=None):
        """The distribution of x_t given x_<t = values[:, :t], for every row of values
        (N, >= t + 1); what values holds at t and later is never read. Naive: one pass over
        the prefix (the reference for cached sampling)."""
        return self.distribution(self.logits(values[:, :t + 1], labels)[:, t])

    def incremental_logits(self, values, labels=None):
        """The logits (N, T, outputs) of every step of values (N, T), computed as cached
        sampling computes them: one step at a time through logits_at and a SamplingCache. Equal
        to logits(values) up to float rounding, which is what makes cached sampling exact."""
        extra = self._conditioning(labels, "incremental_logits")
        cache = SamplingCache(len(values), length=values.shape[1])
        # no graph: the cache's buffers are written in place, step after step
        with no_grad():
            return stack([self.logits_at(cache, values, t, *extra)
                          for t in range(values.shape[1])], axis=1)

    def sample(self, n, generator, labels=None, cached=True):
        """n draws, one step at a time: x_t ~ p(x_t | x_<t) (given the labels (n,) for a
        conditional model). Images come back as uint8 (n,) + shape, text as uint8
        (n, context) byte codes. cached=True (for a model with logits_at) computes each step
        alone from a SamplingCache; cached=False recomputes the prefix every step (next_step).
        Both give the same samples for the same generator."""
        device = next(iter(self.parameters())).device
        extra = self._conditioning(labels, "sample")
        cached = cached and hasattr(self, "logits_at")
        cache = SamplingCache(n, length=self.length) if cached else None
        values = np.zeros((n, self.length), dtype=np.int64)
        with no_grad():
            for t in range(self.length):
                prefix = tensor(values[:, :t + 1], device=device)
                dist = self.next_step(prefix, t, *extra) if cache is None else \
                    self.distribution(self.logits_at(cache, prefix, t, *extra))
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

    def at(self, cache, x, t):
        """The output (N, out) at step t alone, as fast WaveNet computes it (Paine et al.
        2016): x (N, in) is the newest input, that of step t, or with shift=True that of
        step t - 1 (a shifted layer never reads step t; None at t = 0, before any input).
        The inputs of earlier steps come from `cache`, so a step costs one product over the
        k taps instead of a pass over the whole sequence."""
        return cache.entry(self, lambda: ConvAtStep(self, cache.n, cache.length))(x, t)

    def extra_repr(self):
        return super().extra_repr() + f", shift={self.shift}"


class ConvAtStep:
    """A CausalConv1d's entry in a SamplingCache: its inputs so far, by step (Paine et al.'s
    queues, unrolled into one buffer of the whole sequence: step t reads the entries at
    t - s_j for its taps' offsets s_j), and its weight (out, in, k) as one (in * k, out)
    matrix, so that the output at t is the window of taps times that matrix. It works on the
    raw arrays and records no graph: sampling needs none, and an engine op's overhead is
    more than these small products cost."""

    def __init__(self, conv, n, length):
        weight = conv.weight.data
        xp = backend.xp_of(weight)
        out_channels, in_channels, k = weight.shape
        self.shift = int(conv.shift)
        steps_back = causal_offsets(k, conv.dilation, conv.shift)
        self.past = max(steps_back)
        # a 1x1 convolution (no shift) reads the current step alone: nothing to keep
        self.inputs = None if self.past == 0 else \
            xp.zeros((n, in_channels, self.past + length), dtype=weight.dtype)
        self.taps = self.past - xp.asarray(steps_back)  # buffer index of each tap at t = 0
        self.weight = xp.ascontiguousarray(weight.reshape(out_channels, in_channels * k).T)
        self.bias = 0 if conv.bias is None else conv.bias.data

    def __call__(self, x, t):
        if self.inputs is None:
            window = x.data
        else:
            if x is not None:
                self.inputs[:, :, self.past + t - self.shift] = x.data
            window = self.inputs[:, :, t + self.taps]  # (N, in, k), tap j at t - s_j
        return Tensor(window.reshape(len(window), -1) @ self.weight + self.bias)


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

    def at(self, cache, h, t):
        """forward at step t alone, for h (N, C) at that step (CausalConv1d.at)."""
        f, g = split(self.dilated.at(cache, h, t), 2, axis=1)
        z = tanh(f) * sigmoid(g)
        return (h + self.residual.at(cache, z, t) if self.residual is not None else None), \
            self.skip.at(cache, z, t)


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
        q, k, v = self._heads(h)
        mixed = F.attention(q, k, v, causal=True)
        return self.out(mixed.transpose(0, 2, 1, 3).reshape(n, steps, d))

    def _heads(self, h):
        """Queries, keys and values of h (N, T, d_model), each (N, heads, T, d/heads)."""
        n, steps, d = h.shape
        qkv = self.qkv(h).reshape(n, steps, 3, self.heads, d // self.heads)
        return tuple(qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))

    def at(self, cache, h, t):
        """forward at step t alone, for h (N, 1, d_model) at that step: the key and value of
        step t join those of the earlier steps in `cache` (a step's keys and values never
        change once computed), and its query attends to all of them, steps <= t, as the
        causal mask lets it in forward."""
        n, _, d = h.shape
        q, k, v = self._heads(h)
        xp = backend.xp_of(k.data)
        keys, values = cache.entry(self, lambda: tuple(
            xp.zeros((n, self.heads, cache.length, d // self.heads), dtype=k.dtype)
            for _ in range(2)))
        keys[:, :, t], values[:, :, t] = k.data[:, :, 0], v.data[:, :, 0]
        mixed = F.attention(q, Tensor(keys[:, :, :t + 1]), Tensor(values[:, :, :t + 1]))
        return self.out(mixed.transpose(0, 2, 1, 3).reshape(n, 1, d))


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

    def at(self, cache, h, t):
        """forward at step t alone, for h (N, 1, d_model) at that step; the attention's keys
        and values of earlier steps come from `cache` (CausalSelfAttention.at)."""
        h = h + self.attention.at(cache, self.norm1(h), t)
        return h + self.fc2(gelu(self.fc1(self.norm2(h))))


def shift_right(features, start):
    """[start, f_0, ..., f_{T-2}]: step t then carries what is known before x_t."""
    n, _, d = features.shape
    first = start.reshape(1, 1, d).broadcast_to((n, 1, d))
    return concatenate([first, features[:, :-1]], axis=1)
