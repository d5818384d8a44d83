"""Module: a callable holding Parameters, buffers and sub-Modules, found by attribute.

A module registers nothing by hand: every attribute that is a Parameter or a Module is one
of its parameters or children, in the order the attributes were first assigned. Only
buffers (tensors that move with the module but are not trained) are declared, with
`register_buffer`: persistent ones, such as BatchNorm's running statistics, are saved in
state_dict; non-persistent ones, such as a fixed mask that __init__ rebuilds, are not.
"""
import numpy as np

from .. import backend
from ..autograd import Tensor, _to_array


class Parameter(Tensor):
    """A Tensor that a Module trains: a floating-point leaf that requires grad."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        data = data.data if isinstance(data, Tensor) else _to_array(data)
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter(" + super().__repr__()[len("tensor("):]


class Module:
    """Base class of every layer and model: subclass it, assign layers and Parameters as
    attributes in __init__ (after super().__init__()), and write forward()."""

    def __init__(self):
        self.training = True
        self._buffer_names = []
        self._non_persistent = set()

    def __getattr__(self, name):
        # only reached when normal lookup fails
        if name in ("training", "_buffer_names", "_non_persistent"):
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}: did its "
                                 f"__init__ forget to call super().__init__()?")
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def register_buffer(self, name, tensor, persistent=True):
        """Keep `tensor` as self.<name>, moved by to(), not trained; saved in state_dict
        unless persistent=False (state that __init__ makes again, such as a fixed mask)."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor, not "
                            f"{type(tensor).__name__}")
        if tensor.device == "cpu" != backend.default_device():
            tensor = tensor.to(backend.default_device())  # with the parameters made beside it
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        setattr(self, name, tensor)

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix=""):
        """Every module in the tree, this one first (named ""), each once, with dotted names."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            stack.extend(reversed([(f"{name}.{child}" if name else child, m)
                                   for child, m in module.named_children()]))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def _named_tensors(self, own):
        seen = set()
        for prefix, module in self.named_modules():
            for name, tensor in own(module):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    yield (f"{prefix}.{name}" if prefix else name), tensor

    @staticmethod
    def _own_parameters(module):
        return ((n, v) for n, v in vars(module).items() if isinstance(v, Parameter))

    @staticmethod
    def _own_buffers(module):
        return ((n, getattr(module, n)) for n in module._buffer_names)

    def named_parameters(self):
        """(dotted name, Parameter) for every parameter in the tree, each once."""
        return self._named_tensors(self._own_parameters)

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self):
        return self._named_tensors(self._own_buffers)

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    def _named_state(self):
        return self._named_tensors(lambda m: [
            *self._own_parameters(m),
            *((n, b) for n, b in self._own_buffers(m) if n not in m._non_persistent)])

    def state_dict(self):
        """{dotted name: NumPy array copy} of every parameter and persistent buffer, module
        by module."""
        return {name: np.array(t.numpy(), copy=True) for name, t in self._named_state()}

    def load_state_dict(self, state, strict=True):
        """Copy the arrays of `state` into the parameters and persistent buffers of the same
        names.

        Shapes must match. With strict=True the names must match exactly as well; otherwise
        names on one side only are skipped. Returns (missing_keys, unexpected_keys).
        """
        own = dict(self._named_state())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        mismatched = [f"{k}: checkpoint {np.shape(state[k])}, model {own[k].shape}"
                      for k in own if k in state and np.shape(state[k]) != own[k].shape]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatched))
        if problems:
            raise ValueError(f"load_state_dict into {type(self).__name__}: "
                             + "; ".join(problems))
        for name, t in own.items():
            if name in state:
                value = np.array(backend.to_numpy(_to_array(state[name])), dtype=t.dtype)
                t.data = backend.to_device(value, t.device)
        return missing, unexpected

    def train(self, mode=True):
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def to(self, device):
        """Move every parameter, its gradient and every buffer to `device`, in place."""
        device = backend.check_device(device)
        for t in list(self.parameters()) + list(self.buffers()):
            t.data = backend.to_device(t.data, device)
            if t.grad is not None:
                t.grad = t.grad.to(device)
        return self

    def extra_repr(self):
        """The arguments shown inside this module's repr, e.g. "3, 4, bias=True"."""
        return ""

    def __repr__(self):
        children = [f"  ({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + "\n" + "\n".join(children) + "\n)"


class ModuleList(Module):
    """A list of Modules whose parameters belong to the owner (a plain list hides them);
    their names are "0", "1", ... ."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__} holds Modules, not "
                            f"{type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __len__(self):
        return sum(1 for _ in self.children())

    def __iter__(self):
        return self.children()

    def __getitem__(self, index):
        modules = list(self.children())
        return ModuleList(modules[index]) if isinstance(index, slice) else modules[index]


class Sequential(ModuleList):
    """Modules applied one after another."""

    def __init__(self, *modules):
        super().__init__(modules)

    def __getitem__(self, index):
        item = super().__getitem__(index)
        return Sequential(*item) if isinstance(index, slice) else item

    def forward(self, x):
        for module in self.children():
            x = module(x)
        return x
