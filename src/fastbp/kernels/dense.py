"""The dense layer: z_j = sum_i w_ij y_i + b_j (``dense_forward``), the gradients
dE/dw_ij = delta_j y_i and dE/db_j = delta_j over a batch (``weight_gradient``, ``bias_gradient``), and the
gradient-descent update w <- w - eta dE/dw.
"""

import numpy as np

from fastbp.config import BLAS_CHUNKED_MAX, BLAS_ONE_THREAD_MAX, MIN_GEMM_SAMPLES, jit
from fastbp.kernels._blas import blas_pays


@jit
def dense_forward(y_prev, W, b, z):
    """z = y_prev @ W + b, i.e. z_j = sum_i w_ij y_i + b_j for every sample.

    Parameters
    ----------
    y_prev : ndarray (n_samples, n_below)
    W : ndarray (n_below, n_above)
    b : ndarray (n_above,)
    z : ndarray (n_samples, n_above), written in place; must not alias the inputs.

    Notes
    -----
    A product of up to BLAS_CHUNKED_MAX multiply-adds goes to BLAS in blocks
    of rows small enough for one BLAS thread (see ``fastbp.config``).
    """
    n, n_below = y_prev.shape
    per_row = n_below * W.shape[1]
    rows = n
    if BLAS_ONE_THREAD_MAX < n * per_row <= BLAS_CHUNKED_MAX and per_row <= BLAS_ONE_THREAD_MAX:
        rows = BLAS_ONE_THREAD_MAX // per_row
    _dense_forward_in_blocks(y_prev, W, b, z, rows)


@jit
def _dense_forward_one_call(y_prev, W, b, z):
    """``dense_forward`` in one BLAS call, for callers whose BLAS runs on their own thread alone (the
    threaded engines, ``Network.forward`` and ``evaluate``) or whose other products wake BLAS's threads
    anyway (``gradients``, ``step``, ``fit``): there the row blocks that keep OpenBLAS's threads asleep
    would only cost, as each block packs W again ((256, 64) x (64, 512) on one thread, AMD EPYC Zen 3:
    float64 805 against 500 us, float32 610 against 228 us).  Shapes as in ``dense_forward``."""
    _dense_forward_in_blocks(y_prev, W, b, z, y_prev.shape[0])


@jit
def _dense_forward_in_blocks(y_prev, W, b, z, rows):
    """``dense_forward`` with BLAS's product taken ``rows`` (>= 1) rows of y_prev at a time, where BLAS
    pays (``kernels._blas.blas_pays``), or one GEMV a sample below MIN_GEMM_SAMPLES; shapes as there."""
    n, n_below = y_prev.shape
    n_above = W.shape[1]
    if blas_pays(n, n_below, n_above):
        if n < MIN_GEMM_SAMPLES:
            for s in range(n):
                np.dot(y_prev[s], W, z[s])
        else:
            for r0 in range(0, n, rows):
                r1 = min(n, r0 + rows)
                np.dot(y_prev[r0:r1], W, z[r0:r1])
        for s in range(n):
            for j in range(n_above):
                z[s, j] += b[j]
        return
    for s in range(n):
        for j in range(n_above):
            z[s, j] = b[j]
        for i in range(n_below):
            y_i = y_prev[s, i]
            for j in range(n_above):
                z[s, j] += W[i, j] * y_i


@jit
def weight_gradient(y_prev, delta, scale, grad_W):
    """grad_W[i, j] = scale * sum_s y_i^(l-1) delta_j^l over the samples s (dE/dw_ij = delta_j y_i).

    Parameters
    ----------
    y_prev : ndarray (n_samples, n_below)
    delta : ndarray (n_samples, n_above)
    scale : float
        1 / n_samples gives the gradient of the mean loss.
    grad_W : ndarray (n_below, n_above), written in place (overwritten).
    """
    n, n_below = y_prev.shape
    n_above = delta.shape[1]
    if n >= MIN_GEMM_SAMPLES and blas_pays(n, n_below, n_above):
        np.dot(y_prev.T, delta, grad_W)
    elif n == 0:
        grad_W[:, :] = 0.0
    else:
        # row by row: grad_W[i] stays in cache while the samples' terms are added to it
        for i in range(n_below):
            y_i = y_prev[0, i]
            for j in range(n_above):
                grad_W[i, j] = y_i * delta[0, j]
            for s in range(1, n):
                y_i = y_prev[s, i]
                for j in range(n_above):
                    grad_W[i, j] += y_i * delta[s, j]
    if scale != 1.0:
        for i in range(n_below):
            for j in range(n_above):
                grad_W[i, j] *= scale


@jit
def bias_gradient(delta, scale, grad_b):
    """grad_b[j] = scale * sum_s delta_j over the samples (dE/db_j = delta_j).

    Parameters
    ----------
    delta : ndarray (n_samples, n_above)
    scale : float
    grad_b : ndarray (n_above,), written in place (overwritten).
    """
    n, m = delta.shape
    for j in range(m):
        grad_b[j] = 0.0
    for s in range(n):
        for j in range(m):
            grad_b[j] += delta[s, j]
    if scale != 1.0:
        for j in range(m):
            grad_b[j] *= scale


@jit
def gradient_descent_update(params, grad, lr):
    """params <- params - lr * grad, in place (w <- w - eta dE/dw).

    Parameters
    ----------
    params : ndarray (n,)
        A flat parameter vector, e.g. ``net.flat_parameters`` or ``W.reshape(-1)``.
    grad : ndarray (n,)
    lr : float
        The learning rate eta.
    """
    for k in range(params.shape[0]):
        params[k] -= lr * grad[k]
