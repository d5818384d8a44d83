"""Every minigen-against-PyTorch benchmark: benchmarks.harness over every set (K and M),
each side timed in a process of its own; the harness's options, and its results file
benchmarks/results/harness-all.json.

    python -m benchmarks [--rounds 8] [--passes 4] [--max-rounds 24] [--samples 5]
                         [--pause 0.1] [--threads N] [--max-load 0.5] [--allow-load]
                         [--no-write]

The same as `python -m benchmarks.harness --set all`. The groups that time minigen against
itself or against NumPy run on their own, one process each: benchmarks.sampling (M7,
cached sampling against full recompute), benchmarks.ar_flows and benchmarks.overhead (the
large-array check).
"""
import sys

from . import harness


def main(argv=None):
    return harness.main(["--set", "all"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
