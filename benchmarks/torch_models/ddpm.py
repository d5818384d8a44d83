"""DDPM in PyTorch, the reference for minigen's `ddpm` (minigen/diffusion/): the same U-Net
(time embedding, ResBlocks with GroupNorm(8) and SiLU, one-head self-attention at the lowest
resolution, conv_out started at zero), the same losses, bound and samplers, written from the
papers rather than from minigen's code:

    L_simple = E ||eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t)||^2   (Ho, eq. 14)
    hybrid   = L_simple + vlb_weight * T * L_t / (D ln 2), the mean of L_t stopped
               (Nichol and Dhariwal, eq. 16; variance="learned")
    bound    = L_T + sum_{t=1}^{T-1} KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) + L_0,
               L_0 the discretized Gaussian over the K levels, all in float64
    ancestral (Ho, Algorithm 2) and DDIM (Song et al., eq. 12) sampling

Steps are 0-indexed (t = 0 .. T-1). Parameter names are minigen's (net.temb1, net.down.{i}.res,
net.down.{i}.attn, net.mid1, ...), so minigen's weights copy in by name. Everything random
is passed in (t, eps, and `normal(shape)` for the bound and the samplers), so that a test or
the parity run can hand both sides the same draws.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t, dim):
    half = dim // 2
    t = torch.as_tensor(t, dtype=torch.float64)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64,
                                                        device=t.device) / max(half - 1, 1))
    angles = t[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    return F.pad(emb, (0, dim % 2)).float()


def downsamplings(height, width):
    count = 0
    while height % 2 == 0 and width % 2 == 0 and height // 2 >= 4 and width // 2 >= 4:
        height, width, count = height // 2, width // 2, count + 1
    return count


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class AttnBlock(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.q, self.k, self.v, self.proj = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x):
        n, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (conv(y).reshape(n, c, h * w).transpose(1, 2) for conv in (self.q, self.k,
                                                                             self.v))
        weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)
        return x + self.proj((weights @ v).transpose(1, 2).reshape(n, c, h, w))


class Level(nn.Module):
    def __init__(self, cin, cout, temb_dim, groups, attention):
        super().__init__()
        self.res = ResBlock(cin, cout, temb_dim, groups)
        self.attn = AttnBlock(cout, groups) if attention else None

    def forward(self, x, temb):
        h = self.res(x, temb)
        return h if self.attn is None else self.attn(h)


class UNet(nn.Module):
    def __init__(self, image_shape, out_channels, channels=64, channel_mults=(), groups=8):
        super().__init__()
        c_in, height, width = image_shape
        levels = downsamplings(height, width) + 1
        mults = tuple(channel_mults) or (1,) + (2,) * (levels - 1)
        widths = [channels * m for m in mults]
        self.channels = channels
        temb_dim = 4 * channels
        self.temb1 = nn.Linear(channels, temb_dim)
        self.temb2 = nn.Linear(temb_dim, temb_dim)
        self.conv_in = nn.Conv2d(c_in, widths[0], 3, padding=1)
        last = len(widths) - 1
        self.down = nn.ModuleList([Level(widths[max(i - 1, 0)], w, temb_dim, groups, i == last)
                                   for i, w in enumerate(widths)])
        self.downsample = nn.ModuleList([nn.Conv2d(w, w, 3, stride=2, padding=1)
                                         for w in widths[:-1]])
        self.mid1 = ResBlock(widths[-1], widths[-1], temb_dim, groups)
        self.mid_attn = AttnBlock(widths[-1], groups)
        self.mid2 = ResBlock(widths[-1], widths[-1], temb_dim, groups)
        self.up = nn.ModuleList([ResBlock(2 * w, w, temb_dim, groups) for w in widths])
        self.upsample = nn.ModuleList([nn.Conv2d(widths[i], widths[i - 1], 3, padding=1)
                                       for i in range(1, len(widths))])
        self.norm_out = nn.GroupNorm(groups, widths[0])
        self.conv_out = nn.Conv2d(widths[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x, t):
        temb = timestep_embedding(t, self.channels).to(x.device)
        temb = self.temb2(F.silu(self.temb1(temb)))
        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for i in reversed(range(len(self.up))):
            h = self.up[i](torch.cat([h, skips[i]], dim=1), temb)
            if i > 0:
                h = self.upsample[i - 1](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def log_normal_cdf(x):
    return torch.special.log_ndtr(x)


def discretized_gaussian_log_likelihood(x_levels, mean, log_variance, levels):
    """log of the Gaussian mass of each level's bin (the outer bins open), float64; the CDF
    difference in logs on the side of the bin away from the mean's tail."""
    k = levels - 1
    x = x_levels.double() * (2.0 / k) - 1.0
    inv_sigma = torch.exp(-0.5 * log_variance.double())
    upper = (x + 1.0 / k - mean.double()) * inv_sigma
    lower = (x - 1.0 / k - mean.double()) * inv_sigma
    flip = (upper + lower) > 0
    hi, lo = torch.where(flip, -lower, upper), torch.where(flip, -upper, lower)
    log_hi, log_lo = log_normal_cdf(hi), log_normal_cdf(lo)
    gap = torch.clamp(log_hi - log_lo, min=torch.finfo(torch.float64).tiny)
    inner = log_hi + torch.log(-torch.expm1(-gap))
    return torch.where(x_levels == 0, log_normal_cdf(upper),
                       torch.where(x_levels == k, log_normal_cdf(-lower), inner))


class DDPM(nn.Module):
    def __init__(self, image_shape, levels, betas, variance="large", vlb_weight=0.001,
                 channels=64, channel_mults=(), groups=8, clip_denoised=True):
        super().__init__()
        self.shape, self.levels = tuple(image_shape), int(levels)
        self.variance, self.vlb_weight = variance, float(vlb_weight)
        self.clip_denoised = clip_denoised
        c = self.shape[0]
        self.net = UNet(self.shape, 2 * c if variance == "learned" else c, channels,
                        channel_mults, groups)
        b = torch.as_tensor(np.asarray(betas), dtype=torch.float64)
        self.T = len(b)
        abar = torch.cumprod(1 - b, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        post_var = b * (1 - abar_prev) / (1 - abar)
        self.sched = {
            "betas": b, "abar": abar, "abar_prev": abar_prev, "post_var": post_var,
            "post_logvar": torch.log(torch.cat([post_var[1:2], post_var[1:]])),
            "large_logvar": torch.log(torch.cat([post_var[1:2], b[1:]])),
            "post_x0": b * torch.sqrt(abar_prev) / (1 - abar),
            "post_xt": (1 - abar_prev) * torch.sqrt(1 - b) / (1 - abar)}

    def at(self, name, t, like):
        """The schedule's `name`[t] per example, broadcast over `like`, in like's dtype."""
        values = self.sched[name].to(like.device)[torch.as_tensor(t, device=like.device)]
        return values.reshape((-1,) + (1,) * (like.dim() - 1)).to(like.dtype)

    def scale(self, x_levels, dtype=torch.float32):
        return x_levels.to(dtype) * (2.0 / (self.levels - 1)) - 1.0

    def network(self, xt, t):
        out = self.net(xt.float(), t).to(xt.dtype)
        c = self.shape[0]
        return (out[:, :c], out[:, c:]) if self.variance == "learned" else (out, None)

    def reverse_step(self, xt, t, eps, v, clip_x0):
        x0 = xt / self.at("abar", t, xt).sqrt() - eps * torch.sqrt(1 / self.at("abar", t, xt) - 1)
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = (xt / self.at("abar", t, xt).sqrt() - x0) / torch.sqrt(
                1 / self.at("abar", t, xt) - 1)
        mean = self.at("post_x0", t, xt) * x0 + self.at("post_xt", t, xt) * xt
        small, large = self.at("post_logvar", t, xt), self.at("large_logvar", t, xt)
        log_var = {"small": small, "large": large}.get(self.variance)
        if self.variance == "learned":
            frac = (v + 1) / 2
            log_var = frac * large + (1 - frac) * small
        return x0, eps, mean, log_var

    def denoise(self, xt, t):
        return self.reverse_step(xt, t, *self.network(xt, t), self.clip_denoised)

    def q_sample(self, x0, t, eps):
        return self.at("abar", t, x0).sqrt() * x0 + (1 - self.at("abar", t, x0)).sqrt() * eps

    def step_terms(self, x_levels, x0, xt, t, mean, log_var):
        """L_t (t > 0) or L_0 (t = 0) per image, float64 nats."""
        mean, log_var, x0, xt = mean.double(), log_var.double(), x0.double(), xt.double()
        true_mean = self.at("post_x0", t, xt) * x0 + self.at("post_xt", t, xt) * xt
        kl = normal_kl(true_mean, self.at("post_logvar", t, xt), mean, log_var)
        decoder = -discretized_gaussian_log_likelihood(x_levels, mean, log_var, self.levels)
        at_zero = (torch.as_tensor(t, device=xt.device) == 0).reshape(
            (-1,) + (1,) * (xt.dim() - 1))
        return torch.where(at_zero, decoder, kl).reshape(len(xt), -1).sum(1)

    def loss(self, x_levels, t, eps):
        """The training loss of a batch at the given t (N,) and eps; and L_simple alone."""
        x0 = self.scale(x_levels)
        xt = self.q_sample(x0, t, eps)
        eps_pred, v = self.network(xt, t)
        simple = ((eps - eps_pred) ** 2).mean()
        if self.variance != "learned":
            return simple, simple
        _, _, mean, log_var = self.reverse_step(xt, t, eps_pred.detach(), v, False)
        terms = self.step_terms(x_levels, x0, xt, t, mean, log_var)
        vlb = terms.mean() * (self.T / (x0[0].numel() * math.log(2)))
        return simple + self.vlb_weight * vlb.float(), simple

    @torch.no_grad()
    def bound_terms(self, x_levels, steps, normal):
        """(L_T, {t: L_t}) per image, float64, one draw of x_t per image and step from
        normal(shape) (a float64 NumPy array)."""
        x0 = self.scale(x_levels, torch.float64)
        n = len(x0)
        terms = {}
        for t in steps:
            ts = torch.full((n,), int(t), dtype=torch.long)
            eps = torch.as_tensor(normal(tuple(x0.shape)), dtype=torch.float64,
                                  device=x0.device)
            xt = self.q_sample(x0, ts, eps)
            terms[int(t)] = self.step_terms(x_levels, x0, xt, ts, *self.denoise(xt, ts)[2:])
        last = torch.full((n,), self.T - 1, dtype=torch.long)
        prior = normal_kl(self.at("abar", last, x0).sqrt() * x0,
                          torch.log1p(-self.at("abar", last, x0)), torch.zeros_like(x0),
                          torch.zeros_like(x0)).reshape(n, -1).sum(1)
        return prior, terms

    @torch.no_grad()
    def sample(self, n, normal, sampler="ancestral", sample_steps=None, eta=0.0,
               device="cpu"):
        """n images in [-1, 1] (float32): x_T and every step's noise from normal(shape)."""
        shape = (n,) + self.shape

        def draw():
            return torch.as_tensor(normal(shape), dtype=torch.float32, device=device)

        x = draw()
        if sampler == "ancestral":
            for t in reversed(range(self.T)):
                ts = torch.full((n,), t, dtype=torch.long)
                _, _, mean, log_var = self.denoise(x, ts)
                x = mean + torch.exp(0.5 * log_var) * draw() if t > 0 else mean
            return x
        taus = (np.arange(sample_steps) * self.T) // sample_steps
        abar = self.sched["abar"].numpy()
        for i in reversed(range(len(taus))):
            t = int(taus[i])
            abar_prev = abar[taus[i - 1]] if i > 0 else 1.0
            x0, eps, _, _ = self.denoise(x, torch.full((n,), t, dtype=torch.long))
            sigma = eta * np.sqrt((1 - abar_prev) / (1 - abar[t])) * np.sqrt(
                1 - abar[t] / abar_prev)
            x = x0 * float(np.sqrt(abar_prev)) + eps * float(np.sqrt(1 - abar_prev - sigma ** 2))
            if sigma > 0:
                x = x + float(sigma) * draw()
        return x
