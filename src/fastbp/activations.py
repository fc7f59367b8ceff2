"""Activation functions by name: their kernel codes, parameters and the initialisation each suits.

The functions themselves are compiled in :mod:`fastbp.kernels`; this module
maps the names users write to the integer codes and parameters the kernels
take.  A name may carry its parameter in parentheses: ``"leaky_relu(0.2)"``
is a leaky ReLU of slope 0.2 below zero (default 0.01), ``"elu(0.5)"`` an
ELU with alpha 0.5 (default 1.0).  ``"gelu"`` is the exact form
z Phi(z) (Phi the standard normal distribution function, via erf), as
PyTorch's default.  ``"softmax"`` is for the output layer only.
"""

import math
import re

from .kernels import ACTIVATION_CODES

ACTIVATION_NAMES = tuple(ACTIVATION_CODES)
PARAMETER_DEFAULTS = {"leaky_relu": 0.01, "elu": 1.0}
OUTPUT_ONLY = ("softmax",)
_HE = ("relu", "leaky_relu", "elu", "gelu")

_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")


def parse_activation(spec):
    """(name, parameter) of an activation spec such as "tanh" or "leaky_relu(0.2)".

    ValueError, listing the valid names, for anything else.
    """
    valid = ", ".join(ACTIVATION_NAMES)
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None or match.group(1) not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {spec!r}; valid activations are {valid}")
    name, argument = match.group(1), match.group(2)
    if argument is None:
        return name, PARAMETER_DEFAULTS.get(name, 0.0)
    if name not in PARAMETER_DEFAULTS:
        raise ValueError(f"activation {name!r} takes no parameter, got {spec!r}")
    try:
        value = float(argument)
    except ValueError:
        raise ValueError(f"the parameter of {name!r} must be a number, got {spec!r}") from None
    if not math.isfinite(value) or (name == "elu" and value <= 0):
        raise ValueError(f"the parameter of {name!r} must be finite{' and > 0' if name == 'elu' else ''}, got {spec!r}")
    return name, value


def activation_code(spec):
    """The kernel code of an activation spec; ValueError listing the valid names otherwise."""
    return ACTIVATION_CODES[parse_activation(spec)[0]]


def init_bound(spec, fan_in, fan_out):
    """Half-width of the uniform distribution the initial weights of a layer are drawn from.

    relu, leaky_relu, elu, gelu: He uniform, sqrt(6 / fan_in), which keeps the
    variance of z through layers whose units are zero (or small) half of the
    time.  identity, sigmoid, tanh, softplus, softmax: Glorot (Xavier) uniform,
    sqrt(6 / (fan_in + fan_out)).
    """
    if parse_activation(spec)[0] in _HE:
        return math.sqrt(6.0 / fan_in)
    return math.sqrt(6.0 / (fan_in + fan_out))
