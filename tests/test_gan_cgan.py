"""cgan: the label changes the sample (and only the label: the same z), D is told the
label, BigGAN's keys work from the command line, and bad input is refused with the key."""
import numpy as np
import pytest
from clicheck import train_sample_eval
from gancheck import build, refused, tiny_classifier  # noqa: F401 (a fixture)

import minigen as mg
from minigen import cli, models, trainer
from minigen.gan.attention import SelfAttention2d
from minigen.model import Batch
from minigen.random import Generator

TINY = ["--steps", "3", "--batch-size", "16", "--config", "channels=8", "latent=8",
        "eval_samples=40"]


def _model(**config):
    return build("cgan", **{"channels": 8, "latent": 8, **config})


def test_the_label_changes_the_sample_and_nothing_else_does():
    model = _model()
    model.eval()
    z = Generator(1).normal((10, 8))
    with mg.no_grad():
        by_label = [model.generate(z, Batch(None, mg.tensor(np.full(10, k)))).numpy()
                    for k in (3, 7)]
        again = model.generate(z, Batch(None, mg.tensor(np.full(10, 3)))).numpy()
    # DCGAN's N(0, 0.02) init makes an untrained G's outputs small: compare relatively
    assert np.abs(by_label[0] - by_label[1]).max() > 0.1 * np.abs(by_label[0]).max()
    np.testing.assert_array_equal(by_label[0], again)


def test_d_is_told_the_label():
    model = _model()
    model.eval()  # batch norm in training would mix the examples
    x = model.scale(mg.tensor(np.random.default_rng(0).integers(0, 17, (4, 1, 8, 8))))
    with mg.no_grad():
        a = model.discriminate(x, Batch(None, mg.tensor([0, 1, 2, 3]))).numpy()
        b = model.discriminate(x, Batch(None, mg.tensor([5, 1, 2, 3]))).numpy()
    assert a[0] != b[0] and np.array_equal(a[1:], b[1:])


def test_cli_train_sample_eval_with_labels(tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("cgan", "digits", TINY, tmp_path, capsys, label=4)
    for key in ("test_fid_local", "test_kid_local", "test_label_accuracy", "test_d_real"):
        assert np.isfinite(metrics[key]), key
    out = tmp_path / "run"
    for k in (1, 2):
        assert cli.main(["sample", str(out), "--n", "5", "--label", str(k),
                         "--out", str(tmp_path / f"{k}.npy")]) == 0
    assert np.load(tmp_path / "1.npy").shape == (5, 1, 8, 8)
    run = trainer.Run.from_checkpoint(out / "checkpoint.npz")
    run.model.eval()
    with mg.no_grad():  # the trained G, one z, two labels
        z = run.model.noise(5, Generator(3))
        one, two = (run.model.generate(z, Batch(None, mg.tensor(np.full(5, k)))).numpy()
                    for k in (1, 2))
    assert np.abs(one - two).max() > 0.1 * np.abs(one).max()


@pytest.mark.parametrize("name", ["cgan", "gan", "sngan"])
def test_biggan_keys_from_the_command_line(name, tmp_path, capsys, tiny_classifier):
    """SAGAN's block and BigGAN's tricks are keys of cgan, gan and sngan (sngan with
    self_attention is SAGAN)."""
    out = tmp_path / "run"
    assert cli.main(["train", name, "--data", "digits", "--out", str(out), "--quiet",
                     *TINY, "self_attention=true", "orthogonal=1e-3",
                     "truncation=0.5"]) == 0
    run = trainer.Run.from_checkpoint(out / "checkpoint.npz")
    assert any(isinstance(m, SelfAttention2d) for m in run.model.G.modules())
    assert any(isinstance(m, SelfAttention2d) for m in run.model.D.modules())
    assert run.model.truncation == 0.5 and run.model.orthogonal == 1e-3
    with open(out / "log.csv") as f:
        assert "orthogonal_penalty" in f.readline()
    run.model.eval()
    z = run.model.noise(200, Generator(0))
    assert np.abs(z.numpy()).max() < 0.5  # truncated when sampling
    run.model.train()
    assert np.abs(run.model.noise(200, Generator(0)).numpy()).max() > 0.5  # not in training


@pytest.mark.parametrize("name", ["cgan", "gan", "sngan"])
@pytest.mark.parametrize("config, key", [(["truncation=0"], "truncation"),
                                         (["truncation=-1"], "truncation"),
                                         (["orthogonal=-0.1"], "orthogonal")])
def test_bad_config_names_the_key(tmp_path, capsys, name, config, key):
    assert key in refused(name, config, tmp_path, capsys)


def test_self_attention_on_points_is_refused(tmp_path, capsys):
    """SAGAN's block attends over an image's pixels; 2-D points have none."""
    assert "self_attention" in refused("gan", ["self_attention=true"], tmp_path, capsys,
                                       data="toy-8gaussians")


def test_unlabelled_data_is_refused():
    spec = models.DataSpec("toy", (1, 8, 8), "discrete", 17, None)
    with pytest.raises(ValueError, match="labels"):
        models.get("cgan").cls(spec, Generator(0))


def test_truncation_at_sampling_time(tmp_path, capsys, tiny_classifier):
    """`minigen sample RUN --config truncation=T` applies the trick to a generator trained
    without it; a key that is not a sampling setting is refused, naming the ones there are."""
    out = tmp_path / "run"
    assert cli.main(["train", "gan", "--data", "digits", "--out", str(out), "--quiet",
                     *TINY]) == 0
    sample = ["sample", str(out), "--n", "6"]
    assert cli.main([*sample, "--out", str(tmp_path / "t.npy"), "--config",
                     "truncation=0.5"]) == 0
    assert np.load(tmp_path / "t.npy").shape == (6, 1, 8, 8)
    capsys.readouterr()
    assert cli.main([*sample, "--out", str(tmp_path / "b.npy"), "--config",
                     "truncation=0"]) == 2
    assert "truncation" in capsys.readouterr().err
    assert cli.main([*sample, "--out", str(tmp_path / "b.npy"), "--config", "latent=4"]) == 2
    err = capsys.readouterr().err
    assert "not a sampling setting of gan" in err and "truncation" in err
    assert not (tmp_path / "b.npy").exists()
