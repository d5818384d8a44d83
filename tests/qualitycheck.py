"""A tiny feature classifier for the sample-quality metrics, trained once per test session
into a temporary cache, so that tests of every model that reports fid_local/kid_local stay
fast and never touch ~/.cache:

    from qualitycheck import tiny_classifier  # noqa: F401  (then ask for the fixture)
"""
import pytest

from minigen import quality

TINY = quality.ClassifierConfig(channels=(8, 16, 32), epochs=6, lr=1e-2)  # digits: 0.83


@pytest.fixture(scope="session", autouse=False)
def tiny_classifier(tmp_path_factory):
    """quality.CLASSIFIER is TINY and $MINIGEN_CACHE a session folder for the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIGEN_CACHE", str(tmp_path_factory.mktemp("minigen-cache")))
        patch.setattr(quality, "CLASSIFIER", TINY)
        yield TINY
