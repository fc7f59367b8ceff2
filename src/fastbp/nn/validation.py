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
