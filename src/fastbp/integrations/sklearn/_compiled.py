"""scikit-learn's MLP training rules, compiled: forward pass, loss, gradient and one epoch of Adam or SGD.

The estimators follow scikit-learn, not :class:`fastbp.Network` (which keeps PyTorch's rules), so that the
same ``random_state`` gives the same model.  What differs from ``fastbp.engine``:

* the parameters are packed as scikit-learn packs them: every layer's W (row-major), then every layer's b;
* the loss is scikit-learn's: squared error halved and averaged over the outputs, log-loss and binary
  log-loss on probabilities clipped to [eps, 1 - eps], Poisson deviance with an ``exp`` output; each a
  ``sample_weight``-weighted mean over the samples, plus ``alpha / 2 * sum ||W||^2 / sum(sample_weight)``;
* the gradient is ``(y_prev^T delta + alpha W) / sum(sample_weight)`` (the weights only, not the biases),
  with delta^L = (y - d) * sample_weight for every output and loss (scikit-learn's canonical pairs);
* SGD and Adam are scikit-learn's: v <- mu v - lr g, theta <- theta + v (Nesterov: + mu v - lr g); Adam
  steps by -lr_t m / (sqrt(v) + eps) with lr_t = lr sqrt(1 - beta2^t) / (1 - beta1^t);
* the first layer can read a CSR matrix: z = X[rows] W + b and dE/dW = X[rows]^T delta loop over its
  stored entries only.

A network is described by ``layout = (sizes, hidden_code, out_code, loss_code, w_offsets, b_offsets,
unit_offsets)``: units per layer (input first), the activation codes of the hidden layers and of the output
(``fastbp.kernels`` codes, and ``EXP`` here), the loss code below, where each W and b starts in the flat
parameters, and the prefix sums of ``sizes[1:]`` (layer l's block of a work buffer starts at
``capacity * unit_offsets[l]``).  The data come as ``data = (X, csr_data, csr_indices, csr_indptr, sparse, D,
sample_weight, weighted)``: a dense X (n_samples, n_features), or when ``sparse`` the CSR arrays of X (X is then
an empty (0, n_features) array), targets D (n_samples, n_outputs) and sample weights (n_samples,), read only if
``weighted``.  The work buffers are ``work = (capacity, x_rows, acts, deltas)``: room for ``capacity`` gathered
input rows (capacity, n_features), and each layer's outputs and error terms for ``capacity`` samples.

A batch is given by ``rows`` (its row indices) and ``start``: with ``start >= 0`` the batch is rows
``start .. start + n - 1`` and ``rows`` is not read.  Nothing here validates: ``model.py`` and the
estimators do.
"""

import math

import numpy as np

from fastbp.config import jit
from fastbp.engine._serial import as_one_row, layer_biases, layer_rows, layer_weights
from fastbp.kernels.activations import SOFTMAX, activation_forward
from fastbp.kernels.backprop import hidden_delta
from fastbp.kernels.dense import bias_gradient, dense_forward, weight_gradient

EXP = -1  # the output activation of loss="poisson" (not one of fastbp's activations)

SQUARED_LOSS = 0
LOG_LOSS = 1
BINARY_LOG_LOSS = 2
POISSON_LOSS = 3

SGD_RULE = 0
ADAM_RULE = 1


@jit
def _row(rows, start, k):
    return start + k if start >= 0 else rows[k]


@jit
def _first_layer_forward(data, rows, start, n, W, b, z, x_rows):
    """z (n, n_above) = X[batch] W + b; a dense batch that is not a run of rows is gathered into x_rows."""
    X, values, indices, indptr, sparse = data[0], data[1], data[2], data[3], data[4]
    if sparse:
        n_above = W.shape[1]
        for k in range(n):
            r = _row(rows, start, k)
            for j in range(n_above):
                z[k, j] = b[j]
            for p in range(indptr[r], indptr[r + 1]):
                column, value = indices[p], values[p]
                for j in range(n_above):
                    z[k, j] += value * W[column, j]
        return
    dense_forward(_dense_input(X, rows, start, n, x_rows, True), W, b, z)


@jit
def _dense_input(X, rows, start, n, x_rows, gather):
    """The batch's rows of a dense X (n, n_features): a view for a run of rows, else x_rows[:n] (filled from
    X if ``gather``)."""
    if start >= 0:
        return X[start : start + n]
    if gather:
        for k in range(n):
            r = rows[k]
            for i in range(X.shape[1]):
                x_rows[k, i] = X[r, i]
    return x_rows[:n]


@jit
def _first_layer_weight_gradient(data, rows, start, n, delta, grad_W, x_rows):
    """grad_W (n_features, n_above) = X[batch]^T delta, for the rows the forward pass read."""
    X, values, indices, indptr, sparse = data[0], data[1], data[2], data[3], data[4]
    if not sparse:
        weight_gradient(_dense_input(X, rows, start, n, x_rows, False), delta, 1.0, grad_W)
        return
    grad_W[:, :] = 0.0
    n_above = delta.shape[1]
    for k in range(n):
        r = _row(rows, start, k)
        for p in range(indptr[r], indptr[r + 1]):
            column, value = indices[p], values[p]
            for j in range(n_above):
                grad_W[column, j] += value * delta[k, j]


@jit
def activate_into(code, z, y):
    """y = f(z) for z and y (n, m); with y not z itself the loops run as SIMD code (in place, LLVM's overlap
    check sends them to the scalar loop: a ReLU over 32 x 64 took 0.8 instead of ~0.1 us)."""
    if code == EXP:
        for s in range(z.shape[0]):
            for j in range(z.shape[1]):
                y[s, j] = math.exp(z[s, j])
    elif code == SOFTMAX:
        activation_forward(SOFTMAX, z, y)
    else:
        activation_forward(code, as_one_row(z), as_one_row(y))


@jit
def forward(theta, layout, data, rows, start, n, work):
    """Every layer's outputs for the n samples of a batch, into ``acts`` (the last layer's: the predictions);
    each layer's weighted sums pass through its rows of ``deltas``."""
    sizes, hidden_code, out_code, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, x_rows, acts, deltas = work
    n_layers = sizes.shape[0] - 1
    for layer in range(n_layers):
        W = layer_weights(theta, sizes, w_offsets, layer)
        b = layer_biases(theta, sizes, b_offsets, layer)
        z = layer_rows(deltas, capacity, sizes, unit_offsets, layer, n)
        if layer == 0:
            _first_layer_forward(data, rows, start, n, W, b, z, x_rows)
        else:
            dense_forward(layer_rows(acts, capacity, sizes, unit_offsets, layer - 1, n), W, b, z)
        code = out_code if layer == n_layers - 1 else hidden_code
        activate_into(code, z, layer_rows(acts, capacity, sizes, unit_offsets, layer, n))


@jit
def _xlogy(x, y):
    return 0.0 if x == 0.0 else x * math.log(y)


@jit
def data_loss(loss_code, Y, D, sample_weight, weighted, rows, start, clip):
    """scikit-learn's loss of predictions Y (n, m) against targets D[batch]: the weighted mean over the samples
    of the squared error (halved, averaged over the outputs), the log-loss or binary log-loss (Y clipped to
    [clip, 1 - clip]) or the Poisson deviance; returns (loss, sum of the weights), (0, 0) if that sum is 0."""
    n, m = Y.shape
    total = 0.0
    weight_sum = 0.0
    for k in range(n):
        r = _row(rows, start, k)
        w = sample_weight[r] if weighted else 1.0
        weight_sum += w
        row = 0.0
        for j in range(m):
            y, d = Y[k, j], D[r, j]
            if loss_code == SQUARED_LOSS:
                row += (y - d) * (y - d)
            elif loss_code == POISSON_LOSS:
                row += _xlogy(d, d / y) - d + y
            else:
                p = min(max(y, clip), 1.0 - clip)
                row -= _xlogy(d, p)
                if loss_code == BINARY_LOG_LOSS:
                    row -= _xlogy(1.0 - d, 1.0 - p)
        total += w * row
    if weight_sum == 0.0:  # a batch of zero total weight (scikit-learn divides by 0): no loss
        return 0.0, 0.0
    if loss_code == SQUARED_LOSS:
        return 0.5 * total / (weight_sum * m), weight_sum
    return total / weight_sum, weight_sum


@jit
def loss_and_gradient(theta, layout, data, rows, start, n, alpha, clip, work, grad):
    """scikit-learn's loss of a batch (with its L2 term) and its gradient, packed like theta, into ``grad``."""
    sizes, hidden_code, out_code, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, x_rows, acts, deltas = work
    D, sample_weight, weighted = data[5], data[6], data[7]
    forward(theta, layout, data, rows, start, n, work)
    last = sizes.shape[0] - 2
    Y = layer_rows(acts, capacity, sizes, unit_offsets, last, n)
    loss, weight_sum = data_loss(loss_code, Y, D, sample_weight, weighted, rows, start, clip)
    # 1 / the batch's total weight; 0 for a batch of weight 0, which then changes nothing
    inv_weight = 1.0 / weight_sum if weight_sum > 0.0 else 0.0
    if alpha != 0.0:
        squares = 0.0
        for layer in range(last + 1):
            W = layer_weights(theta, sizes, w_offsets, layer).ravel()
            squares += np.dot(W, W)
        loss += 0.5 * alpha * squares * inv_weight

    delta = layer_rows(deltas, capacity, sizes, unit_offsets, last, n)
    for k in range(n):
        r = _row(rows, start, k)
        w = sample_weight[r] if weighted else 1.0
        for j in range(delta.shape[1]):
            delta[k, j] = Y[k, j] - D[r, j]
            if weighted:
                delta[k, j] *= w
    for layer in range(last, -1, -1):
        W = layer_weights(theta, sizes, w_offsets, layer)
        grad_W = layer_weights(grad, sizes, w_offsets, layer)
        grad_b = layer_biases(grad, sizes, b_offsets, layer)
        delta = layer_rows(deltas, capacity, sizes, unit_offsets, layer, n)
        if layer == 0:
            _first_layer_weight_gradient(data, rows, start, n, delta, grad_W, x_rows)
        else:
            weight_gradient(layer_rows(acts, capacity, sizes, unit_offsets, layer - 1, n), delta, 1.0, grad_W)
        flat_W, flat_grad_W = W.ravel(), grad_W.ravel()
        for k in range(flat_W.shape[0]):
            flat_grad_W[k] = (flat_grad_W[k] + alpha * flat_W[k]) * inv_weight
        bias_gradient(delta, inv_weight, grad_b)
        if layer > 0:
            below = layer_rows(acts, capacity, sizes, unit_offsets, layer - 1, n)
            # f' from the outputs alone: ReLU's a > 0 is z > 0, sigmoid's and tanh's use a
            hidden_delta(
                hidden_code, delta, W, below, below, layer_rows(deltas, capacity, sizes, unit_offsets, layer - 1, n)
            )
    return loss


@jit
def optimizer_step(theta, raw, state1, state2, l2, scale, step):
    """scikit-learn's update of a run of parameters theta (n,) from ``raw`` (n,): the gradient is (raw + alpha
    theta) * scale for weights (``l2``), raw * scale otherwise, then Adam's step (m, v <- the moments in
    state1, state2; theta += -lr_t m / (sqrt(v) + eps)) or SGD's (v <- mu v - lr g in state1, then theta += v,
    or with Nesterov theta += mu v - lr g), in one pass.  ``step`` = (rule, lr or Adam's bias-corrected lr_t,
    momentum, nesterov, beta1, beta2, eps, alpha).  m and v are read once, so the loop runs as SIMD code."""
    rule, lr, momentum, nesterov, beta1, beta2, eps, alpha = step
    for k in range(theta.shape[0]):
        g = (raw[k] + alpha * theta[k]) * scale if l2 else raw[k] * scale
        if rule == ADAM_RULE:
            m_k = beta1 * state1[k] + (1.0 - beta1) * g
            v_k = beta2 * state2[k] + (1.0 - beta2) * (g * g)
            state1[k], state2[k] = m_k, v_k
            theta[k] += -lr * m_k / (math.sqrt(v_k) + eps)
        else:
            v = momentum * state1[k] - lr * g
            state1[k] = v
            theta[k] += (momentum * v - lr * g) if nesterov else v


@jit
def fit_epoch(theta, layout, data, order, shuffled, batch_size, alpha, clip, work, grad, opt):
    """One epoch of mini-batches over all rows of the data (in ``order`` if ``shuffled``, else in order),
    each followed by an optimizer step.

    ``opt = (rule, lr, momentum, nesterov, beta1, beta2, eps, t, state1, state2)``: SGD_RULE (state1 the
    velocity) or ADAM_RULE (state1, state2 the moments, t the steps taken so far).

    Returns
    -------
    (loss, t, lr_t) : the mean of the batch losses weighted by the batch lengths (scikit-learn's ``loss_``),
    the step count after the epoch, and Adam's last bias-corrected step size (lr for SGD).
    """
    rule, lr, momentum, nesterov, beta1, beta2, eps, t, state1, state2 = opt
    n_samples = order.shape[0]
    total = 0.0
    lr_t = lr
    for start in range(0, n_samples, batch_size):
        n = min(batch_size, n_samples - start)
        if shuffled:
            loss = loss_and_gradient(theta, layout, data, order[start : start + n], -1, n, alpha, clip, work, grad)
        else:
            loss = loss_and_gradient(theta, layout, data, order, start, n, alpha, clip, work, grad)
        total += loss * n
        if rule == ADAM_RULE:
            t += 1
            lr_t = lr * math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        step = (rule, lr_t, momentum, nesterov, beta1, beta2, eps, 0.0)
        optimizer_step(theta, grad, state1, state2, False, 1.0, step)  # grad already holds the L2 term and scaling
    return total / n_samples, t, lr_t


@jit
def predict(theta, layout, data, no_rows, n_samples, work, out):
    """The output layer for every row of the data into ``out`` (n_samples, n_outputs), ``capacity`` rows at
    a time; ``no_rows`` is an empty int64 array."""
    sizes, hidden_code, out_code, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, x_rows, acts, deltas = work
    last = sizes.shape[0] - 2
    for start in range(0, n_samples, capacity):
        n = min(capacity, n_samples - start)
        forward(theta, layout, data, no_rows, start, n, work)
        out[start : start + n] = layer_rows(acts, capacity, sizes, unit_offsets, last, n)
