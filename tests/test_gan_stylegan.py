"""The StyleGAN-style generator: AdaIN gives each channel the style's mean and standard
deviation, the noise inputs change the output only where they are scaled, instance
normalisation is per image and channel, and `stylegan` trains, samples and evaluates from
the command line."""
import numpy as np
import pytest

from clicheck import train_sample_eval
from gancheck import tiny_classifier  # noqa: F401 (a fixture)

import minigen as mg
from minigen import trainer
from minigen.gan.style import AdaIN, NoiseInput, StyleGenerator, instance_norm, start_size
from minigen.random import Generator


def test_instance_norm_normalises_each_image_and_channel_over_its_pixels():
    x = Generator(0).normal((3, 4, 5, 6), mean=2.0, std=3.0)
    y = instance_norm(x, eps=0.0).numpy().astype(np.float64)
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(2, 3)), 1.0, rtol=1e-4)
    # one image's statistics, not the batch's: an image alone gives the same output
    np.testing.assert_allclose(instance_norm(x[1:2], eps=0.0).numpy(), y[1:2], rtol=1e-5,
                               atol=1e-6)


def test_adain_output_has_the_styles_mean_and_std_per_channel():
    adain = AdaIN(channels=4, style_dim=3, eps=0.0, generator=Generator(1))
    x = Generator(2).normal((2, 4, 6, 6), mean=-1.0, std=5.0)
    w = Generator(3).normal((2, 3))
    y = adain(x, w).numpy().astype(np.float64)
    scale, bias = (t.numpy()[:, :, 0, 0] for t in adain.style(w))
    np.testing.assert_allclose(y.mean(axis=(2, 3)), bias, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(2, 3)), np.abs(scale), rtol=1e-4)
    # the input's own statistics are gone: shifting and scaling x changes nothing
    np.testing.assert_allclose(adain(x * 7.0 + 3.0, w).numpy(), y, rtol=1e-4, atol=1e-5)


def test_an_untrained_adain_is_instance_norm():
    adain = AdaIN(channels=4, style_dim=3, generator=Generator(1))
    adain.affine.weight = mg.nn.Parameter(np.zeros((8, 3), dtype=np.float32))
    x = Generator(2).normal((2, 4, 3, 3))
    np.testing.assert_allclose(adain(x, Generator(3).normal((2, 3))).numpy(),
                               instance_norm(x).numpy(), rtol=1e-6)


def test_noise_changes_only_the_scaled_channels():
    layer = NoiseInput(channels=4)
    x = Generator(0).normal((2, 4, 5, 5))
    noise = [Generator(s).normal((2, 1, 5, 5)) for s in (1, 2)]
    np.testing.assert_array_equal(layer(x, noise[0]).numpy(), x.numpy())
    layer.weight = mg.nn.Parameter(np.array([0.0, 0.5, 0.0, -2.0], dtype=np.float32))
    a, b = layer(x, noise[0]).numpy(), layer(x, noise[1]).numpy()
    changed = np.abs(a - b).max(axis=(0, 2, 3)) > 0
    assert changed.tolist() == [False, True, False, True]
    # one noise image shared by the channels, each scaled by its weight
    np.testing.assert_allclose((a - x.numpy())[:, 3], -4.0 * (a - x.numpy())[:, 1],
                               rtol=1e-5, atol=1e-6)


def test_generator_noise_matters_only_where_scaled():
    gen = StyleGenerator((1, 8, 8), latent=6, style_dim=8, channels=16, mapping_layers=2,
                         generator=Generator(0))
    z = Generator(1).normal((3, 6))
    noises = [Generator(s).normal((3, gen.noise_size)) for s in (5, 6)]
    with mg.no_grad():
        same = [gen(z, noise).numpy() for noise in noises]
        np.testing.assert_array_equal(*same)  # every noise scale is 0 at the start
        gen.noise_inputs()[-1].weight = mg.nn.Parameter(np.full(8, 0.3, dtype=np.float32))
        different = [gen(z, noise).numpy() for noise in noises]
        assert np.abs(different[0] - different[1]).max() > 1e-3
        # only the last layer's noise is scaled: the other layers' noise images do nothing
        last = gen.sides[-1] ** 2
        mixed = np.concatenate([noises[1].numpy()[:, :-last], noises[0].numpy()[:, -last:]],
                               axis=1)
        np.testing.assert_array_equal(gen(z, mg.tensor(mixed)).numpy(), different[0])


def test_the_style_carries_z_from_the_start():
    """w varies with z as much as z does (He init), and with the noise fixed, different
    z give different images: the variety comes from the style, not only the noise."""
    gen = StyleGenerator((1, 8, 8), latent=16, style_dim=32, channels=16, mapping_layers=4,
                         generator=Generator(0))
    z = Generator(1).normal((256, 16))
    with mg.no_grad():
        w = gen.mapping(z).numpy()
        assert w.std(axis=0).mean() > 0.3
        noise = mg.tensor(np.repeat(Generator(2).normal((1, gen.noise_size)).numpy(), 8, 0))
        images = gen(z[:8], noise).numpy()
    assert images.std(axis=0).mean() > 0.1 * images.std()


def test_generator_shapes_and_start_sizes():
    assert start_size(8) == 4 and start_size(28) == 7 and start_size(16) == 4
    gen = StyleGenerator((1, 28, 28), latent=5, style_dim=8, channels=16, mapping_layers=1)
    assert gen.sides == [7, 7, 14, 14, 28, 28] and gen.noise_size == 2 * (49 + 196 + 784)
    for shape in ((1, 8, 8), (1, 28, 28)):
        gen = StyleGenerator(shape, latent=5, style_dim=8, channels=16, mapping_layers=1,
                             generator=Generator(0))
        assert gen.constant.shape[2] == start_size(shape[1])
        y = gen(Generator(1).normal((2, 5)), Generator(2).normal((2, gen.noise_size)))
        assert y.shape == (2,) + shape and np.abs(y.numpy()).max() <= 1.0



@pytest.mark.parametrize("channels", [1, 4, 8, 12])
def test_generators_narrower_than_eight_channels_keep_their_width(channels):
    """Widths halve at each doubling down to 8, or stay at `channels` where that is fewer
    (the first layer has no conv, so it cannot widen; 4 broke on it once)."""
    gen = StyleGenerator((1, 8, 8), latent=3, style_dim=4, channels=channels,
                         mapping_layers=1, generator=Generator(0))
    widths = [layer.adain.channels for layer in gen.layers]
    assert widths == [channels] * 2 + [max(channels >> 1, min(channels, 8))] * 2
    y = gen(Generator(1).normal((2, 3)), Generator(2).normal((2, gen.noise_size)))
    assert y.shape == (2, 1, 8, 8)

def test_every_generator_weight_gets_a_gradient():
    gen = StyleGenerator((1, 8, 8), latent=5, style_dim=8, channels=16, mapping_layers=2,
                         generator=Generator(0))
    for layer in gen.noise_inputs():  # nonzero noise scales, so their inputs matter
        layer.weight = mg.nn.Parameter(np.full(layer.weight.shape, 0.1, dtype=np.float32))
    (gen(Generator(1).normal((4, 5)), Generator(2).normal((4, gen.noise_size))) ** 2) \
        .sum().backward()
    for name, p in gen.named_parameters():
        assert p.grad is not None and np.abs(p.grad.numpy()).max() > 0, name


@pytest.mark.parametrize("bad, key", [({"mapping_layers": 0}, "mapping_layers"),
                                      ({"style_dim": 0}, "style_dim")])
def test_bad_sizes_name_the_key(bad, key):
    args = dict(latent=5, style_dim=8, channels=16, mapping_layers=2)
    with pytest.raises(ValueError, match=key):
        StyleGenerator((1, 8, 8), **{**args, **bad})


def test_cli_train_sample_eval(tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("stylegan", "digits", [
        "--steps", "3", "--batch-size", "16", "--config", "channels=16", "style_dim=8",
        "latent=8", "mapping_layers=2", "eval_samples=40"], tmp_path, capsys)
    for key in ("test_fid_local", "test_kid_local", "test_is_local", "test_d_fake",
                "test_z_spread", "test_noise_spread"):
        assert np.isfinite(metrics[key]), key
    assert (tmp_path / "run" / "noise.png").is_file()
    assert metrics["test_noise_spread"] < metrics["test_z_spread"]
    run = trainer.Run.from_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert isinstance(run.model.G, StyleGenerator)
    a, b = (trainer.sample_examples(run.model, 5, Generator(9)) for _ in range(2))
    np.testing.assert_array_equal(a, b)  # z and the noise images come from one stream
