"""WaveNet (van den Oord et al. 2016) on sequences of discrete values.

    p(x) = prod_t p(x_t | x_1, ..., x_{t-1})                                  (eq. 1)

Images are read in raster order, text as windows of `context` byte codes. Each value enters
as a one-hot vector over its K levels (two for binary data), so a value is never confused
with the zeros a causal convolution reads before the start. Then:

- a strictly causal first layer, a causal convolution shifted one step (F.causal_conv1d
  with shift=True): its output at t sees x_{t-k} .. x_{t-1}, never x_t itself;
- optionally a learned per-position bias (positions=learned; it starts at zero), since a
  convolution alone cannot tell where in the image a step is;
- residual blocks with dilations d (autoregressive/sequence_layers.py: GatedResidualBlock), each
  z = tanh(W_f *_d h) . sigmoid(W_g *_d h) (eq. 2) with 1x1 residual and skip outputs;
- the summed skips through ReLU -> 1x1 -> ReLU -> 1x1 (section 2.4), giving a Bernoulli
  logit per step for binary data and K logits of a categorical otherwise (section 2.2
  uses a softmax over quantised values).

The receptive field is the 1 + (k - 1)(1 + sum of dilations) steps before t: 65 for k = 2
and dilations 1..32, more than the 64 pixels of an 8x8 digit.

Sampling is cached (fast WaveNet, Paine et al. 2016, "Fast Wavenet Generation Algorithm"):
every layer keeps its past inputs, so step t computes one column through the network from
the stored inputs at t - d(k - 1) .. t of each layer (logits_at), instead of the whole
prefix; `sample(..., cached=False)` is the naive reference.
"""
from .. import functional as F
from .. import nn
from ..autoregressive.sequence_layers import CausalConv1d, GatedResidualBlock, Positions
from ..autoregressive.sequence_model import SequenceModel
from ..ops import relu
from . import register


@register("wavenet", "WaveNet: dilated causal convolutions with gated residual blocks and "
          "skip connections, on images in raster order and on text",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fortunes"),
          channels=64, dilations=(1, 2, 4, 8, 16, 32), kernel=2, positions="none",
          context=128, steps=500, batch_size=100, lr=1e-3,
          ranges={"channels": "[1, inf)", "dilations": "[1, inf)", "kernel": "[1, inf)",
                  "context": "[1, inf)"})
class WaveNet(SequenceModel):
    def __init__(self, spec, generator, channels=64, dilations=(1, 2, 4, 8, 16, 32), kernel=2,
                 positions="none", context=128):
        super().__init__(spec, context)
        channels, kernel = int(channels), int(kernel)
        dilations = tuple(int(d) for d in dilations)
        if not dilations:
            raise ValueError("wavenet: dilations must name at least one residual block")
        self.first = CausalConv1d(self.levels, channels, kernel, shift=True,
                                  generator=generator)
        if positions not in ("none", "learned"):
            raise ValueError(f"wavenet: positions must be 'none' or 'learned', not "
                             f"{positions!r}")
        self.positions = Positions(positions, self.length, channels, std=0.0,
                                   generator=generator)
        self.blocks = nn.ModuleList([
            GatedResidualBlock(channels, kernel, d, residual=i < len(dilations) - 1,
                               generator=generator) for i, d in enumerate(dilations)])
        self.head1 = CausalConv1d(channels, channels, 1, generator=generator)
        self.head2 = CausalConv1d(channels, self.outputs, 1, generator=generator)

    def encode(self, values):
        """One-hot inputs, (N, K, T)."""
        return F.one_hot(values, self.levels).transpose(0, 2, 1)

    def network(self, features):
        h = self.first(features)
        position = self.positions(h.shape[2])
        if position is not None:
            h = h + position.T
        skips = None
        for block in self.blocks:
            h, skip = block(h)
            skips = skip if skips is None else skips + skip
        logits = self.head2(relu(self.head1(relu(skips))))
        return logits.transpose(0, 2, 1)

    def logits_at(self, cache, values, t):
        """The logits (N, outputs) of step t alone: network's column at t, each layer at
        that step from its newest input and the past ones the cache keeps. The first layer
        is shifted, so its newest input is x_{t-1}."""
        newest = F.one_hot(values[:, t - 1], self.levels) if t > 0 else None
        h = self.first.at(cache, newest, t)
        position = self.positions(t + 1)
        if position is not None:
            h = h + position[t]
        skips = None
        for block in self.blocks:
            h, skip = block.at(cache, h, t)
            skips = skip if skips is None else skips + skip
        return self.head2.at(cache, relu(self.head1.at(cache, relu(skips), t)), t)
