"""Bad input gets a clear error before any kernel runs, and leaves the network exactly as it was."""

import numpy as np
import pytest

import fastbp

from conftest import ENGINES, build_network


def net_and_data(engine, dtype=np.float64):
    rng = np.random.default_rng(0)
    W = [rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=(4, 2)).astype(dtype)]
    b = [np.zeros(4, dtype), np.zeros(2, dtype)]
    return build_network(W, b, ["tanh", "identity"], engine), rng.normal(size=(6, 3)), rng.normal(size=(6, 2))


BAD_CALLS = [
    ("X too wide", lambda n, X, D: n.step(np.zeros((6, 4)), D), ValueError, "X has 4 features, the network expects 3"),
    ("D too narrow", lambda n, X, D: n.gradients(X, np.zeros((6, 1))), ValueError, "D has 1 targets per sample"),
    ("rows differ", lambda n, X, D: n.fit(X, D[:5]), ValueError, "X has 6 samples but D has 5"),
    ("3-D X", lambda n, X, D: n.forward(np.zeros((2, 3, 3))), ValueError, "got shape"),
    ("empty X", lambda n, X, D: n.step(np.zeros((0, 3)), np.zeros((0, 2))), ValueError, "empty"),
    ("NaN in X", lambda n, X, D: n.step(np.where(X > 1, np.nan, X), D), ValueError, "X must be finite"),
    ("inf in D", lambda n, X, D: n.fit(X, np.full_like(D, np.inf)), ValueError, r"D must be finite, but D\[\(0, 0\)\]"),
    ("complex X", lambda n, X, D: n.step(X + 1j, D), TypeError, "real numbers"),
    ("object X", lambda n, X, D: n.forward(np.array([[1, 2, None]], dtype=object)), TypeError, "real numbers"),
    ("string D", lambda n, X, D: n.step(X, np.full((6, 2), "a")), TypeError, "real numbers"),
    ("lr zero", lambda n, X, D: n.step(X, D, lr=0.0), ValueError, "lr must be a finite number > 0"),
    ("lr inf", lambda n, X, D: n.fit(X, D, lr=float("inf")), ValueError, "lr"),
    ("lr string", lambda n, X, D: n.fit(X, D, lr="0.1"), TypeError, "lr must be a positive number"),
    ("epochs 0", lambda n, X, D: n.fit(X, D, epochs=0), ValueError, "epochs must be >= 1"),
    ("epochs float", lambda n, X, D: n.fit(X, D, epochs=2.5), TypeError, "epochs must be a positive integer"),
    ("batch_size -1", lambda n, X, D: n.fit(X, D, batch_size=-1), ValueError, "batch_size must be >= 1"),
    ("trainable wrong", lambda n, X, D: n.fit(X, D, trainable=[True]), ValueError, "trainable"),
    ("eps 0", lambda n, X, D: fastbp.numerical_gradient(n, X, D, eps=0.0), ValueError, "eps"),
    ("trace batch", lambda n, X, D: n.trace(X, D), ValueError, "one sample"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("what, call, error, message", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_is_refused_and_the_network_is_untouched(engine, what, call, error, message):
    net, X, D = net_and_data(engine)
    net.step(X, D, lr=0.01)  # buffers exist, so their bytes can be compared too

    def state():
        ws = net._passes.workspace
        buffers = b"" if ws is None else ws.z.tobytes() + ws.y.tobytes() + ws.delta.tobytes()
        return net.flat_parameters.tobytes(), net._grad.tobytes(), net._backup.tobytes(), buffers

    before = state()
    with pytest.raises(error, match=message):
        call(net, X, D)
    assert state() == before


@pytest.mark.parametrize("engine", ENGINES)
def test_non_finite_parameter_is_named(engine):
    net, X, D = net_and_data(engine)
    net.weights[1][2, 1] = np.nan
    before = net.flat_parameters.tobytes()
    for call in (
        lambda: net.step(X, D, lr=0.1),
        lambda: net.gradients(X, D),
        lambda: net.fit(X, D),
        lambda: net.forward(X),
        lambda: fastbp.numerical_gradient(net, X, D),
    ):
        with pytest.raises(ValueError, match=r"weights\[1\]\[2, 1\] is nan"):
            call()
    assert net.flat_parameters.tobytes() == before
    net.weights[1][2, 1] = 0.0
    net.biases[0][3] = -np.inf
    with pytest.raises(ValueError, match=r"biases\[0\]\[3\] is -inf"):
        net.step(X, D, lr=0.1)


@pytest.mark.parametrize("engine", ENGINES)
def test_bool_and_int_inputs_are_converted(engine):
    net, _, _ = net_and_data(engine)
    X = np.array([[1, 0, 1], [0, 1, 1]])
    a = net.copy()
    np.testing.assert_array_equal(net.forward(X.astype(bool)), net.forward(X.astype(float)))
    E_int = net.step(X, np.array([[1, 0], [0, 1]]), lr=0.1)
    E_float = a.step(X.astype(float), np.array([[1.0, 0.0], [0.0, 1.0]]), lr=0.1)
    assert E_int == E_float
    assert net.flat_parameters.tobytes() == a.flat_parameters.tobytes()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_strided_fortran_and_readonly_inputs_give_the_same_results(engine, dtype):
    net, X, D = net_and_data(engine, dtype)
    X = X.astype(dtype)
    D = D.astype(dtype)
    variants = {
        "contiguous": (X, D),
        "fortran": (np.asfortranarray(X), np.asfortranarray(D)),
        "strided": (np.repeat(X, 2, axis=0)[::2], np.repeat(D, 3, axis=1)[:, ::3]),
        "transposed view": (np.ascontiguousarray(X.T).T, np.ascontiguousarray(D.T).T),
        "other dtype": (X.astype(np.float32 if dtype == np.float64 else np.float64), D),
    }
    readonly_X, readonly_D = X.copy(), D.copy()
    readonly_X.flags.writeable = readonly_D.flags.writeable = False
    variants["read-only"] = (readonly_X, readonly_D)
    reference = net.copy()
    E_ref = reference.step(X, D, lr=0.1)
    Y_ref = reference.forward(X)
    _, g_ref = net.gradients(X, D)
    for name, (Xv, Dv) in variants.items():
        if name == "other dtype" and dtype == np.float64:
            continue  # float32 input rounds X: not the same numbers
        trial = net.copy()
        assert trial.gradients(Xv, Dv)[1].flat.tobytes() == g_ref.flat.tobytes(), name
        assert trial.step(Xv, Dv, lr=0.1) == E_ref, name
        assert trial.flat_parameters.tobytes() == reference.flat_parameters.tobytes(), name
        assert trial.forward(Xv).tobytes() == Y_ref.tobytes(), name
        assert not np.shares_memory(trial.flat_parameters, Xv)


def test_from_weights_errors():
    with pytest.raises(ValueError, match=r"biases\[0\] must have shape \(2,\)"):
        fastbp.Network.from_weights([np.zeros((1, 2))], [np.zeros(3)], ["relu"])
    with pytest.raises(ValueError, match=r"weights\[1\] has 3 rows but layer 1 has 2 units"):
        fastbp.Network.from_weights([np.zeros((1, 2)), np.zeros((3, 1))], [np.zeros(2), np.zeros(1)], ["relu"] * 2)
    with pytest.raises(TypeError, match="share one dtype"):
        fastbp.Network.from_weights([np.zeros((1, 1), np.float32)], [np.zeros(1)], ["relu"])
    with pytest.raises(ValueError, match=r"weights\[0\] must be finite"):
        fastbp.Network.from_weights([np.full((1, 1), np.nan)], [np.zeros(1)], ["relu"])
    with pytest.raises(ValueError, match="valid losses are squared_error"):
        fastbp.Network([1, 1], ["relu"], loss="hinge")
    with pytest.raises(TypeError, match="float32 or float64"):
        fastbp.Network([1, 1], ["relu"], dtype=np.int32)
    with pytest.raises(ValueError, match="at least one unit"):
        fastbp.Network([2, 0, 1], ["relu", "relu"])


def test_check_finite_takes_every_real_dtype_and_layout():
    """The compiled check runs on float32/float64 (any layout); integers, booleans and float16 go another way."""
    from fastbp.nn.validation import check_finite

    for ok in (np.arange(6).reshape(2, 3), np.ones((2, 3), np.float16), np.ones((3, 2)).T, np.array([True, False])):
        check_finite(ok, "X")
    for bad, where in [
        (np.array([[1, np.inf]], np.float16), r"X\[\(0, 1\)\] is inf"),
        (np.array([[1.0, 2.0], [np.nan, 1.0]]).T, r"X\[\(0, 1\)\] is nan"),
        (np.array([1, -np.inf], np.float32), r"X\[1\] is -inf"),
    ]:
        with pytest.raises(ValueError, match=where):
            check_finite(bad, "X")


INT_TARGETS = [np.uint8, np.int16, np.int64, np.uint64]


@pytest.mark.parametrize("int_dtype", INT_TARGETS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "sizes, activations, loss, values",
    [
        ([3, 4, 2], ["tanh", "identity"], "squared_error", [0, 1, 7, "max"]),
        ([3, 4, 2], ["tanh", "sigmoid"], "binary_cross_entropy", [0, 1]),
        ([3, 4, 3], ["tanh", "softmax"], "cross_entropy", [0, 1, 2]),
    ],
)
def test_integer_targets_give_what_numpy_gives_for_them(sizes, activations, loss, values, dtype, int_dtype):
    """Integer D gives exactly the result of np.asarray(D, dtype=net.dtype), in every entry point."""
    rng = np.random.default_rng(0)
    n_out = sizes[-1]
    pool = [np.iinfo(int_dtype).max if v == "max" else v for v in values]
    D = np.array(pool, dtype=int_dtype)[rng.integers(0, len(pool), size=(5, n_out))]
    X = rng.normal(size=(5, sizes[0]))
    net = fastbp.Network(sizes, activations, loss=loss, dtype=dtype, seed=0)
    as_float = np.asarray(D, dtype=net.dtype)
    a, b = net.copy(), net.copy()
    assert a.step(X, D, lr=0.01) == b.step(X, as_float, lr=0.01)
    assert a.flat_parameters.tobytes() == b.flat_parameters.tobytes()
    assert net.evaluate(X, D) == net.evaluate(X, as_float)
    (E_int, g_int), (E_float, g_float) = net.gradients(X, D), net.gradients(X, as_float)
    assert E_int == E_float
    assert all(np.array_equal(p, q) for p, q in zip(g_int.weights, g_float.weights))
    a.fit(X, D, epochs=2, batch_size=2, seed=0)
    b.fit(X, as_float, epochs=2, batch_size=2, seed=0)
    assert a.flat_parameters.tobytes() == b.flat_parameters.tobytes()


@pytest.mark.parametrize(
    "activations, loss, bad, message",
    [
        (["tanh", "sigmoid"], "binary_cross_entropy", 1.5, r"binary_cross_entropy needs targets in \[0, 1\]"),
        (["tanh", "sigmoid"], "binary_cross_entropy", -0.25, r"binary_cross_entropy needs targets in \[0, 1\]"),
        (["tanh", "sigmoid"], "binary_cross_entropy", 2**64 - 1, r"needs targets in \[0, 1\]"),
        (["tanh", "softmax"], "cross_entropy", -1.0, r"cross_entropy needs targets >= 0, but D\[1, 0\] is -1"),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_targets_outside_the_losss_domain_are_refused_everywhere(activations, loss, bad, message, dtype):
    rng = np.random.default_rng(0)
    net = fastbp.Network([3, 4, 2], activations, loss=loss, dtype=dtype, seed=0)
    X = rng.normal(size=(4, 3))
    D = np.full((4, 2), 0.5)
    D = D.astype(np.uint64) if isinstance(bad, int) else D
    D[1, 0] = bad
    before = net.flat_parameters.tobytes()
    calls = [
        lambda: net.step(X, D),
        lambda: net.gradients(X, D),
        lambda: net.evaluate(X, D),
        lambda: net.fit(X, D, epochs=1),
        lambda: net.fit(X, D, epochs=1, optimizer="adam"),
        lambda: net.fit(X, np.full((4, 2), 0.5), validation_data=(X, D)),
        lambda: fastbp.numerical_gradient(net, X, D),
    ]
    with pytest.raises(ValueError, match=message):
        net.step(X, D)
    for call in calls:
        with pytest.raises(ValueError, match=f"{loss} needs targets"):
            call()
        assert net.flat_parameters.tobytes() == before
    assert net.optimizer is None
