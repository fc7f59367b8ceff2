"""Activation functions by name: their kernel codes, parameters and the initialisation each suits.

The functions themselves are compiled in :mod:`fastbp.kernels`; this module
maps the names users write to the integer codes and parameters the kernels
take.  A name may carry its parameter in parentheses: ``"leaky_relu(0.2)"``
is a leaky ReLU of slope 0.2 below zero (default 0.01), ``"elu(0.5)"`` an
ELU with alpha 0.5 (default 1.0).  ``"gelu"`` is the exact form
z Phi(z) (Phi the standard normal distribution function, via erf), as
PyTorch's default.  ``"softmax"`` is for the output layer only.
"""

import functools
import math
import re
from typing import NamedTuple

from fastbp.kernels import activations as kernels


class Activation(NamedTuple):
    """One activation: what users write, the kernels' code, its parameter's default (None: it takes none),
    how a layer of it is initialised, and whether it may only be the output layer's."""

    name: str
    code: int
    default_parameter: float | None
    init: str  # "he": sqrt(6 / fan_in); "glorot": sqrt(6 / (fan_in + fan_out))
    output_only: bool


ACTIVATIONS = {
    row.name: row
    for row in (
        Activation("identity", kernels.IDENTITY, None, "glorot", False),
        Activation("sigmoid", kernels.SIGMOID, None, "glorot", False),
        Activation("tanh", kernels.TANH, None, "glorot", False),
        Activation("relu", kernels.RELU, None, "he", False),
        Activation("leaky_relu", kernels.LEAKY_RELU, 0.01, "he", False),
        Activation("elu", kernels.ELU, 1.0, "he", False),
        Activation("softplus", kernels.SOFTPLUS, None, "glorot", False),
        Activation("gelu", kernels.GELU, None, "he", False),
        Activation("softmax", kernels.SOFTMAX, None, "glorot", True),
    )
}

ACTIVATION_NAMES = tuple(ACTIVATIONS)
PARAMETER_DEFAULTS = {
    name: row.default_parameter for name, row in ACTIVATIONS.items() if row.default_parameter is not None
}
OUTPUT_ONLY = tuple(name for name, row in ACTIVATIONS.items() if row.output_only)

_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\(\s*([^()]*?)\s*\))?\s*$")


def parse_activation(spec):
    """(name, parameter) of an activation spec such as "tanh" or "leaky_relu(0.2)".

    ValueError, listing the valid names, for anything else.
    """
    if isinstance(spec, str):
        return _parse(spec)  # once per spec and process
    raise ValueError(f"unknown activation {spec!r}; valid activations are {', '.join(ACTIVATION_NAMES)}")


@functools.lru_cache(maxsize=256)
def _parse(spec):
    valid = ", ".join(ACTIVATION_NAMES)
    match = _SPEC.match(spec)
    if match is None or match.group(1) not in ACTIVATIONS:
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
    return ACTIVATIONS[parse_activation(spec)[0]].code


def init_bound(spec, fan_in, fan_out):
    """Half-width of the uniform distribution the initial weights of a layer are drawn from.

    relu, leaky_relu, elu, gelu: He uniform, sqrt(6 / fan_in), which keeps the
    variance of z through layers whose units are zero (or small) half of the
    time.  identity, sigmoid, tanh, softplus, softmax: Glorot (Xavier) uniform,
    sqrt(6 / (fan_in + fan_out)).
    """
    if ACTIVATIONS[parse_activation(spec)[0]].init == "he":
        return math.sqrt(6.0 / fan_in)
    return math.sqrt(6.0 / (fan_in + fan_out))
