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
import functools
import math
import os
import queue
import threading
import time

import numpy as np

from . import _sync
from ._config import BLAS_MIN_MULTIPLY_ADDS, jit
from ._engine import (
    alternating_update,
    as_one_row,
    count_correct,
    descend,
    gather_rows,
    is_plain_descent,
    step_back,
    swap_states,
)
from ._jit_utils import all_finite, shuffle_in_place
from .kernels import (
    CROSS_ENTROPY,
    IDENTITY,
    SOFTMAX,
    SQUARED_ERROR,
    activation_forward,
    bias_gradient,
    dense_forward,
    hidden_delta,
    loss,
    multiply_by_derivative,
    output_delta,
    weight_gradient,
)

# A network gets the threaded fit when each thread's share of the first layer's product,
# batch_size * n_in * h_t multiply-adds, lies in this range.  Below it the split does not pay: at
# 16 K (64-32-10, batch 16; 32-32-4, batch 32) two threads were 0.92x and 1.02x as fast as one, at
# 32 K 1.09-1.23x, at 64 K 1.43x, at 128 K 1.55x (2-core VM, tanh/sigmoid).  Above it OpenBLAS
# would start its own threads inside each of ours.
MIN_SHARE_MULTIPLY_ADDS = 32 * 1024
MAX_SHARE_MULTIPLY_ADDS = 256 * 1024
MIN_UNITS_PER_THREAD = 8

BAD_INPUT = -4  # fit_epochs_share's status when X or D holds a NaN or an infinity
IDLE_SPINS = 20000  # a helper's spins after its share before it returns to its queue (~1 ms with x86 pause)
ENTERED = 0  # index into _Helpers.control

_PAD = 8  # blocks start on a multiple of 8 entries (a 64-byte line for float64), so no two threads write one line


def block_offsets(sizes, bounds):
    """int64 (T+1,): where each thread's block starts in the packed vector, and its end (padded)."""
    n_in, h, n_out = (int(s) for s in sizes)
    offsets = [0]
    for t in range(len(bounds) - 1):
        h_t = int(bounds[t + 1] - bounds[t])
        length = n_in * h_t + h_t + h_t * n_out + n_out
        offsets.append(offsets[-1] + -(-length // _PAD) * _PAD)
    return np.asarray(offsets, dtype=np.int64)


@jit
def _copy_run(flat, f, packed, p, length, to_packed):
    if to_packed:
        for k in range(length):
            packed[p + k] = flat[f + k]
    else:
        for k in range(length):
            flat[f + k] = packed[p + k]


@jit
def move_block(flat, layout, bounds, offsets, packed, t, to_packed):
    """Copy thread t's parameters from the network-layout vector ``flat`` (W1, b1, W2, b2) into its block
    of the packed vector (``to_packed``, see the module), or back (b2 back only from thread 0's block)."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    n_in, h, n_out = sizes[0], sizes[1], sizes[2]
    c0 = bounds[t]
    h_t = bounds[t + 1] - c0
    o = offsets[t]
    for i in range(n_in):
        _copy_run(flat, w_offsets[0] + i * h + c0, packed, o + i * h_t, h_t, to_packed)
    o += n_in * h_t
    _copy_run(flat, b_offsets[0] + c0, packed, o, h_t, to_packed)
    o += h_t
    _copy_run(flat, w_offsets[1] + c0 * n_out, packed, o, h_t * n_out, to_packed)
    o += h_t * n_out
    if to_packed or t == 0:
        _copy_run(flat, b_offsets[1], packed, o, n_out, to_packed)


@jit
def pack(flat, layout, bounds, offsets, packed):
    """Copy the network-layout vector ``flat`` into every thread's block of the packed vector."""
    for t in range(bounds.shape[0] - 1):
        move_block(flat, layout, bounds, offsets, packed, t, True)


@jit
def move_thread_run(
    tid, layout, bounds, offsets, theta, state1, state2, backup, p_params, p_state1, p_state2, p_backup, with_backup,
    to_packed,
):  # fmt: skip
    """Copy thread tid's share of theta, of the optimizer state (length 0: none) and, if ``with_backup``,
    of the divergence backup ([theta | state1 | state2] in the network layout) into its blocks of the
    run's packed vectors (``to_packed``), or back from them."""
    n, n1, n2 = theta.shape[0], state1.shape[0], state2.shape[0]
    size, s1 = p_params.shape[0], p_state1.shape[0]
    move_block(theta, layout, bounds, offsets, p_params, tid, to_packed)
    if n1 > 0:
        move_block(state1, layout, bounds, offsets, p_state1, tid, to_packed)
    if n2 > 0:
        move_block(state2, layout, bounds, offsets, p_state2, tid, to_packed)
    if with_backup:
        move_block(backup[:n], layout, bounds, offsets, p_backup[:size], tid, to_packed)
        if n1 > 0:
            move_block(backup[n : n + n1], layout, bounds, offsets, p_backup[size : size + s1], tid, to_packed)
        if n2 > 0:
            move_block(backup[n + n1 : n + n1 + n2], layout, bounds, offsets, p_backup[size + s1 :], tid, to_packed)


@jit
def _block(vector, offsets, tid, length):
    """Thread tid's block of a packed vector; the vector itself if it is empty (no optimizer state)."""
    if vector.shape[0] == 0:
        return vector
    return vector[offsets[tid] : offsets[tid] + length]


@jit
def fit_epochs_share(
    tid, sync, bounds, offsets, layout, X, D, epoch_lrs, batch_size, shuffle, rng_state, order,
    opt_code, hyper, step_count, frozen, params, state1, state2, grad, backup, backup_valid,
    scratch, shares, epoch_losses, epoch_correct, theta, net_state1, net_state2, net_backup, pack_backup,
    unpack_backup, check_inputs, control, entered_before, max_spins,
):  # fmt: skip
    """Thread tid's part of ``_engine.fit_epochs`` for a one-hidden-layer network (see the module).

    Every thread of a run calls this with the same arguments except ``tid``
    and its own ``rng_state`` (uint64, [0] used), ``order`` (int64 (n,)),
    ``step_count`` and ``backup_valid`` (int64 (1,) each, equal at the start)
    and ``scratch`` (float (capacity * (n_in + n_out + 3 h_t + 3 n_out) +
    n_out h_t,), capacity = batch_size).  Shared, each thread touching only its own block:
    ``params``, ``grad``, ``state1``, ``state2``, ``frozen`` (packed, the
    latter three possibly of length 0) and ``backup`` (packed params, then
    packed state1 and state2).  ``shares`` (2, T, capacity * n_out) holds
    the output layer's shares, two steps' worth so that a thread can write
    the next while another still reads the last.  ``sync``: the barrier's
    array (zeros before the first run; not reset between runs that ended
    normally).  Each thread adds its count of right answers to
    ``epoch_correct`` (zeros at the start).  Thread 0 alone writes
    ``epoch_losses``, its cycles spent waiting in barriers and in all, from the first barrier
    to the last, into ``sync[WAIT_CYCLES]`` and ``sync[RUN_CYCLES]``, and
    counts its call in ``control[ENTERED]`` (the helpers' array, see
    :class:`_Helpers`) as soon as it runs.  A helper (tid > 0) then spins
    for up to ``max_spins`` tries until the thread 0 of a later run has
    entered its share (``control[ENTERED] > entered_before + 1``).

    Each thread first copies its share of ``theta``, ``net_state1``,
    ``net_state2`` and (if ``pack_backup``) ``net_backup``, all in the
    network's layout, into its blocks, and at the end copies them back (the
    backup if ``unpack_backup``), so each block stays in its own thread's
    cache.  With ``check_inputs`` (and ``sync[INPUTS_BAD : INPUTS_BAD + 2]`` 0 at the start),
    the threads check the rows of X and D as they gather them in the first
    epoch, which visits every row; at the first NaN or infinity every thread
    stops after that step's barrier, before its update, copies nothing back,
    and returns BAD_INPUT after the final barrier.

    Returns what ``_engine.fit_epochs`` returns (-1, or the index of the
    diverging batch), BAD_INPUT, or -3 if the run was aborted (``sync[ABORT]`` set).
    """
    if tid == 0:
        _sync.atomic_add(control, ENTERED, 1)
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    n_threads = bounds.shape[0] - 1
    n_in, n_out = sizes[0], sizes[2]
    h_t = bounds[tid + 1] - bounds[tid]
    n_params = params.shape[0]
    n1 = state1.shape[0]
    n2 = state2.shape[0]
    code1, code2 = codes[0], codes[1]
    alpha1, alpha2 = alphas[0], alphas[1]
    n = X.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    classify = loss_code != SQUARED_ERROR
    plain = is_plain_descent(opt_code, hyper, frozen)
    block = n_in * h_t + h_t + h_t * n_out + n_out
    o_b1 = n_in * h_t
    o_w2 = o_b1 + h_t
    o_b2 = o_w2 + h_t * n_out

    mine = _block(params, offsets, tid, block)
    grads = _block(grad, offsets, tid, block)
    s1 = _block(state1, offsets, tid, block)
    s2 = _block(state2, offsets, tid, block)
    frozen_mine = _block(frozen, offsets, tid, block)
    alt = _block(backup[:n_params], offsets, tid, block)
    alt1 = _block(backup[n_params : n_params + n1], offsets, tid, block)
    alt2 = _block(backup[n_params + n1 : n_params + n1 + n2], offsets, tid, block)
    move_thread_run(
        tid, layout, bounds, offsets, theta, net_state1, net_state2, net_backup, params, state1, state2, backup,
        pack_backup, True,
    )  # fmt: skip

    cap = batch_size
    x_batch = scratch[: cap * n_in]
    at = cap * n_in
    d_batch = scratch[at : at + cap * n_out]
    at += cap * n_out
    z1_buf = scratch[at : at + cap * h_t]
    y1_buf = scratch[at + cap * h_t : at + 2 * cap * h_t]
    delta1_buf = scratch[at + 2 * cap * h_t : at + 3 * cap * h_t]
    at += 3 * cap * h_t
    z2_buf = scratch[at : at + cap * n_out]
    y2_buf = scratch[at + cap * n_out : at + 2 * cap * n_out]
    delta2_buf = scratch[at + 2 * cap * n_out : at + 3 * cap * n_out]
    at += 3 * cap * n_out
    w2t = scratch[at : at + n_out * h_t].reshape((n_out, h_t))

    # The barrier counter only grows, run after run: a thread may still be leaving the last barrier of
    # the previous run when another starts this one, so resetting it could strand that thread.  Before
    # all threads have come to this run's first barrier it holds (runs' barriers so far) * T + arrivals < T.
    passed = _sync.atomic_load(sync, _sync.BARRIER) // n_threads
    run_from = 0
    wait_cycles = 0
    in_alt = False
    status = -1
    for epoch in range(epoch_losses.shape[0]):
        if shuffle:
            rng_state[0] = shuffle_in_place(order, rng_state[0])
        total = 0.0
        correct = 0
        lr = epoch_lrs[epoch]
        for batch in range(n_batches):
            start = batch * batch_size
            m = min(batch_size, n - start)
            xb = x_batch[: m * n_in].reshape((m, n_in))
            db = d_batch[: m * n_out].reshape((m, n_out))
            gather_rows(X, D, order, start, xb, db)
            parity = (epoch * n_batches + batch) & 1  # the step's parity, also across epochs
            if check_inputs and epoch == 0:  # the first epoch sees every row once: each thread checks a part
                r0, r1 = m * tid // n_threads, m * (tid + 1) // n_threads
                if not (all_finite(xb[r0:r1]) and all_finite(db[r0:r1])):
                    # one flag per parity: a partner may still be reading the last step's
                    sync[_sync.INPUTS_BAD + parity] = 1
            current = alt if in_alt else mine
            W1 = current[:o_b1].reshape((n_in, h_t))
            b1 = current[o_b1:o_w2]
            W2 = current[o_w2:o_b2].reshape((h_t, n_out))
            b2 = current[o_b2:block]
            z1 = z1_buf[: m * h_t].reshape((m, h_t))
            y1 = y1_buf[: m * h_t].reshape((m, h_t))
            delta1 = delta1_buf[: m * h_t].reshape((m, h_t))
            z2 = z2_buf[: m * n_out].reshape((m, n_out))
            y2 = y2_buf[: m * n_out].reshape((m, n_out))
            delta2 = delta2_buf[: m * n_out].reshape((m, n_out))

            dense_forward(xb, W1, b1, z1)
            activation_forward(code1, as_one_row(z1), as_one_row(y1), alpha1)
            share = shares[parity, tid, : m * n_out].reshape((m, n_out))
            if m * h_t * n_out >= BLAS_MIN_MULTIPLY_ADDS:
                np.dot(y1, W2, share)
            else:
                for s in range(m):
                    for j in range(n_out):
                        share[s, j] = 0.0
                    for i in range(h_t):
                        y_i = y1[s, i]
                        for j in range(n_out):
                            share[s, j] += y_i * W2[i, j]
            waited_from = _sync.cycle_count()
            if not _sync.barrier(sync, n_threads, passed):
                return -3
            passed += 1
            if check_inputs and epoch == 0 and sync[_sync.INPUTS_BAD + parity]:
                # every thread stops here, before the step's update, and nothing is copied back; they
                # still meet at the final barrier, so no thread's caller resets the flag before all
                # threads have read it
                status = BAD_INPUT
                break
            if epoch == 0 and batch == 0:
                run_from = _sync.cycle_count()  # the first wait is the helpers' start-up, not contention
            else:
                wait_cycles += _sync.cycle_count() - waited_from
            z2_flat = z2_buf[: m * n_out]
            first = shares[parity, 0]
            for k in range(m * n_out):
                z2_flat[k] = first[k]
            for u in range(1, n_threads):
                other = shares[parity, u]
                for k in range(m * n_out):
                    z2_flat[k] += other[k]
            for s in range(m):
                for j in range(n_out):
                    z2[s, j] += b2[j]
            if code2 == SOFTMAX:
                activation_forward(SOFTMAX, z2, y2, alpha2)
            else:
                activation_forward(code2, as_one_row(z2), as_one_row(y2), alpha2)
            E = loss(loss_code, z2, y2, db)
            if not math.isfinite(E):
                in_alt = step_back(plain, mine, alt, in_alt, backup_valid, step_count)
                status = epoch * n_batches + batch
                break
            total += E
            if classify:  # each thread counts its part of the rows
                r0, r1 = m * tid // n_threads, m * (tid + 1) // n_threads
                correct += count_correct(loss_code, y2[r0:r1], db[r0:r1])
            step_count[0] += 1

            if loss_code == CROSS_ENTROPY or code2 == SOFTMAX:
                output_delta(loss_code, code2, z2, y2, db, delta2, alpha2)
            else:
                output_delta(
                    loss_code, code2, as_one_row(z2), as_one_row(y2), as_one_row(db), as_one_row(delta2), alpha2
                )
            if m > 1:
                scale = 1.0 / m
                flat2 = as_one_row(delta2)
                for k in range(flat2.shape[1]):
                    flat2[0, k] *= scale
            if m * n_out * h_t >= BLAS_MIN_MULTIPLY_ADDS:
                # delta2 @ W2^T through a transposed copy of W2: BLAS's product with the transposed view
                # took twice as long at these sizes (32 x 10 x 32: 0.6 against 0.3 us), and the threads'
                # calls slowed each other down (to 1.0 us; 1.7 us in a run)
                for j in range(h_t):
                    for k in range(n_out):
                        w2t[k, j] = W2[j, k]
                np.dot(delta2, w2t, delta1)
            else:
                hidden_delta(IDENTITY, delta2, W2, z1, y1, delta1, alpha1)
            multiply_by_derivative(code1, as_one_row(z1), as_one_row(y1), as_one_row(delta1), alpha1)

            gW1 = grads[:o_b1].reshape((n_in, h_t))
            gb1 = grads[o_b1:o_w2]
            gW2 = grads[o_w2:o_b2].reshape((h_t, n_out))
            gb2 = grads[o_b2:block]
            bias_gradient(delta2, 1.0, gb2)
            bias_gradient(delta1, 1.0, gb1)
            if plain:
                for k in range(block):
                    alt[k] = mine[k]
                descend(W2, y1, delta2, lr, gW2)
                descend(W1, xb, delta1, lr, gW1)
                for j in range(n_out):
                    b2[j] -= lr * gb2[j]
                for j in range(h_t):
                    b1[j] -= lr * gb1[j]
            else:
                weight_gradient(y1, delta2, 1.0, gW2)
                weight_gradient(xb, delta1, 1.0, gW1)
                in_alt = alternating_update(
                    opt_code, mine, s1, s2, alt, alt1, alt2, in_alt, grads, lr, hyper, step_count[0], frozen_mine
                )
            backup_valid[0] = 1
        if status != -1:
            break
        if classify:
            _sync.atomic_add(epoch_correct, epoch, correct)
        if tid == 0:
            epoch_losses[epoch] = total / n_batches
    if status != BAD_INPUT:
        if in_alt:
            swap_states(mine, s1, s2, alt, alt1, alt2)
        move_thread_run(
            tid, layout, bounds, offsets, theta, net_state1, net_state2, net_backup, params, state1, state2, backup,
            unpack_backup, False,
        )  # fmt: skip
    # all threads leave together: the caller may read the network's parameters as soon as its own call returns
    if tid == 0:
        sync[_sync.RUN_CYCLES] = _sync.cycle_count() - run_from
        sync[_sync.WAIT_CYCLES] = wait_cycles
    if not _sync.barrier(sync, n_threads, passed):
        return -3
    if tid > 0:
        _sync.wait_above(control, ENTERED, entered_before + 1, max_spins)
    return status


# ----------------------------------------------------------------------------- threads

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


_cpus = []  # [count] once asked; emptied in a forked child


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

    Only ``fit`` of networks with one hidden layer, at sizes where it pays,
    uses more than one thread (see ``fastbp._parallel``).
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
    if wanted < 2 or time.monotonic() < _one_thread_until:
        return None
    return _bounds(layout.size_tuple, layout.code_tuple, batch_size, wanted)


@functools.lru_cache(maxsize=256)
def _bounds(sizes, codes, batch_size, wanted):
    if len(codes) != 2 or codes[0] == SOFTMAX:
        return None
    n_in, h, n_out = sizes
    n_threads = min(wanted, h // MIN_UNITS_PER_THREAD)
    while n_threads > 1 and batch_size * n_in * (h // n_threads) < MIN_SHARE_MULTIPLY_ADDS:
        n_threads -= 1
    if n_threads < 2:
        return None
    if batch_size * max(n_in, n_out) * -(-h // n_threads) > MAX_SHARE_MULTIPLY_ADDS:
        return None
    return np.asarray([h * t // n_threads for t in range(n_threads + 1)], dtype=np.int64)


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
_ran_before = set()  # the dtypes of threaded runs so far: a first run compiles (or loads) the shares


def run_shares(helpers, args_of):
    """Run :func:`fit_epochs_share` for threads 1..T-1 on the helpers and thread 0 here; thread 0's status.

    ``args_of(t)`` gives thread t's arguments (t, sync, bounds, ..., control); the last two,
    ``entered_before`` and ``max_spins``, are added here.
    A failure in any thread aborts the others at their next barrier and is
    raised here once all have stopped.  A run in which thread 0 spent more
    than CONTENDED_WAIT_SHARE of its time waiting in barriers makes the runs
    of the next CONTENDED_SECONDS use one thread (not a run that compiled:
    thread 0 then waits for the helper's compilation).
    """
    global _one_thread_until
    entered_before = int(helpers.control[ENTERED])
    args0 = (*args_of(0), entered_before, 0)
    sync = args0[1]
    n_threads = len(args0[2]) - 1
    passed_before = int(sync[_sync.BARRIER]) // n_threads

    jobs = []
    try:
        for t in range(1, n_threads):
            job = _Job(_helper_entry, (*args_of(t), entered_before, IDLE_SPINS), sync)
            jobs.append(job)
            helpers.queues[t - 1].put(job)
        result = fit_epochs_share(*args0)
    except BaseException:
        sync[_sync.ABORT] = 1
        for job in jobs:
            job.wait()
        sync[:] = 0
        raise
    if result != -3:
        # every thread passed the last barrier, so their shares are complete; their jobs may still be
        # spinning or returning, which the next job posted to them waits for in their queue
        dtype = args0[16].dtype
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
