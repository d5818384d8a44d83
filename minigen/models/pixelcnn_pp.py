"""PixelCNN++ (Salimans et al., 2017, "PixelCNN++: Improving the PixelCNN with Discretized
Logistic Mixture Likelihood and Other Modifications").

p(x) = prod_i p(x_i | x_<i) over the pixels in raster order, with the levels 0..K-1 scaled to
[-1, 1] (bins of width 2 / (K - 1)), and each pixel's channels drawn together from one
mixture of discretized logistics (section 2.1, eq. 2; DiscretizedLogisticMixture):

    p(x_i | x_<i) = sum_k pi_k prod_c P_logistic(x_i,c | mu_k,c(x_i,<c), s_k,c),

where for colour the means of later channels move linearly with the earlier channels of the
same pixel (section 2.2): mu_G = m_G + a x_R, mu_B = m_B + b x_R + g x_G, the coefficients
squashed by tanh. The network gives pi, m, log s and the coefficients at every pixel from
x_<i only; the coupling to x_i,<c is added outside it.

The network (sections 2.3-2.5, figure 2) has two streams: u, from down-shifted convolutions,
sees the rows above the pixel; ul, from down-right-shifted ones plus u, sees those rows and the
pixels left of it in its own row. Both are stacks of gated resnet blocks with the concatenated
ELU, on three resolutions (H, H/2, H/4: 8 -> 4 -> 2 for 8x8 digits). The first pass (the
"up" pass of the paper's code) downsamples with strided convolutions (section 2.3); the
second ("down") pass upsamples with transposed ones and takes every output of the first pass
as a short-cut input (section 2.4), as a U-net does. Dropout on the inner activation of each
block (section 2.5) is optional. No weight normalisation (the paper uses it): every
convolution starts from torch's default initialisation, drawn from the model's generator.
"""
import numpy as np

from .. import nn
from ..model import Model
from ..autograd import no_grad, tensor
from ..creation import ones_like, zeros
from ..distributions import Categorical, DiscretizedLogisticMixture
from ..autoregressive.gated import shift_down
from ..autoregressive.masked import make_conv2d
from ..autoregressive.shifted import (DownRightShiftedConv2d, DownRightShiftedConvTranspose2d,
                                      DownShiftedConv2d, DownShiftedConvTranspose2d,
                                      GatedResnet, shift_right)
from ..ops import (clip, concatenate, elu, moveaxis, split, stack, take_along_axis, tanh)
from . import register

STAGES = 3        # resolutions H, H/2, H/4 (the paper's 32, 16, 8)
MIN_LOG_SCALE = -7.0   # the paper's floor on log s, which keeps every bin's mass finite


def _u_conv(in_channels, out_channels, generator):
    return DownShiftedConv2d(in_channels, out_channels, (2, 3), generator=generator)


def _ul_conv(in_channels, out_channels, generator):
    return DownRightShiftedConv2d(in_channels, out_channels, (2, 2), generator=generator)


class ResnetPair(nn.Module):
    """A gated resnet block on each stream: u's sees u (and in the down pass u's short-cut),
    ul's sees ul with u as auxiliary input (and in the down pass ul's short-cut too)."""

    def __init__(self, filters, shortcuts, dropout, generator):
        super().__init__()
        self.u = GatedResnet(filters, _u_conv, filters if shortcuts else 0, dropout,
                             generator)
        self.ul = GatedResnet(filters, _ul_conv, (2 if shortcuts else 1) * filters, dropout,
                              generator)

    def forward(self, u, ul, u_shortcut=None, ul_shortcut=None, generator=None):
        u = self.u(u, u_shortcut, generator)
        aux = u if ul_shortcut is None else concatenate([u, ul_shortcut], axis=1)
        return u, self.ul(ul, aux, generator)


# dropout 0.5 as in the paper: on the 1,437 training digits, without it the test NLL is lowest
# near step 375 and rises after; with it, it still improves at 750 steps (1.754 against 1.834
# bpd at best without)
@register("pixelcnn++", "PixelCNN++: discretized logistic mixture, two shifted streams of "
          "gated resnets down- and upsampled with short-cuts",
          data=("digits-bin", "digits", "fashion-mnist-bin", "fashion-mnist", "mnist",
                "shapes"),
          filters=32, resnets=2, mixtures=5, dropout=0.5, steps=750, batch_size=64, lr=1e-3,
          ranges={"filters": "[1, inf)", "resnets": "[1, inf)", "mixtures": "[1, inf)",
                  "dropout": "[0, 1)"})
class PixelCNNPlusPlus(Model):
    def __init__(self, spec, generator, filters=32, resnets=2, mixtures=5, dropout=0.5):
        super().__init__(spec)
        if spec.kind != "discrete" or not spec.is_image:
            raise ValueError(f"pixelcnn++ models discrete images (C, H, W), not {spec.kind} "
                             f"data of shape {spec.shape}")
        for key, value, low in (("filters", filters, 1), ("resnets", resnets, 1),
                                ("mixtures", mixtures, 1)):
            if int(value) != value or value < low:
                raise ValueError(f"pixelcnn++: {key} must be an integer >= {low}, not {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"pixelcnn++: dropout must be in [0, 1), not {dropout}")
        self.shape, self.levels = tuple(spec.shape), spec.levels
        self.channels, self.mixtures = self.shape[0], int(mixtures)
        filters, resnets = int(filters), int(resnets)
        # per component: a weight logit, then per channel a mean and a log scale, then one
        # coefficient per pair (later channel, earlier channel): 10 for RGB as in the paper
        self.pairs = [(c, j) for c in range(self.channels) for j in range(c)]
        self.params_per_mixture = 1 + 2 * self.channels + len(self.pairs)

        # the image gets a channel of ones, so the network can tell the zero padding from
        # black pixels (the paper's code does the same)
        inputs = self.channels + 1
        self.first_u = DownShiftedConv2d(inputs, filters, (2, 3), generator=generator)
        self.first_ul_above = DownShiftedConv2d(inputs, filters, (1, 3), generator=generator)
        self.first_ul_left = DownRightShiftedConv2d(inputs, filters, (2, 1),
                                                    generator=generator)
        self.up = nn.ModuleList([
            nn.ModuleList([ResnetPair(filters, False, dropout, generator)
                           for _ in range(resnets)]) for _ in range(STAGES)])
        self.downsample_u = nn.ModuleList([
            DownShiftedConv2d(filters, filters, (2, 3), 2, generator)
            for _ in range(STAGES - 1)])
        self.downsample_ul = nn.ModuleList([
            DownRightShiftedConv2d(filters, filters, (2, 2), 2, generator)
            for _ in range(STAGES - 1)])
        # the second pass takes as short-cuts, last first, every tensor the first made at
        # its resolution: a stage's input and its resnets' outputs, resnets + 1 of them; the
        # lowest stage starts from the last of its own, so it has one block fewer
        self.down = nn.ModuleList([
            nn.ModuleList([ResnetPair(filters, True, dropout, generator)
                           for _ in range(resnets + (stage > 0))])
            for stage in range(STAGES)])
        self.upsample_u = nn.ModuleList([
            DownShiftedConvTranspose2d(filters, filters, (2, 3), 2, generator)
            for _ in range(STAGES - 1)])
        self.upsample_ul = nn.ModuleList([
            DownRightShiftedConvTranspose2d(filters, filters, (2, 2), 2, generator)
            for _ in range(STAGES - 1)])
        self.head = make_conv2d(filters, self.mixtures * self.params_per_mixture, 1, generator)

    def forward(self, x, generator=None):
        """The mixture parameters (N, mixtures * params_per_mixture, H, W) of every
        p(x_i | x_<i), for an image x (N, C, H, W) scaled to [-1, 1]; `generator` draws the
        dropout masks in training."""
        x = concatenate([x, ones_like(x[:, :1])], axis=1)
        # u at row r sees rows < r; ul at (r, c) also row r left of c (figure 2)
        u = shift_down(self.first_u(x))
        ul = shift_down(self.first_ul_above(x)) + shift_right(self.first_ul_left(x))
        u_shortcuts, ul_shortcuts = [u], [ul]
        for stage, blocks in enumerate(self.up):
            if stage > 0:
                u, ul = self.downsample_u[stage - 1](u), self.downsample_ul[stage - 1](ul)
                u_shortcuts.append(u)
                ul_shortcuts.append(ul)
            for block in blocks:
                u, ul = block(u, ul, generator=generator)
                u_shortcuts.append(u)
                ul_shortcuts.append(ul)
        u, ul = u_shortcuts.pop(), ul_shortcuts.pop()
        for stage, blocks in enumerate(self.down):
            if stage > 0:
                size = u_shortcuts[-1].shape[2:]
                u = self.upsample_u[stage - 1](u, size)
                ul = self.upsample_ul[stage - 1](ul, size)
            for block in blocks:
                u, ul = block(u, ul, u_shortcuts.pop(), ul_shortcuts.pop(), generator)
        return self.head(elu(ul))

    def _scaled(self, x):
        """Levels 0..K-1 as the bin centres -1 .. 1 of the likelihood."""
        return x.astype("float32") * (2.0 / (self.levels - 1)) - 1.0

    def _mixture(self, params):
        """Split network outputs with the parameters last (..., mixtures * per_mixture) into
        logit weights (..., M), means and log scales (..., C, M), coefficients (..., pairs,
        M), with log s floored at MIN_LOG_SCALE and the coefficients through tanh."""
        c, m = self.channels, self.mixtures
        lead = params.shape[:-1]
        logit_weights, means, log_scales, coefficients = split(
            params, [m, m * (1 + c), m * (1 + 2 * c)], axis=-1)
        return (logit_weights, means.reshape(lead + (c, m)),
                clip(log_scales.reshape(lead + (c, m)), MIN_LOG_SCALE, None),
                tanh(coefficients.reshape(lead + (len(self.pairs), m))))

    def _coupled_means(self, means, coefficients, x):
        """The means of section 2.2: channel c's moves by coefficient x_j for every earlier
        channel j of the pixel (R -> G, R and G -> B); x (..., C) on [-1, 1], and only
        channels before c reach channel c's mean."""
        shifted = [means[..., c, :] for c in range(self.channels)]
        for pair, (c, j) in enumerate(self.pairs):
            shifted[c] = shifted[c] + coefficients[..., pair, :] * x[..., j:j + 1]
        return stack(shifted, axis=-2)

    def log_prob(self, x, generator=None):
        """log p(x) per example, exactly: the sum over pixels of log p(x_i | x_<i) (eq. 2),
        for levels x (N, C, H, W); `generator` draws the dropout masks in training."""
        scaled = self._scaled(x)
        params = moveaxis(self(scaled, generator), 1, -1)          # (N, H, W, P)
        logit_weights, means, log_scales, coefficients = self._mixture(params)
        values = moveaxis(scaled, 1, -1)                           # (N, H, W, C)
        means = self._coupled_means(means, coefficients, values)
        mixture = DiscretizedLogisticMixture(logit_weights, means, log_scales,
                                             num_bins=self.levels)
        return mixture.log_prob(values).sum(axis=(1, 2))

    def nll(self, x):
        return -self.log_prob(x)

    def loss(self, x, generator):
        return -self.log_prob(x, generator).mean()

    def sample(self, n, generator):
        """n images (uint8 levels) in raster order, one network pass per pixel; all channels
        of a pixel come from one draw of the mixture: a component k ~ pi, then R, G, B in
        turn from component k's logistics, each mean coupled to the channels already drawn
        (as levels, exactly as the likelihood couples them)."""
        channels, height, width = self.shape
        device = next(iter(self.parameters())).device
        x = np.zeros((n, channels, height, width), dtype=np.uint8)
        with no_grad():
            for row in range(height):
                for col in range(width):
                    params = self(self._scaled(tensor(x, device=device)))[:, :, row, col]
                    x[:, :, row, col] = self._draw_pixel(params, generator)
        return x

    def _draw_pixel(self, params, generator):
        """Levels (N, C) of one pixel from its mixture parameters (N, P)."""
        logit_weights, means, log_scales, coefficients = self._mixture(params)
        component = Categorical(logit_weights).sample(generator=generator).data[:, None]
        n = len(params)
        values = zeros((n, self.channels), dtype=params.dtype, device=params.device)
        one_component = zeros((n, 1), dtype=params.dtype, device=params.device)
        for c in range(self.channels):
            mean = self._coupled_means(means, coefficients, values)[:, c]
            logistic = DiscretizedLogisticMixture(
                one_component, take_along_axis(mean, component, axis=-1),
                take_along_axis(log_scales[:, c], component, axis=-1), num_bins=self.levels)
            values.data[:, c] = logistic.sample(generator=generator).data
        return np.rint((values.numpy() + 1.0) * ((self.levels - 1) / 2.0)).astype(np.uint8)
