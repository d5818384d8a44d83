"""jem: Joint Energy-based Model (Grathwohl et al. 2020, "Your Classifier is Secretly an
Energy Based Model and You Should Treat it Like One"). A classifier's logits f(x)[y] define
p(x, y) = exp(f(x)[y]) / Z, so

    p(y | x) = softmax(f(x))[y]                        (the classifier, as it always was)
    p(x)     = sum_y exp(f(x)[y]) / Z,  E(x) = -logsumexp_y f(x)[y]    (eq. 5)

and training maximises log p(x) + log p(y | x) (eq. 8): the cross-entropy on labelled
data plus ebm's contrastive-divergence term on E(x), with the same SGLD chains and replay
buffer (minigen/energy/model.py). Reports test_accuracy beside the sample-quality metrics.
"""
from .. import functional as F
from ..autograd import no_grad
from ..energy import losses
from ..energy.model import EnergyModel, to_network
from ..energy.networks import ConvNet
from . import register
from .ebm import IMAGES, SAMPLER, SAMPLER_RANGES


@register("jem", "JEM: a classifier whose logits define an energy over x (Grathwohl et "
          "al.), cross-entropy + contrastive divergence with SGLD from a replay buffer",
          data=IMAGES, ranges={**SAMPLER_RANGES, "channels": "[1, inf)",
                               "px_weight": "[0, inf)"},
          channels=32, px_weight=1.0, **SAMPLER, steps=2000, batch_size=64, lr=1e-3,
          betas=(0.0, 0.999))
class JEM(EnergyModel):
    def __init__(self, spec, generator, px_weight=1.0, **config):
        if not spec.num_classes:
            raise ValueError(f"jem is a classifier: {spec.name} has no labels")
        if not px_weight >= 0:
            raise ValueError(f"px_weight={px_weight}: the weight of log p(x) must be >= 0")
        self.px_weight = float(px_weight)
        super().__init__(spec, generator, **config)

    def build_network(self, generator):
        return ConvNet(self.spec.shape, self.channels, self.spec.num_classes, generator)

    def energy(self, x):
        """eq. (5): E(x) = -logsumexp_y f(x)[y]."""
        return -self.net(x).logsumexp(axis=1)

    def loss_terms(self, batch, x_positive, x_negative):
        """eq. (8): -log p(y | x) + px_weight * (contrastive divergence for log p(x))."""
        if batch.labels is None:
            raise ValueError("jem trains on labelled data")
        logits = self.net(x_positive)
        cross_entropy = F.cross_entropy(logits, batch.labels)
        e_positive, e_negative = -logits.logsumexp(axis=1), self.energy(x_negative)
        px, cd = losses.contrastive_divergence(e_positive, e_negative, self.alpha)
        return cross_entropy + self.px_weight * px, {
            "cross_entropy": cross_entropy.item(), "cd": cd.item(),
            "e_real": e_positive.mean().item(), "e_fake": e_negative.mean().item()}

    def evaluate(self, batches, final=True):
        batches = list(batches)
        correct, count = 0, 0
        with no_grad():
            for batch in batches:
                logits = self.net(to_network(batch.x, self.spec)).numpy()
                correct += int((logits.argmax(axis=1) == batch.labels.numpy()).sum())
                count += len(logits)
        return {"accuracy": correct / count, **super().evaluate(batches, final)}
