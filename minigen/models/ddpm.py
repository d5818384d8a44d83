"""DDPM (Ho et al. 2020): epsilon prediction with the simple loss, linear or cosine (Nichol and
Dhariwal 2021) betas, optional learned variances with the hybrid loss, ancestral and DDIM
(Song et al. 2021) sampling, and test_bpd as the full variational bound. The model is
minigen/diffusion/model.py; the U-Net minigen/diffusion/unet.py.

The defaults are the issue's checked config on digits: T = 1000, linear betas 1e-4 to 0.02,
the 8x8 U-Net (channels 64, multipliers 1, 2), Adam 2e-4, batches of 128, parameter EMA
0.999 for evaluation and samples, 6000 steps:

    minigen train ddpm --data digits
    minigen sample runs/ddpm-digits-0 --out x.npy              (the run's sampler)
    minigen train ddpm --data digits --config sampler=ddim sample_steps=50 eta=0
"""
from ..diffusion.model import DDPM
from . import register

DATA = ("digits", "fashion-mnist", "mnist")
CONFIG = dict(T=1000, schedule="linear", variance="large", vlb_weight=0.001, channels=64,
              channel_mults=(), groups=8, sampler="ancestral", sample_steps=50, eta=0.0,
              clip_denoised=True, eval_samples=2000, steps=6000, batch_size=128, lr=2e-4,
              ema=0.999)
# precision and recall need a sample's k-th neighbour besides itself (quality.PR_NEIGHBOURS
# = 3), so 4 samples at least
RANGES = {"T": "[1, inf)", "vlb_weight": "[0, inf)", "channels": "[1, inf)",
          "channel_mults": "[1, inf)", "groups": "[1, inf)", "sample_steps": "[1, inf)",
          "eta": "[0, 1]", "eval_samples": "[4, inf)"}


register("ddpm", "Denoising diffusion (DDPM): U-Net epsilon prediction, linear or cosine "
         "betas, learned variances (variance=learned), ancestral or DDIM sampling "
         "(sampler=ddim), test_bpd the full variational bound", data=DATA, ranges=RANGES,
         **CONFIG)(DDPM)
