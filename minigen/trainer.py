"""The one training loop, for every model.

A model (minigen.model.Model) gives the updates of a step, each a loss for one of its
players; this file does the rest: the players' optimisers and their schedules, gradient
clipping, the parameter EMA, a progress bar with the mean loss of the log period,
periodic evaluation, `log.csv`, `metrics.json`, `samples.png` and atomic checkpoints. A run
is a pure function of its seed and config: the batch of step k is drawn from (seed, k) alone
and every piece of state is in the checkpoint (the log period's sums included), so a run
killed and resumed ends with the same parameters, bit for bit, and the same log.csv, as one
that was never interrupted.

A run stops early in two ways, each its own exception: `Interrupted` on SIGINT or SIGTERM
(at a step boundary, after writing a checkpoint) and `Diverged` on a loss that is not finite
(the last checkpoint, a good one, is kept as it is).
"""
import contextlib
import csv
import io
import json
import math
import os
import signal
import threading
import time

import numpy as np
from tqdm import tqdm

from . import backend, checkpoint, data, models, optim, pictures, runfolder
from . import model as model_contract
from .autograd import no_grad, tensor
from .model import Batch
from .random import Generator

SAMPLE_COUNT = 64


def data_spec(name, x, y):
    """Describe a loaded dataset for the model: shape of one example, discrete or not."""
    if np.issubdtype(x.dtype, np.floating):
        return models.DataSpec(name, x.shape[1:], "continuous",
                               box=pictures.data_box(x.reshape(len(x), -1)))
    levels = data.levels(name)
    classes = int(y.max()) + 1 if y is not None else None
    return models.DataSpec(name, x.shape[1:], "discrete", levels, classes)


def evaluate(model, examples, batch_size, device, final=True):
    """The model's own metrics (a dict of means per example) on `examples` (data.Examples,
    or an array read as such), in batches of batch_size examples, with the model in eval
    mode."""
    if not isinstance(examples, data.Examples):
        examples = data.Examples(examples, window=model.text_window)
    batches = (Batch(tensor(x, device=device), None if y is None else tensor(y, device=device))
               for x, y in examples.stretches(batch_size))
    model.eval()
    try:
        return model.evaluate(batches, final=final)
    finally:
        model.train()


def prefixed(prefix, metrics, spec=None):
    """metrics under {prefix}_key. For text (spec of shape ()) a dimension is a character:
    bpd is bits per character, and is given again as bpc."""
    out = {f"{prefix}_{key}": value for key, value in metrics.items()}
    if spec is not None and spec.shape == () and "bpd" in metrics:
        out[f"{prefix}_bpc"] = metrics["bpd"]
    return out


def likelihood_metrics(prefix, nll, spec):
    """nats per example, and bits per dimension for discrete data, as {prefix}_..."""
    return prefixed(prefix, model_contract.likelihood_metrics(nll, spec), spec)


class Diverged(FloatingPointError):
    """A loss that is not finite: the run stops, and its last checkpoint stays as it was."""


class Interrupted(KeyboardInterrupt):
    """The run stopped on a signal (signum: SIGINT or SIGTERM)."""

    def __init__(self, signum, message):
        super().__init__(message)
        self.signum = signum


def sample_examples(model, n, generator, labels=None):
    """n samples of the model in eval mode, as data: uint8 levels (N,) + shape for discrete
    data, float32 for continuous data. A conditional model draws the given labels (an int
    or (n,)), by default each class in turn."""
    if n < 1:
        raise ValueError(f"the number of samples must be at least 1, got {n}")
    kwargs = {}
    if model.num_classes:
        kwargs["labels"] = np.arange(n) % model.num_classes if labels is None \
            else np.broadcast_to(np.asarray(labels, dtype=np.int64), (n,))
    model.eval()
    try:
        with no_grad():
            samples = np.asarray(model.sample(n, generator, **kwargs))
    finally:
        model.train()
    return samples.astype(np.uint8 if model.spec.kind == "discrete" else np.float32)


def draw_samples(model, spec, path, generator, reference, n=SAMPLE_COUNT, labels=None):
    """Samples of the model and their picture at path (model.draw: a grid of images, a
    density beside samples, ...); as many as the picture needs (a 1-D histogram: at least
    pictures.HISTOGRAM_SAMPLES). Returns the samples."""
    samples = sample_examples(model, pictures.sample_count(spec, n), generator, labels)
    model.eval()  # the pictures too: a density drawn in training mode is not the model's
    try:
        model.draw(samples, path, reference)
    finally:
        model.train()
    return samples


def make_optimizer(player, config):
    """The optimiser of one player: its own lr and betas, or the run's."""
    lr = config["lr"] if player.lr is None else player.lr
    if player.optimizer == "adam":
        betas = config["betas"] if player.betas is None else player.betas
        return optim.Adam(player.parameters, lr=lr, betas=tuple(betas), **player.options)
    if player.optimizer == "rmsprop":
        return optim.RMSprop(player.parameters, lr=lr, **player.options)
    if player.optimizer == "sgd":
        return optim.SGD(player.parameters, lr=lr, **player.options)
    raise ValueError(f"unknown optimizer {player.optimizer!r}; expected adam, rmsprop or sgd")


class StepBatches:
    """The batches of one training step, for model.updates: the first is the batch of
    (seed, step) that every run draws; a further one (a critic's second update) comes from
    a sampler of its own, (seed, k) for the k-th batch of the step."""

    def __init__(self, run, step):
        self.run, self.step, self.count = run, step, 0

    def next(self):
        index = self.run.sampler(self.count).indices(self.step)
        self.count += 1
        x, y = self.run.train_set.take(index)
        device = self.run.device
        return Batch(tensor(x, device=device), None if y is None else tensor(y, device=device))


class Run:
    """One training run: its data, model, optimisers and where it writes."""

    def __init__(self, model_name, data_name, seed=0, out=None, device=None, data_dir=None,
                 config=(), early_stop=None):
        self.entry = models.get(model_name)
        if not (isinstance(seed, (int, np.integer)) and seed >= 0):
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if early_stop is not None and early_stop < 1:
            raise ValueError(f"early_stop must be a number of steps >= 1, got {early_stop}")
        if data_name not in self.entry.data:
            raise ValueError(f"model {model_name} does not accept data {data_name!r}; it "
                             f"accepts: {', '.join(self.entry.data)}")
        self.config = models.make_config(self.entry, config)
        device = backend.check_device(device)  # None: the default device
        self.data_name, self.seed, self.device = data_name, seed, device
        self.data_dir, self.early_stop = data_dir, early_stop
        self.out = os.fspath(out or default_out(model_name, data_name, seed))
        train_split = "train-minus-valid" if early_stop else "train"
        self.x_train, self.y_train = data.load(data_name, train_split, data_dir=data_dir)
        self.x_test, self.y_test = data.load(data_name, "test", data_dir=data_dir)
        self.x_valid, self.y_valid = data.load(data_name, "valid", data_dir=data_dir) \
            if early_stop else (None, None)
        self.spec = data_spec(data_name, self.x_train, self.y_train)
        self.model = self.entry.cls(self.spec, generator=Generator([seed, 0]),
                                    **models.model_config(self.config))
        self.model.to(device)
        self.model.set_training_split(self.x_train, self.y_train)
        self.params = list(self.model.parameters())
        self.train_set = data.Examples(self.x_train, self.y_train, self.model.text_window,
                                       data_name)
        self.players = self.model.players()
        self.optimizers = {name: make_optimizer(player, self.config)
                           for name, player in self.players.items()}
        steps = self.config["steps"]
        self.schedules = {name: optim.warmup_cosine(opt, self.config["warmup"], steps)
                          for name, opt in self.optimizers.items()} \
            if self.config["cosine"] or self.config["warmup"] else {}
        self.ema = optim.EMA(self.params, self.config["ema"]) if self.config["ema"] else None
        self._samplers = {}
        self.generator = Generator([seed, 1])
        self.step = 0
        self.saved_step = None  # the step of the checkpoint on disk, once this run wrote one
        self.train_seconds = 0.0
        self.best = None
        self.period = {}  # key -> [sum, count] of the step logs since log.csv's last row
        self._log_fields = None  # log.csv's header, once read: a row is appended unread
        self.last_loss = {}  # player -> (step, its last finite loss), for a divergence

    def sampler(self, k):
        """The batch sampler of the k-th batch of every step (k = 0: the run's own)."""
        if k not in self._samplers:
            seed = self.seed if k == 0 else (self.seed, k)
            self._samplers[k] = data.BatchSampler(len(self.train_set),
                                                  self.config["batch_size"], seed)
        return self._samplers[k]

    # checkpoints -----------------------------------------------------------------------
    @property
    def checkpoint_path(self):
        return os.path.join(self.out, "checkpoint.npz")

    def state(self):
        return {"model": self.entry.name, "data": self.data_name, "seed": self.seed,
                "config": self.config, "step": self.step, "early_stop": self.early_stop,
                "train_seconds": self.train_seconds, "params": self.model.state_dict(),
                "model_state": self.model.extra_state(),
                "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                "schedules": {name: s.state_dict() for name, s in self.schedules.items()},
                "ema": self.ema.state_dict() if self.ema else None,
                "generator": self.generator.get_state(), "best": self.best,
                "log_period": self.period}

    def save(self):
        checkpoint.save(self.checkpoint_path, self.state())
        self.saved_step = self.step

    def restore(self, state):
        self.model.load_state_dict(state["params"])
        self.model.load_extra_state(state["model_state"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, schedule in self.schedules.items():
            schedule.load_state_dict(state["schedules"][name])
        if self.ema:
            self.ema.load_state_dict(state["ema"])
        self.generator.set_state(state["generator"])
        self.step, self.train_seconds, self.best = (state["step"], state["train_seconds"],
                                                    state["best"])
        self.period = state.get("log_period", {})
        self.saved_step = self.step

    @classmethod
    def from_checkpoint(cls, path, device=None, data_dir=None, out=None, model=None,
                        data_name=None):
        """Rebuild a run (model, optimisers, position) from its checkpoint file; `model` and
        `data_name`, when given, must be what the checkpoint holds."""
        state = checkpoint.load(path)
        for key in ("model", "data", "seed", "config", "params", "optimizers"):
            if key not in state:
                raise checkpoint.CheckpointError(f"{path} has no {key!r}: not a training "
                                                 f"checkpoint of this version of minigen")
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
    def loss_name(self, player):
        return "train_loss" if len(self.players) == 1 else f"{player}_loss"

    def train(self, progress=True, stop_after=None):
        """Train to `config["steps"]`, from wherever the run stands. `stop_after` ends the
        session after that many steps (with a checkpoint), as a kill would. SIGINT and
        SIGTERM stop it after the step it is in, with a checkpoint: Interrupted."""
        os.makedirs(self.out, exist_ok=True)
        self._trim_log()
        steps = self.config["steps"]
        end = steps if stop_after is None else min(steps, self.step + stop_after)
        bar = tqdm(total=steps, initial=self.step, desc=f"{self.entry.name} on "
                   f"{self.data_name}", unit="step", disable=not progress, dynamic_ncols=True)
        with _stop_at_step_boundary() as stop:
            try:
                while self.step < end and stop.signum is None:
                    started = time.perf_counter()
                    logs = self._train_step()
                    self.step += 1
                    self.train_seconds += time.perf_counter() - started
                    self._add_to_period(logs)
                    bar.update(1)
                    bar.set_postfix(self._bar_losses(), refresh=False)
                    self._periodic()
            finally:
                bar.close()
            self.save()
        if stop.signum is not None:
            name = signal.Signals(stop.signum).name
            raise Interrupted(stop.signum, f"stopped by {name} at step {self.step} of "
                              f"{steps}; checkpoint saved to {self.checkpoint_path} "
                              f"(continue with --resume)")
        return self.step >= steps

    @property
    def log_every(self):
        """Steps per row of log.csv: the log_every config key, by default about 100 rows."""
        return self.config["log_every"] or max(1, self.config["steps"] // 100)

    def _add_to_period(self, logs):
        """Sum a step's logs into the log period's (sum, count) of each key."""
        for key, value in logs.items():
            total = self.period.setdefault(key, [0.0, 0])
            total[0] += value
            total[1] += 1

    def _period_means(self):
        return {key: total / count for key, (total, count) in self.period.items()}

    def _bar_losses(self):
        """Each player's mean loss over the log period: the figure log.csv's row gets."""
        means = self._period_means()
        return {"loss" if len(self.players) == 1 else player:
                f"{means[self.loss_name(player)]:.4f}"
                for player in self.players if self.loss_name(player) in means}

    def _train_step(self):
        """Every update of one step, in the model's order: for each, zero_grad, backward,
        clipping, the player's optimiser step and the model's after_update; then the
        schedules and the EMA. Returns the step's logs (each player's mean loss, and the
        numbers the model logged). A loss that is not finite stops the run (Diverged)
        before it reaches the parameters."""
        losses, logs = {}, {}
        for update in self.model.updates(StepBatches(self, self.step), self.generator):
            value = update.loss.item()
            if not math.isfinite(value):
                raise self._diverged(update.player, value)
            optimizer = self.optimizers[update.player]
            optimizer.zero_grad()
            update.loss.backward()
            if self.config["clip_grad"] > 0:
                optim.clip_grad_norm_(self.players[update.player].parameters,
                                      self.config["clip_grad"])
            optimizer.step()
            self.model.after_update(update.player)
            losses.setdefault(update.player, []).append(value)
            logs.update({k: float(v) for k, v in update.logs.items()})
        for schedule in self.schedules.values():
            schedule.step()
        if self.ema:
            self.ema.update()
        missing = set(self.players) - set(losses)
        if missing and self.step == 0:
            raise ValueError(f"{self.entry.name}.updates gave no update of player(s) "
                             f"{sorted(missing)} in the first step")
        for player, values in losses.items():
            self.last_loss[player] = (self.step + 1, values[-1])
        return {**{self.loss_name(p): float(np.mean(v)) for p, v in losses.items()}, **logs}

    def _diverged(self, player, value):
        step, lr = self.step + 1, self.config["lr"]
        last = self.last_loss.get(player)
        last = f"last finite loss {last[1]:.6g} at step {last[0]}" if last else \
            "no finite loss before it in this session"
        kept = f"the checkpoint of step {self.saved_step} in {self.checkpoint_path} is kept" \
            if self.saved_step is not None else "no checkpoint was written"
        who = f"the {player} loss" if len(self.players) > 1 else "the loss"
        return Diverged(f"{self.entry.name} diverged at step {step}: {who} became {value} "
                        f"({last}); {kept}. Try a lower learning rate than {lr:g} (e.g. "
                        f"--lr {lr / 10:g} --overwrite)")

    @contextlib.contextmanager
    def evaluation_weights(self):
        """Inside the block the model holds the weights it is evaluated and sampled with:
        the parameter EMA where the run keeps one (--config ema=...), else its own."""
        if self.ema is None:
            yield
        else:
            with self.ema.average_parameters():
                yield

    def evaluate(self, split="test", final=False):
        """The model's metrics on this run's test or validation split."""
        x, y = {"test": (self.x_test, self.y_test),
                "valid": (self.x_valid, self.y_valid)}[split]
        return self.evaluate_data(x, y, final)

    def evaluate_data(self, x, y=None, final=True):
        """The model's metrics (a dict of means per example, under the model's own keys) on
        data x with labels y, with the evaluation weights. For text, eval_batch_size counts
        windows: a batch of 500 characters would be under 4 windows, and a recurrent model
        steps through every window one character at a time."""
        if self.model.num_classes and y is None:
            raise ValueError(f"{self.entry.name}: a conditional model is evaluated on "
                             f"labelled data")
        examples = data.Examples(x, y, self.model.text_window, self.data_name)
        with self.evaluation_weights():
            return evaluate(self.model, examples, self.config["eval_batch_size"], self.device,
                            final)

    def _periodic(self):
        """After a step: the evaluations that are due, a row of log.csv every log_every
        steps (and with every evaluation), a checkpoint every checkpoint_every steps."""
        cfg, step = self.config, self.step
        row = {}
        evaluated = cfg["eval_every"] and step % cfg["eval_every"] == 0
        if evaluated:
            row.update(prefixed("test", self.evaluate("test"), self.spec))
        if self.early_stop and step % self.early_stop == 0:
            valid = self.evaluate("valid")
            row.update(prefixed("valid", valid, self.spec))
            metric, value = self.model.validation_metric, valid[self.model.validation_metric]
            better = self.best is None or (value < self.best["value"]
                                           if self.model.validation_goal == "min"
                                           else value > self.best["value"])
            if better:
                with self.evaluation_weights():
                    params = self.model.state_dict()
                self.best = {"step": step, "metric": f"valid_{metric}", "value": value,
                             "params": params}
        if row or step % self.log_every == 0 or step == cfg["steps"]:
            row = {"step": step, **self._period_means(), **row,
                   "lr": next(iter(self.optimizers.values())).param_groups[0]["lr"],
                   "seconds": round(self.train_seconds, 3)}
            self.period = {}
            self._log(row)
        if evaluated and self.model.pictures_at_evaluation:
            self.draw_pictures()
        if cfg["checkpoint_every"] and step % cfg["checkpoint_every"] == 0 \
                and step < cfg["steps"]:
            self.save()

    @property
    def log_path(self):
        return os.path.join(self.out, "log.csv")

    def _log(self, row):
        """One row of log.csv; a column that appears later (the first evaluation) widens
        the file's header, the earlier rows left empty there."""
        if self._log_fields is None:
            self._log_fields = self._read_log()[0]
        fields = self._log_fields
        new = [k for k in row if k not in fields]
        if new or not fields:
            self._write_log(fields + new, self._read_log()[1])
            self._log_fields = fields = fields + new
        with open(self.log_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=fields).writerow(row)

    def _read_log(self):
        """log.csv's header and rows; a last row that a kill cut short is left out."""
        if not os.path.exists(self.log_path):
            return [], []
        with open(self.log_path, newline="") as f:
            text = f.read()
        if not text.endswith("\n"):
            text = text[:text.rfind("\n") + 1]
        reader = csv.DictReader(text.splitlines(keepends=True))
        return list(reader.fieldnames or []), list(reader)

    def _write_log(self, fields, rows):
        checkpoint.write_atomically(self.log_path,
                                    lambda f: f.write(_csv_text(fields, rows).encode()))

    def _trim_log(self):
        """Rows after the step the run stands at were logged by a session killed after its
        last checkpoint (and a last row may be cut short): the steps it redoes log them
        again."""
        self._log_fields = None
        fields, rows = self._read_log()
        kept = [row for row in rows if row.get("step", "").isdigit()
                and int(row["step"]) <= self.step]
        if fields:
            with open(self.log_path, newline="") as f:
                if f.read() != _csv_text(fields, kept):
                    self._write_log(fields, kept)

    # results ---------------------------------------------------------------------------
    def draw_pictures(self):
        """samples.png and the model's companions to it, with the evaluation weights;
        returns their names. Drawn apart, then moved in: metrics.json lists every picture
        of the run (reconstructions.png, losses.png, ...). No pictures for a model that draws
        no samples."""
        if not self.model.draws_samples:
            return []
        with self.evaluation_weights(), runfolder.scratch(self.out) as drawn:
            draw_samples(self.model, self.spec, os.path.join(drawn, "samples.png"),
                         Generator([self.seed, 2]), self.x_train)
            names = sorted(os.listdir(drawn))
            for name in names:
                os.replace(os.path.join(drawn, name), os.path.join(self.out, name))
        return names

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
            if self.ema:  # the best weights were the averaged ones: evaluate them as they are
                self.ema = None
            metrics.update({"best_step": self.best["step"], "early_stop_metric":
                            self.best["metric"], self.best["metric"]: self.best["value"]})
        metrics.update(prefixed("test", self.evaluate("test", final=True), self.spec))
        metrics["pictures"] = self.draw_pictures()
        write_json(os.path.join(self.out, "metrics.json"), metrics)
        return metrics


class _stop_at_step_boundary:
    """SIGINT (Ctrl-C) and SIGTERM (timeout, job schedulers, pre-emption) ask the loop to
    stop after the step it is in, so the checkpoint it then writes is a consistent state
    (never parameters updated for a step not counted) and no write is cut short."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.signum, self.previous = None, {}
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self.previous[signum] = signal.signal(signum, self._stop)
        return self

    def _stop(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _csv_text(fields, rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def write_json(path, obj):
    text = json.dumps(obj, indent=2, default=_jsonable) + "\n"
    checkpoint.write_atomically(path, lambda f: f.write(text.encode()))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value)} is not JSON serialisable")


def default_out(model_name, data_name, seed):
    return os.path.join("runs", f"{model_name}-{data_name}-{seed}")


def train(model_name, data_name, seed=0, out=None, device=None, data_dir=None, config=(),
          early_stop=None, resume=False, overwrite=False, progress=True, stop_after=None):
    """Train (or, with resume, continue) a run in its own run folder (minigen.runfolder:
    locked, and refused where it holds another run unless `overwrite`); returns
    metrics.json's content when the run reached its last step, else None."""
    out = os.fspath(out or default_out(model_name, data_name, seed))
    with runfolder.claim(out, resume=resume, overwrite=overwrite) as folder:
        if resume:
            run = Run.from_checkpoint(folder.file("checkpoint.npz"), device=device,
                                      data_dir=data_dir, out=out, model=model_name,
                                      data_name=data_name)
        else:
            run = Run(model_name, data_name, seed, out, device, data_dir, config, early_stop)
            if overwrite:
                folder.clear()
            run.save()  # from its first step on, a run folder holds a run it can resume
        done = run.train(progress=progress, stop_after=stop_after)
        return run.finish() if done else None
