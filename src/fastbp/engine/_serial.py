"""Whole-network passes compiled with numba, over flat buffers.

A network of L layers is described to these functions by one tuple, its
*layout* ``(sizes, codes, alphas, loss_code, w_offsets, b_offsets,
unit_offsets)``, built once by :class:`fastbp.nn.layout.Layout`:

* ``sizes`` (L+1,) -- units per layer, input first;
* ``codes`` (L,) -- activation code of each non-input layer (see ``kernels``);
* ``alphas`` (L,) -- each layer's activation parameter (leaky_relu slope, elu alpha);
* ``loss_code`` -- the loss (``kernels.SQUARED_ERROR`` ...), an int;
* ``w_offsets``, ``b_offsets`` (L,) -- where W and b of each layer start in
  the flat parameter vector ``theta`` (W row-major, then b, layer after layer);
* ``unit_offsets`` (L+1,) -- prefix sums of ``sizes[1:]``: the units of layer
  l+1 start at ``capacity * unit_offsets[l]`` in the flat work buffers.

The work buffers come as a second tuple, ``work = (capacity, z_buf, y_buf,
delta_buf)`` (:class:`fastbp.nn.layout.Workspace`): z, y and delta of every
layer for up to ``capacity`` samples.

Views into the flat vectors are made with ``kernels._jit_utils.rows_view`` (a
reshaped slice, built without numba's shape helper), which neither copies nor
allocates.  Nothing here validates: the callers in ``fastbp.nn`` do.
"""

import math

from fastbp.config import MIN_GEMM_SAMPLES, jit
from fastbp.kernels._blas import blas_pays, gemm_accumulate
from fastbp.kernels._jit_utils import all_finite, all_finite_flat, rows_view, shuffle_in_place
from fastbp.kernels.activations import IDENTITY, SOFTMAX, activation_forward, multiply_by_derivative
from fastbp.kernels.backprop import hidden_delta, output_delta
from fastbp.kernels.dense import _dense_forward_one_call, bias_gradient, dense_forward, weight_gradient
from fastbp.kernels.losses import CROSS_ENTROPY, SQUARED_ERROR, loss
from fastbp.kernels.optimizers import H_MOMENTUM, H_WEIGHT_DECAY, SGD, optimizer_update


@jit
def layer_weights(theta, sizes, w_offsets, layer):
    """View of W of layer ``layer`` (0-based over non-input layers), shape (sizes[l], sizes[l+1])."""
    n_below = sizes[layer]
    n_above = sizes[layer + 1]
    start = w_offsets[layer]
    return rows_view(theta, start, n_below, n_above)


@jit
def layer_biases(theta, sizes, b_offsets, layer):
    """View of b of layer ``layer``, shape (sizes[l+1],)."""
    start = b_offsets[layer]
    return theta[start : start + sizes[layer + 1]]


@jit
def layer_rows(buf, capacity, sizes, unit_offsets, layer, n):
    """View of the first n rows of layer ``layer``'s block of a work buffer, shape (n, sizes[l+1])."""
    width = sizes[layer + 1]
    start = capacity * unit_offsets[layer]
    return rows_view(buf, start, n, width)


@jit
def as_one_row(a):
    """The C-contiguous (n, m) array a as a (1, n * m) view, for elementwise kernels: their inner
    loop then runs over all n * m entries at once (a 10-unit row leaves SIMD lanes idle)."""
    return rows_view(a, 0, 1, a.shape[0] * a.shape[1])


@jit
def forward_pass(theta, layout, X, work, one_call=False):
    """Forward pass of n = X.shape[0] <= capacity samples; z and y of every layer land in the buffers.

    ``one_call``: each layer's product is one BLAS call, not ``dense_forward``'s row blocks, which keep
    OpenBLAS's threads asleep but pack W again for every block (10-310-310-1 at 16 samples, float64, AMD EPYC
    Zen 3: 336 against 121 us).  For callers whose BLAS runs on their own thread alone, and for passes whose
    backward products, as large, wake BLAS's threads anyway."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    n = X.shape[0]
    for layer in range(codes.shape[0]):
        if layer == 0:
            y_prev = X
        else:
            y_prev = layer_rows(y_buf, capacity, sizes, unit_offsets, layer - 1, n)
        z = layer_rows(z_buf, capacity, sizes, unit_offsets, layer, n)
        y = layer_rows(y_buf, capacity, sizes, unit_offsets, layer, n)
        W = layer_weights(theta, sizes, w_offsets, layer)
        b = layer_biases(theta, sizes, b_offsets, layer)
        if one_call:
            _dense_forward_one_call(y_prev, W, b, z)
        else:
            dense_forward(y_prev, W, b, z)
        if codes[layer] == SOFTMAX:
            activation_forward(SOFTMAX, z, y, alphas[layer])
        else:
            activation_forward(codes[layer], as_one_row(z), as_one_row(y), alphas[layer])


@jit
def forward_loss(theta, layout, X, D, work, one_call=False):
    """Forward pass, then the mean loss E of the batch; ``one_call`` as in :func:`forward_pass`."""
    forward_pass(theta, layout, X, work, one_call)
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    last = codes.shape[0] - 1
    n = X.shape[0]
    return loss(
        loss_code,
        layer_rows(z_buf, capacity, sizes, unit_offsets, last, n),
        layer_rows(y_buf, capacity, sizes, unit_offsets, last, n),
        D,
    )


@jit
def backward_pass(theta, layout, X, D, work, grad, step_lr):
    """Error terms of every layer, then either the gradient or a gradient-descent step.

    ``step_lr == 0``: the gradient of the batch's mean E goes into ``grad``
    (flat, like theta) and theta is left alone.  ``step_lr > 0``: every layer
    takes the step w <- w - step_lr dE/dw instead, right after its error term
    for the layer below has been computed with its weights still unchanged.
    Layers where BLAS pays (``kernels._blas.blas_pays``) take it in one
    GEMM, W += (-step_lr) y_prev^T delta, without writing dE/dW anywhere
    (~1.5 ms less per step on 1.5 M parameters); smaller ones go through
    ``grad``.

    Needs the buffers filled by :func:`forward_pass` on the same X.  The deltas
    left in ``delta_buf`` are those of the mean loss: each sample's delta / n
    (the 1/n is applied once, to delta^L: every delta below and every gradient
    is linear in it, so no other array needs scaling).
    """
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    n = X.shape[0]
    last = codes.shape[0] - 1
    delta_out = layer_rows(delta_buf, capacity, sizes, unit_offsets, last, n)
    z_out = layer_rows(z_buf, capacity, sizes, unit_offsets, last, n)
    y_out = layer_rows(y_buf, capacity, sizes, unit_offsets, last, n)
    output_error_terms(layout, z_out, y_out, D, delta_out, n)
    backward_layers(theta, layout, X, work, grad, step_lr)


@jit
def backward_layers(theta, layout, X, work, grad, step_lr):
    """:func:`backward_pass` from the output layer's error terms on: given delta^L of the n = X.shape[0]
    samples in ``delta_buf``, the error terms of every layer below and the gradient (``step_lr == 0``) or
    the step, as there."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    n = X.shape[0]
    last = codes.shape[0] - 1
    for layer in range(last, -1, -1):
        delta = layer_rows(delta_buf, capacity, sizes, unit_offsets, layer, n)
        W = layer_weights(theta, sizes, w_offsets, layer)
        if layer == 0:
            y_prev = X
        else:
            y_prev = layer_rows(y_buf, capacity, sizes, unit_offsets, layer - 1, n)
            z_prev = layer_rows(z_buf, capacity, sizes, unit_offsets, layer - 1, n)
            delta_prev = layer_rows(delta_buf, capacity, sizes, unit_offsets, layer - 1, n)
            # sum_k delta_k w_jk first (IDENTITY: no factor), then f'(z) over all entries at once;
            # softmax is an output-only activation, so every hidden one is elementwise
            hidden_delta(IDENTITY, delta, W, z_prev, y_prev, delta_prev, alphas[layer - 1])
            multiply_by_derivative(
                codes[layer - 1], as_one_row(z_prev), as_one_row(y_prev), as_one_row(delta_prev), alphas[layer - 1]
            )
        grad_W = layer_weights(grad, sizes, w_offsets, layer)
        grad_b = layer_biases(grad, sizes, b_offsets, layer)
        bias_gradient(delta, 1.0, grad_b)
        n_below, n_above = W.shape
        if step_lr == 0.0:
            weight_gradient(y_prev, delta, 1.0, grad_W)
            continue
        descend(W, y_prev, delta, step_lr, grad_W)
        b = layer_biases(theta, sizes, b_offsets, layer)
        for j in range(n_above):
            b[j] -= step_lr * grad_b[j]


@jit
def output_error_terms(layout, z_out, y_out, D, delta_out, m):
    """delta^L of rows of a batch of m samples, as the gradient of the batch's mean loss (scaled by 1 / m)."""
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    last = codes.shape[0] - 1
    if loss_code == CROSS_ENTROPY or codes[last] == SOFTMAX:
        output_delta(loss_code, codes[last], z_out, y_out, D, delta_out, alphas[last])
    else:
        output_delta(
            loss_code, codes[last], as_one_row(z_out), as_one_row(y_out), as_one_row(D), as_one_row(delta_out),
            alphas[last],
        )  # fmt: skip
    if m > 1:
        scale = 1.0 / m
        delta_flat = as_one_row(delta_out)
        for k in range(delta_flat.shape[1]):
            delta_flat[0, k] *= scale


@jit
def loss_and_gradient(theta, layout, X, D, work, grad):
    """E of the batch (mean over samples), its gradient written into ``grad``; -1.0 and nothing
    written if X is empty or X, D or theta holds a value that is not finite."""
    if X.shape[0] == 0 or not all_finite(X) or not all_finite(D) or not all_finite_flat(theta):
        return -1.0
    E = forward_loss(theta, layout, X, D, work, True)
    backward_pass(theta, layout, X, D, work, grad, 0.0)
    return E


@jit
def train_step(theta, layout, X, D, lr, work, grad):
    """One gradient-descent step on the batch; returns E before it, or -1.0 with nothing
    changed if X is empty or X, D or theta holds a value that is not finite."""
    if X.shape[0] == 0 or not all_finite(X) or not all_finite(D) or not all_finite_flat(theta):
        return -1.0
    E = forward_loss(theta, layout, X, D, work, True)
    backward_pass(theta, layout, X, D, work, grad, lr)
    return E


@jit
def count_correct(loss_code, y, d):
    """Samples of a batch whose class is right: argmax of y = argmax of d (cross_entropy), or
    every output on the right side of 0.5 (binary_cross_entropy)."""
    n, m = y.shape
    correct = 0
    for s in range(n):
        if loss_code == CROSS_ENTROPY:
            # selects, not branches: which output is largest is a coin toss for the branch predictor
            best_y = 0
            best_d = 0
            top_y = y[s, 0]
            top_d = d[s, 0]
            for j in range(1, m):
                above = y[s, j] > top_y
                best_y = j if above else best_y
                top_y = y[s, j] if above else top_y
                above = d[s, j] > top_d
                best_d = j if above else best_d
                top_d = d[s, j] if above else top_d
            correct += best_y == best_d
        else:
            ok = True
            for j in range(m):
                ok = ok and ((y[s, j] >= 0.5) == (d[s, j] >= 0.5))
            correct += ok
    return correct


@jit
def fit_epochs(
    theta, layout, X, D, epoch_lrs, batch_size, shuffle, rng_state,
    opt_code, hyper, state1, state2, step_count, frozen,
    work, grad, backup, backup_valid, x_batch, d_batch, order, epoch_losses, epoch_correct,
):  # fmt: skip
    """Train for ``epoch_losses.shape[0]`` epochs of mini-batch training with an optimizer.

    Each epoch optionally shuffles ``order`` (int64, length n, a permutation
    of the rows, kept between epochs and calls; ``rng_state`` is a uint64
    array of length 1, advanced in place), then visits the rows in that order
    in batches of ``batch_size`` (the last one may be smaller), copying each
    batch into ``x_batch``/``d_batch`` (flat, ``batch_size`` rows), and makes
    one :func:`kernels.optimizer_update` with the epoch's learning rate
    ``epoch_lrs[epoch]``.  ``step_count`` (int64, length 1) counts the updates.
    ``frozen``: bool over the parameters, or length 0.  ``epoch_losses[k]``
    gets the mean of the batch losses of epoch k and, for a classification
    loss, ``epoch_correct[k]`` the number of samples whose class the network
    got right while training through epoch k.

    ``backup`` (length n_params + len(state1) + len(state2)) keeps the
    parameters and optimizer state from before the last update, and
    ``backup_valid[0]`` says whether it holds any (the caller sets it to 0
    before a run).  On the first batch whose loss is not finite they are put
    back (the parameters at which the last finite loss was measured) and the
    function returns the batch's index, epoch * n_batches + batch; it returns
    -1 when all epochs ran.  Either way theta, state1 and state2 hold the
    result, and ``backup`` the values from before the last update.

    Plain gradient descent copies theta into ``backup`` before each fused
    step.  Every other optimizer steps out of place instead, alternately from
    (theta, state1, state2) into the same-sized parts of ``backup`` and back,
    so that the values from before the step stay intact without a copy (for
    Adam on 10^4 parameters the copy of theta, m and v cost ~7 us a step).
    """
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    n = X.shape[0]
    n_in = X.shape[1]
    n_out = D.shape[1]
    n_params = theta.shape[0]
    n_batches = (n + batch_size - 1) // batch_size
    last = codes.shape[0] - 1
    classify = loss_code != SQUARED_ERROR
    plain = is_plain_descent(opt_code, hyper, frozen)
    alt_theta, alt1, alt2 = backup_parts(theta, state1, state2, backup)
    in_alt = False  # True while the current parameters and state are those in backup (an odd number of steps)
    status = -1
    for epoch in range(epoch_losses.shape[0]):
        if shuffle:
            rng_state[0] = shuffle_in_place(order, rng_state[0])
        total = 0.0
        correct = 0
        for batch in range(n_batches):
            start = batch * batch_size
            m = min(batch_size, n - start)
            xb = x_batch[: m * n_in].reshape((m, n_in))
            db = d_batch[: m * n_out].reshape((m, n_out))
            gather_rows(X, D, order, start, xb, db)
            current = alt_theta if in_alt else theta
            E = forward_loss(current, layout, xb, db, work, True)
            if not math.isfinite(E):
                in_alt = step_back(plain, theta, alt_theta, in_alt, backup_valid, step_count)
                status = epoch * n_batches + batch
                break
            total += E
            if classify:
                correct += count_correct(loss_code, layer_rows(y_buf, capacity, sizes, unit_offsets, last, m), db)
            step_count[0] += 1
            if plain:
                for k in range(n_params):
                    backup[k] = theta[k]
                backward_pass(theta, layout, xb, db, work, grad, epoch_lrs[epoch])
            else:
                backward_pass(current, layout, xb, db, work, grad, 0.0)
                in_alt = alternating_update(
                    opt_code, theta, state1, state2, alt_theta, alt1, alt2, in_alt, grad, epoch_lrs[epoch], hyper,
                    step_count[0], frozen,
                )  # fmt: skip
            backup_valid[0] = 1
        if status >= 0:
            break
        epoch_losses[epoch] = total / n_batches
        epoch_correct[epoch] = correct
    if in_alt:  # the result into theta, state1 and state2; the values before the last step into backup
        swap_states(theta, state1, state2, alt_theta, alt1, alt2)
    return status


@jit
def backup_parts(theta, state1, state2, backup):
    """The parts of ``backup`` (length n_params + len(state1) + len(state2)) shaped like theta, state1, state2."""
    n, n1, n2 = theta.shape[0], state1.shape[0], state2.shape[0]
    return backup[:n], backup[n : n + n1], backup[n + n1 : n + n1 + n2]


@jit
def gather_rows(X, D, order, start, xb, db):
    """Rows order[start], order[start + 1], ... of X and D into the batch buffers xb and db (m rows each)."""
    n_in = X.shape[1]
    n_out = D.shape[1]
    for r in range(xb.shape[0]):
        row = order[start + r]
        for i in range(n_in):
            xb[r, i] = X[row, i]
        for j in range(n_out):
            db[r, j] = D[row, j]


@jit
def descend(W, y_prev, delta, lr, grad_W):
    """W -= lr y_prev^T delta: one GEMM where BLAS pays (``kernels._blas.blas_pays``) and there are
    MIN_GEMM_SAMPLES samples or more, else through grad_W."""
    n, n_below = y_prev.shape
    n_above = delta.shape[1]
    if n >= MIN_GEMM_SAMPLES and blas_pays(n, n_below, n_above):
        gemm_accumulate(W, y_prev, delta, -lr)
    else:
        weight_gradient(y_prev, delta, 1.0, grad_W)
        for i in range(n_below):
            for j in range(n_above):
                W[i, j] -= lr * grad_W[i, j]


@jit
def alternating_update(opt_code, theta, state1, state2, alt, alt1, alt2, in_alt, grad, lr, hyper, t, frozen):
    """One optimizer step out of place: from (theta, state1, state2) into (alt, alt1, alt2), or back
    when ``in_alt`` (the current values are the alt ones); returns the new ``in_alt``.  The values from
    before the step stay where they were, for undoing it after a divergence."""
    if in_alt:
        optimizer_update(opt_code, alt, grad, lr, hyper, alt1, alt2, t, frozen, theta, state1, state2)
    else:
        optimizer_update(opt_code, theta, grad, lr, hyper, state1, state2, t, frozen, alt, alt1, alt2)
    return not in_alt


@jit
def is_plain_descent(opt_code, hyper, frozen):
    """Plain gradient descent on every parameter (no momentum, weight decay or frozen layer): its backward
    pass and update can be fused, as in ``train_step``."""
    return opt_code == SGD and frozen.shape[0] == 0 and hyper[H_MOMENTUM] == 0.0 and hyper[H_WEIGHT_DECAY] == 0.0


@jit
def step_back(plain, theta, alt, in_alt, backup_valid, step_count):
    """After a non-finite loss, back to the parameters (and state) from before the last step, if there was
    one: plain SGD copies them from ``alt`` (its backup, shaped like theta); the other optimizers just
    switch buffers (see :func:`alternating_update`).  Returns the new ``in_alt``."""
    if backup_valid[0]:
        if plain:
            for k in range(theta.shape[0]):
                theta[k] = alt[k]
        else:
            in_alt = not in_alt
        step_count[0] -= 1
    return in_alt


@jit
def swap_states(theta, state1, state2, alt, alt1, alt2):
    """Exchange (theta, state1, state2) with (alt, alt1, alt2), entry by entry."""
    swap_entries(theta, alt)
    swap_entries(state1, alt1)
    swap_entries(state2, alt2)


@jit
def swap_entries(a, b):
    """Exchange the entries of the 1-D arrays a and b (same length)."""
    for k in range(a.shape[0]):
        tmp = a[k]
        a[k] = b[k]
        b[k] = tmp


@jit
def numerical_gradient_central(theta, layout, X, D, eps, work, grad):
    """grad[k] = (E(theta + eps e_k) - E(theta - eps e_k)) / (2 eps) for every k: 2N forward passes.

    Each theta[k] is put back to its original bits after its two passes.
    """
    for k in range(theta.shape[0]):
        original = theta[k]
        theta[k] = original + eps
        E_plus = forward_loss(theta, layout, X, D, work)
        theta[k] = original - eps
        E_minus = forward_loss(theta, layout, X, D, work)
        theta[k] = original
        grad[k] = (E_plus - E_minus) / (2.0 * eps)
