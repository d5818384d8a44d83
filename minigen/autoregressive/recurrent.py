"""Recurrent layers: the LSTM and GRU cells, and a stack of cells run over time.

A recurrent network reads a sequence one step at a time and carries a state from each step
to the next: state_t = cell(x_t, state_{t-1}). The cells here are built from engine ops
(F.linear, sigmoid, tanh, split), so backward through time is the engine's ordinary
backward over the unrolled graph.

Names, shapes and initialisation are torch's, so weights copy over as they are: a cell
holds weight_ih (G * hidden, input), weight_hh (G * hidden, hidden), bias_ih and bias_hh
(G * hidden,), the G gate blocks stacked in torch's order (LSTM: i, f, g, o; GRU: r, z, n),
as torch.nn.LSTMCell / GRUCell; cell k of a `Recurrent` stack holds what torch.nn.LSTM /
GRU call weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}. Every weight and bias
starts uniform in +-1/sqrt(hidden), drawn in that order.
"""
import math

import numpy as np

from .. import functional as F
from .. import nn
from ..creation import zeros
from ..ops import sigmoid, split, stack, tanh


class _Cell(nn.Module):
    """What both cells share: the two affine maps of the input and of the hidden state,
    W_ih x + b_ih and W_hh h + b_hh, each giving all G gate blocks in one product."""

    gates = None        # G, the number of gate blocks
    state_parts = None  # how many (N, hidden) tensors make the state

    def __init__(self, input_size, hidden_size, generator=None, dtype=None):
        super().__init__()
        input_size, hidden_size = int(input_size), int(hidden_size)
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"{type(self).__name__}: input_size and hidden_size must be "
                             f">= 1, got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size = input_size, hidden_size
        dtype = np.dtype(dtype or np.float32)
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(np.zeros((rows, input_size), dtype))
        self.weight_hh = nn.Parameter(np.zeros((rows, hidden_size), dtype))
        self.bias_ih = nn.Parameter(np.zeros(rows, dtype))
        self.bias_hh = nn.Parameter(np.zeros(rows, dtype))
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(weight, -bound, bound, generator)

    def initial_state(self, n, like):
        """The zero state for a batch of n, in the dtype and on the device of `like`."""
        return tuple(zeros((n, self.hidden_size), dtype=like.dtype, device=like.device)
                     for _ in range(self.state_parts))

    def _check(self, x, state):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must be (batch, "
                             f"{self.input_size}), got {x.shape}")
        wanted = (x.shape[0], self.hidden_size)
        if len(state) != self.state_parts or any(s.shape != wanted for s in state):
            raise ValueError(f"{type(self).__name__}: state must be {self.state_parts} "
                             f"tensor(s) of shape {wanted}, got "
                             f"{[tuple(s.shape) for s in state]}")

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}"


class LSTMCell(_Cell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997; the forget gate is Gers et
    al. 2000's), as torch.nn.LSTMCell computes it:

        i  = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
        f  = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate
        g  = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate cell values
        o  = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
        c' = f * c + i * g                               the cell: additive, so its
        h' = o * tanh(c')                                gradient does not vanish

    The state is (h, c); h' is what the cell outputs.
    """

    gates, state_parts = 4, 2

    def forward(self, x, state):
        """(h', c') from the input x (N, input) and the state (h, c), each (N, hidden)."""
        self._check(x, state)
        h, c = state
        pre = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh,
                                                                   self.bias_hh)
        i, f, g, o = split(pre, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * tanh(g)
        return sigmoid(o) * tanh(c), c


class GRUCell(_Cell):
    """Gated recurrent unit (Cho et al. 2014, section 2.3), as torch.nn.GRUCell computes
    it:

        r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      reset gate
        z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)      update gate
        n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))   candidate state
        h' = (1 - z) * n + z * h

    Cho et al. reset before the product, U (r * h); torch (and cuDNN) reset after it,
    r * (W_hn h + b_hn), which lets all three blocks of W_hh h come from one product. This
    cell follows torch, so torch's weights give the same numbers. The state is (h,).
    """

    gates, state_parts = 3, 1

    def forward(self, x, state):
        """(h',) from the input x (N, input) and the state (h,), h of shape (N, hidden)."""
        self._check(x, state)
        (h,) = state
        x_r, x_z, x_n = split(F.linear(x, self.weight_ih, self.bias_ih), 3, axis=1)
        h_r, h_z, h_n = split(F.linear(h, self.weight_hh, self.bias_hh), 3, axis=1)
        r = sigmoid(x_r + h_r)
        z = sigmoid(x_z + h_z)
        n = tanh(x_n + r * h_n)
        return (n + z * (h - n),)  # (1 - z) n + z h with one product fewer


class Recurrent(nn.Module):
    """A stack of `layers` cells of one kind ("lstm" or "gru") run over time, as
    torch.nn.LSTM / GRU with batch_first=True: the input of layer k at step t is the output
    h of layer k - 1 at step t.

    Truncated backpropagation through time (Williams & Peng 1990): forward(..., truncate=k)
    cuts the sequence into chunks of k steps and hands the state from one chunk to the next
    detached, as a new tensor with no graph. The values are those of the untruncated run,
    so the outputs are the same; only the gradient changes: it reaches from step t back to
    the first step of t's chunk and no further, so it never spans more than k steps: a
    product of at most k step Jacobians, however long the sequence.
    """

    CELLS = {"lstm": LSTMCell, "gru": GRUCell}

    def __init__(self, cell, input_size, hidden_size, layers=1, generator=None, dtype=None):
        super().__init__()
        if cell not in self.CELLS:
            raise ValueError(f"Recurrent: cell must be one of {', '.join(self.CELLS)}, not "
                             f"{cell!r}")
        if int(layers) < 1:
            raise ValueError(f"Recurrent: layers must be >= 1, got {layers}")
        self.cell, self.hidden_size = cell, int(hidden_size)
        sizes = [int(input_size)] + [self.hidden_size] * (int(layers) - 1)
        self.cells = nn.ModuleList([self.CELLS[cell](size, hidden_size, generator, dtype)
                                    for size in sizes])

    def initial_state(self, n, like):
        """The zero state of every layer, for a batch of n."""
        return [cell.initial_state(n, like) for cell in self.cells]

    def step(self, x, states):
        """One step through every layer: (h of the top layer, the new states) from the input
        x (N, input) and the states of the step before."""
        new = []
        for cell, state in zip(self.cells, states):
            state = cell(x, state)
            new.append(state)
            x = state[0]
        return x, new

    def forward(self, x, states=None, truncate=None):
        """Run over x (N, T, input): (the top layer's h at every step (N, T, hidden), the
        states after the last step). `states` defaults to zeros; `truncate=k` detaches the
        states every k steps (truncated backpropagation through time)."""
        if x.ndim != 3 or x.shape[2] != self.cells[0].input_size:
            raise ValueError(f"Recurrent: input must be (batch, steps, "
                             f"{self.cells[0].input_size}), got {x.shape}")
        if truncate is not None and int(truncate) < 1:
            raise ValueError(f"Recurrent: truncate must be >= 1 steps, got {truncate}")
        n, steps, _ = x.shape
        states = self.initial_state(n, x) if states is None else states
        outputs = []
        for t in range(steps):
            if truncate and t and t % truncate == 0:
                states = [tuple(part.detach() for part in state) for state in states]
            # one step at a time, every layer: the top output is all that is kept over time
            # (a layer-by-layer loop would stack each layer's outputs and slice them again)
            h, states = self.step(x[:, t], states)
            outputs.append(h)
        return stack(outputs, axis=1), states

    def extra_repr(self):
        return f"{self.cell}, layers={len(self.cells)}"
