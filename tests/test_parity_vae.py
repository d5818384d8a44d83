"""minigen's vae against its PyTorch build (benchmarks/torch_models/vae.py), the reference of
the issue-13 parity run: with minigen's weights copied in by name and the same draws eps,
both give the same ELBO terms and importance weights per image, and the same gradient of
the mean -ELBO with respect to every parameter. The trained comparison
(`python -m benchmarks.parity vae`) then compares training, not two different models."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the vae parity test needs PyTorch "
                                            "(pip install -e '.[bench]')")

import minigen as mg  # noqa: E402
from minigen import models  # noqa: E402
from minigen.models import DataSpec  # noqa: E402
from minigen.random import Generator  # noqa: E402

# benchmarks/ is not installed with minigen: import it from this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.parity import copy_weights  # noqa: E402
from benchmarks.torch_models.vae import VAE  # noqa: E402
from paritycheck import assert_gradients_agree  # noqa: E402

SPEC = DataSpec("digits-bin", (1, 8, 8), "discrete", levels=2)
HIDDEN, LATENT = (32, 24), 5


@pytest.fixture
def pair():
    model = models.get("vae").cls(SPEC, generator=Generator([0, 0]), hidden=HIDDEN,
                                  latent=LATENT)
    theirs = VAE(SPEC.dims, HIDDEN, LATENT)
    copy_weights(model, theirs)
    return model, theirs


def data(n=6, k=None, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, (n,) + SPEC.shape).astype(np.uint8)
    eps = rng.standard_normal(((k,) if k else ()) + (n, LATENT)).astype(np.float32)
    return x, eps


def test_elbo_terms_and_gradients_agree(pair):
    model, theirs = pair
    x, eps = data()
    log_px_z, kl = model.elbo_terms(model.likelihood.inputs(mg.tensor(x)), mg.tensor(eps))
    params = dict(model.named_parameters())
    grads = mg.grad((kl - log_px_z).mean(), list(params.values()))
    log_px_z_t, kl_t = theirs.elbo_terms(torch.from_numpy(x), torch.from_numpy(eps))
    params_t = dict(theirs.named_parameters())
    grads_t = torch.autograd.grad((kl_t - log_px_z_t).mean(), [params_t[n] for n in params])

    np.testing.assert_allclose(log_px_z.numpy(), log_px_z_t.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(kl.numpy(), kl_t.detach().numpy(), rtol=1e-5)
    assert_gradients_agree(params, grads, grads_t)


def test_importance_weights_agree(pair):
    model, theirs = pair
    x, eps = data(k=7)
    with mg.no_grad():
        log_w = model.log_weights(model.likelihood.inputs(mg.tensor(x)), mg.tensor(eps))
    with torch.no_grad():
        log_w_t = theirs.log_weights(torch.from_numpy(x), torch.from_numpy(eps))
    assert log_w.shape == tuple(log_w_t.shape) == (7, 6)
    np.testing.assert_allclose(log_w.numpy(), log_w_t.numpy(), rtol=1e-5)
