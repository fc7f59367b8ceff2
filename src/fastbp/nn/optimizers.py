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
import numbers

import numpy as np

from fastbp import kernels

# step counts above this could overflow Adam's int64 step number inside the compiled loop
MAX_STEP_COUNT = 2**62


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


class _Hyperparameter:
    """A hyperparameter attribute checked on every assignment, with the constructor's own rule."""

    def __init__(self, low=None, high=None, low_open=False, high_open=False):
        self.bounds = dict(low=low, high=high, low_open=low_open, high_open=high_open)

    def __set_name__(self, owner, name):
        self.name = name
        self.slot = "_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.slot)

    def __set__(self, obj, value):
        setattr(obj, self.slot, _check(value, self.name, **self.bounds))


def _check_state_array(value, name):
    """``value`` if it can be an optimizer state vector (1-D, float, C-contiguous, writeable), else an error."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a 1-D float32 or float64 numpy array, got {type(value).__name__}"
            + (" (call reset() to forget the state)" if value is None else "")
        )
    if value.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {value.dtype}")
    if value.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one entry per parameter), got shape {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous, got a strided view (pass a copy: np.ascontiguousarray)")
    if not value.flags.writeable:
        raise ValueError(f"{name} must be writeable, got a read-only array")
    return value


class Optimizer:
    """Base class: hyperparameters, and state vectors made for one network on first use.

    Every attribute is checked when it is set and again, with the network's
    size and dtype, each time the optimizer is used (``bind``), so nothing
    that reaches the compiled update can be out of shape or out of range.
    ``state1`` and ``state2`` (None until first use) are 1-D arrays of the
    network's dtype with one entry per parameter, or 0 entries when the rule
    keeps no such state; ``reset()`` forgets them.
    """

    code: int | None = None
    name: str | None = None
    lr = _Hyperparameter(0.0, low_open=True)

    def __init__(self, lr):
        self.lr = lr
        self.reset()

    @property
    def state1(self):
        """SGD: the velocity (momentum > 0); Adam/AdamW: the first moment m.  None until first use."""
        return self._state1

    @state1.setter
    def state1(self, value):
        self._state1 = _check_state_array(value, "state1")

    @property
    def state2(self):
        """Adam/AdamW: the second moment v (0 entries for SGD).  None until first use."""
        return self._state2

    @state2.setter
    def state2(self, value):
        self._state2 = _check_state_array(value, "state2")

    @property
    def step_count(self):
        """The number of updates made (Adam's t), an int >= 0."""
        return self._step_count

    @step_count.setter
    def step_count(self, value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
            raise TypeError(f"step_count must be an integer, got {value!r}")
        if not 0 <= int(value) <= MAX_STEP_COUNT:
            raise ValueError(f"step_count must be in [0, {MAX_STEP_COUNT}], got {int(value)}")
        self._step_count = int(value)

    def hyper(self):
        """float64 (N_HYPER,) array for ``kernels.optimizer_update``."""
        raise NotImplementedError

    def _needs_state(self):
        return 0

    def _check_consistent(self):
        """Rules that tie hyperparameters together (checked at use, as each can be set alone)."""

    def bind(self, n_params, dtype):
        """Check everything the compiled update will read, for a network of n_params parameters of ``dtype``,
        and make the state vectors on first use.  ValueError/TypeError naming the attribute, with the
        optimizer unchanged, if anything does not fit.

        An empty state that the rule needs now (an SGD given momentum after it was used without) starts at 0
        if no step was made yet, and is refused otherwise.
        """
        dtype = np.dtype(dtype)
        self._check_consistent()
        self.step_count = self._step_count  # a subclass or __dict__ edit could have bypassed the setter
        n_state = self._needs_state()
        states = []
        for k, name in ((1, "state1"), (2, "state2")):
            state = getattr(self, "_" + name)
            if state is not None:
                _check_state_array(state, name)  # again: the array itself can be changed in place
                if state.shape[0] not in (0, n_params) or state.dtype != dtype:
                    raise ValueError(
                        f"this {type(self).__name__}'s {name} holds {state.shape[0]} {state.dtype} entries; the "
                        f"network has {n_params} {dtype} parameters: "
                        "use a new optimizer per network (or reset() this one)"
                    )
            needed = n_params if n_state >= k else 0
            if state is not None and needed and state.shape[0] == 0:
                if self._step_count:
                    raise ValueError(
                        f"this {type(self).__name__}'s {name} is empty, but after {self._step_count} steps its "
                        f"rule needs one entry per parameter ({n_params}): call reset() to start afresh"
                    )
                state = None
            if state is None:
                state = np.zeros(needed, dtype=dtype)
            states.append(state)
        self._state1, self._state2 = states
        return self

    def reset(self):
        """Forget the state (velocity, moments, step count)."""
        self._state1 = self._state2 = None
        self._step_count = 0

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
    momentum = _Hyperparameter(0.0, 1.0, high_open=True)
    weight_decay = _Hyperparameter(0.0)

    def __init__(self, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr)
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self._check_consistent()

    @property
    def nesterov(self):
        """Nesterov momentum (needs momentum > 0)."""
        return self._nesterov

    @nesterov.setter
    def nesterov(self, value):
        self._nesterov = bool(value)

    def _check_consistent(self):
        if self._nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")

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
        Adam: added to the gradient (L2).  AdamW: decoupled, ``theta *= 1 - lr weight_decay``.
    """

    code = kernels.ADAM
    name = "adam"
    _default_weight_decay = 0.0
    beta1 = _Hyperparameter(0.0, 1.0, high_open=True)
    beta2 = _Hyperparameter(0.0, 1.0, high_open=True)
    eps = _Hyperparameter(0.0, low_open=True)
    weight_decay = _Hyperparameter(0.0)

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=None):
        super().__init__(lr)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = self._default_weight_decay if weight_decay is None else weight_decay

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
    """Adam with decoupled weight decay (Loshchilov and Hutter): ``theta *= 1 - lr weight_decay``, default 0.01."""

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
