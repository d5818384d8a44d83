"""WaveNet and the causal Transformer: causality by gradients, exact likelihoods, sampling
that draws from the model's own p(x), and the command line end to end (images and text)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from minigen import cli, models, trainer
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval
from likelihoodcheck import all_values, assert_probabilities_sum_to_one, assert_samples_follow_nll

FORTUNES_DIR = Path("/usr/share/games/fortunes")
needs_fortunes = pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason=f"{FORTUNES_DIR} is "
                                    f"absent: install the Debian package fortunes")

TINY = {
    "wavenet": dict(channels=8, dilations=(1, 2), kernel=2),
    "wavenet-positions": dict(channels=8, dilations=(1, 2), kernel=2, positions="learned"),
    "wavenet-k3": dict(channels=6, dilations=(1, 3), kernel=3),
    "transformer": dict(d_model=8, heads=2, layers=2, mlp=16),
    "transformer-sinusoidal": dict(d_model=8, heads=2, layers=1, mlp=16,
                                   positions="sinusoidal"),
}


def build(variant, spec, seed=0, **extra):
    name = variant.split("-")[0]
    return models.get(name).cls(spec, generator=Generator(seed), **TINY[variant], **extra)


def features_and_logits(model, values):
    """The input features as a leaf that requires grad, and the logits computed from it."""
    features = mg.tensor(model.encode(mg.tensor(values)).numpy(), requires_grad=True)
    return features, model.network(features)


# --- causality ----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(TINY))
def test_output_at_step_t_depends_on_inputs_before_t_only(variant):
    """d logits[t] / d input[s] is zero for every s >= t (the shifted first layer, or the
    Transformer's right shift with causal attention) and not zero for some s < t."""
    length, levels = 12, 3
    model = build(variant, DataSpec("seq", (length,), "discrete", levels))
    rng = np.random.default_rng(0)
    values = rng.integers(0, levels, (2, length))
    step_axis = 2 if variant.startswith("wavenet") else 1
    for t in rng.choice(length, 5, replace=False):
        features, logits = features_and_logits(model, values)
        (g,) = mg.grad(logits[:, t].sum(), [features])
        per_step = np.abs(np.moveaxis(g.numpy(), step_axis, -1)).reshape(-1, length).sum(0)
        assert np.all(per_step[t:] == 0), f"step {t} sees steps {np.nonzero(per_step[t:])[0] + t}"
        if t > 0:
            assert per_step[t - 1] > 0, f"step {t} does not see step {t - 1}"


def test_wavenet_receptive_field_is_one_plus_sum_of_dilations_times_k_minus_1():
    length = 20
    model = build("wavenet-k3", DataSpec("seq", (length,), "discrete", 2))
    features, logits = features_and_logits(model, np.zeros((1, length), np.int64))
    (g,) = mg.grad(logits[:, length - 1].sum(), [features])
    seen = np.nonzero(np.abs(g.numpy()).sum(axis=(0, 1)))[0]
    field = 1 + (3 - 1) * (1 + 1 + 3)  # first layer k - 1 taps past the shift, then blocks
    assert seen.min() == length - 1 - field and seen.max() == length - 2


# --- exact likelihoods --------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(TINY))
@pytest.mark.parametrize("levels,length", [(2, 4), (3, 3)])
def test_probabilities_of_all_sequences_sum_to_one(variant, levels, length):
    model = build(variant, DataSpec("seq", (length,), "discrete", levels), seed=1)
    nll = assert_probabilities_sum_to_one(model, (length,), levels)
    every = mg.tensor(all_values((length,), levels))
    assert model.loss(every).item() == pytest.approx(nll.mean(), rel=1e-5)


@pytest.mark.parametrize("variant", ["wavenet", "transformer"])
def test_text_is_scored_per_character_in_windows_of_context(variant):
    context = 8
    model = build(variant, DataSpec("text", (), "discrete", 256), context=context)
    text = np.frombuffer(b"the quick brown fox jumps", np.uint8).copy()  # 25 = 3 * 8 + 1
    per_char = model.nll(mg.tensor(text)).numpy()
    assert per_char.shape == (len(text),)
    padded = np.zeros(4 * context, np.uint8)
    padded[:len(text)] = text
    per_window = model.nll(mg.tensor(padded.reshape(4, context))).numpy()
    np.testing.assert_allclose(per_char[:24].reshape(3, context).sum(1), per_window[:3],
                               rtol=1e-5)
    # the last, one-character window: -log p(x_0) from the start, padding never read
    single = model.nll(mg.tensor(text[24:25].reshape(1, 1))).numpy()
    np.testing.assert_allclose(per_char[24], single[0], rtol=1e-5)
    with pytest.raises(ValueError, match="windows"):
        model.loss(mg.tensor(text[:5]))


# --- sampling -----------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["wavenet", "transformer"])
@pytest.mark.parametrize("shape,levels", [((1, 3, 3), 2), ((1, 2, 3), 17)])
def test_samples_are_valid_images_and_reproducible(variant, shape, levels):
    model = build(variant, DataSpec("img", shape, "discrete", levels))
    a, b = model.sample(5, Generator(7)), model.sample(5, Generator(7))
    assert a.shape == (5,) + shape and a.dtype == np.uint8
    assert a.max() < levels
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("variant", ["wavenet", "transformer"])
def test_text_samples_are_windows_of_byte_codes(variant):
    model = build(variant, DataSpec("text", (), "discrete", 256), context=6)
    sample = model.sample(3, Generator(0))
    assert sample.shape == (3, 6) and sample.dtype == np.uint8


@pytest.mark.parametrize("variant", ["wavenet", "transformer"])
def test_sampler_draws_from_the_models_own_likelihood(variant):
    """Frequencies of samples of a length-3 binary model match exp(-nll)."""
    model = build(variant, DataSpec("seq", (3,), "discrete", 2), seed=3)
    assert_samples_follow_nll(model, (3,), 2)


# --- end to end ---------------------------------------------------------------------------

CLI_TINY = {
    "wavenet": ["channels=8", "dilations=1,2,4", "positions=learned"],
    "transformer": ["d_model=16", "heads=2", "layers=1", "mlp=32"],
}


@pytest.mark.parametrize("name", ["wavenet", "transformer"])
def test_cli_trains_samples_and_evaluates_on_digits_bin(name, tmp_path, capsys):
    metrics = train_sample_eval(name, "digits-bin", ["--config", "steps=4", "batch_size=32",
                                                     "eval_batch_size=400", *CLI_TINY[name]],
                                tmp_path, capsys)
    assert metrics["steps"] == 4
    assert 0 < metrics["test_nll_nats"] < 64 * math.log(2) * 1.5
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"] / (64 * math.log(2)))


@needs_fortunes
@pytest.mark.parametrize("name", ["wavenet", "transformer"])
def test_fortunes_windows_train_and_test_bpd_is_bits_per_character(name):
    """Trained on (batch, context) windows; the trainer's evaluate passes 1-D stretches of
    the test text (data.Examples) and divides by their length, so with spec.dims == 1 test_bpd is bits per
    character."""
    text, _ = mg.data.load("fortunes")
    test_text, _ = mg.data.load("fortunes", "test")
    spec = trainer.data_spec("fortunes", text, None)
    assert spec.shape == () and spec.dims == 1
    context = 16
    model = build(name, spec, context=context)
    optimizer = mg.optim.Adam(list(model.parameters()), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(15):
        starts = rng.integers(0, len(text) - context, 16)
        loss = model.loss(mg.tensor(text[starts[:, None] + np.arange(context)]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    piece = test_text[:300]
    per_char = model.nll(mg.tensor(piece)).numpy().astype(np.float64)
    assert per_char.shape == (300,)
    # evaluate's batches are 1-D stretches of 6 windows (96 characters), so the windows
    # fall where a single pass over the piece puts them
    nll = trainer.evaluate(model, piece, 6, "cpu")["nll_nats"]
    assert nll == pytest.approx(per_char.mean(), rel=1e-5)
    assert nll < math.log(256)  # 15 steps already beat a uniform guess over bytes
    bpd = trainer.likelihood_metrics("test", nll, spec)["test_bpd"]
    assert bpd == pytest.approx(nll / math.log(2))


@needs_fortunes
def test_cli_trains_wavenet_on_fortunes(tmp_path):
    out = tmp_path / "text"
    assert cli.main(["train", "wavenet", "--data", "fortunes", "--out", str(out), "--quiet",
                     "--config", "steps=2", "batch_size=8", "context=16",
                     *CLI_TINY["wavenet"]]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"] / math.log(2))


# --- the conditional Transformer ----------------------------------------------------------

def test_conditional_transformer_logits_depend_on_the_label_and_stay_causal():
    """p(x | y): changing the label changes the logits of every step, the first included;
    the gradient with respect to the inputs still stops before step t; the probabilities
    of all sequences sum to one for each label."""
    length, levels = 6, 2
    spec = DataSpec("seq", (length,), "discrete", levels, num_classes=3)
    model = build("transformer", spec, conditional=True)
    values = np.random.default_rng(0).integers(0, levels, (2, length))
    by_label = [model.logits(mg.tensor(values), mg.tensor(np.full(2, y))).numpy()
                for y in range(3)]
    assert (np.abs(by_label[0] - by_label[1]).max(axis=(0, 2)) > 1e-4).all()
    labels = mg.tensor(np.array([1, 2]))
    for t in range(length):
        features = mg.tensor(model.encode(mg.tensor(values)).numpy(), requires_grad=True)
        (g,) = mg.grad(model.network(features, labels)[:, t].sum(), [features])
        per_step = np.abs(g.numpy()).sum(axis=(0, 2))
        assert np.all(per_step[t:] == 0) and (t == 0 or per_step[t - 1] > 0), t
    for y in range(3):
        assert_probabilities_sum_to_one(model, (length,), levels, labels=y)
    with pytest.raises(ValueError, match="needs the labels"):
        model.nll(mg.tensor(all_values((length,), levels)))
    with pytest.raises(ValueError, match="labelled data"):
        build("transformer", DataSpec("seq", (length,), "discrete", levels),
              conditional=True)


def test_conditional_transformer_trains_samples_a_chosen_class_and_evaluates(tmp_path, capsys):
    """--config conditional=true: the trainer hands the labels to loss and nll,
    `minigen sample --label 3` draws class 3, and eval scores p(x | y) as training did."""
    metrics = train_sample_eval("transformer", "digits-bin",
                                ["--config", "steps=4", "batch_size=32", "eval_batch_size=400",
                                 "conditional=true", *CLI_TINY["transformer"]],
                                tmp_path, capsys, label=3)
    assert 0 < metrics["test_nll_nats"] < 64 * math.log(2) * 1.5
    run = trainer.Run.from_checkpoint(str(tmp_path / "run" / "checkpoint.npz"))
    assert run.evaluate_data(run.x_test, run.y_test)["nll_nats"] != \
        run.evaluate_data(run.x_test, (run.y_test + 1) % 10)["nll_nats"]
