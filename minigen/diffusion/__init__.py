"""Diffusion models (DDPM, Ho et al. 2020; DDIM sampling, Song et al. 2021; learned
variances and the cosine schedule, Nichol and Dhariwal 2021):

    schedule.py   the forward process: betas, q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0)
    unet.py       the noise-prediction U-Net
    bound.py      the discretized Gaussian decoder of the bound's L_0
    sampling.py   the ancestral and DDIM samplers
    model.py      the model: the simple and hybrid losses, the full bound, samples
"""
