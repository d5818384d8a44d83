"""Building blocks: Module and Parameter, containers, layers, activations and initialisers.

    import minigen as mg
    net = mg.nn.Sequential(mg.nn.Linear(784, 256), mg.nn.ReLU(), mg.nn.Linear(256, 10))
    loss = mg.functional.cross_entropy(net(x), y)
"""
from . import init
from .layers import (ELU, GELU, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d,
                     Dropout, Embedding, GroupNorm, Identity, LayerNorm, LeakyReLU, Linear,
                     ReLU, Sigmoid, SiLU, Softplus, Tanh)
from .module import Module, ModuleList, Parameter, Sequential

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose2d", "Dropout", "ELU",
    "Embedding", "GELU", "GroupNorm", "Identity", "LayerNorm", "LeakyReLU", "Linear",
    "Module", "ModuleList", "Parameter", "ReLU", "Sequential", "Sigmoid", "SiLU", "Softplus",
    "Tanh", "init",
]
