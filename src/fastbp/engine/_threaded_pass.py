"""The compiled part of ``fit`` on several threads: one thread's share of every step of a run
(``fit_epochs_share``), and the packing of the parameters into per-thread blocks.  ``fastbp.engine._threaded``
says how the network is split and runs the shares on its threads.
"""

import math

import numpy as np

from fastbp.config import BLAS_MIN_MULTIPLY_ADDS, jit
from fastbp.engine._serial import (
    alternating_update,
    as_one_row,
    count_correct,
    descend,
    gather_rows,
    is_plain_descent,
    step_back,
    swap_states,
)
from fastbp.kernels import _sync
from fastbp.kernels._jit_utils import all_finite, shuffle_in_place
from fastbp.kernels.activations import IDENTITY, SOFTMAX, activation_forward, multiply_by_derivative
from fastbp.kernels.backprop import hidden_delta, output_delta
from fastbp.kernels.dense import bias_gradient, dense_forward, weight_gradient
from fastbp.kernels.losses import CROSS_ENTROPY, SQUARED_ERROR, loss

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
