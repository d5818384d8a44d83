"""deep-infomax: Deep InfoMax, local (Hjelm, Fedorov, Lavoie-Marchildon, Grewal, Bachman,
Trischler and Bengio 2019, "Learning deep representations by mutual information estimation
and maximization").

The encoder (minigen.representation.encoder) gives a local feature map l (N, 2w, H/2, W/2),
after its pooling, each place of which sees a patch of the image, and the global features
g (N, 4w) of the whole image (minigen.representation.contrastive.local_global). Two small
networks map them into one space of `critic` dimensions, a 1x1 conv, ReLU, 1x1 conv on each
place of l and Linear, ReLU, Linear on g, and the score of a pair is their dot product,
S[i, m, j] = G(g_i) . L(l_{m,j}). The global features should tell their own image's
patches from other images' (sec. 3.2): the mutual information between g and each l_j is
maximised through a lower bound, `estimator`

    jsd       Jensen-Shannon (eq. 4): L = E_pos[softplus(-S)] + E_neg[softplus(S)]
    infonce   InfoNCE (eq. 5): L = -E_{i,j} log exp(S[i,i,j]) / sum_m exp(S[m,i,j])

with the other images of the batch as negatives. features(x) = g, the encoder's.
Metrics: `pretext_loss` (the estimator's loss on the test images), and at the end
`linear_probe_acc`.
"""
from .. import nn
from ..autograd import tensor
from ..representation.contrastive import dim_infonce, dim_jsd, local_global
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.selfsupervised import SelfSupervisedModel
from . import register

ESTIMATORS = {"jsd": dim_jsd, "infonce": dim_infonce}


@register("deep-infomax", "Deep InfoMax: local/global mutual information, JSD or InfoNCE "
          "estimator; features = the encoder's", data=IMAGES, width=32, critic=64,
          estimator="jsd", **AUGMENT, steps=2000, batch_size=64, lr=1e-3,
          ranges={**AUGMENT_RANGES, "critic": "[1, inf)"})
class DeepInfoMax(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, critic=64, estimator="jsd", **augment):
        super().__init__(spec, generator, width, **augment)
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator={estimator!r}: choose one of "
                             f"{', '.join(ESTIMATORS)}")
        self.estimator = estimator
        d, local_channels = int(critic), 2 * int(width)
        self.local_critic = nn.Sequential(
            nn.Conv2d(local_channels, d, 1, generator=generator), nn.ReLU(),
            nn.Conv2d(d, d, 1, generator=generator))
        self.global_critic = nn.Sequential(
            nn.Linear(self.encoder.features, d, generator=generator), nn.ReLU(),
            nn.Linear(d, d, generator=generator))

    def pretext_loss(self, y, generator):
        local, global_features = local_global(self.encoder, tensor(y))
        loss = ESTIMATORS[self.estimator](self.global_critic(global_features),
                                          self.local_critic(local))
        return loss, {}
