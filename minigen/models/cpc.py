"""cpc: Contrastive Predictive Coding on images (van den Oord, Li and Vinyals 2018,
"Representation Learning with Contrastive Predictive Coding", sec. 3.3; Henaff et al. 2019).

The image is cut into a G x G grid of `patch` x `patch` patches (4x4 patches of 2x2 on 8x8
digits), and the encoder f (minigen.representation.encoder) encodes each patch alone,
z_{ij} = f(patch_ij) (N, F, G, G). An autoregressive context over the grid is built from
PixelCNN's masked convolutions (minigen.autoregressive.masked.MaskedConv2d, mask B: the
context c_{ij} sees the codes of the rows above and of row i up to column j), `context`
layers of 3x3 with ReLU. Row i's context predicts the codes k rows below with one linear
map W_k per k = 1..`predict` (eq. 3), scored by InfoNCE (eq. 4) against every other patch
code at that distance in the batch:

    L = 1/K sum_k -1/M_k sum_{(n,i,j)} log exp(z_{n,i+k,j} . W_k c_{nij})
                                        / sum_{(m,a,b)} exp(z_{m,a+k,b} . W_k c_{nij})

The grid's rows must outnumber `predict` (predict < G). features(x) = the grid of patch
codes z, flattened (G G F numbers: 2048 on digits), what the linear probe reads. The paper
mean-pools its contexts, but its patches are 64x64 pixels; a code of 2x2 pixels says little
alone, and the mean over the grid loses where each is (after 300 steps on digits: 0.686
probed on that mean, 0.981 on the grid, 0.967 on the mean context).
Metrics: `pretext_loss`, and at the end `linear_probe_acc`.
"""
from .. import nn
from ..autograd import tensor
from ..autoregressive.masked import MaskedConv2d
from ..representation.contrastive import info_nce
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.pretext import tiles
from ..representation.selfsupervised import SelfSupervisedModel
from . import register


@register("cpc", "CPC: InfoNCE between codes of patches k rows ahead and predictions from a "
          "masked-conv context; features = the grid of patch codes", data=IMAGES, width=32,
          patch=0, context=2, predict=2, **AUGMENT, steps=2000, batch_size=64, lr=1e-3,
          ranges={**AUGMENT_RANGES, "patch": "[0, inf)", "context": "[1, inf)",
                  "predict": "[1, inf)"})
class CPC(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, patch=0, context=2, predict=2, **augment):
        super().__init__(spec, generator, width, **augment)
        _, h, w = spec.shape
        self.patch = int(patch) or h // 4
        if self.patch < 2 or h % self.patch or w % self.patch:
            raise ValueError(f"patch={patch}: the {h}x{w} images must cut into a grid of "
                             f"whole patches of at least 2x2 (the encoder pools by 2)")
        self.grid = h // self.patch
        if not 1 <= predict < self.grid:
            raise ValueError(f"predict={predict}: a grid of {self.grid} rows of patches can "
                             f"predict from 1 to {self.grid - 1} rows ahead")
        if w != h:
            raise ValueError(f"cpc: the grid of patches is square, the images {h}x{w}")
        features = self.encoder.features
        self.context = nn.ModuleList([MaskedConv2d(features, features, 3, "B",
                                                   generator=generator)
                                      for _ in range(int(context))])
        self.predictors = nn.ModuleList([nn.Linear(features, features, bias=False,
                                                   generator=generator)
                                         for _ in range(int(predict))])

    def codes(self, y):
        """z (N, F, G, G): the encoder's code of each patch of images y, each patch alone."""
        patches = tiles(y, self.grid)  # (N, G*G, C, p, p), raster order
        n = len(y)
        z = self.encoder(tensor(patches.reshape(n * self.grid ** 2, *patches.shape[2:])))
        return z.reshape(n, self.grid, self.grid, -1).transpose(0, 3, 1, 2)

    def pretext_loss(self, y, generator):
        z = self.codes(y)
        c = z
        for layer in self.context:
            c = layer(c).relu()
        n, f, g, _ = z.shape
        losses = []
        for k, predictor in enumerate(self.predictors, start=1):
            # contexts of rows 0..G-1-k, the codes of rows k..G-1, (M, F) each
            here = c[:, :, :g - k].transpose(0, 2, 3, 1).reshape(-1, f)
            ahead = z[:, :, k:].transpose(0, 2, 3, 1).reshape(-1, f)
            losses.append(info_nce(predictor(here), ahead))
        loss = sum(losses[1:], losses[0]) / len(losses)
        return loss, {f"info_nce_{k}": l.item() for k, l in enumerate(losses, start=1)}

    def embed(self, y):
        return self.codes(y).reshape(len(y), -1)
