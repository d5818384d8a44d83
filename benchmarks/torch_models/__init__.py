"""PyTorch builds of minigen's models, for the parity runs (benchmarks.parity) and the model
benchmarks. Each module reads like its minigen counterpart, with the same parameter names,
so that minigen's initial weights can be copied in by name."""
