"""infogan: the mutual-information term by hand on a tiny batch, its bound, Q trained with
D, the codes in G's input, the command line (codes.png) and bad code counts."""
import math

import numpy as np
import pytest
from clicheck import train_sample_eval
from gancheck import build, refused, tiny_classifier  # noqa: F401 (a fixture)

import minigen as mg
from minigen import trainer
from minigen.models.infogan import mutual_information_bound, purity
from minigen.random import Generator


def test_the_mi_term_by_hand():
    # two examples, 3 categories, 2 continuous codes
    q = np.array([[2.0, 0.0, -1.0, 0.5, -0.2],
                  [0.1, 0.3, 0.2, -1.0, 1.5]])
    codes = np.array([[1, 0, 0, 0.4, -0.9],
                      [0, 0, 1, -0.7, 0.8]])
    got = mutual_information_bound(mg.tensor(q), mg.tensor(codes), 3, 2).numpy()
    expected = []
    for qi, ci in zip(q, codes):
        logits, mu = qi[:3], qi[3:]
        log_cat = logits[ci[:3].argmax()] - math.log(np.exp(logits).sum())
        log_cont = sum(-0.5 * (c - m) ** 2 - 0.5 * math.log(2 * math.pi)
                       for c, m in zip(ci[3:], mu))
        entropy = math.log(3) + 2 * math.log(2)  # uniform over 3, and U(-1, 1) twice
        expected.append(log_cat + log_cont + entropy)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_the_bound_is_at_most_its_maximum_and_reached_by_an_exact_q():
    codes = np.concatenate([np.eye(4)[[0, 3, 1]], [[0.2], [-0.5], [0.9]]], axis=1)
    exact = np.concatenate([1e4 * codes[:, :4], codes[:, 4:]], axis=1)  # Q certain, right
    best = math.log(4) + math.log(2) - 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(mutual_information_bound(mg.tensor(exact), mg.tensor(codes),
                                                        4, 1).numpy(), best, rtol=1e-6)
    flat = np.zeros_like(codes)  # a uniform guess of the category: that part is 0
    got = mutual_information_bound(mg.tensor(flat), mg.tensor(codes), 4, 1).numpy()
    np.testing.assert_allclose(got, math.log(2) - 0.5 * math.log(2 * math.pi)
                               - 0.5 * codes[:, 4] ** 2, rtol=1e-6)


def _model(**config):
    return build("infogan", **{"channels": 8, "latent": 6, "categories": 3,
                               "continuous": 2, **config})


def test_the_noise_carries_the_codes_and_q_trains_with_d():
    model = _model()
    zc = model.noise(500, Generator(1)).numpy()
    assert zc.shape == (500, 6 + 3 + 2)
    cat, cont = zc[:, 6:9], zc[:, 9:]
    assert np.all(cat.sum(axis=1) == 1) and set(np.unique(cat)) == {0.0, 1.0}
    assert np.abs(cont).max() <= 1.0 and cont.std() > 0.4
    players = model.players()
    q_params = {id(p) for p in model.Q.parameters()}
    assert q_params <= {id(p) for p in players["discriminator"].parameters}
    assert not q_params & {id(p) for p in players["generator"].parameters}


def test_the_mi_term_enters_both_losses(tmp_path):
    run = trainer.Run("infogan", "digits", out=tmp_path, config=[
        "steps=1", "batch_size=8", "channels=8", "latent=6", "categories=3",
        "continuous=1"])
    updates = run.model.updates(trainer.StepBatches(run, 0), Generator(0))
    d_update = next(updates)
    assert d_update.player == "discriminator" and "mi_nats" in d_update.logs
    d_update.loss.backward()
    assert all(p.grad is not None for p in run.model.Q.parameters())


def test_cli_train_sample_eval(tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval("infogan", "digits", [
        "--steps", "3", "--batch-size", "16", "--config", "channels=8", "latent=8",
        "categories=4", "continuous=2", "eval_samples=40"], tmp_path, capsys)
    for key in ("test_fid_local", "test_mi_nats", "test_code_accuracy",
                "test_category_purity"):
        assert np.isfinite(metrics[key]), key
    assert metrics["test_mi_nats"] <= math.log(4) + 2 * (math.log(2) -
                                                          0.5 * math.log(2 * math.pi))
    assert (tmp_path / "run" / "codes.png").is_file()


@pytest.mark.parametrize("config, key", [
    (["categories=0", "continuous=0"], "categories=0 and continuous=0"),
    (["categories=1"], "categories"), (["continuous=-1"], "continuous"),
    (["mi_weight=-1"], "mi_weight")])
def test_bad_config_names_the_key(tmp_path, capsys, config, key):
    assert key in refused("infogan", config, tmp_path, capsys)


def test_only_continuous_codes_work():
    model = _model(categories=0, continuous=2)
    assert model.noise(4, Generator(0)).shape == (4, 8)


def test_purity_counts_each_categorys_most_common_class():
    categories = np.array([0, 0, 0, 1, 1, 2])
    classes = np.array([3, 3, 1, 2, 2, 3])
    assert purity(categories, classes) == pytest.approx(5 / 6)
