"""Where a step's time goes, op by op: minigen's own profiler.

    with mg.profiler.profile() as prof:
        step()
    print(prof.table(steps=1))

While the context is open, every op (`Function.apply`) and every node's backward is timed.
An op's *self* time is its time minus the ops it called (a backward written with Tensor ops
calls ops of its own), so the self times add up without counting anything twice. Each row
is an op and a phase: `forward` (an op called outside a backward sweep), `backward` (the
ops a backward sweep runs: each node's `Name.backward` frame, whose self time is the Python
of that backward, and the ops it calls, under their own names) . What no op accounts for
(the optimiser's in-place updates, data, the Python between ops) is the row "outside ops":
the step's wall time minus every self time.

Nothing is changed while no profile is open: the context swaps `Function.apply` and the
backward sweep's hook in and puts them back on exit. The profiler's own cost, about a
microsecond per op on the development machine, is inside the times it reports, so for
graphs of many tiny ops it inflates them; compare op against op, not against an
unprofiled step.
"""
import time
from collections import defaultdict

from . import autograd

_perf = time.perf_counter


class Profile:
    """The records of one profiling context: (name, phase) -> [calls, self_s, total_s]."""

    def __init__(self):
        self.records = defaultdict(lambda: [0, 0.0, 0.0])
        self.wall_s = 0.0
        self._children = []   # per open frame: the time of the frames it opened
        self._backward = 0    # depth of backward sweeps in progress

    def _record(self, name, phase, elapsed):
        children = self._children.pop()
        entry = self.records[(name, phase)]
        entry[0] += 1
        entry[1] += elapsed - children
        entry[2] += elapsed
        if self._children:
            self._children[-1] += elapsed

    def rows(self, steps=1):
        """[(name, phase, calls per step, self ms per step, share of the wall time,
        total ms per step)], the largest self time first, "outside ops" last."""
        wall = self.wall_s or sum(r[1] for r in self.records.values())
        rows = [(name, phase, calls / steps, self_s * 1e3 / steps,
                 self_s / wall if wall else 0.0, total_s * 1e3 / steps)
                for (name, phase), (calls, self_s, total_s) in self.records.items()]
        rows.sort(key=lambda r: -r[3])
        outside = wall - sum(r[1] for r in self.records.values())
        rows.append(("outside ops", "", 0.0, outside * 1e3 / steps,
                     outside / wall if wall else 0.0, outside * 1e3 / steps))
        return rows

    def table(self, steps=1, top=20):
        """The rows as text: the `top` largest, then the rest summed, then outside ops."""
        rows = self.rows(steps)
        ops, outside = rows[:-1], rows[-1]
        shown, rest = ops[:top], ops[top:]
        lines = [f"{'op':<34} {'phase':<9} {'calls':>7} {'self ms':>9} {'share':>6} "
                 f"{'total ms':>9}"]
        for name, phase, calls, self_ms, share, total_ms in shown:
            lines.append(f"{name:<34} {phase:<9} {calls:>7.0f} {self_ms:>9.3f} "
                         f"{share:>6.1%} {total_ms:>9.3f}")
        if rest:
            lines.append(f"{f'{len(rest)} more ops':<34} {'':<9} "
                         f"{sum(r[2] for r in rest):>7.0f} {sum(r[3] for r in rest):>9.3f} "
                         f"{sum(r[4] for r in rest):>6.1%}")
        lines.append(f"{outside[0]:<34} {'':<9} {'':>7} {outside[3]:>9.3f} "
                     f"{outside[4]:>6.1%}")
        lines.append(f"per step: {self.wall_s * 1e3 / steps:.3f} ms wall, "
                     f"{sum(r[2] for r in ops):.0f} op calls")
        return "\n".join(lines)


class profile:
    """Context manager timing every op and backward node inside it; the Profile it yields
    holds the records and the context's wall time."""

    def __enter__(self):
        self.result = prof = Profile()
        self._apply = autograd.Function.__dict__["apply"]
        self._hook = autograd._backward_hook
        self._backprop = autograd._backprop
        original_apply, original_backprop = self._apply.__func__, self._backprop

        def timed_apply(cls, *inputs, **params):
            prof._children.append(0.0)
            started = _perf()
            try:
                return original_apply(cls, *inputs, **params)
            finally:
                prof._record(cls.__name__, "backward" if prof._backward else "forward",
                             _perf() - started)

        def timed_backward(node, grad):
            prof._children.append(0.0)
            started = _perf()
            try:
                return node.backward(node, grad)
            finally:
                prof._record(f"{type(node).__name__}.backward", "backward",
                             _perf() - started)

        def backprop(*args, **kwargs):
            prof._backward += 1
            try:
                return original_backprop(*args, **kwargs)
            finally:
                prof._backward -= 1

        autograd.Function.apply = classmethod(timed_apply)
        autograd._backward_hook = timed_backward
        autograd._backprop = backprop
        self._started = _perf()
        return prof

    def __exit__(self, *exc):
        self.result.wall_s += _perf() - self._started
        autograd.Function.apply = self._apply
        autograd._backward_hook = self._hook
        autograd._backprop = self._backprop
        return False
