"""The sample-quality metrics of minigen/quality.py, against closed forms and limiting
cases, and the classifier cache."""
import os

import numpy as np
import pytest
from qualitycheck import TINY, tiny_classifier  # noqa: F401

from minigen import data, quality


def gaussian(n, d, seed, mean=0.0, std=1.0):
    return np.random.default_rng(seed).normal(mean, std, (n, d))


def test_fid_of_gaussians_is_the_closed_form():
    """FID of N(m1, S1) and N(m2, S2) with commuting covariances: ||m1 - m2||^2 +
    sum (s1 + s2 - 2 sqrt(s1 s2)) over the eigenvalues; here from the samples' own
    statistics, which fid must reproduce exactly."""
    a = gaussian(4000, 3, 0) * np.array([1.0, 2.0, 0.5]) + np.array([1.0, 0.0, -1.0])
    mean, cov = np.zeros(3), np.diag([4.0, 1.0, 1.0])
    mu, s = a.mean(0), np.cov(a, rowvar=False)
    from scipy import linalg
    expected = mu @ mu + np.trace(s + cov - 2 * linalg.sqrtm(s @ cov).real)
    assert quality.fid(a, mean, cov) == pytest.approx(expected, rel=1e-10)
    # and it is near the population value: shift^2 = 2, variances (1,4)->(4,1) etc.
    population = 2 + (1 + 4 - 2 * 2) + (4 + 1 - 2 * 2) + (0.25 + 1 - 2 * 0.5)
    assert quality.fid(a, mean, cov) == pytest.approx(population, abs=0.15)
    assert quality.fid(a, mu, s) == pytest.approx(0.0, abs=1e-8)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_a_shift():
    same = [quality.kid(gaussian(200, 8, s), gaussian(200, 8, 100 + s), seed=s, subsets=2)
            for s in range(12)]
    shifted = quality.kid(gaussian(200, 8, 0, mean=0.5), gaussian(200, 8, 1), subsets=2)
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-3
    assert min(same) < 0 < max(same)  # unbiased: the estimate goes below zero too
    assert shifted > 20 * np.std(same)


def test_polynomial_mmd2_equals_its_definition():
    a, b = gaussian(5, 3, 0), gaussian(4, 3, 1)
    k = lambda x, y: (x @ y / 3 + 1) ** 3  # noqa: E731
    aa = sum(k(a[i], a[j]) for i in range(5) for j in range(5) if i != j) / 20
    bb = sum(k(b[i], b[j]) for i in range(4) for j in range(4) if i != j) / 12
    ab = sum(k(a[i], b[j]) for i in range(5) for j in range(4)) / 20
    assert quality.polynomial_mmd2(a, b) == pytest.approx(aa + bb - 2 * ab, rel=1e-12)


def test_inception_score_limits():
    assert quality.inception_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)
    sharp = np.eye(10)[np.arange(50) % 10]  # confident and spread over 10 classes
    assert quality.inception_score(sharp) == pytest.approx(10.0, rel=1e-6)
    one_class = np.eye(10)[np.zeros(50, int)]
    assert quality.inception_score(one_class) == pytest.approx(1.0, rel=1e-6)


def test_precision_and_recall_tell_quality_from_coverage():
    real = gaussian(400, 2, 0)
    p, r = quality.precision_recall(gaussian(400, 2, 1), real)
    assert p > 0.9 and r > 0.9
    collapsed = gaussian(400, 2, 2, std=0.05)  # good samples, one small region
    p, r = quality.precision_recall(collapsed, real)
    assert p == 1.0 and r < 0.2
    p, r = quality.precision_recall(gaussian(400, 2, 3, mean=20.0), real)
    assert p == 0.0 and r == 0.0


def test_mode_coverage_counts_modes_and_high_quality_samples():
    modes = data.toy_modes("toy-8gaussians")
    x, _ = data.load("toy-8gaussians", "test")
    full = quality.mode_coverage(x, modes)
    assert full["modes_hit"] == 8 and full["high_quality"] > 0.98
    one = modes["centres"][3] + np.random.default_rng(0).normal(0, modes["std"], (2000, 2))
    collapsed = quality.mode_coverage(np.concatenate([one, np.zeros((500, 2))]), modes)
    assert collapsed["modes_hit"] == 1 and collapsed["high_quality"] == pytest.approx(
        0.8, abs=0.01)  # the 500 points at the centre are near no mode
    rings = quality.mode_coverage(data.load("toy-rings", "test")[0],
                                  data.toy_modes("toy-rings"))
    assert rings["modes_hit"] == 4 and rings["high_quality"] > 0.98
    assert data.toy_modes("toy-moons") is None


def test_the_classifier_is_trained_once_and_cached(tiny_classifier, monkeypatch):
    ref = quality.reference("digits")
    config, key = quality.cache_key("digits", TINY)
    path = os.path.join(quality.cache_folder(), key + ".npz")
    assert os.path.isfile(path) and ref.info["config"] == config
    assert ref.accuracy > 0.5  # the tiny classifier still learns the digits
    assert quality.cache_key("digits", quality.ClassifierConfig())[1] != key
    quality._LOADED.clear()
    monkeypatch.setattr(quality, "train_classifier", lambda *a: pytest.fail("retrained"))
    again = quality.reference("digits")
    np.testing.assert_array_equal(again.subset, ref.subset)


def test_image_quality_of_test_images_beats_noise(tiny_classifier):
    x, _ = data.load("digits", "test")
    floor = quality.image_quality(x, "digits")
    noise = np.random.default_rng(0).integers(0, 17, x.shape).astype(np.uint8)
    bad = quality.image_quality(noise, "digits")
    assert set(floor) == {"fid_local", "kid_local", "is_local", "precision", "recall",
                          "classifier_accuracy"}
    assert floor["fid_local"] < bad["fid_local"] and floor["kid_local"] < bad["kid_local"]
    assert floor["precision"] > bad["precision"] and floor["recall"] > bad["recall"]
    assert floor["is_local"] > bad["is_local"]
    with pytest.raises(ValueError, match="image dataset"):
        quality.image_quality(np.zeros((4, 2)), "toy-moons")
