"""The DCGAN of issue 16's checked configs in PyTorch, the reference for minigen's `gan`
(non-saturating loss) and `wgan-gp` on images (minigen/gan/networks.py, losses.py):

    G: Linear latent -> 2c (H/4) (W/4), BatchNorm, ReLU, reshape, ConvTranspose 2c -> c k4
       s2 p1, BatchNorm, ReLU, ConvTranspose c -> C k4 s2 p1, tanh
    D: Conv C -> c k4 s2 p1, LeakyReLU 0.2, Conv c -> 2c k4 s2 p1, [BatchNorm], LeakyReLU
       0.2, flatten, Linear -> 1            (the WGAN-GP critic has no batch norm)

    gan      D: E softplus(-D(x)) + E softplus(D(G(z))),  G: E softplus(-D(G(z)))
    wgan-gp  D: E f(G(z)) - E f(x) + 10 E (||grad f(x_hat)||_2 - 1)^2,  G: -E f(G(z))
             x_hat = eps x + (1 - eps) G(z), one eps per example, the norm over all of an
             example's dimensions (sqrt(sum g^2 + 1e-12), as minigen)

Parameter names are minigen's (G.body.{i}, D.body.{i}, D.head), so minigen's initial
weights copy in by name; the Sequential indices line up with minigen's layers, the
reshapes included.
"""
import torch
import torch.nn.functional as F
from torch import nn

GP_EPS = 1e-12


class Generator(nn.Module):
    def __init__(self, latent, shape, channels=64):
        super().__init__()
        c, height, width = shape
        start = (2 * channels, height // 4, width // 4)
        size = start[0] * start[1] * start[2]
        self.body = nn.Sequential(
            nn.Linear(latent, size), nn.BatchNorm1d(size), nn.ReLU(), nn.Unflatten(1, start),
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), nn.BatchNorm2d(channels),
            nn.ReLU(), nn.ConvTranspose2d(channels, c, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.body(z)


class Discriminator(nn.Module):
    def __init__(self, shape, channels=64, batch_norm=True):
        super().__init__()
        c, height, width = shape
        features = 2 * channels * (height // 4) * (width // 4)
        self.body = nn.Sequential(
            nn.Conv2d(c, channels, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(channels, 2 * channels, 4, 2, 1),
            nn.BatchNorm2d(2 * channels) if batch_norm else nn.Identity(),
            nn.LeakyReLU(0.2), nn.Flatten())
        self.head = nn.Linear(features, 1)

    def forward(self, x):
        return self.head(self.body(x)).reshape(len(x))


class DCGAN(nn.Module):
    """G and D of one model; `loss` is "nonsaturating" (gan) or "wasserstein" (wgan-gp,
    with gp_weight)."""

    def __init__(self, latent, shape, channels=64, loss="nonsaturating", gp_weight=10.0):
        super().__init__()
        self.loss, self.gp_weight = loss, gp_weight
        self.G = Generator(latent, shape, channels)
        self.D = Discriminator(shape, channels, batch_norm=loss == "nonsaturating")

    def d_loss(self, real, fake, eps=None):
        """The discriminator's loss on a real and a (detached) fake batch; eps (N,) the
        interpolation weights of the penalty (wgan-gp)."""
        d_real, d_fake = self.D(real), self.D(fake)
        if self.loss == "nonsaturating":
            return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return d_fake.mean() - d_real.mean() + self.gp_weight * self.penalty(real, fake, eps)

    def penalty(self, real, fake, eps):
        x_hat = eps.reshape(-1, 1, 1, 1) * real + (1 - eps.reshape(-1, 1, 1, 1)) * fake
        x_hat = x_hat.detach().requires_grad_(True)
        g, = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)
        norms = torch.sqrt((g * g).reshape(len(g), -1).sum(1) + GP_EPS)
        return ((norms - 1) ** 2).mean()

    def g_loss(self, fake):
        d_fake = self.D(fake)
        if self.loss == "nonsaturating":
            return F.softplus(-d_fake).mean()
        return -d_fake.mean()
