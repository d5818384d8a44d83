"""simclr: SimCLR (Chen, Kornblith, Norouzi and Hinton 2020, "A Simple Framework for
Contrastive Learning of Visual Representations"), Algorithm 1.

Each image of a batch of N is augmented twice; the 2N views go through the encoder f
(minigen.representation.encoder: 128 features on digits) and a projection head
g = Linear(F, F), ReLU, Linear(F, `projection`); NT-Xent (eq. 1,
minigen.representation.losses.nt_xent) at `temperature` pulls the two views of an image
together against the other 2N - 2. The head is thrown away: `features(x)` = f(x), what the
linear probe reads (`linear_probe_acc`, at the end of training and by `minigen probe RUN`).

Metrics: `nt_xent` of the test images (two views each from a fixed seed, batches of
eval_batch_size images, so its negatives are that batch's), and at the end
`linear_probe_acc`. The issue's checked config is the default: 256 images (512 views) a
step, temperature 0.5, Adam 1e-3, 3000 steps, the shared augmentations on digits.
"""
import numpy as np

from .. import backend
from ..autograd import no_grad, tensor
from ..model import Update
from ..random import Generator
from ..representation.encoder import Encoder, ProjectionHead
from ..representation.losses import nt_xent
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES, RepresentationModel
from . import register

EVALUATION_SEED = 0  # the test views' augmentations, the same at every evaluation


@register("simclr", "SimCLR: NT-Xent between two augmented views of each image, projection "
          "head, temperature; features = the encoder's", data=IMAGES, width=32,
          projection=64, temperature=0.5, **AUGMENT, steps=3000, batch_size=256, lr=1e-3,
          ranges={**AUGMENT_RANGES, "projection": "[1, inf)", "temperature": "(0, inf)"})
class SimCLR(RepresentationModel):
    validation_metric = "nt_xent"

    def __init__(self, spec, generator, width=32, projection=64, temperature=0.5, **augment):
        super().__init__(spec, **augment)
        if not temperature > 0:
            raise ValueError(f"temperature={temperature}: NT-Xent divides by the "
                             f"temperature, which must be > 0")
        if projection < 1:
            raise ValueError(f"projection={projection}: the projection needs at least 1 "
                             f"dimension")
        self.temperature = float(temperature)
        self.encoder = Encoder(spec.shape[0], width, generator)
        features = self.encoder.features
        self.projection = ProjectionHead(features, features, int(projection), generator)

    def views(self, y, generator):
        """The two augmented views (arrays) of images y on [0, 1], in the order drawn."""
        first = self.augment(y, generator)
        return first, self.augment(y, generator)

    def contrastive_loss(self, y, generator):
        first, second = self.views(y, generator)
        views = tensor(backend.xp_of(first).concatenate([first, second]))
        z = self.projection(self.encoder(views))
        return nt_xent(z, self.temperature)

    def updates(self, batches, generator):
        yield Update("model", self.contrastive_loss(self.scale(batches.next().x), generator))

    def features(self, x):
        return self.encoder(tensor(self.scale(x)))

    def evaluate(self, batches, final=True):
        total, count, features, labels = 0.0, 0, [], []
        generator = Generator(EVALUATION_SEED)
        with no_grad():
            for batch in batches:
                y = self.scale(batch.x)
                if len(y) > 1:
                    total += float(self.contrastive_loss(y, generator).item()) * len(y)
                    count += len(y)
                if final:
                    features.append(self.encoder(tensor(y)).numpy())
                    labels.append(batch.labels.numpy())
        metrics = {"nt_xent": total / max(count, 1)}
        if final:
            metrics["linear_probe_acc"] = self.linear_probe(
                np.concatenate(features).astype(np.float64), np.concatenate(labels))
        return metrics
