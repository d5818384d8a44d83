"""moco: Momentum Contrast (He, Fan, Wu, Xie and Girshick 2020, "Momentum Contrast for
Unsupervised Visual Representation Learning"), Algorithm 1, with MoCo v2's projection head
(Chen et al. 2020).

Two augmentations of each image: the query q = g(f(view 1)) from the encoder f
(minigen.representation.encoder) and a head g = Linear(F, F), BatchNorm, ReLU,
Linear(F, projection) (minigen.representation.contrastive.NormalisedHead: without the
normalisation the outputs collapsed to one direction); the key k = g_k(f_k(view 2)) from
their momentum copies, which get no gradient. Batch normalisation lets the images of a batch
talk to each other, which a model can use to tell its own batch's key from the queue's
older ones without learning anything of the images; MoCo's Shuffle BN (sec. 3.3) stops
that, and is done here on one device: the heads normalise the batch in two halves, the
keys' halves drawn by a random permutation, so a query and its key are normalised among
different images.

The negatives are a queue of the last `queue` keys (minigen.representation.contrastive
.FeatureQueue, first in first out), so a step contrasts each query with far more negatives
than the batch holds. With q and k L2-normalised and t the temperature (eq. 1):

    L = -1/N sum_i log exp(q_i.k_i / t) / (exp(q_i.k_i / t) + sum_j exp(q_i.queue_j / t))

After each optimiser step of f and g, the momentum update (eq. 2)
theta_k <- m theta_k + (1 - m) theta_q, then the batch's keys go into the queue in place of
the oldest. The queue must hold at least a batch (queue >= batch_size). The momentum
encoder's weights are parameters of the model (saved and resumed, not trained); the queue
and its pointer are model state in the checkpoint.

Metrics: `pretext_loss` (the loss on the test images, against the queue as it stands;
their keys are not queued), and at the end `linear_probe_acc` on f's features.
"""
import copy

from ..autograd import no_grad, tensor
from ..model import Player, Update
from ..representation.contrastive import (FeatureQueue, NormalisedHead, moco_loss,
                                          momentum_update, shuffled_halves)
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.selfsupervised import SelfSupervisedModel, check_positive
from . import register


@register("moco", "MoCo: InfoNCE against a queue of keys from a momentum encoder; "
          "features = the encoder's", data=IMAGES, width=32, projection=64, queue=1024,
          momentum=0.99, temperature=0.2, **AUGMENT, steps=2000, batch_size=128, lr=1e-3,
          ranges={**AUGMENT_RANGES, "projection": "[1, inf)", "queue": "[1, inf)",
                  "momentum": "[0, 1]", "temperature": "(0, inf)"})
class MoCo(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, projection=64, queue=1024, momentum=0.99,
                 temperature=0.2, **augment):
        super().__init__(spec, generator, width, **augment)
        self.temperature = check_positive("temperature", temperature)
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum={momentum}: the key encoder's momentum is in [0, 1]")
        self.momentum = float(momentum)
        features = self.encoder.features
        self.head = NormalisedHead(features, features, int(projection), generator)
        self.key_encoder = copy.deepcopy(self.encoder)
        self.key_head = copy.deepcopy(self.head)
        for p in self.momentum_parameters():
            p.requires_grad = False
        self.queue = FeatureQueue(int(queue), int(projection), generator)
        self.pending = None  # the keys of the step, queued after its update

    def query_parameters(self):
        return list(self.encoder.parameters()) + list(self.head.parameters())

    def momentum_parameters(self):
        return list(self.key_encoder.parameters()) + list(self.key_head.parameters())

    def players(self):
        return {"model": Player(self.query_parameters())}

    def pretext_loss(self, y, generator):
        """The loss of images y; the keys it used are kept in self.pending."""
        queries = shuffled_halves(self.head, self.encoder(tensor(self.augment(y, generator))))
        with no_grad():
            features = self.key_encoder(tensor(self.augment(y, generator)))
            keys = shuffled_halves(self.key_head, features, generator)
        self.pending = (keys / ((keys * keys).sum(axis=1, keepdims=True).sqrt() + 1e-12)).data
        return moco_loss(queries, keys, self.queue.keys, self.temperature), {}

    def updates(self, batches, generator):
        y = self.scale(batches.next().x)
        if len(y) > len(self.queue):
            raise ValueError(f"queue={len(self.queue)} is smaller than the batch of {len(y)}: "
                             f"MoCo's queue must hold at least one batch of keys")
        loss, _ = self.pretext_loss(y, generator)
        yield Update("model", loss)

    def after_update(self, player):
        """Algorithm 1: the momentum update, then the keys in and the oldest out."""
        momentum_update(self.momentum_parameters(), self.query_parameters(), self.momentum)
        self.queue.enqueue(self.pending)

    def extra_state(self):
        return self.queue.state()

    def load_extra_state(self, state):
        self.queue.load_state(state)
