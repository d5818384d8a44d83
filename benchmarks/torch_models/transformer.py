"""A causal Transformer (decoder only, Vaswani et al. 2017; as GPT, Radford et al. 2018) in
PyTorch, the reference for minigen.models.transformer, on images read in raster order.

    p(x) = prod_t p(x_t | x_<t)

Each value is embedded (nn.Embedding, K rows) and the embeddings shifted one step right
behind a learned start vector, so step t carries x_{t-1}; positions are added (learned, or
the sinusoids of section 3.5). Pre-LayerNorm blocks, h = h + MHA(LN(h)) with causal
attention (scaled_dot_product_attention with is_causal=True: step t attends to steps <= t)
and h = h + W_2 GELU(W_1 LN(h)) with the exact (erf) GELU; then a final LayerNorm and a
Linear head: a Bernoulli logit per step, or K logits of a categorical.

Parameter names are minigen's (start, tokens, positions.table, blocks.{b}.norm1,
attention.qkv, attention.out, norm2, fc1, fc2; norm, head), so minigen's initial weights
copy in by name. Initialisation is torch's default per layer; the start vector N(0, 1), as
the token table and the learned positions.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .wavenet import Positions, SequenceModel


class CausalSelfAttention(nn.Module):
    """One Linear for the queries, keys and values of all heads; causal softmax attention
    (section 3.2); one Linear projects the heads back."""

    def __init__(self, d_model, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, h):
        n, steps, d = h.shape
        qkv = self.qkv(h).reshape(n, steps, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (N, heads, T, d / heads)
        mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(mixed.transpose(1, 2).reshape(n, steps, d))


class TransformerBlock(nn.Module):
    """h = h + attention(LN(h)),  h = h + W_2 GELU(W_1 LN(h))."""

    def __init__(self, d_model, heads, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, mlp)
        self.fc2 = nn.Linear(mlp, d_model)

    def forward(self, h):
        h = h + self.attention(self.norm1(h))
        return h + self.fc2(F.gelu(self.fc1(self.norm2(h))))


class Transformer(SequenceModel):
    def __init__(self, shape, levels, d_model=64, heads=4, layers=2, mlp=256,
                 positions="learned"):
        super().__init__(shape, levels)
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"transformer: positions must be 'learned' or 'sinusoidal', not "
                             f"{positions!r}")
        if d_model % heads:
            raise ValueError(f"transformer: d_model={d_model} is not divisible by "
                             f"heads={heads}")
        self.tokens = nn.Embedding(self.levels, d_model)
        self.start = nn.Parameter(torch.randn(d_model))
        self.positions = Positions(positions, self.length, d_model)
        self.blocks = nn.ModuleList([TransformerBlock(d_model, heads, mlp)
                                     for _ in range(layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.outputs)

    def network(self, values):
        features = self.tokens(values)
        n, steps, d = features.shape
        shifted = torch.cat([self.start.expand(n, 1, d), features[:, :-1]], dim=1)
        h = shifted + self.positions(steps)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h))
