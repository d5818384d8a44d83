"""The GAN family: the shared base and the pieces its models are built from.

    model.py           GAN(Model): the base of every GAN (players, update order, metrics,
                       pictures; what a subclass overrides is listed there)
    networks.py        MLP and DCGAN generators and discriminators, virtual batch norm,
                       minibatch discrimination, spectral norm, the DCGAN init
    losses.py          minimax, non-saturating, Wasserstein, hinge, gradient penalty
    pictures.py        D's decision surface on 2-D data, losses and D's outputs over steps
    attention.py       SAGAN's self-attention block
    biggan.py          BigGAN's orthogonal regularisation and truncation trick
    style.py           StyleGAN-style generator pieces
    progressive.py     progressive growing over two resolutions
    image_to_image.py  pix2pix's U-Net generator and PatchGAN discriminator

The registered models live in minigen/models (gan.py: gan, wgan, wgan-gp, sngan); the
sample-quality metrics every model shares in minigen/quality.py.
"""
