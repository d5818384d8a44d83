"""minigen's autoregressive models against their PyTorch builds (benchmarks/torch_models/),
the references of the issue-5 parity runs: with minigen's weights copied in by name, both
give the same -log p(x) on the same images and the same gradient of the mean loss with
respect to every parameter. That makes the trained comparison (benchmarks.parity) a test
of training and not of two different models. Small configs, one forward and backward.

Parameters that start constant (LayerNorm's ones and zeros, wavenet's learned positions at
zero) get small random values first, so a wrong term there cannot hide. Both sides compute
in float32 (minigen's models scale their inputs to float32), so agreement is to float32
rounding: nll sums 16 to 64 terms, gradients sum over the batch and the pixels.
"""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the autoregressive parity tests need PyTorch "
                                            "(pip install -e '.[bench]')")

import minigen as mg  # noqa: E402
from minigen import models  # noqa: E402
from minigen.models import DataSpec  # noqa: E402
from minigen.random import Generator  # noqa: E402

# benchmarks/ is not installed with minigen: import it from this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.parity import copy_weights  # noqa: E402
from benchmarks.torch_models.gated_pixelcnn import GatedPixelCNN  # noqa: E402
from benchmarks.torch_models.made import MADE  # noqa: E402
from benchmarks.torch_models.pixelcnn import PixelCNN  # noqa: E402
from benchmarks.torch_models.transformer import Transformer  # noqa: E402
from benchmarks.torch_models.wavenet import WaveNet  # noqa: E402
from paritycheck import assert_gradients_agree  # noqa: E402

BINARY = DataSpec("digits-bin", (1, 8, 8), "discrete", levels=2)
LEVELS = DataSpec("digits", (1, 4, 4), "discrete", levels=5)
COLOUR = DataSpec("shapes", (3, 4, 4), "discrete", levels=4)

# name: (minigen config, the PyTorch build from (spec, config, minigen model))
CASES = {
    "made": (dict(hidden=(32, 32)),
             lambda spec, c, m: MADE(spec.dims, spec.levels, c["hidden"], m.masks[0])),
    "pixelcnn": (dict(channels=12, blocks=2, first_kernel=5, kernel=3),
                 lambda spec, c, m: PixelCNN(spec.shape, spec.levels, c["channels"],
                                             c["blocks"], c["first_kernel"], c["kernel"])),
    "gated-pixelcnn": (dict(channels=6, layers=3, kernel=3),
                       lambda spec, c, m: GatedPixelCNN(spec.shape, spec.levels,
                                                        c["channels"], c["layers"],
                                                        c["kernel"])),
    "wavenet": (dict(channels=8, dilations=(1, 2, 4), kernel=2, positions="learned"),
                lambda spec, c, m: WaveNet(spec.shape, spec.levels, c["channels"],
                                           c["dilations"], c["kernel"], c["positions"])),
    "transformer": (dict(d_model=16, heads=2, layers=2, mlp=32, positions="sinusoidal"),
                    lambda spec, c, m: Transformer(spec.shape, spec.levels, c["d_model"],
                                                   c["heads"], c["layers"], c["mlp"],
                                                   c["positions"])),
}
SPECS = {"binary": BINARY, "levels": LEVELS, "colour": COLOUR}
PAIRS = [(name, kind) for name in CASES for kind in ("binary", "levels")] + \
    [("pixelcnn", "colour"), ("gated-pixelcnn", "colour")]


def build(name, spec, seed=0):
    """minigen's model (constant parameters made random) and a PyTorch copy of it."""
    config, torch_build = CASES[name]
    model = models.get(name).cls(spec, generator=Generator([seed, 0]), **config)
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        if np.ptp(p.numpy()) == 0:
            p.data[...] = p.numpy() + 0.1 * rng.standard_normal(p.shape).astype(p.dtype)
    theirs = torch_build(spec, config, model)
    copy_weights(model, theirs)
    return model, theirs


def images(spec, n=6, seed=1):
    return np.random.default_rng(seed).integers(0, spec.levels, (n,) + spec.shape) \
        .astype(np.uint8)


@pytest.mark.parametrize("name, kind", PAIRS)
def test_nll_and_gradients_agree(name, kind):
    spec = SPECS[kind]
    model, theirs = build(name, spec)
    x = images(spec)
    params = dict(model.named_parameters())

    nll = model.nll(mg.tensor(x))
    grads = mg.grad(nll.mean(), list(params.values()))
    nll_t = theirs.nll(torch.from_numpy(x))
    params_t = dict(theirs.named_parameters())
    grads_t = torch.autograd.grad(nll_t.mean(), [params_t[n] for n in params])

    want = nll_t.detach().numpy()
    assert nll.shape == want.shape == (len(x),)
    np.testing.assert_allclose(nll.numpy(), want, rtol=1e-5)
    assert_gradients_agree(params, grads, grads_t, context=f"{name} on {kind} data: ")
