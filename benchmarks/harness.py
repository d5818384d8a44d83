"""Benchmarks that repeat: each side timed in a process of its own, at its own defaults,
the two sides' samples interleaved in time, on a quiet machine (issue 20, BENCHMARKS.md's
rules).

    python -m benchmarks.harness [--set M|Mf|K|all] [--cases M1 K3-d8 ...] [--rounds 8]
                                 [--passes 4] [--max-rounds 24] [--precision 0.03]
                                 [--samples 5] [--pause 0.1] [--threads N]
                                 [--max-load 0.5] [--allow-load] [--no-write]
    python -m benchmarks.harness compare A.json B.json [--tolerance 0.10] [--markdown]
    python -m benchmarks.harness chart A.json [B.json ...] --out PICTURE.png

`python -m benchmarks` is the first with --set all (every K and M case). The K cases
(kernels, fwd+bwd) take each side's call and the check from the kernel groups' modules,
benchmarks.conv (K1, K2, K6-*), .sequence (K3-d*, K4-*), .flow (K5) and .overhead (K7);
the M cases (train steps) from benchmarks.models_ar, .models_flow and .models_diffusion.

Why separate processes: in one process PyTorch's OpenMP workers (which spin for a while
after each parallel region, by default) and Numba's and NumPy's thread pools compete, and
the older one-process groups set OMP_WAIT_POLICY=PASSIVE for both sides to tame that: a
setting PyTorch users do not run with, which moved PyTorch's own step time by 2.5x between
runs.
Here a child process builds one case for one side and times it; PyTorch's child sets
nothing but torch.set_num_threads(n) (the environment is the caller's, OMP_WAIT_POLICY
included: if the caller did not set it, neither side gets it), minigen's child sets
NUMBA_NUM_THREADS=n, holds BLAS to n threads and calls minigen.keep_freed_memory(), as the
`minigen` command does.

Why interleaved: this development machine (a 2-core virtual machine) has slow and fast
stretches lasting from a fraction of a second to minutes, and they move both sides' times
by 20-40%. Two children timed one after the other (this harness's first form: a fresh
child per side per round, all its samples at once) saw different stretches, and ratios of
two runs 10 minutes apart differed by up to 30%. Now both children of a round stay up and
take turns, one sample each, so that every stretch falls on both sides alike.

A case runs as:
    1. a check process: both sides compute the same loss and gradients (or outputs) from the
       same weights and inputs and must agree; a case that fails is not timed;
    2. `rounds` rounds (8), then more, up to --max-rounds (24), while the ratio's standard
       error is above --precision (3% of it; see standard_error and stopping_error), taken
       in passes over all the cases of the run (run_passes): the first --passes (4) share
       out --rounds (2 rounds of every case in each), and every later pass gives one more
       round to each case still above --precision, so that a case's rounds are spread over
       the whole run instead of one stretch of a minute or two (why: below); a round starts
       one child per side, both at once (which side is started first alternates by round),
       each building its case and warming up (its first call timed apart: where Numba
       compiles or loads its cache); nothing is timed until both are ready; a sample is
       enough calls to last --sample-seconds (0.1 s), the number fixed by the child at its
       first sample, while the other side waits;
    3. then `samples` samples per side, interleaved: one side's, --pause (0.1 s, so that
       the side that just ran parks its threads: OpenBLAS spins up to about 0.1 s after a
       product), the other's, the order swapped at every pair. Before each sample a child
       makes a quarter as many calls untimed (at least one): a step that follows an idle
       or busy 0.2 s elsewhere ran 10-20% slower than one that follows a step (minigen's
       M2 step 166 against 199 ms at the median of 20, PyTorch's 126 against 127), and a
       training loop runs its steps back to back;
    4. the figures: each side's median over all its samples, and the ratio: the median,
       over all pairs, of minigen's sample over PyTorch's beside it; the spread: the lowest
       and highest of the rounds' own medians of those. The ratio of the two sides' medians
       is recorded beside it; where the machine's speed drifts between rounds it moves
       with the drift (a fast round's and a slow round's samples mixed), which the pairs'
       ratios do not. The row records the standard error and the rounds it took, and
       every child its samples' seconds and minor page faults per call (_minor_faults).
       Why rounds are added where a case is noisy: with 5 rounds x 7 pairs, three whole
       runs agreed within 10% on only 19-21 of 23 ratios; the pairs' ratios of one round
       spread by 10-35% (interquartile range over the median) on this machine, a standard
       error of 2-8% per ratio, and a case at 6% misses 10% between two runs one time in
       four. A quiet case stops at 8 rounds (why 8: ROUNDS); a noisy one (K1, K5, K7, M1,
       M2) gets up to 24, which a whole run of fixed rounds would spend on every case.
       Why 24: PyTorch's M2 children come in two kinds, fast or slow for their whole
       life (see _minor_faults), and a round's ratio is about 1.4 or 1.15 depending on
       which it drew; with 12 rounds or fewer two whole runs differed by 15% on M2, with
       24 two runs of M2 differed by 2.3%.
The load average (1 minute) is read when the run starts and before and after each case. A
run does not start above --max-load (0.5 by default, BENCHMARKS.md) unless --allow-load is
given, and then every case is marked invalid. During the run the load average counts the
harness's own children too (two at once while a round's children build), so a case is
invalid when other processes kept more than --max-load cores busy on average during it:
the machine's busy CPU time (/proc/stat) less the CPU time of the harness and its
children (`others_cores` in the row).

`compare` reads two results files (two runs taken apart in time) and prints, per case, both
ratios and their relative difference; it exits 1 when any pair differs by more than
--tolerance (10%, BENCHMARKS.md) or either run has an invalid case.

Why passes: four whole runs that took each case's rounds in one stretch (at 605f666 and
d2e197a) differed by more than 10% on 1 to 3 ratios in every pair of them. Between the
runs a ratio's standard deviation was up to 7.5% (K5, K6-3x3, K1, M5, M4: 4.3-7.5%), where
each run's own standard error said 2-3% for most of them. Whatever moves a case's ratio
from one run to the next thus lasts at least as long as its stretch (a minute or two) and
moves all its rounds there alike, so that their spread does not show it: the machine's
slow and fast moods (the harness's first form saw stretches move both sides by 20-40%;
benchmarks.crosscore shows stretches in which one core reads what the other has just
written several times more slowly, as K5's backward does). Rounds spread over the run's 40
minutes meet the run's moods as every other case does, and the standard error from them
counts what a single stretch hides. It is not enough alone: three whole runs with passes
(b37612c, 0c95ecc) still differed by more than 10% on 1 to 3 ratios per pair (README).

Results: benchmarks/results/harness-<set>.json (machine, settings, loads, every sample,
each round's pass and start time), written once every case has had all its rounds. Until
then the rows so far are kept, after each case's stretch of rounds, in
harness-<set>.partial.json (removed at the end): Ctrl-C or SIGTERM stops the round's
children and says where they are, and a failing case leaves them too. `chart` writes only
a *.png named by --out.
"""
import argparse
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial

from . import common

# the environment as the caller gave it, before any benchmark module defaults a variable:
# what every child process gets
CALLER_ENVIRONMENT = dict(os.environ)
SIDES = ("minigen", "torch")
MAX_LOAD = 0.5
TOLERANCE = 0.10
# At least 8 rounds of 5 samples rather than 5 of 7: a child process can be of a fast or
# a slow kind for its whole life (PyTorch's M2: 19 of 48 children fast, their rounds'
# ratios 1.32-1.58 against 0.98-1.26), and 5 rounds that all drew the slow kind agreed so
# well (1.07-1.20) that the standard error called them precise (a run at --rounds 5 gave
# M2 1.11). Eight draw only one kind about one time in sixty, where five did one in eleven.
ROUNDS, SAMPLES, PAUSE = 8, 5, 0.1
MAX_ROUNDS, PRECISION = 24, 0.03
PASSES = 4
RESULT_PREFIX = "HARNESS-RESULT "
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where children run


@dataclass
class Case:
    """One timed comparison. `make(side)` builds that side's work and returns a callable
    (one call: one train step, one op chain...); `check()` raises unless both sides agree;
    `unit` and `scale` say how a per-call time is shown (per op for K7)."""
    id: str
    title: str
    make: callable
    check: callable
    target: float = None
    goal: float = None
    unit: str = "ms"
    scale: float = 1.0
    sets: tuple = field(default_factory=tuple)


# ---------------------------------------------------------------------------------------
# the cases (imports inside: a child loads only what its case needs)

def _ar_case(bench, sets, target, goal, title=None):
    def make(side):
        from . import models_ar
        model, torch_model, batch = models_ar.build(bench)
        return _train_step(side, model, torch_model, batch, models_ar.LR,
                           lambda m, x, g: m.loss(x, g), lambda m, x: m.loss(x))

    def check():
        from . import models_ar
        models_ar.check_same_loss(bench, *models_ar.build(bench))

    return Case(bench.id, title or bench.title, make, check, target, goal, sets=sets)


def _train_step(side, model, torch_model, batch, lr, loss, torch_loss):
    """What each side's training loop does per step: loss, zero the gradients, backward,
    Adam step; minigen's noise (if any) from the benchmarks' generator, PyTorch's own."""
    if side == "minigen":
        import minigen as mg
        from minigen import optim
        from minigen.random import Generator
        optimizer = optim.Adam(list(model.parameters()), lr=lr)
        x, generator = mg.tensor(batch), Generator([0, 1])
        return common.train_step(lambda: loss(model, x, generator), optimizer)
    import torch
    optimizer = torch.optim.Adam(torch_model.parameters(), lr=lr)
    x = torch.from_numpy(batch)
    return common.train_step(lambda: torch_loss(torch_model, x), optimizer)


def _ar_benchmarks():
    from . import models_ar
    return models_ar.Benchmark, {b.id: b for b in models_ar.BENCHMARKS}


def _full_size(bench_id, new_id):
    """M4f and M5f: M4's and M5's models on fashion-mnist-bin, 784-step sequences, batch
    32. (M2 and M3 are already at full size: fashion-mnist-bin, batch 32; M2f and M3f are
    them.)"""
    def build():
        benchmark, by_id = _ar_benchmarks()
        b = by_id[bench_id]
        return benchmark(new_id, b.model, "fashion-mnist-bin", b.config, 32, b.build_torch)
    return build


def _m6_case(full=False):
    """M6: realnvp on digits, batch 128; M6f (full=True): the multi-scale realnvp of the
    README (scales=3, actnorm) on fashion-mnist, batch 64."""
    def built():
        from . import models_flow
        return models_flow.build_full() if full else models_flow.build()

    def make(side):
        from . import models_flow
        spec, model, torch_model, batch = built()
        import torch
        noise = torch.Generator().manual_seed(models_flow.SEED)
        lr = (models_flow.FULL_CONFIG if full else models_flow.CONFIG)["lr"]
        return _train_step(side, model, torch_model, batch, lr,
                           lambda m, x, g: m.loss(x, g), lambda m, x: m.loss(x, noise))

    def check():
        from . import models_flow
        models_flow.check_same_loss(*built(), case="M6f" if full else "M6")

    if full:
        return Case("M6f", "M6f realnvp multi-scale (3 scales, actnorm) train step, "
                    "fashion-mnist 64", make, check, 1.3, 1.0, sets=("Mf",))
    return Case("M6", "M6 realnvp train step, digits 128", make, check, 1.1, 1.0,
                sets=("M",))


def _m8_case():
    def make(side):
        from . import models_diffusion as m8
        model, torch_model, batch = m8.build()
        if side == "minigen":
            return _train_step(side, model, torch_model, batch, m8.CONFIG["lr"],
                               lambda m, x, g: m.loss(x, g), None)
        import torch
        noise = torch.Generator().manual_seed(m8.SEED)

        def torch_loss(m, x):
            t = torch.randint(0, m.T, (len(x),), generator=noise)
            eps = torch.randn((len(x),) + tuple(m.shape), generator=noise)
            return m.loss(x, t, eps)[0]
        return _train_step(side, model, torch_model, batch, m8.CONFIG["lr"], None,
                           torch_loss)

    def check():
        from . import models_diffusion as m8
        m8.check_same_loss(*m8.build())

    return Case("M8", "M8 ddpm train step, digits 128", make, check, 1.3, 1.0,
                sets=("M", "Mf"))


def _kernel_cases():
    """K1-K7 in table order, with BENCHMARKS.md's targets and goals. A call is one fwd+bwd
    (K5's with the inverse) returning every output and gradient; the kernel groups'
    modules import NumPy alone, and each side's call imports that side's library."""
    from . import conv, flow, overhead, sequence
    every = []
    for c in conv.CASES.values():
        target, goal = (1.0, 0.7) if c.kind == "masked_conv2d" else (1.5, 1.1)
        every.append(Case(c.id, c.title, partial(conv.call, c), partial(conv.check, c),
                          target, goal, sets=("K",)))
    n, channels, length = sequence.K3_SHAPE
    for case_id, d in sequence.K3_CASES.items():
        every.append(Case(case_id, f"K3 causal conv1d k=2 d={d} {n}x{channels}x{length}, "
                          "fwd+bwd", partial(sequence.causal_conv_call, d),
                          partial(sequence.check_causal_conv, d), 1.25, 0.9, sets=("K",)))
    for case_id, shape in sequence.K4_CASES.items():
        every.append(Case(case_id, f"K4 causal attention {'x'.join(map(str, shape))}, "
                          "fwd+bwd", partial(sequence.attention_call, shape),
                          partial(sequence.check_attention, shape), 1.5, 1.0, sets=("K",)))
    shape = "x".join(map(str, flow.SHAPE))
    every.append(Case("K5", f"K5 affine coupling fwd+bwd+inverse, {shape}", flow.call,
                      flow.check, 1.25, 1.0, sets=("K",)))
    every.append(Case("K7", "K7 per-op overhead, 100 elementwise ops on 16 floats, fwd+bwd",
                      overhead.call, overhead.check, 1.1, 1.0, unit="us", scale=overhead.OPS,
                      sets=("K",)))
    return every


def _selfcheck_case():
    """X0: the same NumPy sum on both sides, for the harness's own tests (in no set)."""
    def make(side):
        import numpy as np
        a = np.arange(10000, dtype=np.float64)
        return lambda: float(a.sum())

    return Case("X0", "X0 harness self-check: the same NumPy sum on both sides", make,
                lambda: None, unit="us")


def _model_cases():
    _, by_id = _ar_benchmarks()
    return [_ar_case(by_id["M1"], ("M",), 1.1, 1.0),
            _ar_case(by_id["M2"], ("M", "Mf"), 1.1, 1.0,
                     "M2 (= M2f) pixelcnn train step, fashion-mnist-bin 32"),
            _ar_case(by_id["M3"], ("M", "Mf"), 1.1, 1.0,
                     "M3 (= M3f) gated-pixelcnn train step, fashion-mnist-bin 32"),
            _ar_case(by_id["M4"], ("M",), 1.1, 1.0),
            _ar_case(by_id["M5"], ("M",), 1.1, 1.0),
            _m6_case(),
            _ar_case(_full_size("M4", "M4f")(), ("Mf",), 1.3, 1.0),
            _ar_case(_full_size("M5", "M5f")(), ("Mf",), 1.3, 1.0),
            _m6_case(full=True),
            _m8_case()]


def cases():
    """Every case by id, in table order."""
    return {c.id: c for c in _kernel_cases() + _model_cases() + [_selfcheck_case()]}


def get_case(case_id):
    """One case by id, loading only its own kind: X0 needs neither library, and a K case's
    minigen child never imports PyTorch (the M cases' modules import both)."""
    if case_id == "X0":
        return _selfcheck_case()
    kernels = {c.id: c for c in _kernel_cases()}
    return kernels[case_id] if case_id in kernels else cases()[case_id]


# ---------------------------------------------------------------------------------------
# the child: one case, one side

def child(case_id, side, threads, warmup, check_only=False, sample_seconds=0.1):
    """Build one side of one case in this process, warm it up and serve timed samples:
    print a ready line (as one line of JSON after RESULT_PREFIX), then for every "sample"
    read from standard input make a few untimed calls, time one sample and print its
    seconds per call; stop at "stop" or the end of the input. Both sides' children build
    and warm up at the same time, so the calls per sample are set at the first sample,
    when the other side waits."""
    if side == "minigen":
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
        common.limit_blas(threads)  # kernels/parallel.py's threads follow BLAS's
    # benchmarks.parity (the M cases import its copy_weights) defaults OMP_WAIT_POLICY to
    # PASSIVE for its own training runs; here the caller's environment stands for both
    # sides: PyTorch is loaded first, with the environment as it came, and the variable is
    # put back after the imports
    given = os.environ.get("OMP_WAIT_POLICY")
    if side == "torch":
        import torch
        torch.set_num_threads(threads)
    case = get_case(case_id)
    if check_only:
        case.check()  # nothing is timed here: the environment can stay as it ends up
        _reply({"case": case_id, "check": "agree"})
        return
    if side == "minigen":
        import minigen
        minigen.keep_freed_memory()
    started = time.perf_counter()
    fn = case.make(side)
    _restore("OMP_WAIT_POLICY", given)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    fn()
    first = time.perf_counter() - started
    for _ in range(warmup):
        fn()
    _reply({"case": case_id, "side": side, "ready": True, "first_call_s": first,
            "build_s": build_s, "threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")})
    number = None
    for line in sys.stdin:
        if line.strip() != "sample":
            break
        reply = {}
        if number is None:
            number = max(1, int(sample_seconds / max(first_steady(fn), 1e-9)))
            untimed = max(1, number // 4)
            reply = {"calls_per_sample": number, "untimed_calls_per_sample": untimed}
        for _ in range(untimed):  # back in step after the other side's turn
            fn()
        faults = _minor_faults()
        started = time.perf_counter()
        for _ in range(number):
            fn()
        seconds = (time.perf_counter() - started) / number
        per_call = (_minor_faults() - faults) / number
        _reply({"sample_s": seconds, "faults_per_call": per_call, **reply})


def _minor_faults():
    """Pages this process has touched for the first time so far (minor page faults): a
    call that gets fresh memory from the system for its buffers, and has the system zero
    it, every time shows here. Of 48 PyTorch children of M2 (two runs of 24 rounds), 19
    made 0 or 1 per call and their rounds' ratios were 1.32-1.58; 29 made 13,296-21,137
    and theirs were 0.98-1.26 (glibc's malloc hands a large freed buffer back to the
    system or keeps it depending on the sizes and order of earlier frees, so the same step
    differs from one process to the next). minigen's children keep freed memory
    (`minigen.keep_freed_memory()`) and make about 1."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _reply(result):
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def _first_result(lines):
    """The first line a child _reply'd, read back; None if the lines end first (the child
    printed anything else it liked around it)."""
    for line in lines:
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return None


def first_steady(fn, calls=3):
    """Seconds of a call after the warm-up, the median of three: what sets the calls per
    sample (one slow call would leave every sample short)."""
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _restore(name, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _command(case_id, side, args, check_only=False):
    return [sys.executable, "-m", "benchmarks.harness", "child", case_id, side,
            "--threads", str(args.threads), "--warmup", str(args.warmup),
            "--sample-seconds", str(args.sample_seconds)] + (["--check"] if check_only else [])


def run_check(case_id, args):
    """The check process: both sides must agree before the case is timed."""
    done = subprocess.run(_command(case_id, "minigen", args, check_only=True), cwd=ROOT,
                          capture_output=True, text=True, env=CALLER_ENVIRONMENT)
    result = _first_result(done.stdout.splitlines())
    if result is not None:
        return result
    raise RuntimeError(f"{case_id} (check): the child process failed (exit "
                       f"{done.returncode}):\n{done.stderr[-2000:]}")


class Side:
    """One side of one case, built and warmed up in a child process of its own, timing a
    sample whenever asked. `Side(...)` starts the child; `ready()` waits until it has
    built and warmed up. Its standard error goes to a file (a pipe nobody reads could
    fill and stall it); it is shown when the child fails."""

    def __init__(self, case_id, side, args):
        self.name = f"{case_id} ({side})"
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(_command(case_id, side, args), cwd=ROOT,
                                        env=CALLER_ENVIRONMENT, text=True, bufsize=1,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.errors)
        self.info = None

    def ready(self):
        self.info = self._read()
        self.info["samples_s"], self.info["faults_per_call"] = [], []
        return self

    def _read(self):
        result = _first_result(self.process.stdout)
        if result is not None:
            return result
        self.process.wait()
        self.errors.seek(0)
        raise RuntimeError(f"{self.name}: the child process failed (exit "
                           f"{self.process.returncode}):\n{self.errors.read()[-2000:]}")

    def sample(self):
        """Seconds per call over one sample."""
        self.process.stdin.write("sample\n")
        self.process.stdin.flush()
        reply = self._read()
        self.info["samples_s"].append(reply["sample_s"])
        self.info["faults_per_call"].append(reply["faults_per_call"])
        for key in ("calls_per_sample", "untimed_calls_per_sample"):  # the first sample's
            if key in reply:
                self.info[key] = reply[key]
        return reply["sample_s"]

    def close(self):
        """Stop the child; its record: the ready line's fields and every sample."""
        if self.process.poll() is None and self.info is None:
            self.process.kill()  # still building (the other side failed, or Ctrl-C)
            self.process.wait()
        if self.process.poll() is None:
            try:
                self.process.stdin.write("stop\n")
                self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        self.errors.close()
        return self.info


def open_sides(case_id, args, first):
    """Both sides' children, started together (`first` first) and built and warmed up at
    the same time, which halves a round's wait; nothing is timed until both are ready.
    Both are closed again if either fails."""
    opened = {}
    try:
        for side in (first, SIDES[1 - SIDES.index(first)]):
            opened[side] = Side(case_id, side, args)
        for side in opened.values():
            side.ready()
    except BaseException:
        for side in opened.values():
            side.close()
        raise
    return opened


# ---------------------------------------------------------------------------------------
# the parent: rounds, loads, the table

def load():
    return os.getloadavg()[0]


def cpu_seconds():
    """(every process's busy CPU seconds since boot, from /proc/stat, or None where there is
    none; the CPU seconds of this process and of its children that have ended). Busy is
    user, nice, system, irq and softirq time: not idle, iowait, or steal, the time the
    host gave to other machines."""
    own = sum(getattr(resource.getrusage(who), field)
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for field in ("ru_utime", "ru_stime"))
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None, own
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK"), own


def others_cores(before, after, seconds):
    """How many cores, on average, processes other than the harness and its children kept
    busy between two cpu_seconds() readings `seconds` apart (None where /proc/stat is
    missing): the machine's busy time less the harness's own. Unlike the load average it
    does not count the harness's own children, whatever they do at once."""
    if before[0] is None or after[0] is None or seconds <= 0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / seconds)


def standard_error(pairs):
    """The ratio's standard error, as a fraction of it (on the log scale), from the pairs'
    ratios of the rounds so far: the larger of two estimates. Pairs taken as independent,
    the median's 1.25 sd / sqrt(pairs); and rounds taken as the unit, the sd of the rounds'
    own medians / sqrt(rounds), which is the larger when a round's children ran slow or
    fast throughout (a PyTorch child of K1 ran at three times its time for a whole round
    once, and that round's seven pairs moved together)."""
    logs = [math.log(x) for p in pairs for x in p]
    if len(pairs) < 2 or len(logs) < 3:
        return math.inf
    by_pair = 1.2533 * statistics.stdev(logs) / math.sqrt(len(logs))
    medians = [math.log(statistics.median(p)) for p in pairs]
    return max(by_pair, statistics.stdev(medians) / math.sqrt(len(medians)))


def stopping_error(pairs):
    """standard_error as the stopping rule reads it: times sqrt((n - 1) / q), q the 20%
    quantile of chi-square with n - 1 degrees of freedom for n rounds (1.35 at 8 rounds,
    1.16 at 24), the standard deviation's upper bound at 80% confidence.

    Why. A case stops at the first round where its standard error, itself estimated from
    a few rounds, dips below --precision, so the rounds it stops at are those whose spread
    happened to look small. Over three whole runs (b37612c twice, 0c95ecc), the ratios of 22
    cases (K5 left out: its code changed) differed between the runs of each pair by 1.34
    times what the rows' standard errors said (root mean square of difference over
    combined error, 66 differences), and the largest, K2 +14% and K3-d512 -12.6%, came
    from cases that stopped at 8 rounds with errors of 2.0-2.7%."""
    error = standard_error(pairs)
    n = len(pairs)
    if not math.isfinite(error):
        return error
    from scipy.stats import chi2
    return error * math.sqrt((n - 1) / chi2.ppf(0.2, n - 1))


class CaseTiming:
    """One case's rounds so far, taken in one or more stretches of the run (passes: see
    run_passes); its row at any point. The check runs before its first round. Each
    stretch records the load average before and after it, its seconds and the CPU time of
    other processes than the harness and its children during it (cpu_seconds)."""

    def __init__(self, case, args):
        self.case, self.args = case, args
        self.by_side = {side: [] for side in SIDES}
        self.rounds, self.pairs, self.round_passes, self.round_started = [], [], [], []
        self.loads, self.seconds, self.others_busy, self.checked = [], 0.0, 0.0, False

    def more(self, rounds, pass_index=0):
        """`rounds` more rounds (the check first, at the case's first stretch). A round
        starts one child per side (both build at once; which is started first alternates
        by round) and then takes `samples` samples from each, interleaved: one side's
        sample, a pause, the other's, with the order swapped at every pair, so that both
        sides see the same stretch of the machine's time. The pause lets the side that just
        ran park its threads (OpenBLAS's spin for up to about 0.1 s after a product,
        OpenMP's for a while after a parallel region) before the other is timed."""
        args = self.args
        before, started, cpu_before = load(), time.perf_counter(), cpu_seconds()
        if not self.checked:
            run_check(self.case.id, args)
            self.checked = True
        for _ in range(rounds):
            r = len(self.rounds)
            self.round_started.append(time.time())
            sides = open_sides(self.case.id, args, SIDES[r % 2])
            try:
                for i in range(args.samples):
                    for side in (SIDES if (r + i) % 2 == 0 else SIDES[::-1]):
                        time.sleep(args.pause)
                        sides[side].sample()
            finally:
                result = {side: sides[side].close() for side in SIDES}
            for side in SIDES:
                self.by_side[side].append(result[side])
            ours, theirs = result["minigen"]["samples_s"], result["torch"]["samples_s"]
            self.pairs.append([a / b for a, b in zip(ours, theirs)])
            self.rounds.append(statistics.median(self.pairs[-1]))
            self.round_passes.append(pass_index)
        seconds = time.perf_counter() - started
        self.loads.append([before, load()])
        self.seconds += seconds
        others = others_cores(cpu_before, cpu_seconds(), seconds)
        self.others_busy = None if others is None or self.others_busy is None else \
            self.others_busy + others * seconds

    def wants_more(self):
        """Below --rounds, or below --max-rounds with the ratio's standard error, read with
        the allowance for few rounds of stopping_error, above --precision (3%: two runs'
        ratios then differ by more than 10% at most about once in fifty cases, where the
        machine itself has not changed)."""
        return len(self.rounds) < self.args.rounds or (
            len(self.rounds) < self.args.max_rounds and
            stopping_error(self.pairs) > self.args.precision)

    def row(self, quiet_start=True):
        """The case's row from its rounds so far.

        A case is valid when the run began quiet (its load average at most max_load) and,
        during the case's stretches, other processes than the harness and its children
        kept at most max_load cores busy on average (others_cores: the machine's busy CPU
        time less the harness's own). The load average cannot tell them apart: it counts
        the harness's own children, and two of them build at once, so a quiet run reached
        a load of 2.7 (two whole runs at 605f666, whose bound of threads + max_load, 2.5,
        marked M6f and M8 invalid). Where /proc/stat is missing, the load average must
        stay within 2 threads + max_load."""
        case, args, by_side, pairs = self.case, self.args, self.by_side, self.pairs
        others = None if self.others_busy is None or self.seconds <= 0 else \
            self.others_busy / self.seconds
        loads = [x for pair in self.loads for x in pair]
        quiet = max(loads) <= 2 * args.threads + args.max_load if others is None else \
            others <= args.max_load
        medians = {side: statistics.median(t for res in by_side[side]
                                           for t in res["samples_s"]) for side in SIDES}
        ratio = statistics.median(x for p in pairs for x in p)
        error = standard_error(pairs)
        factor = {"s": 1.0, "ms": 1e3, "us": 1e6}[case.unit] / case.scale
        return {"id": case.id, "name": case.title, "unit": case.unit,
                "minigen": medians["minigen"] * factor, "torch": medians["torch"] * factor,
                "ratio": ratio, "round_ratios": list(self.rounds),
                "spread": [min(self.rounds), max(self.rounds)],
                "pair_ratios": list(pairs), "standard_error": error,
                "seconds": self.seconds,
                "ratio_of_medians": medians["minigen"] / medians["torch"],
                "target": case.target, "goal": case.goal,
                "meets_target": None if case.target is None else ratio <= case.target,
                "load_before": self.loads[0][0],
                "load_after": max(after for _, after in self.loads),
                "loads": [list(x) for x in self.loads], "others_cores": others,
                "valid": quiet_start and quiet,
                "round_passes": list(self.round_passes),
                "round_started": list(self.round_started),
                "first_call_s": {side: [res["first_call_s"] for res in by_side[side]]
                                 for side in SIDES},
                "children": by_side}


def measure(case, args, quiet_start=True):
    """One case on its own, all its rounds in one stretch: --rounds rounds, then more, one
    at a time, up to --max-rounds while the ratio's standard error is above --precision;
    the case's row (CaseTiming.row)."""
    timing = CaseTiming(case, args)
    timing.more(args.rounds)
    while timing.wants_more():
        timing.more(1)
    return timing.row(quiet_start)


def pass_shares(rounds, passes):
    """The rounds each of the first `passes` passes gives every case: `rounds` split as
    evenly as it goes, the larger shares first (8 over 4: 2, 2, 2, 2; 9 over 4: 3, 2, 2,
    2)."""
    return [rounds // passes + (p < rounds % passes) for p in range(passes)]


def run_passes(timings, args):
    """The order of a whole run: (pass, timing, rounds) to take, one after the other. The
    first --passes passes give every case its share of --rounds (pass_shares), in the
    order given; after them, each further pass gives one more round to every case that
    still wants_more (its standard error above --precision, below --max-rounds), until
    none does. A case's rounds are thus spread over the whole run rather than taken in one
    stretch of a minute or two: why, see the module's docstring. A generator: whether a
    case wants more is asked after its last rounds have run."""
    for p, share in enumerate(pass_shares(args.rounds, args.passes)):
        for timing in timings:
            yield p, timing, share
    p = args.passes
    while True:
        wanting = [t for t in timings if t.wants_more()]
        if not wanting:
            return
        for timing in wanting:
            yield p, timing, 1
        p += 1


def _others(row):
    """A row's others_cores as shown; "?" where it was not measured (no /proc/stat, or a
    results file from before it was recorded)."""
    return "?" if row.get("others_cores") is None else f"{row['others_cores']:.2f}"


def format_rows(rows):
    header = ["benchmark", "minigen", "PyTorch", "ratio", "rounds: n, low-high", "target",
              "load before/after", "others' cores", ""]
    lines = []
    for r in rows:
        verdict = "INVALID (load)" if not r["valid"] else \
            ("" if r["target"] is None else ("ok" if r["meets_target"] else "MISSED"))
        lines.append([r["name"], f"{r['minigen']:.4g} {r['unit']}",
                      f"{r['torch']:.4g} {r['unit']}",
                      f"{r['ratio']:.2f} +-{r['standard_error']:.1%}",
                      f"{len(r['round_ratios'])}, "
                      f"{r['spread'][0]:.2f}-{r['spread'][1]:.2f}",
                      "" if r["target"] is None else f"<= {r['target']}",
                      f"{r['load_before']:.2f}/{r['load_after']:.2f}",
                      _others(r),
                      verdict])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    fmt = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] +
                     [fmt(cells) for cells in lines])


def compare(path_a, path_b, tolerance=TOLERANCE):
    """Lines comparing two results files, and whether every ratio repeats within
    tolerance (and both runs are valid)."""
    a, b = (json.load(open(p)) for p in (path_a, path_b))
    rows_b = {r["id"]: r for r in b["rows"]}
    lines, ok = [], True
    for ra in a["rows"]:
        rb = rows_b.get(ra["id"])
        if rb is None:
            lines.append(f"{ra['id']}: only in {path_a}")
            continue
        rel = rb["ratio"] / ra["ratio"] - 1.0
        valid = ra["valid"] and rb["valid"]
        good = valid and abs(rel) <= tolerance
        ok &= good
        lines.append(f"{ra['id']}: {ra['ratio']:.3f} then {rb['ratio']:.3f} ({rel:+.1%}) "
                     f"{'ok' if good else ('INVALID run' if not valid else 'DIFFERS')}")
    return lines, ok


def _ratio_cell(row):
    """The ratio, its standard error where the run recorded one (runs before --precision
    did not) and, in brackets, its rounds' range."""
    error = row.get("standard_error")
    return (f"{row['ratio']:.2f}" + ("" if error is None else f" ±{error:.1%}") +
            f" ({row['spread'][0]:.2f}-{row['spread'][1]:.2f})")


def markdown(path_a, path_b, tolerance=TOLERANCE):
    """The README's table of two runs: each side's median in both, both ratios with their
    rounds' range, how far run 2 moved from run 1, the target; then the machine and load
    line of each run."""
    a, b = (json.load(open(p)) for p in (path_a, path_b))
    rows_b = {r["id"]: r for r in b["rows"]}
    lines = ["| benchmark | minigen, run 1 / 2 | PyTorch, run 1 / 2 | ratio run 1 | ratio run 2 "
             "| run 2 against 1 | target |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for ra in a["rows"]:
        rb = rows_b.get(ra["id"])
        if rb is None:
            continue
        rel = rb["ratio"] / ra["ratio"] - 1.0
        moved = f"{rel:+.1%}" + ("" if abs(rel) <= tolerance else " (differs)")
        if not (ra["valid"] and rb["valid"]):
            moved += " (INVALID run)"
        lines.append(
            f"| {ra['name']} | {ra['minigen']:.4g} / {rb['minigen']:.4g} {ra['unit']} | "
            f"{ra['torch']:.4g} / {rb['torch']:.4g} {ra['unit']} | "
            f"{_ratio_cell(ra)} | {_ratio_cell(rb)} | {moved} | "
            + ("" if ra["target"] is None else f"<= {ra['target']}") + " |")
    for name, run in (("run 1", a), ("run 2", b)):
        m, rows = run["machine"], run["rows"]
        lines.append(f"\n{name}: {m['cpu']}, {m['cores_available']} cores, {m['threads']} "
                     f"threads each, {m['date']}, commit {m['minigen_commit'][:7]}"
                     f"{' (modified)' if m.get('minigen_modified') else ''}; load average "
                     f"{rows[0]['load_before']:.2f} before the first case, "
                     f"{max(r['load_after'] for r in rows):.2f} at most after one")
    return "\n".join(lines)


def chart(paths, out):
    """A picture of several runs' ratios: one line per case, a dot per run (its colour in
    the legend), the rounds' range as a bar behind each dot, 1.0 (parity) and the case's
    target marked; the ratio axis is logarithmic, so 0.5x and 2x sit equally far from 1."""
    import math

    from PIL import Image, ImageDraw

    runs = []
    for path in paths:
        try:
            with open(path) as f:
                runs.append(json.load(f))
            runs[-1]["rows"][0]["ratio"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ValueError(f"{path} is not a harness results file") from None
    ids = [r["id"] for r in runs[0]["rows"]]
    rows = [{r["id"]: r for r in run["rows"]} for run in runs]
    low, high = 0.25, 4.0
    left, right, top, line = 90, 30, 40, 22
    width, height = 760, top + line * len(ids) + 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    x_of = lambda v: left + (width - left - right) * (
        math.log(min(max(v, low), high) / low) / math.log(high / low))
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    for tick in (0.25, 0.5, 0.7, 1.0, 1.3, 2.0, 4.0):
        x = x_of(tick)
        draw.line([(x, top - 8), (x, height - 40)], fill=(120, 120, 120) if tick == 1.0
                  else (225, 225, 225), width=2 if tick == 1.0 else 1)
        draw.text((x - 10, height - 34), f"{tick:g}x", fill="black")
    draw.text((left, height - 18), "minigen time / PyTorch time (log scale); | target",
              fill="black")
    for i, case in enumerate(ids):
        y = top + line * i + line // 2
        draw.text((8, y - 6), case, fill="black")
        target = rows[0][case]["target"]
        if target:
            x = x_of(target)
            draw.line([(x, y - 8), (x, y + 8)], fill=(200, 0, 0), width=2)
        for k, by_id in enumerate(rows):
            row = by_id.get(case)
            if row is None:
                continue
            dy = (k - (len(rows) - 1) / 2) * 5
            colour = colours[k % len(colours)]
            lo, hi = row["spread"]
            draw.line([(x_of(lo), y + dy), (x_of(hi), y + dy)], fill=colour, width=1)
            x = x_of(row["ratio"])
            draw.ellipse([x - 3, y + dy - 3, x + 3, y + dy + 3], fill=colour)
    for k, run in enumerate(runs):
        m = run["machine"]
        draw.text((left + 160 * k, 10), f"run {k + 1}: {m['date'][:16]}",
                  fill=colours[k % len(colours)])
    from minigen import checkpoint
    checkpoint.write_atomically(out, lambda f: image.save(f, format="PNG"))
    return out


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    kid = sub.add_parser("child", help="(internal) time one side of one case")
    kid.add_argument("case")
    kid.add_argument("side", choices=SIDES)
    kid.add_argument("--check", action="store_true")
    cmp_ = sub.add_parser("compare", help="do two results files agree within tolerance?")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    cmp_.add_argument("--tolerance", type=float, default=TOLERANCE)
    cmp_.add_argument("--markdown", action="store_true",
                      help="also print the two runs as the README's table")
    pic = sub.add_parser("chart", help="a picture of several runs' ratios against targets")
    pic.add_argument("runs", nargs="+", help="results files (at most 4)")
    pic.add_argument("--out", required=True, help="the PNG to write")
    for p in (parser, kid):
        p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
        p.add_argument("--warmup", type=int, default=3)
        p.add_argument("--sample-seconds", dest="sample_seconds", type=float, default=0.1,
                       help="calls per timed sample: as many as last this long (0.1 s)")
    parser.add_argument("--set", default="M", choices=("M", "Mf", "K", "all"))
    parser.add_argument("--cases", nargs="+", help="case ids (instead of --set)")
    parser.add_argument("--rounds", type=int, default=ROUNDS,
                        help=f"fresh pairs of child processes per case ({ROUNDS})")
    parser.add_argument("--samples", type=int, default=SAMPLES,
                        help=f"timed samples per side per round, at least 5 ({SAMPLES})")
    parser.add_argument("--passes", type=int, default=None,
                        help="passes over the cases that share out --rounds, so that each "
                             f"case's rounds spread over the whole run ({PASSES}, or "
                             "--rounds where that is fewer)")
    parser.add_argument("--max-rounds", dest="max_rounds", type=int, default=MAX_ROUNDS,
                        help="more rounds, up to this many, while the ratio's standard "
                             f"error is above --precision ({MAX_ROUNDS})")
    parser.add_argument("--precision", type=float, default=PRECISION,
                        help="the standard error, as a fraction of the ratio, that ends "
                             f"a case's rounds before --max-rounds ({PRECISION})")
    parser.add_argument("--pause", type=float, default=PAUSE,
                        help=f"seconds between one side's sample and the other's ({PAUSE})")
    parser.add_argument("--max-load", type=float, default=MAX_LOAD)
    parser.add_argument("--allow-load", action="store_true",
                        help="run above --max-load; such cases are marked invalid")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.command is None and args.samples < 5:
        parser.error("--samples must be at least 5 (BENCHMARKS.md)")
    if args.command is None and args.rounds < 2:
        parser.error("--rounds must be at least 2: the spread needs more than one round")
    if args.command is None and args.max_rounds < args.rounds:
        parser.error(f"--max-rounds ({args.max_rounds}) must be at least --rounds "
                     f"({args.rounds})")
    if args.command is None and args.passes is None:
        args.passes = min(PASSES, args.rounds)
    if args.command is None and not 1 <= args.passes <= args.rounds:
        parser.error(f"--passes must be 1 to --rounds ({args.rounds}): each pass gives "
                     f"every case at least one round")
    if args.command is None and args.precision <= 0:
        parser.error("--precision must be more than 0 (a fraction of the ratio: 0.03)")
    if args.command is None and args.pause < 0:
        parser.error("--pause must be 0 or more seconds")
    if args.command in (None, "child"):
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        if args.warmup < 0:
            parser.error("--warmup must be 0 or more calls")
        if args.sample_seconds <= 0:
            parser.error("--sample-seconds must be more than 0")
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    args = parse(argv)
    if args.command == "child":
        return child(args.case, args.side, args.threads, args.warmup, args.check,
                     args.sample_seconds)
    if args.command == "chart":
        if len(args.runs) > 4:
            sys.exit("harness chart: at most 4 runs")
        missing = [p for p in args.runs if not os.path.exists(p)]
        if missing:
            sys.exit(f"harness chart: no such results file: {', '.join(missing)}")
        if not args.out.lower().endswith(".png"):
            sys.exit(f"harness chart: --out {args.out}: the picture is a PNG; name it "
                     f"*.png (nothing written)")
        try:
            print(f"wrote {chart(args.runs, args.out)}")
        except ValueError as e:
            sys.exit(f"harness chart: {e}")
        return 0
    if args.command == "compare":
        lines, ok = compare(args.a, args.b, args.tolerance)
        print("\n".join(lines))
        if args.markdown:
            print("\n" + markdown(args.a, args.b, args.tolerance) + "\n")
        print("every ratio repeats within " + f"{args.tolerance:.0%}" if ok else
              f"NOT every ratio repeats within {args.tolerance:.0%}")
        return 0 if ok else 1
    if args.cases:
        try:
            chosen = [get_case(c) for c in args.cases]
        except KeyError as e:
            sys.exit(f"harness: unknown case {e.args[0]}; known: {', '.join(cases())}")
    else:
        chosen = [c for c in cases().values() if args.set == "all" and c.sets or
                  args.set in c.sets]
    now = load()
    if now > args.max_load and not args.allow_load:
        sys.exit(f"harness: load average {now:.2f} is above {args.max_load}: not a quiet "
                 f"machine, nothing timed (--allow-load runs anyway, marking it invalid)")
    info = common.machine_info(args.threads)
    print(f"{info['cpu']}, {info['cores_available']} cores, {args.threads} threads each, "
          f"{args.rounds} to {args.max_rounds} rounds (until the ratio's standard error "
          f"is {args.precision:.0%} or less) in {args.passes} passes and more, x "
          f"{args.samples} interleaved samples per side, separate "
          f"processes, {args.pause} s pause, "
          f"OMP_WAIT_POLICY={CALLER_ENVIRONMENT.get('OMP_WAIT_POLICY', 'unset')}",
          flush=True)
    kept, done = None, 0
    name = "-".join(args.cases) if args.cases else args.set
    config = {k: v for k, v in vars(args).items() if k != "command"}
    timings = [CaseTiming(case, args) for case in chosen]
    quiet_start = now <= args.max_load
    so_far = lambda: [t.row(quiet_start) for t in timings if t.rounds]
    signal.signal(signal.SIGTERM, _interrupt)  # as Ctrl-C: the round's children are stopped
    last_pass = -1
    try:
        for p, timing, share in run_passes(timings, args):
            if p != last_pass:
                last_pass = p
                print(f"pass {p + 1}: " + (
                    f"{share} round{'s' if share > 1 else ''} of each case"
                    if p < args.passes else "one more round of " +
                    ", ".join(t.case.id for t in timings if t.wants_more()) +
                    f" (standard error above {args.precision:.0%})"), flush=True)
            timing.more(share, p)
            done += share
            row = timing.row(quiet_start)
            if not args.no_write:  # a whole run takes 40 minutes: keep what is done
                kept = common.write_results(f"harness-{name}.partial", so_far(), info,
                                            config)
            n = len(row["round_ratios"])
            print(f"  {row['id']}: ratio {row['ratio']:.2f} +- {row['standard_error']:.1%} "
                  f"({n} round{'s' * (n > 1)} {row['spread'][0]:.2f}-"
                  f"{row['spread'][1]:.2f}, {row['seconds']:.0f} s), "
                  f"load {timing.loads[-1][0]:.2f} -> {timing.loads[-1][1]:.2f}, other "
                  f"processes {_others(row)} cores", flush=True)
    except KeyboardInterrupt:
        sys.exit(f"harness: interrupted in pass {last_pass + 1}, after {done} rounds of "
                 f"{len(chosen)} cases; " +
                 ("nothing written" if kept is None else f"those are in {kept}") +
                 " (the results file is written when every case has had all its rounds)")
    rows = so_far()
    print(format_rows(rows))
    if not args.no_write:
        path = common.write_results(f"harness-{name}", rows, info, config)
        if kept is not None:
            os.remove(kept)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
