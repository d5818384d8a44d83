"""The masked autoencoder's pieces (He et al. 2022, "Masked Autoencoders Are Scalable Vision
Learners"): images as sequences of patches, the random masking of patches and the loss on
the masked patches alone. The Transformer block is the autoregressive models' one without
its causal mask (autoregressive/sequence_layers.py: TransformerBlock(..., causal=False):
every patch attends to every other, through F.attention).
"""
import numpy as np

from .. import backend
from ..autograd import tensor


def patchify(y, patch):
    """Images y (N, C, H, W) as (N, (H/p)(W/p), C p p) patches in raster order."""
    n, c, h, w = y.shape
    if h % patch or w % patch:
        raise ValueError(f"patch={patch}: the {h}x{w} images must cut into whole "
                         f"{patch}x{patch} patches")
    gh, gw = h // patch, w // patch
    return y.reshape(n, c, gh, patch, gw, patch).transpose(0, 2, 4, 1, 3, 5) \
        .reshape(n, gh * gw, c * patch * patch)


def visible_count(patches, mask_ratio):
    """How many of `patches` patches the encoder sees at `mask_ratio`: (1 - ratio) of them
    rounded down, at least one seen and one masked, else an error."""
    if not 0 < mask_ratio < 1:
        raise ValueError(f"mask_ratio={mask_ratio}: the share of masked patches must be in "
                         f"(0, 1)")
    visible = int(patches * (1 - mask_ratio))
    if not 1 <= visible < patches:
        raise ValueError(f"mask_ratio={mask_ratio} of {patches} patches leaves {visible} to "
                         f"see; the encoder needs at least one patch and the loss one masked")
    return visible


def random_masking(n, patches, visible, generator):
    """(order, masked): each image's patches in a random order (N, P) ints, the first
    `visible` of them seen by the encoder, and masked (N, P) floats, 1 on the others."""
    order = np.argsort(generator.rng.random((n, patches)), axis=1)
    masked = np.ones((n, patches), np.float32)
    np.put_along_axis(masked, order[:, :visible], 0.0, axis=1)
    return order, masked


def masked_patch_loss(predicted, target, masked):
    """MAE's loss: the mean squared error per patch, averaged over the masked patches only
    (the visible ones do not count):

        L = sum_{n,i} m_ni mean_d (pred_nid - target_nid)^2 / sum_{n,i} m_ni"""
    mask = tensor(backend.to_device(np.asarray(masked), predicted.device))
    per_patch = ((predicted - tensor(target)) ** 2).mean(axis=2)
    return (per_patch * mask).sum() / mask.sum()
