"""minigen: deep generative models from scratch on NumPy and CuPy.

    import minigen as mg
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()      # x.grad == [2, 4]
"""
from . import backend, random
from .autograd import (Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad,
                       tensor, unbroadcast)
from .creation import (arange, eye, full, linspace, ones, ones_like, zeros, zeros_like)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .memory import keep_freed_memory
from .ops import *  # noqa: F401,F403  (the op library: mg.exp, mg.sum, mg.einsum, ...)
from .random import rand, randn

# the building blocks, after the op library they are made of
from . import data, distributions, functional, linalg, nn, optim  # noqa: E402
from . import numpy_api  # noqa: E402,F401  (np.sin(t), np.sum(t), ... on Tensors)

float32, float64, int64, int32, bool_ = "float32", "float64", "int64", "int32", "bool"
cuda_available = backend.cuda_available
default_device, set_default_device = backend.default_device, backend.set_default_device

__version__ = "0.1.0"
