"""The engine core: Tensor, Function (one node of the graph) and reverse-mode backward.

A Tensor holds a raw NumPy/CuPy array. Every op is a `Function`: its `forward` runs on raw
arrays, its `backward` is written with Tensor ops, so running backward with graph recording
switched on (`create_graph=True`) builds the graph of the gradient itself, and derivatives
of any order come for free. Backward visits the graph in topological order found by an
explicit stack (no recursion, so a chain of 100,000 ops is fine) and undoes broadcasting in
one place (`_accumulate`), so no op has to.
"""
import weakref

import numpy as np

from . import backend

_FLOATS = (np.float16, np.float32, np.float64)


class _GradMode:
    enabled = True


class no_grad:
    """Context manager (and decorator) under which no graph is recorded."""

    def __init__(self, enabled=False):
        self.enabled = enabled

    def __enter__(self):
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.enabled

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with type(self)(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def enable_grad():
    return no_grad(enabled=True)


def is_grad_enabled():
    return _GradMode.enabled


def is_float(dtype):
    return dtype.type in _FLOATS


class Tensor:
    """An immutable n-d array on a device, optionally recording the ops that made it."""

    __slots__ = ("data", "_requires_grad", "grad", "_node", "__weakref__")
    __array_priority__ = 1000  # so that ndarray (op) Tensor defers to Tensor's operators

    def __init__(self, data, requires_grad=False):
        data = data if isinstance(data, np.ndarray) else _to_array(data)
        if backend.default_device() != "cpu" and backend.is_host(data):
            data = backend.to_device(data, None)  # host values start on the default device
        self.data = data
        self.grad = None
        self._node = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not is_float(self.data.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, "
                            f"not {self.data.dtype}")
        if not value and self._node is not None:
            raise ValueError("requires_grad cannot be switched off on a non-leaf tensor; "
                             "use detach()")
        self._requires_grad = bool(value)

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._node is None)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else ", device='cuda'"
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{dev}{extra})"

    __hash__ = object.__hash__  # by identity; == is elementwise

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __index__(self):
        return int(self.data)

    def __setitem__(self, key, value):
        raise TypeError("Tensors are immutable; build a new one (mg.where, mg.concatenate, "
                        "indexing) or, in an optimizer under no_grad, change .data")

    def numpy(self):
        """The values as a NumPy array on the host (a copy when on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def to(self, device):
        """The same values on `device`; differentiable (gradients flow back across devices)."""
        if backend.check_device(device) == self.device:
            return self
        return ToDevice.apply(self, device=device)

    def detach(self):
        return Tensor._make(self.data, False, None)

    @staticmethod
    def _make(data, requires_grad, node):
        t = Tensor.__new__(Tensor)
        t.data, t._requires_grad, t.grad, t._node = data, requires_grad, None, node
        return t

    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into `leaf.grad` for every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input "
                               "requires_grad=True, or it was computed under no_grad)")
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward: a gradient can only be implied for a scalar "
                                   f"output; this one has shape {self.shape}; pass grad=")
            grad = Tensor._make(backend.xp_of(self.data).ones_like(self.data), False, None)
        grads = _backprop([self], [_as_grad(grad, self)], None, retain_graph, create_graph)
        for leaf, g in grads.items():
            leaf.grad = g if leaf.grad is None else leaf.grad + g


def _to_array(data, dtype=None):
    """Raw array from Python data: floats default to float32, arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if hasattr(data, "__cuda_array_interface__") or isinstance(data, backend.DeviceArray):
        return data if dtype is None else data.astype(dtype)
    try:
        array = np.asarray(data, dtype=dtype)
    except ValueError as e:
        if "inhomogeneous" not in str(e):
            raise
        raise ValueError(f"tensor: nested lists of different lengths (ragged) make no array: "
                         f"{str(e).split('. ', 1)[-1]}") from None
    if array.dtype.kind not in "biufc":
        raise TypeError(f"tensor: expected numbers, got {_describe(data)} (NumPy dtype "
                        f"{array.dtype})")
    from_python = not isinstance(data, (np.ndarray, np.generic))
    if dtype is None and from_python and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array


def _describe(data):
    text = repr(data)
    return text if len(text) <= 40 else f"{type(data).__name__} {text[:37]}..."


def tensor(data, dtype=None, requires_grad=False, device=None):
    """A new leaf tensor holding a copy of `data`. Python floats become float32; arrays
    keep their dtype unless one is given. It is on `device`, else where `data` is if that
    is a device array, else on the default device (backend.set_default_device)."""
    array = _to_array(data, dtype)
    if device is not None or backend.is_host(array):
        array = backend.to_device(array, device)
    if array is data or isinstance(data, Tensor) and array is data.data:
        array = array.copy()  # an optimiser step must never write into the caller's array
    return Tensor(array, requires_grad=requires_grad)


def _as_grad(grad, like):
    grad = grad if isinstance(grad, Tensor) else tensor(grad, dtype=like.dtype)
    if grad.shape != like.shape:
        raise ValueError(f"backward: grad of shape {grad.shape} given for a tensor of shape "
                         f"{like.shape}")
    return grad


class Function:
    """One op of the graph. Subclass it and call `YourOp.apply(*tensors, **params)`.

    `forward(ctx, *arrays, **params)` computes the result from raw arrays; it may keep
    whatever backward needs on `ctx`. `backward(ctx, grad)` returns one gradient Tensor (or
    None) per input, written with Tensor ops so that it is differentiable again. In backward,
    `ctx.inputs` are the input Tensors, `ctx.output` the result Tensor and
    `ctx.needs_input_grad` tells which inputs want a gradient. Gradients may come back in
    the broadcast shape; the engine sums them down to each input's shape.

    An op with several results (affine coupling: the output and its log-determinant, which
    one kernel makes together and whose gradients one kernel takes together) sets
    `outputs = k`; its forward returns k arrays, `apply` returns k Tensors, and its backward
    gets a tuple of k gradients, None for a result that got none, once all of them are
    known (see _backprop).
    """

    inputs = ()
    needs_input_grad = ()
    outputs = 1  # results of forward: a tuple of that many arrays where more than one

    @property
    def output(self):
        return self._output()

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **params):
        for x in inputs:
            if not isinstance(x, Tensor):
                inputs = tuple(x if isinstance(x, Tensor) else tensor(x) for x in inputs)
                break
        arrays = [x.data for x in inputs]
        if len(arrays) > 1:
            kind = type(arrays[0])
            for a in arrays:
                if type(a) is not kind:
                    raise RuntimeError(f"{cls.__name__}: inputs are on different devices "
                                       f"({', '.join(x.device for x in inputs)}); move them "
                                       f"with .to(device) first")
        ctx = cls()
        try:
            out = cls.forward(ctx, *arrays, **params)
        except (ValueError, IndexError, TypeError) as e:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise type(e)(f"{cls.__name__}: {e} (input shapes: {shapes})") from None
        if type(out) is not np.ndarray:
            if cls.outputs != 1:
                return cls._results(ctx, inputs, out)
            out = _to_array(out)
        if _GradMode.enabled and out.dtype.kind == "f":
            needs = tuple([x._requires_grad for x in inputs])
            if True in needs:
                ctx.inputs, ctx.needs_input_grad = inputs, needs
                result = Tensor._make(out, True, ctx)
                ctx._output = weakref.ref(result)
                return result
        return Tensor._make(out, False, None)

    @classmethod
    def _results(cls, ctx, inputs, outs):
        """apply's end for an op of several results: a Tensor for each, the floating-point
        ones recording this node where an input requires grad."""
        if type(outs) is not tuple or len(outs) != cls.outputs:
            raise RuntimeError(f"{cls.__name__}.forward must return a tuple of "
                               f"{cls.outputs} arrays")
        outs = [o if type(o) is np.ndarray else _to_array(o) for o in outs]
        needs = tuple([x._requires_grad for x in inputs])
        if not (_GradMode.enabled and True in needs):
            return tuple(Tensor._make(o, False, None) for o in outs)
        ctx.inputs, ctx.needs_input_grad = inputs, needs
        results = tuple(Tensor._make(o, True, ctx) if o.dtype.kind == "f" else
                        Tensor._make(o, False, None) for o in outs)
        ctx._results = [weakref.ref(r) for r in results]
        return results

    def _release(self):
        """Drop everything this node saved: the graph behind it cannot be walked again."""
        self.__dict__.clear()
        self.inputs = None


class ToDevice(Function):
    @staticmethod
    def forward(ctx, x, device):
        ctx.source = backend.device_of(x)
        return backend.to_device(x, device)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.source)


def _topological_order(roots):
    """Tensors that require grad, reachable from `roots`, inputs before outputs (a
    depth-first post-order: each tensor after all of its inputs), and the set of them."""
    order, seen = [], set()
    for root in reversed(roots):  # the last root first, as a stack of them would
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, _grad_inputs(root))]
        while stack:
            t, pending = stack[-1]
            if pending:
                x = pending.pop()  # the last input first, as a stack of them would
                if x not in seen:
                    seen.add(x)
                    stack.append((x, _grad_inputs(x)))
            else:
                stack.pop()
                order.append(t)
    return order, seen


def _grad_inputs(t):
    """The inputs of t's node that require grad (a list to pop from; none for a leaf)."""
    node = t._node
    if node is None:
        return []
    if node.inputs is None:
        raise RuntimeError("backward through a graph that was already freed by an earlier "
                           "backward; pass retain_graph=True to that one")
    return [x for x in node.inputs if x._requires_grad]


def _accumulate(grads, x, g):
    """Add gradient g into grads[x], first summing away broadcasting and fixing the dtype."""
    data = x.data  # the arrays' attributes, not the Tensor properties: this runs per node
    if g.data.shape != data.shape:
        g = unbroadcast(g, data.shape)
    if g.data.dtype != data.dtype:
        g = g.astype(data.dtype)
    prev = grads.get(x)
    grads[x] = g if prev is None else prev + g


_WAIT = object()


def _gather(node, t, g, reached, waiting):
    """At result t of a node of several results, in _backprop's sweep: _WAIT while others of
    its results are still to come; at the last, the tuple of every result's gradient (None
    where one got none, or is not in the graph being walked), or None if all are None."""
    entry = waiting.get(node)
    if entry is None:
        results = [ref() for ref in node._results]
        left = sum(r is not None and r in reached for r in results)
        entry = waiting[node] = [left, results, [None] * len(results)]
    entry[0] -= 1
    entry[2][next(i for i, r in enumerate(entry[1]) if r is t)] = g
    if entry[0] > 0:
        return _WAIT
    del waiting[node]
    return None if all(x is None for x in entry[2]) else tuple(entry[2])


def unbroadcast(g, shape):
    """Sum g down to `shape`, the inverse of broadcasting `shape` up to g.shape."""
    lead = g.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"gradient of shape {g.shape} cannot belong to shape {shape}")
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and g.shape[lead + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape) if g.shape != tuple(shape) else g


_backward_hook = None  # (node, grad) -> node's input grads; minigen.profiler's timer


def _backprop(roots, root_grads, targets, retain_graph, create_graph):
    """Reverse sweep from `roots`. Returns {tensor: grad} for leaves, or for `targets`."""
    if retain_graph is None:
        retain_graph = create_graph
    order, reached = _topological_order(roots)
    if targets is None:
        wanted = {t for t in order if t._node is None}
    else:
        wanted = set(targets)
        leads = {t for t in order if t in wanted}  # tensors from which a target is reached
        for t in order:
            if t._node is not None and t not in leads and any(x in leads for x in t._node.inputs):
                leads.add(t)
    grads, waiting = {}, {}
    for r, g in zip(roots, root_grads):
        _accumulate(grads, r, g)
    with no_grad(enabled=create_graph):
        for t in reversed(order):
            node = t._node
            g = grads.get(t) if t in wanted else grads.pop(t, None)
            if node is not None and node.outputs != 1:
                # a node of several results runs once, at the last of them in this order,
                # when every consumer of each has given its gradient
                g = _gather(node, t, g, reached, waiting)
                if g is _WAIT:
                    continue
            if node is None or g is None or (targets is not None and t not in leads):
                if node is not None and not retain_graph:
                    node._release()
                continue
            in_grads = node.backward(node, g) if _backward_hook is None else \
                _backward_hook(node, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(node.inputs):
                raise RuntimeError(f"{type(node).__name__}.backward returned {len(in_grads)} "
                                   f"gradients for {len(node.inputs)} inputs")
            for x, gx, need in zip(node.inputs, in_grads, node.needs_input_grad):
                if need and gx is not None:
                    _accumulate(grads, x, gx)
            if not retain_graph:
                node._release()
    return {t: g for t, g in grads.items() if t in wanted}


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False):
    """d(outputs)/d(inputs) as a tuple of Tensors, like torch.autograd.grad.

    Inputs that the outputs do not depend on get zeros. With create_graph=True the results
    are part of the graph and can be differentiated again.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad"
                               + ("" if is_float(x.dtype) else f" (dtype {x.dtype} is not "
                                  "floating-point, so it has no gradient)"))
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    roots, root_grads = [], []
    for y, g in zip(outputs, grad_outputs):
        if not y.requires_grad:
            continue
        if g is None:
            if y.size != 1:
                raise RuntimeError(f"grad: output of shape {y.shape} is not a scalar; "
                                   f"pass grad_outputs=")
            g = Tensor._make(backend.xp_of(y.data).ones_like(y.data), False, None)
        roots.append(y)
        root_grads.append(_as_grad(g, y))
    found = _backprop(roots, root_grads, inputs, retain_graph, create_graph) if roots else {}
    result = []
    for x in inputs:
        g = found.get(x)
        result.append(g if g is not None else
                      Tensor._make(backend.xp_of(x.data).zeros_like(x.data), False, None))
    return tuple(result)
