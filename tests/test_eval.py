"""Fisher scores and the linear probe (minigen.eval): the score is the gradient of log p(x),
its mean under the model is zero, the sketch keeps inner products, and `minigen probe`
writes linear_probe_acc."""
import itertools
import json

import numpy as np
import pytest

import minigen as mg
from minigen import cli, models
from minigen import eval as evaluation
from minigen.models import DataSpec
from minigen.random import Generator


def tiny_made(dims=3, seed=0):
    spec = DataSpec("bits", (dims,), "discrete", 2)
    return models.get("made").cls(spec, generator=Generator(seed), hidden=(6,))


def all_binary(dims):
    return np.array(list(itertools.product([0, 1], repeat=dims)), dtype=np.uint8)


def test_score_is_the_gradient_of_log_p_by_central_differences():
    """U(x) for one parameter entry against (log p(theta + h) - log p(theta - h)) / 2h."""
    model = tiny_made()
    x = all_binary(3)[[1, 6]]
    scores = evaluation.fisher_score(model, x, dims=None)
    params = list(model.parameters())
    offset, h = 0, 1e-2
    for p in params[:2]:
        flat = p.data.reshape(-1)
        for i in (0, flat.size - 1):
            keep = flat[i]
            flat[i] = keep + h
            up = -model.nll(mg.tensor(x)).numpy().astype(np.float64)
            flat[i] = keep - h
            down = -model.nll(mg.tensor(x)).numpy().astype(np.float64)
            flat[i] = keep
            np.testing.assert_allclose(scores[:, offset + i], (up - down) / (2 * h),
                                       rtol=2e-2, atol=2e-3)
        offset += flat.size


def test_expected_score_under_the_model_is_zero():
    """sum_x p(x) U(x) = d/d theta sum_x p(x) = 0: the score's mean under p itself."""
    model = tiny_made(seed=3)
    x = all_binary(3)
    p = np.exp(-model.nll(mg.tensor(x)).numpy().astype(np.float64))
    assert abs(p.sum() - 1) < 1e-5
    scores = evaluation.fisher_score(model, x, dims=None)
    mean = p @ scores.astype(np.float64)
    assert np.abs(mean).max() < 1e-4 * max(1.0, np.abs(scores).max())


def test_fisher_normalisation_gives_unit_mean_square_per_parameter():
    """With the Fisher information of the same data, each coordinate's mean square is
    I / (I + eps): 1 wherever the parameter's score is not zero."""
    model = tiny_made(seed=1)
    x = all_binary(3)
    info = evaluation.fisher_information(model, x)
    scores = evaluation.fisher_score(model, x, dims=None, fisher=info).astype(np.float64)
    mean_square = (scores ** 2).mean(axis=0)
    used = info > 1e-6
    assert used.sum() > 10
    np.testing.assert_allclose(mean_square[used], 1.0, rtol=1e-3)


def test_count_sketch_keeps_inner_products_in_expectation():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=500), rng.normal(size=500)
    v = v + u  # correlated, so the inner product is far from zero
    estimates = [(u @ S) @ (v @ S) for S in
                 (evaluation.count_sketch(500, 64, seed).toarray() for seed in range(400))]
    spread = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - u @ v) < 4 * spread
    S = evaluation.count_sketch(500, 64, 0).toarray()
    assert np.all(np.abs(S).sum(axis=1) == 1)


def test_sketched_scores_are_the_sketch_of_the_full_scores():
    model = tiny_made()
    x = all_binary(3)
    full = evaluation.fisher_score(model, x, dims=None)
    size = full.shape[1]
    sketched = evaluation.fisher_score(model, x, dims=16, seed=5)
    np.testing.assert_allclose(sketched, full @ evaluation.count_sketch(size, 16, 5).toarray(),
                               rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_named():
    model = tiny_made()
    with pytest.raises(ValueError, match="fisher has shape"):
        evaluation.fisher_score(model, all_binary(3), fisher=np.ones(3))
    with pytest.raises(ValueError, match="no examples"):
        evaluation.fisher_score(model, np.zeros((0, 3), dtype=np.uint8))


def test_probe_separates_classes_a_model_tells_apart():
    """Two classes drawn from different halves of a tiny binary space: the Fisher scores of
    a model fitted to both separate them."""
    rng = np.random.default_rng(0)
    x0 = (rng.random((60, 6)) < [0.9, 0.9, 0.9, 0.1, 0.1, 0.1]).astype(np.uint8)
    x1 = (rng.random((60, 6)) < [0.1, 0.1, 0.1, 0.9, 0.9, 0.9]).astype(np.uint8)
    x, y = np.concatenate([x0, x1]), np.repeat([0, 1], 60)
    model = tiny_made(dims=6, seed=0)
    opt = mg.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        model.loss(mg.tensor(x), None).backward()
        opt.step()
    order = rng.permutation(len(x))
    train, test = order[:80], order[80:]
    for fisher_kernel in (False, True):
        accuracy = evaluation.linear_probe_acc(model, x[train], y[train], x[test], y[test],
                                               dims=64, fisher_kernel=fisher_kernel)
        assert accuracy > 0.9


def test_minigen_probe_writes_linear_probe_acc(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "made", "--data", "digits-bin", "--steps", "3", "--out",
                     str(out), "--quiet", "--config", "hidden=8"]) == 0
    capsys.readouterr()
    assert cli.main(["probe", str(out), "--dims", "64", "--fisher-kernel", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= printed["linear_probe_acc"] <= 1
    assert metrics["linear_probe_acc"] == printed["linear_probe_acc"]
    assert metrics["fisher_dims"] == 64 and metrics["fisher_kernel"] is True
