"""The estimators' network as scikit-learn keeps it: parameters packed in one vector (every W, then every b),
scikit-learn's initialisation, and the checked tuples that ``_compiled`` reads.

Everything that reaches compiled code goes through here first: the layer sizes, the parameters (also when a
user has replaced ``coefs_`` or ``intercepts_``), the data (dense, or a CSR matrix whose structure is
checked) and the sample weights.
"""

import numpy as np
import scipy.sparse as sp

from fastbp.integrations.sklearn._compiled import (
    BINARY_LOG_LOSS,
    EXP,
    LOG_LOSS,
    POISSON_LOSS,
    SQUARED_LOSS,
    loss_and_gradient,
    predict,
)
from fastbp.kernels.activations import IDENTITY, RELU, SIGMOID, SOFTMAX, TANH

HIDDEN_CODES = {"identity": IDENTITY, "logistic": SIGMOID, "tanh": TANH, "relu": RELU}


OUTPUTS = {  # scikit-learn's output activation: (its code, the loss scikit-learn pairs with it)
    "identity": (IDENTITY, SQUARED_LOSS),
    "softmax": (SOFTMAX, LOG_LOSS),
    "logistic": (SIGMOID, BINARY_LOG_LOSS),
    "exp": (EXP, POISSON_LOSS),
}


_NO_ROWS = np.zeros(0, dtype=np.int64)


class PackedLayout:
    """Where each layer's W (sizes[l], sizes[l+1]) and b (sizes[l+1],) sit in a flat parameter vector packed
    as scikit-learn packs it, and the ``layout`` tuple of ``_compiled`` for a hidden and an output activation.
    """

    def __init__(self, sizes, activation, out_activation):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        counts = self.sizes[:-1] * self.sizes[1:]
        self.w_offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        n_weights = int(counts.sum())
        self.b_offsets = (n_weights + np.concatenate([[0], np.cumsum(self.sizes[1:])[:-1]])).astype(np.int64)
        self.n_params = n_weights + int(self.sizes[1:].sum())
        unit_offsets = np.concatenate([[0], np.cumsum(self.sizes[1:])]).astype(np.int64)
        out_code, loss_code = OUTPUTS[out_activation]
        self.layout = (self.sizes, HIDDEN_CODES[activation], out_code, loss_code, self.w_offsets, self.b_offsets,
                       unit_offsets)  # fmt: skip

    def views(self, theta):
        """(coefs, intercepts): lists of views of theta (n_params,), shapes (sizes[l], sizes[l+1]) and
        (sizes[l+1],)."""
        coefs, intercepts = [], []
        for layer, (n_below, n_above) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            start = self.w_offsets[layer]
            coefs.append(theta[start : start + n_below * n_above].reshape(n_below, n_above))
            intercepts.append(theta[self.b_offsets[layer] : self.b_offsets[layer] + n_above])
        return coefs, intercepts

    def pack(self, coefs, intercepts, dtype):
        """A new flat vector of ``dtype`` from lists of arrays shaped as :meth:`views` gives them; ValueError
        naming the first one that is not."""
        theta = np.empty(self.n_params, dtype=dtype)
        n_layers = len(self.sizes) - 1
        for name, given in (("coefs_", coefs), ("intercepts_", intercepts)):
            if not isinstance(given, (list, tuple)) or len(given) != n_layers:
                raise ValueError(f"{name} must be a list of {n_layers} arrays, one per layer, got {given!r:.80}")
        for layer, (W, b) in enumerate(zip(*self.views(theta))):
            for name, target, value in (("coefs_", W, coefs[layer]), ("intercepts_", b, intercepts[layer])):
                value = np.asarray(value)
                if value.shape != target.shape or not np.issubdtype(value.dtype, np.number):
                    raise ValueError(
                        f"{name}[{layer}] must be a numeric array of shape {target.shape}, got "
                        f"{value.dtype} {value.shape}"
                    )
                target[...] = value
        return theta

    def work(self, capacity, n_features, dtype, gather):
        """``work`` for batches of up to ``capacity`` samples (room to gather dense input rows if ``gather``)."""
        units = int(self.sizes[1:].sum())
        x_rows = np.empty((capacity if gather else 0, n_features), dtype=dtype)
        return (capacity, x_rows, np.empty(capacity * units, dtype=dtype), np.empty(capacity * units, dtype=dtype))


def initial_parameters(rng, sizes, activation, dtype):
    """scikit-learn's start: for each layer in turn, W then b drawn from rng (a RandomState) uniform in
    +-sqrt(f / (fan_in + fan_out)), f = 2 for logistic units and 6 otherwise; packed, in ``dtype``."""
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(rng.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(rng.uniform(-bound, bound, fan_out))
    return np.concatenate([c.ravel() for c in coefs] + intercepts).astype(dtype)


def as_data(X, D, sample_weight, dtype):
    """The ``data`` tuple for X (n_samples, n_features), dense or a scipy sparse matrix, targets D
    (n_samples, n_outputs) or None, and sample_weight (n_samples,) or None, all in ``dtype``."""
    n_samples, n_features = X.shape
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dtype)
        X.check_format(full_check=True)  # compiled code trusts the indices
        dense = np.zeros((0, n_features), dtype=dtype)
        csr = (X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64))
        sparse = True
    else:
        dense = np.ascontiguousarray(X, dtype=dtype)
        csr = (np.zeros(0, dtype=dtype), _NO_ROWS, np.zeros(1, dtype=np.int64))
        sparse = False
    D = np.zeros((n_samples, 0), dtype=dtype) if D is None else np.ascontiguousarray(D, dtype=dtype)
    weighted = sample_weight is not None
    weights = np.ascontiguousarray(sample_weight, dtype=dtype) if weighted else np.zeros(0, dtype=dtype)
    return (dense, *csr, sparse, D, weights, weighted)


def outputs(packed, theta, X, capacity=1024):
    """The output layer (n_samples, n_outputs) for X (dense or sparse), in theta's dtype."""
    n_samples = X.shape[0]
    data = as_data(X, None, None, theta.dtype)
    work = packed.work(max(1, min(capacity, n_samples)), X.shape[1], theta.dtype, gather=False)
    out = np.empty((n_samples, int(packed.sizes[-1])), dtype=theta.dtype)
    predict(theta, packed.layout, data, _NO_ROWS, n_samples, work, out)
    return out


def full_batch_loss_and_gradient(packed, theta, data, alpha, work, grad):
    """scikit-learn's objective on all rows of ``data`` and its gradient (into ``grad``, packed like theta)."""
    n_samples = data[0].shape[0] if not data[4] else data[3].shape[0] - 1
    clip = float(np.finfo(theta.dtype).eps)
    return loss_and_gradient(theta, packed.layout, data, _NO_ROWS, 0, n_samples, float(alpha), clip, work, grad)
