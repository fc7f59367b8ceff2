"""The activation functions of the pure-Python reference, one scalar at a time (softmax: a whole layer).

``f(z)`` and ``f'(z)`` of tutorial §2.3 (identity, sigmoid, tanh, ReLU) and, beyond the tutorial, the
activations of :data:`EXTRA_ACTIVATION_NAMES`. A name may carry its parameter: ``"leaky_relu(0.2)"``.
Re-exported by :mod:`fastbp.reference`; imports only :mod:`math`.
"""

import math

ACTIVATION_NAMES = ("identity", "sigmoid", "tanh", "relu")
# beyond the tutorial (issue 6): written from their textbook definitions
EXTRA_ACTIVATION_NAMES = ("leaky_relu", "elu", "softplus", "gelu", "softmax")
_DEFAULT_PARAMETER = {"leaky_relu": 0.01, "elu": 1.0}


def _unknown_activation(name):
    valid = ", ".join(repr(n) for n in ACTIVATION_NAMES + EXTRA_ACTIVATION_NAMES)
    return ValueError(f"unknown activation {name!r}; valid names are {valid}")


def _split_spec(spec):
    """("leaky_relu", 0.2) from "leaky_relu(0.2)"; (name, default) from a bare name."""
    name, _, rest = spec.partition("(")
    name = name.strip()
    if name not in ACTIVATION_NAMES + EXTRA_ACTIVATION_NAMES:
        raise _unknown_activation(spec)
    if rest:
        return name, float(rest.rstrip().rstrip(")"))
    return name, _DEFAULT_PARAMETER.get(name, 0.0)


def softmax(z):
    """y_j = e^(z_j) / sum_k e^(z_k) of a whole layer, computed with z_j - max_k z_k (same value, no overflow)."""
    top = max(z)
    e = [math.exp(z_j - top) for z_j in z]
    total = sum(e)
    return [e_j / total for e_j in e]


def _sigmoid(z):
    # Both branches only ever call exp on a non-positive number, so neither
    # overflows for any finite z.
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def activation(name, z):
    """Apply the activation function ``f`` named `name` to the scalar `z`.

    Tutorial §2.3: ``sigma(x) = 1 / (1 + e^-x)``, ``tanh(x)``,
    ``ReLU(x) = max(0, x)``, and the identity ``f(u) = u`` of §4.1.2.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATION_NAMES`: ``"identity"``, ``"sigmoid"``,
        ``"tanh"`` or ``"relu"``.
    z : float
        The pre-activation ``z_j^(l)``.

    Returns
    -------
    float
        ``y_j^(l) = f(z_j^(l))``. The sigmoid is evaluated as
        ``e^z / (1 + e^z)`` for ``z < 0`` so that it never overflows.

    Raises
    ------
    ValueError
        If `name` is not a known activation; the message lists the valid names.
    """
    name, a = _split_spec(name)
    if name == "identity":
        return float(z)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return math.tanh(z)
    if name == "relu":
        return float(z) if (z > 0.0 or z != z) else 0.0  # NaN stays NaN, as in numpy and PyTorch
    if name == "leaky_relu":
        return float(z) if z > 0.0 else a * z
    if name == "elu":
        return float(z) if z > 0.0 else a * (math.exp(z) - 1.0)
    if name == "softplus":
        # log(1 + e^z), written so that e^x is only taken of x <= 0
        return max(z, 0.0) + math.log(1.0 + math.exp(-abs(z)))
    if name == "gelu":
        return z * 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    raise ValueError(f"{name!r} is not an elementwise activation (softmax needs the whole layer)")


def activation_derivative(name, z):
    """Derivative ``f'(z)`` of the activation function named `name`.

    Tutorial §2.3: ``sigma'(x) = sigma(x) (1 - sigma(x))``,
    ``tanh'(x) = 1 - tanh^2(x)``, ``ReLU'(x) = 1 if x > 0 else 0`` (so
    ``ReLU'(0) = 0``), and ``1`` for the identity (§4.1.2).

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATION_NAMES`.
    z : float
        The pre-activation ``z_j^(l)`` (not the output ``y_j^(l)``).

    Returns
    -------
    float
        ``f'(z_j^(l)) = dy_j^(l) / dz_j^(l)``.

    Raises
    ------
    ValueError
        If `name` is not a known activation; the message lists the valid names.
    """
    name, a = _split_spec(name)
    if name == "identity":
        return 1.0
    if name == "sigmoid":
        s = _sigmoid(z)
        return s * (1.0 - s)
    if name == "tanh":
        t = math.tanh(z)
        return 1.0 - t * t
    if name == "relu":
        return 1.0 if z > 0.0 else 0.0
    if name == "leaky_relu":
        return 1.0 if z > 0.0 else a
    if name == "elu":
        return 1.0 if z > 0.0 else a * math.exp(z)
    if name == "softplus":
        return _sigmoid(z)
    if name == "gelu":
        # d/dz [z Phi(z)] = Phi(z) + z phi(z)
        return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) + z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    raise ValueError(f"{name!r} has no scalar derivative (the softmax Jacobian is a matrix)")
