"""Optimizers: SGD (with momentum, Nesterov and L2 weight decay), Adam and AdamW.

An optimizer object holds its hyperparameters and its state (velocity, or
Adam's moment estimates and step count) in preallocated flat vectors shaped
like the network's parameters, so ``net.fit(..., optimizer=opt)`` called
again continues where it stopped.  The update rules are PyTorch's; the
compiled kernel is ``kernels.optimizer_update`` and the tests compare it with
a NumPy transcription of each rule and, when PyTorch is installed, with
``torch.optim`` step by step.

>>> opt = fastbp.Adam(lr=1e-3)
>>> net.fit(X, D, epochs=10, optimizer=opt)    # state created for net
>>> net.fit(X, D, epochs=10, optimizer=opt)    # continues: same m, v and step count
"""

import math

import numpy as np

from . import kernels


def _check(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")
    return value


class Optimizer:
    """Base class: hyperparameters, and state vectors made for one network on first use."""

    code = None
    name = None

    def __init__(self, lr):
        self.lr = _check(lr, "lr", 0.0, low_open=True)
        self.state1 = None
        self.state2 = None
        self.step_count = 0  # number of updates made (Adam's t)

    def hyper(self):
        """float64 (N_HYPER,) array for ``kernels.optimizer_update``."""
        raise NotImplementedError

    def _needs_state(self):
        return 0

    def bind(self, n_params, dtype):
        """Make (or check) the state vectors for a network of n_params parameters of ``dtype``."""
        n_state = self._needs_state()
        if self.state1 is None:
            size = n_params if n_state >= 1 else 0
            self.state1 = np.zeros(size, dtype=dtype)
            self.state2 = np.zeros(n_params if n_state >= 2 else 0, dtype=dtype)
        elif n_state and (self.state1.shape[0] != n_params or self.state1.dtype != dtype):
            raise ValueError(
                f"this {type(self).__name__} holds state for {self.state1.shape[0]} {self.state1.dtype} parameters; "
                f"the network has {n_params} {np.dtype(dtype)}: use a new optimizer per network"
            )
        return self

    def reset(self):
        """Forget the state (velocity, moments, step count)."""
        self.state1 = self.state2 = None
        self.step_count = 0

    def __repr__(self):
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def get_params(self):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent: theta -= lr g, optionally with momentum (Nesterov) and L2 weight decay.

    Parameters
    ----------
    lr : float > 0
    momentum : float in [0, 1)
    nesterov : bool
        Nesterov momentum (needs momentum > 0).
    weight_decay : float >= 0
        Adds weight_decay * theta to the gradient (L2 regularisation; biases too, as in PyTorch).
    """

    code = kernels.SGD
    name = "sgd"

    def __init__(self, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = _check(momentum, "momentum", 0.0, 1.0, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.weight_decay = _check(weight_decay, "weight_decay", 0.0)

    def _needs_state(self):
        return 1 if self.momentum > 0 else 0

    def is_plain(self):
        """True for theta -= lr g with nothing else (the architecture-specialised code does only this)."""
        return self.momentum == 0.0 and self.weight_decay == 0.0

    def hyper(self):
        h = np.zeros(kernels.N_HYPER)
        h[kernels.H_LR] = self.lr
        h[kernels.H_MOMENTUM] = self.momentum
        h[kernels.H_WEIGHT_DECAY] = self.weight_decay
        h[kernels.H_NESTEROV] = 1.0 if self.nesterov else 0.0
        return h

    def get_params(self):
        return dict(lr=self.lr, momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay)


class Adam(Optimizer):
    """Adam (Kingma and Ba), with PyTorch's bias correction and eps placement; weight_decay is L2.

    Parameters
    ----------
    lr : float > 0
    beta1, beta2 : float in [0, 1)
    eps : float > 0
    weight_decay : float >= 0
        Adam: added to the gradient (L2).  AdamW: decoupled, theta *= 1 - lr weight_decay.
    """

    code = kernels.ADAM
    name = "adam"
    _default_weight_decay = 0.0

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=None):
        super().__init__(lr)
        self.beta1 = _check(beta1, "beta1", 0.0, 1.0, high_open=True)
        self.beta2 = _check(beta2, "beta2", 0.0, 1.0, high_open=True)
        self.eps = _check(eps, "eps", 0.0, low_open=True)
        if weight_decay is None:
            weight_decay = self._default_weight_decay
        self.weight_decay = _check(weight_decay, "weight_decay", 0.0)

    def _needs_state(self):
        return 2

    def is_plain(self):
        return False

    def hyper(self):
        h = np.zeros(kernels.N_HYPER)
        h[kernels.H_LR] = self.lr
        h[kernels.H_BETA1] = self.beta1
        h[kernels.H_BETA2] = self.beta2
        h[kernels.H_EPS] = self.eps
        h[kernels.H_WEIGHT_DECAY] = self.weight_decay
        return h

    def get_params(self):
        return dict(lr=self.lr, beta1=self.beta1, beta2=self.beta2, eps=self.eps, weight_decay=self.weight_decay)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): theta *= 1 - lr weight_decay, default 0.01."""

    code = kernels.ADAMW
    name = "adamw"
    _default_weight_decay = 0.01


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(optimizer, lr):
    """The Optimizer for fit's ``optimizer`` and ``lr`` arguments.

    None or a name: a new optimizer of that kind with ``lr`` (or its default
    when lr is None).  An Optimizer: itself (``lr`` must then be None: the
    object carries its own).
    """
    if optimizer is None:
        optimizer = "sgd"
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; valid optimizers are {', '.join(OPTIMIZERS)}")
        cls = OPTIMIZERS[optimizer]
        return cls() if lr is None else cls(lr=lr)
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            raise ValueError(f"lr={lr!r} given together with an optimizer object: set lr on {optimizer!r} instead")
        return optimizer
    raise TypeError(f"optimizer must be a name ({', '.join(OPTIMIZERS)}) or a fastbp optimizer, got {optimizer!r}")
