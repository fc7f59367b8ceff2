"""Activation kernels: f(z) and f'(z) by integer code, row by row or one scalar at a time.

Codes: IDENTITY, SIGMOID, TANH, RELU (ReLU'(0) = 0), LEAKY_RELU, ELU, SOFTPLUS, GELU and SOFTMAX (output layer
only); ``ACTIVATION_CODES`` maps the names to them.  ``alpha`` is leaky_relu's slope below 0 or elu's alpha.
"""

import math

from numba.extending import overload

from fastbp.config import NJIT_OPTIONS, jit
from fastbp.kernels import _vecmath

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


_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)


_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)


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


@jit
def _row_max(z, s):
    """max_j z[s, j] (the first maximum; a NaN compares false and is skipped unless it is z[s, 0])."""
    top = z[s, 0]
    for j in range(1, z.shape[1]):
        if z[s, j] > top:
            top = z[s, j]
    return top


@jit
def _log_sum_exp_row(z, s):
    """log sum_j e^(z[s, j]), as m + log sum_j e^(z[s, j] - m) with m = :func:`_row_max`: no overflow."""
    top = _row_max(z, s)
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
        top = _row_max(z, s)
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
    sigmoid and tanh use the vectorisable versions in ``fastbp.kernels._vecmath``
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
    """``delta *= f'(z)`` elementwise, given y = f(z); the factor that turns dE/dy into dE/dz.

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
