"""Side-by-side timings of minigen against PyTorch and plain NumPy (see BENCHMARKS.md).

`python -m benchmarks` times every case against PyTorch (benchmarks.harness --set all, each
side in a process of its own); `python -m benchmarks.harness --cases ID ...` some of them.
The groups that time minigen against itself or NumPy run alone: `python -m
benchmarks.sampling`, `.ar_flows`, `.overhead`. On a GPU, `bash benchmarks/gpu.sh` runs the
GPU tests and `python -m benchmarks.gpu`: the K and M sets, batch x 8, against PyTorch on
CUDA.
"""
