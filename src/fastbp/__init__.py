"""fastbp: backpropagation for dense networks with numba kernels in preallocated buffers.

>>> import fastbp
>>> net = fastbp.Network([2, 2, 1], activations=["sigmoid", "sigmoid"], seed=0)
>>> E, g = net.gradients([[1.0, 0.0]], [[1.0]])

Importing fastbp compiles nothing; each kernel is compiled (or loaded from
numba's on-disk cache) on its first call.

The package in layers, each importing only the ones below it: ``kernels`` (the numba kernels), ``engine``
(whole-network compiled passes), ``nn`` (Network and what it uses), ``integrations`` (scikit-learn, Dask:
``fastbp.sklearn`` and ``fastbp.distributed``) and ``tutorial`` (the reference, the exercises, the command).
"""

import sys

from . import errors, kernels
from .engine._threaded import get_num_threads, set_num_threads
from .nn.history import History, Trace
from .nn.layout import Gradients
from .nn.network import Network, load
from .nn.optimizers import SGD, Adam, AdamW
from .nn.schedules import ExponentialDecay, StepDecay
from .tutorial import reference
from .tutorial.numerical import numerical_gradient

sys.modules[__name__ + ".reference"] = reference  # `import fastbp.reference`, as before the tutorial/ folder

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
