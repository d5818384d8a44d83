"""BigGAN's tricks: the orthogonal penalty by hand (and its gradient), truncated latents
within the threshold, and bad thresholds refused with the key named."""
import numpy as np
import pytest

from minigen import nn
from minigen.gan.biggan import (check_truncation, filter_matrices, orthogonal_penalty,
                                truncated_normal)
from minigen.random import Generator


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        g = Generator(0)
        self.linear = nn.Linear(3, 4, generator=g)
        self.conv = nn.Conv2d(2, 3, 2, generator=g)
        self.up = nn.ConvTranspose2d(3, 5, 2, generator=g)
        self.norm = nn.BatchNorm2d(5)  # not a weight matrix: left alone


def _by_hand(w):
    """||W^T W o (1 - I)||_F^2 for W with one column per filter."""
    gram = w.T @ w
    return float(((gram - np.diag(np.diag(gram))) ** 2).sum())


def test_the_penalty_by_hand():
    net = _Net()
    columns = [net.linear.weight.numpy().T,                                   # (3, 4)
               net.conv.weight.numpy().reshape(3, -1).T,                      # (8, 3)
               net.up.weight.numpy().transpose(1, 0, 2, 3).reshape(5, -1).T]  # (12, 5)
    expected = 1e-2 * sum(_by_hand(w.astype(np.float64)) for w in columns)
    assert orthogonal_penalty(net, 1e-2).item() == pytest.approx(expected, rel=1e-5)
    assert [name for name, _ in filter_matrices(net)] == ["linear", "conv", "up"]


def test_orthogonal_filters_cost_nothing_whatever_their_norms():
    layer = nn.Linear(4, 3)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 3)))
    layer.weight = nn.Parameter((q * [1.0, 3.0, 0.2]).T.astype(np.float32))
    assert orthogonal_penalty(layer, 1.0).item() == pytest.approx(0.0, abs=1e-10)


def test_the_penalty_gradient_is_4_beta_w_offdiag_gram():
    """d/dW ||W^T W o (1 - I)||^2 = 4 W (W^T W o (1 - I)) for W with filters as columns."""
    layer = nn.Linear(3, 4)
    orthogonal_penalty(layer, 0.5).backward()
    w = layer.weight.numpy().astype(np.float64).T
    gram = w.T @ w
    expected = 4 * 0.5 * w @ (gram - np.diag(np.diag(gram)))
    np.testing.assert_allclose(layer.weight.grad.numpy(), expected.T, rtol=1e-4, atol=1e-6)


def test_a_negative_beta_names_the_key():
    with pytest.raises(ValueError, match="orthogonal"):
        orthogonal_penalty(nn.Linear(2, 2), -1.0)


@pytest.mark.parametrize("threshold", [0.1, 0.5, 2.0])
def test_truncated_latents_are_within_the_threshold(threshold):
    z = truncated_normal(Generator(0), (500, 16), threshold)
    assert z.shape == (500, 16) and z.dtype == np.float32
    assert np.abs(z).max() < threshold
    # a truncated normal: most mass near 0 stays, the spread shrinks with the threshold
    assert z.std() < min(threshold, 1.0)


def test_truncation_is_reproducible_and_changes_nothing_inside_the_threshold():
    a = truncated_normal(Generator(3), (100, 4), 1.0)
    np.testing.assert_array_equal(a, truncated_normal(Generator(3), (100, 4), 1.0))
    plain = Generator(3).rng.standard_normal((100, 4))
    inside = np.abs(plain) < 1.0
    np.testing.assert_array_equal(a[inside], plain[inside].astype(np.float32))


@pytest.mark.parametrize("bad", [0, -1.5, "0", "fast"])
def test_bad_truncation_names_the_key(bad):
    with pytest.raises(ValueError, match="truncation"):
        check_truncation(bad)


def test_no_truncation_is_none():
    assert check_truncation(None) is None and check_truncation("0.7") == 0.7
