"""The GANs of minigen/models/gan.py on the base minigen/gan/model.py: the losses by hand,
the update order, what each of Salimans et al.'s tricks does, the two bugs public WGAN-GP
code is known for, spectral norm's power iteration, bad input, and each model through the
command line."""
import json

import numpy as np
import pytest
from clicheck import train_sample_eval
from qualitycheck import tiny_classifier  # noqa: F401

import minigen as mg
from minigen import cli, models, nn, optim, trainer
from minigen.gan import losses
from minigen.gan.model import GAN
from minigen.gan.networks import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator,
                                  SpectralNorm)
from minigen.model import Batch
from minigen.models import DataSpec
from minigen.random import Generator

POINTS = DataSpec("toy-8gaussians", (2,), "continuous", box=((-3, 3), (-3, 3)))
DIGITS = DataSpec("digits", (1, 8, 8), "discrete", levels=17, num_classes=10)
SMALL = dict(hidden=(16, 16), latent=4, channels=8, eval_samples=100)


def build(name, spec=POINTS, **config):
    entry = models.get(name)
    config = models.model_config(models.make_config(entry, {**SMALL, **config}))
    return entry.cls(spec, generator=Generator([0, 0]), **config)


class Batches:
    """A stand-in for the trainer's StepBatches: fixed random batches, counted."""

    def __init__(self, spec, n=8, seed=0):
        self.rng, self.spec, self.n, self.count = np.random.default_rng(seed), spec, n, 0

    def next(self):
        self.count += 1
        if self.spec.kind == "discrete":
            x = self.rng.integers(0, self.spec.levels, (self.n,) + self.spec.shape)
            return Batch(mg.tensor(x.astype(np.uint8)))
        return Batch(mg.tensor(self.rng.normal(size=(self.n, 2)).astype(np.float32)))


def logits(n, seed):
    return mg.tensor(np.random.default_rng(seed).normal(size=n).astype(np.float64),
                     requires_grad=True)


# the losses --------------------------------------------------------------------------------

def test_original_game_losses_are_the_log_formulas():
    r, f = logits(6, 0), logits(6, 1)
    d_r, d_f = 1 / (1 + np.exp(-r.numpy())), 1 / (1 + np.exp(-f.numpy()))
    assert losses.minimax_d(r, f).item() == pytest.approx(
        -np.mean(np.log(d_r)) - np.mean(np.log(1 - d_f)))
    assert losses.minimax_g(f).item() == pytest.approx(np.mean(np.log(1 - d_f)))
    assert losses.nonsaturating_g(f).item() == pytest.approx(-np.mean(np.log(d_f)))
    assert losses.hinge_d(r, f).item() == pytest.approx(
        np.mean(np.maximum(0, 1 - r.numpy())) + np.mean(np.maximum(0, 1 + f.numpy())))
    assert losses.wasserstein_d(r, f).item() == pytest.approx(f.numpy().mean() -
                                                             r.numpy().mean())


def test_the_minimax_generator_saturates_where_the_nonsaturating_one_does_not():
    """When D confidently rejects the fakes (logit -8), d/dl log(1 - D) is -D ~ 3e-4 per
    example while d/dl -log D is -(1 - D) ~ -1: the reason for the non-saturating loss."""
    fake = mg.tensor(np.full(4, -8.0), requires_grad=True)
    g_minimax, = mg.grad(losses.minimax_g(fake), [fake])
    g_ns, = mg.grad(losses.nonsaturating_g(fake), [fake])
    assert np.abs(g_minimax.numpy()).max() < 1e-3 / 4
    assert np.abs(g_ns.numpy()).min() > 0.99 / 4


def test_one_sided_label_smoothing_changes_only_the_real_term():
    """With smoothing s the real targets are 1 - s: the loss gains s * mean(real logit)
    (BCE with target 1 - s), and its gradient in the fake logits is unchanged."""
    r, f = logits(6, 0), logits(6, 1)
    plain, smooth = losses.minimax_d(r, f), losses.minimax_d(r, f, smoothing=0.1)
    bce = np.mean(np.logaddexp(0, -r.numpy()) * 0.9 + np.logaddexp(0, r.numpy()) * 0.1)
    assert smooth.item() == pytest.approx(bce + np.mean(np.logaddexp(0, f.numpy())))
    assert smooth.item() - plain.item() == pytest.approx(0.1 * r.numpy().mean())
    gf_plain, = mg.grad(plain, [f])
    gf_smooth, gr_smooth = mg.grad(smooth, [f, r])
    np.testing.assert_allclose(gf_plain.numpy(), gf_smooth.numpy())
    assert np.all(np.abs(gr_smooth.numpy()) > 0)


# WGAN-GP --------------------------------------------------------------------------------

def test_gradient_penalty_interpolates_with_one_weight_per_example():
    rng = np.random.default_rng(0)
    real, fake = (mg.tensor(rng.normal(size=(3, 1, 4, 4))) for _ in range(2))
    eps = mg.tensor(np.array([0.0, 0.5, 1.0]))
    x_hat = losses.interpolates(real, fake, eps).numpy()
    np.testing.assert_allclose(x_hat[0], fake.numpy()[0])
    np.testing.assert_allclose(x_hat[1], 0.5 * (real.numpy()[1] + fake.numpy()[1]))
    np.testing.assert_allclose(x_hat[2], real.numpy()[2])


def test_wgan_gp_draws_one_uniform_per_example():
    model = build("wgan-gp", DIGITS)
    shapes = []

    class Recording(Generator):
        def uniform(self, shape, *args, **kwargs):
            shapes.append(shape)
            return super().uniform(shape, *args, **kwargs)

    batch = Batches(DIGITS, n=5).next()
    real = model.scale(batch.x)
    model.d_loss(real, real, batch, Recording(0))
    assert shapes == [(5,)]


def test_gradient_norm_is_over_all_of_an_examples_dimensions():
    """A linear critic f(x) = <w, x> has gradient w at every x: the norm per example must be
    ||w|| over all of C x H x W, not a norm along one axis."""
    w = np.random.default_rng(1).normal(size=(1, 2, 3, 3))
    critic = lambda x: (x * mg.tensor(w)).reshape(len(x), -1).sum(axis=1)  # noqa: E731
    x = mg.tensor(np.random.default_rng(2).normal(size=(4, 2, 3, 3)))
    norms = losses.gradient_norms(critic, x).numpy()
    np.testing.assert_allclose(norms, np.linalg.norm(w), rtol=1e-6)
    penalty, _ = losses.gradient_penalty(critic, x, x, mg.tensor(np.full(4, 0.3)))
    assert penalty.item() == pytest.approx((np.linalg.norm(w) - 1) ** 2, rel=1e-6)


def test_gradient_penalty_differentiates_through_the_conv_critic():
    """The penalty's gradient with respect to the critic's weights is a second derivative
    through conv2d and leaky_relu (double backward): against finite differences."""
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(2, 1, 4, 4)), rng.normal(size=(2, 1, 4, 4))
    eps = mg.tensor(np.array([0.25, 0.7]))

    def penalty(weight, head):
        def critic(x):
            h = mg.leaky_relu(mg.functional.conv2d(x, weight, padding=1, stride=2), 0.2)
            return h.reshape(len(x), -1) @ head
        return losses.gradient_penalty(critic, mg.tensor(real), mg.tensor(fake), eps)[0]

    weight = mg.tensor(rng.normal(size=(3, 1, 3, 3)), requires_grad=True)
    head = mg.tensor(rng.normal(size=(12,)), requires_grad=True)
    assert mg.gradcheck(penalty, [weight, head], eps=1e-6, atol=1e-6, rtol=1e-5)


# the game ---------------------------------------------------------------------------------

def test_players_have_their_own_settings_and_the_discriminator_comes_first(tmp_path):
    run = trainer.Run("wgan-gp", "toy-8gaussians", out=tmp_path,
                      config=["hidden=16,16", "d_lr=3e-4", "g_lr=1e-4"])
    assert list(run.players) == ["discriminator", "generator"]
    d, g = run.optimizers["discriminator"], run.optimizers["generator"]
    assert d.param_groups[0]["lr"] == 3e-4 and g.param_groups[0]["lr"] == 1e-4
    assert tuple(g.param_groups[0]["betas"]) == (0.0, 0.9)
    wgan = trainer.Run("wgan", "toy-8gaussians", out=tmp_path / "w", config=["hidden=8"])
    assert isinstance(wgan.optimizers["discriminator"], optim.RMSprop)


@pytest.mark.parametrize("name, n_critic", [("gan", 1), ("wgan-gp", 5), ("gan", 3)])
def test_n_critic_discriminator_updates_then_one_generator_update(name, n_critic):
    model = build(name, n_critic=n_critic)
    batches = Batches(POINTS)
    updates = list(model.updates(batches, Generator(0)))
    assert [u.player for u in updates] == ["discriminator"] * n_critic + ["generator"]
    assert batches.count == n_critic + 1  # a new real batch for every update
    assert {"d_real", "d_fake"} <= set(updates[0].logs)


def test_the_generator_loss_sees_the_updated_discriminator(tmp_path):
    """The trainer steps D before G's loss is computed: G's loss equals the loss of a
    fresh G forward through the D after its step."""
    run = trainer.Run("gan", "toy-8gaussians", out=tmp_path, config=["hidden=16"])
    updates = run.model.updates(trainer.StepBatches(run, 0), Generator(5))
    d_update = next(updates)
    before = [p.numpy().copy() for p in run.model.D.parameters()]
    run.optimizers["discriminator"].zero_grad()
    d_update.loss.backward()
    run.optimizers["discriminator"].step()
    g_update = next(updates)
    after = [p.numpy() for p in run.model.D.parameters()]
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))
    z = Generator(5)
    z.normal((64, run.model.latent))  # D's fake noise, then G's
    fake = run.model.G(z.normal((64, run.model.latent)))
    assert g_update.loss.item() == pytest.approx(
        losses.nonsaturating_g(run.model.D(fake)).item(), rel=1e-6)


def test_images_are_scaled_to_minus_one_one_and_back():
    model = build("gan", DIGITS)
    x = np.arange(17, dtype=np.uint8).reshape(1, 1, 1, 17)
    s = model.scale(x)
    np.testing.assert_allclose(s, x / 16 * 2 - 1, rtol=1e-6)
    np.testing.assert_array_equal(model.unscale(s), x)
    np.testing.assert_array_equal(model.unscale(np.array([-1.5, -0.97, 0.97, 2.0])),
                                  [0, 0, 16, 16])


def test_dcgan_matches_the_checked_config():
    """Issue 16's digits config: G Linear 32 -> 512, (128, 2, 2), two k4 s2 p1 transposed
    convs to 8x8; D two k4 s2 p1 convs, Linear 512 -> 1; DCGAN init."""
    model = build("gan", DIGITS, latent=32, channels=64)
    shapes = {n: p.shape for n, p in model.named_parameters()}
    assert shapes["G.body.0.weight"] == (512, 32)
    assert shapes["G.body.4.weight"] == (128, 64, 4, 4)
    assert shapes["G.body.7.weight"] == (64, 1, 4, 4)
    assert shapes["D.body.0.weight"] == (64, 1, 4, 4)
    assert shapes["D.body.2.weight"] == (128, 64, 4, 4)
    assert shapes["D.head.weight"] == (1, 512)
    w = model.G.body[4].weight.numpy()
    assert abs(w.std() - 0.02) < 0.002 and abs(w.mean()) < 0.002
    bn = model.G.body[1].weight.numpy()
    assert abs(bn.mean() - 1) < 0.005 and 0.01 < bn.std() < 0.03
    assert all(not p.numpy().any() for n, p in model.named_parameters()
               if n.endswith("bias"))
    assert model.D(model.G(mg.randn(3, 32))).shape == (3,)


# the tricks --------------------------------------------------------------------------------

def test_feature_matching_matches_mean_features_of_real_and_fake():
    model = build("gan", feature_matching=True)
    batch = Batches(POINTS).next()
    fake = model.G(mg.randn(8, model.latent))
    loss, _ = model.g_loss(fake, batch, Generator(0))
    gap = model.D.features(batch.x).numpy().mean(0) - model.D.features(fake).numpy().mean(0)
    assert loss.item() == pytest.approx(float((gap ** 2).sum()), rel=1e-5)
    same, _ = model.g_loss(batch.x, batch, Generator(0))
    assert same.item() == pytest.approx(0.0, abs=1e-10)
    grads = mg.grad(loss, list(model.G.parameters()))
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert any(np.abs(g.numpy()).max() > 0 for g in grads)


def test_minibatch_discrimination_lets_d_see_the_rest_of_the_batch():
    x = mg.tensor(np.random.default_rng(0).normal(size=(6, 2)).astype(np.float32),
                  requires_grad=True)
    for kernels, sees_batch in ((0, False), (5, True)):
        d = MLPDiscriminator(2, (16,), minibatch_kernels=kernels, generator=Generator(1))
        g, = mg.grad(d(x)[0], [x])
        assert (np.abs(g.numpy()[1:]).max() > 0) == sees_batch
    copies = mg.tensor(np.ones((6, 2), np.float32))
    o = d.minibatch(d.features(copies)).numpy()[:, 16:]
    # each of the 5 others identical: exp(0) each, to float32 rounding (BLAS may round a
    # row of f @ T differently by where the row falls in its blocks: exp(-1 ulp) per other)
    np.testing.assert_allclose(o, 5.0, rtol=1e-6)
    # scored against given others, an example gets what it gets in a batch with them
    alone = d(x[:2], others=x[2:]).numpy()
    for i in range(2):
        batch = mg.concatenate([x[i:i + 1], x[2:]])
        assert alone[i] == pytest.approx(d(batch).numpy()[0], rel=1e-5)


def test_historical_averaging_pulls_towards_the_mean_of_past_parameters():
    model = build("gan", historical_averaging=0.5)
    assert model.history_penalty("generator") == 0.0
    history = []
    for step in range(3):
        for p in model.G.parameters():
            p.data += 0.1 * (step + 1)
        model.after_update("generator")
        history.append([p.numpy().copy() for p in model.G.parameters()])
    for p in model.G.parameters():
        p.data += 1.0
    means = [np.mean(h, axis=0) for h in zip(*history)]
    params = list(model.G.parameters())
    penalty = model.history_penalty("generator")
    assert penalty.item() == pytest.approx(
        0.5 * sum(((p.numpy() - m) ** 2).sum() for p, m in zip(params, means)), rel=1e-5)
    for g, p, m in zip(mg.grad(penalty, params), params, means):
        np.testing.assert_allclose(g.numpy(), 2 * 0.5 * (p.numpy() - m), rtol=1e-4,
                                   atol=1e-6)
    assert model.history_penalty("discriminator") == 0.0  # D has had no update yet


def test_virtual_batch_norm_uses_a_fixed_reference_batch(tmp_path):
    """An example's output does not depend on the rest of its batch (batch norm's does),
    and the reference batch is the same after training, saved with the checkpoint."""
    z = mg.randn(6, 4)
    for spec in (POINTS, DIGITS):
        model = build("gan", spec, virtual_batch_norm=True, reference_size=5)
        alone = model.G(z[:1]).numpy()
        np.testing.assert_allclose(model.G(z).numpy()[:1], alone, rtol=1e-5, atol=1e-6)
        assert "G.reference" in model.state_dict()
    plain = build("gan", DIGITS)  # batch norm: the first example's output moves
    a, b = plain.G(z[:3]).numpy()[0], plain.G(mg.concatenate([z[:1], z[3:]])).numpy()[0]
    assert not np.allclose(a, b, atol=1e-4)
    run = trainer.Run("gan", "toy-8gaussians", out=tmp_path,
                      config=["hidden=16", "virtual_batch_norm=true", "steps=3"])
    reference = run.model.G.reference.numpy().copy()
    run.train(progress=False)
    np.testing.assert_array_equal(run.model.G.reference.numpy(), reference)
    resumed = trainer.Run.from_checkpoint(tmp_path / "checkpoint.npz")
    np.testing.assert_array_equal(resumed.model.G.reference.numpy(), reference)


# WGAN and SN-GAN ----------------------------------------------------------------------------

def test_wgan_clips_the_critics_weights_after_every_update(tmp_path):
    run = trainer.Run("wgan", "toy-8gaussians", out=tmp_path,
                      config=["hidden=16", "steps=2", "clip=0.02", "d_lr=0.1"])
    run.train(progress=False)
    for p in run.model.D.parameters():
        assert np.abs(p.numpy()).max() <= 0.02
    assert any(np.abs(p.numpy()).max() > 0.02 for p in run.model.G.parameters())


def test_spectral_norm_finds_the_largest_singular_value_by_power_iteration():
    layer = SpectralNorm(nn.Conv2d(3, 5, 3, generator=Generator(0)), Generator(1))
    x = mg.randn(2, 3, 6, 6)
    for _ in range(30):
        layer(x)
    w = layer.layer.weight.numpy().reshape(5, -1)
    sigma = np.linalg.svd(w, compute_uv=False)[0]
    assert layer.sigma(update=False).item() == pytest.approx(sigma, rel=1e-4)
    normalised = w / layer.sigma(update=False).item()
    assert np.linalg.svd(normalised, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-4)
    layer.eval()
    u = layer.u.numpy().copy()
    layer(x)
    np.testing.assert_array_equal(layer.u.numpy(), u)  # evaluation leaves u alone
    g, = mg.grad(layer(x).sum(), [layer.layer.weight])
    assert np.isfinite(g.numpy()).all()


def test_sngan_keeps_u_in_its_state_and_every_d_layer_normalised():
    model = build("sngan", DIGITS)
    state = model.state_dict()
    assert {"D.body.0.u", "D.body.2.u", "D.head.u"} <= set(state)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.D.modules())
    assert model.loss_name == "hinge"


# bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, config, key", [
    ("gan", dict(n_critic=0), "n_critic"), ("wgan-gp", dict(n_critic=-1), "n_critic"),
    ("gan", dict(loss="wasserstein"), "loss"), ("gan", dict(label_smoothing=1.0),
                                                 "label_smoothing"),
    ("wgan", dict(clip=0.0), "clip"), ("gan", dict(latent=0), "latent"),
    ("wgan-gp", dict(gp_weight=-1.0), "gp_weight")])
def test_bad_configs_name_the_key(name, config, key):
    with pytest.raises(ValueError, match=key):
        build(name, **config)


class Frozen(GAN):
    """A GAN whose generator has nothing to train."""

    def build_generator(self, generator):
        class Fixed(nn.Module):
            def forward(self, z):
                return z[:, :2]
        return Fixed()


def test_a_player_without_parameters_is_refused():
    with pytest.raises(ValueError, match="generator has no parameters"):
        Frozen(POINTS, Generator(0), hidden=(8,)).players()


def test_cli_refuses_a_label_for_an_unconditional_gan(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "gan", "--data", "toy-8gaussians", "--out", str(out),
                     "--quiet", "--steps", "1", "--config", "hidden=8",
                     "eval_samples=50"]) == 0
    capsys.readouterr()
    assert cli.main(["sample", str(out), "--label", "3"]) == 2
    assert "--label" in capsys.readouterr().err
    assert cli.main(["train", "gan", "--data", "toy-8gaussians", "--out",
                     str(tmp_path / "bad"), "--quiet", "--config", "n_critic=0"]) == 2
    assert "n_critic" in capsys.readouterr().err


# end to end --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["gan", "wgan", "wgan-gp", "sngan"])
def test_train_sample_eval_on_points(name, tmp_path, capsys):
    metrics = train_sample_eval(name, "toy-8gaussians", [
        "--steps", "4", "--config", "hidden=16,16", "eval_samples=200", "eval_every=2"],
        tmp_path, capsys)
    assert {"test_kid_points", "test_modes_hit", "test_high_quality", "test_d_real",
            "test_d_fake"} <= set(metrics)
    assert {"samples.png", "losses.png"} <= set(metrics["pictures"])


@pytest.mark.parametrize("name, extra", [("gan", []), ("wgan-gp", ["n_critic=2"]),
                                         ("gan", ["minibatch_kernels=4",
                                                  "virtual_batch_norm=true",
                                                  "feature_matching=true",
                                                  "historical_averaging=0.01",
                                                  "label_smoothing=0.1"])])
def test_train_sample_eval_on_digits(name, extra, tmp_path, capsys, tiny_classifier):
    metrics = train_sample_eval(name, "digits", [
        "--steps", "3", "--batch-size", "16", "--config", "channels=8", "eval_samples=200",
        *extra], tmp_path, capsys)
    for key in ("fid_local", "kid_local", "is_local", "precision", "recall",
                "classifier_accuracy", "d_real", "d_fake"):
        assert np.isfinite(metrics[f"test_{key}"]), key
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["test_kid_local"] == metrics["test_kid_local"]
    if name == "gan" and not extra:  # the discriminator's features for the linear probe
        capsys.readouterr()
        assert cli.main(["probe", str(tmp_path / "run"), "--quiet"]) == 0
        assert 0.1 < json.loads(capsys.readouterr().out)["linear_probe_acc"] <= 1


def test_samples_png_is_redrawn_at_each_evaluation(tmp_path):
    run = trainer.Run("gan", "toy-rings", out=tmp_path,
                      config=["hidden=8", "steps=4", "eval_every=2", "eval_samples=100"])
    run.train(progress=False, stop_after=2)
    first = (tmp_path / "samples.png").read_bytes()
    assert (tmp_path / "losses.png").is_file()
    run.train(progress=False)
    assert (tmp_path / "samples.png").read_bytes() != first


def test_a_resumed_gan_with_historical_averaging_is_bit_identical(tmp_path):
    config = ["hidden=16", "steps=6", "checkpoint_every=3", "historical_averaging=0.1"]
    whole = trainer.Run("gan", "toy-8gaussians", out=tmp_path / "whole", config=config)
    whole.train(progress=False)
    trainer.train("gan", "toy-8gaussians", out=tmp_path / "parts", config=config,
                  progress=False, stop_after=3)
    resumed = trainer.Run.from_checkpoint(tmp_path / "parts" / "checkpoint.npz")
    resumed.train(progress=False)
    for key, value in whole.state()["params"].items():
        np.testing.assert_array_equal(resumed.state()["params"][key], value)


def test_a_nan_loss_stops_the_run_naming_the_player_and_keeps_the_checkpoint(tmp_path):
    run = trainer.Run("gan", "toy-8gaussians", out=tmp_path,
                      config=["hidden=8", "steps=5", "checkpoint_every=2"])
    run.train(progress=False, stop_after=2)
    saved = (tmp_path / "checkpoint.npz").read_bytes()
    g_loss = run.model.g_loss
    run.model.g_loss = lambda fake, batch, gen: (g_loss(fake, batch, gen)[0] * np.nan, {})
    with pytest.raises(trainer.Diverged, match="step 3: the generator loss became nan"):
        run.train(progress=False)
    assert (tmp_path / "checkpoint.npz").read_bytes() == saved
