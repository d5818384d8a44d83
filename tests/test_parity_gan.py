"""minigen's gan and wgan-gp (DCGAN on digits) against their PyTorch builds
(benchmarks/torch_models/gan.py), the references of the issue-16 parity runs: with minigen's
weights copied in by name, the same batch, noise and interpolation weights give the same
discriminator and generator losses and the same gradients of every parameter, the WGAN-GP
penalty's double backward through the convolutions included."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the GAN parity test needs PyTorch "
                                            "(pip install -e '.[bench]')")

import minigen as mg  # noqa: E402
from minigen import models  # noqa: E402
from minigen.model import Batch  # noqa: E402
from minigen.models import DataSpec  # noqa: E402
from minigen.random import Generator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.parity import copy_weights  # noqa: E402
from benchmarks.torch_models.gan import DCGAN  # noqa: E402

SPEC = DataSpec("digits", (1, 8, 8), "discrete", levels=17, num_classes=10)
LATENT, CHANNELS, N = 8, 8, 6


def pair(name):
    entry = models.get(name)
    config = models.model_config(models.make_config(entry, dict(latent=LATENT,
                                                                channels=CHANNELS)))
    ours = entry.cls(SPEC, generator=Generator([0, 0]), **config)
    theirs = DCGAN(LATENT, SPEC.shape, CHANNELS,
                   "nonsaturating" if name == "gan" else "wasserstein")
    copy_weights(ours, theirs)
    return ours, theirs


def inputs(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 17, (N,) + SPEC.shape).astype(np.uint8)
    z = rng.standard_normal((N, LATENT)).astype(np.float32)
    eps = rng.uniform(size=N).astype(np.float32)
    return x, z, eps


class Fixed(Generator):
    """Hands the penalty the test's interpolation weights."""

    def __init__(self, eps):
        super().__init__(0)
        self.eps = eps

    def uniform(self, shape, *args, **kwargs):
        assert shape == self.eps.shape
        return mg.tensor(self.eps)


def compare_gradients(loss, params, loss_t, params_t):
    """Every parameter's gradient on both sides, to float32 rounding of the largest one (a
    bias that batch norm or the loss cancels has a gradient of rounding noise, or zero, on
    both sides). Returns the names whose gradient is more than that noise."""
    grads = [g.numpy() for g in mg.grad(loss, list(params.values()))]
    grads_t = [np.zeros_like(g) if g_t is None else g_t.numpy() for g, g_t in zip(
        grads, torch.autograd.grad(loss_t, [params_t[n] for n in params], allow_unused=True))]
    largest = max(np.abs(g).max() for g in grads_t)
    for name, g, want in zip(params, grads, grads_t):
        np.testing.assert_allclose(g, want, rtol=2e-4, atol=2e-5 * largest,
                                   err_msg=f"gradient of {name}")
    return {name for name, want in zip(params, grads_t) if np.abs(want).max() > 1e-4 * largest}


@pytest.mark.parametrize("name", ["gan", "wgan-gp"])
def test_losses_and_gradients_agree(name):
    ours, theirs = pair(name)
    x, z, eps = inputs()
    batch = Batch(mg.tensor(x))
    real = ours.scale(batch.x)
    real_t = torch.from_numpy(x).float() / 16 * 2 - 1
    np.testing.assert_allclose(real.numpy(), real_t.numpy(), rtol=1e-6)

    with mg.no_grad():
        fake = ours.G(mg.tensor(z))
    fake_t = theirs.G(torch.from_numpy(z)).detach()
    np.testing.assert_allclose(fake.numpy(), fake_t.numpy(), rtol=1e-4, atol=1e-6)

    d_loss, _ = ours.d_loss(real, fake, batch, Fixed(eps))
    d_loss_t = theirs.d_loss(real_t, fake_t, torch.from_numpy(eps))
    assert d_loss.item() == pytest.approx(d_loss_t.item(), rel=1e-5)
    d_params = {n: p for n, p in ours.named_parameters() if n.startswith("D.")}
    t_params = dict(theirs.named_parameters())
    weights = {n for n in d_params if n.endswith("weight")}
    assert weights <= compare_gradients(d_loss, d_params, d_loss_t, t_params)

    fake = ours.G(mg.tensor(z))
    fake_t = theirs.G(torch.from_numpy(z))
    g_loss, _ = ours.g_loss(fake, batch, Fixed(eps))
    g_loss_t = theirs.g_loss(fake_t)
    assert g_loss.item() == pytest.approx(g_loss_t.item(), rel=1e-5)
    g_params = {n: p for n, p in ours.named_parameters() if n.startswith("G.")}
    weights = {n for n in g_params if n.endswith("weight")}
    assert weights <= compare_gradients(g_loss, g_params, g_loss_t, t_params)


def test_the_penalty_alone_and_its_double_backward_agree():
    ours, theirs = pair("wgan-gp")
    x, z, eps = inputs(2)
    real = ours.scale(mg.tensor(x))
    fake = mg.tensor(np.tanh(np.random.default_rng(3).normal(size=(N,) + SPEC.shape))
                     .astype(np.float32))
    from minigen.gan import losses
    penalty, norms = losses.gradient_penalty(ours.D, real, fake, mg.tensor(eps))
    real_t, fake_t = torch.from_numpy(real.numpy()), torch.from_numpy(fake.numpy())
    penalty_t = theirs.penalty(real_t, fake_t, torch.from_numpy(eps))
    assert penalty.item() == pytest.approx(penalty_t.item(), rel=1e-5)
    d_params = {n: p for n, p in ours.named_parameters() if n.startswith("D.")}
    # the weights' gradients are second derivatives; a bias moves the penalty only by
    # flipping a leaky_relu's side, so its gradient is zero on both sides
    assert compare_gradients(penalty, d_params, penalty_t, dict(theirs.named_parameters())) \
        == {n for n in d_params if n.endswith("weight")}
