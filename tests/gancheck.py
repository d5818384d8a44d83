"""What the GAN model tests share:

    from gancheck import tiny_classifier   # a fixture

`tiny_classifier` swaps the feature classifier behind fid_local, kid_local and the other
sample-quality metrics (minigen.quality) for a tiny one trained for one epoch and cached in
the session's temporary folder, so a command-line test neither trains nor reads the real
one."""
import pytest

from minigen import quality


@pytest.fixture
def tiny_classifier(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MINIGEN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setattr(quality, "CLASSIFIER",
                        quality.ClassifierConfig(channels=(4, 4, 4), epochs=1))
