"""``fastbp.jit``: a whole network that your own ``@numba.njit`` code can call, differentiate and train.

>>> import numba, numpy as np, fastbp
>>> from fastbp import jit
>>> net = fastbp.Network([4, 16, 1], ["tanh", "identity"], seed=0)
>>> model = net.to_jit(max_batch=64)          # shares net's parameters
>>> @numba.njit
... def train(model, X, D, steps, lr):
...     for _ in range(steps):
...         jit.sgd_step(model, X, D, lr)
>>> train(model, X, D, 100, 0.1)              # net.forward now sees the trained weights

``forward``, ``loss_and_gradient``, ``backward`` (the vector-Jacobian product, for a loss of your own) and
``sgd_step`` validate their arguments when called from Python; inside compiled code they are the compiled
functions themselves and check nothing unless the model was made with ``to_jit(..., checked=True)``.
Optimizers: ``fastbp.kernels.optimizer_update`` on the gradient of ``loss_and_gradient``.
"""

from .nn.jit_model import backward, forward, loss_and_gradient, sgd_step, to_jit

__all__ = ["forward", "loss_and_gradient", "backward", "sgd_step", "to_jit"]
