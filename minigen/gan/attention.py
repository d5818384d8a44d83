"""SAGAN's self-attention block (Zhang, Goodfellow, Metaxas and Odena 2019, "Self-Attention
Generative Adversarial Networks", section 3), usable in a generator and a discriminator.

A convolution sees a few pixels around each one; the block lets every position of a feature
map x (N, C, H, W) look at every other, as one head of attention over the T = H * W
positions. With 1x1 convolutions f, g, h to C' = C / 8 channels and v back to C:

    s_ij      = f(x_i)^T g(x_j)                       (eq. 1: no 1/sqrt(d) scale)
    beta_j,i  = exp(s_ij) / sum_i exp(s_ij)           (how much position j attends to i)
    o_j       = v( sum_i beta_j,i h(x_i) )            (eq. 2)
    y_j       = gamma o_j + x_j                       (eq. 3, gamma a learned scalar, 0 at
                                                       the start)

With gamma = 0 the block starts as the identity, so a network first learns from its local
convolutions and only then gives weight to the distant positions. The attention itself is
minigen's attention kernel (F.attention, the queries g(x_j) against the keys f(x_i)), whose
gradients of every order let a critic with this block take a gradient penalty.
"""
import numpy as np

from .. import functional as F
from .. import nn


class SelfAttention2d(nn.Module):
    """y = gamma * v(attention(g(x), f(x), h(x))) + x over the H * W positions of x."""

    def __init__(self, channels, reduction=8, generator=None):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"SelfAttention2d: channels ({channels}) and reduction "
                             f"({reduction}) must be at least 1")
        inner = max(channels // reduction, 1)
        self.channels, self.inner = channels, inner
        self.f = nn.Conv2d(channels, inner, 1, bias=False, generator=generator)  # keys
        self.g = nn.Conv2d(channels, inner, 1, bias=False, generator=generator)  # queries
        self.h = nn.Conv2d(channels, inner, 1, bias=False, generator=generator)  # values
        self.v = nn.Conv2d(inner, channels, 1, bias=False, generator=generator)
        self.gamma = nn.Parameter(np.zeros((), dtype=np.float32))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SelfAttention2d: expected (N, {self.channels}, H, W), got "
                             f"{x.shape}")
        n, c, height, width = x.shape

        def positions(y):  # (N, C', H, W) -> (N, 1 head, T, C')
            return y.reshape(n, 1, self.inner, height * width).swapaxes(-1, -2)

        attended = F.attention(positions(self.g(x)), positions(self.f(x)),
                               positions(self.h(x)), scale=1.0)
        o = self.v(attended.swapaxes(-1, -2).reshape(n, self.inner, height, width))
        return self.gamma * o + x

    def extra_repr(self):
        return f"{self.channels}, inner={self.inner}"
