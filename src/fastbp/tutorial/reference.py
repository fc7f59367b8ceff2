"""Pure-Python reference implementation of backpropagation (the test oracle).

Everything here is written from the backprop tutorial
(``backprop-tutorial-ja.md``, "誤差逆伝播法") one scalar at a time, with the
tutorial's names:

* ``z_j^(l) = sum_i w_ij^(l) y_i^(l-1) + b_j^(l)``                  (§2.2)
* ``y_j^(l) = f^(l)(z_j^(l))``                                       (§2.2)
* ``E = 1/2 sum_j (y_j^(L) - d_j)^2``                                (§3)
* ``delta_j^(L) = (y_j^(L) - d_j) f^(L)'(z_j^(L))``                  (§4.1.2)
* ``delta_j^(l) = (sum_k delta_k^(l+1) w_jk^(l+1)) f^(l)'(z_j^(l))`` (§4.2.2)
* ``dE/dw_ij^(l) = delta_j^(l) y_i^(l-1)``, ``dE/db_j^(l) = delta_j^(l)`` (§4.1, §4.3)
* ``w <- w - eta dE/dw``, ``b <- b - eta dE/db``                     (§3, §4.3)

§4.1.2 of the tutorial assumes an identity output layer, where
``f^(L)' = 1``; here the factor ``f^(L)'(z_j^(L))`` is kept so that any
activation may be used on the output layer.

Network convention
------------------
A network with ``L`` layers (input layer excluded) is given by three lists:

``weights``
    ``weights[l][i][j]`` is ``w_ij^(l+1)``, the weight from unit ``i`` of layer
    ``l`` to unit ``j`` of layer ``l+1``; ``weights[l]`` has shape
    ``n_l x n_(l+1)`` (fan_in x fan_out).
``biases``
    ``biases[l][j]`` is ``b_j^(l+1)``.
``activations``
    ``activations[l]`` is the name of ``f^(l+1)``, one of
    :data:`ACTIVATION_NAMES`.

Per-layer results (``zs``, ``ys``, ``delta``) are indexed by the tutorial's
layer number ``l = 0..L``; index 0 is the input layer, which has ``y^(0) = x``
and no ``z`` or ``delta`` (stored as ``None``).

The activation functions (:func:`activation`, :func:`activation_derivative`,
:func:`softmax`) are written in :mod:`fastbp.tutorial.reference_activations` and
the optimizers (:func:`sgd_update`, :func:`adam_update`) in
:mod:`fastbp.tutorial.reference_optimizers`; both are re-exported here.

These modules import only :mod:`math` (and each other), never mutate their
arguments and always return fresh lists. They are slow by design: use them on
small shapes only.
"""

import math

from fastbp.tutorial.reference_activations import (
    ACTIVATION_NAMES,
    EXTRA_ACTIVATION_NAMES,
    _split_spec,
    activation,
    activation_derivative,
    softmax,
)
from fastbp.tutorial.reference_optimizers import adam_update, sgd_update

LOSS_NAMES = ("squared_error", "cross_entropy", "binary_cross_entropy")


def _check_network(weights, biases, activations, n_in):
    n_layers = len(weights)
    if n_layers == 0:
        raise ValueError("the network needs at least one layer")
    if len(biases) != n_layers or len(activations) != n_layers:
        raise ValueError(
            f"weights, biases and activations must have one entry per layer; "
            f"got {n_layers}, {len(biases)} and {len(activations)}"
        )
    n_below = n_in
    for layer, (w, b, name) in enumerate(zip(weights, biases, activations), start=1):
        _split_spec(name)
        if len(w) != n_below:
            raise ValueError(
                f"weights[{layer - 1}] must have {n_below} rows (units in layer {layer - 1}); got {len(w)}"
            )
        n_above = len(b)
        for i, row in enumerate(w):
            if len(row) != n_above:
                raise ValueError(
                    f"weights[{layer - 1}][{i}] must have {n_above} entries (len(biases[{layer - 1}])); got {len(row)}"
                )
        n_below = n_above


def _check_batch(X, D):
    if len(X) == 0:
        raise ValueError("the mini-batch X must contain at least one sample")
    if len(X) != len(D):
        raise ValueError(f"X and D must have the same number of samples; got {len(X)} and {len(D)}")


def forward(weights, biases, activations, x):
    """Forward pass of one sample (tutorial §2.2).

    For ``l = 1..L``::

        z_j^(l) = sum_i w_ij^(l) y_i^(l-1) + b_j^(l)
        y_j^(l) = f^(l)(z_j^(l))

    with ``y^(0) = x``.

    Parameters
    ----------
    weights : list of list of list of float
        ``weights[l][i][j] = w_ij^(l+1)``, shape ``n_l x n_(l+1)`` per layer.
    biases : list of list of float
        ``biases[l][j] = b_j^(l+1)``.
    activations : list of str
        ``activations[l]`` names ``f^(l+1)``.
    x : list of float
        One input sample, of length ``n_0``.

    Returns
    -------
    zs : list
        Length ``L + 1``; ``zs[0]`` is ``None`` and ``zs[l]`` is the list
        ``z^(l)`` for ``l >= 1``.
    ys : list of list of float
        Length ``L + 1``; ``ys[0]`` is a copy of `x` and ``ys[l] = y^(l)``.

    Raises
    ------
    ValueError
        If the shapes do not match or an activation name is unknown.
    """
    _check_network(weights, biases, activations, len(x))
    zs = [None]
    ys = [[float(v) for v in x]]
    for w, b, name in zip(weights, biases, activations):
        y_below = ys[-1]
        z = [sum(w[i][j] * y_below[i] for i in range(len(y_below))) + b[j] for j in range(len(b))]
        zs.append(z)
        if _split_spec(name)[0] == "softmax":
            ys.append(softmax(z))
        else:
            ys.append([activation(name, z_j) for z_j in z])
    return zs, ys


def squared_error(y, d):
    """Squared error of one sample, ``E = 1/2 sum_j (y_j - d_j)^2`` (tutorial §3).

    Parameters
    ----------
    y : list of float
        Network output ``y^(L)``.
    d : list of float
        Target (teacher data) ``d``, same length as `y`.

    Returns
    -------
    float
        ``E``.

    Raises
    ------
    ValueError
        If `y` and `d` have different lengths.
    """
    if len(y) != len(d):
        raise ValueError(f"y and d must have the same length; got {len(y)} and {len(d)}")
    return 0.5 * sum((y_j - d_j) ** 2 for y_j, d_j in zip(y, d))


def loss(name, y, d, z):
    """Loss of one sample; ``name`` in :data:`LOSS_NAMES`.

    * squared_error: ``E = 1/2 sum_j (y_j - d_j)^2``;
    * cross_entropy (softmax output): ``E = -sum_j d_j log y_j``, with
      ``log y_j = z_j - log sum_k e^(z_k)``;
    * binary_cross_entropy (sigmoid output):
      ``E = -sum_j [d_j log y_j + (1 - d_j) log(1 - y_j)]``, with
      ``log sigma(z) = -log(1 + e^-z)`` and ``log(1 - sigma(z)) = -log(1 + e^z)``.
    """
    if name == "squared_error":
        return squared_error(y, d)
    if name == "cross_entropy":
        top = max(z)
        log_sum = top + math.log(sum(math.exp(z_k - top) for z_k in z))
        return -sum(d_j * (z_j - log_sum) for z_j, d_j in zip(z, d))
    if name == "binary_cross_entropy":

        def log1pexp(x):  # log(1 + e^x) without overflow
            return max(x, 0.0) + math.log(1.0 + math.exp(-abs(x)))

        return sum(d_j * log1pexp(-z_j) + (1.0 - d_j) * log1pexp(z_j) for z_j, d_j in zip(z, d))
    raise ValueError(f"unknown loss {name!r}; valid losses are {', '.join(LOSS_NAMES)}")


def output_delta(y, d, z, activation, loss="squared_error"):
    """Error term of the output layer (tutorial §4.1.2).

    ``delta_j^(L) = dE/dz_j^(L) = (y_j^(L) - d_j) f^(L)'(z_j^(L))``.
    The tutorial derives it for an identity output, where ``f^(L)' = 1`` and
    ``delta_j^(L) = y_j^(L) - d_j``.

    Parameters
    ----------
    y : list of float
        Output ``y^(L)``.
    d : list of float
        Target ``d``.
    z : list of float
        Output pre-activation ``z^(L)``.
    activation : str
        Name of ``f^(L)``.

    Returns
    -------
    list of float
        ``delta^(L)``, one entry per output unit.

    Raises
    ------
    ValueError
        If the lengths differ or `activation` is unknown.
    """
    if not len(y) == len(d) == len(z):
        raise ValueError(f"y, d and z must have the same length; got {len(y)}, {len(d)} and {len(z)}")
    if loss == "cross_entropy":
        # E = -sum_k d_k (z_k - log sum_m e^(z_m)), so dE/dz_j = y_j sum_k d_k - d_j:
        # y_j - d_j when the targets of a sample sum to 1 (one-hot rows)
        total = sum(d)
        return [y_j * total - d_j for y_j, d_j in zip(y, d)]
    if loss == "binary_cross_entropy":
        # dE/dz_j = -d_j (1 - y_j) + (1 - d_j) y_j = y_j - d_j
        return [y_j - d_j for y_j, d_j in zip(y, d)]
    if _split_spec(activation)[0] == "softmax":
        # dE/dz_j = sum_k (y_k - d_k) dy_k/dz_j with dy_k/dz_j = y_k ([k == j] - y_j)
        return [
            sum((y[k] - d[k]) * y[k] * ((1.0 if k == j else 0.0) - y[j]) for k in range(len(y))) for j in range(len(y))
        ]
    return [(y_j - d_j) * activation_derivative(activation, z_j) for y_j, d_j, z_j in zip(y, d, z)]


def hidden_delta(delta_next, weights_next, z, activation):
    """Error term of a hidden layer ``l < L`` (tutorial §4.2.2).

    ``delta_j^(l) = (sum_k delta_k^(l+1) w_jk^(l+1)) f^(l)'(z_j^(l))``:
    the error of the layer above flows back through the weights that leave
    unit ``j``.

    Parameters
    ----------
    delta_next : list of float
        ``delta^(l+1)``, length ``n_(l+1)``.
    weights_next : list of list of float
        ``w^(l+1)`` with ``weights_next[j][k] = w_jk^(l+1)``, shape
        ``n_l x n_(l+1)``.
    z : list of float
        ``z^(l)``, length ``n_l``.
    activation : str
        Name of ``f^(l)``.

    Returns
    -------
    list of float
        ``delta^(l)``, length ``n_l``.

    Raises
    ------
    ValueError
        If the shapes do not match or `activation` is unknown.
    """
    if len(weights_next) != len(z):
        raise ValueError(f"weights_next must have len(z) = {len(z)} rows; got {len(weights_next)}")
    delta = []
    for j, z_j in enumerate(z):
        w_j = weights_next[j]
        if len(w_j) != len(delta_next):
            raise ValueError(f"weights_next[{j}] must have len(delta_next) = {len(delta_next)} entries; got {len(w_j)}")
        back = sum(delta_next[k] * w_j[k] for k in range(len(delta_next)))
        delta.append(back * activation_derivative(activation, z_j))
    return delta


def backward(weights, biases, activations, x, d, loss="squared_error"):
    """Forward and backward pass of one sample (tutorial §2.2-§4.3).

    Computes ``delta^(L)`` with :func:`output_delta`, then
    ``delta^(L-1), ..., delta^(1)`` with :func:`hidden_delta`, and the gradients
    ``dE/dw_ij^(l) = delta_j^(l) y_i^(l-1)`` and ``dE/db_j^(l) = delta_j^(l)``.

    Parameters
    ----------
    weights, biases, activations : list
        The network (see the module docstring).
    x : list of float
        One input sample.
    d : list of float
        Its target.

    Returns
    -------
    dict
        ``"E"`` : float, ``1/2 sum_j (y_j^(L) - d_j)^2``.
        ``"z"`` : list, as ``zs`` from :func:`forward` (``z[0]`` is ``None``).
        ``"y"`` : list, as ``ys`` from :func:`forward` (``y[0]`` is ``x``).
        ``"delta"`` : list of length ``L + 1``; ``delta[0]`` is ``None`` and
        ``delta[l]`` is ``delta^(l)``.
        ``"grad_weights"`` : list of ``L`` matrices,
        ``grad_weights[l-1][i][j] = dE/dw_ij^(l) = delta_j^(l) y_i^(l-1)``.
        ``"grad_biases"`` : list of ``L`` lists,
        ``grad_biases[l-1][j] = dE/db_j^(l) = delta_j^(l)``.

    Raises
    ------
    ValueError
        If the shapes do not match or an activation name is unknown.
    """
    zs, ys = forward(weights, biases, activations, x)
    n_layers = len(weights)
    E = _loss(loss, ys[n_layers], d, zs[n_layers])

    delta = [None] * (n_layers + 1)
    delta[n_layers] = output_delta(ys[n_layers], d, zs[n_layers], activations[n_layers - 1], loss)
    for layer in range(n_layers - 1, 0, -1):
        # weights[layer] holds w^(layer+1), the weights leaving this layer.
        delta[layer] = hidden_delta(delta[layer + 1], weights[layer], zs[layer], activations[layer - 1])

    grad_weights = [
        [[delta_j * y_i for delta_j in delta[layer]] for y_i in ys[layer - 1]] for layer in range(1, n_layers + 1)
    ]
    grad_biases = [list(delta[layer]) for layer in range(1, n_layers + 1)]
    return {
        "E": E,
        "z": zs,
        "y": ys,
        "delta": delta,
        "grad_weights": grad_weights,
        "grad_biases": grad_biases,
    }


_loss = loss


def _mean_loss(weights, biases, activations, X, D, loss="squared_error"):
    total = 0.0
    for x, d in zip(X, D):
        zs, ys = forward(weights, biases, activations, x)
        total += _loss(loss, ys[-1], d, zs[-1])
    return total / len(X)


def gradients(weights, biases, activations, X, D, loss="squared_error"):
    """Mean loss and its gradients over a mini-batch.

    With ``N = len(X)`` samples and ``E_n`` the squared error of sample ``n``,
    the loss is ``E = (1/N) sum_n E_n`` and its exact derivatives are the means
    of the per-sample ones from :func:`backward`:
    ``dE/dw_ij^(l) = (1/N) sum_n delta_j^(l),n y_i^(l-1),n`` and
    ``dE/db_j^(l) = (1/N) sum_n delta_j^(l),n``.

    Parameters
    ----------
    weights, biases, activations : list
        The network (see the module docstring).
    X : list of list of float
        Mini-batch of ``N >= 1`` input samples.
    D : list of list of float
        The ``N`` matching targets.

    Returns
    -------
    E : float
        Mean squared error over the batch.
    grad_weights : list of list of list of float
        ``dE/dw^(l)``, same shapes as `weights`.
    grad_biases : list of list of float
        ``dE/db^(l)``, same shapes as `biases`.

    Raises
    ------
    ValueError
        If the batch is empty, ``len(X) != len(D)``, or the shapes do not match.
    """
    _check_batch(X, D)
    n_samples = len(X)
    total_E = 0.0
    sum_w = [[[0.0] * len(row) for row in w] for w in weights]
    sum_b = [[0.0] * len(b) for b in biases]
    for x, d in zip(X, D):
        result = backward(weights, biases, activations, x, d, loss)
        total_E += result["E"]
        for acc, g in zip(sum_w, result["grad_weights"]):
            for acc_row, g_row in zip(acc, g):
                for j, g_ij in enumerate(g_row):
                    acc_row[j] += g_ij
        for acc, g in zip(sum_b, result["grad_biases"]):
            for j, g_j in enumerate(g):
                acc[j] += g_j
    grad_weights = [[[s / n_samples for s in row] for row in w] for w in sum_w]
    grad_biases = [[s / n_samples for s in b] for b in sum_b]
    return total_E / n_samples, grad_weights, grad_biases


def update(params, grads, lr):
    """One gradient-descent update ``p <- p - eta dE/dp`` (tutorial §3, §4.3).

    Parameters
    ----------
    params : float or nested list of float
        Parameters, e.g. `weights` (lists of matrices) or `biases`.
    grads : float or nested list of float
        ``dE/dp``, with the same nesting and shapes as `params`.
    lr : float
        The learning rate ``eta``.

    Returns
    -------
    float or nested list of float
        New parameters with the same nesting as `params`.

    Raises
    ------
    ValueError
        If `params` and `grads` have different lengths at some level.
    """
    if isinstance(params, list):
        if len(params) != len(grads):
            raise ValueError(f"params and grads must have the same shape; got lengths {len(params)} and {len(grads)}")
        return [update(p, g, lr) for p, g in zip(params, grads)]
    return params - lr * grads


def step(weights, biases, activations, X, D, lr, loss="squared_error"):
    """One gradient-descent step on a mini-batch.

    ``w_ij^(l) <- w_ij^(l) - eta dE/dw_ij^(l)`` and
    ``b_j^(l) <- b_j^(l) - eta dE/db_j^(l)`` (tutorial §3, §4.3), with the
    gradients of the mean loss from :func:`gradients`.

    Parameters
    ----------
    weights, biases, activations : list
        The network (see the module docstring); not modified.
    X : list of list of float
        Mini-batch of input samples.
    D : list of list of float
        The matching targets.
    lr : float
        The learning rate ``eta``.

    Returns
    -------
    E : float
        Mean squared error over the batch *before* the update.
    new_weights : list of list of list of float
        Updated weights (fresh lists).
    new_biases : list of list of float
        Updated biases (fresh lists).

    Raises
    ------
    ValueError
        As :func:`gradients`.
    """
    E, grad_weights, grad_biases = gradients(weights, biases, activations, X, D, loss)
    return E, update(weights, grad_weights, lr), update(biases, grad_biases, lr)


def numerical_gradients(weights, biases, activations, X, D, eps=1e-6, loss="squared_error"):
    """Central-difference gradients of the mean batch loss.

    For every parameter ``p`` (each ``w_ij^(l)`` and ``b_j^(l)``), one at a
    time on a copy of the network,
    ``dE/dp ~ (E(p + eps) - E(p - eps)) / (2 eps)`` where ``E`` is the mean
    squared error over the batch, as returned by :func:`gradients`. This is
    the O(N) forward passes method of tutorial §5, used to check
    backpropagation.

    Parameters
    ----------
    weights, biases, activations : list
        The network (see the module docstring); not modified.
    X : list of list of float
        Mini-batch of input samples.
    D : list of list of float
        The matching targets.
    eps : float, default 1e-6
        The step ``eps``.

    Returns
    -------
    grad_weights : list of list of list of float
        Estimates of ``dE/dw^(l)``, same shapes as `weights`.
    grad_biases : list of list of float
        Estimates of ``dE/db^(l)``, same shapes as `biases`.

    Raises
    ------
    ValueError
        As :func:`gradients`.
    """
    _check_batch(X, D)
    w_copy = [[[float(v) for v in row] for row in w] for w in weights]
    b_copy = [[float(v) for v in b] for b in biases]

    def central_difference(container, index):
        original = container[index]
        container[index] = original + eps
        e_plus = _mean_loss(w_copy, b_copy, activations, X, D, loss)
        container[index] = original - eps
        e_minus = _mean_loss(w_copy, b_copy, activations, X, D, loss)
        container[index] = original
        return (e_plus - e_minus) / (2.0 * eps)

    grad_weights = [[[central_difference(row, j) for j in range(len(row))] for row in w] for w in w_copy]
    grad_biases = [[central_difference(b, j) for j in range(len(b))] for b in b_copy]
    return grad_weights, grad_biases


__all__ = [
    "ACTIVATION_NAMES",
    "EXTRA_ACTIVATION_NAMES",
    "LOSS_NAMES",
    "softmax",
    "activation",
    "activation_derivative",
    "forward",
    "squared_error",
    "loss",
    "output_delta",
    "hidden_delta",
    "backward",
    "gradients",
    "update",
    "step",
    "numerical_gradients",
    "sgd_update",
    "adam_update",
]
