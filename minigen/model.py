"""The model contract: what every model gives the trainer, the command line and the tests.

A model is an `nn.Module` subclass of `Model`, built as `Model(spec, generator, **config)`
from a `DataSpec` (minigen.models) and the config keys it registers. The trainer is one loop
that asks the model for its updates and does the rest (optimisers, clipping, EMA,
checkpoints, metrics, pictures), so a family never needs a trainer of its own:

    players()                 {name: Player}: the parameter groups, each with its own
                              optimiser (one group, "model", unless the model says more)
    updates(batches, gen)     yields Update(player, loss, logs) for each update of one step,
                              in the model's order; the trainer does zero_grad, backward,
                              clipping and the optimiser step of that player before asking
                              for the next, so a GAN's generator loss sees the discriminator
                              already updated. batches.next() gives the step's next batch.
    after_update(player)      work after a player's optimiser step (a WGAN's weight clipping)
    evaluate(batches, final)  the model's own metrics on held-out data, a dict of means per
                              example ({"nll_nats": ..., "bpd": ...}); the trainer writes them
                              as test_<key> / valid_<key>; `final` asks for the expensive ones
                              (an IWAE bound with K = 1000) that periodic evaluation skips
    validation_metric         the key of evaluate() that --early-stop selects on, and
    validation_goal           "min" or "max"
    sample(n, gen, labels)    n new examples as a NumPy array in the data's own format
                              (uint8 levels for discrete images, float for continuous data);
                              a model of features alone (representation learning) sets
                              draws_samples = False: no samples.png, and sample refuses
    draw(samples, path, ref)  the picture of samples (by default chosen by the data's kind);
                              at the end, and at each evaluation where
                              pictures_at_evaluation is set
    extra_state()             model state that is not a parameter (a replay buffer, a
    load_extra_state(state)   codebook's running counts), saved in the checkpoint
    set_training_split(x, y)  the run's training split as loaded (NumPy), once, before the
                              first step, for a model that needs it whole (a labelled
                              subset, a linear probe at the end); by default ignored

A likelihood model only writes `loss(x, generator, labels=None)` (a scalar Tensor),
`nll(x, labels=None)` (per-example -log p(x) in nats, a Tensor) and `sample`: the defaults
below turn those into one update per step and the `nll_nats`/`bpd` metrics.

Optional capabilities, each a method that a model overrides where it has it:
    num_classes               not None for a model of p(x | y): batches carry labels and
                              sample takes them (--label)
    text_window               for text, the window of characters one example is
    features(x)               encoder features (N, F) for the linear probe (None: no encoder)
    log_density(points)       log p of continuous points, for density pictures (from nll)
"""
import math
from dataclasses import dataclass, field

import numpy as np

from . import nn, pictures
from .autograd import Tensor, no_grad, tensor


@dataclass
class Batch:
    """Examples of one update: x (a Tensor on the model's device) and their labels (a Tensor,
    or None where the data has none)."""
    x: Tensor
    labels: Tensor = None


@dataclass
class Player:
    """One parameter group with its own optimiser. lr and betas of None take the run's
    settings (--lr, the betas config key); optimizer is "adam", "rmsprop" or "sgd"."""
    parameters: list
    optimizer: str = "adam"
    lr: float = None
    betas: tuple = None
    options: dict = field(default_factory=dict)  # more optimiser arguments (weight_decay)


@dataclass
class Update:
    """One optimiser step of `player` on `loss`; logs are numbers to show and write to
    log.csv (averaged over the log period)."""
    player: str
    loss: Tensor
    logs: dict = field(default_factory=dict)


class Model(nn.Module):
    """Base class of every model; see the module docstring for the contract."""

    num_classes = None
    text_window = None
    # a model with an encoder defines features(x) -> (N, F) Tensor, what the linear probe
    # reads; without one the probe reads the Fisher scores of the likelihood
    features = None
    validation_metric = "nll_nats"
    validation_goal = "min"
    # draw samples.png (and its companions) again at each periodic evaluation (--config
    # eval_every=N); for models that sample fast (GANs), not for one pass per pixel
    pictures_at_evaluation = False
    draws_samples = True

    def __init__(self, spec):
        super().__init__()
        self.spec = spec

    # training ---------------------------------------------------------------------------
    def players(self):
        return {"model": Player(list(self.parameters()))}

    def updates(self, batches, generator):
        """One update of the one player on the mean loss of one batch."""
        batch = batches.next()
        yield Update("model", self.loss(batch.x, generator, **self.label_args(batch)))

    def after_update(self, player):
        pass

    def loss(self, x, generator, labels=None):
        raise NotImplementedError(f"{type(self).__name__} defines neither loss nor updates")

    def label_args(self, batch):
        """{"labels": ...} for a conditional model, {} otherwise."""
        if not self.num_classes:
            return {}
        if batch.labels is None:
            raise ValueError(f"{self.spec.name}: a conditional model needs labelled data")
        return {"labels": batch.labels}

    # evaluation ------------------------------------------------------------------------
    def evaluate(self, batches, final=True):
        """Mean negative log-likelihood per example (nats), and bits per dimension for
        discrete data. Text batches are 1-D stretches scored per character."""
        total, count = 0.0, 0
        with no_grad():
            for batch in batches:
                nll = self.nll(batch.x, **self.label_args(batch)).numpy()
                total += float(nll.astype(np.float64).sum())
                count += len(nll)
        return likelihood_metrics(total / count, self.spec)

    def nll(self, x, labels=None):
        raise NotImplementedError(f"{type(self).__name__} has no exact likelihood (nll)")

    # samples ---------------------------------------------------------------------------
    def sample(self, n, generator, labels=None):
        raise NotImplementedError(f"{type(self).__name__} cannot sample")

    def draw(self, samples, path, reference):
        """Write the picture of samples to path (a grid of images, a density beside the
        samples for 2-D data, ...): pictures.draw_samples chooses by the data's kind."""
        pictures.draw_samples(self.spec, samples, path, reference,
                              log_density=self.log_density)

    def log_density(self, points):
        """log p of continuous points (NumPy (N, D)), for the density pictures; None for a
        model without a likelihood (nll), whose pictures then show its samples only."""
        if type(self).nll is Model.nll:
            return None
        with no_grad():
            return -self.nll(tensor(points.astype(np.float32), device=self.device)).numpy()

    # sampling settings: keys of the model's config that change how a trained model
    # samples, never what it learned; `minigen sample RUN --config key=value` sets them
    sampling_keys = ()

    def set_sampling(self, **settings):
        """Apply sampling settings (keys of sampling_keys; values parsed and range-checked
        by the registry already). A model whose settings constrain each other overrides
        this to check them together."""
        for key, value in settings.items():
            setattr(self, key, value)

    # optional capabilities -------------------------------------------------------------
    def set_training_split(self, x, y):
        pass

    def extra_state(self):
        return {}

    def load_extra_state(self, state):
        pass

    @property
    def device(self):
        for p in self.parameters():
            return p.device
        return "cpu"


def likelihood_metrics(nll, spec):
    """{"nll_nats": nats per example} and, for discrete data, bits per dimension."""
    out = {"nll_nats": nll}
    if spec.kind == "discrete":
        out["bpd"] = nll / (spec.dims * math.log(2))
    return out
