"""One short GPU session for kernels/attention/cuda.py: timings of forward, backward and
both against PyTorch's scaled_dot_product_attention (fp32, where torch is installed), and
the float32 tile choices (cuda.TILES) tried side by side, each checked against 4 x 4 first.

    python -m benchmarks.gpu_attention_tiles   (after tests/test_kernels_cuda_attention.py pass)
"""
import sys
import time

import numpy as np

from minigen import backend
from minigen.kernels.attention import cuda

cp = backend.cupy()
print("cupy", cp.__version__, "| device", cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
      "| nvrtc", cp.cuda.nvrtc.getVersion(), flush=True)


def timed(fn, reps=10):
    fn()
    cp.cuda.Device().synchronize()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(reps):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


def flops(b, h, t, d, causal):
    """fwd 4 T^2 d per head (QK^T, PV); bwd as FA2 counts, 2.5x (five products)."""
    f = 4 * t * t * d * b * h * (0.5 if causal else 1)
    return f, 2.5 * f


def ours(shape, causal, tiles):
    cuda.TILES = {"attention_forward": tiles[0], "attention_backward": tiles[1]}
    rng = cp.random.default_rng(0)
    q, k, v, g = (rng.standard_normal(shape, dtype=cp.float32) for _ in range(4))
    out, lse = cuda.forward(q, k, v, causal=causal)
    fwd = timed(lambda: cuda.forward(q, k, v, causal=causal))
    bwd = timed(lambda: cuda.backward(q, k, v, out, lse, g, causal=causal))
    return fwd, bwd, (out, lse) + tuple(cuda.backward(q, k, v, out, lse, g, causal=causal))


def torch_sdpa(shape, causal):
    try:
        import torch
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator(device="cuda").manual_seed(0)
    q, k, v, g = (torch.randn(shape, device="cuda", generator=gen, dtype=torch.float32)
                  for _ in range(4))
    q.requires_grad_(), k.requires_grad_(), v.requires_grad_()
    f = torch.nn.functional.scaled_dot_product_attention

    def run(backward):
        out = f(q, k, v, is_causal=causal)
        if backward:
            out.backward(g)

    def t(backward):
        run(backward)
        torch.cuda.synchronize()
        times = []
        for _ in range(10):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            run(backward)
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        return float(np.median(times))

    fwd, both = t(False), t(True)
    return fwd, both - fwd


def main():
    tile_sets = [((4, 4), (4, 4)), ((8, 4), (4, 4)), ((4, 8), (4, 4)), ((4, 4), (8, 4)),
                 ((4, 4), (4, 8))]
    if "--quick" in sys.argv:
        tile_sets = tile_sets[:1]
    cases = [((16, 8, 1024, 64), True), ((64, 8, 1024, 64), False), ((64, 8, 1024, 64), True)]
    if "--tiny" in sys.argv:  # a dry run of this script
        cases = [((1, 2, 70, 64), True)]
    for shape, causal in cases:
        ff, fb = flops(*shape, causal)
        ref = torch_sdpa(shape, causal)
        line = f"{shape} causal={causal}"
        if ref:
            line += (f" | torch fwd {ref[0]:.2f} bwd {ref[1]:.2f} both {sum(ref):.2f} ms "
                     f"({(ff + fb) / sum(ref) / 1e9:.1f} TFLOP/s)")
        print(line, flush=True)
        base = None
        for tiles in tile_sets:
            t0 = time.time()
            fwd, bwd, results = ours(shape, causal, tiles)
            agree = ""
            if base is None:
                base = [r.get() for r in results]
            else:
                err = max(float(np.abs(r.get() - b).max() / max(1, np.abs(b).max()))
                          for r, b in zip(results, base))
                agree = f" | vs 4x4 {err:.1e}"
            ratio = f" | {sum(ref) / (fwd + bwd):.2f}x torch's speed" if ref else ""
            print(f"  tiles fwd {tiles[0]} bwd {tiles[1]}: fwd {fwd:.2f} ms "
                  f"({ff / fwd / 1e9:.1f} TFLOP/s), bwd {bwd:.2f} ms ({fb / bwd / 1e9:.1f}), "
                  f"both {fwd + bwd:.2f}{ratio}{agree} [{time.time() - t0:.0f} s with "
                  f"compiles]", flush=True)


if __name__ == "__main__":
    main()
