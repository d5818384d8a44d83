"""What the GAN model tests share:

    from gancheck import build, refused, tiny_classifier   # tiny_classifier: a fixture

`build(name, **config)` is the registered model `name` on 8x8 digits (17 levels, 10
classes), its defaults with config applied, built from Generator(0). `refused(name,
config, tmp_path, capsys)` is the one-line error of `minigen train NAME --data digits
--config ...`, which must fail. `tiny_classifier` swaps the feature classifier behind fid_local, kid_local and the other
sample-quality metrics (minigen.quality) for a tiny one trained for one epoch and cached in
the session's temporary folder, so a command-line test neither trains nor reads the real
one."""
import pytest

from minigen import cli, models, quality
from minigen.random import Generator

DIGITS = models.DataSpec("digits", (1, 8, 8), "discrete", 17, 10)


def build(name, **config):
    entry = models.get(name)
    return entry.cls(DIGITS, Generator(0),
                     **models.model_config(models.make_config(entry, config)))


def refused(name, config, tmp_path, capsys):
    assert cli.main(["train", name, "--data", "digits", "--out", str(tmp_path / "refused"),
                     "--quiet", "--steps", "1", "--config", *config]) != 0
    return capsys.readouterr().err


@pytest.fixture
def tiny_classifier(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setattr(quality, "CLASSIFIER",
                        quality.ClassifierConfig(channels=(4, 4, 4), epochs=1))
