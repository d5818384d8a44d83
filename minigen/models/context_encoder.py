"""context-encoder: inpainting (Pathak, Krahenbuhl, Donahue, Darrell and Efros 2016,
"Context Encoders: Feature Learning by Inpainting").

A square of `mask_size` x `mask_size` pixels at a random place in each image (the paper's
random-block variant) is set to 0; the encoder f (minigen.representation.encoder) reads the
rest, and a decoder g = Linear(F, hidden), ReLU, Linear(hidden, C H W), sigmoid, paints the
whole image, of which only the hidden region is scored (eq. 1, with M the region's mask):

    L_rec = || M * (x - g(f((1 - M) * x))) ||^2 / |M|        (mean over the region's pixels)

With `adversarial` = lambda > 0, a small discriminator D (Linear(C H W, hidden), LeakyReLU
0.2, Linear(hidden, 1)) tells real images from completed ones, x outside the region and
g's painting inside it (eq. 2-3):

    L_D   = -log D(x) - log(1 - D(completed))                     (D's step, first)
    L     = L_rec + lambda * -log D(completed)                    (the non-saturating form)

The paper weighs them 0.999 and 0.001; lambda is that ratio's second term over the first.
Metrics: `pretext_loss` (L_rec, the reconstruction error of the region on the test
images), and at the end `linear_probe_acc` on the encoder's features of the whole image.
"""
import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import tensor
from ..model import Player, Update
from ..representation.model import AUGMENT, AUGMENT_RANGES, IMAGES
from ..representation.pretext import square_masks
from ..representation.selfsupervised import SelfSupervisedModel
from . import register


@register("context-encoder", "inpaint a masked square from the rest of the image (L2 "
          "on the region, optionally adversarial); features = the encoder's", data=IMAGES,
          width=32, mask_size=4, hidden=256, adversarial=0.0, **AUGMENT, steps=2000,
          batch_size=64, lr=1e-3,
          ranges={**AUGMENT_RANGES, "mask_size": "[1, inf)", "hidden": "[1, inf)",
                  "adversarial": "[0, inf)"})
class ContextEncoder(SelfSupervisedModel):
    def __init__(self, spec, generator, width=32, mask_size=4, hidden=256, adversarial=0.0,
                 **augment):
        super().__init__(spec, generator, width, **augment)
        _, h, w = spec.shape
        if not 1 <= mask_size < min(h, w):
            raise ValueError(f"mask_size={mask_size}: the region to inpaint must leave some "
                             f"of the {h}x{w} image to see")
        self.mask_size, self.adversarial = int(mask_size), float(adversarial)
        self.hidden = nn.Linear(self.encoder.features, int(hidden), generator=generator)
        self.out = nn.Linear(int(hidden), spec.dims, generator=generator)
        if self.adversarial:
            self.critic = nn.Sequential(
                nn.Linear(spec.dims, int(hidden), generator=generator), nn.LeakyReLU(0.2),
                nn.Linear(int(hidden), 1, generator=generator))

    def players(self):
        if not self.adversarial:
            return super().players()
        critic = list(self.critic.parameters())
        chosen = {id(p) for p in critic}
        return {"discriminator": Player(critic),
                "model": Player([p for p in self.parameters() if id(p) not in chosen])}

    def inpaint(self, y, mask):
        """(completed, painted): g's painting of the masked images y, pasted into the
        region, and the painting itself (N, C, H, W) Tensors."""
        seen = tensor(y * (1 - mask))
        painted = self.out(self.hidden(self.encoder(seen)).relu()).sigmoid() \
            .reshape(*y.shape)
        return seen + painted * tensor(mask), painted

    def reconstruction(self, y, painted, mask):
        """L_rec: the mean squared error of the painting over the region's pixels."""
        pixels = float(mask.sum()) * y.shape[1]
        return (((tensor(y) - painted) * tensor(mask)) ** 2).sum() / pixels

    def masks(self, y, generator):
        return tensor(square_masks(self.spec.shape, generator, self.mask_size, len(y)),
                      device=self.device).data

    def pretext_loss(self, y, generator):
        mask = self.masks(y, generator)
        _, painted = self.inpaint(y, mask)
        return self.reconstruction(y, painted, mask), {}

    def updates(self, batches, generator):
        if not self.adversarial:
            yield from super().updates(batches, generator)
            return
        y = self.augment(self.scale(batches.next().x), generator)
        mask = self.masks(y, generator)
        completed, painted = self.inpaint(y, mask)
        n = len(y)
        real = self.critic(tensor(y.reshape(n, -1)))
        fake = self.critic(completed.detach().reshape(n, -1))
        ones, zeros = tensor(np.ones((n, 1), np.float32), device=self.device), \
            tensor(np.zeros((n, 1), np.float32), device=self.device)
        # L_D = -log D(x) - log(1 - D(completed))
        critic_loss = F.binary_cross_entropy_with_logits(real, ones) + \
            F.binary_cross_entropy_with_logits(fake, zeros)
        yield Update("discriminator", critic_loss, {"d_loss": critic_loss.item()})
        recon = self.reconstruction(y, painted, mask)
        fooled = F.binary_cross_entropy_with_logits(self.critic(completed.reshape(n, -1)),
                                                    ones)
        yield Update("model", recon + self.adversarial * fooled,
                     {"recon_mse": recon.item(), "g_adversarial": fooled.item()})
