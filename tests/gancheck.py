"""What the GAN model tests share:

    from gancheck import build, refused, tiny_classifier   # tiny_classifier: a fixture

`build(name, **config)` is the registered model `name` on 8x8 digits (17 levels, 10
classes), its defaults with config applied, built from Generator(0). `refused(name,
config, tmp_path, capsys)` is the one-line error of `minigen train NAME --data digits
--config ...`, which must fail. `tiny_classifier` is qualitycheck's fixture (the feature
classifier behind fid_local and the other sample-quality metrics swapped for a tiny one,
trained once per session into a temporary cache), so a command-line test neither trains nor
reads the real one."""
from qualitycheck import tiny_classifier  # noqa: F401  (re-exported for the GAN tests)

from minigen import cli, models
from minigen.random import Generator

DIGITS = models.DataSpec("digits", (1, 8, 8), "discrete", 17, 10)


def build(name, **config):
    entry = models.get(name)
    return entry.cls(DIGITS, Generator(0),
                     **models.model_config(models.make_config(entry, config)))


def refused(name, config, tmp_path, capsys, data="digits"):
    assert cli.main(["train", name, "--data", data, "--out", str(tmp_path / "refused"),
                     "--quiet", "--steps", "1", "--config", *config]) != 0
    return capsys.readouterr().err

