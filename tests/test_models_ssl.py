"""simclr, supervised and mean-teacher (issue 17's checked configs): each trains, evaluates
and probes from the command line on a tiny config; the probe at the end of training is
`minigen probe`'s; the labelled subset is DATA.md's; the teacher is the EMA of the student,
saved and resumed with the run; bad settings are one-line errors."""
import json

import numpy as np
import pytest

import minigen as mg
from minigen import cli, data, models, trainer
from minigen.models import DataSpec
from minigen.random import Generator

TINY = ["steps=2", "batch_size=16", "eval_batch_size=400", "width=2"]
DIGITS = DataSpec("digits", (1, 8, 8), "discrete", 17, 10)


def run_cli(capsys, *argv):
    capsys.readouterr()
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("name, metric", [("simclr", "test_linear_probe_acc"),
                                          ("supervised", "test_accuracy"),
                                          ("mean-teacher", "test_accuracy")])
def test_train_eval_and_probe_from_the_command_line(name, metric, tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = run_cli(capsys, "train", name, "--data", "digits", "--out", out,
                             "--quiet", "--config", *TINY)
    assert status == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics[metric] <= 1 and metrics["pictures"] == []
    status, printed, err = run_cli(capsys, "eval", out)
    assert status == 0, err
    for key in metrics:
        if key.startswith("test_"):
            assert json.loads(printed)[key] == pytest.approx(metrics[key], rel=1e-6), key
    status, printed, err = run_cli(capsys, "probe", out, "--quiet")
    assert status == 0, err
    probe = json.loads(printed)["linear_probe_acc"]
    assert 0.1 < probe <= 1
    if name == "simclr":  # the same probe, at the end of training and from the command line
        assert probe == metrics["test_linear_probe_acc"]
    status, _, err = run_cli(capsys, "sample", out, "--out", tmp_path / "s.png")
    assert status == 2 and "no samples" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("name, setting, words", [
    ("simclr", "temperature=0", ["temperature", "> 0"]),
    ("simclr", "temperature=-1", ["temperature"]),
    ("simclr", "shift=8", ["shift=8"]),
    ("simclr", "erase=9", ["erase=9"]),
    ("simclr", "brightness=1.2,0.8", ["brightness"]),
    ("supervised", "labels=15", ["labels=15", "multiple of 10"]),
    ("supervised", "labels=5", ["labels", ">= 10"]),
    ("mean-teacher", "labels=2000", ["labels=2000", "class"]),
    ("mean-teacher", "teacher_decay=1.5", ["teacher_decay"]),
])
def test_bad_settings_are_one_line_errors(name, setting, words, tmp_path, capsys):
    status, _, err = run_cli(capsys, "train", name, "--data", "digits", "--out",
                             tmp_path / "run", "--quiet", "--config", *TINY, setting)
    assert status == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("minigen: error: ")
    for word in words:
        assert word in last, last


def build(name, **config):
    entry = models.get(name)
    model = entry.cls(DIGITS, Generator(0), **{**models.model_config(entry.config),
                                              "width": 2, **config})
    x, y = data.load("digits")
    model.set_training_split(x, y)
    return model


def test_the_labelled_images_are_the_five_lowest_of_each_class():
    model = build("supervised")
    x, y = model.labelled_examples()
    _, labels = data.load("digits")
    assert x.shape == (50, 1, 8, 8) and x.max() <= 1
    np.testing.assert_array_equal(np.bincount(y.numpy()), [5] * 10)
    for k in range(10):
        np.testing.assert_array_equal(model.labelled[labels[model.labelled] == k],
                                      np.flatnonzero(labels == k)[:5])


def test_the_teacher_is_the_students_moving_average():
    model = build("mean-teacher", teacher_decay=0.9)
    teacher = [p.numpy().copy() for p in model.teacher.parameters()]
    student = [p.numpy().copy() for p in model.classifier.parameters()]
    for t, s in zip(teacher, student):  # the teacher starts as the student
        np.testing.assert_array_equal(t, s)
    assert not any(p.requires_grad for p in model.teacher.parameters())
    assert model.players()["model"].parameters == list(model.classifier.parameters())
    for p in model.classifier.parameters():
        p.data += 1.0  # an optimiser step
    model.after_update("model")
    for t, s, now in zip(teacher, student, model.teacher.parameters()):
        np.testing.assert_allclose(now.numpy(), 0.9 * t + 0.1 * (s + 1.0), rtol=1e-6,
                                   atol=1e-7)
    assert model.step_count == 1


def test_the_consistency_weight_ramps_up_over_the_steps():
    model = build("mean-teacher", rampup=4, consistency=2.0)
    batch = mg.model.Batch(mg.tensor(data.load("digits")[0][:16]))

    class Batches:
        def next(self):
            return batch
    weights = []
    for _ in range(6):
        update = next(model.updates(Batches(), Generator(0)))
        weights.append(update.logs["consistency_weight"])
        model.after_update("model")
    np.testing.assert_allclose(weights, [2 * np.exp(-5 * (1 - min(t, 4) / 4) ** 2)
                                         for t in range(6)])


def test_a_resumed_mean_teacher_run_ends_as_an_uninterrupted_one(tmp_path):
    config = TINY + ["steps=4", "rampup=3"]
    whole = trainer.Run("mean-teacher", "digits", out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    part = trainer.Run("mean-teacher", "digits", out=tmp_path / "part", config=config)
    part.train(progress=False, stop_after=2)
    resumed = trainer.Run.from_checkpoint(tmp_path / "part" / "checkpoint.npz")
    assert resumed.model.step_count == 2
    resumed.train(progress=False)
    assert resumed.model.step_count == whole.model.step_count == 4
    for (name, a), (_, b) in zip(whole.model.named_parameters(),
                                 resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
