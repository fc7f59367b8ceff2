"""Where each layer's weights and biases sit in the flat parameter vector (``Layout``), the work
buffers of a batch (``Workspace``) and the gradient of the loss with respect to every parameter (``Gradients``).
"""

import numpy as np

from fastbp.kernels.losses import LOSS_CODES
from fastbp.nn.activations import ACTIVATIONS, parse_activation


class Layout:
    """Where each layer's W and b sit in a flat vector, and its units in the work buffers.

    Attributes handed to the compiled functions: int64 arrays ``sizes``
    (L+1,), ``codes`` (L,), ``w_offsets`` (L,), ``b_offsets`` (L,),
    ``unit_offsets`` (L+1,); float64 ``alphas`` (L,), each layer's activation
    parameter; the int ``loss_code``.  ``n_params`` is the length of the flat
    vector.
    """

    def __init__(self, sizes, activations, loss="squared_error"):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        parsed = [parse_activation(a) for a in activations]
        self.codes = np.asarray([ACTIVATIONS[name].code for name, _ in parsed], dtype=np.int64)
        self.size_tuple = tuple(int(s) for s in self.sizes)  # the same as Python ints, for cache keys
        self.code_tuple = tuple(int(c) for c in self.codes)
        self.alphas = np.asarray([value for _, value in parsed], dtype=np.float64)
        self.loss_code = LOSS_CODES[loss]
        n_layers = len(activations)
        self.w_offsets = np.empty(n_layers, dtype=np.int64)
        self.b_offsets = np.empty(n_layers, dtype=np.int64)
        offset = 0
        for layer in range(n_layers):
            self.w_offsets[layer] = offset
            offset += sizes[layer] * sizes[layer + 1]
            self.b_offsets[layer] = offset
            offset += sizes[layer + 1]
        self.n_params = offset
        self.unit_offsets = np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.int64)
        self.n_units = int(self.unit_offsets[-1])
        # the tuple the compiled functions of _engine take as ``layout``
        self.packed = (
            self.sizes,
            self.codes,
            self.alphas,
            self.loss_code,
            self.w_offsets,
            self.b_offsets,
            self.unit_offsets,
        )

    def split(self, flat):
        """(weights, biases): tuples of views of ``flat`` shaped (n_below, n_above) and (n_above,)."""
        weights, biases = [], []
        for layer in range(len(self.codes)):
            n_below, n_above = int(self.sizes[layer]), int(self.sizes[layer + 1])
            w, b = int(self.w_offsets[layer]), int(self.b_offsets[layer])
            weights.append(flat[w : w + n_below * n_above].reshape(n_below, n_above))
            biases.append(flat[b : b + n_above])
        return tuple(weights), tuple(biases)


class Workspace:
    """Work buffers for up to ``capacity`` samples: z, y and delta of every layer, and one batch of X and D."""

    def __init__(self, layout, capacity, dtype):
        self.capacity = capacity
        self.z = np.zeros(capacity * layout.n_units, dtype=dtype)
        self.y = np.zeros(capacity * layout.n_units, dtype=dtype)
        self.delta = np.zeros(capacity * layout.n_units, dtype=dtype)
        self.x_batch = np.zeros(capacity * int(layout.sizes[0]), dtype=dtype)
        self.d_batch = np.zeros(capacity * int(layout.sizes[-1]), dtype=dtype)
        # the tuple the compiled functions of _engine take as ``work``
        self.work = (capacity, self.z, self.y, self.delta)

    def rows(self, buf, layout, layer, n):
        """Copy of the first n rows of layer ``layer``'s block of ``buf`` (0-based over non-input layers)."""
        width = int(layout.sizes[layer + 1])
        start = self.capacity * int(layout.unit_offsets[layer])
        return buf[start : start + n * width].reshape(n, width).copy()


class Gradients:
    """dE/dW and dE/db of every layer, as views into one flat vector.

    Attributes
    ----------
    flat : ndarray (n_params,)
        All the gradients, in the layout of ``Network.flat_parameters``.
    weights : tuple of ndarray
        ``weights[l]`` has the shape of ``Network.weights[l]``: (n_below, n_above).
    biases : tuple of ndarray
        ``biases[l]`` has the shape of ``Network.biases[l]``: (n_above,).
    """

    def __init__(self, layout, flat):
        self.flat = flat
        self.weights, self.biases = layout.split(flat)

    def __repr__(self):
        shapes = ", ".join(f"{w.shape}+{b.shape}" for w, b in zip(self.weights, self.biases))
        return f"Gradients(layers=[{shapes}], dtype={self.flat.dtype})"
