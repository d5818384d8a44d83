"""pix2pix: the U-Net's skip connections, the PatchGAN's local view, and the `pix2pix`
inpainting model end to end (its loss with L1 weight 100, the metrics of the inpainted
half)."""
import numpy as np
import pytest

from clicheck import train_sample_eval
from gancheck import build, refused, tiny_classifier  # noqa: F401 (a fixture)

import minigen as mg
from minigen import trainer
from minigen.model import Batch
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


def _model(**config):
    return build("pix2pix", **{"channels": 4, **config})


def _digits(n, seed=0):
    return mg.tensor(np.random.default_rng(seed).integers(0, 17, (n, 1, 8, 8)))


def test_the_input_is_the_image_with_its_lower_half_black():
    model = _model()
    y = model.scale(_digits(3))
    x = model.masked(y).numpy()
    np.testing.assert_array_equal(x[:, :, :4], y.numpy()[:, :, :4])
    assert np.all(x[:, :, 4:] == -1.0)  # level 0


def test_the_generator_loss_is_the_gan_term_plus_100_l1():
    model = _model()
    batch = Batch(_digits(4))
    fake = model.generate(model.noise(4, Generator(1)), batch)
    loss, logs = model.g_loss(fake, batch, Generator(2))
    logits = model.discriminate(fake, batch).numpy().astype(np.float64)
    gan = np.logaddexp(0, -logits).mean()                       # -log D(x, G(x)) per patch
    l1 = np.abs(fake.numpy() - model.scale(batch.x).numpy()).mean()
    assert logs["l1"] == pytest.approx(l1, rel=1e-5)
    assert loss.item() == pytest.approx(gan + 100 * l1, rel=1e-5)


def test_dropout_is_the_noise_of_training_only():
    model = _model()
    keep = model.noise(3, Generator(0))
    assert keep.shape == (3, 4, 4, 4) and set(np.unique(keep.numpy())) <= {0.0, 1.0}
    model.eval()
    assert model.noise(3, Generator(0)) is None
    images = _digits(3).numpy()
    np.testing.assert_array_equal(model.inpaint(images), model.inpaint(images))


def test_the_metrics_score_the_lower_half_only():
    model = _model()
    model.eval()
    images = _digits(5, seed=3).numpy()
    out = model.inpaint(images).astype(np.float64)
    truth = images / 16 * 2 - 1
    error = (out - truth)[:, :, 4:] / 2  # on the [0, 1] scale
    batches = [Batch(mg.tensor(images[:3])), Batch(mg.tensor(images[3:]))]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("minigen.quality.image_quality", lambda *a: {})
        metrics = model.evaluate(iter(batches))
    assert metrics["inpaint_l1"] == pytest.approx(np.abs(error).mean(), rel=1e-5)
    assert metrics["inpaint_mse"] == pytest.approx((error ** 2).mean(), rel=1e-5)


def test_cli_train_sample_eval(tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("pix2pix", "digits", [
        "--steps", "3", "--batch-size", "16", "--config", "channels=4", "bank=20",
        "eval_samples=40"], tmp_path, capsys)
    for key in ("test_inpaint_l1", "test_inpaint_mse", "test_fid_local", "test_d_real"):
        assert np.isfinite(metrics[key]), key
    assert (tmp_path / "run" / "inpainting.png").is_file()
    run = trainer.Run.from_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert run.model.bank.shape == (20, 1, 8, 8)  # from the first two batches of 16
    np.testing.assert_array_equal(run.model.bank[:16], run.x_train[
        mg.data.BatchSampler(len(run.x_train), 16, 0).indices(0)])


@pytest.mark.parametrize("config, key", [(["l1_weight=-1"], "l1_weight"),
                                         (["bank=0"], "bank"), (["dropout=1"], "dropout")])
def test_bad_config_names_the_key(tmp_path, capsys, config, key):
    assert key in refused("pix2pix", config, tmp_path, capsys)


def test_features_are_ds_hidden_maps_of_the_true_pair():
    model = _model()
    model.eval()
    x = _digits(3)
    with mg.no_grad():
        f = model.features(x)
        y = model.scale(x)
        logits = model.D.conv3(f.reshape(3, 8, 4, 4)).numpy()
        np.testing.assert_allclose(logits, model.D(model.masked(y), y).numpy(), rtol=1e-6)
