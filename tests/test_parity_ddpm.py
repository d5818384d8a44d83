"""minigen's ddpm against its PyTorch build (benchmarks/torch_models/ddpm.py), the reference
of the issue-19 parity run: with minigen's weights copied in by name and the same batch, t
and noise, both give the same loss and the same gradient for every parameter (the simple
loss, and the hybrid loss of learned variances), the same bound terms per image and step,
and the same samples from the same draws. `python -m benchmarks.parity ddpm` then compares
training, not two different models."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the ddpm parity test needs PyTorch "
                                            "(pip install -e '.[bench]')")

import minigen as mg  # noqa: E402
from minigen import models  # noqa: E402
from minigen.diffusion import sampling  # noqa: E402
from minigen.models import DataSpec  # noqa: E402
from minigen.random import Generator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.parity import copy_weights  # noqa: E402
from benchmarks.torch_models.ddpm import DDPM  # noqa: E402
from paritycheck import assert_gradients_agree  # noqa: E402

SPEC = DataSpec("digits", (1, 8, 8), "discrete", levels=17)
# two channels per group: with one, a conv's bias before a GroupNorm has no gradient at all
CONFIG = dict(T=10, channels=16, groups=8)


def make_pair(**config):
    """minigen's model with conv_out given small random weights (at zero every other
    gradient would be zero), and its PyTorch copy."""
    config = {**CONFIG, **config}
    model = models.get("ddpm").cls(SPEC, Generator([0, 0]), **config)
    rng = np.random.default_rng(1)
    for p in (model.net.conv_out.weight, model.net.conv_out.bias):
        p.data[...] = (0.1 * rng.standard_normal(p.shape)).astype(p.dtype)
    theirs = DDPM(SPEC.shape, SPEC.levels, model.schedule.betas, config.get("variance", "large"),
                  channels=config["channels"], groups=config["groups"])
    copy_weights(model, theirs)
    return model, theirs


def batch(n=6, seed=2):
    return np.random.default_rng(seed).integers(0, 17, (n,) + SPEC.shape).astype(np.uint8)


@pytest.mark.parametrize("variance", ["large", "learned"])
def test_loss_and_gradients_agree(variance):
    model, theirs = make_pair(variance=variance)
    x = batch()
    t, eps = model.training_noise(len(x), Generator(3))
    loss, _ = model.objective(mg.tensor(x), t, eps)
    params = dict(model.named_parameters())
    grads = mg.grad(loss, list(params.values()))
    loss_t, _ = theirs.loss(torch.from_numpy(x), torch.from_numpy(t),
                            torch.from_numpy(eps.numpy()))
    params_t = dict(theirs.named_parameters())
    grads_t = torch.autograd.grad(loss_t, [params_t[n] for n in params])
    assert loss.item() == pytest.approx(loss_t.item(), rel=1e-5)
    # the key bias of attention adds q_i . b to every key of a query: softmax ignores it, so
    # its gradient is zero but for rounding, on both sides
    largest = max(float(np.abs(g.numpy()).max()) for g in grads)
    keys = [i for i, n in enumerate(params) if n.endswith("attn.k.bias")]
    assert keys and all(np.abs(grads[i].numpy()).max() < 1e-5 * largest for i in keys)
    rest = [i for i in range(len(params)) if i not in keys]
    assert_gradients_agree([list(params)[i] for i in rest], [grads[i] for i in rest],
                           [grads_t[i] for i in rest])


@pytest.mark.parametrize("variance", ["large", "small", "learned"])
def test_bound_terms_agree(variance):
    model, theirs = make_pair(variance=variance)
    x = batch(4)
    prior, terms = model.bound_terms(mg.tensor(x), range(model.T), Generator(4))
    gen = Generator(4)
    prior_t, terms_t = theirs.bound_terms(
        torch.from_numpy(x), range(model.T),
        lambda shape: gen.normal(shape, dtype=np.float64).numpy())
    np.testing.assert_allclose(prior, prior_t.numpy(), rtol=1e-10)
    for t in range(model.T):
        np.testing.assert_allclose(terms[t], terms_t[t].numpy(), rtol=2e-5, atol=1e-6,
                                   err_msg=f"step {t}")


@pytest.mark.parametrize("sampler, steps, eta", [("ancestral", None, 0.0), ("ddim", 4, 0.0),
                                                 ("ddim", 10, 1.0)])
def test_samples_agree_from_the_same_draws(sampler, steps, eta):
    model, theirs = make_pair()
    shape = (5,) + SPEC.shape
    with mg.no_grad():
        if sampler == "ancestral":
            ours = sampling.ancestral(model.denoise, model.schedule, shape, Generator(5),
                                      "cpu", np.float32)
        else:
            ours = sampling.ddim(model.denoise, model.schedule, shape, Generator(5), "cpu",
                                 np.float32, steps, eta)
    gen = Generator(5)
    their = theirs.sample(5, lambda s: gen.normal(s).numpy(), sampler, steps, eta)
    np.testing.assert_allclose(ours.numpy(), their.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_parity_sides_run_apart_and_combine(tmp_path, monkeypatch):
    """`--side minigen` and `--side torch` (two processes at once in a real run) each write
    their figures; `--side combine` compares the two files as a run of both sides does."""
    import json

    from benchmarks import common, parity
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    tiny = dict(steps=3, samples=8, sample_steps=3, overrides=dict(T=8, eval_batch_size=64),
                threads=1)
    for side in ("minigen", "torch"):
        parity.ddpm_parity(side=side, keep=str(tmp_path / side), **tiny)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == [
        "parity-ddpm-digits-minigen-seed0.json", "parity-ddpm-digits-torch-seed0.json"]
    parity.ddpm_parity(side="combine", keep=str(tmp_path / "combine"), **tiny)
    result = json.loads((tmp_path / "parity-ddpm-digits.json").read_text())
    assert set(result["relative_difference"]) == set(parity.DDPM_TARGETS)
    assert result["config"]["steps"] == 3 and result["minigen"]["test_bpd"] > 0
    # trained apart from the same start and draws: float32 and the bounds' draws apart
    assert abs(result["relative_difference"]["test_bpd"]) < 0.03
    # --side speed times both sides' sampling from minigen's kept, finished run; --resume
    # evaluates that run again without training (the same bound, to the last digit)
    parity.ddpm_parity(side="speed", keep=str(tmp_path / "minigen"), **tiny)
    speed = json.loads((tmp_path / "parity-ddpm-digits-speed-seed0.json").read_text())
    assert speed["ddim_steps"] == 3 and all(len(v) == 3 for v in speed["rounds"].values())
    assert speed["ratio"] == speed["seconds_per_step"]["minigen"] / \
        speed["seconds_per_step"]["torch"]
    first = json.loads((tmp_path / "parity-ddpm-digits-minigen-seed0.json").read_text())
    parity.ddpm_parity(side="minigen", keep=str(tmp_path / "minigen"), resume=True, **tiny)
    again = json.loads((tmp_path / "parity-ddpm-digits-minigen-seed0.json").read_text())
    assert again["metrics"]["test_bpd"] == first["metrics"]["test_bpd"]
    with pytest.raises(SystemExit, match="not a finished run"):
        parity.ddpm_parity(side="speed", keep=str(tmp_path / "minigen"),
                           **dict(tiny, steps=5))
