"""One epoch of scikit-learn's Adam or SGD for a one-hidden-layer network, split by hidden units into shares
that run on one thread each or all on one thread (``split_run`` runs it; ``_compiled`` is the one-thread rule
book this follows).

The split is ``fastbp.engine._threaded``'s: share s owns hidden units [bounds[s], bounds[s + 1]), the columns
of W1 and entries of b1 that feed them, the rows of W2 they feed, and a copy of b2, packed into its block
[W1[:, own] (n_in, h_s) | b1[own] | W2[own, :] (h_s, n_out) | b2] (``engine._threaded_pass.block_offsets``).
The optimizer state is packed the same way.  A step of a batch of m rows:

1. each thread gathers the batch's rows of X and, for each of its shares, computes z1 = x W1 + b1,
   y1 = f(z1), the share y1 W2 (m, n_out) of z2 and, with an L2 term, the share's sum of squared weights;
2. one barrier; every thread adds the shares in share order and b2, y2 = out(z2), and the error terms
   delta2 = (y2 - d) * sample_weight, so all hold the same numbers; thread 0 also the batch's loss (after
   an epoch it applies scikit-learn's stopping rule; the others learn its verdict after the next barrier);
3. for each of its shares: the gradients (y1^T delta2 + alpha W2) / sum(w), delta1 = (delta2 W2^T) f'(y1),
   (x^T delta1 + alpha W1) / sum(w), the bias gradients, and the optimizer step of the share's block (each
   block steps its own copy of b2 with the same numbers).

Only the shares of z2 cross between threads.  A thread that runs several shares does the same arithmetic in
the same order as several threads would, so the result depends on the split (chosen from the shapes and the
thread setting), never on how many threads ran it or on timing.
"""

import math

import numpy as np

from fastbp.config import BLAS_MIN_MULTIPLY_ADDS, jit
from fastbp.engine._threaded_pass import ENTERED, _layer_views, _leave_together, move_block, output_share
from fastbp.integrations.sklearn._compiled import ADAM_RULE, activate_into, data_loss, optimizer_step
from fastbp.kernels import _sync
from fastbp.kernels.activations import IDENTITY, multiply_by_derivative
from fastbp.kernels.backprop import hidden_delta
from fastbp.kernels.dense import _dense_forward_one_call, bias_gradient, weight_gradient


@jit
def _move_share(s, layout, split, packed, net, to_packed):
    """Share s's block of the parameters and optimizer state between the network's vectors (scikit-learn's
    packing) and the packed ones: into the blocks (``to_packed``), or back (b2 only from share 0)."""
    bounds, offsets = split
    params, state1, state2 = packed[0], packed[2], packed[3]
    theta, net1, net2 = net
    move_block(theta, layout, bounds, offsets, params, s, to_packed)
    if net1.shape[0] > 0:
        move_block(net1, layout, bounds, offsets, state1, s, to_packed)
    if net2.shape[0] > 0:
        move_block(net2, layout, bounds, offsets, state2, s, to_packed)


@jit(inline="always")
def _share_buffers(buf, cap, m, h_s, n_out):
    """A share's y1 and delta1 (m, h_s) and w2t (n_out, h_s), the transposed copy of its W2 (delta1's rows
    hold z1 from the forward pass until the backward pass writes delta1)."""
    y1 = buf[: m * h_s].reshape((m, h_s))
    delta1 = buf[cap * h_s : cap * h_s + m * h_s].reshape((m, h_s))
    at = 2 * cap * h_s
    return y1, delta1, buf[at : at + n_out * h_s].reshape((n_out, h_s))


@jit(inline="always")
def _forward_share(hidden_code, xb, W1, b1, W2, z1, y1, share):
    """z1 = x W1 + b1 and y1 = f(z1) for the share's hidden units, and their part y1 W2 (m, n_out) of z2."""
    _dense_forward_one_call(xb, W1, b1, z1)
    activate_into(hidden_code, z1, y1)
    output_share(y1, W2, share)


@jit(inline="always")
def _squares(W1, W2):
    total = 0.0
    for v in W1.ravel():
        total += v * v
    for v in W2.ravel():
        total += v * v
    return total


@jit(inline="always")
def _backward_share(hidden_code, xb, delta2, block, grad_block, bufs):
    """The share's raw gradients (sums over the batch) into grad_block, from the batch xb, the error terms
    delta2 and its y1."""
    W2 = block[2]
    gW1, gb1, gW2, gb2 = grad_block
    y1, delta1, w2t = bufs
    m, h_s = y1.shape
    n_out = W2.shape[1]
    bias_gradient(delta2, 1.0, gb2)
    weight_gradient(y1, delta2, 1.0, gW2)
    if m * n_out * h_s >= BLAS_MIN_MULTIPLY_ADDS:  # delta2 W2^T through a transposed copy (see _threaded_pass)
        for j in range(h_s):
            for k in range(n_out):
                w2t[k, j] = W2[j, k]
        np.dot(delta2, w2t, delta1)
    else:
        hidden_delta(IDENTITY, delta2, W2, y1, y1, delta1)
    multiply_by_derivative(hidden_code, y1, y1, delta1)  # f' from the outputs: ReLU's y > 0 is z > 0
    weight_gradient(xb, delta1, 1.0, gW1)
    bias_gradient(delta1, 1.0, gb1)


@jit(inline="always")
def _output_and_error(layout, shares_now, b2, rows, data, a2, delta2):
    """z2 = the sum of the shares (in share order) + b2 (in delta2's rows), a2 = out(z2), delta2 = (a2 - d) *
    w; the batch's total sample weight."""
    out_code = layout[2]
    D, sample_weight, weighted = data[5], data[6], data[7]
    m, n_out = a2.shape
    z2 = delta2.ravel()
    for k in range(m * n_out):
        z2[k] = shares_now[0, k]
    for u in range(1, shares_now.shape[0]):
        for k in range(m * n_out):
            z2[k] += shares_now[u, k]
    for s in range(m):
        for j in range(n_out):
            delta2[s, j] += b2[j]
    activate_into(out_code, delta2, a2)
    weight_sum = 0.0
    for s in range(m):
        r = rows[s]
        w = sample_weight[r] if weighted else 1.0
        weight_sum += w
        for j in range(n_out):
            delta2[s, j] = a2[s, j] - D[r, j]
            if weighted:
                delta2[s, j] *= w
    return weight_sum


@jit(inline="always")
def _forward_shares(layout, split, packed, xb, cap, shares_now, first, last, alpha):
    """Step 1 (see the module) for shares first .. last - 1 and a batch xb of up to cap rows: their parts of
    z2 and sums of squared weights into ``shares_now`` (S, cap * n_out + 1)."""
    bounds, offsets = split
    sizes, hidden_code = layout[0], layout[1]
    n_in, n_out = sizes[0], sizes[2]
    params, share_bufs = packed[0], packed[5]
    m = xb.shape[0]
    for s in range(first, last):
        h_s = bounds[s + 1] - bounds[s]
        W1, b1, W2, _ = _layer_views(params[offsets[s] : offsets[s + 1]], n_in, h_s, n_out)
        y1, z1, _ = _share_buffers(share_bufs[s], cap, m, h_s, n_out)
        _forward_share(hidden_code, xb, W1, b1, W2, z1, y1, shares_now[s, : m * n_out].reshape((m, n_out)))
        if alpha != 0.0:
            shares_now[s, cap * n_out] = _squares(W1, W2)


@jit(inline="always")
def _backward_shares(layout, split, packed, xb, cap, delta2, first, last, inv_weight, step):
    """Step 3 (see the module) for shares first .. last - 1; ``step`` as ``_compiled.optimizer_step``'s."""
    bounds, offsets = split
    sizes, hidden_code = layout[0], layout[1]
    n_in, n_out = sizes[0], sizes[2]
    params, grad, state1, state2, share_bufs = packed[0], packed[1], packed[2], packed[3], packed[5]
    m = xb.shape[0]
    for s in range(first, last):
        h_s = bounds[s + 1] - bounds[s]
        o = offsets[s]
        block = _layer_views(params[o : offsets[s + 1]], n_in, h_s, n_out)
        grad_block = _layer_views(grad[o : offsets[s + 1]], n_in, h_s, n_out)
        _backward_share(hidden_code, xb, delta2, block, grad_block, _share_buffers(share_bufs[s], cap, m, h_s, n_out))
        # the block's runs: W1 and W2 with the L2 term, b1 and b2 without
        w1_end = o + n_in * h_s
        b1_end = w1_end + h_s
        w2_end = b1_end + h_s * n_out
        for begin, end, l2 in ((o, w1_end, True), (w1_end, b1_end, False), (b1_end, w2_end, True),
                               (w2_end, w2_end + n_out, False)):  # fmt: skip
            state2_run = state2[begin:end] if state2.shape[0] > 0 else state2
            optimizer_step(params[begin:end], grad[begin:end], state1[begin:end], state2_run, l2, inv_weight, step)


@jit(inline="always")
def _stops(loss, stopping):
    """scikit-learn's no-improvement rule on the training loss after an epoch: stopping = [check, tol,
    n_iter_no_change, best_loss, count] (float64, updated in place); True when the count passes
    n_iter_no_change (with ``check``)."""
    if stopping[0] == 0.0:
        return False
    if loss > stopping[3] - stopping[1]:
        stopping[4] += 1.0
    else:
        stopping[4] = 0.0
    if loss < stopping[3]:
        stopping[3] = loss
    return stopping[4] > stopping[2]


@jit
def fit_epochs_split(team, layout, split, data, epochs, batch_size, alpha, clip, opt, packed, net, out):
    """Thread ``team[0]``'s part of a run of epochs (see the module), each of mini-batches over the rows in
    its order, each batch followed by an optimizer step of the thread's shares.

    ``team`` = (tid, n_threads, sync, control, entered_before, max_spins) as in ``engine._threaded``; thread
    tid runs shares [tid S / T, (tid + 1) S / T) of the S = len(bounds) - 1 shares.  ``split`` = (bounds,
    offsets); ``layout``, ``data`` (dense) and ``alpha``, ``clip`` are ``_compiled``'s.  ``epochs`` =
    (orders (E, n) or (1, n) int64: each epoch's row order, or one for all; epoch_lrs (E,): the learning rate
    of each epoch (Adam's learning_rate_init); stopping (5,): see _stops, applied by thread 0); the run
    ends after E epochs or when scikit-learn's rule stops it.  ``opt`` = (rule, momentum, nesterov, beta1,
    beta2, eps, t).  ``packed`` = (params, grad, state1, state2, scratch, share_bufs, shares): the packed
    vectors (state1 the velocity or Adam's m, state2 Adam's v; length 0 if unused), scratch (T, batch_size *
    (n_in + 2 n_out)), share_bufs (S, (2 batch_size + n_out) h_max), shares (2, S, batch_size * n_out + 1):
    each step's z2 shares and squared-weight sums, by step parity.  ``net`` = (theta, state1, state2) in
    scikit-learn's packing, read at the start and written at the end.  ``out`` = (losses (E,), result (4,), zeros
    at the start): thread 0 writes each epoch's loss (the batch losses weighted by length), and the epochs
    run, the step count t, Adam's last bias-corrected step size and (result[3]) 1 when the rule stopped the run.

    Returns -1, or -3 if the run was aborted (``sync[ABORT]`` set).
    """
    tid, n_threads, sync, control = team[0], team[1], team[2], team[3]
    n_in, n_out = layout[0][0], layout[0][2]
    X, D, sample_weight, weighted = data[0], data[5], data[6], data[7]
    orders, epoch_lrs, stopping = epochs
    rule, momentum, nesterov, beta1, beta2, eps, t = opt
    params, scratch, shares = packed[0], packed[4], packed[6]
    losses, result = out
    if tid == 0:
        _sync.atomic_add(control, ENTERED, 1)
    bounds, offsets = split
    n_shares = bounds.shape[0] - 1
    first, last = tid * n_shares // n_threads, (tid + 1) * n_shares // n_threads
    for s in range(first, last):
        _move_share(s, layout, split, packed, net, True)
    cap = batch_size
    mine = scratch[tid]
    b2 = _layer_views(params[offsets[first] : offsets[first + 1]], n_in, bounds[first + 1] - bounds[first], n_out)[3]
    passed = _sync.atomic_load(sync, _sync.BARRIER) // n_threads
    n = orders.shape[1]
    n_batches = (n + batch_size - 1) // batch_size
    lr_t, run_from, wait_cycles, done, stopped = epoch_lrs[0], 0, 0, 0, False
    for epoch in range(epoch_lrs.shape[0]):
        order = orders[min(epoch, orders.shape[0] - 1)]
        lr, total = epoch_lrs[epoch], 0.0
        for batch in range(n_batches):
            start = batch * batch_size
            m = min(batch_size, n - start)
            rows = order[start : start + m]
            xb = mine[: m * n_in].reshape((m, n_in))
            for k in range(m):
                r = rows[k]
                for i in range(n_in):
                    xb[k, i] = X[r, i]
            shares_now = shares[(epoch * n_batches + batch) & 1]
            _forward_shares(layout, split, packed, xb, cap, shares_now, first, last, alpha)
            waited_from = _sync.cycle_count()
            if not _sync.barrier(sync, n_threads, passed):
                return -3
            passed += 1
            if epoch == 0 and batch == 0:
                run_from = _sync.cycle_count()  # the first wait is the helpers' start-up
            else:
                wait_cycles += _sync.cycle_count() - waited_from
            if batch == 0 and result[3] != 0.0:  # thread 0 found the rule stops the run after the last epoch
                stopped = True
                break

            a2 = mine[cap * n_in : cap * n_in + m * n_out].reshape((m, n_out))
            delta2 = mine[cap * (n_in + n_out) : cap * (n_in + n_out) + m * n_out].reshape((m, n_out))
            weight_sum = _output_and_error(layout, shares_now[:, : m * n_out], b2, rows, data, a2, delta2)
            inv_weight = 1.0 / weight_sum if weight_sum > 0.0 else 0.0  # a batch of weight 0 changes nothing
            if tid == 0:  # the loss
                loss = data_loss(layout[3], a2, D, sample_weight, weighted, rows, -1, clip)[0]
                if alpha != 0.0:
                    loss += 0.5 * alpha * shares_now[:, cap * n_out].sum() * inv_weight
                total += loss * m
            if rule == ADAM_RULE:
                t += 1
                lr_t = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
            step = (rule, lr_t if rule == ADAM_RULE else lr, momentum, nesterov, beta1, beta2, eps, alpha)
            _backward_shares(layout, split, packed, xb, cap, delta2, first, last, inv_weight, step)
        if stopped:
            break
        done = epoch + 1
        if tid == 0:
            losses[epoch] = total / n
            if _stops(total / n, stopping):
                result[3] = 1.0  # the others see it after the next step's barrier, and all stop there
    for s in range(first, last):
        _move_share(s, layout, split, packed, net, False)
    if tid == 0:
        result[0], result[1], result[2] = done, t, lr_t
    return _leave_together(team, passed, run_from, wait_cycles, -1)
