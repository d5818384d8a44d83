"""rotation: predicting image rotations (Gidaris, Singh and Komodakis 2018, "Unsupervised
Representation Learning by Predicting Image Rotations").

Every image of a batch is shown turned by 0, 90, 180 and 270 degrees (all four, as the
paper does: sec. 2.2), and a linear head on the encoder (minigen.representation.encoder)
classifies the turn:

    L = -1/(4N) sum_n sum_{k=0..3} log softmax(W f(R_k(aug(x_n))))_k        (eq. 1-2)

Square images only (a quarter turn of an H x W image is W x H). Metrics: `pretext_loss`
(the cross-entropy on the test images), `rotation_accuracy`, and at the end
`linear_probe_acc` on the encoder's features of the upright images.
"""
from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.pretext import rotations
from ..representation.selfsupervised import SelfSupervisedModel
from . import register


@register("rotation", "predict which of 0/90/180/270 degrees an image was turned by; "
          "features = the encoder's", data=IMAGES, width=32, **AUGMENT, steps=2000,
          batch_size=64, lr=1e-3, ranges=AUGMENT_RANGES)
class Rotation(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, **augment):
        if spec.shape[1] != spec.shape[2]:
            raise ValueError(f"rotation: quarter turns need square images, these are "
                             f"{spec.shape[1]}x{spec.shape[2]}")
        super().__init__(spec, generator, width, **augment)
        self.head = nn.Linear(self.encoder.features, 4, generator=generator)

    def pretext_loss(self, y, generator):
        turned, turns = rotations(y)
        logits = self.head(self.encoder(tensor(turned)))
        turns = tensor(turns, device=self.device)
        accuracy = float((logits.numpy().argmax(axis=1) == turns.numpy()).mean())
        return F.cross_entropy(logits, turns), {"rotation_accuracy": accuracy}
