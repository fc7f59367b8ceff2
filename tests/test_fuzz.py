"""Fuzzing every public entry point: random shapes, dtypes, NaN/inf, strides and parameter values.

Each call must either raise a documented error (ValueError, TypeError, or
DivergenceError from fit) with the network left byte for byte as it was, or
return a result equal to the pure-Python reference.  Never a crash.  The
number of examples run is printed in pytest's summary.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp
from fastbp import reference
from fastbp.errors import DivergenceError

from conftest import ENGINES, FUZZ_COUNTS, SMALL_ARCHITECTURES, assert_close, to_lists

DOCUMENTED = (ValueError, TypeError, DivergenceError)
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-3}
# below these magnitudes a float32/float64 result may underflow where the float64 reference does not
FLOOR = {np.dtype(np.float64): 1e-290, np.dtype(np.float32): 1e-30}
SPECIAL = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e-320, 0.0]


@st.composite
def arrays_for(draw, n_rows, n_cols, name):
    """An array meant as X or D, often wrong: shape, dtype, layout, special values."""
    if draw(st.booleans()):  # a well-formed array half of the time, in any layout
        rows, cols, ndim = n_rows, n_cols, 2
        dtype = draw(st.sampled_from(["float64", "float32", "int64"]))
        special = False
    else:
        rows = draw(st.sampled_from([n_rows, n_rows, n_rows, 0, n_rows + 1]))
        cols = draw(st.sampled_from([n_cols, n_cols, n_cols, n_cols + 1, max(n_cols - 1, 0)]))
        ndim = draw(st.sampled_from([2, 2, 2, 1, 3, 0]))
        dtype = draw(st.sampled_from(["float64", "float32", "int64", "bool", "complex128", "object", "U1", "float16"]))
        special = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = rng.uniform(-2, 2, size=(rows, cols))
    if special and base.size:
        for _ in range(draw(st.integers(1, 3))):
            base[rng.integers(rows), rng.integers(cols)] = draw(st.sampled_from(SPECIAL))
    if ndim == 1:
        base = base[0] if rows else np.zeros(cols)
    elif ndim == 3:
        base = base[None]
    elif ndim == 0:
        base = np.array(base.ravel()[0] if base.size else 0.0)
    with np.errstate(all="ignore"):
        if dtype == "U1":
            arr = np.full(base.shape, "x")
        elif dtype == "object":
            arr = base.astype(object)
        else:
            arr = base.astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "strided", "readonly", "list"]))
    if layout == "F":
        arr = np.asfortranarray(arr)
    elif layout == "strided" and arr.ndim >= 1:
        arr = np.repeat(arr, 2, axis=-1)[..., ::2]
    elif layout == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
    elif layout == "list":
        arr = arr.tolist()
    return arr


@st.composite
def cases(draw):
    engine = draw(st.sampled_from(ENGINES))
    if engine == "generic":
        n_layers = draw(st.integers(1, 3))
        sizes = [draw(st.integers(1, 6)) for _ in range(n_layers + 1)]
        activations = [draw(st.sampled_from(reference.ACTIVATION_NAMES)) for _ in range(n_layers)]
    else:  # a compilation per architecture: draw from the fixed list
        sizes, activations = draw(st.sampled_from(SMALL_ARCHITECTURES))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    n = draw(st.integers(1, 5))
    X = draw(arrays_for(n, sizes[0], "X"))
    D = draw(arrays_for(n, sizes[-1], "D"))
    lr = draw(st.sampled_from([0.1, 0.1, 1e-3, 1.0, 0.0, -1.0, np.nan, np.inf, 1e300, 3, True, "0.1", None]))
    weight_scale = draw(st.sampled_from([1.0, 1.0, 1.0, 1e3, 1e150]))
    seed = draw(st.integers(0, 2**32 - 1))
    return engine, sizes, activations, dtype, X, D, lr, weight_scale, seed


def check_against_reference(net, method, X, D, result, W, b):
    """For a call that succeeded: the result equals the reference on the same (converted) inputs."""
    X2 = np.atleast_2d(np.asarray(X, dtype=np.float64))
    acts = list(net.activations)
    with np.errstate(all="ignore"):
        if method == "forward":
            ref = [reference.forward(W, b, acts, x)[1][-1] for x in X2.tolist()]
            got = np.atleast_2d(result)
            if np.all(np.isfinite(ref)):
                assert_close(got, ref, net.dtype, rtol=TOL[net.dtype], what="forward", scale=FLOOR[net.dtype])
        elif method == "gradients":
            D2 = np.atleast_2d(np.asarray(D, dtype=np.float64))
            E, g = result
            try:
                E_ref, gW, gb = reference.gradients(W, b, acts, X2.tolist(), D2.tolist())
            except OverflowError:  # Python floats raise where fastbp gives inf
                assert not np.isfinite(E) or not np.all(np.isfinite(g.flat))
                return
            if np.isfinite(E_ref) and all(np.all(np.isfinite(w)) for w in gW):
                tol, floor = TOL[net.dtype], FLOOR[net.dtype]
                assert_close(E, E_ref, net.dtype, rtol=tol, what="E", scale=floor)
                # gradients relative to the largest of the whole network (a saturated layer's tiny
                # gradients are zero in float32), and to the rounding of E itself
                gmax = max(float(np.max(np.abs(w))) for w in gW)
                floor = max(floor, gmax, np.finfo(net.dtype).eps * max(1.0, abs(E_ref)))
                for layer in range(len(gW)):
                    assert_close(g.weights[layer], gW[layer], net.dtype, rtol=tol, what="dE/dW", scale=floor)


@settings(max_examples=300, deadline=None)
@given(cases(), st.sampled_from(["forward", "gradients", "step", "fit", "trace", "numerical_gradient"]))
def test_fuzz_public_entry_points(case, method):
    engine, sizes, activations, dtype, X, D, lr, weight_scale, seed = case
    net = fastbp.Network(sizes, activations, dtype=dtype, seed=seed)
    if engine == "generic":
        net._small = None
    with np.errstate(over="ignore", invalid="ignore"):  # float32 * 1e150 is inf: a non-finite parameter
        net.flat_parameters[...] *= np.float64(weight_scale).astype(dtype)
    W, b = to_lists(net.weights), to_lists(net.biases)
    before = net.flat_parameters.tobytes()
    calls = {
        "forward": lambda: net.forward(X),
        "gradients": lambda: net.gradients(X, D),
        "step": lambda: net.step(X, D, lr=lr),
        "fit": lambda: net.fit(X, D, epochs=2, lr=lr, batch_size=2, seed=0),
        "trace": lambda: net.trace(X, D),
        "numerical_gradient": lambda: fastbp.numerical_gradient(net, X, D),
    }
    with np.errstate(all="ignore"):
        try:
            result = calls[method]()
        except DOCUMENTED as exc:
            FUZZ_COUNTS["refused"] += 1
            if not isinstance(exc, DivergenceError):
                assert net.flat_parameters.tobytes() == before, f"{method} raised {exc!r} but changed the network"
            else:
                assert np.all(np.isfinite(net.flat_parameters))
            return
    FUZZ_COUNTS["accepted"] += 1
    if method in ("forward", "gradients"):
        check_against_reference(net, method, X, D, result, W, b)
        assert net.flat_parameters.tobytes() == before
    if method == "numerical_gradient":
        assert net.flat_parameters.tobytes() == before
