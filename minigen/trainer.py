"""The one training loop, for every model.

A model gives a loss for a batch; this file does the rest: the optimiser and its schedule,
gradient clipping, a progress bar with the running loss, periodic evaluation, `log.csv`,
`metrics.json`, `samples.png` and atomic checkpoints. A run is a pure function of its seed
and config: the batch of step k is drawn from (seed, k) alone and every piece of state is in
the checkpoint, so a run killed and resumed ends with the same parameters, bit for bit, as
one that was never interrupted.
"""
import csv
import json
import math
import os
import signal
import threading
import time

import numpy as np
from tqdm import tqdm

from . import checkpoint, data, models, optim, pictures
from .autograd import no_grad, tensor
from .random import Generator

SAMPLE_COUNT = 64
HISTOGRAM_SAMPLES = 5000


def data_spec(name, x, y):
    """Describe a loaded dataset for the model: shape of one example, discrete or not."""
    if np.issubdtype(x.dtype, np.floating):
        return models.DataSpec(name, x.shape[1:], "continuous",
                               box=pictures.data_box(x.reshape(len(x), -1)))
    levels = data.levels(name)
    classes = int(y.max()) + 1 if y is not None else None
    return models.DataSpec(name, x.shape[1:], "discrete", levels, classes)


def evaluate(model, x, batch_size, device, y=None):
    """Mean negative log-likelihood per example (nats) of the data x; with labels y, of
    p(x | y) (a conditional model). Text (one 1-D array) is scored in stretches of
    batch_size characters, per character."""
    model.eval()
    total = 0.0
    with no_grad():
        for start in range(0, len(x), batch_size):
            batch = tensor(x[start:start + batch_size], device=device)
            if y is None:
                nll = model.nll(batch)
            else:
                nll = model.nll(batch, labels=tensor(y[start:start + batch_size],
                                                     device=device))
            total += float(nll.numpy().astype(np.float64).sum())
    model.train()
    return total / len(x)


def likelihood_metrics(prefix, nll, spec):
    """nats per example, and bits per dimension for discrete data."""
    out = {f"{prefix}_nll_nats": nll}
    if spec.kind == "discrete":
        out[f"{prefix}_bpd"] = nll / (spec.dims * math.log(2))
    return out


def save_samples(model, spec, path, generator, x_reference, n=SAMPLE_COUNT, labels=None):
    """samples.png: a grid for images, density beside samples for 2-D data (and, for a flow
    with from_uniform, latent_grid.png beside it), density over histograms for 1-D data
    (at least HISTOGRAM_SAMPLES samples: a histogram of 64 says little); text to .txt.
    A conditional model draws the given labels (N,), or by default each class in turn."""
    one_d = spec.kind == "continuous" and spec.shape == (1,)
    model.eval()  # the pictures too: a density drawn in training mode is not the model's
    try:
        with no_grad():
            count = max(n, HISTOGRAM_SAMPLES) if one_d else n
            if getattr(model, "num_classes", None):
                labels = np.arange(count) % model.num_classes if labels is None \
                    else np.broadcast_to(np.asarray(labels, dtype=np.int64), (count,))
                samples = model.sample(count, generator, labels=labels)
            else:
                samples = model.sample(count, generator)
            samples = samples.numpy() if hasattr(samples, "numpy") else np.asarray(samples)

        def log_density(points):
            with no_grad():
                return -model.nll(tensor(points.astype(np.float32))).numpy()

        if spec.is_image:
            pictures.image_grid(samples, path, levels=spec.levels)
        elif spec.kind == "continuous" and spec.shape == (2,):
            box = pictures.data_box(x_reference)
            pictures.density_and_samples(log_density, box, samples, path,
                                         data=x_reference[:2000])
            if hasattr(model, "from_uniform"):
                pictures.latent_grid(model.from_uniform, box,
                                     os.path.join(os.path.dirname(path), "latent_grid.png"))
        elif one_d:
            pictures.density_1d(log_density, pictures.data_box(x_reference), samples, path,
                                data=x_reference)
        else:
            with open(os.path.splitext(path)[0] + ".txt", "w", encoding="utf-8") as f:
                for row in samples:
                    if spec.shape == ():  # text: byte codes, one sample per paragraph
                        f.write(bytes(row.astype(np.uint8)).decode("latin-1") + "\n\n")
                    else:
                        f.write(repr(row.tolist()) + "\n")
    finally:
        model.train()
    return samples


class Run:
    """One training run: its data, model, optimiser and where it writes."""

    def __init__(self, model_name, data_name, seed=0, out=None, device="cpu", data_dir=None,
                 config=(), early_stop=None):
        self.entry = models.get(model_name)
        if data_name not in self.entry.data:
            raise ValueError(f"model {model_name} does not accept data {data_name!r}; it "
                             f"accepts: {', '.join(self.entry.data)}")
        self.config = models.make_config(self.entry, config)
        self.data_name, self.seed, self.device = data_name, seed, device
        self.data_dir, self.early_stop = data_dir, early_stop
        self.out = out or os.path.join("runs", f"{model_name}-{data_name}-{seed}")
        train_split = "train-minus-valid" if early_stop else "train"
        self.x_train, self.y_train = data.load(data_name, train_split, data_dir=data_dir)
        self.x_test, self.y_test = data.load(data_name, "test", data_dir=data_dir)
        self.x_valid, self.y_valid = data.load(data_name, "valid", data_dir=data_dir) \
            if early_stop else (None, None)
        self.spec = data_spec(data_name, self.x_train, self.y_train)
        self.model = self.entry.cls(self.spec, generator=Generator([seed, 0]),
                                    **models.model_config(self.config))
        self.model.to(device)
        self.params = list(self.model.parameters())
        self.optimizer = optim.Adam(self.params, lr=self.config["lr"])
        steps = self.config["steps"]
        self.schedule = optim.warmup_cosine(self.optimizer, self.config["warmup"], steps) \
            if self.config["cosine"] or self.config["warmup"] else None
        # text is one long sequence: a training example is a window of `context` characters,
        # drawn by its start
        self.window = self.config.get("context") if self.spec.shape == () else None
        if self.spec.shape == () and not self.window:
            raise ValueError(f"model {model_name} has no `context` setting, so it cannot "
                             f"read text ({data_name}) as windows of characters")
        starts = len(self.x_train) - (self.window or 1) + 1
        self.sampler = data.BatchSampler(starts, self.config["batch_size"], seed)
        self.generator = Generator([seed, 1])
        self.step = 0
        self.train_seconds = 0.0
        self.best = None

    # checkpoints -----------------------------------------------------------------------
    @property
    def checkpoint_path(self):
        return os.path.join(self.out, "checkpoint.npz")

    def state(self):
        return {"model": self.entry.name, "data": self.data_name, "seed": self.seed,
                "config": self.config, "step": self.step, "early_stop": self.early_stop,
                "train_seconds": self.train_seconds, "params": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict() if self.schedule else None,
                "generator": self.generator.get_state(), "best": self.best}

    def save(self):
        checkpoint.save(self.checkpoint_path, self.state())

    def restore(self, state):
        self.model.load_state_dict(state["params"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.schedule:
            self.schedule.load_state_dict(state["schedule"])
        self.generator.set_state(state["generator"])
        self.step, self.train_seconds, self.best = (state["step"], state["train_seconds"],
                                                    state["best"])

    @classmethod
    def from_checkpoint(cls, path, device="cpu", data_dir=None, out=None, model=None,
                        data_name=None):
        """Rebuild a run (model, optimiser, position) from its checkpoint file; `model` and
        `data_name`, when given, must be what the checkpoint holds."""
        state = checkpoint.load(path)
        for key in ("model", "data", "seed", "config", "params"):
            if key not in state:
                raise checkpoint.CheckpointError(f"{path} has no {key!r}: not a training "
                                                 f"checkpoint")
        for key, wanted in (("model", model), ("data", data_name)):
            if wanted is not None and state[key] != wanted:
                raise checkpoint.CheckpointError(
                    f"{path} holds {key} {state[key]!r}, not {wanted!r}")
        run = cls(state["model"], state["data"], state["seed"],
                  out=out or os.path.dirname(os.path.abspath(path)), device=device,
                  data_dir=data_dir, config=state["config"], early_stop=state["early_stop"])
        run.restore(state)
        return run

    # training --------------------------------------------------------------------------
    def _log(self, row):
        path = os.path.join(self.out, "log.csv")
        new = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", "train_loss", "test_nll_nats",
                                                   "valid_nll_nats", "lr", "seconds"])
            if new:
                writer.writeheader()
            writer.writerow(row)

    def train(self, progress=True, stop_after=None):
        """Train to `config["steps"]`, from wherever the run stands. `stop_after` ends the
        session after that many steps (with a checkpoint), as a kill would."""
        os.makedirs(self.out, exist_ok=True)
        steps, cfg = self.config["steps"], self.config
        end = steps if stop_after is None else min(steps, self.step + stop_after)
        bar = tqdm(total=steps, initial=self.step, desc=f"{self.entry.name} on "
                   f"{self.data_name}", unit="step", disable=not progress, dynamic_ncols=True)
        running, since_log = None, []
        with _interrupt_at_step_boundary() as interrupted:
            while self.step < end and not interrupted:
                started = time.perf_counter()
                index = self.sampler.indices(self.step)
                loss = self.model.loss(self._batch(index), self.generator,
                                       **self._labels(index))
                self.optimizer.zero_grad()
                loss.backward()
                if cfg["clip_grad"] > 0:
                    optim.clip_grad_norm_(self.params, cfg["clip_grad"])
                self.optimizer.step()
                if self.schedule:
                    self.schedule.step()
                value = loss.item()
                if not math.isfinite(value):
                    raise FloatingPointError(f"loss became {value} at step {self.step}")
                self.step += 1
                self.train_seconds += time.perf_counter() - started
                running = value if running is None else 0.98 * running + 0.02 * value
                since_log.append(value)
                bar.update(1)
                bar.set_postfix(loss=f"{running:.4f}", refresh=False)
                self._periodic(since_log)
        bar.close()
        self.save()
        if interrupted:
            print(f"interrupted at step {self.step}; checkpoint saved to "
                  f"{self.checkpoint_path} (continue with --resume)")
            raise KeyboardInterrupt
        return self.step >= steps

    @property
    def conditional(self):
        """Whether the model is p(x | label): it then gets the labels with every batch."""
        return bool(getattr(self.model, "num_classes", None))

    def _batch(self, index):
        """The training examples at `index`: images or points, or for text the windows of
        `context` characters that start there."""
        if self.window is not None:
            index = index[:, None] + np.arange(self.window)
        return tensor(self.x_train[index], device=self.device)

    def _labels(self, index):
        """{"labels": ...} of the examples at `index` for a conditional model, else {}."""
        if not self.conditional:
            return {}
        if self.y_train is None:
            raise ValueError(f"{self.entry.name}: a conditional model needs labelled data; "
                             f"{self.data_name} has no labels")
        return {"labels": tensor(self.y_train[index], device=self.device)}

    def evaluate(self, split="test"):
        """Mean nll per example of this run's test or validation split."""
        x, y = {"test": (self.x_test, self.y_test),
                "valid": (self.x_valid, self.y_valid)}[split]
        return self.evaluate_data(x, y)

    def evaluate_data(self, x, y=None):
        """Mean nll per example of data x (labels y for a conditional model); text is scored
        per character in stretches of whole context windows, so the figure does not depend
        on where the eval batches cut it. For text, eval_batch_size counts windows: a batch
        of 500 characters would be under 4 windows, and a recurrent model steps through
        every window one character at a time."""
        size = self.config["eval_batch_size"]
        if self.window is not None:
            size *= self.window
        if self.conditional and y is None:
            raise ValueError(f"{self.entry.name}: a conditional model is evaluated on "
                             f"labelled data")
        return evaluate(self.model, x, size, self.device, y if self.conditional else None)

    def _periodic(self, since_log):
        cfg, step = self.config, self.step
        row = None
        if cfg["eval_every"] and step % cfg["eval_every"] == 0:
            row = {"test_nll_nats": self.evaluate("test")}
        if self.early_stop and step % self.early_stop == 0:
            valid = self.evaluate("valid")
            row = dict(row or {}, valid_nll_nats=valid)
            if self.best is None or valid < self.best["valid_nll_nats"]:
                self.best = {"step": step, "valid_nll_nats": valid,
                             "params": self.model.state_dict()}
        if row is not None or step == cfg["steps"]:
            row = dict(row or {}, step=step, train_loss=float(np.mean(since_log)),
                       lr=self.optimizer.param_groups[0]["lr"],
                       seconds=round(self.train_seconds, 3))
            since_log.clear()
            self._log(row)
        if cfg["checkpoint_every"] and step % cfg["checkpoint_every"] == 0 \
                and step < cfg["steps"]:
            self.save()

    # results ---------------------------------------------------------------------------
    def finish(self):
        """Test metrics (for the best validation step under early stopping), samples.png
        and metrics.json."""
        metrics = {"model": self.entry.name, "data": self.data_name, "steps": self.step,
                   "seed": self.seed, "params": int(sum(p.size for p in self.params)),
                   "train_seconds": round(self.train_seconds, 3),
                   "seconds_per_step": self.train_seconds / max(self.step, 1),
                   "config": self.config}
        if self.best is not None:
            self.model.load_state_dict(self.best["params"])
            metrics.update(best_step=self.best["step"],
                           valid_nll_nats=self.best["valid_nll_nats"])
        test_nll = self.evaluate("test")
        metrics.update(likelihood_metrics("test", test_nll, self.spec))
        save_samples(self.model, self.spec, os.path.join(self.out, "samples.png"),
                     Generator([self.seed, 2]), self.x_train)
        write_json(os.path.join(self.out, "metrics.json"), metrics)
        return metrics


class _interrupt_at_step_boundary:
    """Ctrl-C asks the loop to stop after the step it is in, so the checkpoint it then
    writes is a consistent state (never parameters updated for a step not counted)."""

    def __enter__(self):
        self.flag = _Flag()
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, lambda *_: self.flag.set())
        return self.flag

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class _Flag:
    def __init__(self):
        self.value = False

    def set(self):
        self.value = True

    def __bool__(self):
        return self.value


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=_jsonable)
        f.write("\n")
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value)} is not JSON serialisable")


def train(model_name, data_name, seed=0, out=None, device="cpu", data_dir=None, config=(),
          early_stop=None, resume=False, progress=True, stop_after=None):
    """Train (or, with resume, continue) a run; returns metrics.json's content when the run
    reached its last step, else None."""
    out = out or os.path.join("runs", f"{model_name}-{data_name}-{seed}")
    path = os.path.join(out, "checkpoint.npz")
    if resume:
        run = Run.from_checkpoint(path, device=device, data_dir=data_dir, out=out,
                                  model=model_name, data_name=data_name)
    else:
        run = Run(model_name, data_name, seed, out, device, data_dir, config, early_stop)
    done = run.train(progress=progress, stop_after=stop_after)
    return run.finish() if done else None
