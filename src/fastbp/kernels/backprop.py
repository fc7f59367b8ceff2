"""The error terms of backpropagation, named for the tutorial's formulas.

* output layer: delta_j^L = (y_j - d_j) f'(z_j^L)  (``output_delta``; y - d for the fused softmax +
  cross-entropy and sigmoid + binary cross-entropy pairs);
* hidden layer l: delta_j^l = (sum_k delta_k^(l+1) w_jk^(l+1)) f'(z_j^l)  (``hidden_delta``).

The gradients then follow from them: dE/dw_ij = delta_j y_i and dE/db_j = delta_j (``kernels.dense``).
"""

import numpy as np

from fastbp.config import BLAS_MIN_MULTIPLY_ADDS, MIN_GEMM_SAMPLES, jit
from fastbp.kernels.activations import multiply_by_derivative
from fastbp.kernels.losses import CROSS_ENTROPY, SQUARED_ERROR


@jit
def output_delta_squared_error(code, z, y, d, delta, alpha=0.01):
    """delta_j^L = (y_j - d_j) f'(z_j^L), the output error term of E = 1/2 sum (y - d)^2.

    Parameters
    ----------
    code : int
        The output layer's activation.
    z, y, d : ndarray (n_samples, n_out)
        Weighted sums, outputs y = f(z), targets.
    delta : ndarray (n_samples, n_out), written in place (one row per sample, not averaged).
    """
    n, m = y.shape
    for s in range(n):
        for j in range(m):
            delta[s, j] = y[s, j] - d[s, j]
    multiply_by_derivative(code, z, y, delta, alpha)


@jit
def output_delta(loss_code, code, z, y, d, delta, alpha=0.01):
    """delta^L = dE/dz^L of one sample per row (not averaged).

    squared error: (y - d) f'(z^L); binary_cross_entropy with sigmoid: y - d;
    cross_entropy with softmax: y sum_k d_k - d, which is y - d for targets
    that sum to 1 (one-hot rows).  The derivatives of the loss and of the
    output activation cancel, so saturated outputs still learn.

    Parameters
    ----------
    loss_code : int
    code : int
        The output layer's activation.
    z, y, d : ndarray (n_samples, n_out)
    delta : ndarray (n_samples, n_out), written in place.
    alpha : float
    """
    n, m = y.shape
    if loss_code == CROSS_ENTROPY:
        for s in range(n):
            total = 0.0
            for j in range(m):
                total += d[s, j]
            for j in range(m):
                delta[s, j] = y[s, j] * total - d[s, j]
        return
    for s in range(n):
        for j in range(m):
            delta[s, j] = y[s, j] - d[s, j]
    if loss_code == SQUARED_ERROR:
        multiply_by_derivative(code, z, y, delta, alpha)


@jit
def hidden_delta(code, delta_next, W_next, z, y, delta, alpha=0.01):
    """delta_j^l = (sum_k delta_k^(l+1) w_jk^(l+1)) f'(z_j^l), i.e. (delta_next @ W_next.T) * f'(z).

    Parameters
    ----------
    code : int
        The activation of layer l.
    delta_next : ndarray (n_samples, n_next)
        Error terms of layer l+1.
    W_next : ndarray (n_units, n_next)
        Weights of layer l+1.
    z, y : ndarray (n_samples, n_units)
        Weighted sums and outputs of layer l.
    delta : ndarray (n_samples, n_units), written in place; must not alias the inputs.
    alpha : float
        The slope of leaky_relu below 0, or the alpha of elu (layer l's).
    """
    n, n_next = delta_next.shape
    m = W_next.shape[0]
    if n * n_next * m >= BLAS_MIN_MULTIPLY_ADDS:
        if n < MIN_GEMM_SAMPLES:  # one GEMV a sample (see fastbp.config)
            for s in range(n):
                np.dot(W_next, delta_next[s], delta[s])
        else:
            np.dot(delta_next, W_next.T, delta)
    else:
        for s in range(n):
            for j in range(m):
                total = delta_next[s, 0] * 0.0
                for k in range(n_next):
                    total += delta_next[s, k] * W_next[j, k]
                delta[s, j] = total
    multiply_by_derivative(code, z, y, delta, alpha)
