"""What cached sampling keeps from one draw to the next.

An autoregressive model's activations at step (or pixel) t depend only on the inputs up to
t, so once computed they never change; a cached sampler computes each new step alone from
what earlier steps left behind. Each layer keeps its own entry here: a convolution its past
inputs, an attention layer its keys and values, a recurrent layer its state.
"""


class SamplingCache:
    """One entry per layer for a batch of n examples, made by the layer the first time it is
    asked for. `sizes` name the extent of one example, kept as attributes for the layers to
    size their entries: length=T for a sequence, height=H and width=W for an image."""

    def __init__(self, n, **sizes):
        self.n = n
        for name, size in sizes.items():
            setattr(self, name, size)
        self.entries = {}

    def entry(self, layer, make):
        """The layer's entry, made by make() the first time it is asked for."""
        if layer not in self.entries:
            self.entries[layer] = make()
        return self.entries[layer]
