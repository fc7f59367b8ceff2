"""The Network: a dense multilayer perceptron over one flat parameter vector.

All weights and biases of a network live in one contiguous vector
``flat_parameters``; ``weights[l]`` and ``biases[l]`` are views into it, so
in-place edits of either take effect.  The layout is layer after layer, W of
the layer (row-major, ``W[i, j]`` = w_ij from unit i below to unit j above)
then its b.  Gradients use the same layout.

Every method validates its inputs in Python, then runs one compiled function
of :mod:`fastbp._engine` over buffers made once and reused, so the hot paths
(forward, gradients, step, fit) have no Python loop over samples, units or
batches.
"""

import functools
import math
import threading

import numpy as np

from . import _codegen, _engine, _parallel
from ._jit_utils import all_finite_flat, all_within
from ._validation import (
    as_batch,
    as_float_array,
    as_inputs_and_targets,
    as_pair,
    check_finite,
    check_float_dtype,
    check_positive_int,
    check_positive_number,
)
from .activations import ACTIVATION_NAMES, OUTPUT_ONLY, init_bound, parse_activation
from .errors import DivergenceError
from .kernels import ACTIVATION_CODES, LOSS_CODES
from .losses import TARGET_RANGE, check_loss, check_pairing
from .optimizers import make_optimizer

_LAZY = object()
_INF = math.inf


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
        self.codes = np.asarray([ACTIVATION_CODES[name] for name, _ in parsed], dtype=np.int64)
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


class History:
    """What ``fit`` saw, one entry per epoch (float64 arrays).

    Attributes
    ----------
    loss : ndarray (epochs,)
        ``loss[k]``: the mean of the batch losses E during epoch k.
    accuracy : ndarray (epochs,) or None
        Classification losses only: the fraction of training samples whose
        class was right as training went through epoch k.
    val_loss, val_accuracy : ndarray (epochs,) or None
        With ``validation_data``: the loss (and accuracy) on it after epoch k.
    lr : ndarray (epochs,)
        The learning rate of each epoch.
    best_epoch : int or None
        With early stopping: the epoch whose parameters were kept.
    """

    def __init__(self, loss, accuracy=None, val_loss=None, val_accuracy=None, lr=None, best_epoch=None):
        self.loss = loss
        self.accuracy = accuracy
        self.val_loss = val_loss
        self.val_accuracy = val_accuracy
        self.lr = lr
        self.best_epoch = best_epoch

    @property
    def epochs(self):
        return len(self.loss)

    def __repr__(self):
        if len(self.loss) == 0:
            return "History(epochs=0)"
        parts = [f"epochs={len(self.loss)}", f"loss[0]={self.loss[0]:.6g}", f"loss[-1]={self.loss[-1]:.6g}"]
        if self.val_loss is not None:
            parts.append(f"val_loss[-1]={self.val_loss[-1]:.6g}")
        if self.accuracy is not None:
            parts.append(f"accuracy[-1]={self.accuracy[-1]:.4g}")
        return f"History({', '.join(parts)})"


def _seed_bits(seed):
    """The 63 random bits that start fit's shuffling generator, from ``seed`` as numpy's default_rng takes it."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return _seed_bits_of_int(int(seed))
    return np.random.default_rng(seed).integers(0, 2**63 - 1, dtype=np.int64)


@functools.lru_cache(maxsize=256)
def _seed_bits_of_int(seed):
    # default_rng costs ~8 us a call, as much as a small network's epoch; the bits of an int seed never change
    return np.random.default_rng(seed).integers(0, 2**63 - 1, dtype=np.int64)


class _FitRun:
    """The buffers and state of one ``fit`` call, so that it can run in one compiled call or epoch by epoch."""

    def __init__(self, net, X, D, epoch_lrs, batch_size, shuffle, seed, opt, frozen):
        self.net, self.X, self.D = net, X, D
        self.n = X.shape[0]
        self.epoch_lrs = epoch_lrs
        # the compiled update multiplies lr (in the network's dtype, as step does) by the gradient
        self.epoch_lrs_dtype = epoch_lrs.astype(net.dtype)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.opt = opt
        self.frozen = frozen
        seed_bits = _seed_bits(seed) if shuffle else 0
        self.rng_state = np.array([seed_bits], dtype=np.uint64)
        self.order = np.arange(self.n, dtype=np.int64)
        epochs = self.n_epochs = len(epoch_lrs)
        self.losses = np.zeros(epochs)
        self.correct = np.zeros(epochs, dtype=np.int64)
        self.step_count = np.array([opt.step_count], dtype=np.int64)
        self.backup_valid = np.zeros(1, dtype=np.int64)
        self.inputs_checked = False
        self.small = None
        if getattr(opt, "is_plain", lambda: False)():
            self.small = net._small_module()
        if self.small is not None:
            # the generated code takes one flag per layer (1: frozen), from the first parameter of each
            w_offsets = net._layout.w_offsets
            self.frozen_layers = np.array([frozen[w] if frozen.size else 0 for w in w_offsets], dtype=np.uint8)
        self.shared = None
        if self.small is not None:
            self.backup = net._backup
        else:
            self.backup = np.empty(net.n_params + opt.state1.shape[0] + opt.state2.shape[0], dtype=net.dtype)
            self.hyper = opt.hyper()
            self.ws = net._work(batch_size)
            bounds = _parallel.thread_bounds(net._layout, batch_size)
            if bounds is not None:
                self.shared = _SharedRun.for_run(net, opt, frozen, batch_size, bounds)

    def check_inputs(self):
        """ValueError naming the first NaN or infinite entry of X or D."""
        check_finite(self.X, "X")
        check_finite(self.D, "D")

    def epochs(self, start, stop):
        """Train epochs start..stop-1 (indices into this run's arrays); DivergenceError on a non-finite loss.

        The first call checks that X and D are finite (ValueError, with nothing changed, if not): on
        the threaded path inside the compiled run, while the helper threads start, else here."""
        net = self.net
        lrs = self.epoch_lrs_dtype[start:stop]
        losses = self.losses[start:stop]
        check = not self.inputs_checked
        self.inputs_checked = True
        if check and self.shared is None:
            self.check_inputs()
        if self.small is not None:
            status = self.small.fit_epochs(
                net._theta, self.X, self.D, lrs, self.batch_size, self.shuffle, self.rng_state,
                self.backup, self.backup_valid, self.order, losses, self.frozen_layers,
            )  # fmt: skip
            self.opt.step_count += (stop - start) * -(-self.n // self.batch_size) if status < 0 else 0
        elif self.shared is not None and self.shared.epochs(
            self, lrs, losses, self.correct[start:stop], last=stop == self.n_epochs, check_inputs=check
        ):
            status = self.shared.status
            self.opt.step_count = int(self.step_count[0])
        else:
            if check and self.shared is not None:  # the threads were busy: the run goes on here
                self.check_inputs()
            ws = self.ws
            status = _engine.fit_epochs(
                net._theta, net._layout.packed, self.X, self.D, lrs, self.batch_size, self.shuffle, self.rng_state,
                self.opt.code, self.hyper, self.opt.state1, self.opt.state2, self.step_count, self.frozen,
                ws.work, net._grad, self.backup, self.backup_valid, ws.x_batch, ws.d_batch,
                self.order, losses, self.correct[start:stop],
            )  # fmt: skip
            self.opt.step_count = int(self.step_count[0])
        if status >= 0:
            n_batches = -(-self.n // self.batch_size)
            epoch, batch = divmod(int(status), n_batches)
            epoch += start
            raise DivergenceError(epoch, batch, self.history(epoch, net._loss != "squared_error"))

    def history(self, epochs, classify):
        return History(
            self.losses[:epochs].copy(),
            accuracy=self.correct[:epochs] / self.n if classify else None,
            lr=self.epoch_lrs[:epochs].copy(),
        )


class _SharedRun:
    """The packed buffers of fit runs on several threads (see ``fastbp._parallel``), kept by the network
    for the next run with the same batch size and kind of optimizer state."""

    def __init__(self, net, batch_size, bounds, has_state1, has_state2, has_frozen):
        layout = net._layout
        n_threads = len(bounds) - 1
        n_in, h, n_out = (int(s) for s in layout.sizes)
        self.key = (batch_size, tuple(bounds), has_state1, has_state2, has_frozen)
        self.bounds = bounds
        self.offsets = _parallel.block_offsets(layout.sizes, bounds)
        size = int(self.offsets[-1])
        dtype = net.dtype
        self.params = np.zeros(size, dtype=dtype)
        self.grad = np.zeros(size, dtype=dtype)
        self.state1 = np.zeros(size if has_state1 else 0, dtype=dtype)
        self.state2 = np.zeros(size if has_state2 else 0, dtype=dtype)
        self.backup = np.zeros(size + self.state1.shape[0] + self.state2.shape[0], dtype=dtype)
        self.frozen = np.zeros(size if has_frozen else 0, dtype=np.bool_)
        widest = max(int(bounds[t + 1] - bounds[t]) for t in range(n_threads))
        per_thread = batch_size * (n_in + 4 * n_out + 3 * widest) + n_out * widest + 8
        self.scratch = np.zeros((n_threads, per_thread), dtype=dtype)
        self.shares = np.zeros((2, n_threads, batch_size * n_out + 8), dtype=dtype)
        self.sync = np.zeros(_parallel._sync.SYNC_LENGTH, dtype=np.int64)
        # each thread's own generator state, step count and backup flag, a cache line apart: the
        # threads write theirs every step, and on one line they would take it from each other each time
        self.rng = np.zeros((n_threads, 8), dtype=np.uint64)
        self.orders = np.zeros((n_threads, 0), dtype=np.int64)
        self.counts = np.zeros((n_threads, 8), dtype=np.int64)
        self.valid = np.zeros((n_threads, 8), dtype=np.int64)
        self.status = -1

    @classmethod
    def for_run(cls, net, opt, frozen, batch_size, bounds):
        key = (batch_size, tuple(bounds), opt.state1.shape[0] > 0, opt.state2.shape[0] > 0, frozen.shape[0] > 0)
        cached = net._shared_run
        if cached is None or cached.key != key:
            cached = net._shared_run = cls(net, *key[:1], bounds, *key[2:])
        return cached

    def epochs(self, run, lrs, losses, correct, last, check_inputs):
        """Train run's epochs on the helper threads; False (nothing done) if another run has them.
        ``last``: no epochs of the run follow (the divergence backup then need not be unpacked).
        ``check_inputs``: check first that X and D are finite (ValueError, and nothing changed, if not)."""
        n_threads = len(self.bounds) - 1
        helpers = _parallel.acquire_helpers(n_threads - 1)
        if helpers is None:
            return False
        net, opt = run.net, run.opt
        layout = net._layout.packed
        try:
            if self.frozen.shape[0]:
                _parallel.pack(run.frozen, layout, self.bounds, self.offsets, self.frozen)
            if self.orders.shape[1] != run.n + 8:
                self.orders = np.empty((n_threads, run.n + 8), dtype=np.int64)  # rows padded, as above
            self.orders[:, : run.n] = run.order
            self.rng[:] = run.rng_state[0]
            self.counts[:] = run.step_count[0]
            self.valid[:] = run.backup_valid[0]

            def args_of(t):
                return (
                    t, self.sync, self.bounds, self.offsets, layout, run.X, run.D, lrs, run.batch_size, run.shuffle,
                    self.rng[t], self.orders[t, : run.n], opt.code, run.hyper, self.counts[t], self.frozen, self.params,
                    self.state1, self.state2, self.grad, self.backup, self.valid[t], self.scratch[t], self.shares,
                    losses, correct, net._theta, opt.state1, opt.state2, run.backup, pack_backup, not last,
                    check_inputs, helpers.control,
                )  # fmt: skip

            pack_backup = bool(run.backup_valid[0])
            bad = _parallel._sync.INPUTS_BAD
            self.sync[bad : bad + 2] = 0  # no thread of this run has started yet
            self.status = _parallel.run_shares(helpers, args_of)
        finally:
            helpers.lock.release()
        if self.status == _parallel.BAD_INPUT:
            run.check_inputs()
            raise RuntimeError("the threads of fit found a NaN or an infinity in X or D that the check did not")
        run.order[:] = self.orders[0, : run.n]
        run.rng_state[0] = self.rng[0, 0]
        run.step_count[0] = self.counts[0, 0]
        run.backup_valid[0] = self.valid[0, 0]
        return True


class LayerTrace:
    """One layer's numbers for one sample.

    z, y, delta, grad_biases: (n_units,); grad_weights, new_weights: (n_below, n_units).
    """

    def __init__(self, index, activation, z, y, delta, grad_weights, grad_biases, new_weights=None, new_biases=None):
        self.index = index
        self.activation = activation
        self.z = z
        self.y = y
        self.delta = delta
        self.grad_weights = grad_weights
        self.grad_biases = grad_biases
        self.new_weights = new_weights
        self.new_biases = new_biases


class Trace:
    """Every number of one forward and backward pass for one sample, named as in the tutorial.

    ``x``, ``d``: the input and target; ``E``: 1/2 sum_j (y_j - d_j)^2;
    ``layers[l]``: a :class:`LayerTrace` for layer l+1 (``layers[-1]`` is the
    output layer L).  With ``lr`` given, each layer also has the weights and
    biases one gradient-descent step would give (the network is not changed).
    ``str(trace)`` prints it all.
    """

    def __init__(self, x, d, E, layers, lr=None):
        self.x = x
        self.d = d
        self.E = E
        self.layers = layers
        self.lr = lr

    @property
    def y(self):
        """The network's output y^(L)."""
        return self.layers[-1].y

    def __str__(self):
        def fmt(a):
            return np.array2string(np.asarray(a), precision=6, floatmode="maxprec", suppress_small=False)

        L = len(self.layers)
        out = [f"input x = {fmt(self.x)}, target d = {fmt(self.d)}", "forward:"]
        for layer in self.layers:
            out.append(f"  layer {layer.index} ({layer.activation}): z = {fmt(layer.z)}, y = f(z) = {fmt(layer.y)}")
        out.append(f"error E = 1/2 sum_j (y_j - d_j)^2 = {self.E:.10g}")
        out.append("backward:")
        for layer in reversed(self.layers):
            rule = "(y - d) * f'(z)" if layer.index == L else "(sum_k delta_k w_jk) * f'(z)"
            out.append(f"  layer {layer.index}: delta = {rule} = {fmt(layer.delta)}")
            out.append(f"    dE/dw_ij = delta_j y_i = {fmt(layer.grad_weights).replace(chr(10), chr(10) + '    ')}")
            out.append(f"    dE/db_j = delta_j = {fmt(layer.grad_biases)}")
        if self.lr is not None:
            out.append(f"update with eta = {self.lr:g}: w <- w - eta dE/dw, b <- b - eta dE/db")
            for layer in self.layers:
                out.append(f"  layer {layer.index}: W = {fmt(layer.new_weights).replace(chr(10), chr(10) + '    ')}")
                out.append(f"           b = {fmt(layer.new_biases)}")
        return "\n".join(out)

    def __repr__(self):
        return f"Trace(E={self.E!r}, y={self.y!r})"


def _check_sizes(sizes):
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"sizes must be a list of positive integers, got {sizes!r}") from exc
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output layer, got {sizes}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"every layer needs at least one unit, got sizes {sizes}")
    return sizes


def _check_activations(activations, n_layers):
    if isinstance(activations, str):
        activations = [activations] * n_layers
    activations = list(activations)
    if len(activations) != n_layers:
        raise ValueError(
            f"need one activation per non-input layer: {n_layers} for these sizes, "
            f"got {len(activations)} ({activations})"
        )
    for layer, spec in enumerate(activations):
        name = parse_activation(spec)[0]
        if name in OUTPUT_ONLY and layer != n_layers - 1:
            raise ValueError(f"{name!r} can only be the output layer's activation, got it for layer {layer + 1}")
    return activations


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
        :func:`fastbp.activations.init_bound` (He for relu, Glorot otherwise);
        biases start at zero.
    """

    def __init__(self, sizes, activations, loss="squared_error", dtype=np.float64, seed=None):
        sizes = _check_sizes(sizes)
        activations = _check_activations(activations, len(sizes) - 1)
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
        sizes = _check_sizes([weights[0].shape[0]] + [w.shape[1] for w in weights])
        activations = _check_activations(activations, len(weights))
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
        from .persistence import save

        save(self, path)

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
        frozen = self._frozen_mask(trainable)
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
        opt.bind(self.n_params, self._dtype)  # last: every argument is checked before the optimizer is touched
        run = _FitRun(self, X2, D2, epoch_lrs, batch_size, shuffle, seed, opt, frozen)
        with self._lock:
            if validation_data is None and patience is None and not callbacks:
                run.epochs(0, epochs)
                history = run.history(epochs, classify)
            else:
                history = self._fit_per_epoch(run, epochs, classify, validation, patience, min_delta, callbacks)
        self.optimizer = opt
        return history

    def _fit_per_epoch(self, run, epochs, classify, validation, patience, min_delta, callbacks):
        val_loss, val_acc = [], []
        best, best_epoch, best_theta, waited = np.inf, None, None, 0
        for epoch in range(epochs):
            run.epochs(epoch, epoch + 1)
            logs = {"loss": float(run.losses[epoch]), "lr": float(run.epoch_lrs[epoch])}
            if classify:
                logs["accuracy"] = run.correct[epoch] / run.n
            if validation is not None:
                E_val, acc_val = self._evaluate(*validation)
                val_loss.append(E_val)
                logs["val_loss"] = E_val
                if classify:
                    val_acc.append(acc_val)
                    logs["val_accuracy"] = acc_val
            stop = False
            if patience is not None:
                monitored = logs["val_loss"] if validation is not None else logs["loss"]
                if monitored < best - min_delta:
                    best, best_epoch, waited = monitored, epoch, 0
                    best_theta = self._theta.copy()
                else:
                    waited += 1
                    stop = waited >= patience
            for cb in callbacks:
                self._lock.release()  # a callback may use the network
                try:
                    stop = bool(cb(self, epoch, dict(logs))) or stop
                finally:
                    self._lock.acquire()
            if stop:
                epochs = epoch + 1
                break
        if patience is not None and best_theta is not None:
            self._theta[...] = best_theta
        history = run.history(epochs, classify)
        if validation is not None:
            history.val_loss = np.asarray(val_loss)
            history.val_accuracy = np.asarray(val_acc) if classify else None
        history.best_epoch = best_epoch
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

    def _frozen_mask(self, trainable):
        """bool (n_params,) marking the parameters of layers not trained; length 0 when all are trained."""
        if trainable is None:
            return np.zeros(0, dtype=np.bool_)
        flags = list(trainable)
        n_layers = len(self._activations)
        if len(flags) != n_layers or not all(isinstance(f, (bool, np.bool_)) for f in flags):
            raise ValueError(f"trainable must be {n_layers} booleans, one per non-input layer, got {trainable!r}")
        if all(flags):
            return np.zeros(0, dtype=np.bool_)
        frozen = np.zeros(self.n_params, dtype=np.bool_)
        for layer, flag in enumerate(flags):
            if not flag:
                start = int(self._layout.w_offsets[layer])
                frozen[start : int(self._layout.b_offsets[layer]) + self._sizes[layer + 1]] = True
        return frozen

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
        grad = np.empty_like(self._theta)
        with self._lock:
            ws = self._work(1)
            E = _engine.loss_and_gradient(self._theta, self._layout.packed, X2, D2, ws.work, grad)
            g = Gradients(self._layout, grad)
            layers = []
            for layer, name in enumerate(self._activations):
                new_w = new_b = None
                if lr is not None:
                    new_w = self.weights[layer] - self._dtype.type(lr) * g.weights[layer]
                    new_b = self.biases[layer] - self._dtype.type(lr) * g.biases[layer]
                layers.append(
                    LayerTrace(
                        layer + 1,
                        name,
                        ws.rows(ws.z, self._layout, layer, 1)[0],
                        ws.rows(ws.y, self._layout, layer, 1)[0],
                        ws.rows(ws.delta, self._layout, layer, 1)[0],
                        g.weights[layer],
                        g.biases[layer],
                        new_w,
                        new_b,
                    )
                )
        return Trace(X2[0].copy(), D2[0].copy(), float(E), layers, lr)


__all__ = ["Network", "Gradients", "History", "Trace", "LayerTrace", "ACTIVATION_NAMES"]
