"""``fit`` of a one-hidden-layer network on several threads, each owning a share of the hidden units.

A mini-batch step of a small network takes ~10-50 us, too short to split
by samples: the threads would have to add up their gradients and all read
the updated parameters every step, and moving those between cores costs
more than the step (measured: a 64-64-10 step went from 16 to 24 us).  So
the network is split by hidden units instead (as in tensor-parallel
training).  Thread t owns hidden units [c_t, c_(t+1)): the columns of W1
and entries of b1 that feed them and the rows of W2 they feed.  One step:

1. every thread gathers the whole batch, computes its units' z1 and y1, and
   its share of the output layer's weighted sums, y1[:, own] @ W2[own, :];
2. one barrier; every thread adds the shares (in thread order) and b2, so
   all of them hold the same z2, y2, loss and delta2 (the output layer is
   small: its work is done by each thread);
3. each thread computes delta1 of its own units, delta1 = (delta2
   W2[own, :]^T) f'(z1), and the gradients and update of its own
   parameters.  b2 is updated by every thread on its own copy, with the
   same numbers, so no thread ever writes what another reads.

Only the output layer's shares cross between cores: batch x n_out numbers a
step.  The results differ from one thread's only by the order of the sums
over hidden units in z2 (rounding), and do not depend on timing.

The parameters are copied into a *packed* vector for the run: thread t's
block is [W1[:, own] (n_in, h_t) | b1[own] | W2[own, :] (h_t, n_out) | b2],
contiguous, so the optimizer updates each block in one call.  The optimizer
state, the frozen mask and the divergence backup are packed the same way.

Threads: the caller's thread runs share 0; daemon helper threads, started
once per process, run the others.  A run takes all helpers or, when another
run has them, runs on one thread (the caller then uses ``_engine``).
"""

import contextlib
import ctypes
import functools
import math
import os
import queue
import threading
import time

import numpy as np

from fastbp.config import MIN_GEMM_SAMPLES
from fastbp.engine._threaded_pass import ENTERED, IDLE_SPINS, fit_epochs_share
from fastbp.engine._wide import fit_epochs_wide
from fastbp.kernels import _sync
from fastbp.kernels.activations import SOFTMAX

# A network gets the threaded fit when each thread's share of the first layer's product,
# batch_size * n_in * h_t multiply-adds, lies in this range.  Below it the split does not pay: at
# 16 K (64-32-10, batch 16; 32-32-4, batch 32) two threads were 0.92x and 1.02x as fast as one, at
# 32 K 1.09-1.23x, at 64 K 1.43x, at 128 K 1.55x (2-core VM, tanh/sigmoid).
MIN_SHARE_MULTIPLY_ADDS = 32 * 1024

# ... or when each thread's share of the parameters is at least MIN_SHARE_PARAMS: with few samples a step,
# the optimizer's pass over the parameters is most of the work (Adam's square root and division a
# parameter).  Measured (AMD EPYC Zen 3, Adam, 64-h-10 ReLU, batch 1, epochs of 256 samples): h = 512
# (19 K parameters a thread) float64 10.1 against 16.5 ms on one thread, float32 7.3 against 7.7 ms;
# h = 256 (9.5 K) 8.8 against 8.8 ms.
MIN_SHARE_PARAMS = 16 * 1024


# Where BLAS cannot be kept to the calling thread (``can_pin_blas``), shares stay at most this big: above it
# OpenBLAS would start its own threads inside each of ours.  Where it can, there is no upper limit: the
# split by units beat the wide fit at every size measured (AMD EPYC Zen 3, Adam, float32 epochs, 64-h-10
# ReLU): h = 1024, batch 256 21.1 against 31.9 ms (float64 33.3 against 45.3), batch 32 26.4 against 45.7;
# h = 512, batch 256 10.5 against 12.1, batch 32 13.2 against 23.7.
MAX_SHARE_MULTIPLY_ADDS = 256 * 1024


MIN_UNITS_PER_THREAD = 8


_requested_threads = None  # set_num_threads; None: the environment or the CPU count decides


# When a run's threads kept waiting for each other (a partner lost its core: another busy process,
# or OpenBLAS's own threads, which spin ~0.1 s after each multithreaded BLAS call), lock-stepped
# threads are slower than one; runs then use one thread for CONTENDED_SECONDS.
CONTENDED_SECONDS = 2.0


# Thread 0 of a run of at least MIN_JUDGED_BARRIERS steps that spent more than CONTENDED_WAIT_SHARE
# of its time (after the first barrier, up to the last) waiting in barriers was kept waiting by a
# partner without a core: measured 0.01-0.04 on an idle machine, 0.45 with OpenBLAS's threads spinning.
CONTENDED_WAIT_SHARE = 0.3


MIN_JUDGED_BARRIERS = 64


_one_thread_until = -math.inf


_cpus: list[int] = []  # [count] once asked; emptied in a forked child


def available_cpus():
    """CPUs this process may run on (asked once per process)."""
    if not _cpus:
        try:
            _cpus.append(len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            _cpus.append(os.cpu_count() or 1)
    return _cpus[0]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_cpus.clear)


_local = threading.local()


@contextlib.contextmanager
def limit_threads(n):
    """Within the block, fits started from this thread use at most n threads (e.g. 1 in a Dask task,
    where other tasks have the other cores)."""
    before = getattr(_local, "limit", None)
    _local.limit = n if before is None else min(n, before)
    try:
        yield
    finally:
        _local.limit = before


def get_num_threads():
    """Threads a ``fit`` may use: set_num_threads's value, else $FASTBP_NUM_THREADS, else min(2, CPUs)."""
    limit = getattr(_local, "limit", None)
    if limit is not None:
        return min(limit, _configured_threads())
    return _configured_threads()


def _configured_threads():
    if _requested_threads is not None:
        return _requested_threads
    env = os.environ.get("FASTBP_NUM_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"FASTBP_NUM_THREADS must be an integer >= 1, got {env!r}") from None
        if value < 1:
            raise ValueError(f"FASTBP_NUM_THREADS must be an integer >= 1, got {env!r}")
        return value
    return min(2, available_cpus())


def set_num_threads(n):
    """Let ``fit`` use up to n threads (1: never more than the caller's); None: back to the default.

    Only ``fit`` uses more than one thread, at sizes where it pays: split by hidden units for one hidden
    layer (``fastbp.engine._threaded``), by samples or units and parameters for any depth
    (``fastbp.engine._wide``).
    """
    global _requested_threads
    if n is None:
        _requested_threads = None
        return
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"the number of threads must be an integer >= 1 or None, got {n!r}")
    _requested_threads = int(n)


def thread_bounds(layout, batch_size):
    """int64 (T+1,) hidden-unit boundaries of the threads for this network and batch size, or None for one thread.

    The array may be shared with other calls: do not write to it."""
    wanted = get_num_threads()
    if wanted < 2 or contended():
        return None
    return _bounds(layout.size_tuple, layout.code_tuple, batch_size, wanted)


def unit_split(sizes, codes, batch_size):
    """The hidden-unit bounds ``thread_bounds`` gives a one-hidden-layer network of these sizes (n_in, h,
    n_out) and activation codes (hidden, output) at this batch size when its threads are free; None for one
    thread.  The array may be shared with other calls: do not write to it."""
    wanted = get_num_threads()
    if wanted < 2:
        return None
    return _bounds(tuple(int(s) for s in sizes), tuple(int(c) for c in codes), int(batch_size), wanted)


def contended():
    """True while fits run on one thread because a recent run's threads kept waiting for each other."""
    return time.monotonic() < _one_thread_until


@functools.lru_cache(maxsize=256)
def _bounds(sizes, codes, batch_size, wanted):
    if len(codes) != 2 or codes[0] == SOFTMAX:
        return None
    n_in, h, n_out = sizes
    n_threads = min(wanted, h // MIN_UNITS_PER_THREAD)
    while n_threads > 1 and (
        batch_size * n_in * (h // n_threads) < MIN_SHARE_MULTIPLY_ADDS
        and (n_in + n_out + 1) * (h // n_threads) < MIN_SHARE_PARAMS
    ):
        n_threads -= 1
    if n_threads < 2:
        return None
    if batch_size * max(n_in, n_out) * -(-h // n_threads) > MAX_SHARE_MULTIPLY_ADDS and not can_pin_blas():
        return None
    return np.asarray([h * t // n_threads for t in range(n_threads + 1)], dtype=np.int64)


# A network of any depth gets the wide threaded fit (``engine._wide``) when a step multiplies at least
# MIN_WIDE_STEP_MULTIPLY_ADDS (batch size x parameters, the forward pass's count) or the network has
# MIN_WIDE_PARAMS parameters: below both, its two barriers a step cost more than the half of the work
# they save.  Measured (float32 epochs, 2-core VM, 64-w-...-10 ReLU nets, Adam): batch 32 at 41 K
# parameters (1.3 M multiply-adds) 13.4 against 15.5 ms on one thread, at 9.6 K (0.3 M) 4.9 against
# 2.5 ms with the one-hidden-layer split; batch 1 at 41 K 12.5 against 10.7 ms, at 76 K 21 against 11
# ms with that split, at 560 K 116 against 236 ms.
MIN_WIDE_STEP_MULTIPLY_ADDS = 1024 * 1024
MIN_WIDE_PARAMS = 256 * 1024

# ... and, at batch sizes below MIN_GEMM_SAMPLES, where a step is mostly the optimizer's pass over the
# parameters (Adam's square root and division, which the wide fit splits across the cores), from this many
# parameters, by the parameters' bytes per entry: fewer in float64, whose divisions take twice as long a
# parameter.  Measured (AMD EPYC Zen 3, Adam, 64-w-w-w-10 ReLU, batch 1, epochs of 256 samples, against one
# thread): float32 w = 128 (42 K parameters) 9.5 against 8.9 ms, w = 160 (63 K) 11.8 against 12.7, w = 192
# (88 K) 14.1 against 17.4; float64 w = 64 (13 K) 6.3 against 7.8, w = 128 (42 K) 15.9 against 19.6.
MIN_WIDE_PARAMS_FEW_SAMPLES = {4: 56 * 1024, 8: 12 * 1024}


def wide_threads(layout, batch_size, dtype):
    """Threads for the wide threaded fit of this network, batch size and parameter dtype (float32 or
    float64), or None for another engine."""
    wanted = get_num_threads()
    if wanted < 2 or contended():
        return None
    return _wide_count(layout.code_tuple, layout.n_params, batch_size, np.dtype(dtype).itemsize, wanted)


@functools.lru_cache(maxsize=256)
def _wide_count(codes, n_params, batch_size, itemsize, wanted):
    if SOFTMAX in codes[:-1] or not can_pin_blas():
        return None
    few_samples = batch_size < MIN_GEMM_SAMPLES and n_params >= MIN_WIDE_PARAMS_FEW_SAMPLES[itemsize]
    if n_params < MIN_WIDE_PARAMS and batch_size * n_params < MIN_WIDE_STEP_MULTIPLY_ADDS and not few_samples:
        return None
    return wanted


class _Job:
    """One call for a helper thread; a failure before or in the call aborts the run's barrier.

    ``finished`` is a lock held until the call has returned (a lock is cheaper to make than an Event).
    """

    def __init__(self, fn, args, sync):
        self.fn = fn
        self.args = args
        self.sync = sync
        self.result = None
        self.error = None
        self.finished = threading.Lock()
        self.finished.acquire()

    def __call__(self):
        try:
            self.result = self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller's thread
            self.error = exc
            self.sync[_sync.ABORT] = 1
        finally:
            self.finished.release()

    def wait(self):
        self.finished.acquire()
        self.finished.release()


class _Helpers:
    """Daemon threads, each running one _Job at a time from its own queue.

    Waking a thread blocked on a queue and handing it the GIL took ~60-100 us
    here (the idle virtual CPU has to be woken), as long as an epoch of a
    small network.  So a helper's job, after its share, spins on for up to
    IDLE_SPINS tries (~1 ms, in compiled code, without the GIL) until the
    thread 0 of the next run has entered its compiled share (``control[ENTERED]``
    counts those entries).  By then that thread has posted the next job and
    let go of the GIL, so the helper returns to Python, finds the job in its
    queue and starts at once: ``fit`` called in a loop finds its helpers awake.
    """

    def __init__(self, n):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.control = np.zeros(_sync.SYNC_LENGTH, dtype=np.int64)
        self.queues = [queue.SimpleQueue() for _ in range(n)]
        self.threads = []
        for i, q in enumerate(self.queues):
            thread = threading.Thread(target=self._serve, args=(q,), name=f"fastbp-share-{i + 1}", daemon=True)
            thread.start()
            self.threads.append(thread)

    @staticmethod
    def _serve(q):
        while True:
            q.get()()

    def usable(self, n):
        return self.pid == os.getpid() and len(self.threads) >= n and all(t.is_alive() for t in self.threads[:n])


_helpers = None


_helpers_lock = threading.Lock()


def acquire_helpers(n):
    """The helper threads, locked for one run, or None if another run has them (then run on one thread)."""
    global _helpers
    with _helpers_lock:
        if _helpers is None or not _helpers.usable(n):
            _helpers = _Helpers(n)  # also after a fork: the parent's threads do not exist in the child
        helpers = _helpers
    if not helpers.lock.acquire(blocking=False):
        return None
    return helpers


_helper_entry = fit_epochs_share  # what the helpers call (a test replaces it to make a helper fail)


_wide_helper_entry = fit_epochs_wide  # the same for the wide fit


_ran_before: set = set()  # the dtypes of threaded runs so far: a first run compiles (or loads) the shares


def run_team(helpers, helper_entry, entry, args_of, n_threads, sync, dtype):
    """Run ``helper_entry`` for threads 1..T-1 on the helpers and ``entry`` for thread 0 here, each with
    ``args_of(t, entered_before, max_spins)``; thread 0's status.  BLAS runs on one thread in each.

    A failure in any thread aborts the others at their next barrier and is
    raised here once all have stopped (a status of -3 is an abort).  A run in which thread 0 spent more
    than CONTENDED_WAIT_SHARE of its time waiting in barriers makes the runs
    of the next CONTENDED_SECONDS use one thread (not a run that compiled:
    thread 0 then waits for the helper's compilation).
    """
    global _one_thread_until
    entered_before = int(helpers.control[ENTERED])
    passed_before = int(sync[_sync.BARRIER]) // n_threads

    jobs = []
    try:
        with blas_alone():
            for t in range(1, n_threads):
                job = _Job(_on_one_blas_thread, (helper_entry, *args_of(t, entered_before, IDLE_SPINS)), sync)
                jobs.append(job)
                helpers.queues[t - 1].put(job)
            result = entry(*args_of(0, entered_before, 0))
    except BaseException:
        sync[_sync.ABORT] = 1
        for job in jobs:
            job.wait()
        sync[:] = 0
        raise
    if result != -3:
        # every thread passed the last barrier, so their shares are complete; their jobs may still be
        # spinning or returning, which the next job posted to them waits for in their queue
        barriers = int(sync[_sync.BARRIER]) // n_threads - passed_before
        waited = int(sync[_sync.WAIT_CYCLES]) > CONTENDED_WAIT_SHARE * int(sync[_sync.RUN_CYCLES])
        if dtype in _ran_before and barriers >= MIN_JUDGED_BARRIERS and waited:
            _one_thread_until = time.monotonic() + CONTENDED_SECONDS
        _ran_before.add(dtype)
        return result
    for job in jobs:
        job.wait()
    sync[:] = 0  # every thread has stopped: the next run may start the count afresh
    for job in jobs:
        if job.error is not None:
            raise RuntimeError(f"a fit thread failed: {job.error!r}") from job.error
    raise RuntimeError("a fit thread stopped the run without an error")


def _on_one_blas_thread(entry, *args):
    """entry(*args) with BLAS on the calling thread alone (a helper's job)."""
    _blas_threads_here(1)
    return entry(*args)


_blas_controls: list = []  # [list of OpenBLAS's openblas_set_num_threads_local functions] once looked up


def _blas_local_controls():
    """``openblas_set_num_threads_local`` of every OpenBLAS loaded in this process (numba calls scipy's)."""
    if not _blas_controls:
        found = []
        try:
            with open("/proc/self/maps") as maps:
                paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
        except OSError:
            paths = []
        for path in paths:
            try:
                fn = ctypes.CDLL(path).openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.restype = ctypes.c_int
            fn.argtypes = [ctypes.c_int]
            found.append(fn)
        _blas_controls.append(found)
    return _blas_controls[0]


def _blas_threads_here(n):
    """Make BLAS calls from this thread use n threads (an int, or one per library as this returns);
    the values before, one per library."""
    controls = _blas_local_controls()
    counts = n if isinstance(n, tuple) else (n,) * len(controls)
    return tuple(fn(k) for fn, k in zip(controls, counts))


@contextlib.contextmanager
def blas_alone(pinned=True):
    """Within the block, if ``pinned``, BLAS calls from this thread run on it alone; the setting before is
    put back after.

    For thread 0 of a team (``run_team``), and for a fit that runs on one thread while two were possible
    (a contended window, busy helpers, a limit of one): OpenBLAS's own threads would take the core that
    was not to be used, and they spin for a while after each call, so the next two-thread run would find
    its partner's core taken, be judged contended, and fall back again."""
    before = _blas_threads_here(1) if pinned else None
    try:
        yield
    finally:
        if before is not None:
            _blas_threads_here(before)


def can_pin_blas():
    """True if BLAS can be kept to the calling thread (OpenBLAS 0.3.27 or later): the wide threaded fit needs it."""
    import scipy.linalg.cython_blas  # noqa: F401 -- numba's BLAS: loaded before the lookup

    return bool(_blas_local_controls())
