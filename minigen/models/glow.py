"""Glow: generative flow with invertible 1x1 convolutions (Kingma & Dhariwal, 2018).

The multi-scale architecture of figure 2: L levels; each level squeezes (2x2 blocks into
channels), runs K steps of flow, and (all but the last) factors out half of the channels
to the prior. One step (section 3):

    ActNorm                   y = x * exp(log_scale) + bias, initialised from the data
    invertible 1x1 conv       y = W x at every pixel, W = P L (U + diag(s)) in LU form
    affine coupling           y_b = x_b * sigmoid(h + 2) + t, (h, t) = NN(x_a)

so log p(y) = log p_Z(z) + sum over layers of log|det|, where the factored-out halves have
a learned conditional Gaussian prior given the half that stays (prior="learned", from a
zero-initialised conv) or a standard normal (prior="normal"). Inputs are the dequantized
images y = (x + u) / K, centred to [-1/2, 1/2) as in Glow, or through RealNVP's logit
transform with logit=True. nll(x) = log q(y | x) - log p(y) (DATA.md).
"""
from ..flows import Chain, Logit
from ..flows.coupling import ChannelSplitCoupling
from ..flows.layers import ActNorm, FactorOut, Inverse, InvertibleConv1x1, Shift, Squeeze
from ..flows.model import DiscreteFlow
from . import register


@register("glow", "Glow: ActNorm, invertible 1x1 conv (LU), affine coupling, multi-scale",
          data=("digits", "fashion-mnist", "mnist"),
          levels=2, steps_per_level=4, channels=64, prior="learned", logit=False, alpha=0.05,
          dequant="uniform", steps=1500, batch_size=128, lr=1e-3,
          ranges={"levels": "[1, inf)", "steps_per_level": "[1, inf)",
                  "channels": "[1, inf)", "alpha": "[0, 0.5)"})
class Glow(DiscreteFlow):
    def __init__(self, spec, generator=None, levels=2, steps_per_level=4, channels=64,
                 prior="learned", logit=False, alpha=0.05, dequant="uniform"):
        super().__init__(spec)
        if levels < 1 or steps_per_level < 1:
            raise ValueError(f"glow: levels and steps_per_level must be 1 or more, got "
                             f"{levels} and {steps_per_level}")
        if min(spec.shape[1:]) % (2 ** levels):
            raise ValueError(f"glow: {levels} levels squeeze {levels} times, which needs H "
                             f"and W divisible by {2 ** levels}; data are {spec.shape}")
        self.steps_per_level, self.hidden_channels = steps_per_level, channels
        self.factor_prior = prior
        flow = self._level(spec.shape[0], levels, generator)
        preprocess = Logit(alpha) if logit else Shift(-0.5)
        self.setup(spec, flow, preprocess=preprocess, dequant=dequant, generator=generator)

    def _step(self, channels, generator):
        return Chain(ActNorm(channels), InvertibleConv1x1(channels, generator),
                     ChannelSplitCoupling(channels, self.hidden_channels, generator))

    def _level(self, channels, levels_left, generator):
        """Squeeze, K steps, factor out half and recurse (but at the last level),
        unsqueeze: a flow that keeps the (C, H, W) shape it was given."""
        c = 4 * channels
        layers = [Squeeze()] + [self._step(c, generator) for _ in range(self.steps_per_level)]
        if levels_left > 1:
            layers.append(FactorOut(c, self._level(c // 2, levels_left - 1, generator),
                                    prior=self.factor_prior, generator=generator))
        layers.append(Inverse(Squeeze()))
        return Chain(*layers)


__all__ = ["Glow"]
