"""The likelihood head of the autoregressive models of discrete values."""
from ..distributions import Bernoulli, Categorical
from ..ops import moveaxis


class PixelLikelihood:
    """p(x_i | x_<i) for every subpixel from the network's logits: a Bernoulli logit per
    subpixel for binary data, a categorical over the K levels otherwise. Logit channels are
    laid out channel-major ((C, K) for categoricals), so colour group c owns a contiguous
    block, as the masks' groups require."""

    def __init__(self, channels, levels):
        self.channels, self.levels = channels, levels
        self.binary = levels == 2
        self.out_channels = channels if self.binary else channels * levels

    def distribution(self, logits):
        """Every subpixel's distribution, batch shape (N, C, H, W)."""
        if self.binary:
            return Bernoulli(logits=logits)
        n, _, height, width = logits.shape
        return Categorical(logits=moveaxis(
            logits.reshape(n, self.channels, self.levels, height, width), 2, -1))

    def log_prob(self, logits, x):
        """log p(x) per example: the sum over subpixels of log p(x_i | x_<i)."""
        values = x.astype(logits.dtype) if self.binary else x.astype("int64")
        return self.distribution(logits).log_prob(values).sum(axis=(1, 2, 3))

    def at(self, logits, row, col):
        """The distribution of the C subpixels at (row, col), batch shape (N, C)."""
        return self.pixel(logits[:, :, row, col])

    def pixel(self, logits):
        """The distribution of the C subpixels of one pixel from its logits (N, C or C*K),
        batch shape (N, C)."""
        if self.binary:
            return Bernoulli(logits=logits)
        return Categorical(logits=logits.reshape(len(logits), self.channels, self.levels))
