"""The replay buffer of an energy model's negative samples (Du & Mordatch 2019, sec. 3.1).

Short SGLD chains started from noise stay near the noise; started from where earlier
chains ended, they keep going, so over training each chain runs far longer than one step's
`sgld_steps`. The buffer holds `size` past samples (at first uniform noise on the data's
box, as JEM's buffer starts). Each training step draws its chains' starts from it:

    u ~ U(0, 1) per chain; restart from the buffer where u < fraction (Du & Mordatch:
    95%), at an index drawn uniformly (with replacement); elsewhere from fresh uniform
    noise on the box

in that order from the run's generator, and after SGLD writes the chains' ends back at
the indices they came from (a chain from noise too: its index was drawn all the same).
The samples are a NumPy array on the host, in the model's extra_state: a resumed run goes
on from the same buffer.
"""
import numpy as np


class ReplayBuffer:
    """`size` samples of `shape` in the box low..high (arrays broadcasting against one
    sample), restarted from with probability `fraction`."""

    def __init__(self, size, shape, low, high, fraction, generator):
        size = int(size)
        if size < 1:
            raise ValueError(f"buffer_size={size}: the replay buffer holds at least one "
                             f"sample")
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"buffer_fraction={fraction}: the share of chains restarted "
                             f"from the buffer must be in [0, 1]")
        self.shape, self.fraction = tuple(shape), float(fraction)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)
        self.samples = self.noise(size, generator)

    @property
    def size(self):
        return len(self.samples)

    def noise(self, n, generator):
        """n samples uniform on the box."""
        return generator.rng.uniform(self.low, self.high, (n,) + self.shape).astype(np.float32)

    def draw(self, n, generator):
        """(starts, indices, restarted): n chain starts (float32), the buffer index of each
        and whether it restarted from the buffer (the rest are fresh noise)."""
        restarted = generator.rng.random(n) < self.fraction
        indices = generator.rng.integers(0, self.size, n)
        starts = np.where(restarted.reshape((n,) + (1,) * len(self.shape)),
                          self.samples[indices], self.noise(n, generator))
        return starts, indices, restarted

    def store(self, indices, samples):
        """The chains' ends back at the indices they were drawn from."""
        self.samples[indices] = np.asarray(samples, dtype=np.float32)

    def state_dict(self):
        return {"samples": self.samples}

    def load_state_dict(self, state):
        samples = np.asarray(state["samples"], dtype=np.float32)
        if samples.shape[1:] != self.shape:
            raise ValueError(f"replay buffer of samples shaped {samples.shape[1:]}, expected "
                             f"{self.shape}")
        self.samples = samples.copy()
