"""The likelihood of discrete values from a network's logits, one head for every
autoregressive model of discrete data (MADE, the PixelCNNs, the sequence models):

    log p(x_i | x_<i) = x_i l - softplus(l)         binary data, one Bernoulli logit l
    log p(x_i | x_<i) = log_softmax(l)[x_i]         K levels, the K logits l of a categorical

Both are exact and finite for any logit (log sigmoid(l) would give log 0 once sigmoid(l)
rounds to 0). The logits of a value lie on a last axis of `outputs` = 1 or K.
`PixelLikelihood` reads an image network's logits, whose channels hold the subpixels'
logits channel-major, as the logits of every subpixel.
"""
from ..distributions import Bernoulli, Categorical
from ..ops import log_softmax, moveaxis, softplus, take_along_axis


class DiscreteLikelihood:
    """p(x_i | x_<i) of values x_i in 0..levels-1 from logits (values' shape + (outputs,)):
    a Bernoulli logit for binary data (levels == 2, outputs == 1), a categorical over the K
    levels otherwise (outputs == K)."""

    def __init__(self, levels):
        self.levels = int(levels)
        self.binary = self.levels == 2
        self.outputs = 1 if self.binary else self.levels

    def log_prob(self, logits, values):
        """log p(x_i | x_<i) of every value, in values' shape."""
        if self.binary:
            logit = logits[..., 0]
            return values.astype(logit.dtype) * logit - softplus(logit)
        return take_along_axis(log_softmax(logits, axis=-1),
                               values.astype("int64").data[..., None], axis=-1)[..., 0]

    def distribution(self, logits):
        """p(x_i | x_<i) of every value, batch shape values' shape: for sampling."""
        return Bernoulli(logits=logits[..., 0]) if self.binary else Categorical(logits=logits)


class PixelLikelihood(DiscreteLikelihood):
    """The subpixels' likelihood from an image network's logits (N, out_channels, H, W). The
    channels are laid out channel-major, (C, outputs), so colour group c owns a contiguous
    block, as the masks' groups require."""

    def __init__(self, channels, levels):
        super().__init__(levels)
        self.channels = channels
        self.out_channels = channels * self.outputs

    def subpixels(self, logits):
        """The logits (N, C, H, W, outputs) of every subpixel."""
        n, _, height, width = logits.shape
        return moveaxis(logits.reshape(n, self.channels, self.outputs, height, width), 2, -1)

    def at(self, logits, row, col):
        """The distribution of the C subpixels at (row, col), batch shape (N, C)."""
        return self.pixel(logits[:, :, row, col])

    def pixel(self, logits):
        """The distribution of the C subpixels of one pixel from its logits (N, C * outputs),
        batch shape (N, C)."""
        return self.distribution(logits.reshape(len(logits), self.channels, self.outputs))
