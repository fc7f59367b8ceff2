"""fastbp: backpropagation for dense networks with numba kernels in preallocated buffers.

>>> import fastbp
>>> net = fastbp.Network([2, 2, 1], activations=["sigmoid", "sigmoid"], seed=0)
>>> E, g = net.gradients([[1.0, 0.0]], [[1.0]])

Importing fastbp compiles nothing; each kernel is compiled (or loaded from
numba's on-disk cache) on its first call.
"""

from . import errors, kernels, reference
from ._parallel import get_num_threads, set_num_threads
from .network import Gradients, History, Network, Trace
from .numerical import numerical_gradient
from .optimizers import SGD, Adam, AdamW
from .persistence import load
from .schedules import ExponentialDecay, StepDecay

__version__ = "0.1.0"

__all__ = [
    "Network",
    "Gradients",
    "History",
    "Trace",
    "numerical_gradient",
    "load",
    "SGD",
    "Adam",
    "AdamW",
    "StepDecay",
    "ExponentialDecay",
    "set_num_threads",
    "get_num_threads",
    "errors",
    "kernels",
    "reference",
    "__version__",
]
