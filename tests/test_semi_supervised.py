"""The semi-supervised models beyond mean-teacher (issue 17) and their shared pieces
(minigen.representation.semi): sharpening and the entropy by hand, mixup's lambda' and
what it mixes, VAT's power iteration finding the top eigenvector of a linear softmax
model's KL Hessian, pseudo-label's and UDA's confidence masks, UDA's training signal
annealing, temporal ensembling's bias correction and epochs, noisy-student's teacher swap,
resumed runs equal to uninterrupted ones; each model trains and evaluates from the command
line on a tiny config, and bad settings are one-line errors."""
import json
import math

import numpy as np
import pytest

import minigen as mg
from minigen import backend, cli, data, models, trainer
from minigen.model import Batch
from minigen.models import DataSpec
from minigen.random import Generator
from minigen.representation import semi

MODELS = ["entropy-min", "pseudo-label", "vat", "pi-model", "temporal-ensembling",
          "mixmatch", "uda", "noisy-student"]
TINY = ["steps=2", "batch_size=16", "eval_batch_size=400", "width=2"]
DIGITS = DataSpec("digits", (1, 8, 8), "discrete", 17, 10)


def run_cli(capsys, *argv):
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def build(name, **config):
    entry = models.get(name)
    model = entry.cls(DIGITS, Generator(0), **{**models.model_config(entry.config),
                                              "width": 2, **config})
    x, y = data.load("digits")
    model.set_training_split(x, y)
    return model


class Batches:
    """The trainer's batches of a step, here always the same images."""

    def __init__(self, x):
        self.batch, self.calls = Batch(mg.tensor(x)), 0

    def next(self):
        self.calls += 1
        return self.batch


# the shared pieces ------------------------------------------------------------------------
def test_sharpening_by_hand_and_its_limits():
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]])
    squared = p ** 2 / (p ** 2).sum(axis=1, keepdims=True)  # T = 1/2: p^2, normalised
    np.testing.assert_allclose(semi.sharpen(p, 0.5), squared, rtol=1e-12)
    np.testing.assert_allclose(semi.sharpen(p, 1.0), p, rtol=1e-12)
    np.testing.assert_allclose(semi.sharpen(p, 1e-6), [[0, 0, 1], [1, 0, 0]], atol=1e-12)
    flat = semi.sharpen(p.astype(np.float32), 1e3)  # T -> inf: towards uniform
    np.testing.assert_allclose(flat, 1 / 3, atol=1e-3)
    with pytest.raises(ValueError, match="temperature"):
        semi.sharpen(p, 0.0)


def test_the_entropy_of_predictions():
    uniform = mg.tensor(np.zeros((4, 10)))
    assert semi.entropy(uniform).item() == pytest.approx(math.log(10))
    sure = mg.tensor(np.array([[50.0, 0.0, 0.0]]))
    assert semi.entropy(sure).item() == pytest.approx(0.0, abs=1e-12)
    logits = np.random.default_rng(0).normal(size=(5, 4))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert semi.entropy(mg.tensor(logits)).item() == pytest.approx(
        -(p * np.log(p)).sum(axis=1).mean())


@pytest.mark.parametrize("alpha", [0.1, 0.75, 4.0])
def test_mixup_keeps_lambda_at_least_a_half_and_mixes_inputs_and_targets_alike(alpha):
    rng = np.random.default_rng(1)
    x1, x2 = rng.uniform(size=(2, 500, 1, 4, 4))
    y1, y2 = rng.dirichlet(np.ones(3), size=(2, 500))
    x, y, lam = semi.mixup(x1, y1, x2, y2, Generator(0), alpha)
    assert lam.shape == (500,) and (lam >= 0.5).all() and (lam <= 1).all()
    np.testing.assert_allclose(x, lam[:, None, None, None] * x1
                               + (1 - lam[:, None, None, None]) * x2)
    np.testing.assert_allclose(y, lam[:, None] * y1 + (1 - lam[:, None]) * y2)
    np.testing.assert_allclose(y.sum(axis=1), 1)
    # lambda' is max(lambda, 1 - lambda) of Beta(alpha, alpha): its mean is E|lambda - 1/2|
    # + 1/2, which a small alpha pushes towards 1 and a large one towards 1/2
    draws = np.random.default_rng(5).beta(alpha, alpha, 200000)
    assert lam.mean() == pytest.approx(np.maximum(draws, 1 - draws).mean(), abs=0.03)
    with pytest.raises(ValueError, match="alpha"):
        semi.mixup(x1, y1, x2, y2, Generator(0), 0.0)


def linear_softmax(seed=0, dimensions=6, classes=4, dtype=np.float64):
    """A linear softmax model f(x) = W x, one input x, and the Hessian of
    r -> KL(p(x) || p(x + r)) at 0: W^T (diag p - p p^T) W."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(classes, dimensions)).astype(dtype)
    x = rng.normal(size=(1, dimensions)).astype(dtype)
    logits = (x @ w.T)[0]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    hessian = w.T.astype(np.float64) @ (np.diag(p) - np.outer(p, p)) @ w.astype(np.float64)
    return (lambda t: t @ mg.tensor(w.T)), x, hessian


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vats_power_iteration_finds_the_top_eigenvector_of_the_kl_hessian(seed):
    f, x, hessian = linear_softmax(seed)
    values, vectors = np.linalg.eigh(hessian)
    assert values[-1] > 1.5 * values[-2]  # an eigengap for the iteration to converge on
    log_p = f(mg.tensor(x)).log_softmax(axis=1)
    d = backend.to_numpy(semi.adversarial_direction(f, x, log_p, Generator(seed), xi=1e-6,
                                                    iterations=30))
    assert abs(d[0] @ vectors[:, -1]) > 1 - 1e-6
    assert np.linalg.norm(d[0]) == pytest.approx(1.0)


def test_vats_direction_in_float32_at_the_default_xi():
    """float32 inputs near 1: xi = 1e-3 (vat's default) finds the eigenvector, and the
    direction found raises the KL above that of any of many random directions."""
    f, x, hessian = linear_softmax(3, dimensions=64, classes=10, dtype=np.float32)
    x = np.abs(x) / np.abs(x).max()
    values, vectors = np.linalg.eigh(linear_softmax(3, 64, 10)[2])
    log_p = f(mg.tensor(x)).log_softmax(axis=1)
    d = backend.to_numpy(semi.adversarial_direction(f, x, log_p, Generator(0), xi=1e-3,
                                                    iterations=5))
    assert d.dtype == np.float32
    directions = np.random.default_rng(1).normal(size=(200, 64))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def kl(r):
        return semi.kl_divergence(log_p, f(mg.tensor(x + r.astype(np.float32)))).item()
    found = kl(0.5 * d)
    assert found > max(kl(0.5 * r[None]) for r in directions)


def test_vats_direction_raises_the_classifiers_kl_above_random_directions():
    model = build("vat", width=4)
    x = backend.to_numpy(model.scale(data.load("digits")[0][:64]))
    logits = model.classifier(mg.tensor(x))
    log_p = logits.log_softmax(axis=1)
    d = backend.to_numpy(semi.adversarial_direction(model.classifier, x, log_p,
                                                    Generator(0), 1e-3, 1))
    norms = np.sqrt((d.reshape(64, -1) ** 2).sum(axis=1))
    np.testing.assert_allclose(norms, 1, rtol=1e-5)

    def kl(direction):
        return semi.kl_divergence(log_p, model.classifier(mg.tensor(x + direction))).item()
    random = semi.unit_rows(np.random.default_rng(0).normal(size=x.shape).astype(np.float32))
    assert kl(2.0 * d) > 2 * kl(2.0 * random)
    loss = semi.virtual_adversarial_loss(model.classifier, x, logits, Generator(0), 2.0,
                                         1e-3)
    assert loss.item() == pytest.approx(kl(2.0 * d) / 64, rel=1e-4)
    loss.backward()  # the gradient reaches the weights through p(x + r_vadv) alone
    assert all(p.grad is not None for p in model.classifier.parameters())


def test_confidence_masks_and_the_masked_kl():
    p = np.array([[0.96, 0.04], [0.5, 0.5], [0.2, 0.8], [0.95, 0.05]], np.float32)
    np.testing.assert_array_equal(semi.confident(p, np.float32(0.95)), [1, 0, 0, 1])
    np.testing.assert_array_equal(semi.confident(p, 0.8), [1, 0, 1, 1])
    logits = mg.tensor(np.random.default_rng(0).normal(size=(4, 2)), requires_grad=True)
    q = np.random.default_rng(1).dirichlet([1, 1], 4)
    log_s = logits.log_softmax(axis=1).numpy()
    kl = (q * (np.log(q) - log_s)).sum(axis=1)
    mask = np.array([1.0, 0.0, 1.0, 0.0])
    loss = semi.masked_kl(q, logits, mask)
    assert loss.item() == pytest.approx((kl * mask).sum() / 4)
    loss.backward()
    np.testing.assert_array_equal(logits.grad.numpy()[mask == 0], 0)


def test_training_signal_annealing_schedules():
    assert semi.tsa_threshold("none", 5, 10, 10) == 1.0
    for schedule, half, end in [("linear", 0.5, 1.0), ("log", 1 - math.exp(-2.5),
                                                          1 - math.exp(-5)),
                                ("exp", math.exp(-2.5), 1.0)]:
        assert semi.tsa_threshold(schedule, 5, 10, 10) == pytest.approx(half * 0.9 + 0.1)
        # t / T is capped at 1: from T on, alpha_T
        assert semi.tsa_threshold(schedule, 20, 10, 10) == pytest.approx(end * 0.9 + 0.1)
    assert semi.tsa_threshold("linear", 0, 10, 4) == pytest.approx(0.25)


# the models ------------------------------------------------------------------------------
def test_pseudo_labels_are_the_argmax_above_the_threshold_only():
    model = build("pseudo-label", threshold=0.9)
    logits = mg.tensor(np.log(np.array([[0.95, 0.05], [0.6, 0.4], [0.08, 0.92]])))
    labels, mask = (backend.to_numpy(a) for a in model.pseudo_labels(logits))
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_array_equal(mask, [1, 0, 1])


def test_pseudo_labels_below_the_threshold_give_no_gradient():
    """With threshold 1 nothing is confident: the unlabelled term is 0, and the update's
    gradient is the labelled cross-entropy's alone."""
    model = build("pseudo-label", threshold=1.0, rampup=0)
    batches = Batches(data.load("digits")[0][:16])
    update = next(model.updates(batches, Generator(0)))
    assert update.logs["pseudo_label"] == 0 and update.logs["confident_share"] == 0
    assert update.loss.item() == pytest.approx(update.logs["classification"])


def test_udas_targets_are_the_sharpened_weak_prediction_masked_by_its_confidence():
    model = build("uda", temperature=0.5)
    weak = model.scale(data.load("digits")[0][:32])
    with mg.no_grad():
        p = model.classifier(mg.tensor(weak)).softmax(axis=1).numpy()
    model.threshold = float(np.median(p.max(axis=1)))  # one that splits this batch
    targets, mask = (backend.to_numpy(a) for a in model.weak_targets(weak))
    np.testing.assert_allclose(targets, semi.sharpen(p, 0.5), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(mask, p.max(axis=1) >= model.threshold)
    assert 0 < mask.sum() < 32


def test_udas_annealing_drops_the_labelled_examples_already_learnt():
    model = build("uda", tsa="linear", tsa_steps=100)
    model.step_count = 50  # eta = 0.5 * 0.9 + 0.1 = 0.55
    logits = mg.tensor(np.log(np.array([[0.9, 0.1], [0.5, 0.5], [0.3, 0.7]])))
    model.spec = DataSpec("digits", (1, 8, 8), "discrete", 17, 2)  # eta with K = 2: 0.75
    loss, kept = model.supervised_loss(logits, mg.tensor(np.array([0, 0, 1])))
    assert kept == pytest.approx(2 / 3)  # p_y = 0.9 > 0.75 leaves; 0.5 and 0.7 stay
    assert loss.item() == pytest.approx(-(math.log(0.5) + math.log(0.7)) / 2)


def test_temporal_ensemblings_bias_correction():
    model = build("temporal-ensembling", ensemble_decay=0.6)
    n = len(model.ensemble)
    z1, z2 = (np.random.default_rng(s).dirichlet(np.ones(10), n).astype(np.float32)
              for s in (1, 2))
    model.epoch_predictions[...] = z1
    model.end_epoch()
    index = np.arange(0, n, 7)
    # one epoch: Z = 0.4 z1, corrected by 1 - 0.6: z1 itself
    np.testing.assert_allclose(model.targets(index), z1[index], rtol=1e-5)
    model.epoch_predictions[...] = z2
    model.end_epoch()
    expected = (0.6 * 0.4 * z1 + 0.4 * z2) / (1 - 0.6 ** 2)
    np.testing.assert_allclose(model.targets(index), expected[index], rtol=1e-5)
    np.testing.assert_allclose(model.targets(index).sum(axis=1), 1, rtol=1e-5)


def test_temporal_ensembling_visits_every_image_once_an_epoch():
    model = build("temporal-ensembling")
    n = len(model.ensemble)
    batches = Batches(data.load("digits")[0][:128])
    drawn, weights = [], []
    next_indices = model.next_indices
    model.next_indices = lambda size, g: drawn.append(next_indices(size, g)) or drawn[-1]
    while model.epochs == 0:
        update = next(model.updates(batches, Generator(len(drawn))))
        weights.append(update.logs["consistency_weight"])
        model.after_update("model")
    assert len(drawn) == math.ceil(n / 128) and set(weights) == {0.0}
    np.testing.assert_array_equal(np.sort(np.concatenate(drawn)), np.arange(n))
    assert (model.epoch_predictions.sum(axis=1) > 0.99).all()  # every image predicted
    update = next(model.updates(batches, Generator(0)))
    assert update.logs["consistency_weight"] > 0 and update.logs["consistency"] > 0


def test_noisy_students_teacher_is_the_student_of_the_round_before():
    model = build("noisy-student", round_steps=2)
    batches = Batches(data.load("digits")[0][:16])
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert model.players()["model"].parameters == list(model.classifier.parameters())
    initial = [p.numpy().copy() for p in model.teacher.parameters()]
    snapshots = []
    for step in range(5):
        update = next(model.updates(batches, Generator(step)))
        assert update.logs["round"] == step // 2
        for p in model.classifier.parameters():
            p.data += 0.1  # an optimiser step
        model.after_update("model")
        snapshots.append([p.numpy().copy() for p in model.classifier.parameters()])
        done = step + 1  # the teacher is the student as the last finished round left it
        expected = initial if done < 2 else snapshots[done - done % 2 - 1]
        for t, e in zip(model.teacher.parameters(), expected):
            np.testing.assert_array_equal(t.numpy(), e)
    assert batches.calls == 3  # round 0 (steps 0, 1) takes no unlabelled batch


def test_noisy_students_pseudo_labels_are_the_clean_teachers():
    model = build("noisy-student", dropout=0.5)
    u = model.scale(data.load("digits")[0][:8])
    with mg.no_grad():
        p = model.teacher(mg.tensor(u)).softmax(axis=1).numpy()
    np.testing.assert_allclose(backend.to_numpy(model.pseudo_labels(u)), p, rtol=1e-6)
    model.hard_labels = True
    np.testing.assert_array_equal(model.pseudo_labels(u), np.eye(10)[p.argmax(axis=1)])


@pytest.mark.parametrize("name", ["temporal-ensembling", "noisy-student", "mixmatch"])
def test_a_resumed_run_ends_as_an_uninterrupted_one(name, tmp_path):
    config = TINY + ["steps=5", "batch_size=512",
                     "round_steps=2" if name == "noisy-student" else "rampup=2"]
    whole = trainer.Run(name, "digits", out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    part = trainer.Run(name, "digits", out=tmp_path / "part", config=config)
    part.train(progress=False, stop_after=3)
    resumed = trainer.Run.from_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert resumed.model.step_count == 3
    resumed.train(progress=False)
    for (key, a), (_, b) in zip(whole.model.named_parameters(),
                                resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)
    if name == "temporal-ensembling":  # 1437 images, 512 a step: epochs of 3 steps
        assert resumed.model.epochs == whole.model.epochs == 1
        np.testing.assert_array_equal(resumed.model.ensemble, whole.model.ensemble)
        np.testing.assert_array_equal(resumed.model.order, whole.model.order)


# the command line ------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_train_and_eval_from_the_command_line(name, tmp_path, capsys):
    out = tmp_path / "run"
    extra = ["round_steps=1"] if name == "noisy-student" else []
    status, _, err = run_cli(capsys, "train", name, "--data", "digits", "--out", out,
                             "--quiet", "--config", *TINY, *extra)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["pictures"] == []
    status, printed, err = run_cli(capsys, "eval", out)
    assert status == 0, err
    assert json.loads(printed)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])


@pytest.mark.parametrize("name, setting, words", [
    ("pseudo-label", "threshold=0", ["threshold", "in (0, 1]"]),
    ("pseudo-label", "threshold=1.5", ["threshold"]),
    ("uda", "threshold=0", ["threshold"]),
    ("uda", "temperature=0", ["temperature", "> 0"]),
    ("uda", "tsa=cosine", ["tsa=cosine", "linear"]),
    ("uda", "strong_shift=8", ["strong augmentation", "shift=8"]),
    ("mixmatch", "temperature=-1", ["temperature"]),
    ("mixmatch", "alpha=0", ["alpha", "> 0"]),
    ("mixmatch", "augmentations=0", ["augmentations", ">= 1"]),
    ("vat", "eps=0", ["eps", "> 0"]),
    ("vat", "xi=-1", ["xi"]),
    ("temporal-ensembling", "ensemble_decay=1", ["ensemble_decay", "[0, 1)"]),
    ("noisy-student", "dropout=1", ["dropout"]),
    ("noisy-student", "round_steps=0", ["round_steps", ">= 1"]),
    ("entropy-min", "labels=15", ["labels=15", "multiple of 10"]),
    ("pi-model", "labels=2000", ["labels=2000", "class"]),
])
def test_bad_settings_are_one_line_errors(name, setting, words, tmp_path, capsys):
    status, _, err = run_cli(capsys, "train", name, "--data", "digits", "--out",
                             tmp_path / "run", "--quiet", "--config", *TINY, setting)
    assert status == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("minigen: error: ")
    for word in words:
        assert word in last, last


@pytest.mark.parametrize("config", [["eps=1e300"], ["xi=1e39"]])
def test_vat_refuses_a_perturbation_float32_cannot_hold(config, tmp_path, capsys):
    from minigen import cli
    assert cli.main(["train", "vat", "--data", "digits", "--out", str(tmp_path / "r"),
                     "--quiet", "--steps", "1", "--config", *config]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "float32" in err
    assert not (tmp_path / "r").exists()
