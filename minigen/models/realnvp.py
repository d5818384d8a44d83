"""RealNVP: real-valued non-volume preserving flows (Dinh et al., 2017).

Affine couplings (eq. 9) whose scale and shift come from a convolutional net of the half of
the input that a mask lets through; the Jacobian is triangular, so

    log p(y) = log N(z; 0, I) + log|det dlogit/dy| + sum over couplings of sum (1 - b) * s.

The data first go through the logit transform of section 4.1 (with its log-determinant),
y = (x + u) / K being the dequantized image. nll(x) = log q(y | x) - log p(y) (DATA.md).

scales=1 (the default, for 8x8 digits): `couplings` checkerboard couplings whose masks
alternate, b[i, j] = 1 where (i + j) % 2 == k % 2 for coupling k. scales > 1 (for 28x28
images): the multi-scale architecture of section 3.6: per scale 3 checkerboard couplings,
a squeeze, 3 channel-wise couplings and half of the channels factored out to the prior;
the last scale has 4 checkerboard couplings. norm="batchnorm" or "actnorm" puts that
normalisation (with its log-determinant) after every coupling.

Each coupling's net: conv3x3 (C -> channels), ReLU, (hidden_layers - 1) x [conv3x3,
ReLU], conv3x3 (channels -> 2C) started at zero; out[:, :C] is s_raw, out[:, C:] is t;
s = scale * tanh(s_raw), with `scale` a learned (1, C, 1, 1) factor started at 1.

state_dict names with scales=1 and norm="none", for k = 0 .. couplings - 1 and
i = 0 .. hidden_layers (the PyTorch copy in benchmarks/torch_models/realnvp.py uses the same
names, at one scale and at several, with actnorm; with scales > 1 the later scales nest
under flow.layers.{k}.inner.layers...):
    flow.layers.{k}.net.convs.{i}.weight    (out, in, 3, 3)
    flow.layers.{k}.net.convs.{i}.bias      (out,)
    flow.layers.{k}.scale                   (1, C, 1, 1)
The loss is the batch mean of nll in nats per example.
"""
from ..flows import Chain, Logit
from ..flows.coupling import MaskedCoupling
from ..flows.layers import ActNorm, BatchNormFlow, FactorOut, Inverse, Squeeze
from ..flows.model import DiscreteFlow
from . import register

NORMS = ("none", "batchnorm", "actnorm")


@register("realnvp", "RealNVP: affine couplings, checkerboard/channel masks, multi-scale, logit",
          data=("digits", "fashion-mnist", "mnist"),
          couplings=6, channels=64, hidden_layers=2, scales=1, alpha=0.05, norm="none",
          dequant="uniform", steps=1500, batch_size=128, lr=1e-3,
          ranges={"couplings": "[1, inf)", "channels": "[1, inf)",
                  "hidden_layers": "[0, inf)", "scales": "[1, inf)", "alpha": "[0, 0.5)"})
class RealNVP(DiscreteFlow):
    def __init__(self, spec, generator=None, couplings=6, channels=64, hidden_layers=2,
                 scales=1, alpha=0.05, norm="none", dequant="uniform"):
        super().__init__(spec)
        if norm not in NORMS:
            raise ValueError(f"realnvp: norm must be one of {', '.join(NORMS)}, not {norm!r}")
        if scales < 1:
            raise ValueError(f"realnvp: scales must be 1 or more, got {scales}")
        side = min(spec.shape[1:])
        if side % (2 ** (scales - 1)):
            raise ValueError(f"realnvp: {scales} scales squeeze {scales - 1} times, which "
                             f"needs H and W divisible by {2 ** (scales - 1)}; data are "
                             f"{spec.shape}")
        self.net_options = dict(hidden_channels=channels, hidden_layers=hidden_layers,
                                generator=generator)
        self.norm = norm
        flow = self._single_scale(spec.shape[0], couplings) if scales == 1 else \
            self._scale(spec.shape[0], scales)
        self.setup(spec, flow, preprocess=Logit(alpha), dequant=dequant, generator=generator)

    def _coupling(self, channels, mask, parity):
        """A coupling, followed by the normalisation layer when one is asked for."""
        layers = [MaskedCoupling(channels, mask, parity, **self.net_options)]
        if self.norm == "batchnorm":
            layers.append(BatchNormFlow(channels))
        elif self.norm == "actnorm":
            layers.append(ActNorm(channels))
        return layers

    def _single_scale(self, channels, couplings):
        return Chain(*[layer for k in range(couplings)
                       for layer in self._coupling(channels, "checkerboard", k % 2)])

    def _scale(self, channels, scales_left):
        """One scale of section 3.6 on (C, H, W), keeping that shape: checkerboard x 3,
        squeeze, channel-wise x 3, factor out half and recurse, unsqueeze."""
        if scales_left == 1:
            return self._single_scale(channels, 4)
        squeezed = 4 * channels
        layers = [layer for k in range(3)
                  for layer in self._coupling(channels, "checkerboard", k % 2)]
        layers.append(Squeeze())
        layers += [layer for k in range(3)
                   for layer in self._coupling(squeezed, "channel", k % 2)]
        layers.append(FactorOut(squeezed, self._scale(squeezed // 2, scales_left - 1)))
        layers.append(Inverse(Squeeze()))
        return Chain(*layers)


__all__ = ["RealNVP"]
