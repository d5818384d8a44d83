"""Encoders: networks from data scaled to [0, 1] to the parameters of a Gaussian over the
latents, q(z | x) = N(mu(x), diag exp(logvar(x))) (Kingma and Welling 2014, appendix C.2).

    encoder = MLPEncoder(64, (256, 256), 16, generator)         # x flattened: (N, 64)
    encoder = ConvEncoder((1, 8, 8), 32, (256,), 16, generator)  # x: (N, 1, 8, 8)
    mu, logvar = encoder(x)                                      # each (N, 16)

The last layer gives 2 * latent outputs, mu first and logvar second. A deterministic
autoencoder reads mu alone. `MLP` is the plain network under both (Linear layers with a
ReLU between them); the decoders (minigen.latent.decoders) use it too.

Parameter names, which the PyTorch builds in benchmarks/torch_models/ share:
`layers.{i}.weight/bias` for the Linear layers, `convs.{i}.weight/bias` for the conv
encoder's two stride-2 convolutions. Every layer starts at torch's default initialisation,
drawn from `generator`.
"""
from .. import nn
from ..ops import relu


class MLP(nn.Module):
    """Linear layers of sizes (in, h_1, ..., out) with a ReLU after every layer but the last."""

    def __init__(self, sizes, generator):
        super().__init__()
        sizes = tuple(int(s) for s in sizes)
        self.layers = nn.ModuleList([nn.Linear(n_in, n_out, generator=generator)
                                     for n_in, n_out in zip(sizes[:-1], sizes[1:])])

    def forward(self, h):
        layers = list(self.layers)
        for layer in layers[:-1]:
            h = relu(layer(h))
        return layers[-1](h)


class MLPEncoder(MLP):
    """x (N, ...) flattened to (N, in_features) -> Linear/ReLU layers of widths `hidden` ->
    mu, logvar (N, latent) each."""

    def __init__(self, in_features, hidden, latent, generator):
        super().__init__((in_features, *hidden, 2 * latent), generator)
        self.latent = int(latent)

    def forward(self, x):
        out = super().forward(x.reshape(len(x), -1))
        return out[:, :self.latent], out[:, self.latent:]


def conv_feature_shape(shape, channels):
    """The (C, H, W) of the conv stacks' inner maps: 2 * channels at a quarter of the image
    side. Raises ValueError for an image side that two halvings cannot divide."""
    c, h, w = shape
    if h % 4 or w % 4:
        raise ValueError(f"arch=conv: the convolutions halve the image twice, so its sides "
                         f"must be multiples of 4; got {h}x{w}")
    return 2 * int(channels), h // 4, w // 4


class ConvEncoder(MLPEncoder):
    """x (N, C, H, W) -> two 4x4 stride-2 convolutions with ReLUs (channels, then
    2 * channels, at H/2 then H/4) -> flattened -> the MLP encoder's layers (widths `hidden`)
    -> mu, logvar (N, latent) each."""

    def __init__(self, shape, channels, hidden, latent, generator):
        inner = conv_feature_shape(shape, channels)
        convs = nn.ModuleList([
            nn.Conv2d(shape[0], inner[0] // 2, 4, stride=2, padding=1, generator=generator),
            nn.Conv2d(inner[0] // 2, inner[0], 4, stride=2, padding=1, generator=generator)])
        super().__init__(inner[0] * inner[1] * inner[2], hidden, latent, generator)
        self.convs = convs

    def forward(self, x):
        h = x
        for conv in self.convs:
            h = relu(conv(h))
        return super().forward(h)
