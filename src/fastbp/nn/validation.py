"""Checks at the Python boundary, run before any kernel sees an array.

numba does not check bounds, so every shape a kernel relies on is checked
here.  Each function returns an array the kernels can take as it is: the
network's dtype, C-contiguous, writeable (numba types read-only arrays
differently), and never the caller's own array when a copy was needed.
The checks of the integrations' arguments (scikit-learn's hyperparameters,
Dask's arrays, configurations and options) are here too.
"""

import math
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


def check_instance(value, name, types, description, allow_none=False):
    """``value`` if it is an instance of ``types`` (or None, with ``allow_none``), else TypeError saying that it
    must be ``description`` ("a dict", "a fastbp.Network", ...)."""
    if not (allow_none and value is None) and not isinstance(value, types):
        raise TypeError(f"{name} must be {description}, got {type(value).__name__}")
    return value


def check_bool(value, name):
    """``value`` if it is a bool (Python's or numpy's), else TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def check_bool_or_int(value, name):
    """``value`` if it is a bool or an integer, else TypeError."""
    if not isinstance(value, (bool, np.bool_, numbers.Integral)):
        raise TypeError(f"{name} must be a bool or an int, got {value!r}")
    return value


def check_int_at_least(value, name, low=1):
    """``value`` as int if it is an integer >= ``low`` (a bool is not), else TypeError/ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def check_non_negative_int(value, name):
    """``value`` as int if it is an integer >= 0 (a bool is not), else ValueError, a non-integer included."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def check_seed(seed, required_because=None):
    """``seed`` as int if it is an integer >= 0, None if it is None, else ValueError.
    ``required_because``: None is refused too, the message saying why ("with shuffle=True: ...")."""
    if seed is None:
        if required_because is not None:
            raise ValueError(f"seed is required {required_because}")
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)


def check_real_number(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as float if it is a finite real number with low <= value <= high (``low_open``, ``high_open``:
    that end excluded; None: no bound), else TypeError/ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad = bad or value < low or (low_open and value == low)
    if high is not None:
        bad = bad or value > high or (high_open and value == high)
    if bad:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be a finite number with {lo}{name}{hi}, got {value!r}")
    return value


def check_option(value, name, options):
    """``value`` if it is one of the strings ``options``, else ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {value!r}")
    return value


def check_option_or_none(value, name, options):
    """``value`` if it is None or in ``options`` (a tuple or dict of names), else ValueError listing them."""
    if value is not None and value not in options:
        raise ValueError(f"{name} must be None or one of {', '.join(options)}, got {value!r}")
    return value


def check_either(value, name, options):
    """``value`` if it is in ``options``, two strings, else ValueError: '``name`` must be "a" or "b"'."""
    if value not in options:
        first, second = options
        raise ValueError(f'{name} must be "{first}" or "{second}", got {value!r}')
    return value


def reject_unsupported(value, name, unsupported, by, advice):
    """ValueError if ``value == unsupported``: an option a caller may know from elsewhere that ``by`` lacks."""
    if value == unsupported:
        raise ValueError(f"{name}={unsupported!r} is not supported by {by}: {advice}")


def as_hidden_layer_sizes(value, name="hidden_layer_sizes"):
    """``value``, an int or a sequence of ints >= 1 (units of each hidden layer), as a list of int."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        sizes = [value]
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}")
    else:
        sizes = list(value)
    for s in sizes:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{name} must hold integers, got {value!r}")
        if s < 1:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    return [int(s) for s in sizes]


def as_row_counts(row_chunks, name="row_chunks"):
    """``row_chunks``, a sequence of row counts (integers >= 0, one per chunk), as a list of int."""
    if isinstance(row_chunks, (str, bytes)) or not hasattr(row_chunks, "__iter__"):
        raise TypeError(f"{name} must be a sequence of row counts (integers >= 0), got {row_chunks!r}")
    row_chunks = list(row_chunks)
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)) for c in row_chunks):
        raise TypeError(f"{name} must be row counts (integers >= 0), got {row_chunks}")
    row_chunks = [int(c) for c in row_chunks]
    if any(c < 0 for c in row_chunks):
        raise ValueError(f"{name} must be row counts >= 0, got {row_chunks}")
    return row_chunks


def check_known_keys(mapping, name, valid_keys):
    """ValueError listing the keys of ``mapping`` that are not in ``valid_keys``, if any."""
    unknown = sorted(set(mapping) - set(valid_keys))
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; valid keys are {', '.join(valid_keys)}")


def check_required_keys(mapping, name, required):
    """ValueError listing the keys of ``required`` that ``mapping`` lacks, if any."""
    missing = [key for key in required if key not in mapping]
    if missing:
        raise ValueError(f"{name} needs {' and '.join(missing)}")


def check_not_empty(n_items, name, detail):
    """ValueError '``name`` is empty: ``detail``' if ``n_items`` (its length, or its number of rows) is 0."""
    if n_items == 0:
        raise ValueError(f"{name} is empty: {detail}")


def as_numpy_array(a, name, description="a numpy array"):
    """``np.asarray(a)``; TypeError saying that ``a`` must be ``description`` if numpy cannot make an array of it."""
    try:
        return np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be {description}, got {type(a).__name__}") from exc


def check_real_dtype(arr, name):
    """TypeError unless ``arr`` (any array with a numpy dtype: numpy, dask, ...) holds real numbers."""
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")


def check_2d(arr, name):
    """ValueError unless ``arr`` is 2-D (n_samples, n_columns)."""
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {arr.shape}")


def check_known_row_chunks(row_chunks, name):
    """ValueError if a size in ``row_chunks`` (a dask array's ``chunks[0]``) is unknown, i.e. NaN."""
    if any(math.isnan(c) for c in row_chunks):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")


def check_same_rows(n_first, n_second, names=("X", "D")):
    """ValueError unless the two arrays ``names`` have as many rows, ``n_first`` and ``n_second``."""
    if n_first != n_second:
        raise ValueError(f"{names[0]} has {n_first} rows but {names[1]} has {n_second}")


def check_columns(n_columns, name, n_expected, what="features"):
    """ValueError unless ``name`` has the ``n_expected`` columns (``what``: features, targets per sample) of
    the network."""
    if n_columns != n_expected:
        raise ValueError(f"{name} has {n_columns} {what}, the network expects {n_expected}")


def check_same_widths(pair, reference, name, reference_names=("X", "D")):
    """ValueError unless the 2-D arrays ``pair`` (Xv, Dv) have as many columns as ``reference`` (X, D)."""
    (Xv, Dv), (X, D) = pair, reference
    if Xv.shape[1] != X.shape[1] or Dv.shape[1] != D.shape[1]:
        raise ValueError(
            f"{name} has {Xv.shape[1]} features and {Dv.shape[1]} targets, "
            f"{reference_names[0]} and {reference_names[1]} have {X.shape[1]} and {D.shape[1]}"
        )


def check_finite_rows(arr, name, first_row=0):
    """ValueError naming the first NaN or infinite entry of the 2-D ``arr``, its row counted from ``first_row``
    (the global row of a chunk's first row)."""
    if not np.all(np.isfinite(arr)):
        row, col = (int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite, but {name}[{first_row + row}, {col}] is {arr[row, col]}")
