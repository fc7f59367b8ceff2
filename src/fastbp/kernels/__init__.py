"""fastbp's numba kernels: the forward and backward passes of dense layers, one formula each, in buffers.

Every kernel is compiled with :func:`fastbp.config.jit` and can be called from Python or from a user's own
``@numba.njit`` function.  None of them allocates, validates or checks bounds: the caller passes C-contiguous
arrays of one floating dtype (float32 or float64) with the shapes stated in each docstring, and a wrong shape
makes numba read or write past the end of an array.  :class:`fastbp.Network` validates its inputs, then calls
them.

Names follow the backpropagation tutorial:

* ``y_prev`` -- outputs y_i^(l-1) of the layer below, shape (n_samples, n_below)
* ``W`` -- weights, ``W[i, j]`` = w_ij^(l) from unit i below to unit j, shape (n_below, n_above)
* ``b`` -- biases b_j^(l), shape (n_above,)
* ``z`` -- weighted sums z_j^(l), shape (n_samples, n_above)
* ``y`` -- outputs y_j^(l) = f(z_j^(l)), shape (n_samples, n_above)
* ``d`` -- targets d_j, shape (n_samples, n_out)
* ``delta`` -- error terms delta_j^(l) = dE/dz_j^(l) of each sample, shape (n_samples, n_above)

The modules, one idea each: ``activations`` (f and f' by code: IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU, ELU,
SOFTPLUS, GELU, SOFTMAX), ``dense`` (z = y_prev W + b and the gradients dE/dW, dE/db), ``losses`` (E),
``backprop`` (the error terms delta^L and delta^l), ``optimizers`` (one SGD/Adam/AdamW step).  A code that is a
literal is folded to a constant by numba.
"""

from .activations import (
    ACTIVATION_CODES,
    ELU,
    GELU,
    IDENTITY,
    LEAKY_RELU,
    RELU,
    SIGMOID,
    SOFTMAX,
    SOFTPLUS,
    TANH,
    activation_derivative,
    activation_derivative_scalar,
    activation_forward,
    activation_scalar,
    identity_derivative,
    identity_forward,
    multiply_by_derivative,
    relu_derivative,
    relu_forward,
    sigmoid_derivative,
    sigmoid_forward,
    sigmoid_scalar,
    softmax_rows,
    tanh_derivative,
    tanh_forward,
)
from .backprop import hidden_delta, output_delta, output_delta_squared_error
from .dense import bias_gradient, dense_forward, gradient_descent_update, weight_gradient
from .losses import (
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    LOSS_CODES,
    SQUARED_ERROR,
    binary_cross_entropy,
    cross_entropy,
    cross_entropy_of_softmax,
    loss,
    squared_error,
)
from .optimizers import (
    ADAM,
    ADAMW,
    H_BETA1,
    H_BETA2,
    H_EPS,
    H_LR,
    H_MOMENTUM,
    H_NESTEROV,
    H_WEIGHT_DECAY,
    N_HYPER,
    SGD,
    optimizer_update,
)

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
    "SGD",
    "ADAM",
    "ADAMW",
    "N_HYPER",
    "H_LR",
    "H_MOMENTUM",
    "H_BETA1",
    "H_BETA2",
    "H_EPS",
    "H_WEIGHT_DECAY",
    "H_NESTEROV",
    "activation_forward",
    "activation_derivative",
    "multiply_by_derivative",
    "softmax_rows",
    "identity_forward",
    "identity_derivative",
    "sigmoid_forward",
    "sigmoid_derivative",
    "tanh_forward",
    "tanh_derivative",
    "relu_forward",
    "relu_derivative",
    "sigmoid_scalar",
    "activation_scalar",
    "activation_derivative_scalar",
    "dense_forward",
    "weight_gradient",
    "bias_gradient",
    "gradient_descent_update",
    "squared_error",
    "cross_entropy",
    "cross_entropy_of_softmax",
    "binary_cross_entropy",
    "loss",
    "output_delta_squared_error",
    "output_delta",
    "hidden_delta",
    "optimizer_update",
]
