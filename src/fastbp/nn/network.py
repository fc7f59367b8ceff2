"""The Network: a dense multilayer perceptron over one flat parameter vector.

All weights and biases of a network live in one contiguous vector
``flat_parameters``; ``weights[l]`` and ``biases[l]`` are views into it, so
in-place edits of either take effect.  The layout is layer after layer, W of
the layer (row-major, ``W[i, j]`` = w_ij from unit i below to unit j above)
then its b.  Gradients use the same layout.

Every method validates its inputs in Python, then runs one compiled function
(through :class:`fastbp.nn.passes.CompiledPasses`) over buffers made once and reused, so the hot paths
(forward, gradients, step, fit) have no Python loop over samples, units or
batches.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from fastbp.nn import persistence, training
from fastbp.nn.activations import init_bound, parse_activation
from fastbp.nn.history import History, Trace, trace_one
from fastbp.nn.jit_model import to_jit
from fastbp.nn.layout import Gradients, Layout
from fastbp.nn.losses import check_loss, check_pairing
from fastbp.nn.optimizers import Optimizer
from fastbp.nn.passes import CompiledPasses
from fastbp.nn.validation import (
    as_batch,
    as_inputs_and_targets,
    check_activations,
    check_float_dtype,
    check_gradients_out,
    check_parameters_finite,
    check_positive_number,
    check_sizes,
    check_weights_and_biases,
)

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

    def __init__(self, sizes: Sequence[int], activations: str | Sequence[str], loss: str = "squared_error",
                 dtype: DTypeLike = np.float64, seed: int | None = None) -> None:  # fmt: skip
        sizes = check_sizes(sizes)
        activations = check_activations(activations, len(sizes) - 1)
        dtype = check_float_dtype(dtype)
        self._setup(sizes, activations, check_loss(loss), dtype)
        rng = np.random.default_rng(seed)
        for layer, W in enumerate(self.weights):
            bound = init_bound(activations[layer], sizes[layer], sizes[layer + 1])
            W[...] = rng.uniform(-bound, bound, size=W.shape)

    @classmethod
    def from_weights(cls, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike],
                     activations: str | Sequence[str], loss: str = "squared_error") -> Network:  # fmt: skip
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
        sizes, dtype, converted = check_weights_and_biases(weights, biases)
        activations = check_activations(activations, len(converted))
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
        self._dtype = dtype
        self._layout = Layout(sizes, activations, loss)
        self._theta = np.zeros(self._layout.n_params, dtype=dtype)
        self.weights, self.biases = self._layout.split(self._theta)
        self._grad = np.zeros(self._layout.n_params, dtype=dtype)
        self._backup = np.zeros(self._layout.n_params, dtype=dtype)  # fit's copy of the last good parameters
        self._passes = CompiledPasses(self._layout, loss, self._theta, self._grad, dtype)
        self._shared_run = None  # the buffers of the last fit on several threads (training._SharedRun)
        self._wide_run = None  # the per-thread state of the last fit on several threads for any depth (_WideRun)
        self.optimizer = None  # the optimizer of the last fit

    sizes = property(attrgetter("_sizes"), doc="Units per layer, input first (tuple of int).")
    activations = property(attrgetter("_activations"), doc="Activation name of each non-input layer (tuple of str).")
    loss = property(attrgetter("_loss"), doc="The loss's name.")
    dtype = property(attrgetter("_dtype"), doc="np.dtype of every parameter and computation.")
    n_params = property(attrgetter("_layout.n_params"), doc="Number of weights and biases, N.")
    flat_parameters = property(
        attrgetter("_theta"),
        doc="All weights and biases as one vector (n_params,); weights and biases are views into it.",
    )

    def __repr__(self):
        sizes, activations = list(self._sizes), list(self._activations)
        return f"Network(sizes={sizes}, activations={activations}, loss={self._loss!r}, dtype={self._dtype.name})"

    def save(self, path: str | os.PathLike) -> None:
        """Write the network to ``path`` (an ``.npz`` file, written atomically); read it with ``fastbp.load``."""
        persistence.save(self, path)

    def copy(self) -> Network:
        """An independent network with the same architecture, parameters and compiled engine."""
        twin = Network.from_weights(self.weights, self.biases, self._activations, self._loss)
        if self._passes.small is None:
            twin._passes.small = None
        return twin

    def _validate_xd(self, X, D, check_values=True):
        """Validated (X, D, both_1d); also refuses a network whose parameters are not all finite.
        ``check_values=False``: shapes and types only, not that X and D are finite."""
        result = as_inputs_and_targets(X, D, self._sizes[0], self._sizes[-1], self._dtype, check_values, self._loss)
        self._check_parameters()
        return result

    def _check_parameters(self):
        """ValueError naming the first weight or bias that is NaN or infinite (e.g. after an edit of a view)."""
        check_parameters_finite(self._theta, self._layout)

    def forward(self, X: ArrayLike) -> np.ndarray:
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
        Y = self._passes.forward(X2)
        return Y[0] if one_sample else Y

    def gradients(self, X: ArrayLike, D: ArrayLike, out: Gradients | None = None) -> tuple[float, Gradients]:
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
        grad = np.empty_like(self._theta) if out is None else check_gradients_out(out, self._theta)
        E = -1.0
        passes = self._passes
        if passes.fits_directly(X, D):
            E = passes.loss_and_gradient(X, D, grad)
        if not (E >= 0.0 or E != E):
            X2, D2, _ = self._validate_xd(X, D)
            E = passes.loss_and_gradient(X2, D2, grad)
        return float(E), out if out is not None else Gradients(self._layout, grad)

    def step(self, X: ArrayLike, D: ArrayLike, lr: float = 0.1) -> float:
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
        # Fast path (about 1 us for a small network): arrays that fit go straight to the compiled step, which
        # returns -1.0, untouched, for empty or non-finite input; all else and every error goes the full way.
        passes = self._passes
        if type(lr) is float and 0.0 < lr < _INF and passes.fits_directly(X, D):
            E = passes.train_step(X, D, lr)
            if E >= 0.0 or E != E:
                return E
        X2, D2, _ = self._validate_xd(X, D)
        return float(passes.train_step(X2, D2, check_positive_number(lr, "lr")))

    def fit(
        self, X: ArrayLike, D: ArrayLike, epochs: int = 1, lr: float | None = None, batch_size: int = 32,
        shuffle: bool = True, seed: int | None = None, trainable: Sequence[bool] | None = None,
        optimizer: str | Optimizer | None = None, validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        patience: int | None = None, min_delta: float = 0.0, lr_schedule: Callable | Any | None = None,
        callbacks: Sequence[Callable[..., Any]] | None = None,
    ) -> History:  # fmt: skip
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
        return training.fit(self, X, D, epochs, lr, batch_size, shuffle, seed, trainable, optimizer, validation_data,
                            patience, min_delta, lr_schedule, callbacks)  # fmt: skip

    def to_jit(self, max_batch: int = 64, checked: bool = False) -> tuple:
        """A numba-typed model of this network (sharing its parameters) for ``fastbp.jit`` and ``@njit`` code."""
        return to_jit(self, max_batch, checked)

    def evaluate(self, X: ArrayLike, D: ArrayLike) -> tuple[float, float | None]:
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
        with self._passes.lock:
            return self._passes.evaluate(X2, D2)

    def trace(self, x: ArrayLike, d: ArrayLike, lr: float | None = None) -> Trace:
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


def load(path: str | os.PathLike) -> Network:
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
