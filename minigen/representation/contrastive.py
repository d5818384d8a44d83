"""The contrastive models' pieces (issue 17: cpc, moco, deep-infomax), each the paper's
equation.

    info_nce          InfoNCE (van den Oord et al. 2018, eq. 4) with the other keys of the
                      batch as negatives
    moco_loss         MoCo's InfoNCE against a queue of negatives (He et al. 2020, eq. 1)
    FeatureQueue      MoCo's dictionary: a first-in first-out queue of past keys
    NormalisedHead    a projection head with batch normalisation in its hidden layer
    shuffled_halves   MoCo's Shuffle BN on one device: a head's batch normalised in halves
    momentum_update   theta_k <- m theta_k + (1 - m) theta_q (He et al. 2020, eq. 2)
    local_global      the encoder's local feature map and its global features (Deep
                      InfoMax, Hjelm et al. 2019)
    dim_jsd, dim_infonce   Deep InfoMax's two estimators of the mutual information
                      between local and global features (Hjelm et al. 2019, eq. 4 and 5)
"""
import numpy as np

from .. import backend
from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..ops import concatenate, einsum, softplus, where


def _unit(z):
    return z / ((z * z).sum(axis=-1, keepdims=True).sqrt() + 1e-12)


def info_nce(queries, keys, temperature=1.0):
    """InfoNCE of queries (N, D) whose positive is the key of the same row of keys (N, D),
    every other key of the batch a negative, scores q.k / temperature:

        L = -1/N sum_i log exp(q_i.k_i / t) / sum_j exp(q_i.k_j / t)"""
    if not temperature > 0:
        raise ValueError(f"info_nce: the temperature must be > 0, got {temperature}")
    if queries.ndim != 2 or queries.shape != keys.shape:
        raise ValueError(f"info_nce: expected queries and keys of one shape (N, D), got "
                         f"{queries.shape} and {keys.shape}")
    logits = queries @ keys.T / temperature
    return F.cross_entropy(logits, tensor(np.arange(len(queries)), device=queries.device))


def moco_loss(q, k, queue, temperature):
    """MoCo's InfoNCE (eq. 1) of queries q (N, D) whose positive key is the row of k (N, D)
    and whose negatives are the K rows of queue (K, D, a NumPy array), all L2-normalised first:

        L = -1/N sum_i log exp(q_i.k_i / t) / (exp(q_i.k_i / t) + sum_j exp(q_i.queue_j / t))
    """
    if not temperature > 0:
        raise ValueError(f"moco: the temperature must be > 0, got {temperature}")
    q, k = _unit(q), _unit(k)
    positive = (q * k).sum(axis=1, keepdims=True)
    negatives = q @ tensor(backend.to_device(np.asarray(queue), q.device)).T
    logits = concatenate([positive, negatives], axis=1) / temperature
    return F.cross_entropy(logits, tensor(np.zeros(len(q), np.int64), device=q.device))


class FeatureQueue:
    """MoCo's queue of negatives: `size` keys of `dim` numbers, the oldest replaced first.
    Starts as unit vectors drawn from the generator (as MoCo's code does); `keys` is the
    array (on the host: a model moves it to its device where it reads it), `pointer` the row
    the next key goes to."""

    def __init__(self, size, dim, generator):
        if size < 1:
            raise ValueError(f"queue={size}: the queue holds at least 1 key")
        keys = generator.rng.standard_normal((int(size), int(dim))).astype(np.float32)
        self.keys = keys / np.linalg.norm(keys, axis=1, keepdims=True)
        self.pointer = 0

    def __len__(self):
        return len(self.keys)

    def enqueue(self, keys):
        """Put keys (N, dim) in, in order, in place of the N oldest; N <= the queue's size."""
        n = len(keys)
        if n > len(self.keys):
            raise ValueError(f"a queue of {len(self.keys)} keys cannot take a batch of {n} "
                             f"(queue must be at least the batch size)")
        self.keys[(self.pointer + np.arange(n)) % len(self.keys)] = backend.to_numpy(keys)
        self.pointer = int((self.pointer + n) % len(self.keys))

    def state(self):
        return {"queue": self.keys.copy(), "queue_pointer": self.pointer}

    def load_state(self, state):
        keys = np.asarray(state["queue"], dtype=np.float32)
        if keys.shape != self.keys.shape:
            raise ValueError(f"the checkpoint's queue has shape {keys.shape}, the model's "
                             f"{self.keys.shape}")
        self.keys = keys.copy()
        self.pointer = int(state["queue_pointer"])


class NormalisedHead(nn.Module):
    """g(h) = W2 ReLU(BN(W1 h)), the projection head of SimCLR and MoCo v2 with batch
    normalisation in the hidden layer. It is what keeps MoCo on an encoder without
    normalisation from collapsing: there every output came to point one way (mean cosine
    0.9995 at the start, 1.0000 after 10 steps), the loss stayed at log(K + 1) and the
    probe fell; with it, the loss fell and the probe held (150 steps on digits)."""

    def __init__(self, features, hidden, out, generator):
        super().__init__()
        self.hidden = nn.Linear(features, hidden, generator=generator)
        self.norm = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, out, generator=generator)

    def forward(self, h):
        return self.out(self.norm(self.hidden(h)).relu())


def shuffled_halves(head, features, generator=None):
    """head(features) with the batch normalised in two halves: in order, or (a generator
    given) halves drawn by a random permutation, the outputs put back in the batch's order.
    A batch under 4 is normalised whole."""
    n = len(features)
    if n < 4:
        return head(features)
    order = np.arange(n) if generator is None else generator.rng.permutation(n)
    halves = [order[:n // 2], order[n // 2:]]
    out = concatenate([head(features[backend.to_device(h, features.device)])
                       for h in halves])
    back = backend.to_device(np.argsort(np.concatenate(halves)), features.device)
    return out[back]


def momentum_update(targets, sources, momentum):
    """theta_k <- m theta_k + (1 - m) theta_q, in place, for the parameters of a momentum
    encoder (targets) and those it follows (sources)."""
    for theirs, ours in zip(targets, sources):
        theirs.data[...] = momentum * theirs.data + (1 - momentum) * ours.data


def local_global(encoder, x):
    """(local (N, 2w, H/2, W/2), global (N, 4w)) of the shared encoder
    (minigen.representation.encoder): the feature map after the pooling, whose pixels each
    see a patch of the image, and the encoder's output, which sees all of it."""
    local = F.max_pool2d(encoder.conv2(encoder.conv1(x).relu()).relu(), 2)
    return local, encoder.conv3(local).relu().mean(axis=(2, 3))


def _scores(global_codes, local_codes):
    """S[i, m, j] = g_i . l_{m, j}: global code of image i (N, D) against the local code of
    image m at place j (N, D, H, W); (N, N, HW)."""
    n, d = local_codes.shape[:2]
    return einsum("id,mdj->imj", global_codes, local_codes.reshape(n, d, -1))


def dim_jsd(global_codes, local_codes):
    """Deep InfoMax's Jensen-Shannon estimator (eq. 4), as a loss (its negative): pairs of
    an image's global code with its own local codes are positives, with another image's
    negatives,

        L = E_pos[softplus(-S)] + E_neg[softplus(S)]"""
    s = _scores(global_codes, local_codes)
    n = len(s)
    own = tensor(np.eye(n, dtype=bool)[:, :, None] & np.ones((1, 1, s.shape[2]), bool),
                 device=s.device)
    positives = where(own, softplus(-s), 0.0).sum() / (n * s.shape[2])
    negatives = where(own, 0.0, softplus(s)).sum() / max(n * (n - 1) * s.shape[2], 1)
    return positives + negatives


def dim_infonce(global_codes, local_codes):
    """Deep InfoMax's InfoNCE estimator (eq. 5), as a loss: each local code l_{i,j} is
    matched with its own image's global code against the batch's others,

        L = -1/(N HW) sum_{i,j} log exp(S[i, i, j]) / sum_m exp(S[m, i, j])"""
    s = _scores(global_codes, local_codes)
    n, _, places = s.shape
    logits = s.transpose(1, 2, 0).reshape(n * places, n)  # row (i, j): S[m, i, j] over m
    return F.cross_entropy(logits, tensor(np.repeat(np.arange(n), places), device=s.device))
