"""The char-RNN: LSTM and GRU cells against torch and finite differences, causality, exact
likelihoods, truncated backprop through time, cached sampling, and the command line end to
end on digits-bin and fortunes."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from minigen import cli, models
from minigen.autoregressive.recurrent import GRUCell, LSTMCell, Recurrent
from minigen.models import DataSpec
from minigen.random import Generator

from clicheck import train_sample_eval
from likelihoodcheck import all_values, assert_probabilities_sum_to_one, assert_samples_follow_nll

FORTUNES_DIR = Path("/usr/share/games/fortunes")
needs_fortunes = pytest.mark.skipif(not FORTUNES_DIR.is_dir(), reason=f"{FORTUNES_DIR} is "
                                    f"absent: install the Debian package fortunes")

CELLS = {"lstm": LSTMCell, "gru": GRUCell}


def build(spec, cell="lstm", seed=0, **config):
    config = {"hidden": 8, "embedding": 5, "layers": 2, **config}
    return models.get("charrnn").cls(spec, generator=Generator(seed), cell=cell, **config)


def random_state(cell, n, rng, dtype=np.float32):
    return tuple(mg.tensor(rng.normal(size=(n, cell.hidden_size)).astype(dtype),
                           requires_grad=True) for _ in range(cell.state_parts))


# --- the cells ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_matches_torch_on_the_same_weights(kind):
    """Same weights (copied by name), same outputs and the same gradients for the input,
    the state and every parameter: the equations, gate order and b_hn placement are
    torch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cell = CELLS[kind](3, 5, generator=Generator(0))
    ours = {name: p.numpy() for name, p in cell.named_parameters()}
    theirs = (torch.nn.LSTMCell if kind == "lstm" else torch.nn.GRUCell)(3, 5).double()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(ours[name].astype(np.float64)))
    x = mg.tensor(rng.normal(size=(4, 3)).astype(np.float32), requires_grad=True)
    state = random_state(cell, 4, rng)
    out = cell(x, state)
    weights = [rng.normal(size=(4, 5)) for _ in out]  # a loss that mixes every output
    loss = sum((o * mg.tensor(w.astype(np.float32))).sum() for o, w in zip(out, weights))
    inputs = [x, *state, *cell.parameters()]
    grads = mg.grad(loss, inputs)

    t_x, *t_state = (torch.tensor(t.numpy().astype(np.float64), requires_grad=True)
                     for t in (x, *state))
    t_out = theirs(t_x, tuple(t_state) if kind == "lstm" else t_state[0])
    t_out = t_out if kind == "lstm" else (t_out,)
    t_loss = sum((o * torch.from_numpy(w)).sum() for o, w in zip(t_out, weights))
    names = [name for name, _ in cell.named_parameters()]
    t_inputs = [t_x, *t_state, *(dict(theirs.named_parameters())[n] for n in names)]
    t_grads = torch.autograd.grad(t_loss, t_inputs)
    for o, t_o in zip(out, t_out):
        np.testing.assert_allclose(o.numpy(), t_o.detach().numpy(), rtol=1e-5, atol=1e-6)
    for g, t_g, what in zip(grads, t_grads, ["x", *["state"] * len(state), *names]):
        np.testing.assert_allclose(g.numpy(), t_g.numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=what)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_stack_matches_torch_rnn_layer_by_layer(kind):
    """A two-layer Recurrent run over time equals torch.nn.LSTM / GRU (batch_first) whose
    weight_ih_l{k} ... are cell k's weights."""
    torch = pytest.importorskip("torch")
    rnn = Recurrent(kind, 3, 4, layers=2, generator=Generator(1))
    theirs = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(3, 4, num_layers=2,
                                                                    batch_first=True)
    with torch.no_grad():
        for k, cell in enumerate(rnn.cells):
            for name, p in cell.named_parameters():
                getattr(theirs, f"{name}_l{k}").copy_(torch.from_numpy(p.numpy()))
    x = np.random.default_rng(1).normal(size=(2, 6, 3)).astype(np.float32)
    h, states = rnn(mg.tensor(x))
    t_h, t_final = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(h.numpy(), t_h.detach().numpy(), rtol=1e-5, atol=1e-6)
    t_final = t_final if kind == "lstm" else (t_final,)
    for part, t_part in zip(zip(*states), t_final):  # torch stacks the layers first
        np.testing.assert_allclose(np.stack([p.numpy() for p in part]),
                                   t_part.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_gradients_pass_gradcheck_in_float64(kind):
    rng = np.random.default_rng(2)
    cell = CELLS[kind](2, 3, generator=Generator(2), dtype=np.float64)
    x = mg.tensor(rng.normal(size=(2, 2)))
    state = random_state(cell, 2, rng, np.float64)
    assert mg.gradcheck(lambda x, *state: cell(x, state), [x, *state])
    # the same equations differentiated with respect to the weights: a second cell whose
    # weights are gradcheck's float64 inputs
    names = [name for name, _ in cell.named_parameters()]
    weighed = CELLS[kind](2, 3, dtype=np.float64)

    def with_weights(*weights):
        for name, w in zip(names, weights):
            setattr(weighed, name, w)
        return weighed(x, tuple(s.detach() for s in state))

    assert mg.gradcheck(with_weights, [mg.tensor(p.numpy()) for p in cell.parameters()])


def test_bad_configs_name_the_model_and_the_value():
    spec = DataSpec("seq", (4,), "discrete", 2)
    with pytest.raises(ValueError, match="charrnn: cell must be one of lstm, gru, not 'rnn'"):
        build(spec, cell="rnn")
    with pytest.raises(ValueError, match="charrnn: hidden must be a positive integer, got 0"):
        build(spec, hidden=0)
    with pytest.raises(ValueError, match="charrnn: bptt .* got 0"):
        build(spec, bptt=0)


# --- causality and the likelihood ---------------------------------------------------------

def features_and_logits(model, values, truncate=None):
    features = mg.tensor(model.encode(mg.tensor(values)).numpy(), requires_grad=True)
    return features, model.network(features, truncate=truncate)


def steps_seen(model, values, t, truncate=None):
    """|d logits[t] / d features[s]| summed per step s."""
    features, logits = features_and_logits(model, values, truncate)
    (g,) = mg.grad(logits[:, t].sum(), [features])
    return np.abs(g.numpy()).sum(axis=(0, 2))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_output_at_step_t_depends_on_inputs_before_t_only(kind):
    length = 10
    model = build(DataSpec("seq", (length,), "discrete", 3), kind)
    values = np.random.default_rng(0).integers(0, 3, (2, length))
    for t in range(length):
        seen = steps_seen(model, values, t)
        assert np.all(seen[t:] == 0), f"step {t} sees steps {np.nonzero(seen[t:])[0] + t}"
        assert np.all(seen[:t] > 0), f"step {t} misses steps {np.nonzero(seen[:t] == 0)[0]}"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("levels,length", [(2, 4), (3, 3)])
def test_probabilities_of_all_sequences_sum_to_one(kind, levels, length):
    model = build(DataSpec("seq", (length,), "discrete", levels), kind, seed=1, bptt=2)
    nll = assert_probabilities_sum_to_one(model, (length,), levels)
    every = mg.tensor(all_values((length,), levels))
    assert model.loss(every).item() == pytest.approx(nll.mean(), rel=1e-5)


# --- truncated backpropagation through time -----------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_truncation_cuts_the_gradient_at_chunk_starts_and_keeps_the_values(kind):
    """With truncate=k, logits[t] (which reads the features of steps < t) has a gradient
    for exactly the steps c - 1 .. t - 1, where c = k floor(t / k) starts t's chunk: the
    input of step c is the feature of step c - 1, and the state entering the chunk is
    detached. So the gradient never reaches more than k steps back; the logits are the
    untruncated ones."""
    length, k = 11, 3
    model = build(DataSpec("seq", (length,), "discrete", 3), kind)
    values = np.random.default_rng(1).integers(0, 3, (2, length))
    for t in range(length):
        seen = steps_seen(model, values, t, truncate=k)
        first = max(k * (t // k) - 1, 0)
        assert np.all(seen[first:t] > 0) and t - first <= k
        assert np.all(seen[:first] == 0) and np.all(seen[t:] == 0), (t, np.nonzero(seen)[0])
    _, whole = features_and_logits(model, values)
    _, truncated = features_and_logits(model, values, truncate=k)
    np.testing.assert_array_equal(whole.numpy(), truncated.numpy())


def test_loss_is_exact_for_any_bptt_and_only_its_gradient_changes():
    """`loss` truncates: its value is the exact mean nll for every bptt, its gradient is
    that of the mean nll when bptt covers the window, and another one when it does not."""
    spec = DataSpec("seq", (12,), "discrete", 2)
    x = mg.tensor(np.random.default_rng(2).integers(0, 2, (4, 12)).astype(np.uint8))

    def run(bptt):
        model = build(spec, bptt=bptt, seed=3)
        names, params = zip(*model.named_parameters())
        loss = model.loss(x)
        exact = model.nll(x).mean()
        return (loss.item(), exact.item(), dict(zip(names, mg.grad(loss, list(params)))),
                dict(zip(names, mg.grad(exact, list(params)))))

    whole, nll, grads, exact_grads = run(12)
    assert whole == pytest.approx(nll, rel=1e-6)
    for name, g in grads.items():
        np.testing.assert_allclose(g.numpy(), exact_grads[name].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=name)
    for bptt in (2, 5):
        loss, same_nll, truncated, _ = run(bptt)
        assert loss == pytest.approx(whole, rel=1e-6) and same_nll == nll
        assert not np.allclose(truncated["rnn.cells.0.weight_hh"].numpy(),
                               grads["rnn.cells.0.weight_hh"].numpy(), rtol=1e-3)


# --- sampling -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("shape,levels", [((1, 3, 3), 2), ((1, 2, 3), 17), ((), 256)])
def test_cached_sampling_draws_what_the_naive_sampler_draws(kind, shape, levels):
    """One update per step from the carried state gives the same values, for the same
    generator, as running the network over the whole prefix at every step."""
    model = build(DataSpec("d", shape, "discrete", levels), kind, context=7)
    cached = model.sample(6, Generator(5))
    naive = model.sample(6, Generator(5), cached=False)
    assert cached.dtype == np.uint8 and cached.shape == (6,) + (shape or (7,))
    assert cached.max() < levels
    np.testing.assert_array_equal(cached, naive)
    assert len(np.unique(cached.reshape(6, -1), axis=0)) > 1  # draws, not one fixed row


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_step_by_step_logits_from_the_carried_state_equal_the_whole_pass(kind):
    model = build(DataSpec("seq", (9,), "discrete", 5), kind)
    values = mg.tensor(np.random.default_rng(4).integers(0, 5, (3, 9)))
    np.testing.assert_allclose(model.incremental_logits(values).numpy(),
                               model.logits(values).numpy(), rtol=1e-5, atol=1e-6)


def test_cached_sampler_draws_from_the_models_own_likelihood():
    """Frequencies of samples of a length-3 binary model match exp(-nll)."""
    model = build(DataSpec("seq", (3,), "discrete", 2), "gru", seed=3)
    assert_samples_follow_nll(model, (3,), 2)


# --- end to end ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cli_trains_samples_and_evaluates_on_digits_bin(kind, tmp_path, capsys):
    metrics = train_sample_eval("charrnn", "digits-bin",
                                ["--config", "steps=3", "batch_size=32", f"cell={kind}",
                                 "hidden=8", "embedding=4", "bptt=16"], tmp_path, capsys)
    assert metrics["steps"] == 3
    assert 0 < metrics["test_nll_nats"] < 64 * math.log(2) * 1.5
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"] / (64 * math.log(2)))


@needs_fortunes
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cli_trains_on_fortunes_with_test_bpd_in_bits_per_character(kind, tmp_path):
    """The trainer scores the test text per character (SequenceModel.nll of 1-D text), so
    test_bpd = test_nll_nats / log 2 is bits per character; samples are written as text."""
    out = tmp_path / kind
    assert cli.main(["train", "charrnn", "--data", "fortunes", "--out", str(out), "--quiet",
                     "--config", "steps=3", "batch_size=8", "context=16", "bptt=8",
                     "eval_batch_size=4000",
                     f"cell={kind}", "hidden=8", "embedding=4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_bpd"] == pytest.approx(metrics["test_nll_nats"] / math.log(2))
    assert 0 < metrics["test_bpd"] < 8.5  # near a uniform guess over bytes after 3 steps
    text = (out / "samples.txt").read_text(encoding="utf-8")
    assert len(text.split("\n\n")) > 60  # 64 samples, one paragraph each
    assert cli.main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "s.txt")]) == 0
    assert (tmp_path / "s.txt").is_file()
    assert cli.main(["sample", str(out), "--n", "2", "--out", str(tmp_path / "s.png")]) == 2
