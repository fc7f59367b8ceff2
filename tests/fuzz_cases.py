"""The fuzz suite's cases: for each group of public entry points, a hypothesis strategy that draws a case
(plain data, sent to a worker process) and a function that runs it there and classifies the outcome.

This module holds the registry, the classification and the groups around ``Network`` (its methods,
constructors, optimizers and schedules); ``fuzz_cases_io`` holds ``load``, the scikit-learn estimators,
``fastbp.distributed`` and the ``fastbp`` command.  See ``fuzz_harness`` for the outcomes.
"""

import dataclasses
import math

import numpy as np
from hypothesis import strategies as st

import fastbp
from fastbp import reference
from fastbp.errors import DivergenceError

from conftest import SMALL_ARCHITECTURES, assert_close, to_lists

TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-3}
# below these magnitudes a float32/float64 result may underflow where the float64 reference does not
FLOOR = {np.dtype(np.float64): 1e-290, np.dtype(np.float32): 1e-30}
SPECIAL = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e-320, 0.0]
# a number-like argument, often wrong
NUMBERS = [0.1, 1e-3, 1.0, 3, 0.0, -1.0, np.nan, np.inf, 1e300, True, "0.1", None, 2**70, np.float32(0.5), [0.1]]


@dataclasses.dataclass
class Group:
    weight: int  # share of the cases
    strategy: object  # () -> hypothesis strategy of a case
    run: object  # case -> (outcome, detail), in the worker


GROUPS = {}


def group(name, weight, strategy):
    def register(run):
        GROUPS[name] = Group(weight, strategy, run)
        return run

    return register


def execute(name, case):
    """Run one case of group ``name`` (in the worker) and return (outcome, detail)."""
    with np.errstate(all="ignore"):
        return GROUPS[name].run(case)


def is_clear(exc):
    """A documented error type with a message that says something (not a numba dump, not a bare key)."""
    message = str(exc)
    return (
        isinstance(exc, (ValueError, TypeError, DivergenceError))
        and len(message) >= 12
        and "numba" not in message.lower()
        and "Traceback" not in message
    )


def classify(call, snapshot, check=None, changes_allowed_on=(DivergenceError,)):
    """Run ``call`` and classify it.

    ``snapshot()`` captures everything the call was given (parameters, optimizer state, estimator
    attributes); an error must leave it unchanged (except the errors in ``changes_allowed_on``, which
    put back a documented earlier state, and are checked by ``check(None, exc)``).  ``check(result, None)``
    returns a description of what is wrong with an accepted call's result, or None.
    """
    before = snapshot()
    try:
        result = call()
    except Exception as exc:
        if not is_clear(exc):
            return "unclear error", f"{type(exc).__name__}: {str(exc)[:300]}"
        if isinstance(exc, changes_allowed_on):
            problem = check(None, exc) if check else None
            return ("half-updated network", problem) if problem else ("clear error", None)
        if snapshot() != before:
            return "half-updated network", f"{type(exc).__name__}: {exc} (but the state changed)"
        return "clear error", None
    try:
        problem = check(result, None) if check else None
    except AssertionError as exc:
        problem = str(exc)
    return ("silent wrong answer", problem) if problem else ("correct result", None)


def net_snapshot(net):
    opt = net.optimizer
    return net.flat_parameters.tobytes(), None if opt is None else opt_snapshot(opt)


def opt_snapshot(opt):
    states = tuple(None if s is None else (s.dtype.str, s.shape, s.tobytes()) for s in (opt.state1, opt.state2))
    return type(opt).__name__, opt.get_params(), states, opt.step_count


# ---- arrays -------------------------------------------------------------------------------------------------


@st.composite
def arrays_for(draw, n_rows, n_cols, kind="float"):
    """An array meant as X or D, often wrong: shape, dtype, layout, special values.
    ``kind="target"``: well-formed values are in [0, 1] (every loss's domain) and integers are 0/1."""
    if draw(st.booleans()):  # a well-formed array half of the time, in any layout
        rows, cols, ndim = n_rows, n_cols, 2
        dtype = draw(st.sampled_from(["float64", "float32", "int64", "uint8"]))
        special = False
    else:
        rows = draw(st.sampled_from([n_rows, n_rows, n_rows, 0, n_rows + 1]))
        cols = draw(st.sampled_from([n_cols, n_cols, n_cols, n_cols + 1, max(n_cols - 1, 0)]))
        ndim = draw(st.sampled_from([2, 2, 2, 1, 3, 0]))
        dtype = draw(
            st.sampled_from(["float64", "float32", "int64", "uint64", "bool", "complex128", "object", "U1", "float16"])
        )
        special = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    low = 0.0 if kind == "target" else -2.0
    high = 1.0 if kind == "target" else 2.0
    base = rng.uniform(low, high, size=(rows, cols))
    if dtype in ("int64", "uint8", "uint64", "bool"):
        base = np.round(base) if kind == "target" else np.round(base * 3)
    if special and base.size:
        for _ in range(draw(st.integers(1, 3))):
            base[rng.integers(rows), rng.integers(cols)] = draw(st.sampled_from(SPECIAL + [2.0, -0.5, 2**64 - 1]))
    if ndim == 1:
        base = base[0] if rows else np.zeros(cols)
    elif ndim == 3:
        base = base[None]
    elif ndim == 0:
        base = np.array(base.ravel()[0] if base.size else 0.0)
    if dtype == "U1":
        arr = np.full(base.shape, "x")
    elif dtype == "object":
        arr = base.astype(object)
    else:
        with np.errstate(all="ignore"):  # NaN and 1e308 as integers: whatever numpy makes of them
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


# ---- networks -----------------------------------------------------------------------------------------------

LOSS_OUTPUT = {"squared_error": None, "cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}


@st.composite
def architectures(draw):
    """(engine, sizes, activations, loss): the generic engine on any small shape, the generated code on a
    fixed list (one compilation each)."""
    engine = draw(st.sampled_from(["generic", "specialized"]))
    loss = draw(st.sampled_from(["squared_error", "squared_error", "cross_entropy", "binary_cross_entropy"]))
    if engine == "generic":
        n_layers = draw(st.integers(1, 3))
        sizes = [draw(st.integers(1, 6)) for _ in range(n_layers + 1)]
        names = reference.ACTIVATION_NAMES + ("leaky_relu", "elu", "softplus", "gelu")
        activations = [draw(st.sampled_from(names)) for _ in range(n_layers)]
    else:
        sizes, activations = draw(st.sampled_from(SMALL_ARCHITECTURES))
        sizes, activations = list(sizes), list(activations)
    if LOSS_OUTPUT[loss] is not None:
        activations[-1] = LOSS_OUTPUT[loss]
        if loss == "cross_entropy" and sizes[-1] == 1:
            sizes[-1] = 2
    return engine, sizes, activations, loss


def build(engine, sizes, activations, loss, dtype, seed, weight_scale=1.0):
    net = fastbp.Network(sizes, activations, loss=loss, dtype=dtype, seed=seed)
    if engine == "generic":
        net._passes.small = None
    net.flat_parameters[...] *= np.float64(weight_scale).astype(dtype)  # float32 * 1e150 is inf
    return net


SCHEDULES = [None, ("step", 1, 0.5), ("step", 0, 0.5), ("step", 2.5, 0.5), ("exp", 0.9), ("exp", -1.0),
             ("exp", 1e300), ("exp", math.nan), ("const", 0.5), ("const", -1.0), ("const", math.nan),
             ("const", "x"), ("const", None), ("not callable",)]  # fmt: skip


def make_schedule(spec):
    """A schedule from its description: fastbp's own, a constant function, or something not callable."""
    if spec is None:
        return None
    if spec[0] == "step":
        return fastbp.StepDecay(spec[1], spec[2])
    if spec[0] == "exp":
        return fastbp.ExponentialDecay(spec[1])
    if spec[0] == "const":
        return lambda k: spec[1]
    return 3.0


@st.composite
def fit_arguments(draw, n):
    def maybe(values):
        return draw(st.sampled_from(values))

    return dict(
        epochs=maybe([1, 2, 3, 0, -1, 2.5, "2", True, None]),
        batch_size=maybe([1, 2, n, n + 5, 0, -1, 2.5, True]),
        shuffle=maybe([True, False, 1, None]),
        seed=maybe([0, 1, None, -1, 2**70, 1.5, "x"]),
        optimizer=maybe([None, None, "sgd", "adam", "adamw", "rmsprop", 3, "Adam"]),
        trainable=maybe([None, None, "all-but-first", "none", [True], "ints", "strings"]),
        validation=maybe([None, None, "same", "bad", "triple", "number"]),
        patience=maybe([None, None, 1, 0, -1, 1.5]),
        min_delta=maybe([0.0, 0.1, -1.0, math.nan, "x"]),
        schedule=maybe(SCHEDULES),
        callbacks=maybe([None, "stop", "count", "not callable"]),
    )


@st.composite
def network_case(draw):
    engine, sizes, activations, loss = draw(architectures())
    n = draw(st.integers(1, 5))
    return dict(
        arch=(engine, sizes, activations, loss),
        dtype=draw(st.sampled_from(["float64", "float32"])),
        X=draw(arrays_for(n, sizes[0])),
        D=draw(arrays_for(n, sizes[-1], kind="target")),
        lr=draw(st.sampled_from(NUMBERS)),
        weight_scale=draw(st.sampled_from([1.0, 1.0, 1.0, 1e3, 1e150])),
        seed=draw(st.integers(0, 2**32 - 1)),
        method=draw(st.sampled_from(["forward", "gradients", "step", "fit", "evaluate", "trace", "numgrad", "copy"])),
        fit=draw(fit_arguments(n)),
    )


def _fit_kwargs(net, spec, X, D, lr):
    trainable = spec["trainable"]
    n_layers = len(net.activations)
    trainable = {
        "all-but-first": [False] + [True] * (n_layers - 1),
        "none": [False] * n_layers,
        "ints": [1] * n_layers,
        "strings": ["yes"] * n_layers,
    }.get(trainable, trainable) if isinstance(trainable, str) else trainable  # fmt: skip
    validation = {"same": (X, D), "bad": (X, np.zeros((1, 99))), "triple": (X, D, D), "number": 3.0}
    callbacks = {
        "stop": [lambda net, epoch, logs: True],
        "count": [lambda net, epoch, logs: None],
        "not callable": [3],
    }
    kwargs = dict(
        epochs=spec["epochs"], lr=lr, batch_size=spec["batch_size"], shuffle=spec["shuffle"], seed=spec["seed"],
        optimizer=spec["optimizer"], trainable=trainable, validation_data=validation.get(spec["validation"]),
        patience=spec["patience"], min_delta=spec["min_delta"], lr_schedule=spec["schedule"],
        callbacks=callbacks.get(spec["callbacks"]),
    )  # fmt: skip
    if isinstance(kwargs["optimizer"], str) and kwargs["optimizer"].startswith("adam") and kwargs["lr"] == 0.1:
        kwargs["lr"] = 1e-3
    return kwargs, trainable


def _headroom(ref, dtype):
    """True if the reference's values are far enough (1e3) below the dtype's largest number that no
    order of the sums can overflow: near it, fastbp (sums over the batch, then the mean) and the reference
    (in another order) may round to inf at different places, and neither is wrong."""
    with np.errstate(all="ignore"):
        biggest = float(np.max(np.abs(np.asarray(ref, dtype=np.float64)))) if np.size(ref) else 0.0
    return np.isfinite(biggest) and biggest * 1e3 < float(np.finfo(dtype).max)


def _check_reference(net, method, X, D, result, W, b):
    """For an accepted call: the result equals the pure-Python reference on the same (converted) inputs."""
    X2 = np.atleast_2d(np.asarray(X, dtype=np.float64))
    acts, loss = list(net.activations), net.loss
    tol, floor = TOL[net.dtype], FLOOR[net.dtype]
    if method == "forward":
        ref = [reference.forward(W, b, acts, x)[1][-1] for x in X2.tolist()]
        if np.all(np.isfinite(ref)) and _headroom(ref, net.dtype):
            assert_close(np.atleast_2d(result), ref, net.dtype, rtol=tol, what="forward", scale=floor)
        return
    D2 = np.atleast_2d(np.asarray(D, dtype=np.float64))
    try:
        E_ref, gW, gb = reference.gradients(W, b, acts, X2.tolist(), D2.tolist(), loss=loss)
    except (OverflowError, ValueError, ZeroDivisionError):  # Python floats raise where fastbp gives inf
        return
    if not (np.isfinite(E_ref) and all(np.all(np.isfinite(w)) for w in gW)):
        return
    if not (_headroom([E_ref], net.dtype) and all(_headroom(w, net.dtype) for w in gW + gb)):
        return
    E = result[0] if method in ("gradients", "evaluate") else (result.E if method == "trace" else result)
    assert_close(E, E_ref, net.dtype, rtol=tol, what="E", scale=max(floor, np.finfo(net.dtype).eps))
    if method == "gradients":
        gmax = max(float(np.max(np.abs(w))) for w in gW)
        floor = max(floor, gmax, np.finfo(net.dtype).eps * max(1.0, abs(E_ref)))
        for layer in range(len(gW)):
            assert_close(result[1].weights[layer], gW[layer], net.dtype, rtol=tol, what="dE/dW", scale=floor)
            assert_close(result[1].biases[layer], gb[layer], net.dtype, rtol=tol, what="dE/db", scale=floor)


@group("Network methods", 30, network_case)
def run_network(case):
    engine, sizes, activations, loss = case["arch"]
    net = build(engine, sizes, activations, loss, case["dtype"], case["seed"], case["weight_scale"])
    X, D, lr = case["X"], case["D"], case["lr"]
    W, b = to_lists(net.weights), to_lists(net.biases)
    before = net.flat_parameters.copy()
    method = case["method"]
    trainable = None
    if method == "fit":
        kwargs, trainable = _fit_kwargs(net, case["fit"], X, D, lr)
    calls = {
        "forward": lambda: net.forward(X),
        "gradients": lambda: net.gradients(X, D),
        "step": lambda: net.step(X, D, lr=lr),
        "fit": lambda: net.fit(X, D, **dict(kwargs, lr_schedule=make_schedule(kwargs["lr_schedule"]))),
        "evaluate": lambda: net.evaluate(X, D),
        "trace": lambda: net.trace(X, D, lr=None if lr == 0.1 else lr),
        "numgrad": lambda: fastbp.numerical_gradient(net, X, D),
        "copy": lambda: net.copy(),
    }

    def check(result, exc):
        after = net.flat_parameters
        if exc is not None or method == "fit":  # DivergenceError, or a fit: parameters finite, frozen layers kept
            if not np.all(np.isfinite(after)) and np.all(np.isfinite(before)):
                return "fit left non-finite parameters"
            if isinstance(trainable, list) and all(isinstance(f, bool) for f in trainable):
                for layer, flag in enumerate(trainable):
                    w0 = before[net._layout.w_offsets[layer] : net._layout.b_offsets[layer] + sizes[layer + 1]]
                    w1 = after[net._layout.w_offsets[layer] : net._layout.b_offsets[layer] + sizes[layer + 1]]
                    if not flag and w0.tobytes() != w1.tobytes():
                        return f"fit changed layer {layer + 1}, which trainable marks frozen"
            if exc is None and len(result.loss) > (kwargs["epochs"] if isinstance(kwargs["epochs"], int) else 99):
                return f"fit ran {len(result.loss)} epochs for epochs={kwargs['epochs']}"
            return None
        if method in ("forward", "gradients", "evaluate", "trace", "numgrad", "copy") and after.tobytes() != (
            before.tobytes()
        ):
            return f"{method} changed the network"
        if method == "copy" and result.flat_parameters.tobytes() != before.tobytes():
            return "copy differs from the network"
        if method == "numgrad":
            return None if result.flat.shape == before.shape else "numerical_gradient has the wrong shape"
        if method != "copy":
            _check_reference(net, method, X, D, result, W, b)
        if method == "step" and np.isfinite(result):  # w <- w - lr g with the reference's g
            X2, D2 = (np.atleast_2d(np.asarray(a, dtype=np.float64)).tolist() for a in (X, D))
            try:
                newW, newb = reference.step(W, b, list(net.activations), X2, D2, float(lr), loss=loss)[1:3]
            except (OverflowError, ValueError, ZeroDivisionError):
                return None
            ref = np.concatenate([np.ravel(a) for pair in zip(newW, newb) for a in pair])
            grads = reference.gradients(W, b, list(net.activations), X2, D2, loss=loss)[1:]
            if (
                np.all(np.isfinite(ref))
                and _headroom(ref, net.dtype)
                and all(_headroom(g, net.dtype) for g in grads[0] + grads[1])
            ):
                scale = float(np.max(np.abs(before))) if before.size else 0.0
                assert_close(after, ref, net.dtype, rtol=TOL[net.dtype], what="step", scale=scale)
        return None

    return classify(calls[method], lambda: net_snapshot(net), check)


@st.composite
def constructor_case(draw):
    """Half of the time a valid network with one thing wrong (or nothing), else anything."""
    n_layers = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 5)) for _ in range(n_layers + 1)]
    names = list(reference.ACTIVATION_NAMES) + ["leaky_relu:0.2", "elu:0.5", "softplus", "gelu"]
    activations = [draw(st.sampled_from(names)) for _ in range(n_layers)]
    loss = "squared_error"
    wrong = draw(st.sampled_from([None, None, "sizes", "activations", "loss", "dtype", "seed", "anything"]))
    dtype, seed = draw(st.sampled_from(["float64", "float32", np.float32, "f8"])), draw(st.sampled_from([0, None, 7]))
    bad_names = ["softmax", "leaky_relu:0.2:1", "elu:-1", "elu:nan", "leaky_relu:x", "relu6", "", 3, None, "RELU"]
    if wrong == "sizes":
        sizes = draw(st.sampled_from([[], [3], [2, 0, 1], [2, -1, 1], [2, 2.5, 1], [2, True, 1], "221", None,
                                      [2, "2", 1], [2, 2**40, 1], (2, 2, 1), np.array([2, 2, 1])]))  # fmt: skip
    elif wrong == "activations":
        activations = draw(st.one_of(st.lists(st.sampled_from(names + bad_names), max_size=4), st.just("relu")))
    elif wrong == "loss":
        loss, activations[-1] = draw(st.sampled_from([("cross_entropy", "softmax"), ("cross_entropy", "tanh"),
            ("binary_cross_entropy", "sigmoid"), ("hinge", "tanh"), (None, "tanh"), (3, "tanh")]))  # fmt: skip
    elif wrong == "dtype":
        dtype = draw(st.sampled_from(["float16", "int64", None, "complex128", "x", object, np.longdouble]))
    elif wrong == "seed":
        seed = draw(st.sampled_from([-1, 2**70, 1.5, "x", [1, 2], np.random.default_rng(0)]))
    elif wrong == "anything":
        sizes, activations = draw(st.sampled_from([(None, None), (3, "relu"), ([2, 1], [["relu"]])]))
    return dict(
        how=draw(st.sampled_from(["Network", "Network", "from_weights"])),
        sizes=sizes,
        activations=activations,
        loss=loss,
        dtype=dtype,
        seed=seed,
        weights=draw(
            st.sampled_from(
                ["fine", "fine", "wrong shape", "nan", "int", "mixed dtypes", "1-D", "list", "short", "float16"]
            )
        ),  # fmt: skip
    )


@group("Network constructors", 8, constructor_case)
def run_constructor(case):
    sizes, activations, loss = case["sizes"], case["activations"], case["loss"]
    if case["how"] == "Network":

        def call():
            return fastbp.Network(sizes, activations, loss=loss, dtype=case["dtype"], seed=case["seed"])

        def check(net, _):
            if list(net.sizes) != [int(s) for s in sizes] or len(net.activations) != len(sizes) - 1:
                return f"made sizes {net.sizes} from {sizes!r}"
            y = net.forward(np.zeros(net.sizes[0]))
            return None if np.all(np.isfinite(y)) else "a new network's output is not finite"

        return classify(call, lambda: None, check)
    rng = np.random.default_rng(0)
    ok = isinstance(sizes, list) and len(sizes) >= 2 and all(type(s) is int and 1 <= s <= 5 for s in sizes)
    shapes = list(zip(sizes[:-1], sizes[1:])) if ok else [(2, 2), (2, 1)]
    W = [rng.normal(size=s) for s in shapes]
    b = [rng.normal(size=s[1]) for s in shapes]
    kind = case["weights"]
    if kind == "wrong shape":
        W[-1] = rng.normal(size=(shapes[-1][0] + 1, shapes[-1][1]))
    elif kind == "nan":
        W[0][0, 0] = np.nan
    elif kind == "int":
        W = [np.round(w).astype(np.int64) for w in W]
    elif kind == "mixed dtypes":
        W[0] = W[0].astype(np.float32)
    elif kind == "1-D":
        W[0] = W[0].ravel()
    elif kind == "list":
        W, b = [w.tolist() for w in W], [v.tolist() for v in b]
    elif kind == "short":
        b = b[:-1]
    elif kind == "float16":
        W = [w.astype(np.float16) for w in W]

    def call():
        return fastbp.Network.from_weights(W, b, activations, loss=loss)

    def check(net, _):
        for layer, w in enumerate(W):
            if not np.array_equal(net.weights[layer], np.asarray(w, dtype=net.dtype)):
                return f"weights[{layer}] differ from the given ones"
        return None

    return classify(call, lambda: None, check)


OPTIMIZER_KINDS = ["SGD", "Adam", "AdamW"]
STATE_EDITS = [None, "none", "empty", "short", "long", "strided", "2-D", "float32", "int", "readonly", "list",
               "nan", "negative", "copy", "resize"]  # fmt: skip
ATTRIBUTE_EDITS = [None, "lr", "momentum", "nesterov", "beta1", "beta2", "eps", "weight_decay", "step_count"]


@st.composite
def optimizer_case(draw):
    kind = draw(st.sampled_from(OPTIMIZER_KINDS))
    names = {"SGD": ["lr", "momentum", "nesterov", "weight_decay"], "Adam": ["lr", "beta1", "beta2", "eps"]}
    names["AdamW"] = names["Adam"] + ["weight_decay"]
    names["Adam"] = names["Adam"] + ["weight_decay"]
    valid = {"lr": [0.01, 0.1], "momentum": [0.0, 0.9], "nesterov": [False, True], "weight_decay": [0.0, 0.01],
             "beta1": [0.9, 0.5], "beta2": [0.999, 0.9], "eps": [1e-8, 1e-3]}  # fmt: skip
    hyper = {k: draw(st.sampled_from(valid[k])) for k in names[kind] if draw(st.booleans())}
    if draw(st.booleans()):
        hyper[draw(st.sampled_from(names[kind]))] = draw(st.sampled_from(NUMBERS + [0.9, 0.5, 0.999]))
    return dict(
        kind=kind,
        hyper=hyper,
        arch=draw(st.sampled_from([([3, 4, 2], ["tanh", "identity"]), ([2, 5, 5, 1], ["relu", "relu", "sigmoid"])])),
        dtype=draw(st.sampled_from(["float64", "float32"])),
        first_fit=draw(st.booleans()),
        state=draw(st.sampled_from([None] * 6 + STATE_EDITS)),
        which=draw(st.sampled_from(["state1", "state2"])),
        attribute=draw(st.sampled_from([None] * 6 + ATTRIBUTE_EDITS)),
        value=draw(st.sampled_from(NUMBERS + [0.9, -5, 2**63])),
        other_network=draw(st.sampled_from([False, False, False, True])),
        schedule=draw(st.sampled_from(SCHEDULES)),
        epochs=draw(st.sampled_from([1, 2, 3])),
    )


def _edit_state(opt, which, edit, n):
    state = getattr(opt, which)
    base = state if state is not None else np.zeros(n)
    values = {
        "none": None, "empty": np.zeros(0), "short": base[:-1].copy(), "long": np.concatenate([base, [0.0]]),
        "strided": np.repeat(base, 2)[::2], "2-D": base[None, :].copy(), "float32": base.astype(np.float32),
        "int": base.astype(np.int64), "list": list(base), "copy": base.copy(),
    }  # fmt: skip
    if edit in values:
        setattr(opt, which, values[edit])
    elif state is not None and state.size:  # edits of the array in place
        if edit == "readonly":
            state.flags.writeable = False
        elif edit == "nan":
            state[0] = np.nan
        elif edit == "negative":
            state[0] = -1.0
        elif edit == "resize":
            state.resize(max(state.size - 1, 0), refcheck=False)


@group("optimizers and schedules", 14, optimizer_case)
def run_optimizer(case):
    rng = np.random.default_rng(1)
    sizes, activations = case["arch"]
    X, D = rng.normal(size=(6, sizes[0])), rng.uniform(size=(6, sizes[-1]))
    net = build("generic" if sizes[1] == 5 else "specialized", sizes, activations, "squared_error", case["dtype"], 0)
    cls = getattr(fastbp, case["kind"])
    made = classify(lambda: cls(**case["hyper"]), lambda: None, None)
    if made[0] != "correct result":
        return made
    opt = cls(**case["hyper"])
    if case["first_fit"]:
        try:
            net.fit(X, D, epochs=1, batch_size=2, seed=0, optimizer=opt)
        except DivergenceError:
            pass
    twin_net, twin_opt = net.copy(), None
    try:  # the user's edits: each may be refused as it is made
        if case["state"] is not None:
            _edit_state(opt, case["which"], case["state"], net.n_params)
        if case["attribute"] is not None:
            setattr(opt, case["attribute"], case["value"])
    except Exception as exc:
        return ("clear error", None) if is_clear(exc) else ("unclear error", f"{type(exc).__name__}: {exc}")
    if all(s is None or (isinstance(s, np.ndarray) and s.flags.c_contiguous) for s in (opt.state1, opt.state2)):
        twin_opt = cls(**opt.get_params()) if _valid_params(cls, opt) else None
        if twin_opt is not None:  # the same state set cleanly, as fresh arrays: the oracle for an accepted fit
            for which in ("state1", "state2"):
                s = getattr(opt, which)
                if isinstance(s, np.ndarray):
                    setattr(twin_opt, which, np.array(s, dtype=s.dtype))
            twin_opt._step_count = opt.step_count
    target = fastbp.Network([3, 3, 2], ["tanh", "identity"], seed=1) if case["other_network"] else net
    if case["other_network"]:
        X, D = rng.normal(size=(6, 3)), rng.uniform(size=(6, 2))
    kwargs = dict(epochs=case["epochs"], batch_size=2, seed=3, optimizer=opt)

    def call():
        return target.fit(X, D, **kwargs, lr_schedule=make_schedule(case["schedule"]))

    def check(history, exc):
        if exc is not None:
            return None if np.all(np.isfinite(target.flat_parameters)) else "DivergenceError left non-finite values"
        if twin_opt is None or case["other_network"]:
            return None
        twin_net.fit(X, D, **dict(kwargs, optimizer=twin_opt, lr_schedule=make_schedule(case["schedule"])))
        if twin_net.flat_parameters.tobytes() != target.flat_parameters.tobytes():
            return "fit with the edited optimizer differs from a fit with the same state set afresh"
        steps = case["epochs"] * 3
        if opt.step_count != twin_opt.step_count or (opt.step_count < steps and not isinstance(opt, fastbp.SGD)):
            return f"step_count {opt.step_count} after {steps} steps"
        return None

    def snapshot():
        try:
            return net_snapshot(target), opt_snapshot(opt)
        except Exception as exc:  # the state is not even readable
            return repr(exc)

    return classify(call, snapshot, check)


def _valid_params(cls, opt):
    try:
        cls(**opt.get_params())
        return True
    except (ValueError, TypeError):
        return False


import fuzz_cases_io  # noqa: E402,F401  (registers the other groups)
