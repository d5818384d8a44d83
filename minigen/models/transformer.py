"""A causal Transformer (decoder only, Vaswani et al. 2017; as GPT, Radford et al. 2018) on
sequences of discrete values: images in raster order, text as windows of byte codes.

    p(x) = prod_t p(x_t | x_<t)

Each value x_t is embedded (a table of K rows), and the sequence of embeddings is shifted
one step right behind a learned start vector, so the input at step t is the embedding of
x_{t-1} (the start vector at t = 0). Positions are added (learned, or the fixed sinusoids
of section 3.5). Pre-LayerNorm blocks follow (autoregressive/sequence_layers.py: TransformerBlock),
h = h + MHA(LN(h)) with causal attention, where step t attends to steps <= t only, and
h = h + MLP(LN(h)) with a GELU; then a final LayerNorm and a Linear head: a Bernoulli
logit per step for binary data, K logits of a categorical otherwise. The shift and the
causal attention together make the output at t a function of x_<t alone.

Initialisation is torch's default per layer; the token table, start vector and learned
positions are N(0, 1), as torch's nn.Embedding.

Conditional (`conditional=true`): p(x | y) = prod_t p(x_t | x_<t, y) for a class label y.
A learned class embedding (a table of one vector per class, N(0, 1) as the token table) is
added to the input of every step, start included, as the positions are: every layer then
sees y at every step, from the first pixel on, and the output at t still depends on x_<t
alone among the values (y is not part of x). The labels are an argument of loss, nll and
sample; `minigen sample RUN --label 3` draws class 3.

Sampling is cached: every attention layer keeps the keys and values of the steps so far,
so step t runs the new position alone through the blocks, its query attending to the cached
keys and values (logits_at); `sample(..., cached=False)` is the naive reference.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autoregressive.sequence_layers import Dense, Positions, TransformerBlock, shift_right
from ..autoregressive.sequence_model import SequenceModel
from . import register


@register("transformer", "causal Transformer: pre-LayerNorm multi-head self-attention, "
          "learned or sinusoidal positions, on images in raster order and on text",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fortunes"),
          d_model=64, heads=4, layers=2, mlp=256, positions="learned", context=128,
          conditional=False, steps=1000, batch_size=100, lr=1e-3,
          ranges={"d_model": "[1, inf)", "heads": "[1, inf)", "layers": "[1, inf)",
                  "mlp": "[1, inf)", "context": "[1, inf)"})
class Transformer(SequenceModel):
    def __init__(self, spec, generator, d_model=64, heads=4, layers=2, mlp=256,
                 positions="learned", context=128, conditional=False):
        super().__init__(spec, context, conditional)
        d_model, heads, layers, mlp = int(d_model), int(heads), int(layers), int(mlp)
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"transformer: positions must be 'learned' or 'sinusoidal', not "
                             f"{positions!r}")
        self.tokens = nn.Embedding(self.levels, d_model)
        self.tokens.reset_parameters(generator)
        self.start = nn.Parameter(np.zeros(d_model, dtype=np.float32))
        nn.init.normal_(self.start, generator=generator)
        self.positions = Positions(positions, self.length, d_model, generator=generator)
        self.blocks = nn.ModuleList([TransformerBlock(d_model, heads, mlp, generator)
                                     for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = Dense(d_model, self.outputs, generator)
        # drawn last, so that the other weights start as in the unconditional model
        self.classes = nn.Embedding(self.num_classes, d_model) if self.num_classes else None
        if self.classes is not None:
            self.classes.reset_parameters(generator)

    def encode(self, values):
        """The embedding of each value, (N, T, d_model), still in the steps of x."""
        return F.embedding(values, self.tokens.weight)

    def network(self, features, labels=None):
        h = shift_right(features, self.start) + self.positions(features.shape[1])
        if self.classes is not None:
            h = h + self.classes(labels)[:, None, :]
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))

    def logits_at(self, cache, values, t, labels=None):
        """The logits (N, outputs) of step t alone: its input (the start vector, or the
        embedding of x_{t-1}) through every block at that one position, attending to the
        keys and values of the earlier steps that the cache keeps."""
        n, d = len(values), self.start.shape[0]
        newest = self.start.reshape(1, 1, d).broadcast_to((n, 1, d)) if t == 0 else \
            self.encode(values[:, t - 1:t])
        h = newest + self.positions(t + 1)[t]
        if self.classes is not None:
            h = h + self.classes(labels)[:, None, :]
        for block in self.blocks:
            h = block.at(cache, h, t)
        return self.head(self.norm(h))[:, 0]
