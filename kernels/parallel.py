"""Independent pieces of a kernel's work in Python threads, each with BLAS held to one thread
(the kernels here, and the engine's large matrix products: minigen/ops/linalg.py).

NumPy releases the GIL inside its array loops and BLAS calls, so Python threads run them on
all cores at once. This beats leaving the threading to OpenBLAS, measured on the 2-core
development machine: every NumPy elementwise pass (exp, max) uses both cores instead of one,
the small matrix products of a kernel run without a barrier per product, and idle threads
take the next piece from a shared queue, so the work balances itself. With one core busy
elsewhere, K3's conv forward and backward took 60-100 ms this way against 190-720 ms with
OpenBLAS's two threads, which wait for each other at every product.

The threads are as many as BLAS itself is set to use (threadpoolctl reads it), so
OPENBLAS_NUM_THREADS=1 or threadpoolctl.threadpool_limits(1) means no extra threads here.
"""
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from threadpoolctl import ThreadpoolController

MIN_WORK = 1 << 23  # multiply-adds per call below which threads cost more than they save

_pools = {}
_blas = None
_held = threading.Lock()  # one call at a time holds BLAS to one thread and restores it


def _blas_libraries():
    global _blas
    if _blas is None:
        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def threads(work):
    """How many threads a call with this many multiply-adds should use."""
    if work < MIN_WORK:
        return 1
    return max([lib["num_threads"] for lib in _blas_libraries().info()] or [1])


def run(task, pieces, work):
    """[task(piece) for piece in pieces], in threads where `work` (multiply-adds in all)
    pays for them; the results come back in the order of the pieces."""
    n = threads(work)
    if n < 2 or len(pieces) < 2:
        return [task(piece) for piece in pieces]
    pool = _pools.get(n) or _pools.setdefault(
        n, ThreadPoolExecutor(n, thread_name_prefix="minigen-kernel"))
    with one_blas_thread():
        return [future.result() for future in [pool.submit(task, piece) for piece in pieces]]


@contextlib.contextmanager
def one_blas_thread():
    """BLAS held to one thread for the duration (about 30 us to set and restore), as
    inside run's threads: a product that OpenBLAS would share out runs on the caller's."""
    with _held, _blas_libraries().limit(limits=1):
        yield
