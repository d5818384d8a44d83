"""The widened trainer on a toy two-player model: players with their own optimisers and
update counts, the model's update order, post-update work, model state and every
optimiser in the checkpoint (bit-identical resume), declared metrics in metrics.json and
log.csv, early stopping on the model's own metric, EMA weights, samples as .npy."""
import csv
import json

import numpy as np
import pytest

import minigen as mg
from minigen import cli, models, nn, optim, trainer
from minigen.model import Model, Player, Update
from minigen.models import register

CLIP = 0.05


@register("toy-two-player", "test only: a linear generator against a clipped linear critic",
          data=("toy-moons", "digits-bin"), critic_updates=3, steps=12, batch_size=32,
          checkpoint_every=5, eval_batch_size=1000, ranges={"critic_updates": "[1, inf)"})
class TwoPlayer(Model):
    """A WGAN in miniature: critic f(x) = w.x + b, generator g(z) = A z + c. The critic
    makes critic_updates updates per step (RMSprop, weights clipped to +-CLIP after each),
    then the generator one (Adam with betas (0.5, 0.9))."""

    validation_metric = "gap"
    validation_goal = "max"

    def __init__(self, spec, generator, critic_updates=3):
        super().__init__(spec)
        dims = spec.dims
        self.critic = nn.Linear(dims, 1, generator=generator)
        self.generator = nn.Linear(2, dims, generator=generator)
        self.critic_updates = critic_updates
        self.updates_seen = 0  # model state that is not a parameter: in the checkpoint
        self.order = []        # (player, critic weight version) of each loss, for the test

    def players(self):
        return {"critic": Player(list(self.critic.parameters()), optimizer="rmsprop",
                                 lr=5e-3),
                "generator": Player(list(self.generator.parameters()), betas=(0.5, 0.9))}

    def fake(self, n, generator):
        return self.generator(generator.normal((n, 2)).to(self.device))

    def gap(self, x, generator):
        """E f(real) - E f(fake): the critic's estimate of the Wasserstein distance."""
        real = x.reshape(len(x), -1).astype("float32")
        return self.critic(real).mean() - self.critic(self.fake(len(x), generator)).mean()

    def updates(self, batches, generator):
        for _ in range(self.critic_updates):
            gap = self.gap(batches.next().x, generator)
            self.order.append(("critic", self.critic.weight.data.copy()))
            yield Update("critic", -gap, {"critic_gap": gap.item()})
        fake = self.fake(batches.next().x.shape[0], generator)
        self.order.append(("generator", self.critic.weight.data.copy()))
        yield Update("generator", -self.critic(fake).mean())

    def after_update(self, player):
        self.updates_seen += 1
        if player == "critic":
            for p in self.critic.parameters():
                np.clip(p.data, -CLIP, CLIP, out=p.data)

    def evaluate(self, batches, final=True):
        with mg.no_grad():
            gaps = [self.gap(b.x, mg.random.Generator(7)).item() for b in batches]
        return {"gap": float(np.mean(gaps))}

    def sample(self, n, generator, labels=None):
        with mg.no_grad():
            fake = self.fake(n, generator).numpy()
        if self.spec.kind == "discrete":  # binary images: the fake's values thresholded
            return (fake > 0.5).astype(np.uint8).reshape((n,) + self.spec.shape)
        return fake

    def extra_state(self):
        return {"updates_seen": self.updates_seen}

    def load_extra_state(self, state):
        self.updates_seen = state["updates_seen"]


def test_players_get_their_own_optimisers_and_settings(tmp_path):
    run = trainer.Run("toy-two-player", "toy-moons", out=tmp_path, config=["lr=0.01"])
    critic, gen = run.optimizers["critic"], run.optimizers["generator"]
    assert isinstance(critic, optim.RMSprop) and critic.param_groups[0]["lr"] == 5e-3
    assert isinstance(gen, optim.Adam) and gen.param_groups[0]["lr"] == 0.01
    assert tuple(gen.param_groups[0]["betas"]) == (0.5, 0.9)
    assert {id(p) for p in critic._params()} == {id(p) for p in run.model.critic.parameters()}


def test_updates_run_in_the_models_order_each_after_the_last_step(tmp_path):
    """Each loss is computed after the previous update's optimiser step: the critic's
    weights differ between consecutive critic losses, and the generator's loss sees the
    critic after its last update of the step; clipping runs after every critic step."""
    run = trainer.Run("toy-two-player", "toy-moons", out=tmp_path, config=["steps=2"])
    run.train(progress=False)
    players = [p for p, _ in run.model.order]
    assert players == (["critic"] * 3 + ["generator"]) * 2
    weights = [w for _, w in run.model.order]
    for before, after in zip(weights[:3], weights[1:4]):
        assert not np.array_equal(before, after)
    assert run.model.updates_seen == 8
    for p in run.model.critic.parameters():
        assert np.abs(p.data).max() <= CLIP


def test_batches_of_a_step_are_drawn_from_seed_step_and_index(tmp_path):
    """The first batch of step k is the one a one-player run draws, (seed, k); the others
    come from samplers of their own, so every critic update sees new examples."""
    run = trainer.Run("toy-two-player", "toy-moons", seed=5, out=tmp_path)
    first = trainer.StepBatches(run, 3)
    batches = [first.next().x.numpy() for _ in range(4)]
    single = mg.data.BatchSampler(len(run.x_train), run.config["batch_size"], 5).indices(3)
    np.testing.assert_array_equal(batches[0], run.x_train[single])
    assert not any(np.array_equal(batches[0], b) for b in batches[1:])
    again = trainer.StepBatches(run, 3)
    np.testing.assert_array_equal(again.next().x.numpy(), batches[0])


def test_two_player_run_killed_and_resumed_is_bit_identical(tmp_path):
    config = ["steps=12", "checkpoint_every=5", "ema=0.9"]
    whole = trainer.Run("toy-two-player", "toy-moons", seed=2, out=tmp_path / "whole",
                        config=config)
    whole.train(progress=False)
    assert trainer.train("toy-two-player", "toy-moons", seed=2, out=tmp_path / "parts",
                         config=config, progress=False, stop_after=7) is None
    resumed = trainer.Run.from_checkpoint(tmp_path / "parts" / "checkpoint.npz")
    assert resumed.step == 7 and resumed.model.updates_seen == 7 * 4
    resumed.train(progress=False)
    assert resumed.model.updates_seen == whole.model.updates_seen == 12 * 4
    expected, got = whole.state(), resumed.state()
    for key in expected["params"]:
        np.testing.assert_array_equal(got["params"][key], expected["params"][key])
    for name in ("critic", "generator"):
        for a, b in zip(_arrays(expected["optimizers"][name]),
                        _arrays(got["optimizers"][name])):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(expected["ema"]["shadow"], got["ema"]["shadow"]):
        np.testing.assert_array_equal(a, b)


def _arrays(tree):
    if isinstance(tree, dict):
        return [a for k in sorted(tree) for a in _arrays(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [a for v in tree for a in _arrays(v)]
    return [np.asarray(tree)] if isinstance(tree, np.ndarray) else []


def test_declared_metrics_reach_metrics_json_and_log_csv(tmp_path):
    metrics = trainer.train("toy-two-player", "toy-moons", out=tmp_path,
                            config=["steps=6", "eval_every=3", "log_every=3"],
                            progress=False)
    assert "test_gap" in metrics and "test_nll_nats" not in metrics
    assert json.loads((tmp_path / "metrics.json").read_text())["test_gap"] == \
        metrics["test_gap"]
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [3, 6]
    for row in rows:
        for column in ("critic_loss", "generator_loss", "critic_gap", "test_gap"):
            assert np.isfinite(float(row[column])), column


def test_log_csv_widens_its_header_when_a_metric_first_appears(tmp_path):
    """Rows before the first evaluation keep their values under the widened header."""
    trainer.train("histogram", "digits-bin", out=tmp_path, progress=False,
                  config=["steps=6", "batch_size=32", "checkpoint_every=2", "log_every=2"],
                  early_stop=3)
    with open(tmp_path / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 3, 4, 6]
    assert all(r["train_loss"] for r in rows)
    assert [bool(r["valid_nll_nats"]) for r in rows] == [False, True, False, True]


def test_early_stopping_selects_on_the_models_metric_and_goal(tmp_path):
    metrics = trainer.train("toy-two-player", "digits-bin", out=tmp_path, early_stop=3,
                            config=["steps=9"], progress=False)
    assert metrics["early_stop_metric"] == "valid_gap"
    with open(tmp_path / "log.csv", newline="") as f:
        gaps = {int(r["step"]): float(r["valid_gap"]) for r in csv.DictReader(f)
                if r["valid_gap"]}
    best = max(gaps, key=gaps.get)  # validation_goal = "max"
    assert metrics["best_step"] == best and metrics["valid_gap"] == gaps[best]


def test_ema_weights_are_used_for_metrics_and_samples(tmp_path):
    run = trainer.Run("toy-two-player", "toy-moons", out=tmp_path,
                      config=["steps=5", "ema=0.5"])
    run.train(progress=False)
    trained = [p.data.copy() for p in run.params]
    manual = [s.copy() for s in run.ema.shadow]
    assert not all(np.array_equal(a, b) for a, b in zip(trained, manual))
    with run.evaluation_weights():
        used = [p.data.copy() for p in run.params]
        gap = run.evaluate("test")["gap"]
    for a, b in zip(used, manual):
        np.testing.assert_array_equal(a, b)
    for p, values in zip(run.params, trained):  # the trained weights come back after
        np.testing.assert_array_equal(p.data, values)
    for p, values in zip(run.params, manual):
        p.data[...] = values
    assert run.evaluate("test")["gap"] == gap


def test_sample_npy_writes_the_raw_samples(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "toy-two-player", "--data", "toy-moons", "--out", str(out),
                     "--quiet", "--config", "steps=2"]) == 0
    assert cli.main(["sample", str(out), "--n", "7", "--out", str(tmp_path / "s.npy")]) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 2) and samples.dtype == np.float32

    out = tmp_path / "made"
    assert cli.main(["train", "made", "--data", "digits-bin", "--out", str(out), "--quiet",
                     "--steps", "2", "--config", "hidden=16"]) == 0
    assert cli.main(["sample", str(out), "--n", "5", "--out", str(tmp_path / "m.npy")]) == 0
    images = np.load(tmp_path / "m.npy")
    assert images.shape == (5, 1, 8, 8) and images.dtype == np.uint8
    assert set(np.unique(images)) <= {0, 1}


@pytest.mark.parametrize("n", [0, -3])
def test_sample_count_must_be_positive(tmp_path, capsys, n):
    out = tmp_path / "run"
    assert cli.main(["train", "histogram", "--data", "digits-bin", "--out", str(out),
                     "--quiet", "--steps", "1"]) == 0
    capsys.readouterr()
    assert cli.main(["sample", str(out), "--n", str(n)]) == 2
    assert "--n" in capsys.readouterr().err


def test_tuple_configs_parse_by_their_defaults_element_type():
    entry = models.get("toy-two-player")
    config = models.make_config(entry, ["betas=0.5,0.999"])
    assert config["betas"] == (0.5, 0.999)
    assert models.make_config(models.get("made"), ["hidden=8,16"])["hidden"] == (8, 16)
    with pytest.raises(models.ConfigError, match="betas"):
        models.make_config(entry, ["betas=0.5,fast"])
