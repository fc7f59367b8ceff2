"""Checks at the Python boundary, run before any kernel sees an array.

numba does not check bounds, so every shape a kernel relies on is checked
here.  Each function returns an array the kernels can take as it is: the
network's dtype, C-contiguous, writeable (numba types read-only arrays
differently), and never the caller's own array when a copy was needed.
"""

import numbers

import numpy as np

from fastbp.kernels._jit_utils import all_finite_flat, all_within
from fastbp.nn.activations import OUTPUT_ONLY, parse_activation
from fastbp.nn.layout import Gradients
from fastbp.nn.losses import TARGET_RANGE

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_float_dtype(dtype, name="dtype"):
    """The dtype as np.dtype if it is float32 or float64, else TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt}")
    return dt


def as_float_array(a, name, dtype):
    """``a`` as a C-contiguous writeable array of ``dtype``; refuses complex, object and string data."""
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    if arr.dtype != dtype or not arr.flags.c_contiguous or not arr.flags.writeable:
        arr = np.array(arr, dtype=dtype, order="C", copy=True)
    return arr


def check_finite(arr, name):
    """ValueError naming the first NaN or infinite entry of ``arr``, an array of real numbers."""
    if arr.dtype in FLOAT_DTYPES:  # compiled, ~0.1 ns an entry
        finite = all_finite_flat(arr.reshape(-1))
    else:  # integers and booleans are finite; float16 and longdouble go to numpy
        finite = arr.dtype.kind in "biu" or bool(np.all(np.isfinite(arr)))
    if not finite:
        bad = np.argwhere(~np.isfinite(arr))[0]
        index = tuple(int(i) for i in bad)
        where = index[0] if len(index) == 1 else index
        raise ValueError(f"{name} must be finite, but {name}[{where}] is {arr[tuple(bad)]}")


def check_target_range(D, loss, name="D"):
    """ValueError naming the first entry of the 2-D targets ``D`` outside the domain of ``loss`` (NaN passes)."""
    bounds = TARGET_RANGE.get(loss)
    if bounds is None:
        return
    low, high = bounds
    if all_within(D, low, high):
        return
    i, j = (int(k) for k in np.argwhere((D < low) | (D > high))[0])
    allowed = f">= {low:g}" if high == float("inf") else f"in [{low:g}, {high:g}]"
    raise ValueError(f"{loss} needs targets {allowed}, but {name}[{i}, {j}] is {D[i, j]}")


def as_pair(value, name, what):
    """The two items of ``value``, else TypeError naming ``name`` and the pair ``what`` it should be."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair {what}") from None
    return first, second


def as_batch(a, name, n_features, dtype, what="features", check_values=True):
    """``a`` (n_samples, n_features) or (n_features,) as a 2-D array; also whether it was 1-D.
    ``check_values``: also that every entry is finite."""
    arr = as_float_array(a, name, dtype)
    if arr.ndim == 1:
        one_sample = True
        arr = arr.reshape(1, -1)
    elif arr.ndim == 2:
        one_sample = False
    else:
        raise ValueError(f"{name} must be 1-D (one sample) or 2-D (n_samples, {n_features}), got shape {arr.shape}")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} {what}, the network expects {n_features}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has 0 samples")
    if check_values:
        check_finite(arr, name)
    return arr, one_sample


def as_inputs_and_targets(X, D, n_in, n_out, dtype, check_values=True, loss=None, names=("X", "D")):
    """Validated (X, D) as 2-D arrays with as many rows each (``check_values``: and finite), D within the
    domain of ``loss``."""
    X2, x_was_1d = as_batch(X, names[0], n_in, dtype, check_values=check_values)
    D2, d_was_1d = as_batch(D, names[1], n_out, dtype, what="targets per sample", check_values=check_values)
    if X2.shape[0] != D2.shape[0]:
        raise ValueError(f"{names[0]} has {X2.shape[0]} samples but {names[1]} has {D2.shape[0]}")
    check_target_range(D2, loss, names[1])
    return X2, D2, x_was_1d and d_was_1d


def check_positive_number(value, name):
    """``value`` as float if it is a finite number > 0, else ValueError/TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_positive_int(value, name):
    """``value`` as int if it is an integer >= 1, else ValueError/TypeError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    value = int(value)
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_sizes(sizes):
    """``sizes`` as a list of ints, each >= 1, at least two; else TypeError/ValueError."""
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"sizes must be a list of positive integers, got {sizes!r}") from exc
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output layer, got {sizes}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"every layer needs at least one unit, got sizes {sizes}")
    return sizes


def check_activations(activations, n_layers):
    """One activation spec per non-input layer (a single name is repeated); softmax only on the output layer."""
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


def check_weights_and_biases(weights, biases):
    """(sizes, dtype, [(W, b), ...]): checked copies of ``Network.from_weights``' arrays, as float arrays of one
    dtype (float32 stays float32; integer arrays become float64), each W (n_below, n_above) and b (n_above,)
    fitting the layer below and finite."""
    weights = [np.asarray(w) for w in weights]
    biases = [np.asarray(b) for b in biases]
    if len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(f"need one bias vector per weight matrix, got {len(weights)} weights and {len(biases)} biases")
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
    converted = []
    for layer, (w, b) in enumerate(zip(weights, biases)):
        w = as_float_array(w, f"weights[{layer}]", dtype)
        b = as_float_array(b, f"biases[{layer}]", dtype)
        check_finite(w, f"weights[{layer}]")
        check_finite(b, f"biases[{layer}]")
        converted.append((w, b))
    return sizes, dtype, converted


def check_parameters_finite(theta, layout):
    """ValueError naming the first weight or bias in theta (n_params,) that is NaN or infinite."""
    if all_finite_flat(theta):
        return
    k = int(np.argmax(~np.isfinite(theta)))
    layer = int(np.searchsorted(layout.w_offsets, k, side="right")) - 1
    if k >= layout.b_offsets[layer]:
        where = f"biases[{layer}][{k - int(layout.b_offsets[layer])}]"
    else:
        i, j = divmod(k - int(layout.w_offsets[layer]), int(layout.sizes[layer + 1]))
        where = f"weights[{layer}][{i}, {j}]"
    raise ValueError(f"the network's parameters must be finite, but {where} is {theta[k]}")


def check_gradients_out(out, theta):
    """out.flat, if ``out`` is a Gradients of a network with parameters like theta (n_params,); else TypeError."""
    if not isinstance(out, Gradients) or out.flat.shape != theta.shape or out.flat.dtype != theta.dtype:
        raise TypeError(f"out must be a Gradients of this network ({theta.shape[0]} {theta.dtype} values), got {out!r}")
    return out.flat


def check_lr_factors(lr_schedule, epochs):
    """float64 (epochs,): ``lr_schedule(k)`` for each epoch k, checked to be finite and > 0."""
    if not callable(lr_schedule):
        raise TypeError(f"lr_schedule must be callable (epoch -> factor), got {lr_schedule!r}")
    try:
        factors = np.array([float(lr_schedule(k)) for k in range(epochs)])
    except OverflowError as exc:  # e.g. ExponentialDecay(10.0) after 300 epochs: 1e300 ** 2
        raise ValueError(f"lr_schedule must give finite factors > 0, but it overflowed ({exc})") from exc
    if not np.all(np.isfinite(factors) & (factors > 0)):
        raise ValueError(f"lr_schedule must give finite factors > 0, got {factors[~(factors > 0)][:3]}...")
    return factors


def check_min_delta(min_delta):
    """ValueError unless min_delta is a finite number >= 0."""
    if not (isinstance(min_delta, (int, float)) and np.isfinite(min_delta) and min_delta >= 0):
        raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")


def check_callbacks(callbacks):
    """The callbacks as a list, each checked to be callable (None: none)."""
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"every callback must be callable, got {cb!r}")
    return callbacks
