"""A character-level recurrent network (char-RNN: Sutskever et al. 2011, Graves 2013,
Karpathy 2015) with LSTM or GRU cells, on text and on images read in raster order.

    p(x) = prod_t p(x_t | x_<t)
    s_t  = cell(e_{t-1}, s_{t-1}),  s_{-1} = 0           (autoregressive/recurrent.py)
    p(x_t | x_<t) = softmax(W h_t + b)                   (a sigmoid for binary data)

e_{t-1} is the learned embedding of x_{t-1} (a table of K rows, one per level) and e_{-1}
a learned start vector, so the input at step t is what was drawn before it and the output
at t is a function of x_<t alone. The cells (LSTM, Hochreiter & Schmidhuber 1997; GRU, Cho
et al. 2014) are stacked `layers` deep, with h_t the top layer's output; the head gives a
Bernoulli logit per step for binary data and K logits of a categorical otherwise. Text is
read as independent windows of `context` characters, each starting from the zero state
(autoregressive/sequence_model.py: SequenceModel).

Training uses truncated backpropagation through time (Williams & Peng 1990): `loss` runs
the window in chunks of `bptt` steps and carries the state from chunk to chunk detached,
so the gradient of p(x_t | x_<t) reaches back to the start of t's chunk and no further.
The forward values are the untruncated ones, so the loss is the exact negative log-
likelihood; only its gradient is truncated. `nll` (evaluation) runs every step in one
graph, since the likelihood is the same either way. The default bptt=64 keeps an 8x8 image
in one chunk and cuts a 128-character text window in two.

Sampling is cached (SequenceModel.sample with logits_at): the state is kept from step to
step, so each new step costs one update of the stack, where the naive sampler
(`sample(..., cached=False)`) runs the network over the whole prefix again.

Initialisation is torch's: the cells uniform in +-1/sqrt(hidden), the embedding table and
start vector N(0, 1) (nn.Embedding), the head as nn.Linear.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autoregressive.recurrent import Recurrent
from ..autoregressive.sequence_layers import Dense, shift_right
from ..autoregressive.sequence_model import SequenceModel
from . import register


@register("charrnn", "char-RNN: LSTM or GRU cells with truncated backprop through time, "
          "on text and on images as pixel sequences in raster order",
          data=("fortunes", "digits-bin", "digits", "fashion-mnist-bin"),
          cell="lstm", hidden=256, layers=1, embedding=64, bptt=64, context=128,
          steps=1000, batch_size=100, lr=1e-3,
          ranges={"hidden": "[1, inf)", "layers": "[1, inf)", "embedding": "[1, inf)",
                  "bptt": "[1, inf)", "context": "[1, inf)"})
class CharRNN(SequenceModel):
    def __init__(self, spec, generator, cell="lstm", hidden=256, layers=1, embedding=64,
                 bptt=64, context=128):
        super().__init__(spec, context)
        if cell not in Recurrent.CELLS:
            raise ValueError(f"charrnn: cell must be one of {', '.join(Recurrent.CELLS)}, "
                             f"not {cell!r}")
        for key, value in (("hidden", hidden), ("layers", layers), ("embedding", embedding),
                           ("bptt", bptt)):
            if int(value) < 1:
                raise ValueError(f"charrnn: {key} must be a positive integer, got {value}")
        self.bptt = int(bptt)
        self.tokens = nn.Embedding(self.levels, int(embedding))
        self.tokens.reset_parameters(generator)
        self.start = nn.Parameter(np.zeros(int(embedding), dtype=np.float32))
        nn.init.normal_(self.start, generator=generator)
        self.rnn = Recurrent(cell, embedding, hidden, layers, generator)
        self.head = Dense(int(hidden), self.outputs, generator)

    def encode(self, values):
        """The embedding of each value, (N, T, embedding), still in the steps of x."""
        return F.embedding(values, self.tokens.weight)

    def network(self, features, truncate=None):
        """Logits (N, T, outputs); step t reads the features of steps < t. `truncate=k`
        cuts the gradient into chunks of k steps (Recurrent.forward)."""
        h, _ = self.rnn(shift_right(features, self.start), truncate=truncate)
        return self.head(h)

    def loss(self, x, generator=None):
        """-1/N sum_n sum_t log p(x_nt | x_n<t), with the gradient truncated to `bptt`
        steps (truncated backpropagation through time; the value is exact)."""
        values = self.sequences(x, "loss")
        n, steps = values.shape
        logits = self.network(self.encode(values), truncate=self.bptt)
        # every step's distribution at once, as one batch of n * steps
        log_p = self.distribution(logits.reshape(n * steps, self.outputs)).log_prob(
            values.data.reshape(-1))
        return -log_p.sum() / n

    def logits_at(self, cache, values, t):
        """The logits (N, outputs) of step t alone, for cached sampling: the state after
        step t - 1 (kept in the cache) holds all that step t needs of x_<t, so the step is
        one update of the stack from the newest input, x_{t-1} (the start vector at t = 0)."""
        n = len(values)
        x = self.encode(values[:, t - 1]) if t > 0 else \
            self.start.reshape(1, -1).broadcast_to((n, self.start.shape[0]))
        states = cache.entry(self.rnn, lambda: self.rnn.initial_state(n, x))
        h, new = self.rnn.step(x, states)
        states[:] = new  # the cache's entry: now the state after step t
        return self.head(h)
