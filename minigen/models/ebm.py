"""ebm: an energy-based model p(x) = exp(-E(x)) / Z trained by contrastive divergence
(Du & Mordatch 2019, "Implicit Generation and Generalization in Energy-Based Models"):
negatives from SGLD chains restarted from a replay buffer (95% of them), the loss
E(x+) - E(x-) + alpha (E(x+)^2 + E(x-)^2); the shared base is minigen/energy/model.py.

E is an ELU MLP on 2-D points (its -E drawn as a heat map under the data and the samples)
and a small conv net on images (minigen/energy/networks.py).
"""
from ..energy.model import EnergyModel
from ..energy.networks import ConvNet, EnergyMLP
from . import register
from .gan import TOYS

IMAGES = ("digits", "fashion-mnist", "mnist")
# the SGLD chains and the replay buffer, which jem shares
SAMPLER = dict(sgld_steps=20, sgld_step=2.0, sgld_noise=0.01, buffer_size=10000,
               buffer_fraction=0.95, alpha=0.1, sample_steps=20, sample_from="buffer",
               eval_samples=2000)
SAMPLER_RANGES = {"sgld_steps": "[1, inf)", "sgld_step": "(0, inf)", "sgld_noise": "[0, inf)",
                  "buffer_size": "[1, inf)", "buffer_fraction": "[0, 1]", "alpha": "[0, inf)",
                  "sample_steps": "[0, inf)", "eval_samples": "[4, inf)"}


@register("ebm", "energy-based model: contrastive divergence with SGLD from a replay buffer "
          "(Du & Mordatch), MLP on 2-D data, conv net on images", data=TOYS + IMAGES,
          ranges={**SAMPLER_RANGES, "hidden": "[1, inf)", "channels": "[1, inf)"},
          hidden=(128, 128, 128), channels=32, **SAMPLER, steps=2000, batch_size=64,
          lr=1e-3, betas=(0.0, 0.999))
class EBM(EnergyModel):
    def build_network(self, generator):
        if self.spec.is_image:
            return ConvNet(self.spec.shape, self.channels, 1, generator)
        return EnergyMLP(self.spec.dims, self.hidden, generator)

    def energy(self, x):
        if self.spec.is_image:
            return self.net(x)[:, 0]
        return self.net(x)
