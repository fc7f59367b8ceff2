"""The estimators' ``_optimizer``: scikit-learn's SGDOptimizer and AdamOptimizer, their attributes and
schedules, with the state in flat vectors packed like the parameters; the steps themselves run in
``_compiled.fit_epoch``.
"""

import numbers

import numpy as np

from fastbp.integrations.sklearn._compiled import ADAM_RULE, SGD_RULE
from fastbp.nn.validation import check_real_number


def _state_vector(value, name, n_params, dtype):
    """value as a C-contiguous (n_params,) vector of dtype; ValueError if it is not one of that length."""
    if not isinstance(value, np.ndarray) or value.shape != (n_params,) or not np.issubdtype(value.dtype, np.floating):
        shape = getattr(value, "shape", type(value).__name__)
        raise ValueError(f"_optimizer.{name} must be a float array of shape ({n_params},), got {shape}")
    return np.ascontiguousarray(value, dtype=dtype)


def _real(value, name):
    return check_real_number(value, f"_optimizer.{name}")


class SGDOptimizer:
    """scikit-learn's SGD with momentum: learning_rate follows ``lr_schedule`` ("constant", "invscaling":
    learning_rate_init / (t + 1)^power_t after each epoch, "adaptive": divided by 5 when training stalls)."""

    def __init__(self, n_params, dtype, learning_rate_init, lr_schedule, momentum, nesterov, power_t):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t
        self.velocity = np.zeros(n_params, dtype=dtype)

    def packed(self, n_params, dtype):
        """The ``opt`` tuple of ``_compiled.fit_epoch``, checked (the state a user may have replaced)."""
        self.velocity = _state_vector(self.velocity, "velocity", n_params, dtype)
        lr, momentum = _real(self.learning_rate, "learning_rate"), _real(self.momentum, "momentum")
        return (SGD_RULE, lr, momentum, bool(self.nesterov), 0.0, 0.0, 1.0, 0, self.velocity, self.velocity)

    def after_epoch(self, t, lr_t):
        pass

    def foresees_learning_rates(self):
        """True unless the schedule is adaptive, whose changes depend on the losses."""
        return self.lr_schedule != "adaptive"

    def epoch_learning_rates(self, time_step, n_samples, n_epochs):
        """The learning rates of the next n_epochs epochs, the fit's ``t_`` being time_step (with the schedule's
        steps in between; see :meth:`foresees_learning_rates`)."""
        rates = [_real(self.learning_rate, "learning_rate")]
        for e in range(1, n_epochs):
            rates.append(self._invscaled(time_step + e * n_samples) if self.lr_schedule == "invscaling" else rates[0])
        return rates

    def _invscaled(self, time_step):
        return float(self.learning_rate_init) / (time_step + 1) ** self.power_t

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = self._invscaled(time_step)

    def trigger_stopping(self, msg, verbose):
        """True to stop; with the adaptive schedule, False after dividing the learning rate by 5 while it is
        above 1e-6."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:f}")
        return False


class AdamOptimizer:
    """scikit-learn's Adam: after each step ``learning_rate`` is the bias-corrected step size
    learning_rate_init sqrt(1 - beta_2^t) / (1 - beta_1^t)."""

    def __init__(self, n_params, dtype, learning_rate_init, beta_1, beta_2, epsilon):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m = np.zeros(n_params, dtype=dtype)
        self.v = np.zeros(n_params, dtype=dtype)

    def packed(self, n_params, dtype):
        """The ``opt`` tuple of ``_compiled.fit_epoch``, checked (the state a user may have replaced)."""
        self.m = _state_vector(self.m, "m", n_params, dtype)
        self.v = _state_vector(self.v, "v", n_params, dtype)
        if isinstance(self.t, bool) or not isinstance(self.t, numbers.Integral) or self.t < 0:
            raise ValueError(f"_optimizer.t must be an integer >= 0, got {self.t!r}")
        lr = _real(self.learning_rate_init, "learning_rate_init")
        betas = _real(self.beta_1, "beta_1"), _real(self.beta_2, "beta_2")
        return (ADAM_RULE, lr, 0.0, False, *betas, _real(self.epsilon, "epsilon"), int(self.t), self.m, self.v)

    def after_epoch(self, t, lr_t):
        self.t = int(t)
        self.learning_rate = float(lr_t)

    def foresees_learning_rates(self):
        return True

    def epoch_learning_rates(self, time_step, n_samples, n_epochs):
        """learning_rate_init for each of the next n_epochs epochs (the steps scale it themselves)."""
        return [_real(self.learning_rate_init, "learning_rate_init")] * n_epochs

    def iteration_ends(self, time_step):
        pass

    def trigger_stopping(self, msg, verbose):
        if verbose:
            print(msg + " Stopping.")
        return True
