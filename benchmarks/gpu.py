"""The K and M sets on one GPU, batch x 8: minigen on CuPy against PyTorch on CUDA, each at
its own defaults, timed with CUDA events (BENCHMARKS.md's GPU targets).

    python -m benchmarks.gpu [--out FILE] [--sets K,M] [--cases A1,K1,M2] [--dry-run]
                             [--budget SECONDS] [--fashion-mnist DIR]

GPU time comes a few minutes at a time (benchmarks/gpu.sh gives this at most 330 s),
so one run must bring back everything: a case that fails (a build error, a device error,
its own time limit) is written with its error and the run goes on (in a fresh process
where the failure broke the CUDA context), the results file is rewritten after every
case, and a progress line is printed per case. The cases with a GPU target run first, so
a run cut short keeps those.

The cases are the CPU harness's (benchmarks.harness) with every batch multiplied by 8,
built by the same modules: K1, K2 and K6-* by benchmarks.conv, K3-d* and K4-* by
.sequence, K5 by .flow, K7 by .overhead (16 values: it times the per-op overhead, which a
batch would hide), M1-M5 by .models_ar, M6 by .models_flow and M8 by .models_diffusion;
and A1, the GPU issue's own target: causal attention fwd+bwd at (16, 8, 1024, 64), fp32,
minigen's F.attention against scaled_dot_product_attention(is_causal=True). The K
builders make their tensors with no device, so they build with both libraries' default
device set to the GPU (made_on); the M models are built on the host as the trainer builds
them and moved (model.to("cuda"), torch_model.cuda()), the batch copied once.

Targets (time ratio minigen / PyTorch): attention at 50% of PyTorch's fp32 throughput or
more (ratio <= 2.0: A1, K4-*), masked convolution no slower than cuDNN (K1, K2: <= 1.0),
train steps <= 1.5 (M1-M6, M8); the other K cases have none on the GPU. PyTorch runs at
its defaults, which on an H100 put cuDNN's convolutions in TF32 (10 mantissa bits); the
results record PyTorch's precision settings, A1 the attention operator PyTorch picked,
and CuPy's CUPY_TF32 (off unless set).

Both sides run in this one process, alternating. On the CPU the harness keeps them apart
because their thread pools fight over two cores; here the work is on the GPU and each
library's host thread only launches kernels. A case runs as:
    1. build both sides (its own time limit covers every step, --budget the whole run);
    2. the check: both sides' outputs (K, A1: the first call's output and gradients) or
       first losses (M: at the initial weights, on the same batch and noise) must agree
       to TOLERANCE; a disagreement is recorded and the case is still timed;
    3. warm-up: `warmup` calls, then more while the last is 20% slower than the fastest
       (CuPy and NVRTC compile on first use: that cost is in the check and here, never
       in the timing);
    4. rounds of one sample per side, the order swapped every round so drift hits both;
       a sample is as many calls as last `sample_s`, between two CUDA events on the
       device synchronized first; rounds go on from `min_rounds` until the pairs'
       ratio has a standard error of `precision` or the case's timing cap is spent.
A row holds each side's median, min and max milliseconds per call, its samples and
warm-up times, the ratio of the medians (`ratio`) and the median of the pairs' ratios.

`--dry-run` goes through the same code on the CPU (NumPy and PyTorch's CPU), batches
divided by 8 instead, perf_counter instead of events, one warm-up call and two rounds, so
that the script itself is tested without a GPU (tests/test_benchmark_gpu.py).
"""
import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import signal
import statistics
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from . import common

SIDES = ("minigen", "torch")
GPU_MULTIPLIER = 8
ATTENTION = (16, 8, 1024, 64)  # A1: the GPU issue's target, batch x heads x T x d
# TF32 keeps 10 mantissa bits: a float32 sum of products then errs by about 1e-3 of its
# typical term, which stays well under this share of the largest value for every case
TOLERANCE = 2e-3
TARGETS = {"A1": 2.0, "K1": 1.0, "K2": 1.0, "K4-256": 2.0, "K4-1024": 2.0,
           **{f"M{i}": 1.5 for i in (1, 2, 3, 4, 5, 6, 8)}}
SEED = 0


@dataclass(frozen=True)
class Run:
    """Where and how long: the device, the batch multiplier of the CPU harness's batches,
    the warm-up, the rounds, the seconds per sample, the precision that ends a case's
    rounds, and the time limits (budget: the whole run, None for none)."""
    device: str
    multiplier: float
    warmup: int
    max_warmup: int
    min_rounds: int
    max_rounds: int
    sample_s: float
    precision: float
    case_limit: float
    budget: float = None

    def batch(self, n):
        return max(1, round(n * self.multiplier))


GPU_RUN = Run("cuda", GPU_MULTIPLIER, warmup=3, max_warmup=10, min_rounds=5, max_rounds=40,
              sample_s=0.025, precision=0.01, case_limit=60, budget=300)
DRY_RUN = Run("cpu", 1 / GPU_MULTIPLIER, warmup=1, max_warmup=1, min_rounds=2, max_rounds=2,
              sample_s=0.0, precision=1.0, case_limit=120)


@dataclass
class Case:
    """One comparison at the run's sizes; `build()` makes its Pair. `cap`: seconds of
    timing rounds at most."""
    id: str
    set: str
    title: str
    batch: int
    shapes: dict
    build: callable
    cap: float
    target: float = None


@dataclass
class Pair:
    """Both sides of a case, built: `steps[side]()` is one call; `check()` gives the
    (what, minigen's value, PyTorch's value) that must agree; `describe(pair, row)` adds
    what a row should say beyond the timing (A1: the precision and operator each side
    used); `details` goes into the row as it is."""
    steps: dict
    check: callable
    describe: callable = None
    details: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# the cases

@contextlib.contextmanager
def made_on(device):
    """Tensors made with no device land on `device` meanwhile, in both libraries: the K
    builders (benchmarks.common.fwd_bwd, flow.call, overhead.call) call minigen.tensor and
    torch.tensor without one. Only while building: PyTorch's default device is a
    TorchFunctionMode, which would add Python work to every op it then timed."""
    import torch

    from minigen import backend
    before = backend.default_device()
    backend.set_default_device(device)
    try:
        with torch.device(device):
            yield
    finally:
        backend.set_default_device(before)


def _host(side, values):
    """A call's output (one tensor or several) as NumPy arrays."""
    values = values if isinstance(values, (tuple, list)) else (values,)
    if side == "minigen":
        return [v.numpy() for v in values]
    return [v.detach().cpu().numpy() for v in values]


def _kernel_pair(run, call, describe=None):
    """A K case's two calls, `call(side)` built on the run's device; the check compares
    every output and gradient of the first call."""
    with made_on(run.device):
        steps = {side: call(side) for side in SIDES}

    def check():
        ours, theirs = (_host(side, steps[side]()) for side in SIDES)
        return [(f"output {i}", a, b) for i, (a, b) in enumerate(zip(ours, theirs))]
    return Pair(steps, check, describe)


def _dims(shape):
    return "x".join(map(str, shape))


def kernel_cases(run):
    """A1 and K1-K7 at the run's batch (K7: 16 values always), in the harness's order."""
    from . import conv, flow, overhead, sequence
    shape = (run.batch(ATTENTION[0] / GPU_MULTIPLIER),) + ATTENTION[1:]
    every = [Case("A1", "K", f"A1 causal attention {_dims(shape)} fp32, fwd+bwd (the GPU "
                  "issue's target)", shape[0], {"q": shape},
                  partial(_kernel_pair, run, partial(sequence.attention_call, shape),
                          partial(_attention_details, run, shape)), cap=5.0)]
    for c in conv.CASES.values():
        c = replace(c, x_shape=(run.batch(c.x_shape[0]),) + c.x_shape[1:])
        every.append(Case(c.id, "K", c.title, c.x_shape[0],
                          {"x": c.x_shape, "w": c.weight_shape},
                          partial(_kernel_pair, run, partial(conv.call, c)), cap=2.5))
    n, channels, length = sequence.K3_SHAPE
    shape = (run.batch(n), channels, length)
    for case_id, d in sequence.K3_CASES.items():
        call = partial(sequence.causal_conv_call, d, shape=shape)
        every.append(Case(case_id, "K", f"K3 causal conv1d k=2 d={d} {_dims(shape)}, "
                          "fwd+bwd", shape[0], {"x": shape},
                          partial(_kernel_pair, run, call), cap=2.5))
    for case_id, cpu_shape in sequence.K4_CASES.items():
        shape = (run.batch(cpu_shape[0]),) + cpu_shape[1:]
        every.append(Case(case_id, "K", f"K4 causal attention {_dims(shape)}, fwd+bwd",
                          shape[0], {"q": shape},
                          partial(_kernel_pair, run,
                                  partial(sequence.attention_call, shape)), cap=2.5))
    shape = (run.batch(flow.SHAPE[0]),) + flow.SHAPE[1:]
    every.append(Case("K5", "K", f"K5 affine coupling fwd+bwd+inverse, {_dims(shape)}",
                      shape[0], {"x": shape},
                      partial(_kernel_pair, run, partial(flow.call, shape=shape)), cap=2.5))
    every.append(Case("K7", "K", "K7 per-op overhead, 100 elementwise ops on 16 floats, "
                      "fwd+bwd", overhead.SIZE, {"x": (overhead.SIZE,)},
                      partial(_kernel_pair, run, overhead.call), cap=2.5))
    for case in every:
        case.target = TARGETS.get(case.id)
    return every


def _model_pair(run, model, torch_model, batch, lr, loss, torch_loss, first_losses):
    """Both sides' train steps on the run's device, as harness._train_step builds them on
    the CPU: the models moved, the batch copied to the device once, minigen's noise from
    the benchmarks' generator. The check: `first_losses(model, torch_model, x, torch_x)`,
    both sides' loss at the initial weights on the same batch and noise."""
    import torch

    import minigen as mg
    from minigen import optim
    from minigen.random import Generator
    model.to(run.device)
    torch_model.to(run.device)
    x, torch_x = mg.tensor(batch, device=run.device), torch.from_numpy(batch).to(run.device)
    generator = Generator([0, 1])
    steps = {"minigen": common.train_step(lambda: loss(model, x, generator),
                                          optim.Adam(list(model.parameters()), lr=lr)),
             "torch": common.train_step(lambda: torch_loss(torch_model, torch_x),
                                        torch.optim.Adam(torch_model.parameters(), lr=lr))}

    def check():
        with mg.no_grad(), torch.no_grad():
            ours, theirs = first_losses(model, torch_model, x, torch_x)
            return [("loss", ours.item(), theirs.item())]
    return Pair(steps, check, details={"batch_shape": list(batch.shape)})


def _first_batch(data_name, size):
    """The trainer's first batch of `size` (what the M builders draw at their own size)."""
    from minigen import data
    x_train, _ = data.load(data_name, "train")
    return x_train[data.BatchSampler(len(x_train), size, SEED).indices(0)]


def _ar_pair(run, bench):
    """M1-M5: the likelihood is exact on both sides; minigen's loss takes a generator it
    does not use."""
    from minigen.random import Generator

    from . import models_ar
    model, torch_model, batch = models_ar.build(bench)
    return _model_pair(run, model, torch_model, batch, models_ar.LR,
                       lambda m, x, g: m.loss(x, g), lambda m, x: m.loss(x),
                       lambda m, tm, x, tx: (m.loss(x, Generator([SEED, 1])), tm.loss(tx)))


def _realnvp_pair(run, size):
    """M6: each side dequantizes with its own noise, PyTorch's drawn on the device; the
    check gives PyTorch the uniform draw that minigen's Generator(1) makes (as
    models_flow.check_same_loss does)."""
    import torch

    from minigen.random import Generator

    from . import models_flow
    _, model, torch_model, _ = models_flow.build()
    batch = _first_batch("digits", size)
    noise = torch.Generator(device=run.device).manual_seed(models_flow.SEED)

    def first_losses(m, tm, x, tx):
        u = np.random.default_rng(1).uniform(0.0, 1.0, batch.shape).astype(np.float32)
        y = (tx.float() + torch.from_numpy(u).to(tx.device)) * (1.0 / tm.levels)
        return (m.loss(x, Generator(1)),
                -tm.log_prob(y).mean() + tm.dims * math.log(tm.levels))
    return _model_pair(run, model, torch_model, batch, models_flow.CONFIG["lr"],
                       lambda m, x, g: m.loss(x, g), lambda m, x: m.loss(x, noise),
                       first_losses)


def _ddpm_pair(run, size):
    """M8: each side draws t and eps on the device from its own generator; the check gives
    both minigen's draws. PyTorch's schedule is a dict of tensors, not buffers, so .cuda()
    leaves it on the host, and every lookup (`at`) would copy it to the device, a
    synchronizing copy a PyTorch user on a GPU would not make: it is moved once here."""
    import torch

    from minigen.random import Generator

    from . import models_diffusion as m8
    model, torch_model, _ = m8.build()
    batch = _first_batch("digits", size)
    torch_model.sched = {k: v.to(run.device) for k, v in torch_model.sched.items()}
    noise = torch.Generator(device=run.device).manual_seed(m8.SEED)

    def torch_loss(m, x):
        t = torch.randint(0, m.T, (len(x),), generator=noise, device=x.device)
        eps = torch.randn((len(x),) + tuple(m.shape), generator=noise, device=x.device)
        return m.loss(x, t, eps)[0]

    def first_losses(m, tm, x, tx):
        t, eps = m.training_noise(len(x), Generator([SEED, 1]))
        return (m.objective(x, t, eps)[0],
                tm.loss(tx, torch.as_tensor(t, device=tx.device),
                        torch.as_tensor(eps.numpy(), device=tx.device))[0])
    return _model_pair(run, model, torch_model, batch, m8.CONFIG["lr"],
                       lambda m, x, g: m.loss(x, g), torch_loss, first_losses)


def model_cases(run):
    """M1-M6 and M8 at the run's batch, in the harness's order."""
    from . import models_ar, models_diffusion, models_flow
    every = []
    for bench in models_ar.BENCHMARKS:
        sized = replace(bench, batch_size=run.batch(bench.batch_size))
        every.append(Case(bench.id, "M", sized.title, sized.batch_size, {},
                          partial(_ar_pair, run, sized), cap=5.0))
    size = run.batch(models_flow.CONFIG["batch_size"])
    every.append(Case("M6", "M", f"M6 realnvp train step, digits {size}", size, {},
                      partial(_realnvp_pair, run, size), cap=5.0))
    size = run.batch(models_diffusion.CONFIG["batch_size"])
    every.append(Case("M8", "M", f"M8 ddpm train step, digits {size}", size, {},
                      partial(_ddpm_pair, run, size), cap=5.0))
    for case in every:
        case.target = TARGETS.get(case.id)
    return every


def cases(run):
    """Every case by id: those with a target first (a run cut short keeps them), then the
    rest, each group in the harness's order."""
    every = kernel_cases(run) + model_cases(run)
    return {c.id: c for c in sorted(every, key=lambda c: c.target is None)}


# ---------------------------------------------------------------------------------------
# A1's precision

def _attention_details(run, shape, pair, row):
    """Which precision and operator each side used, and both sides' TFLOP/s, counted as
    FlashAttention's benchmarks count them: 4 B H T^2 d forward, halved for the causal
    mask, and 2.5 times that backward."""
    import torch

    from minigen import backend
    b, h, t, d = shape
    flops = 3.5 * 4 * b * h * t * t * d / 2
    on_device = backend.array_module(run.device).zeros(1, np.float32)
    kernel = backend.kernel("attention", on_device)
    details = {
        "minigen_precision": {"dtype": "float32", "CUPY_TF32": os.environ.get("CUPY_TF32"),
                              "kernel": kernel.__name__ if kernel else "engine ops"},
        "torch_precision": {"dtype": "float32", "operators": _torch_operators(pair.steps),
                            **{f"{kind}_sdp_enabled": getattr(torch.backends.cuda,
                                                              f"{kind}_sdp_enabled")()
                               for kind in ("flash", "mem_efficient", "math", "cudnn")}},
        "flops_per_call": flops}
    if row.get("ratio"):
        details["throughput_ratio"] = 1 / row["ratio"]
        details["tflops"] = {side: flops / row[f"{side}_ms"] / 1e9 for side in SIDES}
    return details


def _torch_operators(steps):
    """The attention operators PyTorch's dispatcher ran in one call (flash, efficient,
    cuDNN or math), as its profiler names them."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        steps["torch"]()
    return sorted({e.key for e in prof.key_averages() if "attention" in e.key
                   and e.key != "aten::scaled_dot_product_attention"})


# ---------------------------------------------------------------------------------------
# timing

def _wall(fn, calls):
    """Seconds per call by the host's clock (the dry run: the CPU computes as it goes)."""
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def _cupy_events(fn, calls):
    """Seconds per call between two CUDA events on CuPy's stream, the device idle first
    (so that nothing queued by the other side is counted)."""
    from minigen import backend
    cp = backend.cupy()
    cp.cuda.Device().synchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end) / 1e3 / calls


def _torch_events(fn, calls):
    """As _cupy_events, on PyTorch's stream."""
    import torch
    torch.cuda.synchronize()
    start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / calls


def timers(device):
    if device == "cpu":
        return {side: _wall for side in SIDES}
    return {"minigen": _cupy_events, "torch": _torch_events}


def _relative_error(ratios):
    """The standard error of the pairs' mean ratio, as a share of it."""
    if len(ratios) < 2:
        return math.inf
    return statistics.stdev(ratios) / math.sqrt(len(ratios)) / statistics.fmean(ratios)


def time_pair(run, steps, cap):
    """Warm both sides up, then time them in alternating rounds (the module docstring)."""
    timer = timers(run.device)
    sides = {}
    for side in SIDES:
        warm = [timer[side](steps[side], 1) for _ in range(run.warmup)]
        while (len(warm) < run.max_warmup and warm[-1] > 1.2 * min(warm)
               and sum(warm) < cap):
            warm.append(timer[side](steps[side], 1))
        calls = max(1, min(1000, math.ceil(run.sample_s / max(warm[-1], 1e-9))))
        sides[side] = {"warmup_ms": [s * 1e3 for s in warm], "calls_per_sample": calls,
                       "samples_ms": []}
    started = time.perf_counter()
    ratios = []
    for r in range(run.max_rounds):
        for side in SIDES if r % 2 == 0 else SIDES[::-1]:
            seconds = timer[side](steps[side], sides[side]["calls_per_sample"])
            sides[side]["samples_ms"].append(seconds * 1e3)
        ratios.append(sides["minigen"]["samples_ms"][-1] / sides["torch"]["samples_ms"][-1])
        if r + 1 >= run.min_rounds and (_relative_error(ratios) <= run.precision or
                                         time.perf_counter() - started >= cap):
            break
    for s in sides.values():
        s.update(median_ms=statistics.median(s["samples_ms"]), min_ms=min(s["samples_ms"]),
                 max_ms=max(s["samples_ms"]))
    error = _relative_error(ratios)
    ours, theirs = sides["minigen"]["median_ms"], sides["torch"]["median_ms"]
    return {"minigen_ms": ours, "torch_ms": theirs, "ratio": ours / theirs,
            "pair_ratio": statistics.median(ratios), "rounds": len(ratios),
            "standard_error": error if math.isfinite(error) else None,
            "timing_s": time.perf_counter() - started, **sides}


def check(pair):
    """Do both sides agree? Each value's largest difference as a share of PyTorch's
    largest entry, against TOLERANCE; the worst, and what failed."""
    started = time.perf_counter()
    worst, problems = 0.0, []
    for what, ours, theirs in pair.check():
        ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
        if ours.shape != theirs.shape:
            problems.append(f"{what}: shapes differ, {ours.shape} vs {theirs.shape}")
            continue
        scale = max(float(np.max(np.abs(theirs), initial=0.0)), 1e-30)
        error = float(np.max(np.abs(ours - theirs), initial=0.0)) / scale
        if not error <= TOLERANCE:
            problems.append(f"{what}: off by {error:.3g} of its largest value")
        if math.isfinite(error):
            worst = max(worst, error)
    return {"ok": not problems, "worst": worst, "tolerance": TOLERANCE,
            "problems": problems[:5], "seconds": time.perf_counter() - started}


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds):
    """CaseTimeout in the case's code once `seconds` have passed (a hung or very slow case
    must not take the rest of the run's time)."""
    def expire(signum, frame):
        raise CaseTimeout(f"stopped at its time limit, {seconds:.0f} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _release(device):
    """Give back both libraries' cached device memory between cases (their pools would
    otherwise hold on to every earlier case's buffers)."""
    gc.collect()
    if device == "cuda":
        import torch

        from minigen import backend
        backend.cupy().get_default_memory_pool().free_all_blocks()
        torch.cuda.empty_cache()


def _not_run(case, error):
    """A case's row before (or without) its results."""
    return {"id": case.id, "set": case.set, "title": case.title, "batch": case.batch,
            "shapes": {k: list(v) for k, v in case.shapes.items()}, "target": case.target,
            "minigen_ms": None, "torch_ms": None, "ratio": None, "met": None, "check": None,
            "error": error}


def run_case(run, case, limit):
    """One row: build, check, time; an error ends the case, never the run."""
    row = _not_run(case, None)
    started = time.perf_counter()
    pair = None
    try:
        with time_limit(limit):
            pair = case.build()
            row["build_s"] = time.perf_counter() - started
            row.update(pair.details)
            row["check"] = check(pair)
            row.update(time_pair(run, pair.steps, case.cap))
            if pair.describe:
                row.update(pair.describe(pair, row))
    except Exception as e:
        row["error"] = f"{type(e).__name__}: {e}"
        row["traceback"] = traceback.format_exc()[-3000:]
    del pair
    try:
        _release(run.device)
    except Exception as e:  # a broken CUDA context (main starts a fresh process)
        row["error"] = row["error"] or f"releasing memory: {type(e).__name__}: {e}"
    if row["ratio"] is not None and case.target is not None:
        row["met"] = row["ratio"] <= case.target
    row["seconds"] = time.perf_counter() - started
    return row


# ---------------------------------------------------------------------------------------
# the run

def torch_settings():
    """PyTorch's float32 precision settings as it runs (its defaults: nothing here sets
    them), under both the older flags and, where this PyTorch has them, the newer ones."""
    import torch
    settings = {"cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
                "float32_matmul_precision": torch.get_float32_matmul_precision(),
                "cudnn.benchmark": torch.backends.cudnn.benchmark}
    for name in ("fp32_precision", "cuda.matmul.fp32_precision",
                 "cudnn.conv.fp32_precision"):
        value = torch.backends
        for part in name.split("."):
            value = getattr(value, part, None)
        if value is not None:
            settings[name] = value
    return settings


def machine(run):
    """The host (common.machine_info) and, on the GPU, the device and the CUDA stack."""
    import torch
    info = common.machine_info(torch.get_num_threads())
    info["gpu"] = None
    if run.device == "cuda":
        from minigen import backend
        cp = backend.cupy()
        properties = cp.cuda.runtime.getDeviceProperties(0)
        name = properties["name"]
        info.update(gpu=name.decode() if isinstance(name, bytes) else name,
                    gpu_memory_gib=properties["totalGlobalMem"] / 2 ** 30,
                    torch_gpu=torch.cuda.get_device_name(0),
                    cuda_driver=cp.cuda.runtime.driverGetVersion(),
                    cuda_runtime=cp.cuda.runtime.runtimeGetVersion(), cupy=cp.__version__,
                    torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


def _write(path, result):
    from minigen import checkpoint
    text = json.dumps(result, indent=1) + "\n"
    checkpoint.write_atomically(path, lambda f: f.write(text.encode()))


def _line(row, elapsed):
    head = f"[{elapsed:4.0f} s] {row['id']}: "
    if row["ratio"] is None:
        return head + f"ERROR {row['error']}"
    target = "" if row["target"] is None else \
        f" (target <= {row['target']}: {'met' if row['met'] else 'MISSED'})"
    c = row["check"]
    verdict = f"check ok (worst {c['worst']:.1e})" if c["ok"] else \
        "CHECK FAILED: " + "; ".join(c["problems"])
    return (head + f"minigen {row['minigen_ms']:.4g} ms, PyTorch {row['torch_ms']:.4g} ms, "
            f"ratio {row['ratio']:.2f}{target}, {verdict}, {row['rounds']} rounds, "
            f"{row['seconds']:.0f} s" + (f"; {row['error']}" if row["error"] else ""))


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def device_broken(device):
    """Whether this process's CUDA context is dead: after an illegal address or a trap in a
    kernel every later CUDA call fails, so the cases left need a fresh process."""
    if device != "cuda":
        return False
    import torch

    from minigen import backend
    try:
        backend.cupy().cuda.Device().synchronize()
        torch.cuda.synchronize()
    except Exception:
        return True
    return False


def _restart(args, out, rest, budget):
    """Go on with the cases `rest` in a fresh process (this one replaced, so `timeout` still
    sees it), which adds its rows to `out`."""
    argv = [sys.executable, "-m", "benchmarks.gpu", "--resume", "--out", str(out),
            "--cases", ",".join(c.id for c in rest)]
    if budget is not None:
        argv += ["--budget", f"{budget:.0f}"]
    if args.fashion_mnist:
        argv += ["--fashion-mnist", args.fashion_mnist]
    print(f"the CUDA context is broken: {', '.join(c.id for c in rest)} go on in a fresh "
          "process", flush=True)
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="the results file (default: benchmarks/results/"
                        "gpu-DATE.json, gpu-dry-run-DATE.json with --dry-run)")
    parser.add_argument("--sets", default="K,M", help="K, M or K,M (default)")
    parser.add_argument("--cases", help="case ids, comma-separated (instead of --sets)")
    parser.add_argument("--dry-run", action="store_true",
                        help="on the CPU, small batches, two rounds: tests this script")
    parser.add_argument("--budget", type=float,
                        help="seconds for the whole run; cases left are skipped (GPU: "
                             f"{GPU_RUN.budget:.0f}, dry run: none)")
    parser.add_argument("--fashion-mnist", dest="fashion_mnist", metavar="DIR",
                        help="fashion-mnist's IDX files (M2, M3), where the machine has "
                             "no /usr/share/datasets/fashion-mnist")
    parser.add_argument("--resume", action="store_true",
                        help="(internal) add the rows to --out: the run goes on after a "
                             "broken CUDA context")
    args = parser.parse_args(argv)
    sets = args.sets.split(",")
    if not set(sets) <= {"K", "M"}:
        parser.error(f"--sets {args.sets}: the sets are K and M")
    if args.resume and not (args.out and Path(args.out).is_file()):
        parser.error("--resume needs --out naming the results file to add to")
    args.sets = sets
    return args


def _chosen(args, run):
    by_id = cases(run)
    if not args.cases:
        return [c for c in by_id.values() if c.set in args.sets]
    wanted = args.cases.split(",")
    unknown = [c for c in wanted if c not in by_id]
    if unknown:
        sys.exit(f"benchmarks.gpu: unknown case {', '.join(unknown)}; known: "
                 f"{', '.join(by_id)}")
    return [by_id[c] for c in wanted]


def main(argv=None):
    args = parse(argv)
    run = DRY_RUN if args.dry_run else GPU_RUN
    if args.budget is not None:
        run = replace(run, budget=args.budget)
    import torch
    if run.device == "cuda" and not torch.cuda.is_available():
        sys.exit("benchmarks.gpu: PyTorch sees no CUDA device (--dry-run tests the script "
                 "on the CPU)")
    if args.fashion_mnist:
        from minigen import data
        data.FASHION_MNIST_DIR = Path(args.fashion_mnist)
    chosen = _chosen(args, run)
    today = datetime.date.today().isoformat()
    out = Path(args.out or common.RESULTS / f"gpu-{'dry-run-' * args.dry_run}{today}.json")
    if args.resume:
        result = json.loads(out.read_text())
        result["restarts"] = result.get("restarts", 0) + 1
    else:
        timer = "CUDA events" if run.device == "cuda" else "perf_counter"
        result = {"benchmark": "gpu", "dry_run": args.dry_run, "machine": machine(run),
                  "settings": {**asdict(run), "timer": timer, "one_process": True,
                               "tolerance": TOLERANCE, "torch": torch_settings(),
                               "CUPY_TF32": os.environ.get("CUPY_TF32")},
                  "rows": [], "seconds": 0.0}
    result["finished"] = False
    where = result["machine"]["gpu"] or "the CPU (dry run)"
    print(f"{len(chosen)} cases on {where}, batch x {run.multiplier:g}, writing {out}",
          flush=True)
    started, before, case = time.perf_counter(), result["seconds"], None

    def left():
        """Seconds left of the run's budget."""
        spent = time.perf_counter() - started
        return math.inf if run.budget is None else run.budget - spent
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `timeout` stops us as Ctrl-C
    try:
        for i, case in enumerate(chosen):
            if left() < 5:
                row = _not_run(case, "skipped: the run's --budget was spent")
            else:
                row = run_case(run, case, min(run.case_limit, left()))
            result["rows"].append(row)
            result["seconds"] = before + time.perf_counter() - started
            _write(out, result)
            print(_line(row, result["seconds"]), flush=True)
            if row.get("traceback"):
                print(row["traceback"], file=sys.stderr, flush=True)
            if row["error"] and chosen[i + 1:] and device_broken(run.device):
                _restart(args, out, chosen[i + 1:], None if run.budget is None else left())
        result["finished"] = True
    except KeyboardInterrupt:
        if case is not None:
            result["rows"].append(_not_run(case, "interrupted (SIGTERM or Ctrl-C) here"))
        print(f"interrupted in {case.id if case else 'the start'}", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        result["seconds"] = before + time.perf_counter() - started
        _write(out, result)
    failed = [r["id"] for r in result["rows"] if r["error"] or not r["check"]["ok"]]
    print(f"wrote {out} in {result['seconds']:.0f} s; " +
          (f"failed or disagreeing: {', '.join(failed)}" if failed else "every case ran "
           "and agreed"), flush=True)
    return 1 if failed or not result["finished"] else 0


if __name__ == "__main__":
    sys.exit(main())
