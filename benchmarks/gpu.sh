#!/usr/bin/env bash
# The one script the GPU machine runs, from the repository root. GPU time comes about 15
# minutes at a time (BENCHMARKS.md), so everything is prepared here and runs in one go, in
# under 8 minutes:
#
#     bash benchmarks/gpu.sh [OUTPUT-FOLDER]   (default: $OUT if set, else benchmarks/results)
#
#   1. the machine: nvidia-smi -L, and the versions of Python, NumPy, CuPy and PyTorch;
#   2. minigen installed in place (pip -e, no dependencies: the image has them and no
#      network); where that fails, a copy of the tree runs instead, with kernels/ copied to
#      minigen/kernels (what setup.py's package_dir does);
#   3. the GPU tests, tests/test_kernels_cuda_*.py, test_kernel_dispatch.py (CuPy arrays get
#      each cuda.py) and tests/test_device.py where it exists,
#      with MINIGEN_DEVICE=cuda, at most 150 s: tests.log and tests.xml (JUnit);
#   4. python -m benchmarks.gpu, with the time left of the 8 minutes (at most 330 s):
#      gpu-DATE.json, rewritten after every case.
# Everything printed also goes to gpu.log: four files in the output folder in all (the
# device brings back at most 8). A failing step does not stop the later ones; the exit
# status is 1 if any failed.
#
# M2 and M3 need fashion-mnist's train files. Where the machine has no
# /usr/share/datasets/fashion-mnist, build/fashion-mnist is used if it holds them (carry
# it along: the two train-*-idx*-ubyte.gz of the Debian package dataset-fashion-mnist).
set -u -o pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-benchmarks/results}}
mkdir -p "$out"
out=$(cd "$out" && pwd)
python=${PYTHON:-python3}
fashion=$PWD/build/fashion-mnist
today=$(date -u +%Y-%m-%d)
export PYTHONUNBUFFERED=1
shopt -s nullglob

steps() {
    local failed=0
    echo "== machine, $(date -u +%FT%TZ)"
    nvidia-smi -L || failed=1
    "$python" - <<'EOF' || failed=1
import platform

import numpy
import torch

print("python", platform.python_version(), "numpy", numpy.__version__, "torch",
      torch.__version__, "torch cuda", torch.version.cuda, "available",
      torch.cuda.is_available())
import cupy

print("cupy", cupy.__version__, "cuda runtime", cupy.cuda.runtime.runtimeGetVersion(),
      "driver", cupy.cuda.runtime.driverGetVersion())
EOF

    echo "== install minigen"
    if "$python" -m pip install -q --no-deps --no-build-isolation -e . &&
        "$python" -c "import minigen.kernels.conv2d"; then
        echo "installed in place"
    else
        stage=$(mktemp -d)
        echo "pip install -e . failed: running a copy in $stage with kernels/ as" \
            "minigen/kernels"
        cp -r minigen benchmarks tests pytest.ini "$stage"/ &&
            cp -r kernels "$stage"/minigen/kernels && cd "$stage" || return 1
    fi

    echo "== GPU tests, at most 150 s"
    tests=(tests/test_kernels_cuda_*.py tests/test_kernel_dispatch.py)
    [ -f tests/test_device.py ] && tests+=(tests/test_device.py)
    MINIGEN_DEVICE=cuda timeout -k 10 150 "$python" -m pytest "${tests[@]}" \
        -p no:cacheprovider -rs --junitxml="$out/tests.xml" 2>&1 | tee "$out/tests.log" ||
        failed=1

    seconds=$((470 - SECONDS))
    ((seconds > 330)) && seconds=330
    echo "== benchmark, at most $seconds s"
    args=(--out "$out/gpu-$today.json" --budget $((seconds - 30)))
    if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -d "$fashion" ]; then
        args+=(--fashion-mnist "$fashion")
    fi
    timeout -k 10 "$seconds" "$python" -m benchmarks.gpu "${args[@]}" || failed=1
    echo "== done, $(date -u +%FT%TZ), ${SECONDS} s, exit status $failed"
    return $failed
}

steps 2>&1 | tee "$out/gpu.log"
