"""NICE: non-linear independent components estimation (Dinh et al., 2015).

On the flattened image, `couplings` additive coupling layers (eq. 5) alternate which half
of the dimensions (even or odd indices) passes through and which is shifted,

    y_b = x_b + m(x_a),     log|det| = 0,

and a final diagonal scaling y = x * exp(S) (section 3.3) gives the flow its only
log-determinant, sum(S). So (eq. 3)

    log p(y) = sum_d log p_Z(z_d) + sum(S),

with the standard logistic prior of the paper (prior="logistic") or a standard normal.
Inputs are the dequantized images y = (x + u) / K in [0, 1), as in the paper, or through
RealNVP's logit transform with logit=True. nll(x) = log q(y | x) - log p(y) (DATA.md).
The paper's MNIST nets have 5 hidden layers of 1000 units; for 8x8 digits the default is
two layers of 256.
"""
from ..flows import Chain, Logit
from ..flows.coupling import AdditiveCoupling
from ..flows.layers import DiagonalScaling
from ..flows.model import DiscreteFlow
from . import register


@register("nice", "NICE: additive couplings on flattened images, diagonal scaling",
          data=("digits", "fashion-mnist", "mnist"),
          couplings=4, hidden=(256, 256), prior="logistic", logit=False, alpha=0.05,
          dequant="uniform", steps=1500, batch_size=128, lr=1e-3,
          ranges={"couplings": "[2, inf)", "hidden": "[1, inf)", "alpha": "[0, 0.5)"})
class NICE(DiscreteFlow):
    def __init__(self, spec, generator=None, couplings=4, hidden=(256, 256),
                 prior="logistic", logit=False, alpha=0.05, dequant="uniform"):
        super().__init__(spec)
        if couplings < 2:
            raise ValueError(f"nice: needs 2 or more couplings (so that every dimension is "
                             f"transformed), got {couplings}")
        dims = spec.dims
        flow = Chain(*[AdditiveCoupling(dims, k % 2, hidden=tuple(hidden), generator=generator)
                       for k in range(couplings)], DiagonalScaling(dims))
        self.setup(spec, flow, preprocess=Logit(alpha) if logit else None,
                   latent_shape=(dims,), prior=prior, dequant=dequant, generator=generator)


__all__ = ["NICE"]
