"""``fit`` on several threads for a network of any depth: each step's passes split by samples, its update by parameters.

Thread t of T, in every step of a mini-batch of m samples:

1. takes rows [m t / T, m (t + 1) / T) of the batch: it gathers them and runs on them the forward pass, the
   loss, the output error term and the error terms of every hidden layer, with the weights of the step, into
   its rows of the shared z, y and delta buffers (``engine._serial``'s formulas);
2. one barrier: z, y and delta of every sample are there;
3. takes rows [k t / T, k (t + 1) / T) of every layer's W (k units below it) and entries [u t / T, u (t + 1)
   / T) of its b (u units): their gradient over all m samples, dE/dw_ij = sum_s y_i delta_j, in blocks of
   rows small enough to stay in the core's cache until the optimizer's step on them, which follows at once,
   in place;
4. one barrier: the next step's forward pass reads every thread's new weights.

Batches of few samples, and networks with a big layer, split step 1 by units instead (``forward_by_units``):
thread t computes the units of every layer that its rows of the W above take, then runs the backward half of
step 1 and step 3 in one pass over its rows of each W (``backward_and_update``), reading each row once a step.

A divergence puts back the parameters (and state) at which the last finite loss was measured.  An
out-of-place step would keep them, but writing to other lines than those just read costs a second pass over
memory (Adam on 2.2 M float32 parameters: 1.2 against 0.56 ns a parameter).  So each thread copies its share
into the backup before the update of every CHECKPOINT_EVERY-th batch of an epoch and of its last batch, and
after a divergence puts that copy back and runs the batches since then again, which gives the same numbers
bit for bit; a copy every 32 steps costs ~2%.

So the parameter-sized work of a step (gradient, optimizer state, update), which at batch 1 is nearly all of
it, is one pass over the parameters split across the cores, and the gradient never leaves the cache: each
thread's blocks take turns in one buffer of its own.  The parameters, the optimizer state and the backup
stay in the network's layout, so a run may go on with ``engine._serial`` in the next epoch.  Every thread
adds the partial losses in thread order, so all see the same loss and take the same decision on a
divergence; the results differ from ``engine._serial``'s only in the rounding of sums (over samples, and
over the threads' rows of W in ``forward_by_units``), and do not depend on timing.  The caller makes BLAS
run on one thread inside each (see ``fastbp.engine._threaded``).
"""

import math

from fastbp.config import BLAS_MIN_MULTIPLY_ADDS, MIN_GEMM_SAMPLES, jit
from fastbp.engine._serial import (
    as_one_row,
    backup_parts,
    count_correct,
    gather_rows,
    layer_biases,
    layer_weights,
    output_error_terms,
)
from fastbp.engine._threaded_pass import ENTERED
from fastbp.kernels import _sync
from fastbp.kernels._blas import gemm_columns, gemm_strided
from fastbp.kernels._jit_utils import shuffle_in_place
from fastbp.kernels.activations import IDENTITY, SOFTMAX, activation_forward, multiply_by_derivative
from fastbp.kernels.backprop import hidden_delta
from fastbp.kernels.dense import _dense_forward_one_call
from fastbp.kernels.losses import SQUARED_ERROR, loss
from fastbp.kernels.optimizers import optimizer_update

# Entries of W per block of rows of ``update_layer`` at WHOLE_SHARE_SAMPLES to MIN_SAMPLE_SPLIT samples
# (fewer: BLOCK_ENTRIES; more: the whole share).  Float32 epochs interleaved in one process, AMD EPYC, 64-1024-
# 1024-1024-10: batch 32 710 ms (32 K: 798) against 750 unfused; batch 256 in blocks 475 against 442 ms.
FUSED_BLOCK_ENTRIES = 128 * 1024


# Entries of W per block of rows in step 3: a block's gradient is written and read back from the core's
# cache (32 K float32 entries: 128 KB, within a 1-2 MB L2 with the block's W, m and v).
BLOCK_ENTRIES = 32 * 1024


# From this many samples on, a block of a thread's rows of a W takes its gradient in one GEMM of
# FUSED_BLOCK_ENTRIES (or the whole share): its cost is then far above that of writing and reading the
# gradient, and a GEMM of a block of few rows is slow.
WHOLE_SHARE_SAMPLES = 16


# Every this many batches of an epoch (and at its last) each thread copies its share into the backup.
CHECKPOINT_EVERY = 32


# Batches of fewer samples split each step's passes by units (``passes_by_units``) when some layer has
# at least MIN_UNIT_SPLIT_WEIGHTS weights, any batch when one has BIG_LAYER_WEIGHTS; others by samples.
# Measured (float32 epochs): batch 32, 64-1024-1024-1024-10 554 against 751 ms, 64-512-512-512-10 168
# against 202 ms, 64-512-10 (32 K weights, which stay in cache) 15.4 against 12.9 ms; batch 256,
# 64-1024-1024-1024-10 263 against 297 ms, 64-512-512-512-10 85 against 80 ms.
MIN_SAMPLE_SPLIT = 64
MIN_UNIT_SPLIT_WEIGHTS = 128 * 1024
BIG_LAYER_WEIGHTS = 1024 * 1024


PARTIAL_STRIDE = 8  # one thread's partial loss a cache line from the next


@jit
def rows_of(buf, capacity, sizes, unit_offsets, layer, r0, r1):
    """Rows r0..r1-1 of layer ``layer``'s block of a work buffer, shape (r1 - r0, sizes[l+1])."""
    width = sizes[layer + 1]
    start = capacity * unit_offsets[layer] + r0 * width
    return buf[start : start + (r1 - r0) * width].reshape((r1 - r0, width))


@jit
def share_of(count, tid, n_threads):
    """Thread tid's part [start, stop) of range(count)."""
    return count * tid // n_threads, count * (tid + 1) // n_threads


@jit
def passes_on_rows(theta, layout, xb, db, work, r0, r1, m):
    """Step 1 on rows r0..r1-1 of the batch (xb, db: all m rows): forward pass, output and hidden error
    terms (of the batch's mean loss: scaled by 1 / m).  Returns the loss summed over these rows."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    x_rows = xb[r0:r1]
    last = codes.shape[0] - 1
    for layer in range(last + 1):
        y_prev = x_rows if layer == 0 else rows_of(y_buf, capacity, sizes, unit_offsets, layer - 1, r0, r1)
        z = rows_of(z_buf, capacity, sizes, unit_offsets, layer, r0, r1)
        y = rows_of(y_buf, capacity, sizes, unit_offsets, layer, r0, r1)
        W = layer_weights(theta, sizes, w_offsets, layer)
        _dense_forward_one_call(y_prev, W, layer_biases(theta, sizes, b_offsets, layer), z)
        if codes[layer] == SOFTMAX:
            activation_forward(SOFTMAX, z, y, alphas[layer])
        else:
            activation_forward(codes[layer], as_one_row(z), as_one_row(y), alphas[layer])
    z_out = rows_of(z_buf, capacity, sizes, unit_offsets, last, r0, r1)
    y_out = rows_of(y_buf, capacity, sizes, unit_offsets, last, r0, r1)
    d_rows = db[r0:r1]
    E_sum = loss(loss_code, z_out, y_out, d_rows) * (r1 - r0)
    delta_out = rows_of(delta_buf, capacity, sizes, unit_offsets, last, r0, r1)
    output_error_terms(layout, z_out, y_out, d_rows, delta_out, m)
    for layer in range(last, 0, -1):
        delta = rows_of(delta_buf, capacity, sizes, unit_offsets, layer, r0, r1)
        z_prev = rows_of(z_buf, capacity, sizes, unit_offsets, layer - 1, r0, r1)
        y_prev = rows_of(y_buf, capacity, sizes, unit_offsets, layer - 1, r0, r1)
        delta_prev = rows_of(delta_buf, capacity, sizes, unit_offsets, layer - 1, r0, r1)
        W = layer_weights(theta, sizes, w_offsets, layer)
        hidden_delta(IDENTITY, delta, W, z_prev, y_prev, delta_prev, alphas[layer - 1])
        multiply_by_derivative(
            codes[layer - 1], as_one_row(z_prev), as_one_row(y_prev), as_one_row(delta_prev), alphas[layer - 1]
        )
    return E_sum


@jit
def partial_product(tid, n_threads, layer, dims, theta, w_at, source, source_at, part_z):
    """Thread tid's part of a layer's z = y_prev @ W: the product of its rows i0..i1-1 of W (units below,
    ``share_of(n_below)``) with those columns of y_prev, into its block of ``part_z`` for this layer.
    ``dims`` = (n_below, n_above, m); W starts at theta[w_at], y_prev (m, n_below) at source[source_at].
    ``part_z`` (flat) holds 2 x n_threads blocks of at least m * n_above entries: by layer parity, so that
    a thread writes the next layer's block while another still adds this one's."""
    n_below, n_above, m = dims
    block = part_z.shape[0] // (2 * n_threads)
    at = ((layer & 1) * n_threads + tid) * block
    i0, i1 = share_of(n_below, tid, n_threads)
    if i1 > i0:
        gemm_strided(
            False, False, (n_above, m, i1 - i0), theta, w_at + i0 * n_above, n_above, source, source_at + i0,
            n_below, part_z, at, n_above,
        )  # fmt: skip
    else:
        part_z[at : at + m * n_above] = 0.0


@jit
def add_partials(n_threads, layer, part_z, b, z, r0, r1, c0, c1):
    """z[r0:r1, c0:c1] = the threads' partial products (``partial_product``) summed in thread order, + b."""
    n_above = z.shape[1]
    block = part_z.shape[0] // (2 * n_threads)
    first = (layer & 1) * n_threads * block
    width = c1 - c0
    bias = b[c0:c1]
    # loops from 0 over views: offset indices kept LLVM from vectorising (32 x 256: 17 us, here 2.3 us)
    for s in range(r0, r1):
        row = z[s, c0:c1]
        at = first + s * n_above + c0
        part = part_z[at : at + width]
        for j in range(width):
            row[j] = part[j]
        for u in range(1, n_threads):
            part = part_z[at + u * block : at + u * block + width]
            for j in range(width):
                row[j] += part[j]
        for j in range(width):
            row[j] += bias[j]


@jit
def split_by_units(layout, m):
    """True if a step of m samples splits its passes by units (see MIN_SAMPLE_SPLIT)."""
    sizes = layout[0]
    threshold = MIN_UNIT_SPLIT_WEIGHTS if m < MIN_SAMPLE_SPLIT else BIG_LAYER_WEIGHTS
    for layer in range(sizes.shape[0] - 1):
        if sizes[layer] * sizes[layer + 1] >= threshold:
            return True
    return False


@jit
def forward_by_units(team, passed, theta, layout, xb, db, work, part_z, m):
    """The forward half of step 1 split by units instead of samples (batches of few samples, or a big
    layer): thread t computes z and y of its units of every layer for all m samples, a barrier after
    each layer, then the output layer, the loss and the output error terms of its rows of the batch.
    Each thread so reads its part of every W once, where split by samples both would read all of it.
    Below MIN_SAMPLE_SPLIT samples it takes its rows of each W (``partial_product``, then
    ``add_partials`` for its units), the rows that ``backward_and_update`` takes, so a thread never
    reads lines of W that the other core has just written; from MIN_SAMPLE_SPLIT on, its columns, as
    the sum of the partial products would cost more than those lines.  Returns (the loss summed over
    this thread's rows, right answers in them, barriers passed, ok); the caller has gathered all m rows
    and passes a barrier before anyone reads the output error terms."""
    tid, n_threads, sync, control, entered_before, max_spins = team
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    last = codes.shape[0] - 1
    x_flat = xb.reshape(-1)
    by_rows = m < MIN_SAMPLE_SPLIT
    for layer in range(last + 1):
        n_below, n_above = sizes[layer], sizes[layer + 1]
        c0, c1 = share_of(n_above, tid, n_threads)
        z = rows_of(z_buf, capacity, sizes, unit_offsets, layer, 0, m)
        y = rows_of(y_buf, capacity, sizes, unit_offsets, layer, 0, m)
        if layer == 0:
            source, source_at = x_flat, 0
        else:
            source, source_at = y_buf, capacity * unit_offsets[layer - 1]
        if by_rows:
            partial_product(tid, n_threads, layer, (n_below, n_above, m), theta, w_offsets[layer], source, source_at,
                            part_z)  # fmt: skip
        elif c1 > c0:
            z_at = capacity * unit_offsets[layer]
            gemm_strided(
                False, False, (c1 - c0, m, n_below), theta, w_offsets[layer] + c0, n_above, source, source_at,
                n_below, z_buf, z_at + c0, n_above,
            )  # fmt: skip
            b = layer_biases(theta, sizes, b_offsets, layer)
            for s in range(m):
                for j in range(c0, c1):
                    z[s, j] += b[j]
            if layer < last:  # before the barrier: the next layer's product reads every unit's y
                activation_forward(codes[layer], z[:, c0:c1], y[:, c0:c1], alphas[layer])
        if not _sync.barrier(sync, n_threads, passed):
            return 0.0, 0, passed, False
        passed += 1
        if by_rows and layer < last and c1 > c0:
            # the next layer's product reads only the y of this thread's units: no barrier after
            add_partials(n_threads, layer, part_z, layer_biases(theta, sizes, b_offsets, layer), z, 0, m, c0, c1)
            activation_forward(codes[layer], z[:, c0:c1], y[:, c0:c1], alphas[layer])
    r0, r1 = share_of(m, tid, n_threads)
    E_sum = 0.0
    correct = 0
    if r1 > r0:
        if by_rows:
            z_all = rows_of(z_buf, capacity, sizes, unit_offsets, last, 0, m)
            add_partials(n_threads, last, part_z, layer_biases(theta, sizes, b_offsets, last), z_all, r0, r1, 0,
                         sizes[last + 1])  # fmt: skip
        z_out = rows_of(z_buf, capacity, sizes, unit_offsets, last, r0, r1)
        y_out = rows_of(y_buf, capacity, sizes, unit_offsets, last, r0, r1)
        delta_out = rows_of(delta_buf, capacity, sizes, unit_offsets, last, r0, r1)
        d_rows = db[r0:r1]
        if codes[last] == SOFTMAX:
            activation_forward(SOFTMAX, z_out, y_out, alphas[last])
        else:
            activation_forward(codes[last], as_one_row(z_out), as_one_row(y_out), alphas[last])
        E_sum = loss(loss_code, z_out, y_out, d_rows) * (r1 - r0)
        if loss_code != SQUARED_ERROR:
            correct = count_correct(loss_code, y_out, d_rows)
        output_error_terms(layout, z_out, y_out, d_rows, delta_out, m)
    return E_sum, correct, passed, True


@jit
def gradient_of_rows(y_prev, col0, delta, g):
    """g (r, u) = dE/dW of rows col0..col0+r-1 of a layer's W: sum_s y_prev[s, col0 + i] delta[s, j]."""
    m = y_prev.shape[0]
    r, u = g.shape
    if m >= MIN_GEMM_SAMPLES and m * r * u >= BLAS_MIN_MULTIPLY_ADDS:
        gemm_columns(g, y_prev, col0, delta)
        return
    for i in range(r):
        a = y_prev[0, col0 + i]
        for j in range(u):
            g[i, j] = a * delta[0, j]
        for s in range(1, m):
            a = y_prev[s, col0 + i]
            for j in range(u):
                g[i, j] += a * delta[s, j]


@jit
def _part(a, start, stop):
    """a[start:stop], or a itself if it is empty (optimizer state or frozen mask not in use)."""
    if a.shape[0] == 0:
        return a
    return a[start:stop]


@jit
def step_entries(opt, lr, t, vectors, start, stop, g):
    """The optimizer's step on parameters start..stop-1, in place, with their gradient g (stop - start,).
    ``vectors`` = (theta, state1, state2, grad_blocks)."""
    opt_code, hyper, frozen = opt
    theta, state1, state2 = vectors[0], vectors[1], vectors[2]
    optimizer_update(
        opt_code, theta[start:stop], g, lr, hyper, _part(state1, start, stop),
        _part(state2, start, stop), t, _part(frozen, start, stop),
    )  # fmt: skip


@jit
def rows_per_block(m, n_above, share_rows):
    """Rows of W per block of ``update_layer`` for a batch of m samples: BLOCK_ENTRIES below
    WHOLE_SHARE_SAMPLES, FUSED_BLOCK_ENTRIES up to MIN_SAMPLE_SPLIT, then the whole share.  (Split by
    samples, 16-63 samples come only with layers below 128 K weights, whose share is one block either way.)"""
    if m >= MIN_SAMPLE_SPLIT:
        return max(1, share_rows)
    if m >= WHOLE_SHARE_SAMPLES:
        return max(1, FUSED_BLOCK_ENTRIES // n_above)
    return max(1, BLOCK_ENTRIES // n_above)


@jit
def update_layer(tid, n_threads, layout, xb, work, m, layer, error_terms, opt, lr, t, vectors):
    """Step 3 for one layer: gradient and optimizer step of thread tid's rows of its W, a block of rows at a
    time, then of its entries of b.  With ``error_terms``, each block first gives the error terms of its
    units in the layer below, delta_prev[:, r0:r1] = delta @ W[r0:r1].T (before f'), from the W of the
    step, so the block is read once for both.  ``vectors`` = (theta, state1, state2, grad_blocks):
    ``grad_blocks`` holds n_threads equal blocks, each at least the largest share of one layer's W (and of
    its b), and a block's gradient goes into thread tid's, which stays in the core's cache from one block
    to the next instead of passing through memory in a parameter-sized vector."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    theta, grad_blocks = vectors[0], vectors[3]
    g_at = tid * (grad_blocks.shape[0] // n_threads)
    n_below, n_above = sizes[layer], sizes[layer + 1]
    y_prev = xb if layer == 0 else rows_of(y_buf, capacity, sizes, unit_offsets, layer - 1, 0, m)
    delta = rows_of(delta_buf, capacity, sizes, unit_offsets, layer, 0, m)
    i0, i1 = share_of(n_below, tid, n_threads)
    block_rows = rows_per_block(m, n_above, i1 - i0)
    for r0 in range(i0, i1, block_rows):
        r1 = min(i1, r0 + block_rows)
        start = w_offsets[layer] + r0 * n_above
        stop = w_offsets[layer] + r1 * n_above
        if error_terms:
            gemm_strided(
                True, False, (r1 - r0, m, n_above), theta, start, n_above, delta_buf, capacity * unit_offsets[layer],
                n_above, delta_buf, capacity * unit_offsets[layer - 1] + r0, n_below,
            )  # fmt: skip
        g = grad_blocks[g_at : g_at + stop - start]
        gradient_of_rows(y_prev, r0, delta, g.reshape((r1 - r0, n_above)))
        step_entries(opt, lr, t, vectors, start, stop, g)
    j0, j1 = share_of(n_above, tid, n_threads)
    b0 = b_offsets[layer]
    grad_b = grad_blocks[g_at : g_at + j1 - j0]
    # sample by sample along the row (a SIMD loop), not unit by unit down a column (5x slower)
    for j in range(j1 - j0):
        grad_b[j] = delta[0, j0 + j]
    for s in range(1, m):
        row = delta[s, j0:j1]
        for j in range(j1 - j0):
            grad_b[j] += row[j]
    step_entries(opt, lr, t, vectors, b0 + j0, b0 + j1, grad_b)


@jit
def update_share(tid, n_threads, layout, xb, work, m, opt, lr, t, vectors):
    """Step 3: gradient and optimizer step of thread tid's rows of every W and entries of every b."""
    for layer in range(layout[1].shape[0]):
        update_layer(tid, n_threads, layout, xb, work, m, layer, False, opt, lr, t, vectors)


@jit
def backward_and_update(team, passed, layout, xb, work, m, opt, lr, t, vectors):
    """The backward half of step 1 and step 3 in one pass, for the split by units: from the output layer
    down, ``update_layer`` with the error terms of the layer below, then f' on this thread's units of it
    and a barrier (the next layer down needs all its error terms).  Each row of W is so read once a step
    and updated while it is in the core's cache.  Returns (barriers passed, ok)."""
    tid, n_threads, sync, control, entered_before, max_spins = team
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    for layer in range(codes.shape[0] - 1, -1, -1):
        update_layer(tid, n_threads, layout, xb, work, m, layer, layer > 0, opt, lr, t, vectors)
        if layer > 0:
            i0, i1 = share_of(sizes[layer], tid, n_threads)
            if i1 > i0:
                z_prev = rows_of(z_buf, capacity, sizes, unit_offsets, layer - 1, 0, m)
                y_prev = rows_of(y_buf, capacity, sizes, unit_offsets, layer - 1, 0, m)
                delta_prev = rows_of(delta_buf, capacity, sizes, unit_offsets, layer - 1, 0, m)
                multiply_by_derivative(
                    codes[layer - 1], z_prev[:, i0:i1], y_prev[:, i0:i1], delta_prev[:, i0:i1], alphas[layer - 1]
                )
            if not _sync.barrier(sync, n_threads, passed):
                return passed, False
            passed += 1
    return passed, True


@jit
def copy_share(tid, n_threads, layout, source, target):
    """Thread tid's parameters and their state from ``source`` = (theta, state1, state2) into ``target``."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    for layer in range(codes.shape[0]):
        n_above = sizes[layer + 1]
        i0, i1 = share_of(sizes[layer], tid, n_threads)
        j0, j1 = share_of(n_above, tid, n_threads)
        for start, stop in (
            (w_offsets[layer] + i0 * n_above, w_offsets[layer] + i1 * n_above),
            (b_offsets[layer] + j0, b_offsets[layer] + j1),
        ):
            for v in range(3):
                if source[v].shape[0] > 0:
                    source_part = source[v]
                    target_part = target[v]
                    for k in range(start, stop):
                        target_part[k] = source_part[k]


@jit
def team_step(team, layout, batch_data, bufs, opt, lr, t, copy, passed):
    """One step of this thread: step 1 on its rows of the batch (or the forward half of it, split by
    units), a barrier, and if the loss is finite (every thread decides alike) steps 3 and 4 (with the
    backward half of step 1 when split by units), after a copy of its share into the backup if ``copy``.
    Returns (E, right answers in its rows, barriers passed, ok); ok is False if the run was aborted.
    ``batch_data`` = (X, D, order, start, m, parity); ``bufs`` = (theta, state1, state2, grad_blocks,
    work, x_batch, d_batch, partials, saved, part_z), ``saved`` the backup's parts shaped like theta,
    state1, state2, ``grad_blocks`` as in ``update_layer``, ``part_z`` as in ``partial_product``."""
    tid, n_threads, sync, control, entered_before, max_spins = team
    X, D, order, start, m, parity = batch_data
    theta, state1, state2, grad_blocks, work, x_batch, d_batch, partials, saved, part_z = bufs
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    n_in, n_out = X.shape[1], D.shape[1]
    xb = x_batch[: m * n_in].reshape((m, n_in))
    db = d_batch[: m * n_out].reshape((m, n_out))
    r0, r1 = share_of(m, tid, n_threads)
    E_part = 0.0
    correct = 0
    gather_rows(X, D, order, start + r0, xb[r0:r1], db[r0:r1])
    by_units = split_by_units(layout, m)
    if by_units:
        if not _sync.barrier(sync, n_threads, passed):  # every row gathered
            return 0.0, 0, passed, False
        E_part, correct, passed, ok = forward_by_units(team, passed + 1, theta, layout, xb, db, work, part_z, m)
        if not ok:
            return 0.0, 0, passed, False
        partials[parity, tid * PARTIAL_STRIDE] = E_part
        if not _sync.barrier(sync, n_threads, passed):  # every partial loss and output error term written
            return 0.0, 0, passed, False
        passed += 1
    else:
        if r1 > r0:
            E_part = passes_on_rows(theta, layout, xb, db, work, r0, r1, m)
            if loss_code != SQUARED_ERROR:
                last = codes.shape[0] - 1
                y_out = rows_of(y_buf, capacity, sizes, unit_offsets, last, r0, r1)
                correct = count_correct(loss_code, y_out, db[r0:r1])
        partials[parity, tid * PARTIAL_STRIDE] = E_part
        if not _sync.barrier(sync, n_threads, passed):
            return 0.0, 0, passed, False
        passed += 1
    E_sum = 0.0
    for u in range(n_threads):
        E_sum += partials[parity, u * PARTIAL_STRIDE]
    E = E_sum / m
    if math.isfinite(E):
        if copy:
            copy_share(tid, n_threads, layout, (theta, state1, state2), saved)
        vectors = (theta, state1, state2, grad_blocks)
        if by_units:
            passed, ok = backward_and_update(team, passed, layout, xb, work, m, opt, lr, t, vectors)
            if not ok:
                return E, correct, passed, False
        else:
            update_share(tid, n_threads, layout, xb, work, m, opt, lr, t, vectors)
        waited_from = _sync.cycle_count()
        if not _sync.barrier(sync, n_threads, passed):
            return E, correct, passed, False
        passed += 1
        if tid == 0:  # the update is split evenly: a long wait here means a partner lost its core
            sync[_sync.WAIT_CYCLES] += _sync.cycle_count() - waited_from
    return E, correct, passed, True


@jit
def fit_epochs_wide(team, layout, data, opt_state, bufs, out):
    """Thread ``team[0]``'s part of ``engine._serial.fit_epochs`` for any network (see the module).

    ``team`` = (tid, n_threads, sync, control, entered_before, max_spins): the
    barrier's array (zeros before the first run, not reset between runs that
    ended normally) and the helpers' control array, as in
    ``engine._threaded_pass.fit_epochs_share``.  ``data`` = (X, D, epoch_lrs,
    batch_size, shuffle, rng_state, order); ``opt_state`` = (opt_code, hyper,
    state1, state2, step_count, frozen); ``bufs`` = (theta, grad_blocks, backup,
    backup_valid, work, x_batch, d_batch, partials, part_z); ``out`` = (epoch_losses,
    epoch_correct).  All as in ``fit_epochs`` and shared by the threads,
    except each thread's own ``rng_state``, ``order``, ``step_count`` and
    ``backup_valid`` (equal at the start).  ``backup`` holds a copy of
    [theta | state1 | state2] (see the module); when ``backup_valid[0]`` is
    set at the start, the one from before the last update.  ``partials``:
    float64 (2, n_threads * PARTIAL_STRIDE), the threads' partial losses of the
    last two steps.  ``grad_blocks``: as in ``update_layer``.  ``part_z``: the partial products of
    ``partial_product``, 2 x n_threads blocks of at least min(batch_size, MIN_SAMPLE_SPLIT - 1) x (the
    widest layer) entries.  Each thread adds its right answers to ``epoch_correct`` (zeros at the
    start); thread 0 writes ``epoch_losses``, its cycles in all into ``sync[RUN_CYCLES]`` and those it
    waited at the barrier after the (evenly split) updates into ``sync[WAIT_CYCLES]``.
    X and D must be finite (the caller checks).

    Returns what ``fit_epochs`` returns (-1, or the index of the diverging
    batch), or -3 if the run was aborted (``sync[ABORT]`` set).
    """
    tid, n_threads, sync, control, entered_before, max_spins = team
    X, D, epoch_lrs, batch_size, shuffle, rng_state, order = data
    opt_code, hyper, state1, state2, step_count, frozen = opt_state
    theta, grad_blocks, backup, backup_valid, work, x_batch, d_batch, partials, part_z = bufs
    epoch_losses, epoch_correct = out
    if tid == 0:
        _sync.atomic_add(control, ENTERED, 1)
    n = X.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    classify = layout[3] != SQUARED_ERROR
    saved = backup_parts(theta, state1, state2, backup)
    step_bufs = (theta, state1, state2, grad_blocks, work, x_batch, d_batch, partials, saved, part_z)
    opt = (opt_code, hyper, frozen)
    passed = _sync.atomic_load(sync, _sync.BARRIER) // n_threads  # see fit_epochs_share
    run_from = _sync.cycle_count()
    if tid == 0:
        sync[_sync.WAIT_CYCLES] = 0
    since_copy = 1  # updates since the backup was copied (from the run before: one)
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
            parity = (epoch * n_batches + batch) & 1
            copy = batch % CHECKPOINT_EVERY == 0 or batch == n_batches - 1
            E, right, passed, ok = team_step(
                team, layout, (X, D, order, start, m, parity), step_bufs, opt, lr, step_count[0] + 1, copy, passed
            )
            if not ok:
                return -3
            if not math.isfinite(E):
                status = epoch * n_batches + batch
                if backup_valid[0]:
                    passed, ok = step_back(team, layout, (X, D, order, batch_size), step_bufs, opt, lr, step_count,
                                           batch - since_copy, since_copy - 1, passed)  # fmt: skip
                    if not ok:
                        return -3
                break
            total += E
            correct += right
            step_count[0] += 1
            since_copy = 1 if copy else since_copy + 1
            backup_valid[0] = 1
        if status != -1:
            break
        if classify:
            _sync.atomic_add(epoch_correct, epoch, correct)
        if tid == 0:
            epoch_losses[epoch] = total / n_batches
    if tid == 0:
        sync[_sync.RUN_CYCLES] = _sync.cycle_count() - run_from
    # all threads leave together: the caller may read the network's parameters as soon as its own call returns
    if not _sync.barrier(sync, n_threads, passed):
        return -3
    if tid > 0:
        _sync.wait_above(control, ENTERED, entered_before + 1, max_spins)
    return status


@jit
def step_back(team, layout, epoch_data, step_bufs, opt, lr, step_count, first_batch, replays, passed):
    """After a non-finite loss: the copy in the backup back into this thread's share (a barrier: every
    thread's part is back), then the ``replays`` updates of this epoch's batches from ``first_batch`` on
    that followed the copy, again.  Leaves the parameters at which the last finite loss was measured and
    step_count as it was then.  Returns (barriers passed, ok)."""
    tid, n_threads, sync, control, entered_before, max_spins = team
    X, D, order, batch_size = epoch_data
    n = X.shape[0]
    copy_share(tid, n_threads, layout, step_bufs[8], (step_bufs[0], step_bufs[1], step_bufs[2]))
    step_count[0] -= replays + 1
    if not _sync.barrier(sync, n_threads, passed):
        return passed, False
    passed += 1
    for batch in range(first_batch, first_batch + replays):
        start = batch * batch_size
        m = min(batch_size, n - start)
        E, right, passed, ok = team_step(
            team, layout, (X, D, order, start, m, batch & 1), step_bufs, opt, lr, step_count[0] + 1, False, passed
        )
        if not ok:
            return passed, False
        step_count[0] += 1
    return passed, True
