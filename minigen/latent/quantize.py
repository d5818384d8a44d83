"""Vector quantization, the bottleneck of VQ-VAE (van den Oord et al. 2017, "Neural Discrete
Representation Learning") and VQ-VAE-2 (Razavi et al. 2019).

An encoder output z_e(x) is a grid of D-dim vectors; each is replaced by its nearest entry
of a codebook e_1..e_K (eq. 1-2):

    k(x) = argmin_j ||z_e(x) - e_j||,   z_q(x) = e_k(x)

The argmin has no gradient, so the decoder's gradient is copied straight through to the
encoder: z = z_e + sg[z_q - z_e] has the value of z_q and the gradient of z_e (section 3.2).
The codebook learns from its own term and the encoder is kept near its codes by the
commitment term (eq. 3, sg = stop_gradient):

    L = -log p(x | z_q(x)) + ||sg[z_e(x)] - e||^2 + beta ||z_e(x) - sg[e]||^2

Each squared norm is summed over the D dims and the grid positions of one example.

With `ema=True` the codebook is no gradient parameter: the codebook term is dropped and
each code moves to the running mean of the encoder outputs assigned to it (appendix A.1),

    N_i <- g N_i + (1 - g) n_i,   m_i <- g m_i + (1 - g) sum_{j: k_j = i} z_e,j,
    e_i = m_i / N_i,

with Laplace smoothing of the counts, N_i <- (N_i + eps) / (n + K eps) n, n = sum_i N_i, so
that a code left unused is not divided by zero. The running counts N and sums m start as
if every code had been assigned its own vector once (N_i = 1, m_i = e_i): an unused code
then stays where it is instead of being blown up by a near-zero count.

Codes nobody uses never move (their codebook gradient and their EMA share are zero);
`restart_after=N` resets a code unused for N training steps in a row to an encoder output
of the current batch drawn at random (Dhariwal et al. 2020, "Jukebox", section 3.4).
"""
from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..autograd import Tensor
from ..ops import moveaxis


@dataclass
class Quantized:
    """One quantization of a batch of grids z_e (N, D, H, W): z, the straight-through value
    for the decoder; codes (N, H, W), the indices (a NumPy array); z_q, the chosen codebook
    vectors (with the codebook's gradient); codebook_loss and commitment, per example."""
    z_e: Tensor
    z: Tensor
    codes: np.ndarray
    z_q: Tensor
    codebook_loss: Tensor
    commitment: Tensor


class VectorQuantizer(nn.Module):
    """A codebook of `codes` vectors of size `code_dim`, initialised N(0, 1) as torch
    initialises an embedding; a Parameter, or with ema=True a buffer moved by running
    means. Its running state (the EMA's counts and sums, the steps each code has gone
    unused) is `extra_state()`, saved in the checkpoint."""

    def __init__(self, codes, code_dim, generator, ema=False, decay=0.99, eps=1e-5,
                 restart_after=0):
        super().__init__()
        if codes < 2:
            raise ValueError(f"codes={codes}: a codebook needs at least 2 entries (one code "
                             f"carries no information)")
        if code_dim < 1:
            raise ValueError(f"code_dim={code_dim}: codebook vectors need at least 1 dim")
        if restart_after < 0:
            raise ValueError(f"restart_after={restart_after}: a number of steps (0: never)")
        if not 0 < decay < 1:
            raise ValueError(f"decay={decay}: the EMA decay must lie in (0, 1)")
        self.codes, self.code_dim = int(codes), int(code_dim)
        self.ema, self.decay, self.eps = bool(ema), float(decay), float(eps)
        self.restart_after = int(restart_after)
        table = nn.Embedding(self.codes, self.code_dim, generator=generator).weight
        if self.ema:
            self.register_buffer("codebook", Tensor(table.data))
        else:
            self.codebook = table
        self.cluster_size = np.ones(self.codes, dtype=np.float32)
        self.embed_sum = np.array(backend.to_numpy(table.data), dtype=np.float32)
        self.unused_steps = np.zeros(self.codes, dtype=np.int64)

    def nearest(self, z_e):
        """The index (N, H, W) of the nearest code to each vector of z_e (N, D, H, W), by
        ||z||^2 - 2 z.e + ||e||^2 on the raw arrays (the argmin has no gradient)."""
        flat = self._flat(z_e.data)
        book = self.codebook.data
        xp = backend.xp_of(book)
        distance = (flat * flat).sum(1, keepdims=True) - 2 * flat @ book.T \
            + (book * book).sum(1)[None]
        n, _, h, w = z_e.shape
        return backend.to_numpy(xp.argmin(distance, axis=1)).reshape(n, h, w)

    def lookup(self, codes):
        """The codebook vectors of integer codes (N, H, W), as a grid (N, D, H, W)."""
        codes = np.asarray(codes, dtype=np.int64)
        return moveaxis(self.codebook[codes], -1, 1)

    def forward(self, z_e):
        """Quantize z_e (N, D, H, W): the nearest codes, the straight-through z and the two
        loss terms of eq. 3 per example."""
        if z_e.ndim != 4 or z_e.shape[1] != self.code_dim:
            raise ValueError(f"VectorQuantizer: expected z_e of shape (N, {self.code_dim}, H, "
                             f"W), got {tuple(z_e.shape)}")
        codes = self.nearest(z_e)
        z_q = self.lookup(codes)
        # z = z_e + sg[z_q - z_e]: the value of z_q, the gradient of z_e (straight through)
        z = z_e + (z_q - z_e).detach()
        # ||sg[z_e] - e||^2 moves the codebook only; ||z_e - sg[e]||^2 the encoder only
        codebook_loss = ((z_e.detach() - z_q) ** 2).sum(axis=(1, 2, 3))
        commitment = ((z_e - z_q.detach()) ** 2).sum(axis=(1, 2, 3))
        return Quantized(z_e, z, codes, z_q, codebook_loss, commitment)

    def _flat(self, array):
        """(N, D, H, W) -> (N H W, D), one row per grid position."""
        xp = backend.xp_of(array)
        return xp.moveaxis(array, 1, -1).reshape(-1, self.code_dim)

    # the codebook's own updates, once per training step --------------------------------
    def update(self, quantized, generator):
        """After a training step on a batch, given its quantization: move the codebook to
        the EMA of its assigned encoder outputs (ema=True), then restart the codes unused
        for restart_after steps."""
        codes = quantized.codes.ravel()
        counts = np.bincount(codes, minlength=self.codes)
        self.unused_steps = np.where(counts > 0, 0, self.unused_steps + 1)
        flat = backend.to_numpy(self._flat(quantized.z_e.data)).astype(np.float32)
        if self.ema:
            self._ema_update(flat, codes, counts)
        if self.restart_after:
            self._restart(flat, generator)

    def _ema_update(self, flat, codes, counts):
        g = np.float32(self.decay)
        sums = np.zeros((self.codes, self.code_dim), dtype=np.float32)
        np.add.at(sums, codes, flat)
        self.cluster_size = g * self.cluster_size + (1 - g) * counts.astype(np.float32)
        self.embed_sum = g * self.embed_sum + (1 - g) * sums
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.codes * self.eps) * n
        self._set_codebook(self.embed_sum / smoothed[:, None])

    def _restart(self, flat, generator):
        dead = np.nonzero(self.unused_steps >= self.restart_after)[0]
        if not len(dead):
            return
        chosen = flat[generator.rng.integers(0, len(flat), size=len(dead))]
        book = np.array(backend.to_numpy(self.codebook.data), copy=True)
        book[dead] = chosen
        self._set_codebook(book)
        self.unused_steps[dead] = 0
        # the EMA starts over from the new vector, as if assigned it once
        self.cluster_size[dead] = 1.0
        self.embed_sum[dead] = chosen

    def _set_codebook(self, array):
        data = self.codebook.data
        self.codebook.data = backend.to_device(np.asarray(array, dtype=data.dtype),
                                               backend.device_of(data))

    # state outside the parameters, for checkpoints --------------------------------------
    def extra_state(self):
        return {"cluster_size": self.cluster_size.copy(), "embed_sum": self.embed_sum.copy(),
                "unused_steps": self.unused_steps.copy()}

    def load_extra_state(self, state):
        self.cluster_size = np.array(state["cluster_size"], dtype=np.float32)
        self.embed_sum = np.array(state["embed_sum"], dtype=np.float32)
        self.unused_steps = np.array(state["unused_steps"], dtype=np.int64)


def codebook_usage(codes, num_codes):
    """(perplexity, share of the codebook used) of integer codes: perplexity
    exp(-sum_k p_k log p_k) of the codes' frequencies p, K for a uniform use of K codes and
    1 when one code takes everything."""
    counts = np.bincount(np.asarray(codes).ravel(), minlength=num_codes)
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum())), float((counts > 0).mean())
