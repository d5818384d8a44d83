"""The model base of the autoregressive sequence models (WaveNet, the causal Transformer,
char-RNN).

Each reads its data as one sequence of discrete values x_1 .. x_T (an image in
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
"""
import numpy as np

from .. import backend
from ..autograd import no_grad, tensor
from ..model import Model
from ..ops import stack
from .cache import SamplingCache
from .likelihood import DiscreteLikelihood


class SequenceModel(Model):
    """Base of the autoregressive sequence models. Subclasses define

        encode(values)      values (N, T) int64 Tensor -> input features, in the steps of x
        network(features)   -> logits (N, T, outputs): step t from features of steps < t

    where outputs is 1 (a Bernoulli logit) for binary data and K for K levels, and may
    define logits_at(cache, values, t) -> logits (N, outputs) of step t alone (cached
    sampling). With conditional=True the model is p(x | y): network and logits_at take the
    labels y (N,) as one more argument.
    """

    def __init__(self, spec, context, conditional=False):
        super().__init__(spec)
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
        self.likelihood = DiscreteLikelihood(self.levels)
        self.outputs = self.likelihood.outputs
        self.num_classes = spec.num_classes if conditional else None

    @property
    def text_window(self):
        """Text is read as windows of `context` characters (data.Examples)."""
        return self.length if self.is_text else None

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
        return self.likelihood.log_prob(self.logits(values, labels), values)

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
        return self.likelihood.distribution(logits)

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
