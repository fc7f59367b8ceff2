"""The compiled part of ``fit`` on several threads: one thread's share of every step of a run
(``fit_epochs_share``), and the packing of the parameters into per-thread blocks.  ``fastbp.engine._threaded``
says how the network is split and runs the shares on its threads.

Each thread first copies its share of the network's parameters, optimizer state and (if asked) divergence
backup, all in the network's layout, into its blocks of the packed vectors, and at the end copies them back, so
each block stays in its own thread's cache.  When asked to check the inputs (with ``sync[INPUTS_BAD :
INPUTS_BAD + 2]`` 0 at the start), the threads check the rows of X and D as they gather them in the first epoch,
which visits every row; at the first NaN or infinity every thread stops after that step's barrier, before its
update, copies nothing back, and returns BAD_INPUT after the final barrier.
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
from fastbp.kernels.dense import _dense_forward_one_call, bias_gradient, weight_gradient
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
def move_thread_run(tid, layout, split, net_vectors, packed_vectors, with_backup, to_packed):
    """Copy thread tid's share of the network's vectors into its blocks of the run's packed vectors
    (``to_packed``), or back from them.

    ``split`` = (bounds, offsets); ``net_vectors`` = (theta, state1, state2, backup) in the network's
    layout, the optimizer state of length 0 where there is none and the divergence backup [theta | state1 |
    state2] copied only ``with_backup``; ``packed_vectors`` = (params, state1, state2, backup), packed.
    """
    bounds, offsets = split
    theta, state1, state2, backup = net_vectors
    p_params, p_state1, p_state2, p_backup = packed_vectors
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


@jit(inline="always")
def _thread_blocks(tid, offsets, block, packed):
    """Thread tid's blocks (each ``block`` long, or empty) of the packed vectors: (params, grad, state1,
    state2, frozen, and the backup's params, state1 and state2)."""
    params, state1, state2, grad, backup, frozen = packed[0], packed[1], packed[2], packed[3], packed[4], packed[8]
    n_params, n1, n2 = params.shape[0], state1.shape[0], state2.shape[0]
    return (
        _block(params, offsets, tid, block),
        _block(grad, offsets, tid, block),
        _block(state1, offsets, tid, block),
        _block(state2, offsets, tid, block),
        _block(frozen, offsets, tid, block),
        _block(backup[:n_params], offsets, tid, block),
        _block(backup[n_params : n_params + n1], offsets, tid, block),
        _block(backup[n_params + n1 : n_params + n1 + n2], offsets, tid, block),
    )


@jit(inline="always")
def _scratch_buffers(scratch, cap, n_in, h_t, n_out):
    """A thread's scratch as (x_batch, d_batch, z1, y1, delta1, z2, y2, delta2) flat buffers of ``cap``
    rows each, and w2t, the transposed copy of its W2 (n_out, h_t)."""
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
    return x_batch, d_batch, z1_buf, y1_buf, delta1_buf, z2_buf, y2_buf, delta2_buf, w2t


@jit(inline="always")
def _layer_views(current, n_in, h_t, n_out):
    """W1 (n_in, h_t), b1 (h_t,), W2 (h_t, n_out), b2 (n_out,) of a thread's block."""
    o_b1 = n_in * h_t
    o_w2 = o_b1 + h_t
    o_b2 = o_w2 + h_t * n_out
    W1 = current[:o_b1].reshape((n_in, h_t))
    W2 = current[o_w2:o_b2].reshape((h_t, n_out))
    return W1, current[o_b1:o_w2], W2, current[o_b2 : o_b2 + n_out]


@jit(inline="always")
def _batch_views(bufs, m, h_t, n_out):
    """z1, y1, delta1 (m, h_t) and z2, y2, delta2 (m, n_out) of a batch of m rows."""
    z1 = bufs[2][: m * h_t].reshape((m, h_t))
    y1 = bufs[3][: m * h_t].reshape((m, h_t))
    delta1 = bufs[4][: m * h_t].reshape((m, h_t))
    z2 = bufs[5][: m * n_out].reshape((m, n_out))
    y2 = bufs[6][: m * n_out].reshape((m, n_out))
    delta2 = bufs[7][: m * n_out].reshape((m, n_out))
    return z1, y1, delta1, z2, y2, delta2


@jit(inline="always")
def _forward_share(layout, h_t, current, xb, bufs, share):
    """The thread's hidden units for the batch xb (m, n_in), and their share y1 W2 (m, n_out) of z2."""
    sizes, codes, alphas = layout[0], layout[1], layout[2]
    n_in, n_out = sizes[0], sizes[2]
    m = xb.shape[0]
    W1, b1, W2, _ = _layer_views(current, n_in, h_t, n_out)
    z1, y1, _, _, _, _ = _batch_views(bufs, m, h_t, n_out)
    _dense_forward_one_call(xb, W1, b1, z1)
    activation_forward(codes[0], as_one_row(z1), as_one_row(y1), alphas[0])
    output_share(y1, W2, share)


@jit(inline="always")
def output_share(y1, W2, share):
    """share (m, n_out) = y1 (m, h_t) W2 (h_t, n_out): a thread's part of the output layer's weighted sums."""
    m, h_t = y1.shape
    n_out = W2.shape[1]
    if m * h_t * n_out >= BLAS_MIN_MULTIPLY_ADDS:
        np.dot(y1, W2, share)
        return
    for s in range(m):
        for j in range(n_out):
            share[s, j] = 0.0
        for i in range(h_t):
            y_i = y1[s, i]
            for j in range(n_out):
                share[s, j] += y_i * W2[i, j]


@jit(inline="always")
def _output_of_shares(layout, h_t, current, shares_now, db, bufs):
    """z2 = the sum of every thread's share + b2, y2 = f(z2), and the batch's loss E against db (m, n_out)."""
    sizes, codes, alphas, loss_code = layout[0], layout[1], layout[2], layout[3]
    n_in, n_out = sizes[0], sizes[2]
    m = db.shape[0]
    _, _, _, b2 = _layer_views(current, n_in, h_t, n_out)
    _, _, _, z2, y2, _ = _batch_views(bufs, m, h_t, n_out)
    z2_flat = bufs[5][: m * n_out]
    first = shares_now[0]
    for k in range(m * n_out):
        z2_flat[k] = first[k]
    for u in range(1, shares_now.shape[0]):
        other = shares_now[u]
        for k in range(m * n_out):
            z2_flat[k] += other[k]
    for s in range(m):
        for j in range(n_out):
            z2[s, j] += b2[j]
    if codes[1] == SOFTMAX:
        activation_forward(SOFTMAX, z2, y2, alphas[1])
    else:
        activation_forward(codes[1], as_one_row(z2), as_one_row(y2), alphas[1])
    return loss(loss_code, z2, y2, db)


@jit(inline="always")
def _backward_and_update(layout, h_t, blocks, in_alt, xb, db, bufs, step):
    """The error terms of the batch, the thread's gradients and its update; the new ``in_alt``.

    ``blocks``: see _thread_blocks; ``step`` = (plain, lr, opt_code, hyper, t)."""
    sizes, codes, alphas, loss_code = layout[0], layout[1], layout[2], layout[3]
    plain, lr, opt_code, hyper, t = step
    mine, grads, s1, s2, frozen_mine, alt, alt1, alt2 = blocks
    n_in, n_out = sizes[0], sizes[2]
    code1, code2 = codes[0], codes[1]
    alpha1, alpha2 = alphas[0], alphas[1]
    m = xb.shape[0]
    W1, b1, W2, b2 = _layer_views(alt if in_alt else mine, n_in, h_t, n_out)
    z1, y1, delta1, z2, y2, delta2 = _batch_views(bufs, m, h_t, n_out)
    w2t = bufs[8]
    if loss_code == CROSS_ENTROPY or code2 == SOFTMAX:
        output_delta(loss_code, code2, z2, y2, db, delta2, alpha2)
    else:
        output_delta(loss_code, code2, as_one_row(z2), as_one_row(y2), as_one_row(db), as_one_row(delta2), alpha2)
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

    gW1, gb1, gW2, gb2 = _layer_views(grads, n_in, h_t, n_out)
    bias_gradient(delta2, 1.0, gb2)
    bias_gradient(delta1, 1.0, gb1)
    if plain:
        for k in range(mine.shape[0]):
            alt[k] = mine[k]
        descend(W2, y1, delta2, lr, gW2)
        descend(W1, xb, delta1, lr, gW1)
        for j in range(n_out):
            b2[j] -= lr * gb2[j]
        for j in range(h_t):
            b1[j] -= lr * gb1[j]
        return in_alt
    weight_gradient(y1, delta2, 1.0, gW2)
    weight_gradient(xb, delta1, 1.0, gW1)
    return alternating_update(opt_code, mine, s1, s2, alt, alt1, alt2, in_alt, grads, lr, hyper, t, frozen_mine)


@jit
def fit_epochs_share(team, layout, split, data, opt_state, packed, net_run, out):
    """Thread ``team[0]``'s part of ``_engine.fit_epochs`` for a one-hidden-layer network (see the module).

    ``team`` = (tid, n_threads, sync, control, entered_before, max_spins); ``split`` = (bounds, offsets);
    ``data`` = (X, D, epoch_lrs, batch_size, shuffle, rng_state, order, check_inputs); ``opt_state`` =
    (opt_code, hyper, step_count); ``packed`` = (params, state1, state2, grad, backup, backup_valid, scratch,
    shares, frozen); ``net_run`` = (theta, net_state1, net_state2, net_backup, pack_backup, unpack_backup), the
    network's own vectors; ``out`` = (epoch_losses, epoch_correct).

    Each thread has its own ``rng_state`` (uint64, [0] used), ``order`` (int64 (n,)), ``step_count`` and
    ``backup_valid`` (int64 (1,) each, equal at the start) and ``scratch`` (float (batch_size * (n_in + n_out +
    3 h_t + 3 n_out) + n_out h_t,)).  Shared, each thread touching only its block: ``params``, ``grad``,
    ``state1``, ``state2``, ``frozen`` (packed; the latter three possibly of length 0), ``backup`` (packed params,
    state1, state2); ``shares`` (2, T, batch_size * n_out), the output layer's shares of the last two steps (a
    thread writes the next while another still reads the last); ``sync``, the barrier's array (zeros before the
    first run, not reset between runs that ended normally).  Each thread adds its right answers to
    ``epoch_correct`` (zeros at the start).  Thread 0 alone writes ``epoch_losses``, its cycles waiting in
    barriers and in all (``sync[WAIT_CYCLES]``, ``sync[RUN_CYCLES]``) and counts its call in ``control[ENTERED]``
    as it starts; a helper then spins up to ``max_spins`` tries for the thread 0 of a later run (_leave_together).

    Returns what ``_engine.fit_epochs`` returns (-1, or the index of the diverging batch), BAD_INPUT, or -3 if
    the run was aborted (``sync[ABORT]`` set).
    """
    tid, n_threads, sync, control, _, _ = team
    bounds, offsets = split
    X, D, epoch_lrs, batch_size, shuffle, rng_state, order, check_inputs = data
    opt_code, hyper, step_count = opt_state
    backup_valid, shares = packed[5], packed[7]
    epoch_losses, epoch_correct = out
    if tid == 0:
        _sync.atomic_add(control, ENTERED, 1)
    n_in, n_out, loss_code = layout[0][0], layout[0][2], layout[3]
    h_t = bounds[tid + 1] - bounds[tid]
    n = X.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    classify = loss_code != SQUARED_ERROR
    plain = is_plain_descent(opt_code, hyper, packed[8])
    blocks = _thread_blocks(tid, offsets, n_in * h_t + h_t + h_t * n_out + n_out, packed)
    mine, alt = blocks[0], blocks[5]
    net_vectors = (net_run[0], net_run[1], net_run[2], net_run[3])
    packed_vectors = (packed[0], packed[1], packed[2], packed[4])
    move_thread_run(tid, layout, split, net_vectors, packed_vectors, net_run[4], True)
    bufs = _scratch_buffers(packed[6], batch_size, n_in, h_t, n_out)

    # The barrier counter only grows, run after run: a thread may still be leaving the last barrier of
    # the previous run when another starts this one, so resetting it could strand that thread.  Before
    # all threads have come to this run's first barrier it holds (runs' barriers so far) * T + arrivals < T.
    passed = _sync.atomic_load(sync, _sync.BARRIER) // n_threads
    run_from, wait_cycles, in_alt, status = 0, 0, False, -1
    for epoch in range(epoch_losses.shape[0]):
        if shuffle:
            rng_state[0] = shuffle_in_place(order, rng_state[0])
        total, correct, lr = 0.0, 0, epoch_lrs[epoch]
        for batch in range(n_batches):
            start = batch * batch_size
            m = min(batch_size, n - start)
            xb = bufs[0][: m * n_in].reshape((m, n_in))
            db = bufs[1][: m * n_out].reshape((m, n_out))
            gather_rows(X, D, order, start, xb, db)
            parity = (epoch * n_batches + batch) & 1  # the step's parity, also across epochs
            if check_inputs and epoch == 0:  # the first epoch sees every row once: each thread checks a part
                _flag_bad_rows(sync, parity, xb, db, tid, n_threads)
            current = alt if in_alt else mine
            _forward_share(layout, h_t, current, xb, bufs, shares[parity, tid, : m * n_out].reshape((m, n_out)))
            waited_from = _sync.cycle_count()
            if not _sync.barrier(sync, n_threads, passed):
                return -3
            passed += 1
            if check_inputs and epoch == 0 and sync[_sync.INPUTS_BAD + parity]:
                status = BAD_INPUT  # all stop before the update; the final barrier keeps the flag till all read it
                break
            if epoch == 0 and batch == 0:
                run_from = _sync.cycle_count()  # the first wait is the helpers' start-up, not contention
            else:
                wait_cycles += _sync.cycle_count() - waited_from
            E = _output_of_shares(layout, h_t, current, shares[parity], db, bufs)
            if not math.isfinite(E):
                in_alt = step_back(plain, mine, alt, in_alt, backup_valid, step_count)
                status = epoch * n_batches + batch
                break
            total += E
            if classify:  # each thread counts its part of the rows
                r0, r1 = m * tid // n_threads, m * (tid + 1) // n_threads
                correct += count_correct(loss_code, _batch_views(bufs, m, h_t, n_out)[4][r0:r1], db[r0:r1])
            step_count[0] += 1
            in_alt = _backward_and_update(
                layout, h_t, blocks, in_alt, xb, db, bufs, (plain, lr, opt_code, hyper, step_count[0])
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
            swap_states(mine, blocks[2], blocks[3], alt, blocks[6], blocks[7])
        move_thread_run(tid, layout, split, net_vectors, packed_vectors, net_run[5], False)
    return _leave_together(team, passed, run_from, wait_cycles, status)


@jit(inline="always")
def _flag_bad_rows(sync, parity, xb, db, tid, n_threads):
    """Set the step's flag if thread tid's part of the rows of xb or db holds a NaN or an infinity."""
    r0, r1 = xb.shape[0] * tid // n_threads, xb.shape[0] * (tid + 1) // n_threads
    if not (all_finite(xb[r0:r1]) and all_finite(db[r0:r1])):
        sync[_sync.INPUTS_BAD + parity] = 1  # one flag per parity: a partner may still be reading the last step's


@jit
def _leave_together(team, passed, run_from, wait_cycles, status):
    """The final barrier (the caller may read the network's parameters as soon as its own call returns);
    thread 0 writes its cycles first, a helper then spins for the next run.  ``status``, or -3 on an abort."""
    tid, n_threads, sync, control, entered_before, max_spins = team
    if tid == 0:
        sync[_sync.RUN_CYCLES] = _sync.cycle_count() - run_from
        sync[_sync.WAIT_CYCLES] = wait_cycles
    if not _sync.barrier(sync, n_threads, passed):
        return -3
    if tid > 0:
        _sync.wait_above(control, ENTERED, entered_before + 1, max_spins)
    return status
