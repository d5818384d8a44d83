"""The networks of the GANs: MLPs for 2-D toy data, the DCGAN generator and discriminator
for images (Radford, Metz and Chintala 2016), and the layers the tricks put into them.

Every discriminator here is `features` then `head`: features(x) is the last hidden layer
(N, F), what feature matching compares and minibatch discrimination reads, and forward(x)
gives one logit (or critic value) per example, (N,).

    MLPGenerator        z -> Linear/ReLU ... -> Linear -> a point (no squashing)
    MLPDiscriminator    x -> Linear/LeakyReLU(0.2) ... -> features -> Linear -> (N,)
    DCGANGenerator      z -> Linear -> (2c, H/4, W/4) -> BatchNorm, ReLU -> ConvTranspose
                        k4 s2 p1 -> BatchNorm, ReLU -> ConvTranspose k4 s2 p1 -> tanh
    DCGANDiscriminator  x -> Conv k4 s2 p1, LeakyReLU(0.2) -> Conv k4 s2 p1, BatchNorm,
                        LeakyReLU(0.2) -> flatten (the features) -> Linear -> (N,)

self_attention=True puts SAGAN's block (minigen/gan/attention.py) into both at H/2: in G
after the first transposed convolution, in D after the first convolution.

With c = 64 on 8x8 digits these are exactly the checked config of issue 16 (Linear
32 -> 512, reshape (128, 2, 2), ... ; D's Linear 512 -> 1). `norm` picks the generator's
normalisation ("batch", "virtual" or "none"); the discriminator's batch norm can be left
out (a WGAN-GP critic: the penalty is per example, and batch norm mixes examples).

Layers:
    VirtualBatchNorm          Salimans et al. 2016, sec. 3.4: each example normalised with
                              the statistics of a fixed reference batch plus itself
    MinibatchDiscrimination   Salimans et al. 2016, sec. 3.2: features that say how close
                              an example is to the others of its batch
    SpectralNorm              Miyato et al. 2018: a Linear or Conv2d whose weight is divided
                              by its largest singular value, found by power iteration
    dcgan_init                N(0, 0.02) weights, batch-norm scales N(1, 0.02), zero biases
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import no_grad, tensor
from ..ops import concatenate, exp, sqrt
from .attention import SelfAttention2d

LEAK = 0.2          # the LeakyReLU slope of every discriminator (DCGAN)
NORMS = ("batch", "virtual", "none")


# ---------------------------------------------------------------------------------------
# layers of the tricks


class VirtualBatchNorm(nn.Module):
    """Batch norm whose statistics come from a fixed reference batch (Salimans et al.
    2016, sec. 3.4), so an example's output does not depend on the rest of its batch.

    The input holds the reference batch's activations in its first `reference_size` rows
    (the network puts them there: the reference batch travels with every batch). The
    reference rows are normalised with their own statistics; example i with those of the
    reference batch plus itself, weight 1 / (m + 1) each:

        mu_i  = (m mu_ref + mean(x_i)) / (m + 1)
        v_i   = (m E_ref[x^2] + mean(x_i^2)) / (m + 1) - mu_i^2
        y_i   = gamma (x_i - mu_i) / sqrt(v_i + eps) + beta

    (means over the spatial positions of a channel for images)."""

    def __init__(self, num_features, reference_size, eps=1e-5):
        super().__init__()
        self.num_features, self.reference_size, self.eps = num_features, reference_size, eps
        self.weight = nn.Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = nn.Parameter(np.zeros(num_features, dtype=np.float32))

    def forward(self, x):
        m = self.reference_size
        if x.ndim not in (2, 4) or x.shape[1] != self.num_features or len(x) <= m:
            raise ValueError(f"VirtualBatchNorm: expected (m + N, {self.num_features}, ...) "
                             f"with the {m} reference rows first, got {x.shape}")
        spatial = tuple(range(2, x.ndim))
        per_channel = (1, self.num_features) + (1,) * len(spatial)
        mean_x = x.mean(axis=spatial, keepdims=True) if spatial else x
        mean_x2 = (x * x).mean(axis=spatial, keepdims=True) if spatial else x * x
        ref_mu = mean_x[:m].mean(axis=0, keepdims=True)
        ref_x2 = mean_x2[:m].mean(axis=0, keepdims=True)
        mu = (m * ref_mu + mean_x[m:]) * (1.0 / (m + 1))
        var = (m * ref_x2 + mean_x2[m:]) * (1.0 / (m + 1)) - mu * mu
        ref = (x[:m] - ref_mu) / sqrt(ref_x2 - ref_mu * ref_mu + self.eps)
        rest = (x[m:] - mu) / sqrt(var + self.eps)
        y = concatenate([ref, rest], axis=0)
        return y * self.weight.reshape(per_channel) + self.bias.reshape(per_channel)

    def extra_repr(self):
        return f"{self.num_features}, reference_size={self.reference_size}"


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, sec. 3.2. f (N, A) times a tensor T (A, B x C) gives M_i
    (B, C) per example; for each of the B kernels the closeness of two examples is
    c_b(i, j) = exp(-||M_i,b - M_j,b||_1), and o(x_i)_b = sum_{j != i} c_b(i, j). The
    output is [f, o] (N, A + B): a discriminator that sees o can tell a batch of
    near-copies (a collapsed generator) from a batch of real, varied examples."""

    def __init__(self, in_features, kernels, kernel_dim=16, generator=None):
        super().__init__()
        self.in_features, self.kernels, self.kernel_dim = in_features, kernels, kernel_dim
        self.T = nn.Parameter(np.zeros((in_features, kernels * kernel_dim), np.float32))
        nn.init.normal_(self.T, 0.0, 1.0 / np.sqrt(in_features), generator)

    def forward(self, f, others=None):
        """[f, o] (N, A + B). `others`: features (M, A) of a batch that each example is
        scored against instead of its own (as if each came alone into a batch of them)."""
        M = (f @ self.T).reshape(len(f), 1, self.kernels, self.kernel_dim)
        R = M.swapaxes(0, 1) if others is None else \
            (others @ self.T).reshape(1, len(others), self.kernels, self.kernel_dim)
        closeness = exp(-(M - R).abs().sum(axis=-1)).sum(axis=1)   # (N, B), L1 distances
        return concatenate([f, closeness - 1.0 if others is None else closeness], axis=1)

    @property
    def out_features(self):
        return self.in_features + self.kernels

    def extra_repr(self):
        return f"{self.in_features}, kernels={self.kernels}, kernel_dim={self.kernel_dim}"


class SpectralNorm(nn.Module):
    """A Linear or Conv2d layer whose weight W is used as W / sigma(W) (Miyato et al.
    2018, eq. 8): sigma is the largest singular value of W as a matrix (out, in x k x k),
    estimated by one step of power iteration per forward pass in training (Algorithm 1):

        v = W^T u / ||W^T u||,   u = W v / ||W v||,   sigma = u^T W v

    u is a buffer (kept in the checkpoint), so the estimate improves across steps; u and
    v are constants of the gradient, which flows through W alone, as in the paper. In
    evaluation u is not updated. The layer's own parameters keep their names
    (layer.weight, layer.bias)."""

    def __init__(self, layer, generator=None, eps=1e-12):
        super().__init__()
        if not isinstance(layer, (nn.Linear, nn.Conv2d)):
            raise TypeError(f"SpectralNorm wraps a Linear or Conv2d, not "
                            f"{type(layer).__name__}")
        self.layer, self.eps = layer, eps
        out = layer.weight.shape[0]
        rng = np.random.default_rng() if generator is None else generator.rng
        u = rng.normal(size=out).astype(np.float32)
        self.register_buffer("u", tensor(u / np.linalg.norm(u), device=layer.weight.device))

    def sigma(self, update):
        """sigma(W) as a Tensor of W (after a power-iteration step when update)."""
        w = self.layer.weight.reshape(self.layer.weight.shape[0], -1)
        with no_grad():
            W, u = w.data, self.u.data
            v = W.T @ u
            v = v / ((v * v).sum() ** 0.5 + self.eps)
            if update:
                u = W @ v
                u = u / ((u * u).sum() ** 0.5 + self.eps)
                self.u.data[...] = u
        return (tensor(u, device=w.device) * (w @ tensor(v, device=w.device))).sum()

    def forward(self, x):
        layer = self.layer
        weight = layer.weight / self.sigma(update=self.training)
        if isinstance(layer, nn.Linear):
            return F.linear(x, weight, layer.bias)
        return F.conv2d(x, weight, layer.bias, layer.stride, layer.padding, layer.dilation)


def dcgan_init(module, generator=None):
    """DCGAN's initialisation (Radford et al. 2016, sec. 4): every Linear, Conv2d and
    ConvTranspose2d weight N(0, 0.02), every batch-norm (or virtual batch-norm) scale
    N(1, 0.02), their biases zero. Returns the module."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, 0.02, generator)
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, VirtualBatchNorm)):
            nn.init.normal_(layer.weight, 1.0, 0.02, generator)
        else:
            continue
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    return module


# ---------------------------------------------------------------------------------------
# generators


class _Generator(nn.Module):
    """What the generators share: the reference batch of virtual batch norm. With
    norm="virtual" the generator keeps `reference` (m, latent) noise drawn once (a buffer,
    fixed for the whole run and saved in the checkpoint); forward runs it in front of every
    batch and drops it from the output."""

    def __init__(self, latent, norm, reference_size, generator):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm={norm!r}: the generator's normalisation is one of "
                             f"{', '.join(NORMS)}")
        self.latent, self.norm = latent, norm
        self.reference_size = reference_size if norm == "virtual" else 0
        if self.reference_size:
            self.register_buffer("reference", generator.normal((reference_size, latent)))

    def normalisation(self, features, dims):
        if self.norm == "batch":
            return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(features)
        if self.norm == "virtual":
            return VirtualBatchNorm(features, self.reference_size)
        return nn.Identity()

    def forward(self, z):
        m = self.reference_size
        h = self.body(concatenate([self.reference.to(z.device), z], axis=0) if m else z)
        return h[m:] if m else h


class MLPGenerator(_Generator):
    """z (N, latent) -> points (N, dims): Linear, [norm], ReLU per hidden layer, then a
    Linear output (the data's own scale)."""

    def __init__(self, latent, hidden, dims, norm="none", reference_size=64, generator=None):
        super().__init__(latent, norm, reference_size, generator)
        layers, width = [], latent
        for h in hidden:
            layers += [nn.Linear(width, h, generator=generator), self.normalisation(h, 1),
                       nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, dims, generator=generator))
        self.body = nn.Sequential(*layers)


class DCGANGenerator(_Generator):
    """z (N, latent) -> images (N, C, H, W) in [-1, 1]; H and W multiples of 4."""

    def __init__(self, latent, shape, channels=64, norm="batch", reference_size=64,
                 generator=None, self_attention=False):
        super().__init__(latent, norm, reference_size, generator)
        c, height, width = shape
        if height % 4 or width % 4:
            raise ValueError(f"DCGANGenerator: image sides must be multiples of 4 (two "
                             f"stride-2 upsamplings), got {height}x{width}")
        self.start = (2 * channels, height // 4, width // 4)
        self.body = nn.Sequential(
            nn.Linear(latent, int(np.prod(self.start)), generator=generator),
            self.normalisation(int(np.prod(self.start)), 1), nn.ReLU(), _Reshape(self.start),
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1, generator=generator),
            self.normalisation(channels, 2), nn.ReLU(),
            *_attention(self_attention, channels, generator),
            nn.ConvTranspose2d(channels, c, 4, 2, 1, generator=generator), nn.Tanh())


def _attention(wanted, channels, generator):
    """SAGAN's self-attention block at the half-size maps of G and D (Zhang et al. 2019,
    minigen/gan/attention.py), as a list of zero or one layers for a Sequential."""
    return [SelfAttention2d(channels, generator=generator)] if wanted else []


class _Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape((len(x),) + self.shape)

    def extra_repr(self):
        return str(self.shape)


# ---------------------------------------------------------------------------------------
# discriminators


class _Discriminator(nn.Module):
    """features (the body) then, with minibatch discrimination, [f, o], then the head. A
    subclass builds self.body with self.wrap around each Linear and Conv2d, then calls
    self.add_head(the body's output width)."""

    def __init__(self, spectral_norm):
        super().__init__()
        self.spectral_norm = bool(spectral_norm)

    def wrap(self, layer, generator):
        return SpectralNorm(layer, generator) if self.spectral_norm else layer

    def add_head(self, features, minibatch_kernels, generator):
        self.minibatch = MinibatchDiscrimination(features, minibatch_kernels,
                                                 generator=generator) \
            if minibatch_kernels else None
        width = self.minibatch.out_features if self.minibatch else features
        self.head = self.wrap(nn.Linear(width, 1, generator=generator), generator)

    def features(self, x):
        return self.body(x)

    def forward(self, x, others=None):
        """(N,) logits; with minibatch discrimination `others` (inputs) stand for the rest
        of each example's batch (see MinibatchDiscrimination)."""
        f = self.features(x)
        if self.minibatch is not None:
            f = self.minibatch(f, None if others is None else self.features(others))
        return self.head(f).reshape(len(x))


class MLPDiscriminator(_Discriminator):
    """points (N, dims) -> (N,): Linear, LeakyReLU(0.2) per hidden layer, then the head."""

    def __init__(self, dims, hidden, minibatch_kernels=0, spectral_norm=False,
                 generator=None):
        super().__init__(spectral_norm)
        layers, width = [], dims
        for h in hidden:
            layers += [self.wrap(nn.Linear(width, h, generator=generator), generator),
                       nn.LeakyReLU(LEAK)]
            width = h
        self.body = nn.Sequential(*layers)
        self.add_head(width, minibatch_kernels, generator)


class DCGANDiscriminator(_Discriminator):
    """images (N, C, H, W) in [-1, 1] -> (N,). batch_norm=False: a critic without it
    (WGAN-GP, SN-GAN)."""

    def __init__(self, shape, channels=64, batch_norm=True, minibatch_kernels=0,
                 spectral_norm=False, generator=None, self_attention=False):
        super().__init__(spectral_norm)
        c, height, width = shape
        if height % 4 or width % 4:
            raise ValueError(f"DCGANDiscriminator: image sides must be multiples of 4 (two "
                             f"stride-2 convolutions), got {height}x{width}")
        features = 2 * channels * (height // 4) * (width // 4)
        self.body = nn.Sequential(
            self.wrap(nn.Conv2d(c, channels, 4, 2, 1, generator=generator), generator),
            nn.LeakyReLU(LEAK), *_attention(self_attention, channels, generator),
            self.wrap(nn.Conv2d(channels, 2 * channels, 4, 2, 1, generator=generator),
                      generator),
            nn.BatchNorm2d(2 * channels) if batch_norm else nn.Identity(),
            nn.LeakyReLU(LEAK), _Reshape((features,)))
        self.add_head(features, minibatch_kernels, generator)
