"""The base of every GAN: two players, their updates in the game's order, the metrics of
sample quality and the pictures of the game. A GAN model subclasses `GAN` and registers
its defaults; the trainer stays the one loop (minigen/model.py's contract).

    players()      {"discriminator": ..., "generator": ...}: each with its own optimiser,
                   lr and betas (config keys d_lr, g_lr, d_betas, g_betas, optimizer);
                   the discriminator is first. A player without parameters is an error.
    updates()      per step: n_critic discriminator updates, each on a new real batch and
                   a new fake batch (the fake without gradient to G), then one generator
                   update on a new fake batch. The trainer steps each player's optimiser
                   before the next loss is computed, so G sees the updated D.
    after_update   historical averaging's running means; a WGAN clips its weights here
                   (override and call super).
    evaluate()     the sample-quality metrics (minigen.quality), the same code for every
                   model: on images fid_local, kid_local (x 1000), is_local, precision,
                   recall on the features of minigen's own classifier of the dataset; on
                   2-D data kid_points (the same KID on the points against the held-out
                   points, both divided by the held-out points' RMS) and, on
                   toy-8gaussians and toy-rings, modes_hit and high_quality (the
                   mode-collapse check). Always d_real and d_fake, D's
                   mean output (a probability for the original game, the critic value
                   otherwise) on held-out real data and on samples. eval_samples samples
                   from a fixed seed: the same weights always give the same figures.
    sample()       uint8 images at the data's levels, or float points
    features()     D's last hidden layer on real data, for `minigen probe`
    draw()         samples.png (a grid; for 2-D data D's decision surface under the real
                   and generated points) and losses.png beside it from the run's log.csv
                   (both losses, D's mean outputs on real and fake, over the steps)

What a subclass overrides (each a method of its own, so a trick or a model changes one):

    build_generator(generator)        -> Module, z (N, latent) -> fake in network scale
    build_discriminator(generator)    -> Module, x -> (N,), with features(x) -> (N, F)
    noise(n, generator)               z ~ N(0, I), (n, latent)
    generate(z, batch=None)           G(z) (a conditional model reads batch.labels)
    discriminate(x, batch=None)       D(x), (N,)
    d_loss(real, fake, batch, gen)    (loss, logs) of one discriminator update
    g_loss(fake, batch, gen)          (loss, logs) of the generator update
    scale(x) / unscale(s)             data <-> network scale: K-level images as
                                      x / (K - 1) * 2 - 1, back with
                                      clip(round((s + 1) / 2 * (K - 1)), 0, K - 1);
                                      continuous points unchanged
    d_output(values)                  what d_real/d_fake report: sigmoid for the
                                      original game, the value itself otherwise

Config keys of the base (a registered model lists the ones it offers): loss (minimax,
nonsaturating, wasserstein, hinge), latent, hidden (MLP widths, 2-D data), channels
(DCGAN width, images), n_critic, d_lr, g_lr, d_betas, g_betas, optimizer (adam or
rmsprop), d_batch_norm, g_norm (batch, virtual, none), spectral_norm, eval_samples, and
Salimans et al.'s tricks: feature_matching, minibatch_kernels, historical_averaging,
label_smoothing, virtual_batch_norm (g_norm=virtual with a fixed reference batch);
self_attention (SAGAN's block at half size in the DCGAN G and D, images only).
"""
import csv
import os

import numpy as np

from .. import data as datasets
from .. import pictures, quality
from . import pictures as game_pictures
from ..autograd import no_grad, tensor
from ..model import Batch, Model, Player, Update
from ..ops import sigmoid
from ..random import Generator
from . import losses
from .networks import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,
                       dcgan_init)

EVALUATION_SEED = (20140610, 16)   # the noise of every evaluation (the GAN paper's date)
SAMPLE_BATCH = 500                 # generator and discriminator passes at evaluation
SURFACE_CONTEXT = 63               # the batch a point of the decision surface is scored in
OPTIMIZERS = ("adam", "rmsprop")


def check_positive(key, value, kind=int):
    value = kind(value)
    if not value > 0:
        raise ValueError(f"{key}={value}: must be positive")
    return value


class GAN(Model):
    """See the module docstring."""

    validation_goal = "min"
    pictures_at_evaluation = True

    def __init__(self, spec, generator, loss="nonsaturating", latent=32,
                 hidden=(128, 128, 128), channels=64, n_critic=1, d_lr=2e-4, g_lr=2e-4,
                 d_betas=(0.5, 0.999), g_betas=(0.5, 0.999), optimizer="adam",
                 d_batch_norm=True, g_norm="batch", spectral_norm=False, eval_samples=2000,
                 feature_matching=False, minibatch_kernels=0, historical_averaging=0.0,
                 label_smoothing=0.0, virtual_batch_norm=False, reference_size=64,
                 self_attention=False):
        super().__init__(spec)
        if loss not in losses.D_LOSSES:
            raise ValueError(f"loss={loss!r}: one of {', '.join(losses.D_LOSSES)}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={optimizer!r}: one of {', '.join(OPTIMIZERS)}")
        if not (spec.is_image or spec.shape == (2,)):
            raise ValueError(f"{type(self).__name__} models images or 2-D points, not "
                             f"{spec.name} of shape {spec.shape}")
        if spec.kind == "discrete" and not spec.is_image:
            raise ValueError(f"{type(self).__name__}: discrete data must be images")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={label_smoothing}: the real target is "
                             f"1 - label_smoothing, so it must be in [0, 1)")
        if label_smoothing and loss not in ("minimax", "nonsaturating"):
            raise ValueError(f"label_smoothing applies to the original game's labels, not "
                             f"to loss={loss}")
        if historical_averaging < 0:
            raise ValueError(f"historical_averaging={historical_averaging}: the weight of "
                             f"the penalty must be >= 0")
        if self_attention and not spec.is_image:
            raise ValueError(f"self_attention=true: SAGAN's block attends over the pixels "
                             f"of an image; {spec.name} is {spec.dims}-D points")
        if int(minibatch_kernels) < 0:
            raise ValueError(f"minibatch_kernels={minibatch_kernels}: must be >= 0")
        self.loss_name = loss
        self.latent = check_positive("latent", latent)
        self.n_critic = check_positive("n_critic", n_critic)
        self.hidden = tuple(check_positive("hidden", h) for h in hidden)
        self.channels = check_positive("channels", channels)
        self.d_lr, self.g_lr = check_positive("d_lr", d_lr, float), \
            check_positive("g_lr", g_lr, float)
        self.d_betas, self.g_betas = tuple(d_betas), tuple(g_betas)
        self.optimizer = optimizer
        self.d_batch_norm, self.spectral_norm = bool(d_batch_norm), bool(spectral_norm)
        self.g_norm = "virtual" if virtual_batch_norm else g_norm
        self.reference_size = check_positive("reference_size", reference_size)
        self.eval_samples = check_positive("eval_samples", eval_samples)
        self.feature_matching = bool(feature_matching)
        self.minibatch_kernels = int(minibatch_kernels)
        self.historical_averaging = float(historical_averaging)
        self.label_smoothing = float(label_smoothing)
        self.self_attention = bool(self_attention)
        self.validation_metric = "kid_local" if spec.is_image else "kid_points"
        self.G = self.build_generator(generator)
        self.D = self.build_discriminator(generator)
        self.averages = {}  # historical averaging: player -> (count, [mean array per param])

    # networks ---------------------------------------------------------------------------
    def build_generator(self, generator):
        if self.spec.is_image:
            return dcgan_init(DCGANGenerator(self.latent, self.spec.shape, self.channels,
                                             self.g_norm, self.reference_size, generator,
                                             self.self_attention), generator)
        return MLPGenerator(self.latent, self.hidden, self.spec.dims,
                            "none" if self.g_norm == "batch" else self.g_norm,
                            self.reference_size, generator)

    def build_discriminator(self, generator):
        if self.spec.is_image:
            return dcgan_init(DCGANDiscriminator(self.spec.shape, self.channels,
                                                 self.d_batch_norm, self.minibatch_kernels,
                                                 self.spectral_norm, generator,
                                                 self.self_attention), generator)
        return MLPDiscriminator(self.spec.dims, self.hidden, self.minibatch_kernels,
                                self.spectral_norm, generator)

    # the players -------------------------------------------------------------------------
    def players(self):
        players = {}
        for name, net, lr, betas in (("discriminator", self.D, self.d_lr, self.d_betas),
                                     ("generator", self.G, self.g_lr, self.g_betas)):
            params = [p for p in net.parameters() if p.requires_grad]
            if not params:
                raise ValueError(f"{type(self).__name__}: the {name} has no parameters to "
                                 f"train; a two-player game needs both players to learn")
            players[name] = Player(params, self.optimizer, lr,
                                   betas if self.optimizer == "adam" else None)
        return players

    def noise(self, n, generator):
        return generator.normal((n, self.latent), device=self.device)

    def generate(self, z, batch=None):
        return self.G(z)

    def discriminate(self, x, batch=None):
        return self.D(x)

    def scale(self, x):
        """Data (a Tensor or NumPy array) as the networks see it: K-level images in
        [-1, 1], points unchanged."""
        if self.spec.kind == "discrete":
            return x.astype("float32") * (2.0 / (self.spec.levels - 1)) - 1.0
        return x.astype("float32")

    def unscale(self, s):
        """Network outputs (NumPy) back to data: levels for images, points unchanged."""
        if self.spec.kind == "discrete":
            k = self.spec.levels - 1
            return np.clip(np.round((s + 1.0) / 2.0 * k), 0, k).astype(np.uint8)
        return s.astype(np.float32)

    def d_output(self, values):
        """D's output as the logs report it: D(x) = sigmoid(l) in the original game."""
        return sigmoid(values) if self.loss_name in ("minimax", "nonsaturating") else values

    # the game ---------------------------------------------------------------------------
    def d_loss(self, real, fake, batch, generator):
        """One discriminator loss and its logs, on a real and a fake batch."""
        d_real, d_fake = self.discriminate(real, batch), self.discriminate(fake, batch)
        if self.loss_name in ("minimax", "nonsaturating"):
            loss = losses.minimax_d(d_real, d_fake, self.label_smoothing)
        else:
            loss = losses.D_LOSSES[self.loss_name](d_real, d_fake)
        return loss, self.output_logs(d_real, d_fake)

    def output_logs(self, d_real, d_fake):
        with no_grad():
            return {"d_real": self.d_output(d_real).mean().item(),
                    "d_fake": self.d_output(d_fake).mean().item()}

    def g_loss(self, fake, batch, generator):
        """The generator's loss and its logs; with feature_matching, Salimans et al.'s
        eq. (sec. 3.1): ||E_data f(x) - E_z f(G(z))||^2 on D's last hidden features."""
        if self.feature_matching:
            real_features = self.D.features(self.scale(batch.x)).mean(axis=0).detach()
            gap = real_features - self.D.features(fake).mean(axis=0)
            return (gap * gap).sum(), {}
        return losses.G_LOSSES[self.loss_name](self.discriminate(fake, batch)), {}

    def updates(self, batches, generator):
        for _ in range(self.n_critic):
            batch = batches.next()
            real = self.scale(batch.x)
            with no_grad():
                fake = self.generate(self.noise(len(real), generator), batch)
            loss, logs = self.d_loss(real, fake, batch, generator)
            yield Update("discriminator", loss + self.history_penalty("discriminator"), logs)
        batch = batches.next()
        fake = self.generate(self.noise(len(batch.x), generator), batch)
        loss, logs = self.g_loss(fake, batch, generator)
        yield Update("generator", loss + self.history_penalty("generator"), logs)

    # historical averaging (Salimans et al. 2016, sec. 3.3) ------------------------------
    def history_penalty(self, player):
        """lambda ||theta - mean of the past theta||^2 over the player's parameters (0
        without historical averaging, or before the player's first update)."""
        if not self.historical_averaging or player not in self.averages:
            return 0.0
        _, means = self.averages[player]
        params = self.player_parameters(player)
        total = 0.0
        for p, mean in zip(params, means):
            d = p - tensor(mean, device=p.device)
            total = total + (d * d).sum()
        return self.historical_averaging * total

    def player_parameters(self, player):
        return list((self.D if player == "discriminator" else self.G).parameters())

    def after_update(self, player):
        if self.historical_averaging:
            params = self.player_parameters(player)
            count, means = self.averages.get(player, (0, [np.zeros_like(p.numpy())
                                                          for p in params]))
            count += 1
            for p, mean in zip(params, means):
                mean += (p.numpy() - mean) / count
            self.averages[player] = (count, means)

    def extra_state(self):
        return {"averages": {k: {"count": c, "means": m} for k, (c, m) in
                             self.averages.items()}}

    def load_extra_state(self, state):
        self.averages = {k: (v["count"], [np.array(a) for a in v["means"]])
                         for k, v in state.get("averages", {}).items()}

    # samples ----------------------------------------------------------------------------
    def generate_scaled(self, n, generator, labels=None):
        """n samples in network scale (NumPy), SAMPLE_BATCH at a time."""
        out = []
        with no_grad():
            for start in range(0, n, SAMPLE_BATCH):
                m = min(SAMPLE_BATCH, n - start)
                batch = None if labels is None else _label_batch(labels[start:start + m],
                                                                 self.device)
                out.append(self.generate(self.noise(m, generator), batch).numpy())
        return np.concatenate(out)

    def sample(self, n, generator, labels=None):
        return self.unscale(self.generate_scaled(n, generator, labels))

    def d_means(self, x):
        """D's mean output over data x (network scale, NumPy), SAMPLE_BATCH at a time."""
        total = 0.0
        with no_grad():
            for start in range(0, len(x), SAMPLE_BATCH):
                part = tensor(x[start:start + SAMPLE_BATCH], device=self.device)
                total += float(self.d_output(self.discriminate(part)).numpy()
                               .astype(np.float64).sum())
        return total / len(x)

    # evaluation ---------------------------------------------------------------------------
    def evaluate(self, batches, final=True):
        held_out = np.concatenate([b.x.numpy() for b in batches])
        generator = Generator(EVALUATION_SEED)
        samples = self.sample(self.eval_samples, generator)
        metrics = {}
        if self.spec.is_image:
            metrics.update(quality.image_quality(samples, self.spec))
        else:
            unit = float(np.sqrt(np.mean(held_out.astype(np.float64) ** 2)))
            metrics["kid_points"] = quality.kid(samples / unit, held_out / unit,
                                                seed=EVALUATION_SEED)
            modes = datasets.toy_modes(self.spec.name)
            if modes is not None:
                metrics.update(quality.mode_coverage(samples, modes))
        metrics["d_real"] = self.d_means(self.scale(held_out))
        metrics["d_fake"] = self.d_means(self.scale(samples))
        return metrics

    def features(self, x):
        """D's last hidden layer on data x, for the linear probe (`minigen probe`): DCGAN
        (Radford et al. 2016, sec. 5.1) used its discriminator as a feature extractor."""
        return self.D.features(self.scale(x))

    # pictures -----------------------------------------------------------------------------
    def draw(self, samples, path, reference):
        """samples.png: a grid of images, or for 2-D data D's decision surface under the
        real (grey) and generated (blue) points; losses.png beside it from log.csv."""
        if self.spec.is_image:
            pictures.image_grid(samples, path, levels=self.spec.levels)
        else:
            game_pictures.decision_surface(self.surface, pictures.data_box(reference), samples,
                                      path, data=reference[:2000])
        log = find_log(path)
        if log is not None:
            draw_losses(log, os.path.join(os.path.dirname(path), "losses.png"))

    def surface(self, points):
        """D's output at (M, 2) points, for the decision-surface picture. With minibatch
        discrimination D's output depends on the batch: each point is scored as if it came
        into a batch of SURFACE_CONTEXT generated samples."""
        out = []
        with no_grad():
            others = None
            if getattr(self.D, "minibatch", None) is not None:
                others = tensor(self.generate_scaled(SURFACE_CONTEXT, Generator(
                    EVALUATION_SEED)), device=self.device)
            for start in range(0, len(points), SAMPLE_BATCH):
                part = tensor(points[start:start + SAMPLE_BATCH].astype(np.float32),
                              device=self.device)
                values = self.D(part, others) if others is not None else \
                    self.discriminate(part)
                out.append(self.d_output(values).numpy())
        return np.concatenate(out)


def _label_batch(labels, device):
    return Batch(None, tensor(np.asarray(labels), device=device))


def find_log(path):
    """The run's log.csv for a picture at path: beside it, or, for a picture drawn in a
    scratch folder inside the run folder, one level up."""
    folder = os.path.dirname(os.path.abspath(path))
    for candidate in (folder, os.path.dirname(folder)):
        log = os.path.join(candidate, "log.csv")
        if os.path.isfile(log):
            return log
    return None


LOSS_CURVES = (("discriminator_loss", "D loss"), ("generator_loss", "G loss"))
OUTPUT_CURVES = (("d_real", "D on real"), ("d_fake", "D on fake"))


def draw_losses(log, path):
    """losses.png from log.csv: both players' losses (top) and D's mean outputs on real
    and fake batches (bottom) over the steps; nothing when the log has under two rows."""
    with open(log, newline="") as f:
        rows = list(csv.DictReader(f))

    def series(key):
        points = [(float(r["step"]), float(r[key])) for r in rows
                  if r.get(key) not in (None, "")]
        return np.array(points).reshape(-1, 2)

    panels = [[(label, series(key)) for key, label in group]
              for group in (LOSS_CURVES, OUTPUT_CURVES)]
    if sum(len(s) for _, s in panels[0]) < 2:
        return
    game_pictures.line_panels(panels, path, x_label="step")
