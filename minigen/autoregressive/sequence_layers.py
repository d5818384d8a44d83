"""The layers of the autoregressive sequence models, each computing output step t from
inputs of steps <= t (or < t), and each able to compute step t alone from what earlier steps
left in a SamplingCache, for cached sampling.

- WaveNet (van den Oord et al. 2016): `CausalConv1d` (dilated causal convolutions, one step
  at a time through `ConvAtStep`, Paine et al. 2016's fast generation) and
  `GatedResidualBlock`.
- The causal Transformer (Vaswani et al. 2017): `Dense`, `Positions`, `CausalSelfAttention`
  (keys and values of earlier steps cached), `TransformerBlock`, and `shift_right`, which
  makes step t carry what is known before x_t.

Initialisation follows torch's defaults layer by layer (Linear and convolutions: kaiming-
uniform with a = sqrt(5), biases uniform in +-1/sqrt(fan_in); LayerNorm: 1 and 0), drawn
from the model's generator, so a PyTorch port of the same architecture starts alike.
"""
import math

import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import Tensor, tensor
from ..kernels.causal_conv1d.reference import offsets as causal_offsets
from ..ops import concatenate, gelu, sigmoid, split, tanh


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


class SelfAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017, section 3.2): one Linear gives
    queries, keys and values for all heads, F.attention mixes them (with causal=True step t
    attends to steps <= t only; without, every step to every step, as in a ViT's block),
    one Linear projects the heads back."""

    def __init__(self, d_model, heads, generator=None, causal=False):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"{type(self).__name__}: d_model={d_model} is not divisible by "
                             f"heads={heads}")
        self.heads, self.causal = heads, causal
        self.qkv = Dense(d_model, 3 * d_model, generator)
        self.out = Dense(d_model, d_model, generator)

    def forward(self, h):
        n, steps, d = h.shape
        q, k, v = self._heads(h)
        mixed = F.attention(q, k, v, causal=self.causal)
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
        if not self.causal:
            raise ValueError(f"{type(self).__name__}.at: step by step needs causal=True")
        n, _, d = h.shape
        q, k, v = self._heads(h)
        xp = backend.xp_of(k.data)
        keys, values = cache.entry(self, lambda: tuple(
            xp.zeros((n, self.heads, cache.length, d // self.heads), dtype=k.dtype)
            for _ in range(2)))
        keys[:, :, t], values[:, :, t] = k.data[:, :, 0], v.data[:, :, 0]
        mixed = F.attention(q, Tensor(keys[:, :, :t + 1]), Tensor(values[:, :, :t + 1]))
        return self.out(mixed.transpose(0, 2, 1, 3).reshape(n, 1, d))


class CausalSelfAttention(SelfAttention):
    """SelfAttention with causal=True: step t attends to steps <= t."""

    def __init__(self, d_model, heads, generator=None):
        super().__init__(d_model, heads, generator, causal=True)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block (as GPT-2; Xiong et al. 2020):
    h = h + attention(LN(h)),  h = h + W_2 GELU(W_1 LN(h)); causal by default, and with
    causal=False the ViT block (every step attends to every step)."""

    def __init__(self, d_model, heads, mlp, generator=None, causal=True):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, heads, generator, causal)
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
