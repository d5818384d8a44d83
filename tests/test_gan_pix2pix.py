"""pix2pix: the U-Net's skip connections, the PatchGAN's local view, and the `pix2pix`
inpainting model end to end (its loss with L1 weight 100, the metrics of the inpainted
half)."""
import numpy as np
import pytest

import minigen as mg
from minigen.gan.image_to_image import PatchDiscriminator, UNetGenerator
from minigen.random import Generator


def test_each_patch_logit_sees_a_12x12_window():
    disc = PatchDiscriminator((1, 28, 28), channels=4, generator=Generator(0))
    disc.eval()
    image = mg.tensor(np.random.default_rng(0).standard_normal((1, 1, 28, 28)),
                      dtype="float32", requires_grad=True)
    condition = mg.tensor(np.random.default_rng(1).standard_normal((1, 1, 28, 28)),
                          dtype="float32", requires_grad=True)
    logits = disc(condition, image)
    assert logits.shape == (1, 1, 14, 14)
    logits[0, 0, 7, 7].backward()
    for x in (image, condition):  # D judges the pair: both reach the logit
        seen = np.abs(x.grad.numpy()[0, 0]) > 0
        rows, cols = np.where(seen.any(axis=1))[0], np.where(seen.any(axis=0))[0]
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (9, 20, 9, 20)


def test_the_unet_keeps_the_shape_and_its_skip_carries_the_input():
    net = UNetGenerator((1, 8, 8), channels=4, generator=Generator(0))
    net.eval()
    x = mg.tensor(np.random.default_rng(2).standard_normal((2, 1, 8, 8)), dtype="float32",
                  requires_grad=True)
    y = net(x)
    assert y.shape == x.shape and np.abs(y.numpy()).max() <= 1.0
    # with the bottleneck's output zeroed, the input still reaches the output: the skip
    net.up1.weight = mg.nn.Parameter(np.zeros_like(net.up1.weight.numpy()))
    net.up1.bias = mg.nn.Parameter(np.zeros_like(net.up1.bias.numpy()))
    net(x)[0, 0, 3, 3].backward()
    assert np.abs(x.grad.numpy()[0]).max() > 0 and not np.any(x.grad.numpy()[1])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="UNetGenerator"):
        UNetGenerator((1, 6, 6))
