"""Keep freed host memory for reuse instead of handing it back to the system.

A training step allocates and frees the same large arrays every time (activations and
their gradients, a few megabytes each). glibc's malloc serves blocks above 128 KB (a
threshold it raises as it goes, up to 32 MB) with fresh mmap pages and unmaps them on free,
so the next step faults every page in again: an np.maximum over a (128, 64, 8, 8) float32
activation took 1.3 ms inside a RealNVP step against 0.2 ms on warm memory. PyTorch avoids
this with its own caching allocator. `keep_freed_memory()` asks glibc (mallopt) to serve
blocks up to 256 MB from its heap and to keep up to 1 GB of freed heap: a RealNVP train
step on digits (batch 128) went from 186 ms to 151 ms. The cost is that the process keeps
its peak heap after the peak has passed.

These are settings of the whole process, so importing minigen does not make them: a
program that trains calls `mg.keep_freed_memory()` once at its start, as `minigen`'s
command line and the benchmarks do.

    import minigen as mg
    mg.keep_freed_memory()

Set MINIGEN_MALLOC=system to make the call leave malloc as it was, or tune it yourself with
glibc's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ variables (then minigen leaves
it alone). Other C libraries (macOS, musl) are left alone.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # from glibc's malloc.h
MMAP_THRESHOLD = 256 << 20
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20

tuned = False


def keep_freed_memory():
    """Apply the settings above where the C library is glibc; True if applied."""
    global tuned
    if tuned or not sys.platform.startswith("linux"):
        return tuned
    if os.environ.get("MINIGEN_MALLOC", "") == "system" or any(
            name.startswith("MALLOC_") for name in os.environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # only glibc has it; mallopt's codes are glibc's
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    tuned = all(mallopt(code, value) == 1 for code, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD)))
    return tuned
