"""Learning-rate schedules for ``fit(..., lr_schedule=...)``.

A schedule maps the epoch index k (0-based, counted within one ``fit`` call)
to a factor; epoch k then trains with ``lr * factor(k)``.  The factors of all
epochs are computed before training starts, so the compiled loop runs
unchanged.  Any callable ``f(k) -> float > 0`` works as a schedule.
"""

import math


class StepDecay:
    """factor(k) = gamma ** (k // step_size): multiply the learning rate by gamma every step_size epochs."""

    def __init__(self, step_size, gamma=0.1):
        if not isinstance(step_size, int) or isinstance(step_size, bool) or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}")
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
        self.step_size = step_size
        self.gamma = float(gamma)

    def __call__(self, epoch):
        return self.gamma ** (epoch // self.step_size)

    def __repr__(self):
        return f"StepDecay(step_size={self.step_size}, gamma={self.gamma})"


class ExponentialDecay:
    """factor(k) = gamma ** k."""

    def __init__(self, gamma):
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma > 0):
            raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
        self.gamma = float(gamma)

    def __call__(self, epoch):
        return self.gamma**epoch

    def __repr__(self):
        return f"ExponentialDecay(gamma={self.gamma})"
