"""Backpropagation kernels: numba functions that write into caller-provided buffers.

Every function here is compiled with :func:`fastbp._config.jit` and can be
called from Python or from a user's own ``@numba.njit`` function.  None of
them allocates, validates or checks bounds: the caller passes C-contiguous
arrays of one floating dtype (float32 or float64) with the shapes stated in
each docstring.  A wrong shape makes numba read or write past the end of an
array.  The :class:`fastbp.Network` methods validate their inputs and then call
these kernels.

Names follow the tutorial (../shared/seed/backprop-tutorial-ja.md):

* ``y_prev`` -- outputs y_i^(l-1) of the layer below, shape (n_samples, n_below)
* ``W`` -- weights, ``W[i, j]`` = w_ij^(l) from unit i below to unit j, shape (n_below, n_above)
* ``b`` -- biases b_j^(l), shape (n_above,)
* ``z`` -- weighted sums z_j^(l), shape (n_samples, n_above)
* ``y`` -- outputs y_j^(l) = f(z_j^(l)), shape (n_samples, n_above)
* ``d`` -- targets d_j, shape (n_samples, n_out)
* ``delta`` -- error terms delta_j^(l) = dE/dz_j^(l) of each sample, shape (n_samples, n_above)

Activations are chosen by an integer code (``IDENTITY``, ``SIGMOID``, ``TANH``,
``RELU``), which numba folds to a constant when it is a literal.
"""

import math

import numpy as np
from numba.extending import overload

from . import _vecmath
from ._config import BLAS_CHUNKED_MAX, BLAS_MIN_MULTIPLY_ADDS, BLAS_ONE_THREAD_MAX, NJIT_OPTIONS, jit

IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
GELU = 7
SOFTMAX = 8

ACTIVATION_CODES = {
    "identity": IDENTITY,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "relu": RELU,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "softplus": SOFTPLUS,
    "gelu": GELU,
    "softmax": SOFTMAX,
}

SQUARED_ERROR = 0
CROSS_ENTROPY = 1
BINARY_CROSS_ENTROPY = 2

LOSS_CODES = {
    "squared_error": SQUARED_ERROR,
    "cross_entropy": CROSS_ENTROPY,
    "binary_cross_entropy": BINARY_CROSS_ENTROPY,
}

_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)

__all__ = [
    "IDENTITY",
    "SIGMOID",
    "TANH",
    "RELU",
    "LEAKY_RELU",
    "ELU",
    "SOFTPLUS",
    "GELU",
    "SOFTMAX",
    "ACTIVATION_CODES",
    "SQUARED_ERROR",
    "CROSS_ENTROPY",
    "BINARY_CROSS_ENTROPY",
    "LOSS_CODES",
    "softmax_rows",
    "loss",
    "output_delta",
    "cross_entropy",
    "binary_cross_entropy",
    "sigmoid_scalar",
    "activation_scalar",
    "activation_derivative_scalar",
    "activation_forward",
    "activation_derivative",
    "multiply_by_derivative",
    "identity_forward",
    "identity_derivative",
    "sigmoid_forward",
    "sigmoid_derivative",
    "tanh_forward",
    "tanh_derivative",
    "relu_forward",
    "relu_derivative",
    "dense_forward",
    "squared_error",
    "output_delta_squared_error",
    "hidden_delta",
    "weight_gradient",
    "bias_gradient",
    "gradient_descent_update",
]


# ---------------------------------------------------------------- scalars


@jit
def sigmoid_scalar(z):
    """sigma(z) = 1 / (1 + e^-z) for one number, without overflow for any z.

    For z < 0 it uses e^z / (1 + e^z), so e^x is only taken of x <= 0.
    """
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@jit
def activation_scalar(code, z, alpha=0.01):
    """f(z) for one number; ``code`` is an activation code other than SOFTMAX (which needs a whole row).

    ``alpha`` is the slope of leaky_relu for z < 0, or the alpha of elu; the
    network always passes the layer's own value.
    """
    if code == SIGMOID:
        return sigmoid_scalar(z)
    if code == TANH:
        return math.tanh(z)
    if code == RELU:
        return z if (z > 0 or z != z) else 0.0  # NaN stays NaN; -inf gives 0
    if code == LEAKY_RELU:
        return z if z > 0 else alpha * z
    if code == ELU:
        return z if z > 0 else alpha * math.expm1(z)
    if code == SOFTPLUS:
        # log(1 + e^z) = max(z, 0) + log(1 + e^-|z|), no overflow
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    if code == GELU:
        # exact form: z * Phi(z), Phi the standard normal distribution function
        return 0.5 * z * (1.0 + math.erf(z * _SQRT_HALF))
    return z


@jit
def activation_derivative_scalar(code, z, y, alpha=0.01):
    """f'(z) for one number, given z and y = f(z).

    sigmoid' = y (1 - y); tanh' = 1 - y^2; ReLU' = 1 if z > 0 else 0 (so
    ReLU'(0) = 0); leaky_relu' = 1 if z > 0 else alpha; elu' = 1 if z > 0
    else y + alpha; softplus' = sigma(z); gelu' = Phi(z) + z phi(z);
    identity' = 1.  The result has the type of ``z``.
    """
    one = z * 0.0 + 1.0
    if code == SIGMOID:
        return y * (one - y)
    if code == TANH:
        return one - y * y
    if code == RELU:
        return one if z > 0 else one * 0.0
    if code == LEAKY_RELU:
        return one if z > 0 else one * alpha
    if code == ELU:
        return one if z > 0 else y + alpha
    if code == SOFTPLUS:
        return one * sigmoid_scalar(z)
    if code == GELU:
        return 0.5 * (1.0 + math.erf(z * _SQRT_HALF)) + z * _INV_SQRT_2PI * math.exp(-0.5 * z * z)
    return one


# ---------------------------------------------------------------- activations


@jit
def row_max(z, s):
    """max_j z[s, j] (the first maximum; a NaN compares false and is skipped unless it is z[s, 0])."""
    top = z[s, 0]
    for j in range(1, z.shape[1]):
        if z[s, j] > top:
            top = z[s, j]
    return top


@jit
def log_sum_exp_row(z, s):
    """log sum_j e^(z[s, j]), as m + log sum_j e^(z[s, j] - m) with m = :func:`row_max`: no overflow."""
    top = row_max(z, s)
    sum_exp = 0.0
    for j in range(z.shape[1]):
        sum_exp += math.exp(z[s, j] - top)
    return top + math.log(sum_exp)


@jit
def softmax_rows(z, y):
    """y[s] = softmax(z[s]) for every row: y_j = e^(z_j - m) / sum_k e^(z_k - m), m = max_k z_k.

    Subtracting the row maximum keeps every exponent <= 0: no overflow for
    any finite z.  Shapes (n_samples, n_units) both; ``y`` may be ``z``.
    """
    n, m = z.shape
    for s in range(n):
        top = row_max(z, s)
        for j in range(m):
            y[s, j] = z[s, j] - top
    # the exponentials in one loop over all entries (SIMD; a row of 10 left a slow scalar remainder of
    # 2 per row): 1.0 -> 0.5 us for 32 x 10
    _exp_in_place(y)
    for s in range(n):
        total = 0.0
        for j in range(m):
            total += y[s, j]
        for j in range(m):
            y[s, j] /= total


def _exp_in_place(y):
    """y <- e^y entrywise, for a 2-D array y (compiled code only)."""
    raise NotImplementedError("_exp_in_place is only callable from compiled code")


@overload(_exp_in_place, jit_options=NJIT_OPTIONS)
def _exp_in_place_overload(y):
    if y.layout == "C":

        def all_at_once(y):
            flat = y.reshape(y.shape[0] * y.shape[1])
            for k in range(flat.shape[0]):
                flat[k] = _vecmath.exp(flat[k])

        return all_at_once

    def row_by_row(y):
        for s in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[s, j] = _vecmath.exp(y[s, j])

    return row_by_row


@jit
def activation_forward(code, z, y, alpha=0.01):
    """y = f(z) elementwise (row-wise for SOFTMAX).

    Parameters
    ----------
    code : int
        An activation code: IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, ELU,
        SOFTPLUS, GELU or SOFTMAX.
    z : ndarray (n_samples, n_units)
    y : ndarray (n_samples, n_units), written in place; may be ``z`` itself.
    alpha : float
        The slope of leaky_relu below 0, or the alpha of elu.

    Notes
    -----
    sigmoid and tanh use the vectorisable versions in ``fastbp._vecmath``
    (within 4 ulp of libm), so each loop runs as SIMD code; the other
    activations call their scalar form.
    """
    n, m = z.shape
    if code == SIGMOID:
        for s in range(n):
            for j in range(m):
                y[s, j] = _vecmath.sigmoid(z[s, j])
    elif code == TANH:
        for s in range(n):
            for j in range(m):
                y[s, j] = _vecmath.tanh(z[s, j])
    elif code == RELU:
        for s in range(n):
            for j in range(m):
                v = z[s, j]
                y[s, j] = v if (v > 0 or v != v) else 0.0
    elif code == SOFTMAX:
        softmax_rows(z, y)
    elif code == IDENTITY:
        for s in range(n):
            for j in range(m):
                y[s, j] = z[s, j]
    else:
        for s in range(n):
            for j in range(m):
                y[s, j] = activation_scalar(code, z[s, j], alpha)


@jit
def multiply_by_derivative(code, z, y, delta, alpha=0.01):
    """delta *= f'(z) elementwise, given y = f(z); the factor that turns dE/dy into dE/dz.

    For SOFTMAX the Jacobian is not diagonal: each row becomes
    y_j (delta_j - sum_k delta_k y_k).

    Parameters
    ----------
    code : int
    z, y : ndarray (n_samples, n_units)
    delta : ndarray (n_samples, n_units), updated in place.
    alpha : float
        The slope of leaky_relu below 0, or the alpha of elu.
    """
    n, m = z.shape
    if code == SIGMOID:
        for s in range(n):
            for j in range(m):
                delta[s, j] *= y[s, j] * (1.0 - y[s, j])
    elif code == TANH:
        for s in range(n):
            for j in range(m):
                delta[s, j] *= 1.0 - y[s, j] * y[s, j]
    elif code == RELU:
        for s in range(n):
            for j in range(m):
                delta[s, j] = delta[s, j] if z[s, j] > 0 else delta[s, j] * 0.0
    elif code == SOFTMAX:
        for s in range(n):
            dot = 0.0
            for k in range(m):
                dot += delta[s, k] * y[s, k]
            for j in range(m):
                delta[s, j] = y[s, j] * (delta[s, j] - dot)
    elif code != IDENTITY:
        for s in range(n):
            for j in range(m):
                delta[s, j] *= activation_derivative_scalar(code, z[s, j], y[s, j], alpha)


@jit
def activation_derivative(code, z, y, out, alpha=0.01):
    """out = f'(z) elementwise, given y = f(z) (not for SOFTMAX, whose derivative is a matrix).

    Parameters
    ----------
    code : int
    z : ndarray (n_samples, n_units)
    y : ndarray (n_samples, n_units), must equal f(z).
    out : ndarray (n_samples, n_units), written in place.
    alpha : float
        The slope of leaky_relu below 0, or the alpha of elu.
    """
    n, m = z.shape
    for s in range(n):
        for j in range(m):
            out[s, j] = 1.0
    multiply_by_derivative(code, z, y, out, alpha)


@jit
def identity_forward(z, y):
    """y = z.  Shapes (n_samples, n_units) both."""
    activation_forward(IDENTITY, z, y)


@jit
def identity_derivative(z, y, out):
    """out = 1.  Shapes (n_samples, n_units) all."""
    activation_derivative(IDENTITY, z, y, out)


@jit
def sigmoid_forward(z, y):
    """y = 1 / (1 + e^-z), overflow-free.  Shapes (n_samples, n_units) both."""
    activation_forward(SIGMOID, z, y)


@jit
def sigmoid_derivative(z, y, out):
    """out = sigma'(z) = y (1 - y) with y = sigma(z).  Shapes (n_samples, n_units) all."""
    activation_derivative(SIGMOID, z, y, out)


@jit
def tanh_forward(z, y):
    """y = tanh(z).  Shapes (n_samples, n_units) both."""
    activation_forward(TANH, z, y)


@jit
def tanh_derivative(z, y, out):
    """out = tanh'(z) = 1 - y^2 with y = tanh(z).  Shapes (n_samples, n_units) all."""
    activation_derivative(TANH, z, y, out)


@jit
def relu_forward(z, y):
    """y = max(0, z).  Shapes (n_samples, n_units) both."""
    activation_forward(RELU, z, y)


@jit
def relu_derivative(z, y, out):
    """out = 1 where z > 0, else 0 (ReLU'(0) = 0).  Shapes (n_samples, n_units) all."""
    activation_derivative(RELU, z, y, out)


# ---------------------------------------------------------------- dense layer


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
    of rows small enough for one BLAS thread (see ``fastbp._config``).
    """
    n, n_below = y_prev.shape
    n_above = W.shape[1]
    per_row = n_below * n_above
    if n * per_row >= BLAS_MIN_MULTIPLY_ADDS:
        if BLAS_ONE_THREAD_MAX < n * per_row <= BLAS_CHUNKED_MAX and per_row <= BLAS_ONE_THREAD_MAX:
            rows = BLAS_ONE_THREAD_MAX // per_row
            for r0 in range(0, n, rows):
                r1 = min(n, r0 + rows)
                np.dot(y_prev[r0:r1], W, z[r0:r1])
        else:
            np.dot(y_prev, W, z)
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


# ---------------------------------------------------------------- loss and error terms


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
        log_sum = log_sum_exp_row(z, s)
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
                    total -= dj * (z[s, j] - log_sum_exp_row(z, s))
    if factors > 0:
        total -= math.log(product)
    return total / n


@jit
def binary_cross_entropy(z, d):
    """E = mean over samples of -sum_j [d_j log y_j + (1 - d_j) log(1 - y_j)] with y = sigma(z).

    Computed from z as max(z, 0) - z d + log(1 + e^-|z|): finite for every
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
        np.dot(delta_next, W_next.T, delta)
    else:
        for s in range(n):
            for j in range(m):
                total = delta_next[s, 0] * 0.0
                for k in range(n_next):
                    total += delta_next[s, k] * W_next[j, k]
                delta[s, j] = total
    multiply_by_derivative(code, z, y, delta, alpha)


# ---------------------------------------------------------------- gradients and update


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
    if n * n_below * n_above >= BLAS_MIN_MULTIPLY_ADDS:
        np.dot(y_prev.T, delta, grad_W)
    else:
        for i in range(n_below):
            for j in range(n_above):
                grad_W[i, j] = 0.0
        for s in range(n):
            for i in range(n_below):
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


# ---------------------------------------------------------------- optimizers

SGD = 0
ADAM = 1
ADAMW = 2

# positions in the ``hyper`` array of :func:`optimizer_update`
H_LR, H_MOMENTUM, H_BETA1, H_BETA2, H_EPS, H_WEIGHT_DECAY, H_NESTEROV = 0, 1, 1, 2, 3, 4, 5
N_HYPER = 6


@jit
def optimizer_update(
    code, theta, grad, lr, hyper, state1, state2, t, frozen, theta_out=None, state1_out=None, state2_out=None
):
    """One optimizer step on the flat parameters, with PyTorch's update rules.

    Parameters
    ----------
    code : int
        SGD, ADAM or ADAMW.
    theta, grad : ndarray (N,)
        Parameters (updated in place) and dE/dtheta.
    lr : float
        This step's learning rate.
    hyper : float64 ndarray (N_HYPER,)
        SGD: [_, momentum, _, _, weight_decay, nesterov]; ADAM/ADAMW:
        [_, beta1, beta2, eps, weight_decay, _].
    state1, state2 : ndarray (N,) or (0,)
        SGD: the velocity (state1) when momentum > 0; ADAM/ADAMW: the first
        and second moment estimates m and v.
    t : int
        The step number, starting at 1 (Adam's bias correction).
    frozen : bool ndarray (N,) or (0,)
        Parameters marked True are left alone (their state too).
    theta_out, state1_out, state2_out : ndarray, optional (all three or none)
        Shaped like theta, state1, state2: the step is written there and
        theta, state1, state2 are only read (frozen entries are copied).

    Notes
    -----
    SGD: g = grad + weight_decay theta; v = momentum v + g; theta -= lr (g +
    momentum v if nesterov else v) (plain theta -= lr g without momentum).
    Adam: g = grad + weight_decay theta; m = b1 m + (1 - b1) g; v = b2 v +
    (1 - b2) g^2; theta -= (lr / (1 - b1^t)) m / (sqrt(v / (1 - b2^t)) + eps),
    the bias correction of v as a multiplication by 1 / (1 - b2^t) under the
    root (PyTorch divides sqrt(v) by sqrt(1 - b2^t): the same to an ulp, and a
    division is the slowest part of this loop).
    AdamW: theta *= 1 - lr weight_decay first, then Adam without the L2 term.
    The coefficients are worked out in float64 and rounded once to the
    parameters' dtype; the per-parameter arithmetic is in that dtype (as in
    PyTorch: float32 parameters get float32 square roots and divisions, which
    run at twice the float64 rate).
    Unlike PyTorch, a state entry (velocity, m or v) that falls below the
    smallest normal number of the dtype is set to 0.  Such entries decay by
    beta or momentum each step in which their gradient is 0 (a pixel that is
    blank in a batch, a dead ReLU unit) and stay subnormal for ~150 steps, in
    which x86 CPUs take ~100x longer over every operation on them (float32
    Adam on the digits classifier: 20.5 instead of 15 us a step).  Their share
    of an update is below 1e-30 lr.
    """
    if theta_out is None:
        # In place: the same arrays, so LLVM sees that each entry is read before it is written (as
        # separate arguments it would guard the SIMD loop with an overlap check that fails).
        theta_out = theta
        state1_out = state1
        state2_out = state2
    n = theta.shape[0]
    has_frozen = frozen.shape[0] > 0
    real = theta.dtype.type  # the coefficients below, rounded once to the parameters' dtype
    weight_decay = real(hyper[H_WEIGHT_DECAY])
    tiny = np.finfo(theta.dtype).tiny  # the smallest normal number: state below it is set to 0
    zero = real(0.0)
    # Each case is one branch-free loop (frozen parameters by a select), so that LLVM vectorises it.
    if code == SGD:
        momentum = real(hyper[H_MOMENTUM])
        nesterov = hyper[H_NESTEROV] != 0.0
        if momentum == 0.0 and weight_decay == 0.0:
            # plain gradient descent, in the parameters' dtype exactly as gradient_descent_update
            if has_frozen:
                for k in range(n):
                    old = theta[k]
                    theta_out[k] = old if frozen[k] else old - lr * grad[k]
            else:
                for k in range(n):
                    theta_out[k] = theta[k] - lr * grad[k]
            return
        for k in range(n):
            old = theta[k]
            keep = has_frozen and frozen[k]
            g = grad[k] + weight_decay * old
            if momentum != 0.0:
                v = momentum * state1[k] + g
                v = zero if abs(v) < tiny else v  # (NaN stays NaN)
                state1_out[k] = state1[k] if keep else v
                g = g + momentum * v if nesterov else v
            theta_out[k] = old if keep else old - lr * g
        return
    beta1 = hyper[H_BETA1]
    beta2 = hyper[H_BETA2]
    decoupled = code == ADAMW
    step_size = real(lr / (1.0 - beta1**t))
    inv_bias2 = real(1.0 / (1.0 - beta2**t))
    eps = real(hyper[H_EPS])
    shrink = real(1.0 - lr * hyper[H_WEIGHT_DECAY] if decoupled else 1.0)
    l2 = real(0.0) if decoupled else weight_decay
    keep1, add1 = real(beta1), real(1.0 - beta1)
    keep2, add2 = real(beta2), real(1.0 - beta2)
    if has_frozen:
        for k in range(n):
            old = theta[k]
            g = grad[k] + l2 * old
            m = keep1 * state1[k] + add1 * g
            v = keep2 * state2[k] + add2 * g * g
            m = zero if abs(m) < tiny else m  # (NaN stays NaN)
            v = zero if v < tiny else v
            keep = frozen[k]
            state1_out[k] = state1[k] if keep else m
            state2_out[k] = state2[k] if keep else v
            theta_out[k] = old if keep else old * shrink - step_size * m / (math.sqrt(v * inv_bias2) + eps)
    else:
        for k in range(n):
            old = theta[k]
            g = grad[k] + l2 * old
            m = keep1 * state1[k] + add1 * g
            v = keep2 * state2[k] + add2 * g * g
            m = zero if abs(m) < tiny else m  # (NaN stays NaN)
            v = zero if v < tiny else v
            state1_out[k] = m
            state2_out[k] = v
            theta_out[k] = old * shrink - step_size * m / (math.sqrt(v * inv_bias2) + eps)
