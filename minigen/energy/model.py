"""The base of the energy models (ebm, jem), and what the score model shares with them.

Shared by all three:
    to_network / from_network   data <-> network scale (DATA.md): K-level images as
                                x / (K - 1) * 2 - 1 in [-1, 1], back with
                                clip(round((s + 1) / 2 * (K - 1)), 0, K - 1); points as they are
    network_box(spec)           where samples live in network scale: [-1, 1] for images,
                                the train data's box (10% margin) for points; Langevin
                                chains start from uniform noise on it
    sample_quality(...)         the same metrics as the GANs (minigen.quality): fid_local,
                                kid_local, is_local, precision, recall on images; on 2-D
                                data kid_points (KID of the points against the held-out
                                ones, both over the held-out RMS) and, on toy-8gaussians and
                                toy-rings, modes_hit and high_quality (mode_coverage)

EnergyModel: an energy E(x) trained by contrastive divergence with SGLD negatives from a
replay buffer (Du & Mordatch 2019); jem adds a classifier's cross-entropy.

    updates()     per step: a real batch x+; chains started from the buffer (buffer.py),
                  sgld_steps SGLD steps on E (step sgld_step, noise sgld_noise, clipped to
                  the box), written back to the buffer: x-; the loss of losses.py
    sample()      SGLD for sample_steps from buffer entries drawn uniformly, every chain
                  (sample_from=buffer: where training left its chains, as JEM's samples
                  are drawn), or from uniform noise (sample_from=noise: what the energy
                  alone makes of noise); the buffer is left as it was
    evaluate()    sample_quality of eval_samples samples drawn with a fixed seed, and the
                  mean energy of held-out data and of the samples (e_real, e_fake)
    draw()        images: a grid; 2-D data: -E(x) as a heat map under the data and the
                  samples (the GANs' decision-surface picture)
    extra_state   the replay buffer, so a resumed run goes on from it
"""
import numpy as np

from .. import data as datasets
from .. import pictures, quality
from ..autograd import no_grad, tensor
from ..gan import pictures as game_pictures
from ..gan.model import check_positive
from ..model import Model, Update
from ..random import Generator
from . import losses
from .buffer import ReplayBuffer
from .langevin import sgld

EVALUATION_SEED = (20190712, 19)   # the noise of every evaluation (NCSN's arXiv date)
SAMPLE_BATCH = 500                 # chains sampled at once
SAMPLE_FROM = ("buffer", "noise")


def to_network(x, spec):
    """Data (a Tensor or NumPy array) in network scale: K-level images in [-1, 1]."""
    if spec.kind == "discrete":
        return x.astype("float32") * (2.0 / (spec.levels - 1)) - 1.0
    return x.astype("float32")


def from_network(s, spec):
    """Network-scale samples (NumPy) back to data: levels for images, points unchanged."""
    if spec.kind == "discrete":
        k = spec.levels - 1
        return np.clip(np.round((s + 1.0) / 2.0 * k), 0, k).astype(np.uint8)
    return np.asarray(s, dtype=np.float32)


def network_box(spec):
    """(low, high) float32 arrays shaped like one example: the box samples live in."""
    if spec.kind == "discrete":
        return (np.full(spec.shape, -1.0, np.float32), np.full(spec.shape, 1.0, np.float32))
    low, high = np.array(spec.box, dtype=np.float32).T
    return low.reshape(spec.shape), high.reshape(spec.shape)


def check_data(model, spec):
    if not (spec.is_image or spec.shape == (2,)):
        raise ValueError(f"{model} models images or 2-D points, not {spec.name} of shape "
                         f"{spec.shape}")
    if spec.kind == "discrete" and not spec.is_image:
        raise ValueError(f"{model}: discrete data must be images")


def sample_quality(samples, held_out, spec):
    """The sample-quality metrics of samples (data format) against held-out data."""
    if spec.is_image:
        return quality.image_quality(samples, spec)
    unit = float(np.sqrt(np.mean(held_out.astype(np.float64) ** 2)))
    metrics = {"kid_points": quality.kid(samples / unit, held_out / unit,
                                         seed=EVALUATION_SEED)}
    modes = datasets.toy_modes(spec.name)
    if modes is not None:
        metrics.update(quality.mode_coverage(samples, modes))
    return metrics


def check_sample_from(value):
    if value not in SAMPLE_FROM:
        raise ValueError(f"sample_from={value!r}: one of {', '.join(SAMPLE_FROM)}")


class EnergyModel(Model):
    """See the module docstring. A subclass builds `net` and defines energy(x) (N,)."""

    validation_goal = "min"
    sampling_keys = ("sample_steps", "sample_from")   # `minigen sample RUN --config ...`

    def __init__(self, spec, generator, hidden=(128, 128, 128), channels=32, sgld_steps=20,
                 sgld_step=2.0, sgld_noise=0.01, buffer_size=10000, buffer_fraction=0.95,
                 alpha=0.1, sample_steps=20, sample_from="buffer", eval_samples=2000):
        super().__init__(spec)
        check_data(type(self).__name__, spec)
        check_sample_from(sample_from)
        if not sgld_noise >= 0:
            raise ValueError(f"sgld_noise={sgld_noise}: the noise's scale must be >= 0")
        if not alpha >= 0:
            raise ValueError(f"alpha={alpha}: the regulariser's weight must be >= 0")
        if int(sample_steps) < 0:
            raise ValueError(f"sample_steps={sample_steps}: must be >= 0")
        self.hidden = tuple(check_positive("hidden", h) for h in hidden)
        self.channels = check_positive("channels", channels)
        self.sgld_steps = check_positive("sgld_steps", sgld_steps)
        self.sgld_step = check_positive("sgld_step", sgld_step, float)
        self.sgld_noise, self.alpha = float(sgld_noise), float(alpha)
        self.sample_steps, self.sample_from = int(sample_steps), sample_from
        self.eval_samples = check_positive("eval_samples", eval_samples)
        self.validation_metric = "kid_local" if spec.is_image else "kid_points"
        self.box = network_box(spec)
        self.net = self.build_network(generator)
        self.buffer = ReplayBuffer(buffer_size, spec.shape, *self.box, buffer_fraction,
                                   generator)

    def set_sampling(self, **settings):
        check_sample_from(settings.get("sample_from", self.sample_from))
        super().set_sampling(**settings)

    def build_network(self, generator):
        raise NotImplementedError

    def energy(self, x):
        raise NotImplementedError

    # training ---------------------------------------------------------------------------
    def langevin(self, starts, steps, generator):
        """SGLD on E from the starts (NumPy, network scale) to the box; a Tensor."""
        return sgld(self.energy, tensor(starts, device=self.device), steps, self.sgld_step,
                    self.sgld_noise, generator, box=self.box, name=f"{self.registry_name} SGLD")

    def negatives(self, n, generator):
        """Du & Mordatch's negatives: chains from the replay buffer (95% of them, else from
        noise), sgld_steps of SGLD, their ends written back to the buffer."""
        starts, indices, _ = self.buffer.draw(n, generator)
        x = self.langevin(starts, self.sgld_steps, generator)
        self.buffer.store(indices, x.numpy())
        return x

    def updates(self, batches, generator):
        batch = batches.next()
        if len(batch.x) > self.buffer.size:
            raise ValueError(f"buffer_size={self.buffer.size} is below the batch of "
                             f"{len(batch.x)}: every step restarts a batch of chains from "
                             f"the replay buffer, which must hold at least that many")
        x_positive = to_network(batch.x, self.spec)
        x_negative = self.negatives(len(x_positive), generator)
        loss, logs = self.loss_terms(batch, x_positive, x_negative)
        yield Update("model", loss, logs)

    def loss_terms(self, batch, x_positive, x_negative):
        """(loss, logs): contrastive divergence with the L2 regulariser."""
        e_positive, e_negative = self.energy(x_positive), self.energy(x_negative)
        loss, cd = losses.contrastive_divergence(e_positive, e_negative, self.alpha)
        return loss, {"cd": cd.item(), "e_real": e_positive.mean().item(),
                      "e_fake": e_negative.mean().item()}

    # samples ----------------------------------------------------------------------------
    def sample_scaled(self, n, generator):
        """n samples in network scale (NumPy), SAMPLE_BATCH chains at a time."""
        out = []
        for start in range(0, n, SAMPLE_BATCH):
            m = min(SAMPLE_BATCH, n - start)
            if self.sample_from == "buffer":
                starts = self.buffer.samples[generator.rng.integers(0, self.buffer.size, m)]
            else:
                starts = self.buffer.noise(m, generator)
            out.append(self.langevin(starts, self.sample_steps, generator).numpy())
        return np.concatenate(out)

    def sample(self, n, generator, labels=None):
        return from_network(self.sample_scaled(n, generator), self.spec)

    def mean_energy(self, x):
        total = 0.0
        with no_grad():
            for start in range(0, len(x), SAMPLE_BATCH):
                part = tensor(np.asarray(x[start:start + SAMPLE_BATCH], np.float32),
                              device=self.device)
                total += float(self.energy(part).numpy().astype(np.float64).sum())
        return total / len(x)

    # evaluation -------------------------------------------------------------------------
    def evaluate(self, batches, final=True):
        held_out = np.concatenate([b.x.numpy() for b in batches])
        samples = self.sample(self.eval_samples, Generator(EVALUATION_SEED))
        metrics = sample_quality(samples, held_out, self.spec)
        metrics["e_real"] = self.mean_energy(to_network(held_out, self.spec))
        metrics["e_fake"] = self.mean_energy(to_network(samples, self.spec))
        return metrics

    # pictures ---------------------------------------------------------------------------
    def draw(self, samples, path, reference):
        """A grid of images, or for 2-D data -E(x) (the log-density up to a constant) as a
        heat map under the data (grey) and the samples (rings)."""
        if self.spec.is_image:
            pictures.image_grid(samples, path, levels=self.spec.levels)
        else:
            game_pictures.decision_surface(self.negative_energy, pictures.data_box(reference),
                                           samples, path, data=reference[:2000],
                                           what="-E(x)")

    def negative_energy(self, points):
        out = []
        with no_grad():
            for start in range(0, len(points), SAMPLE_BATCH):
                part = tensor(points[start:start + SAMPLE_BATCH].astype(np.float32),
                              device=self.device)
                out.append(-self.energy(part).numpy())
        return np.concatenate(out)

    # state ------------------------------------------------------------------------------
    def extra_state(self):
        return {"buffer": self.buffer.state_dict()}

    def load_extra_state(self, state):
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
