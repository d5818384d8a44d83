"""progan: progressive growing over two resolutions (Karras, Aila, Laine and Lehtinen 2018,
section 2), on fashion-mnist 14x14 then 28x28 (on 8x8 digits: 4x4 then 8x8).

The schedule, in training steps (one D update and one G update each):

    steps 0 .. low_steps              the game at half size: G's half-size image against
                                      the real images average-pooled, D's half-size path
    the next fade_steps steps         the full-size blocks fade in, alpha from 0 to 1:
                                      alpha = (step - low_steps) / fade_steps
    after that                        the game at full size, alpha = 1

While alpha < 1 the real images are faded the same way as the fakes, (1 - alpha) up(pool(x))
+ alpha x (section A.1), so D cannot tell real from fake by the sharpness that G does not
yet have. The networks (minigen/gan/progressive.py) are built whole at the start; the
parameters of a block not yet in use get no gradient and stay as they are.

alpha is a function of the model's own count of steps, which is model state
(extra_state): a run killed and resumed continues the schedule where it stopped. Samples
and evaluation are always full size: before the fade-in, the half-size image upsampled
(alpha = 0). alpha is logged with every generator update (log.csv).
"""
import numpy as np

from .. import functional as F
from ..gan.model import GAN
from ..gan.progressive import ProgressiveDiscriminator, ProgressiveGenerator, fade
from . import register
from .gan import ADAM_GAME_RANGES, DCGAN_GAME


@register("progan", "progressive GAN over two resolutions (half size, then full size with "
          "a fade-in of alpha over fade_steps)", data=("fashion-mnist", "digits", "mnist"),
          loss="nonsaturating", latent=64, channels=64, low_steps=1000, fade_steps=1000,
          **DCGAN_GAME, eval_samples=2000, steps=3000, batch_size=64,
          ranges={**ADAM_GAME_RANGES, "latent": "[1, inf)", "channels": "[1, inf)",
                  "low_steps": "[0, inf)", "fade_steps": "[1, inf)"})
class ProGAN(GAN):
    def __init__(self, spec, generator, low_steps=1000, fade_steps=1000, **config):
        if int(low_steps) < 0:
            raise ValueError(f"low_steps={low_steps}: the steps at half size must be >= 0")
        if int(fade_steps) < 1:
            raise ValueError(f"fade_steps={fade_steps}: the fade-in takes at least 1 step")
        self.low_steps, self.fade_steps = int(low_steps), int(fade_steps)
        self.steps_done = 0
        super().__init__(spec, generator, **config)

    def build_generator(self, generator):
        return ProgressiveGenerator(self.latent, self.spec.shape, self.channels, generator)

    def build_discriminator(self, generator):
        return ProgressiveDiscriminator(self.spec.shape, self.channels, generator)

    # the schedule -------------------------------------------------------------------------
    @property
    def alpha(self):
        """The fade-in weight of the full-size blocks after steps_done steps."""
        return float(np.clip((self.steps_done - self.low_steps) / self.fade_steps, 0.0, 1.0))

    @property
    def half_size(self):
        """Training before the fade-in: the game is played at half size."""
        return self.training and self.steps_done < self.low_steps

    def updates(self, batches, generator):
        yield from super().updates(batches, generator)
        self.steps_done += 1

    # the game at the schedule's resolution ------------------------------------------------
    def scale(self, x):
        """The real images as the game of this step sees them: pooled to half size before
        the fade-in, faded during it (only in training; evaluation sees them whole)."""
        s = super().scale(x)
        if not self.training or isinstance(s, np.ndarray):
            return s
        if self.half_size:
            return F.avg_pool2d(s, 2)
        alpha = self.alpha
        return fade(alpha, F.upsample_nearest(F.avg_pool2d(s, 2), 2) if alpha < 1 else None,
                    s)

    def generate(self, z, batch=None):
        return self.G(z, self.alpha, low=self.half_size)

    def discriminate(self, x, batch=None):
        return self.D(x, self.alpha, low=x.shape[-1] < self.spec.shape[-1])

    def features(self, x):
        """D's last hidden layer on data x at full size, for the linear probe."""
        return self.D.features(self.scale(x), self.alpha)

    def g_loss(self, fake, batch, generator):
        loss, logs = super().g_loss(fake, batch, generator)
        return loss, {**logs, "alpha": self.alpha}

    # model state --------------------------------------------------------------------------
    def extra_state(self):
        return {**super().extra_state(), "steps_done": self.steps_done, "alpha": self.alpha}

    def load_extra_state(self, state):
        super().load_extra_state(state)
        self.steps_done = int(state["steps_done"])
