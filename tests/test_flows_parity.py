"""minigen's realnvp against its PyTorch build (benchmarks/torch_models/realnvp.py), the
reference of the issue-6 parity run and of benchmarks M6 and M6f: with minigen's weights
copied in by name, both give the same log p(y) on the same y, and the same gradients with
respect to every parameter and to y. This is what makes the trained comparison
(benchmarks.parity) a test of training and not of two different models. No training here:
small configs (and M6f's full-size one on 3 images), one forward and backward.

The last conv of every coupling starts at zero (each coupling the identity), which would
hide a wrong coupling; the tests give those layers small random weights first.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the realnvp parity test needs PyTorch "
                                            "(pip install -e '.[bench]')")

import minigen as mg  # noqa: E402
from minigen.models import DataSpec  # noqa: E402
from minigen.models.realnvp import RealNVP  # noqa: E402
from minigen.random import Generator  # noqa: E402

# benchmarks/ is not installed with minigen: import it from this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks import models_flow  # noqa: E402
from benchmarks.parity import copy_weights  # noqa: E402
from benchmarks.torch_models.realnvp import RealNVP as TorchRealNVP  # noqa: E402
from paritycheck import assert_gradients_agree  # noqa: E402

SPEC = DataSpec("digits", (1, 8, 8), "discrete", levels=17)
CONFIG = dict(couplings=4, channels=8, hidden_layers=2, alpha=0.05)


def models(dtype, seed=0):
    """minigen's realnvp (non-zero last layers) in `dtype` and a PyTorch copy of it."""
    model = RealNVP(SPEC, generator=Generator([seed, 0]), **CONFIG)
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if not p.numpy().any():  # the zero-initialised last convs
            p.data[...] = 0.1 * rng.standard_normal(p.shape)
        elif name.endswith("scale"):
            p.data[...] = rng.uniform(0.5, 1.5, p.shape)
        p.data = p.data.astype(dtype)
    theirs = TorchRealNVP(SPEC.shape, SPEC.levels, **CONFIG)
    copy_weights(model, theirs)
    return model, theirs.to(getattr(torch, np.dtype(dtype).name))


def points(dtype, n=5, seed=1):
    """Dequantized digits-like y in (0, 1): levels plus uniform noise, over K."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, SPEC.levels, (n,) + SPEC.shape)
    return ((x + rng.uniform(size=x.shape)) / SPEC.levels).astype(dtype)


def test_copy_weights_names_every_parameter():
    model, theirs = models(np.float32)
    assert sorted(n for n, _ in model.named_parameters()) == \
        sorted(n for n, _ in theirs.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_array_equal(p.detach().numpy(),
                                      dict(model.named_parameters())[name].numpy())


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_log_prob_and_gradients_agree(dtype, rtol):
    """float64 tight; float32 to rounding scaled by the size of the values (log p sums 64
    dimensions of terms near 1, and gradients sum over the batch and the pixels)."""
    model, theirs = models(dtype)
    y0 = points(dtype)
    cotangent = np.random.default_rng(2).standard_normal(len(y0))

    y = mg.tensor(y0, requires_grad=True)
    log_p = model.log_prob(y)
    params = dict(model.named_parameters())
    grads = mg.grad(log_p, [y] + list(params.values()), grad_outputs=mg.tensor(cotangent))

    y_t = torch.tensor(y0, requires_grad=True)
    log_p_t = theirs.log_prob(y_t)
    params_t = dict(theirs.named_parameters())
    grads_t = torch.autograd.grad(log_p_t, [y_t] + [params_t[n] for n in params],
                                  grad_outputs=torch.tensor(cotangent))

    assert log_p.dtype == np.float64 and log_p.shape == (len(y0),)
    want = log_p_t.detach().numpy()
    np.testing.assert_allclose(log_p.numpy(), want, rtol=rtol,
                               atol=rtol * np.abs(want).max())
    assert_gradients_agree(["y"] + list(params), grads, grads_t, rtol=rtol * 10,
                           atol=rtol * 10)


def test_nll_on_the_same_noise_agrees():
    """The discrete-data nll, -log p(y) + D log K with minigen's own noise (its Generator
    draws u with NumPy's default_rng(seed).uniform), is what PyTorch computes on that u."""
    model, theirs = models(np.float32)
    x = np.random.default_rng(3).integers(0, SPEC.levels, (6,) + SPEC.shape).astype(np.uint8)
    ours = model.nll(mg.tensor(x), Generator(7)).numpy()
    u = np.random.default_rng(7).uniform(size=x.shape).astype(np.float32)
    y = (torch.from_numpy(x).float() + torch.from_numpy(u)) * (1.0 / SPEC.levels)
    with torch.no_grad():
        want = (-theirs.log_prob(y) + SPEC.dims * np.log(SPEC.levels)).numpy()
    np.testing.assert_allclose(ours, want, rtol=1e-5)


def test_multiscale_actnorm_loss_and_gradients_agree():
    """M6f's model at full size (3 scales, actnorm, 64 channels: what the README trains on
    fashion-mnist) on 3 random 28x28 images: the benchmark's own check, loss to 1e-5 and
    every gradient to 1e-3, after actnorm initialised on those images on minigen's side
    and the flags went over with the weights (PyTorch does not initialise it again)."""
    spec = DataSpec("fashion-mnist", (1, 28, 28), "discrete", levels=256)
    x = np.random.default_rng(4).integers(0, spec.levels, (3,) + spec.shape).astype(np.uint8)
    model, theirs = models_flow.build_pair(spec, models_flow.FULL_CONFIG, x)
    flags = [flag.item() for name, flag in theirs.named_buffers()
             if name.endswith(".initialized")]
    assert len(flags) == 6 + 6 + 4 and all(flags)  # one per coupling: 6 a scale, 4 last
    differences = models_flow.check_same_loss(spec, model, theirs, x, "M6f")
    assert differences["loss"] < 1e-5 and differences["gradients"] < 1e-3
