"""Loss kernels: the mean over a batch of the squared error E = 1/2 sum_j (y_j - d_j)^2, the
cross-entropy of a softmax output and the binary cross-entropy of a sigmoid output (the last two from z, with
log-sum-exp, so that they stay finite for saturated outputs).
"""

import math

from fastbp.config import jit
from fastbp.kernels.activations import _log_sum_exp_row

SQUARED_ERROR = 0


CROSS_ENTROPY = 1


BINARY_CROSS_ENTROPY = 2


LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "cross_entropy": CROSS_ENTROPY,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
}


@jit
def squared_error(y, d):
    """E = mean over samples of 1/2 sum_j (y_j - d_j)^2.

    Parameters
    ----------
    y, d : ndarray (n_samples, n_out)

    Returns
    -------
    float, in the arrays' dtype.
    """
    n, m = y.shape
    total = y[0, 0] * 0.0
    for s in range(n):
        for j in range(m):
            r = y[s, j] - d[s, j]
            total += r * r
    return 0.5 * total / n


@jit
def cross_entropy(z, d):
    """E = mean over samples of -sum_j d_j log y_j with y = softmax(z), computed from z.

    log y_j = z_j - m - log sum_k e^(z_k - m) (m = max_k z_k) is finite for
    every finite z, so a saturated output gives a large finite loss, not inf.

    Parameters
    ----------
    z, d : ndarray (n_samples, n_out)
        The output layer's weighted sums and the targets (one-hot rows, or any
        distribution over the classes).
    """
    n, m = z.shape
    total = 0.0
    for s in range(n):
        log_sum = _log_sum_exp_row(z, s)
        for j in range(m):
            total -= d[s, j] * (z[s, j] - log_sum)
    return total / n


@jit
def cross_entropy_of_softmax(z, y, d):
    """:func:`cross_entropy` given y = softmax(z) as well: the same E, with fewer logarithms.

    Each term d_j log y_j with d_j != 0 is taken from y while y_j >= 1e-30
    (a normal number in float32 and float64, so log y_j is as exact as y_j);
    a row with a smaller y_j gets log y_j = z_j - m - log sum_k e^(z_k - m)
    from z, as :func:`cross_entropy`.  Terms with d_j = 1 (one-hot targets)
    are summed as the log of the product of up to 8 such y_j (>= 1e-240,
    still a normal float64): one log per 8 samples instead of an exp per
    output and a log per sample (libm's log is a scalar call of ~20 ns).

    Parameters
    ----------
    z, y, d : ndarray (n_samples, n_out)
        The output layer's weighted sums, y = softmax(z), the targets.
    """
    n, m = z.shape
    total = 0.0
    product = 1.0
    factors = 0
    for s in range(n):
        for j in range(m):
            dj = d[s, j]
            if dj != 0.0:
                yj = y[s, j]
                if yj >= 1e-30:
                    if dj == 1.0:
                        product *= yj
                        factors += 1
                        if factors == 8:
                            total -= math.log(product)
                            product = 1.0
                            factors = 0
                    else:
                        total -= dj * math.log(yj)
                else:
                    total -= dj * (z[s, j] - _log_sum_exp_row(z, s))
    if factors > 0:
        total -= math.log(product)
    return total / n


@jit
def binary_cross_entropy(z, d):
    """E = mean over samples of -sum_j [d_j log y_j + (1 - d_j) log(1 - y_j)] with y = sigma(z).

    Computed from z as ``max(z, 0) - z d + log(1 + e^-|z|)``: finite for every
    finite z, exact for saturated outputs.

    Parameters
    ----------
    z, d : ndarray (n_samples, n_out)
    """
    n, m = z.shape
    total = 0.0
    for s in range(n):
        for j in range(m):
            v = z[s, j]
            total += max(v, 0.0) - v * d[s, j] + math.log1p(math.exp(-abs(v)))
    return total / n


@jit
def loss(loss_code, z, y, d):
    """The mean loss of a batch: SQUARED_ERROR from y, BINARY_CROSS_ENTROPY from z, CROSS_ENTROPY
    from y = softmax(z) (and from z where y underflows, see :func:`cross_entropy_of_softmax`)."""
    if loss_code == CROSS_ENTROPY:
        return cross_entropy_of_softmax(z, y, d)
    if loss_code == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy(z, d)
    return squared_error(y, d)
