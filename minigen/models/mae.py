"""mae: the masked autoencoder (He, Chen, Xie, Li, Dollar and Girshick 2022, "Masked
Autoencoders Are Scalable Vision Learners").

The image is cut into `patch` x `patch` patches (patch=0: a quarter of the side, so 4x4
patches of 7x7 on fashion-mnist, of 2x2 on digits); a random `mask_ratio` of them is
hidden. The encoder, a Transformer (minigen.representation.vit: pre-LayerNorm blocks of
self-attention on the attention kernel F.attention, no causal mask), reads the visible
patches only: each a linear embedding of its pixels plus its fixed sinusoidal position,
`depth` blocks of width `dim`, a final LayerNorm. The light decoder maps those to
`decoder_dim`, puts a learned mask token in place of every hidden patch, adds the
positions and runs `decoder_depth` blocks, then a linear map to each patch's pixels. The
loss is the squared error on the masked patches alone (sec. 3, "Reconstruction target"):

    L = sum_{n,i} m_ni mean_d (x^_nid - x_nid)^2 / sum_{n,i} m_ni,   m_ni = 1: patch i hidden

features(x) = the encoder's mean token over all patches of the image (no masking), what
the linear probe reads. Metrics: `pretext_loss` (the loss on the test images, masks from a
fixed seed), and at the end `linear_probe_acc`.
"""
import numpy as np

from .. import backend
from .. import nn
from ..autograd import tensor
from ..autoregressive.sequence_layers import Dense, TransformerBlock, sinusoidal_positions
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.selfsupervised import SelfSupervisedModel
from ..representation.vit import (masked_patch_loss, patchify, random_masking,
                                  visible_count)
from ..ops import concatenate
from . import register

RANGES = {key: text for key, text in AUGMENT_RANGES.items() if key != "width"}


@register("mae", "masked autoencoder: a Transformer encoder on the visible patches, a light "
          "decoder, the loss on the masked patches; features = the mean token", data=IMAGES,
          patch=0, dim=64, depth=2, heads=4, decoder_dim=32, decoder_depth=1, mlp_ratio=2,
          mask_ratio=0.75, **{**AUGMENT, "erase_p": 0.0, "noise": 0.0}, steps=2000,
          batch_size=64, lr=1e-3,
          ranges={**RANGES, "patch": "[0, inf)", "dim": "[1, inf)", "depth": "[1, inf)",
                  "heads": "[1, inf)", "decoder_dim": "[1, inf)",
                  "decoder_depth": "[1, inf)", "mlp_ratio": "[1, inf)",
                  "mask_ratio": "(0, 1)"})
class MAE(SelfSupervisedModel):
    def __init__(self, spec, generator, patch=0, dim=64, depth=2, heads=4, decoder_dim=32,
                 decoder_depth=1, mlp_ratio=2, mask_ratio=0.75, **augment):
        super().__init__(spec, generator, width=None, **augment)
        c, h, w = spec.shape
        self.patch = int(patch) or h // 4
        if self.patch < 1 or h % self.patch or w % self.patch:
            raise ValueError(f"patch={patch}: the {h}x{w} images must cut into whole "
                             f"patches")
        self.patches = (h // self.patch) * (w // self.patch)
        self.visible = visible_count(self.patches, mask_ratio)
        for key, width, count in (("dim", dim, heads), ("decoder_dim", decoder_dim, heads)):
            if width % count:
                raise ValueError(f"{key}={width} is not divisible by heads={heads}")
        patch_dim = c * self.patch ** 2
        self.embedding = Dense(patch_dim, int(dim), generator)
        self.register_buffer("positions", tensor(sinusoidal_positions(self.patches, dim)))
        self.blocks = nn.ModuleList([
            TransformerBlock(dim, heads, mlp_ratio * dim, generator, causal=False)
            for _ in range(int(depth))])
        self.norm = nn.LayerNorm(dim)
        self.decoder_embedding = Dense(int(dim), int(decoder_dim), generator)
        self.mask_token = nn.Parameter(np.zeros((1, 1, decoder_dim), np.float32))
        nn.init.normal_(self.mask_token, 0.0, 0.02, generator)
        self.register_buffer("decoder_positions",
                             tensor(sinusoidal_positions(self.patches, decoder_dim)))
        self.decoder_blocks = nn.ModuleList([
            TransformerBlock(decoder_dim, heads, mlp_ratio * decoder_dim, generator,
                             causal=False)
            for _ in range(int(decoder_depth))])
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.prediction = Dense(int(decoder_dim), patch_dim, generator)

    def encode(self, patches, seen=None):
        """The encoder's tokens (N, V, dim) of the patches at positions `seen` (N, V) ints,
        or of all patches."""
        tokens = self.embedding(tensor(patches)) + self.positions
        if seen is not None:
            rows = np.arange(len(patches))[:, None]
            tokens = tokens[backend.to_device(rows, self.device),
                            backend.to_device(seen, self.device)]
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def decode(self, tokens, order):
        """The predicted pixels (N, P, patch_dim) of every patch, from the tokens of the
        visible ones (the first V of each image's `order`) and mask tokens elsewhere."""
        n = len(order)
        visible = self.decoder_embedding(tokens)
        hidden = self.mask_token.broadcast_to((n, self.patches - self.visible,
                                               visible.shape[2]))
        in_order = concatenate([visible, hidden], axis=1)  # patch order[n, j] at j
        rows, restore = (backend.to_device(a, self.device)
                         for a in (np.arange(n)[:, None], np.argsort(order, axis=1)))
        h = in_order[rows, restore] + self.decoder_positions
        for block in self.decoder_blocks:
            h = block(h)
        return self.prediction(self.decoder_norm(h))

    def pretext_loss(self, y, generator):
        patches = patchify(y, self.patch)
        order, masked = random_masking(len(y), self.patches, self.visible, generator)
        predicted = self.decode(self.encode(patches, order[:, :self.visible]), order)
        return masked_patch_loss(predicted, patches, masked), {}

    def embed(self, y):
        return self.encode(patchify(y, self.patch)).mean(axis=1)
