"""Loss functions by name, and which output activations each may follow.

* ``"squared_error"`` -- the tutorial's E = 1/2 sum_j (y_j - d_j)^2; any output activation.
* ``"cross_entropy"`` -- E = -sum_j d_j log y_j with a ``"softmax"`` output; the
  fused error term is delta^L = y - d and the loss is computed from z with
  log-sum-exp, so it stays finite for saturated outputs.
* ``"binary_cross_entropy"`` -- E = -sum_j [d_j log y_j + (1 - d_j) log(1 - y_j)]
  with a ``"sigmoid"`` output; delta^L = y - d, computed from z.

Targets outside a loss's domain (``TARGET_RANGE``: negative entries for
cross-entropy, entries outside [0, 1] for binary cross-entropy) are refused
with a ValueError: the formulas above give no meaningful loss for them.

Over a mini-batch every loss is the mean over samples.  Kernels:
``kernels.loss`` and ``kernels.output_delta``.
"""

from fastbp.kernels.losses import LOSS_CODES

LOSS_NAMES = tuple(LOSS_CODES)
REQUIRED_OUTPUT = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
# the targets each loss is defined for: d_j >= 0 (probabilities or weights of the classes), 0 <= d_j <= 1
TARGET_RANGE = {"cross_entropy": (0.0, float("inf")), "binary_cross_entropy": (0.0, 1.0)}


def check_loss(name):
    """``name`` if it is a known loss; ValueError listing the valid ones otherwise."""
    if not isinstance(name, str) or name not in LOSS_CODES:
        raise ValueError(f"unknown loss {name!r}; valid losses are {', '.join(LOSS_NAMES)}")
    return name


def check_pairing(loss, output_activation):
    """ValueError if ``loss`` cannot follow an output layer with ``output_activation`` (a parsed name)."""
    required = REQUIRED_OUTPUT.get(loss)
    if required is not None and output_activation != required:
        raise ValueError(
            f"loss {loss!r} needs a {required!r} output layer, got {output_activation!r} "
            f"(use activations=[..., {required!r}], or loss='squared_error')"
        )
