"""The model registry: every model registers a name, a one-line description, the data it
accepts and its default config; the trainer and the command line find models here.

A model is a subclass of `minigen.model.Model` (the contract: players, updates, evaluate,
sample, draw, and the optional capabilities), built as `Model(spec, generator, **config)`
from a `DataSpec` and the model's own config keys. Config values given on the command line
are parsed to the type of their default; a tuple default's elements to the type of its
first element (`hidden=256,256`, `betas=0.5,0.999`).
"""
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


MODELS = {}


class ConfigError(ValueError):
    pass

# the trainer's own settings; every model has them, with these defaults unless it says more
# (betas: Adam's, for every player that does not set its own; ema: the decay of a parameter
# average used for evaluation and samples, 0 for none)
TRAINING_DEFAULTS = {"steps": 1000, "batch_size": 64, "lr": 1e-3, "clip_grad": 0.0,
                     "warmup": 0, "cosine": False, "eval_every": 0, "checkpoint_every": 500,
                     "eval_batch_size": 500, "betas": (0.9, 0.999), "ema": 0.0}


def register(name, description, data, **config):
    """Class decorator: make a model known to `minigen train NAME`."""
    def add(cls):
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        if not issubclass(cls, Model):
            raise TypeError(f"model {name!r}: {cls.__name__} must subclass minigen.model.Model "
                            f"(the contract the trainer calls)")
        MODELS[name] = Entry(name, cls, description, tuple(data),
                             {**TRAINING_DEFAULTS, **config})
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
            return int(text)
        if isinstance(default, float):
            return float(text)
        if default is None or isinstance(default, str):
            return text
    except ConfigError:
        raise
    except ValueError as e:
        raise ConfigError(f"--config {key}={text}: {e}") from None
    raise TypeError(f"config {key} has a default of unsupported type {type(default)}")


def make_config(entry, overrides=()):
    """The entry's default config with `key=value` strings (or a dict) applied; an unknown
    key is an error that lists the valid ones."""
    config = dict(entry.config)
    items = overrides.items() if isinstance(overrides, dict) else \
        (_split_override(o) for o in overrides)
    for key, value in items:
        if key not in config:
            raise ConfigError(f"unknown config key {key!r} for model {entry.name}; valid keys: "
                           f"{', '.join(sorted(config))}")
        config[key] = _parse_value(key, value, config[key]) if isinstance(value, str) \
            and not isinstance(config[key], str) else value
    return config


def _split_override(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--config expects key=value, got {text!r}")
    return key.strip(), value.strip()


def model_config(config):
    """The part of a config that the model's constructor takes (not the trainer's)."""
    return {k: v for k, v in config.items() if k not in TRAINING_DEFAULTS}
