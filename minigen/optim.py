"""Optimisers, gradient clipping, learning-rate schedules and a parameter EMA.

    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    schedule = mg.optim.warmup_cosine(opt, warmup_steps=100, total_steps=10_000)
    for batch in batches:
        opt.zero_grad()
        loss(batch).backward()
        mg.optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()

Each optimiser applies exactly torch.optim's update equations (written out in its
docstring), in place on the raw parameter arrays and in the parameter's own dtype, so a
model trains here as it would there. Parameters whose `.grad` is None are left alone.
`state_dict()` holds only NumPy arrays, Python numbers and lists, so a checkpoint restores
training bit for bit.
"""
import contextlib
import math

import numpy as np

from . import backend
from .autograd import Tensor, enable_grad, no_grad
from .kernels import adam as adam_kernels

__all__ = ["EMA", "SGD", "Adam", "AdamW", "LRSchedule", "LambdaLR", "Optimizer", "RMSprop",
           "clip_grad_norm_", "warmup_cosine"]


def _is_array(value):
    return isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__")


def _host_copy(array):
    """A NumPy copy that later in-place updates of `array` cannot reach."""
    return backend.to_numpy(array).copy()


def _array_like(saved, param, what):
    """A saved array as a fresh array on the parameter's device, in its dtype."""
    saved = np.asarray(saved)
    if saved.shape != param.shape:
        raise ValueError(f"{what}: saved array of shape {saved.shape} for a parameter of "
                         f"shape {param.shape}")
    return backend.to_device(saved.astype(param.dtype, copy=True), param.device)


def _param_list(params, owner):
    params = [params] if isinstance(params, Tensor) else list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: parameter {i} is a {type(p).__name__}, not a Tensor")
    return params


class Optimizer:
    """The shared machinery: param groups, the step loop, zero_grad and the state dict.

    `params` is an iterable of Tensors or, as in torch, of dicts `{"params": [...], "lr":
    ...}` (param groups) whose entries override the optimiser's defaults. A subclass
    writes `_update(p, g, state, group)`: change the raw array p in place given its
    gradient array g, keeping whatever it needs between steps in the dict `state`.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.param_groups = []
        self.state = {}  # Tensor -> dict of that parameter's buffers and step count
        groups = [params] if isinstance(params, Tensor) else list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        name = type(self).__name__
        params = _param_list(group["params"], name)
        seen = {p for g in self.param_groups for p in g["params"]}
        for p in params:
            if not p.is_leaf:
                raise ValueError(f"{name}: cannot optimise a non-leaf Tensor (shape "
                                 f"{p.shape}); optimise the leaves it was computed from")
            if p in seen:
                raise ValueError(f"{name}: a parameter (shape {p.shape}) appears twice")
            seen.add(p)
        self.param_groups.append({**self.defaults, **group, "params": params})

    def zero_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure`, if given, is
        called first (with gradients on) to recompute the loss, which step returns."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p.data, p.grad.data, self.state.setdefault(p, {}),
                                     group)
        return loss

    def _update(self, p, g, state, group):
        raise NotImplementedError

    def _params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """{"state": one dict per parameter (in group order), "param_groups": the
        hyperparameters with "params" as positions into that list}. Arrays are NumPy
        copies: training on afterwards does not change a state dict already taken."""
        state = [{k: _host_copy(v) if _is_array(v) else v
                  for k, v in self.state.get(p, {}).items()} for p in self._params()]
        groups, start = [], 0
        for group in self.param_groups:
            n = len(group["params"])
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(start, start + n))})
            start += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        name = f"{type(self).__name__}.load_state_dict"
        saved_groups = state_dict["param_groups"]
        sizes = [len(g["params"]) for g in self.param_groups]
        saved_sizes = [len(g["params"]) for g in saved_groups]
        if sizes != saved_sizes:
            raise ValueError(f"{name}: the saved param groups hold {saved_sizes} parameters, "
                             f"this optimiser's {sizes}")
        params = self._params()
        self.state = {}
        for i, (p, saved) in enumerate(zip(params, state_dict["state"])):
            if saved:
                self.state[p] = {k: _array_like(v, p, f"{name}, parameter {i}, {k!r}")
                                 if _is_array(v) else v for k, v in saved.items()}
        for group, saved in zip(self.param_groups, saved_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})


def _check(name, **values):
    for key, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name}: {key} must be >= 0, got {value}")


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

        g = grad + weight_decay * p
        buf = g on the first step, then momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf          (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0,
                 dampening=0.0):
        _check("SGD", lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=weight_decay, dampening=dampening))

    def _update(self, p, g, state, group):
        momentum = group["momentum"]
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                # a copy: g may be the gradient array itself, which other tensors share
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p -= group["lr"] * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), with weight decay as an L2 term added to the gradient.

        g = grad + weight_decay * p
        m = m + (1 - beta1) * (g - m)             (m = beta1 m + (1 - beta1) g, as lerp)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        name = type(self).__name__
        _check(name, lr=lr, eps=eps, weight_decay=weight_decay)
        if not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{name}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            xp = backend.xp_of(p)
            state.update(step=0, exp_avg=xp.zeros_like(p), exp_avg_sq=xp.zeros_like(p))
        state["step"] += 1
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # the fused kernel where it takes the dtype (kernels/adam: the same bits), else its
        # reference, the update written out in array operations
        version = backend.kernel("adam", p) or adam_kernels.reference
        version.update(p, g, m, v, lr, beta1, beta2, group["eps"], state["step"], wd,
                       self.decoupled_weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): before the Adam step,
    p = p * (1 - lr * weight_decay); the gradient itself carries no decay term."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), with optional momentum and L2 weight decay.

        g = grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        buf = momentum * buf + g / (sqrt(v) + eps);  p = p - lr * buf     (momentum > 0)
        p = p - lr * g / (sqrt(v) + eps)                                  (otherwise)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        _check("RMSprop", lr=lr, alpha=alpha, eps=eps, momentum=momentum,
               weight_decay=weight_decay)
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, momentum=momentum,
                                      weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        xp = backend.xp_of(p)
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["square_avg"] = xp.zeros_like(p)
            if momentum:
                state["momentum_buffer"] = xp.zeros_like(p)
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * g * g
        avg = xp.sqrt(v) + group["eps"]
        if momentum:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += g / avg
            p -= group["lr"] * buf
        else:
            p -= group["lr"] * (g / avg)


def clip_grad_norm_(params, max_norm):
    """Scale the gradients so that their joint L2 norm is at most `max_norm`, as torch:
    each grad is multiplied by max_norm / (norm + 1e-6) when that is below 1. Returns the
    norm before clipping, as a float."""
    params = _param_list(params, "clip_grad_norm_")
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return 0.0
    xp = backend.xp_of(with_grad[0].grad.data)
    norms = xp.stack([xp.linalg.norm(p.grad.data.reshape(-1)) for p in with_grad])
    total = float(xp.linalg.norm(norms))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for p in with_grad:
            # a new array, not an in-place scale: one gradient array can be shared by
            # several parameters (x + y hands both the same one) or be a read-only view
            p.grad = Tensor(p.grad.data * scale)
    return total


class LRSchedule:
    """Sets each param group's lr to `lr_at(step, base_lr)`, where base_lr is the group's
    lr when the schedule was made. Step 0 applies on construction; call `step()` once after
    each `optimizer.step()`."""

    def __init__(self, optimizer, lr_at):
        self.optimizer, self.lr_at = optimizer, lr_at
        # kept in the group (as torch) so a schedule made after optimizer.load_state_dict
        # still starts from the original lr, not from wherever the schedule had brought it
        self.base_lrs = [group.setdefault("initial_lr", group["lr"])
                         for group in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def _apply(self):
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_step, base_lr)

    def step(self):
        self.last_step += 1
        self._apply()

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        self.last_step, self.base_lrs = state["last_step"], list(state["base_lrs"])
        self._apply()


class LambdaLR(LRSchedule):
    """lr = base_lr * lr_lambda(step), as torch.optim.lr_scheduler.LambdaLR."""

    def __init__(self, optimizer, lr_lambda):
        super().__init__(optimizer, lambda step, base_lr: base_lr * lr_lambda(step))


def warmup_cosine(optimizer, warmup_steps, total_steps, min_lr=0.0):
    """Linear warmup, then a half cosine from the base lr down to `min_lr`:

        lr(s) = base_lr * (s + 1) / (warmup_steps + 1)                       s < warmup_steps
        lr(s) = min_lr + (base_lr - min_lr) * (1 + cos(pi * q)) / 2          otherwise,
        q = min(1, (s - warmup_steps) / (total_steps - warmup_steps))

    The warmup never gives lr 0, so the first step already moves the parameters; from
    total_steps on the lr stays at min_lr.
    """
    if not 0 <= warmup_steps <= total_steps or total_steps <= 0:
        raise ValueError(f"warmup_cosine: need 0 <= warmup_steps <= total_steps and "
                         f"total_steps > 0, got {warmup_steps} and {total_steps}")

    def lr_at(step, base_lr):
        if step < warmup_steps:
            return base_lr * (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LRSchedule(optimizer, lr_at)


class EMA:
    """An exponential moving average of parameters, for evaluating and sampling with
    smoothed weights: after each optimiser step, `update()` does

        shadow = shadow + (1 - decay) * (p - shadow)   (= decay shadow + (1 - decay) p)

    The lerp form keeps the average of a parameter that stops changing exactly equal to it.
    """

    def __init__(self, params, decay=0.999):
        if not 0 <= decay <= 1:
            raise ValueError(f"EMA: decay must lie in [0, 1], got {decay}")
        self.params = _param_list(params, "EMA")
        self.decay = decay
        self.shadow = [p.data.copy() for p in self.params]

    def update(self):
        for shadow, p in zip(self.shadow, self.params):
            shadow += (1 - self.decay) * (p.data - shadow)

    def copy_to(self, params=None):
        """Write the averages into `params` (default: the tracked parameters)."""
        params = self.params if params is None else _param_list(params, "EMA.copy_to")
        if len(params) != len(self.shadow):
            raise ValueError(f"EMA.copy_to: {len(params)} parameters given, the EMA tracks "
                             f"{len(self.shadow)}")
        for shadow, p in zip(self.shadow, params):
            if p.shape != shadow.shape:
                raise ValueError(f"EMA.copy_to: parameter of shape {p.shape} for an average "
                                 f"of shape {shadow.shape}")
            p.data[...] = shadow

    @contextlib.contextmanager
    def average_parameters(self):
        """Inside the block the tracked parameters hold their averages; on leaving it
        (even by an exception) they get their trained values back."""
        trained = [p.data.copy() for p in self.params]
        self.copy_to()
        try:
            yield
        finally:
            for p, values in zip(self.params, trained):
                p.data[...] = values

    def state_dict(self):
        return {"decay": self.decay, "shadow": [_host_copy(s) for s in self.shadow]}

    def load_state_dict(self, state):
        if len(state["shadow"]) != len(self.params):
            raise ValueError(f"EMA.load_state_dict: {len(state['shadow'])} saved averages "
                             f"for {len(self.params)} parameters")
        self.decay = state["decay"]
        self.shadow = [_array_like(s, p, f"EMA.load_state_dict, average {i}")
                       for i, (s, p) in enumerate(zip(state["shadow"], self.params))]
