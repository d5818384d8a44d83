"""jigsaw: solving jigsaw puzzles (Noroozi and Favaro 2016, "Unsupervised Learning of Visual
Representations by Solving Jigsaw Puzzles").

Each image is cut into a `grid` x `grid` grid of tiles (2x2 tiles of 4x4 pixels on 8x8
digits), the tiles are put in the order of one of `permutations` fixed permutations drawn
uniformly (minigen.representation.pretext.permutation_set: all 24 orders of 4 tiles by
default, else the greedy maximal-Hamming-distance set of the paper), and the network
names the permutation. The encoder f (minigen.representation.encoder) sees each tile alone
(the paper's shared "context-free" columns); the features of the T tiles, in the shuffled
order, are concatenated and classified by Linear(T F, hidden), ReLU, Linear(hidden, P):

    L = -1/N sum_n log softmax(h([f(t_{p_n(1)}), ..., f(t_{p_n(T)})]))_{p_n}

Metrics: `pretext_loss`, `jigsaw_accuracy`, and at the end `linear_probe_acc` on the
encoder's features of the whole image (the encoder is convolutional with a global
average pool, so it reads a tile and an image alike).
"""
from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.pretext import permutation_set, permute, tiles
from ..representation.selfsupervised import SelfSupervisedModel
from . import register


@register("jigsaw", "name the permutation of an image's shuffled tiles (a fixed set of "
          "permutations); features = the encoder's", data=IMAGES, width=32, grid=2,
          permutations=24, hidden=256, **AUGMENT, steps=2000, batch_size=64, lr=1e-3,
          ranges={**AUGMENT_RANGES, "grid": "[2, 3]", "permutations": "[2, inf)",
                  "hidden": "[1, inf)"})
class Jigsaw(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, grid=2, permutations=24, hidden=256,
                 **augment):
        super().__init__(spec, generator, width, **augment)
        self.grid = int(grid)
        _, h, w = spec.shape
        if h % self.grid or w % self.grid:
            raise ValueError(f"grid={grid}: the {h}x{w} images do not cut into a "
                             f"{grid}x{grid} grid of equal tiles")
        self.permutations = permutation_set(self.grid ** 2, int(permutations))
        tiles_count = self.grid ** 2
        self.hidden = nn.Linear(tiles_count * self.encoder.features, int(hidden),
                                generator=generator)
        self.out = nn.Linear(int(hidden), len(self.permutations), generator=generator)

    def pretext_loss(self, y, generator):
        labels = generator.rng.integers(0, len(self.permutations), len(y))
        shuffled = permute(tiles(y, self.grid), self.permutations, labels)
        n, t = shuffled.shape[:2]
        f = self.encoder(tensor(shuffled.reshape(n * t, *shuffled.shape[2:])))
        logits = self.out(self.hidden(f.reshape(n, -1)).relu())
        labels = tensor(labels, device=self.device)
        accuracy = float((logits.numpy().argmax(axis=1) == labels.numpy()).mean())
        return F.cross_entropy(logits, labels), {"jigsaw_accuracy": accuracy}
