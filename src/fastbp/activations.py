"""Activation functions by name: their kernel codes and the initialisation each suits.

The functions themselves are compiled in :mod:`fastbp.kernels`
(``activation_forward``/``activation_derivative`` and one pair per name);
this module maps the names users write to the integer codes the kernels take.
"""

import math

from .kernels import ACTIVATION_CODES

ACTIVATION_NAMES = tuple(ACTIVATION_CODES)


def activation_code(name):
    """The kernel code of activation ``name``; ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in ACTIVATION_CODES:
        raise ValueError(f"unknown activation {name!r}; valid activations are {', '.join(ACTIVATION_NAMES)}")
    return ACTIVATION_CODES[name]


def init_bound(name, fan_in, fan_out):
    """Half-width of the uniform distribution the initial weights of a layer are drawn from.

    relu: He uniform, sqrt(6 / fan_in), which keeps the variance of z through
    layers whose units are zero half of the time.  identity, sigmoid, tanh:
    Glorot (Xavier) uniform, sqrt(6 / (fan_in + fan_out)).
    """
    if name == "relu":
        return math.sqrt(6.0 / fan_in)
    return math.sqrt(6.0 / (fan_in + fan_out))
