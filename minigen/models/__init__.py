"""The model registry: every model registers a name, a one-line description, the data it
accepts and its default config; the trainer and the command line find models here.

A model is a subclass of `minigen.model.Model` (the contract: players, updates, evaluate,
sample, draw, and the optional capabilities), built as `Model(spec, generator, **config)`
from a `DataSpec` and the model's own config keys. Config values given on the command line
are parsed to the type of their default; a tuple default's elements to the type of its
first element (`hidden=256,256`, `betas=0.5,0.999`).

A model declares the numbers its config keys allow, as intervals written as in
mathematics, and make_config checks every value (each element of a tuple) against them, so
a bad value is an error naming the key and the range, never a crash inside the model:

    @register("made", ..., hidden=(512, 512), num_masks=1,
              ranges={"hidden": "[1, inf)", "num_masks": "[1, inf)"})
"""
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..model import Model


@dataclass
class DataSpec:
    """What a model needs to know about its data."""
    name: str
    shape: tuple          # one example: (C, H, W) for images, (D,) for vectors, (T,) text
    kind: str             # "discrete" (integer levels) or "continuous"
    levels: int = None    # number of values of a discrete dimension (2 when binary)
    num_classes: int = None
    box: tuple = None     # continuous data: ((low, high), ...) per dimension, from train data

    @property
    def dims(self):
        return int(np.prod(self.shape))

    @property
    def is_image(self):
        return len(self.shape) == 3


@dataclass
class Entry:
    name: str
    cls: type
    description: str
    data: tuple
    config: dict = field(default_factory=dict)
    ranges: dict = field(default_factory=dict)  # key -> Range of its numbers


MODELS = {}


class ConfigError(ValueError):
    pass


class Range:
    """The numbers a setting allows, an interval written as in mathematics: "[1, inf)"
    (1 and up), "(0, inf)" (above 0), "[0, 1)" (0 up to, not including, 1). NaN is in
    none; infinity only where a closed end says so."""

    def __init__(self, text):
        match = re.fullmatch(r"\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*", text)
        if not match:
            raise ValueError(f"range {text!r}: expected an interval such as '[1, inf)'")
        self.text = text.strip()
        self.low, self.high = float(match[2]), float(match[3])
        self.low_open, self.high_open = match[1] == "(", match[4] == ")"

    def __contains__(self, value):
        if math.isnan(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self):
        """'>= 1', '> 0', or the interval itself where both ends bound."""
        if self.high == math.inf and self.high_open:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {self.text}"

    def problem(self, name, value):
        """What is wrong with `value` for the setting `name` ("" where the message names it
        already), None where nothing is."""
        if value in self:
            return None
        finite = "finite and " if not math.isfinite(value) else ""
        return f"{name} must be {finite}{self}, got {value}".lstrip()


# the trainer's own settings; every model has them, with these defaults unless it says more
# (betas: Adam's, for every player that does not set its own; ema: the decay of a parameter
# average used for evaluation and samples, 0 for none; log_every: steps per row of log.csv,
# 0 for steps // 100 (about 100 rows a run))
TRAINING_DEFAULTS = {"steps": 1000, "batch_size": 64, "lr": 1e-3, "clip_grad": 0.0,
                     "warmup": 0, "cosine": False, "eval_every": 0, "checkpoint_every": 500,
                     "eval_batch_size": 500, "betas": (0.9, 0.999), "ema": 0.0,
                     "log_every": 0}
TRAINING_RANGES = {"steps": "[1, inf)", "batch_size": "[1, inf)", "lr": "(0, inf)",
                   "clip_grad": "[0, inf)", "warmup": "[0, inf)", "eval_every": "[0, inf)",
                   "checkpoint_every": "[0, inf)", "eval_batch_size": "[1, inf)",
                   "betas": "[0, 1)", "ema": "[0, 1)", "log_every": "[0, inf)"}


def register(name, description, data, ranges=None, **config):
    """Class decorator: make a model known to `minigen train NAME`, with its default config
    and the ranges of its numeric keys (see the module docstring)."""
    def add(cls):
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        if not issubclass(cls, Model):
            raise TypeError(f"model {name!r}: {cls.__name__} must subclass minigen.model.Model "
                            f"(the contract the trainer calls)")
        defaults = {**TRAINING_DEFAULTS, **config}
        declared = {key: Range(text) for key, text in {**TRAINING_RANGES,
                                                       **(ranges or {})}.items()}
        for key in set(declared) - set(defaults):
            raise ValueError(f"model {name!r}: a range for {key!r}, which is no config key")
        entry = Entry(name, cls, description, tuple(data), defaults, declared)
        for key, value in defaults.items():
            _check_range(entry, key, value, None)
        MODELS[name] = entry
        cls.registry_name = name
        return cls
    return add


def get(name):
    _import_all()
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def list_models():
    _import_all()
    return [MODELS[k] for k in sorted(MODELS)]


def _import_all():
    """Import every module of this package: each registers its own models."""
    import importlib
    import pkgutil
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def _parse_value(key, text, default):
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, (tuple, list)):
            element = type(default[0]) if len(default) else int
            return tuple(_parse_value(key, v.strip(), element()) for v in text.split(",")
                         if v.strip())
        if isinstance(default, int):
            try:
                return int(text)
            except ValueError:
                raise ValueError("expected an integer") from None
        if isinstance(default, float):
            try:
                return float(text)
            except ValueError:
                raise ValueError("expected a number") from None
        if default is None or isinstance(default, str):
            return text
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"--config {key}={text}: {e}") from None
    raise TypeError(f"config {key} has a default of unsupported type {type(default)}")


def make_config(entry, overrides=()):
    """The entry's default config with `key=value` strings (or a dict) applied; an unknown
    key is an error that lists the valid ones, a number outside its key's range an error
    that names both."""
    config = dict(entry.config)
    items = overrides.items() if isinstance(overrides, dict) else \
        (_split_override(o) for o in overrides)
    for key, value in items:
        if key not in config:
            raise ConfigError(f"unknown config key {key!r} for model {entry.name}; valid keys: "
                           f"{', '.join(sorted(config))}")
        text = value if isinstance(value, str) and not isinstance(config[key], str) else None
        config[key] = _parse_value(key, value, config[key]) if text is not None else value
        _check_range(entry, key, config[key], f"{key}={text}" if text is not None else None)
    return config


def _check_range(entry, key, value, given):
    """A ConfigError unless value (each element of a tuple) is in key's declared range."""
    if key not in entry.ranges:
        return
    for element in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(element, (int, float, np.number)) and not isinstance(element, bool):
            problem = entry.ranges[key].problem(key, element)
            if problem:
                where = f"--config {given} ({entry.name})" if given else \
                    f"{entry.name} config {key}={value!r}"
                raise ConfigError(f"{where}: {problem}")


def _split_override(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--config expects key=value, got {text!r}")
    return key.strip(), value.strip()


def model_config(config):
    """The part of a config that the model's constructor takes (not the trainer's)."""
    return {k: v for k, v in config.items() if k not in TRAINING_DEFAULTS}
