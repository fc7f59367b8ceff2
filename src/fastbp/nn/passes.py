"""The compiled calls of one network: which engine runs them, the buffers they work in, and their lock.

A :class:`fastbp.Network` validates its arguments, then hands them to its ``CompiledPasses``: the code generated
for its architecture (``engine._codegen``) when the network is small, else ``engine._serial``, over one
workspace that grows to the largest batch seen and is then reused, so no call allocates beyond its result.
"""

import contextlib
import threading

import numpy as np

from fastbp.config import BLAS_CHUNKED_MAX, BLAS_ONE_THREAD_MAX
from fastbp.engine import _codegen
from fastbp.engine import _serial as _engine
from fastbp.engine._threaded import blas_alone, can_pin_blas
from fastbp.kernels._jit_utils import all_within
from fastbp.nn.layout import Workspace
from fastbp.nn.losses import TARGET_RANGE

_LAZY = object()
_AS_IT_IS = contextlib.nullcontext()


class CompiledPasses:
    """Forward pass, loss and gradient, gradient-descent step and loss of a network, compiled.

    Parameters
    ----------
    layout : Layout
    loss : str
    theta, grad : ndarray (n_params,)
        The network's parameters, and the buffer its step writes dE/dtheta into.
    dtype : np.dtype

    ``small`` is the generated module (loaded on first use by :meth:`small_module`), or None to run
    ``engine._serial``; setting it to None makes a network use ``engine._serial`` from then on.  ``lock``
    serialises every call that uses the workspace or changes theta.
    """

    def __init__(self, layout, loss, theta, grad, dtype):
        self.layout = layout
        self.loss = loss
        self.theta = theta
        self.grad = grad
        self.dtype = dtype
        self.workspace = None
        self.lock = threading.Lock()
        self.small = _LAZY if _codegen.supports(layout) else None
        self._n_in = layout.size_tuple[0]
        self._n_out = layout.size_tuple[-1]
        self._output_layer = len(layout.code_tuple) - 1
        self._target_range = TARGET_RANGE.get(loss)
        sizes = layout.size_tuple
        widest_row = max(sizes[k] * sizes[k + 1] for k in range(len(sizes) - 1))  # multiply-adds a sample
        # the batch sizes of forward_blas's pinned passes (none if the widest runs on BLAS's threads at any size)
        self._pins_from = BLAS_ONE_THREAD_MAX // widest_row + 1
        self._pins_to = BLAS_CHUNKED_MAX // widest_row if widest_row <= BLAS_ONE_THREAD_MAX else 0

    def small_module(self):
        """The generated module of this architecture (compiled or loaded now if not yet), or None."""
        if self.small is _LAZY:
            self.small = _codegen.load(self.layout.size_tuple, self.layout.codes, self.dtype)
        return self.small

    def work(self, n):
        """The workspace, grown to hold a batch of n samples if it is smaller."""
        if self.workspace is None or self.workspace.capacity < n:
            self.workspace = Workspace(self.layout, n, self.dtype)
        return self.workspace

    def forward_blas(self, n):
        """(context, one_call) for a forward pass over n samples (``_engine.forward_pass``).

        Where ``dense_forward`` would cut a product into row blocks to keep OpenBLAS's threads asleep
        (``fastbp.config``: past what one BLAS thread takes, up to BLAS_CHUNKED_MAX) and no other product
        would wake them, the pass runs with BLAS on this thread alone (``blas_alone``; needs OpenBLAS's
        per-thread setting, ``can_pin_blas``, else it keeps the blocks) and every product is one call.
        Elsewhere each product is one call as BLAS likes: a product that wakes BLAS's threads leaves
        nothing to keep asleep.  (Gradients and steps take their products in one call always: their
        backward products, as large, wake BLAS's threads anyway.)
        """
        if self._pins_from <= n <= self._pins_to:
            return (blas_alone(), True) if can_pin_blas() else (_AS_IT_IS, False)
        return _AS_IT_IS, True

    def forward(self, X2):
        """Y (n, n_out), a new array, for validated inputs X2 (n, n_in)."""
        n = X2.shape[0]
        with self.lock:
            small = self.small_module()
            if small is not None:
                Y = np.empty((n, self._n_out), dtype=self.dtype)
                small.forward(self.theta, X2, Y)
                return Y
            ws = self.work(n)
            blas, one_call = self.forward_blas(n)
            with blas:
                _engine.forward_pass(self.theta, self.layout.packed, X2, ws.work, one_call)
            return ws.rows(ws.y, self.layout, self._output_layer, n)

    def loss_and_gradient(self, X, D, grad):
        """E, with dE/dtheta written to grad (n_params,); -1.0 (nothing written) if X or D is empty or holds a
        non-finite value."""
        with self.lock:
            small = self.small_module()
            if small is not None:
                return small.loss_and_gradient(self.theta, X, D, grad)
            ws = self.work(X.shape[0])
            return _engine.loss_and_gradient(self.theta, self.layout.packed, X, D, ws.work, grad)

    def train_step(self, X, D, lr):
        """One step of lr; E before it, or -1.0 (nothing changed) if X or D is empty or X, D or the parameters
        are not finite."""
        lock = self.lock
        lock.acquire()
        try:
            small = self.small
            if small is _LAZY:
                small = self.small_module()
            if small is not None:
                return small.train_step(self.theta, X, D, lr)
            ws = self.work(X.shape[0])
            return _engine.train_step(self.theta, self.layout.packed, X, D, self.dtype.type(lr), ws.work, self.grad)
        finally:
            lock.release()

    def fits_directly(self, X, D):
        """True if X and D can go to compiled code as they are (checked there for emptiness and finiteness).

        Cheap checks only, about 0.3 us: ndarrays of the network's dtype whose
        shapes fit; for the generic engine also 2-D, C-contiguous and writeable
        (the compiled functions are typed for that layout).
        """
        if type(X) is not np.ndarray or type(D) is not np.ndarray:
            return False
        if X.dtype is not self.dtype or D.dtype is not self.dtype:
            return False
        xs = X.shape
        ds = D.shape
        nd = len(xs)
        if nd != len(ds) or not (nd == 1 or (nd == 2 and xs[0] == ds[0])):
            return False
        if xs[-1] != self._n_in or ds[-1] != self._n_out:
            return False
        if self._target_range is not None and not all_within(D, *self._target_range):
            return False  # the full validation names the entry
        if self.small is None:
            return nd == 2 and X.flags.c_contiguous and D.flags.c_contiguous and X.flags.writeable and D.flags.writeable
        return True

    def evaluate(self, X2, D2):
        """(mean loss, accuracy or None) on validated X2 (n, n_in), D2 (n, n_out); the caller holds the lock."""
        n = X2.shape[0]
        ws = self.work(n)
        blas, one_call = self.forward_blas(n)
        with blas:
            E = _engine.forward_loss(self.theta, self.layout.packed, X2, D2, ws.work, one_call)
        loss = self.loss
        if loss == "squared_error":
            return float(E), None
        Y = ws.rows(ws.y, self.layout, self._output_layer, n)
        if loss == "cross_entropy":
            right = np.argmax(Y, axis=1) == np.argmax(D2, axis=1)
        else:
            right = np.all((Y >= 0.5) == (D2 >= 0.5), axis=1)
        return float(E), float(np.mean(right))
