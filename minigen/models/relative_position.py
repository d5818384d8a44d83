"""relative-position: predicting where a patch is relative to another (Doersch, Gupta and
Efros 2015, "Unsupervised Visual Representation Learning by Context Prediction").

From a 3x3 grid of `patch` x `patch` patches at a random place in the image (the paper's
jitter), the centre patch and one of its 8 neighbours, drawn uniformly, go through the
encoder f (minigen.representation.encoder; each patch alone); their features, concatenated,
are classified by Linear(2F, hidden), ReLU, Linear(hidden, 8) into which neighbour it is:

    L = -1/N sum_n log softmax(h([f(centre_n), f(neighbour_n)]))_{k_n}

`patch` = 0 takes a third of the side, rounded down (2 pixels on 8x8 digits, 9 on 28x28).
Metrics: `pretext_loss`, `position_accuracy`, and at the end `linear_probe_acc` on the
encoder's features of the whole image.
"""
from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.pretext import NEIGHBOURS, patch_pairs
from ..representation.selfsupervised import SelfSupervisedModel
from . import register


@register("relative-position", "predict which of the 8 neighbours a patch is of a centre "
          "patch; features = the encoder's", data=IMAGES, width=32, patch=0, hidden=256,
          **AUGMENT, steps=2000, batch_size=64, lr=1e-3,
          ranges={**AUGMENT_RANGES, "patch": "[0, inf)", "hidden": "[1, inf)"})
class RelativePosition(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, patch=0, hidden=256, **augment):
        super().__init__(spec, generator, width, **augment)
        side = min(spec.shape[1:])
        self.patch = int(patch) or side // 3
        if not 2 <= self.patch <= side // 3:
            raise ValueError(f"patch={patch}: a 3x3 grid of patches must fit the "
                             f"{spec.shape[1]}x{spec.shape[2]} images, so at most "
                             f"{side // 3}, and the encoder pools by 2, so at least 2")
        self.hidden = nn.Linear(2 * self.encoder.features, int(hidden), generator=generator)
        self.out = nn.Linear(int(hidden), len(NEIGHBOURS), generator=generator)

    def pretext_loss(self, y, generator):
        centres, neighbours, labels = patch_pairs(y, generator, self.patch)
        f = self.encoder(tensor(backend.xp_of(y).concatenate([centres, neighbours])))
        n = len(y)
        logits = self.out(self.hidden(f.reshape(2, n, -1).transpose(1, 0, 2)
                                      .reshape(n, -1)).relu())
        labels = tensor(labels, device=self.device)
        accuracy = float((logits.numpy().argmax(axis=1) == labels.numpy()).mean())
        return F.cross_entropy(logits, labels), {"position_accuracy": accuracy}
