"""Side-by-side timings of minigen against PyTorch and plain NumPy (see BENCHMARKS.md).

`python -m benchmarks` runs every group; `python -m benchmarks.<group>` runs one.
"""
