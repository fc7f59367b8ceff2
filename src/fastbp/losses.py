"""Loss functions by name.

The tutorial's squared error is the only loss so far:
E = 1/2 sum_j (y_j - d_j)^2 for one sample; over a mini-batch the mean over
samples.  Its kernels are ``kernels.squared_error`` and
``kernels.output_delta_squared_error``.
"""

LOSS_NAMES = ("squared_error",)


def check_loss(name):
    """``name`` if it is a known loss; ValueError listing the valid ones otherwise."""
    if not isinstance(name, str) or name not in LOSS_NAMES:
        raise ValueError(f"unknown loss {name!r}; valid losses are {', '.join(LOSS_NAMES)}")
    return name
