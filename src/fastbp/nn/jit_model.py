"""``fastbp.jit``: a whole network as a numba-typed value that a user's own ``@numba.njit`` code can call,
differentiate and train.

``net.to_jit(max_batch)`` gives ``model = (layout, theta, work, scratch, checked)``: the network's layout
tuple (``fastbp.engine._serial``'s), the network's own flat parameter vector (shared, not copied: training
through the model changes the network), work buffers (z, y and delta of every layer) for up to ``max_batch``
samples, a gradient-sized scratch vector for :func:`sgd_step`, and the ``checked`` flag.

Each function below works from Python, where it validates every argument first (shapes, dtypes, the batch
against ``max_batch``, the model's own arrays), and from inside any ``@numba.njit`` function, where it is the
compiled function itself and checks nothing (numba does not check bounds: a wrong shape reads or writes past
an array's end) unless the model was made with ``checked=True``; then a wrong shape raises ValueError there
too.  Nothing allocates.
"""

from typing import Any

import numpy as np
from numba.core import types
from numba.extending import overload

from fastbp.config import NJIT_OPTIONS, jit
from fastbp.engine._serial import backward_layers, backward_pass, forward_loss, forward_pass, layer_rows
from fastbp.kernels.activations import multiply_by_derivative
from fastbp.nn.layout import Workspace
from fastbp.nn.validation import check_bool, check_positive_int, check_positive_number


def to_jit(net, max_batch: int = 64, checked: bool = False) -> tuple:
    """The model tuple of ``net`` for batches of up to ``max_batch`` samples (see the module docstring)."""
    check_positive_int(max_batch, "max_batch")
    check_bool(checked, "checked")
    ws = Workspace(net._layout, int(max_batch), net.dtype)
    return (net._layout.packed, net._theta, ws.work, np.zeros_like(net._theta), bool(checked))


# ----------------------------------------------------------------------------- checks at the Python boundary


def _check_model(model):
    """(sizes, theta, capacity) of a model tuple, after checking that its arrays fit its layout."""
    if not isinstance(model, tuple) or len(model) != 5:
        raise TypeError(f"model must be what Network.to_jit returns, got {type(model).__name__}")
    layout, theta, work, scratch, checked = model
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    n_params = int(np.sum(sizes[:-1] * sizes[1:]) + np.sum(sizes[1:]))
    units = int(np.sum(sizes[1:]))
    arrays = {"theta": (theta, n_params), "scratch": (scratch, n_params)}
    arrays.update({name: (buf, capacity * units) for name, buf in (("z", z_buf), ("y", y_buf), ("delta", delta_buf))})
    for name, (a, length) in arrays.items():
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.shape[0] < length or a.dtype != theta.dtype:
            raise ValueError(f"the model's {name} must be a {theta.dtype} vector of at least {length} entries")
    if theta.shape[0] != n_params or unit_offsets[-1] != units or codes.shape[0] != sizes.shape[0] - 1:
        raise ValueError("the model's layout does not match its parameters: make it with Network.to_jit")
    return sizes, theta, capacity


def _check_array(a, name, shape, dtype):
    if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype != dtype or not a.flags.c_contiguous:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name} must be a C-contiguous {dtype} array of shape {shape}, got {got}")


def _check_batch(model, X, outputs, names):
    """n = X.shape[0] after checking X (n, n_in) and each of ``outputs`` (n, n_out), or (n_params,) for the
    name "grad", against the model."""
    sizes, theta, capacity = _check_model(model)
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ValueError(f"X must be a 2-D array (n, {sizes[0]}), got {getattr(X, 'shape', type(X).__name__)}")
    n = X.shape[0]
    if not 1 <= n <= capacity:
        raise ValueError(f"X has {n} rows: the model takes batches of 1 to max_batch={capacity} samples")
    _check_array(X, "X", (n, int(sizes[0])), theta.dtype)
    for a, name in zip(outputs, names):
        _check_array(a, name, theta.shape if name == "grad" else (n, int(sizes[-1])), theta.dtype)
    return n


# ----------------------------------------------------------------------------- the compiled functions


@jit
def _check_compiled(model, X, Y, grad):
    """The checks of ``checked=True`` inside compiled code (Y or grad of length 0 when not passed)."""
    layout, theta, work, scratch, checked = model
    sizes = layout[0]
    n = X.shape[0]
    if n < 1 or n > work[0]:
        raise ValueError("fastbp.jit: the batch is empty or larger than the model's max_batch")
    if X.shape[1] != sizes[0]:
        raise ValueError("fastbp.jit: X does not have the network's number of inputs")
    if Y.shape[1] != 0 and (Y.shape[0] != n or Y.shape[1] != sizes[-1]):
        raise ValueError("fastbp.jit: Y, D or dY is not (n, n_out) for the n rows of X")
    if grad.shape[0] != 0 and grad.shape[0] != theta.shape[0]:
        raise ValueError("fastbp.jit: grad does not have the network's number of parameters")


@jit
def _forward_compiled(model, X, Y):
    layout, theta, work, scratch, checked = model
    if checked:
        _check_compiled(model, X, Y, scratch[:0])
    forward_pass(theta, layout, X, work)
    sizes, unit_offsets = layout[0], layout[6]
    y_out = layer_rows(work[2], work[0], sizes, unit_offsets, sizes.shape[0] - 2, X.shape[0])
    for s in range(y_out.shape[0]):  # a loop: numba's Y[:, :] = y_out costs ~0.2 us a call
        for j in range(y_out.shape[1]):
            Y[s, j] = y_out[s, j]


@jit
def _loss_and_gradient_compiled(model, X, D, grad):
    layout, theta, work, scratch, checked = model
    if checked:
        _check_compiled(model, X, D, grad)
    E = forward_loss(theta, layout, X, D, work)
    backward_pass(theta, layout, X, D, work, grad, 0.0)
    return E


@jit
def _backward_compiled(model, X, dY, grad):
    layout, theta, work, scratch, checked = model
    if checked:
        _check_compiled(model, X, dY, grad)
    sizes, codes, alphas, loss_code, w_offsets, b_offsets, unit_offsets = layout
    capacity, z_buf, y_buf, delta_buf = work
    last = codes.shape[0] - 1
    n = X.shape[0]
    delta = layer_rows(delta_buf, capacity, sizes, unit_offsets, last, n)
    delta[:, :] = dY
    multiply_by_derivative(
        codes[last], layer_rows(z_buf, capacity, sizes, unit_offsets, last, n),
        layer_rows(y_buf, capacity, sizes, unit_offsets, last, n), delta, alphas[last],
    )  # fmt: skip
    backward_layers(theta, layout, X, work, grad, 0.0)


@jit
def _sgd_step_compiled(model, X, D, lr):
    layout, theta, work, scratch, checked = model
    if checked:
        _check_compiled(model, X, D, scratch[:0])
    E = forward_loss(theta, layout, X, D, work)
    backward_pass(theta, layout, X, D, work, scratch, lr)
    return E


# ----------------------------------------------------------------------------- the public functions


def forward(model: tuple, X: np.ndarray, Y: np.ndarray) -> None:
    """Y (n, n_out) <- the network's output for X (n, n_in), n <= max_batch; also fills the model's buffers
    for :func:`backward`.  Inside ``@njit`` code nothing is checked (unless ``checked=True``)."""
    _check_batch(model, X, (Y,), ("Y",))
    _forward_compiled(model, X, Y)


def loss_and_gradient(model: tuple, X: np.ndarray, D: np.ndarray, grad: np.ndarray) -> float:
    """E of the batch, as ``Network.gradients`` gives it (mean over samples), with dE/dtheta written to
    grad (n_params,), in the order of ``flat_parameters``.  Unchecked inside ``@njit`` code."""
    _check_batch(model, X, (D, grad), ("D", "grad"))
    return float(_loss_and_gradient_compiled(model, X, D, grad))


def backward(model: tuple, X: np.ndarray, dY: np.ndarray, grad: np.ndarray) -> None:
    """grad (n_params,) <- dE/dtheta given dY (n, n_out) = dE/dY for the last :func:`forward` on X: the
    vector-Jacobian product of the network, for a loss of your own.  Unchecked inside ``@njit`` code."""
    _check_batch(model, X, (dY, grad), ("dY", "grad"))
    _backward_compiled(model, X, dY, grad)


def sgd_step(model: tuple, X: np.ndarray, D: np.ndarray, lr: float) -> float:
    """One gradient-descent step on the network's parameters, as ``Network.step``; returns E before it.
    Unchecked inside ``@njit`` code."""
    _check_batch(model, X, (D,), ("D",))
    lr = check_positive_number(lr, "lr")
    return float(_sgd_step_compiled(model, X, D, model[1].dtype.type(lr)))


def _dtype_of(model):
    return np.float32 if model.types[1].dtype == types.float32 else np.float64


# The overloads hand numba the compiled functions' own Python source, so that a user's call compiles into
# one function: a wrapper calling the compiled function would pass the model tuple (about 100 machine words)
# once more per call, ~60 ns.  They are not cached on their own: numba would file them under the same name
# as the compiled functions, whose Python entry points would then load them, and crash.  (A user's cached
# function keeps them within its own compiled code.)
_INLINE_OPTIONS: Any = dict(NJIT_OPTIONS, cache=False)


@overload(forward, jit_options=_INLINE_OPTIONS)
def _forward_overload(model, X, Y):
    return _forward_compiled.py_func


@overload(loss_and_gradient, jit_options=_INLINE_OPTIONS)
def _loss_and_gradient_overload(model, X, D, grad):
    return _loss_and_gradient_compiled.py_func


@overload(backward, jit_options=_INLINE_OPTIONS)
def _backward_overload(model, X, dY, grad):
    return _backward_compiled.py_func


@overload(sgd_step, jit_options=_INLINE_OPTIONS)
def _sgd_step_overload(model, X, D, lr):
    if lr == model.types[1].dtype:
        return _sgd_step_compiled.py_func
    cast = _dtype_of(model)
    return lambda model, X, D, lr: _sgd_step_compiled(model, X, D, cast(lr))
