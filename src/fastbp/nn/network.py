"""The Network: a dense multilayer perceptron over one flat parameter vector.

All weights and biases of a network live in one contiguous vector
``flat_parameters``; ``weights[l]`` and ``biases[l]`` are views into it, so
in-place edits of either take effect.  The layout is layer after layer, W of
the layer (row-major, ``W[i, j]`` = w_ij from unit i below to unit j above)
then its b.  Gradients use the same layout.

Every method validates its inputs in Python, then runs one compiled function
of :mod:`fastbp.engine._serial` over buffers made once and reused, so the hot paths
(forward, gradients, step, fit) have no Python loop over samples, units or
batches.
"""

import math
import threading

import numpy as np

from fastbp.engine import _codegen
from fastbp.engine import _serial as _engine
from fastbp.kernels._jit_utils import all_finite_flat, all_within
from fastbp.nn import persistence
from fastbp.nn.activations import init_bound, parse_activation
from fastbp.nn.history import trace_one
from fastbp.nn.layout import Gradients, Layout, Workspace
from fastbp.nn.losses import TARGET_RANGE, check_loss, check_pairing
from fastbp.nn.optimizers import make_optimizer
from fastbp.nn.training import _FitRun, fit_per_epoch, frozen_mask
from fastbp.nn.validation import (
    as_batch,
    as_float_array,
    as_inputs_and_targets,
    as_pair,
    check_activations,
    check_finite,
    check_float_dtype,
    check_positive_int,
    check_positive_number,
    check_sizes,
)

_LAZY = object()


_INF = math.inf


class Network:
    """A dense feed-forward network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input layer first, e.g. ``[2, 2, 1]``.
    activations : sequence of str, or str
        One per non-input layer (``len(sizes) - 1`` of them): "identity",
        "sigmoid", "tanh", "relu" (the tutorial's), "leaky_relu" (or
        "leaky_relu(0.2)" for slope 0.2; default 0.01), "elu" (or "elu(0.5)"),
        "softplus", "gelu" (exact, with erf), or "softmax" (output layer only).
        A single string is used for every layer.
    loss : str
        "squared_error" (E = 1/2 sum_j (y_j - d_j)^2), "cross_entropy" (needs
        a "softmax" output) or "binary_cross_entropy" (needs a "sigmoid"
        output); over a batch, the mean over samples.
    dtype : float32 or float64
    seed : int or None
        Seeds the initial weights (``numpy.random.default_rng(seed)``); two
        networks made with the same seed are identical; None draws fresh
        entropy.  Weights of each layer are uniform in [-a, a] with a from
        :func:`fastbp.nn.activations.init_bound` (He for relu, Glorot otherwise);
        biases start at zero.
    """

    def __init__(self, sizes, activations, loss="squared_error", dtype=np.float64, seed=None):
        sizes = check_sizes(sizes)
        activations = check_activations(activations, len(sizes) - 1)
        dtype = check_float_dtype(dtype)
        self._setup(sizes, activations, check_loss(loss), dtype)
        rng = np.random.default_rng(seed)
        for layer, W in enumerate(self.weights):
            bound = init_bound(activations[layer], sizes[layer], sizes[layer + 1])
            W[...] = rng.uniform(-bound, bound, size=W.shape)

    @classmethod
    def from_weights(cls, weights, biases, activations, loss="squared_error"):
        """A network with copies of the given weights and biases.

        Parameters
        ----------
        weights : sequence of array_like
            ``weights[l]`` of shape (n_below, n_above), ``weights[l][i, j]`` = w_ij of layer l+1.
        biases : sequence of array_like
            ``biases[l]`` of shape (n_above,).
        activations : sequence of str, or str
        loss : str

        The dtype is the arrays' (float32 stays float32; integer arrays become
        float64); mixing float32 and float64 is an error.
        """
        weights = [np.asarray(w) for w in weights]
        biases = [np.asarray(b) for b in biases]
        if len(weights) == 0 or len(weights) != len(biases):
            raise ValueError(
                f"need one bias vector per weight matrix, got {len(weights)} weights and {len(biases)} biases"
            )
        float_dtypes = {a.dtype for a in weights + biases if a.dtype.kind == "f"}
        if len(float_dtypes) > 1:
            raise TypeError(f"weights and biases must share one dtype, got {sorted(str(d) for d in float_dtypes)}")
        dtype = check_float_dtype(float_dtypes.pop() if float_dtypes else np.float64, "weights dtype")
        for layer, (w, b) in enumerate(zip(weights, biases)):
            if w.ndim != 2:
                raise ValueError(f"weights[{layer}] must be 2-D (n_below, n_above), got shape {w.shape}")
            if b.shape != (w.shape[1],):
                raise ValueError(
                    f"biases[{layer}] must have shape ({w.shape[1]},) to match weights[{layer}], got {b.shape}"
                )
            if layer > 0 and w.shape[0] != weights[layer - 1].shape[1]:
                raise ValueError(
                    f"weights[{layer}] has {w.shape[0]} rows but layer {layer} has {weights[layer - 1].shape[1]} units"
                )
        sizes = check_sizes([weights[0].shape[0]] + [w.shape[1] for w in weights])
        activations = check_activations(activations, len(weights))
        converted = []
        for layer, (w, b) in enumerate(zip(weights, biases)):
            w = as_float_array(w, f"weights[{layer}]", dtype)
            b = as_float_array(b, f"biases[{layer}]", dtype)
            check_finite(w, f"weights[{layer}]")
            check_finite(b, f"biases[{layer}]")
            converted.append((w, b))
        net = cls.__new__(cls)
        net._setup(sizes, activations, check_loss(loss), dtype)
        for layer, (w, b) in enumerate(converted):
            net.weights[layer][...] = w
            net.biases[layer][...] = b
        return net

    def _setup(self, sizes, activations, loss, dtype):
        check_pairing(loss, parse_activation(activations[-1])[0])
        self._sizes = tuple(sizes)
        self._activations = tuple(activations)
        self._loss = loss
        self._target_range = TARGET_RANGE.get(loss)
        self._dtype = dtype
        self._layout = Layout(sizes, activations, loss)
        self._theta = np.zeros(self._layout.n_params, dtype=dtype)
        self.weights, self.biases = self._layout.split(self._theta)
        self._grad = np.zeros(self._layout.n_params, dtype=dtype)
        self._backup = np.zeros(self._layout.n_params, dtype=dtype)  # fit's copy of the last good parameters
        self._workspace = None
        self._shared_run = None  # the buffers of the last fit on several threads (_SharedRun)
        self._wide_run = None  # the per-thread state of the last fit on several threads for any depth (_WideRun)
        self.optimizer = None  # the optimizer of the last fit
        self._lock = threading.Lock()
        self._n_in = sizes[0]
        self._n_out = sizes[-1]
        # the architecture-specialised module (see _codegen), loaded on first use; None: use _engine
        self._small = _LAZY if _codegen.supports(self._layout) else None

    def _small_module(self):
        if self._small is _LAZY:
            self._small = _codegen.load(self._sizes, self._layout.codes, self._dtype)
        return self._small

    # ------------------------------------------------------------ description

    @property
    def sizes(self):
        """Units per layer, input first (tuple of int)."""
        return self._sizes

    @property
    def activations(self):
        """Activation name of each non-input layer (tuple of str)."""
        return self._activations

    @property
    def loss(self):
        """The loss's name."""
        return self._loss

    @property
    def dtype(self):
        """np.dtype of every parameter and computation."""
        return self._dtype

    @property
    def n_params(self):
        """Number of weights and biases, N."""
        return self._layout.n_params

    @property
    def flat_parameters(self):
        """All weights and biases as one vector (n_params,); ``weights`` and ``biases`` are views into it."""
        return self._theta

    def __repr__(self):
        return (
            f"Network(sizes={list(self._sizes)}, activations={list(self._activations)}, "
            f"loss={self._loss!r}, dtype={self._dtype.name})"
        )

    def save(self, path):
        """Write the network to ``path`` (an ``.npz`` file, written atomically); read it with ``fastbp.load``."""
        persistence.save(self, path)

    def copy(self):
        """An independent network with the same architecture, parameters and compiled engine."""
        twin = Network.from_weights(self.weights, self.biases, self._activations, self._loss)
        if self._small is None:
            twin._small = None
        return twin

    # ------------------------------------------------------------ computing

    def _work(self, n):
        if self._workspace is None or self._workspace.capacity < n:
            self._workspace = Workspace(self._layout, n, self._dtype)
        return self._workspace

    def _validate_xd(self, X, D, check_values=True):
        """Validated (X, D, both_1d); also refuses a network whose parameters are not all finite.
        ``check_values=False``: shapes and types only, not that X and D are finite."""
        result = as_inputs_and_targets(X, D, self._sizes[0], self._sizes[-1], self._dtype, check_values, self._loss)
        self._check_parameters()
        return result

    def _check_parameters(self):
        """ValueError naming the first weight or bias that is NaN or infinite (e.g. after an edit of a view)."""
        if all_finite_flat(self._theta):
            return
        k = int(np.argmax(~np.isfinite(self._theta)))
        layout = self._layout
        layer = int(np.searchsorted(layout.w_offsets, k, side="right")) - 1
        if k >= layout.b_offsets[layer]:
            where = f"biases[{layer}][{k - int(layout.b_offsets[layer])}]"
        else:
            i, j = divmod(k - int(layout.w_offsets[layer]), self._sizes[layer + 1])
            where = f"weights[{layer}][{i}, {j}]"
        raise ValueError(f"the network's parameters must be finite, but {where} is {self._theta[k]}")

    def forward(self, X):
        """The network's output for each sample.

        Parameters
        ----------
        X : array_like (n_samples, n_in), or (n_in,) for one sample

        Returns
        -------
        Y : ndarray (n_samples, n_out), or (n_out,) for a 1-D X; a new array.
        """
        X2, one_sample = as_batch(X, "X", self._sizes[0], self._dtype)
        self._check_parameters()
        n = X2.shape[0]
        with self._lock:
            small = self._small_module()
            if small is not None:
                Y = np.empty((n, self._sizes[-1]), dtype=self._dtype)
                small.forward(self._theta, X2, Y)
            else:
                ws = self._work(n)
                _engine.forward_pass(self._theta, self._layout.packed, X2, ws.work)
                Y = ws.rows(ws.y, self._layout, len(self._activations) - 1, n)
        return Y[0] if one_sample else Y

    def gradients(self, X, D, out=None):
        """The loss and its gradient with respect to every weight and bias.

        Parameters
        ----------
        X : array_like (n_samples, n_in) or (n_in,)
        D : array_like (n_samples, n_out) or (n_out,)
        out : Gradients, optional
            Written in place and returned (from an earlier call on this network).

        Returns
        -------
        E : float
            Mean over samples of 1/2 sum_j (y_j - d_j)^2.
        g : Gradients
            ``g.weights[l]`` = dE/dW and ``g.biases[l]`` = dE/db, shaped like the parameters.
        """
        if out is not None:
            if not isinstance(out, Gradients) or out.flat.shape != self._theta.shape or out.flat.dtype != self._dtype:
                raise TypeError(
                    f"out must be a Gradients of this network ({self.n_params} {self._dtype} values), got {out!r}"
                )
            grad = out.flat
        else:
            grad = np.empty_like(self._theta)
        E = -1.0
        if self._direct(X, D):
            E = self._loss_and_gradient(X, D, grad)
        if not (E >= 0.0 or E != E):
            X2, D2, _ = self._validate_xd(X, D)
            E = self._loss_and_gradient(X2, D2, grad)
        return float(E), out if out is not None else Gradients(self._layout, grad)

    def _loss_and_gradient(self, X, D, grad):
        """Compiled E and gradient; -1.0 (nothing written) if X or D is empty or holds a non-finite value."""
        with self._lock:
            small = self._small_module()
            if small is not None:
                return small.loss_and_gradient(self._theta, X, D, grad)
            ws = self._work(X.shape[0])
            return _engine.loss_and_gradient(self._theta, self._layout.packed, X, D, ws.work, grad)

    def _direct(self, X, D):
        """True if X and D can go to compiled code as they are (checked there for emptiness and finiteness).

        Cheap checks only, about 0.3 us: ndarrays of the network's dtype whose
        shapes fit; for the generic engine also 2-D, C-contiguous and writeable
        (the compiled functions are typed for that layout).
        """
        if type(X) is not np.ndarray or type(D) is not np.ndarray:
            return False
        if X.dtype is not self._dtype or D.dtype is not self._dtype:
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
        if self._small is None:
            return nd == 2 and X.flags.c_contiguous and D.flags.c_contiguous and X.flags.writeable and D.flags.writeable
        return True

    def step(self, X, D, lr=0.1):
        """One gradient-descent step on all weights and biases: w <- w - lr dE/dw, b <- b - lr dE/db.

        Parameters
        ----------
        X : array_like (n_samples, n_in) or (n_in,)
        D : array_like (n_samples, n_out) or (n_out,)
        lr : float
            The learning rate eta, > 0.

        Returns
        -------
        E : float
            The batch's loss before the update.
        """
        # Fast path (about 1 us in all for a small network): arrays of the right dtype whose shapes
        # match go straight to the compiled step, which checks for non-finite values and empty
        # input itself and returns -1.0, untouched, if it finds any.  Everything else, and every
        # error message, goes through the full validation below.
        if type(lr) is float and 0.0 < lr < _INF and self._direct(X, D):
            E = self._train_step(X, D, lr)
            if E >= 0.0 or E != E:
                return E
        X2, D2, _ = self._validate_xd(X, D)
        return float(self._train_step(X2, D2, check_positive_number(lr, "lr")))

    def _train_step(self, X, D, lr):
        """Compiled step; -1.0 (nothing changed) if X or D is empty or X, D or the parameters are not finite."""
        lock = self._lock
        lock.acquire()
        try:
            small = self._small
            if small is _LAZY:
                small = self._small_module()
            if small is not None:
                return small.train_step(self._theta, X, D, lr)
            ws = self._work(X.shape[0])
            return _engine.train_step(self._theta, self._layout.packed, X, D, self._dtype.type(lr), ws.work, self._grad)
        finally:
            lock.release()

    def fit(
        self, X, D, epochs=1, lr=None, batch_size=32, shuffle=True, seed=None, trainable=None, optimizer=None,
        validation_data=None, patience=None, min_delta=0.0, lr_schedule=None, callbacks=None,
    ):  # fmt: skip
        """Mini-batch training for whole epochs, compiled end to end.

        Parameters
        ----------
        X : array_like (n_samples, n_in)
        D : array_like (n_samples, n_out)
        epochs : int >= 1
        lr : float > 0, optional
            The learning rate eta; default 0.1 for SGD, 1e-3 for Adam and
            AdamW.  Leave it out when ``optimizer`` is an optimizer object.
        batch_size : int >= 1
            Samples per step; the last batch of an epoch may be smaller.  A
            batch_size above n_samples means one batch of all samples.
        shuffle : bool
            Visit the samples in a new random order every epoch; without
            shuffling, the batches are rows [0, batch_size), [batch_size, ...) and
            plain SGD ``fit`` equals the same sequence of ``step`` calls.
        seed : int or None
            Seeds the shuffling; the same seed gives the same run.
        trainable : sequence of bool, optional
            One flag per non-input layer; the weights and biases of a layer
            marked False stay exactly as they are (its error terms are still
            computed, so the layers below it still learn).  Default: all True.
            ``trainable=[False, True]`` trains only the output layer of a
            one-hidden-layer network, as in the tutorial's exercise 2(c).
        optimizer : None, "sgd", "adam", "adamw" or a fastbp optimizer
            None: plain gradient descent, w <- w - lr dE/dw.  A name makes a
            new optimizer for this call; an object (``fastbp.Adam(...)``)
            keeps its state, so calling fit again continues where it stopped.
            The last optimizer used is kept as ``net.optimizer``.
        validation_data : (Xv, Dv), optional
            Evaluated after every epoch: ``history.val_loss`` (and
            ``val_accuracy`` for classification).
        patience : int, optional
            Early stopping: stop when the monitored loss (val_loss with
            validation data, else the training loss) has not improved by more
            than ``min_delta`` for this many epochs, and put back the
            parameters of the best epoch.
        min_delta : float >= 0
        lr_schedule : callable, optional
            ``lr_schedule(k)`` multiplies the learning rate of epoch k (0-based,
            within this call): ``fastbp.StepDecay(step_size, gamma)``,
            ``fastbp.ExponentialDecay(gamma)`` or any function.
        callbacks : sequence of callables, optional
            Each is called after every epoch as ``callback(net, epoch, logs)``,
            logs a dict with loss, lr and, when known, accuracy, val_loss and
            val_accuracy; returning True stops training.

        Returns
        -------
        History

        Raises
        ------
        fastbp.errors.DivergenceError
            At the first batch whose loss is inf or NaN (checked inside the
            compiled loop); the parameters (and optimizer state) at which the
            last finite loss was measured are put back, and the exception
            carries the epoch, the batch and the history of the completed epochs.

        Notes
        -----
        Without validation data, early stopping and callbacks the whole run is
        one compiled call; with them, one compiled call per epoch.
        """
        X2, D2, _ = self._validate_xd(X, D, check_values=False)  # X and D finite: checked by the run
        epochs = check_positive_int(epochs, "epochs")
        if lr is not None:
            lr = check_positive_number(lr, "lr")
        opt = make_optimizer(optimizer, lr)
        batch_size = min(check_positive_int(batch_size, "batch_size"), X2.shape[0])
        shuffle = bool(shuffle)
        frozen = frozen_mask(self, trainable)
        epoch_lrs = np.full(epochs, opt.lr)
        if lr_schedule is not None:
            if not callable(lr_schedule):
                raise TypeError(f"lr_schedule must be callable (epoch -> factor), got {lr_schedule!r}")
            try:
                factors = np.array([float(lr_schedule(k)) for k in range(epochs)])
            except OverflowError as exc:  # e.g. ExponentialDecay(10.0) after 300 epochs: 1e300 ** 2
                raise ValueError(f"lr_schedule must give finite factors > 0, but it overflowed ({exc})") from exc
            if not np.all(np.isfinite(factors) & (factors > 0)):
                raise ValueError(f"lr_schedule must give finite factors > 0, got {factors[~(factors > 0)][:3]}...")
            epoch_lrs *= factors
        validation = None
        if validation_data is not None:
            Xv, Dv = as_pair(validation_data, "validation_data", "(Xv, Dv)")
            validation = as_inputs_and_targets(
                Xv, Dv, self._n_in, self._n_out, self._dtype, loss=self._loss, names=("Xv", "Dv")
            )[:2]
        if patience is not None:
            patience = check_positive_int(patience, "patience")
            if not (isinstance(min_delta, (int, float)) and np.isfinite(min_delta) and min_delta >= 0):
                raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(f"every callback must be callable, got {cb!r}")

        classify = self._loss != "squared_error"
        unused = opt.state1 is None
        opt.bind(self.n_params, self._dtype)  # last: every argument is checked before the optimizer is touched
        run = _FitRun(self, X2, D2, epoch_lrs, batch_size, shuffle, seed, opt, frozen)
        with self._lock:
            try:
                if validation_data is None and patience is None and not callbacks:
                    run.epochs(0, epochs)
                    history = run.history(epochs, classify)
                else:
                    history = fit_per_epoch(self, run, epochs, classify, validation, patience, min_delta, callbacks)
            except ValueError:  # X or D not finite, found before the first step: nothing was trained
                if unused and opt.step_count == 0:
                    opt.reset()  # the optimizer has no state, as before the call
                raise
        self.optimizer = opt
        return history

    def evaluate(self, X, D):
        """The mean loss on (X, D) and, for classification losses, the accuracy (else None).

        Parameters
        ----------
        X : array_like (n_samples, n_in) or (n_in,)
        D : array_like (n_samples, n_out) or (n_out,)

        Returns
        -------
        (float, float or None)
        """
        X2, D2, _ = self._validate_xd(X, D)
        with self._lock:
            return self._evaluate(X2, D2)

    def _evaluate(self, X2, D2):
        n = X2.shape[0]
        ws = self._work(n)
        E = _engine.forward_loss(self._theta, self._layout.packed, X2, D2, ws.work)
        if self._loss == "squared_error":
            return float(E), None
        Y = ws.rows(ws.y, self._layout, len(self._activations) - 1, n)
        if self._loss == "cross_entropy":
            right = np.argmax(Y, axis=1) == np.argmax(D2, axis=1)
        else:
            right = np.all((Y >= 0.5) == (D2 >= 0.5), axis=1)
        return float(E), float(np.mean(right))

    def trace(self, x, d, lr=None):
        """Every intermediate number of backprop for one sample, as in the tutorial.

        Parameters
        ----------
        x : array_like (n_in,)
        d : array_like (n_out,)
        lr : float, optional
            If given, the trace also shows the parameters after one step of
            this learning rate; the network itself is not changed.

        Returns
        -------
        Trace
            ``print(trace)`` shows z, y, delta and the gradients of every layer.
        """
        X2, D2, _ = self._validate_xd(x, d)
        if X2.shape[0] != 1:
            raise ValueError(f"trace takes one sample, got {X2.shape[0]}")
        if lr is not None:
            lr = check_positive_number(lr, "lr")
        return trace_one(self, X2, D2, lr)


def load(path):
    """The network saved in ``path`` by :meth:`Network.save`, with its last optimizer and that optimizer's state.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file is not a fastbp network (truncated, corrupted, foreign or of
        an unknown format version, or values that could not work); the message says which.
    """
    saved = persistence.read(path)
    net = Network(saved.sizes, saved.activations, loss=saved.loss, dtype=saved.parameters.dtype, seed=0)
    net.flat_parameters[...] = saved.parameters
    net.optimizer = saved.optimizer
    return net
