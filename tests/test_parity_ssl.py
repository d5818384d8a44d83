"""simclr, supervised and mean-teacher against their PyTorch builds
(benchmarks/torch_models/ssl.py), the references of issue 17's parity runs: with minigen's
weights copied in by name and the same augmented views (drawn by minigen's augmentations
from one generator state), the same loss and the same gradient of every trained parameter;
the mean teacher's EMA step gives the same teacher. The parity runner
(benchmarks/ssl_parity.py) trains both sides on the same views: their first losses agree,
and minigen's trained weights in PyTorch score minigen's figure."""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the SSL parity test needs PyTorch "
                                            "(pip install -e '.[bench]')")

import minigen as mg  # noqa: E402
from minigen import data, models  # noqa: E402
from minigen.model import Batch  # noqa: E402
from minigen.models import DataSpec  # noqa: E402
from minigen.random import Generator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.parity import copy_weights  # noqa: E402
from benchmarks.torch_models import ssl  # noqa: E402

SPEC = DataSpec("digits", (1, 8, 8), "discrete", levels=17, num_classes=10)
WIDTH = 32


class Batches:
    def __init__(self, x):
        self.x = x

    def next(self):
        return Batch(mg.tensor(self.x))


def build(name, **config):
    entry = models.get(name)
    ours = entry.cls(SPEC, generator=Generator([0, 0]), **{
        **models.model_config(entry.config), "width": WIDTH, **config})
    ours.set_training_split(*data.load("digits"))
    theirs = {"simclr": lambda: ssl.SimCLR(1, WIDTH, 64, 0.5),
              "supervised": lambda: ssl.Supervised(1, WIDTH),
              "mean-teacher": lambda: ssl.MeanTeacher(1, WIDTH, rampup=1000)}[name]()
    return ours, theirs


def torch_batch(array):
    return torch.from_numpy(np.ascontiguousarray(array))


def agree(ours, theirs, loss, loss_t):
    assert loss.item() == pytest.approx(loss_t.item(), rel=2e-5)
    trained = [(n, p) for n, p in ours.named_parameters() if p.requires_grad]
    params_t = dict(theirs.named_parameters())
    grads = mg.grad(loss, [p for _, p in trained])
    grads_t = torch.autograd.grad(loss_t, [params_t[n] for n, _ in trained])
    # to float32 rounding of the largest gradient: at the start the views' projections are
    # nearly parallel and the sums behind a bias's gradient cancel to a few ulps of it
    largest = max(float(g.abs().max()) for g in grads_t)
    for (name, _), g, g_t in zip(trained, grads, grads_t):
        assert float(g_t.abs().max()) > 0, f"gradient of {name} is zero"
        np.testing.assert_allclose(g.numpy(), g_t.numpy(), rtol=2e-4, atol=2e-5 * largest,
                                   err_msg=f"gradient of {name}")


def test_simclr_loss_and_gradients_agree():
    ours, theirs = build("simclr")
    copy_weights(ours, theirs)
    x = data.load("digits")[0][:32]
    loss = next(ours.updates(Batches(x), Generator(1))).loss
    first, second = ours.views(ours.scale(x), Generator(1))
    agree(ours, theirs, loss, theirs.loss(torch_batch(first), torch_batch(second)))


def test_supervised_loss_and_gradients_agree():
    ours, theirs = build("supervised")
    copy_weights(ours, theirs)
    loss = next(ours.updates(Batches(None), Generator(1))).loss
    y, labels = ours.labelled_examples()
    view = ours.augment(y, Generator(1))
    agree(ours, theirs, loss, theirs.loss(torch_batch(view), torch.from_numpy(labels.numpy())))


def test_mean_teacher_loss_gradients_and_teacher_step_agree():
    ours, theirs = build("mean-teacher")
    rng = np.random.default_rng(2)
    for p in ours.teacher.parameters():  # a teacher that is no longer the student
        p.data += rng.normal(0, 0.05, p.shape).astype(np.float32)
    ours.step_count = 400
    copy_weights(ours, theirs)
    u = data.load("digits")[0][100:116]
    loss = next(ours.updates(Batches(u), Generator(1))).loss
    y, labels = ours.labelled_examples()
    views = [torch_batch(v) for v in ours.views(y, ours.scale(u), Generator(1))]
    loss_t = theirs.loss(views[0], torch.from_numpy(labels.numpy()), views[1], views[2], 400)
    agree(ours, theirs, loss, loss_t)
    ours.after_update("model")
    theirs.update_teacher()
    params_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.numpy(), params_t[name].detach().numpy(), rtol=1e-6,
                                   atol=1e-7, err_msg=name)


@pytest.mark.parametrize("name", ["supervised", "mean-teacher", "simclr"])
def test_the_parity_runner_trains_both_sides_on_the_same_views(name):
    from benchmarks.ssl_parity import ssl_parity
    result = ssl_parity(name, [0], steps=3, write=False)
    row = result["per_seed"][0]
    assert row["torch_of_minigen_weights"] == row["minigen"]
    assert [r["step"] for r in row["minigen_curve"]] == [1, 2, 3]
    for ours, theirs in zip(row["minigen_curve"], row["torch_curve"]):
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-5)
    assert abs(result["difference_points"]) <= result["target_points"]
