"""Beyond the tutorial: leaky_relu, elu, softplus, gelu, softmax and the classification losses.

Checked like the core: against the pure-Python reference and against central differences.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import fastbp
from fastbp import kernels, reference

from conftest import assert_close, to_lists

ELEMENTWISE = [
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "leaky_relu(0.2)",
    "elu",
    "elu(0.5)",
    "softplus",
    "gelu",
]
OUTPUTS = [(a, "squared_error") for a in ELEMENTWISE] + [
    ("softmax", "squared_error"),
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
]


@st.composite
def extended(draw, budget=6000, dtypes=(np.float64, np.float32)):
    n_layers = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 12)) for _ in range(n_layers + 1)]
    output, loss = draw(st.sampled_from(OUTPUTS))
    activations = [draw(st.sampled_from(ELEMENTWISE)) for _ in range(n_layers - 1)] + [output]
    macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
    n = draw(st.integers(1, max(1, min(32, budget // macs))))
    dtype = draw(st.sampled_from(dtypes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = [(rng.uniform(-1, 1, (a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes, sizes[1:])]
    biases = [rng.uniform(-0.5, 0.5, b).astype(dtype) for b in sizes[1:]]
    X = rng.uniform(-1, 1, (n, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        D = np.eye(sizes[-1])[rng.integers(0, sizes[-1], n)].astype(dtype)
        if draw(st.booleans()):  # soft targets that do not sum to 1 are allowed too
            D = rng.uniform(0, 1, (n, sizes[-1])).astype(dtype)
    elif loss == "binary_cross_entropy":
        D = rng.uniform(0, 1, (n, sizes[-1])).astype(dtype)
    else:
        D = rng.uniform(-1, 1, (n, sizes[-1])).astype(dtype)
    return sizes, activations, loss, weights, biases, X, D, np.dtype(dtype)


@given(extended())
def test_matches_reference(case):
    sizes, activations, loss, weights, biases, X, D, dtype = case
    net = fastbp.Network.from_weights(weights, biases, activations, loss=loss)
    W, b = to_lists(weights), to_lists(biases)
    ref_y = [reference.forward(W, b, activations, x)[1][-1] for x in X.astype(float).tolist()]
    assert_close(net.forward(X), ref_y, dtype, what="forward")
    E_ref, gW, gb = reference.gradients(W, b, activations, X.astype(float).tolist(), D.astype(float).tolist(), loss)
    E, g = net.gradients(X, D)
    assert_close(E, E_ref, dtype, what="E")
    for layer in range(len(weights)):
        assert_close(g.weights[layer], gW[layer], dtype, what=f"dE/dW[{layer}]")
        assert_close(g.biases[layer], gb[layer], dtype, what=f"dE/db[{layer}]")


def kink_distance(weights, biases, activations, X):
    W, b = to_lists(weights), to_lists(biases)
    smallest = np.inf
    for x in X.tolist():
        zs, _ = reference.forward(W, b, activations, x)
        for layer, name in enumerate(activations, start=1):
            if name.split("(")[0] in ("relu", "leaky_relu", "elu"):
                smallest = min(smallest, min(abs(z) for z in zs[layer]))
    return smallest


@given(extended(dtypes=(np.float64,)))
def test_matches_numerical_gradient(case):
    sizes, activations, loss, weights, biases, X, D, dtype = case
    assume(kink_distance(weights, biases, activations, X) > 1e-4)
    net = fastbp.Network.from_weights(weights, biases, activations, loss=loss)
    E, g = net.gradients(X, D)
    g_num = fastbp.numerical_gradient(net, X, D)
    scale = max(np.abs(g_num.flat).max(), 1e-12)
    assert np.abs(g.flat - g_num.flat).max() <= 1e-6 * scale + 1e-9 * max(E, 1.0)


def test_saturated_outputs_give_finite_losses_and_gradients():
    W = [np.array([[1e4, -1e4, 0.0]])]
    b = [np.zeros(3)]
    ce = fastbp.Network.from_weights(W, b, ["softmax"], loss="cross_entropy")
    E, g = ce.gradients(np.array([[1.0]]), np.array([[0.0, 1.0, 0.0]]))
    assert E == pytest.approx(2e4) and np.all(np.isfinite(g.flat))
    bce = fastbp.Network.from_weights([np.array([[1e4]])], [np.zeros(1)], ["sigmoid"], loss="binary_cross_entropy")
    E, g = bce.gradients(np.array([[1.0]]), np.array([[0.0]]))
    assert E == pytest.approx(1e4) and np.all(np.isfinite(g.flat)) and g.flat[0] == pytest.approx(1.0)


def test_softmax_rows_sum_to_one_and_do_not_overflow():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    y = np.empty_like(z)
    kernels.softmax_rows(z, y)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    np.testing.assert_allclose(y[1], reference.softmax([1.0, 2.0, 3.0]), rtol=1e-14)


def test_mismatched_pairs_are_refused():
    with pytest.raises(ValueError, match="'cross_entropy' needs a 'softmax' output layer, got 'sigmoid'"):
        fastbp.Network([2, 3], ["sigmoid"], loss="cross_entropy")
    with pytest.raises(ValueError, match="'binary_cross_entropy' needs a 'sigmoid' output layer"):
        fastbp.Network([2, 3], ["softmax"], loss="binary_cross_entropy")
    with pytest.raises(ValueError, match="can only be the output layer"):
        fastbp.Network([2, 3, 2], ["softmax", "identity"])
    with pytest.raises(ValueError, match="takes no parameter"):
        fastbp.Network([2, 3], ["tanh(0.5)"])
    with pytest.raises(ValueError, match="valid activations are"):
        fastbp.Network([2, 3], ["swish"])
    fastbp.Network([2, 3], ["softmax"], loss="squared_error")  # allowed


def test_parameterised_activations_round_trip_and_init():
    net = fastbp.Network([4, 50, 3], ["leaky_relu(0.2)", "softmax"], loss="cross_entropy", seed=0)
    assert net.activations == ("leaky_relu(0.2)", "softmax")
    assert np.abs(net.weights[0]).max() <= np.sqrt(6 / 4)  # He for the relu family
    assert net._passes.small is None  # the generated code covers only the tutorial's activations


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_of_softmax_equals_cross_entropy_from_z(dtype):
    """The loss the network reports (logs of y = softmax(z)) against the log-sum-exp form from z alone, on
    ordinary rows, rows whose softmax underflows to 0 or below 1e-30 at the target, and soft targets."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 7)) * 3
    z[5] = [0.0, 900.0, -900.0, 1.0, 2.0, 3.0, 4.0]  # e^(-1800) is 0: y underflows
    z[6] = [0.0, 80.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # y_0 = e^-80 ~ 1.8e-35: below 1e-30 but not 0
    d = np.eye(7)[rng.integers(0, 7, 40)]
    d[5], d[6] = np.eye(7)[2], np.eye(7)[0]
    d[7] = rng.dirichlet(np.ones(7))  # a distribution, not one-hot
    d[8] = 0.0
    d[8, [1, 4]] = 0.5
    z, d = z.astype(dtype), d.astype(dtype)
    y = np.empty_like(z)
    kernels.softmax_rows(z, y)
    assert y[5, 2] == 0.0 and 0.0 < y[6, 0] < 1e-30
    expected = kernels.cross_entropy(z, d)
    got = kernels.cross_entropy_of_softmax(z, y, d)
    assert np.isfinite(got) and got > 1800 / 40
    assert got == pytest.approx(expected, rel=1e-12 if dtype == np.float64 else 1e-5)
    for s in (5, 6, 7, 8):  # row by row against the pure-Python reference
        zs, ds = z[s].astype(float).tolist(), d[s].astype(float).tolist()
        want = reference.loss("cross_entropy", reference.softmax(zs), ds, zs)
        one = kernels.cross_entropy_of_softmax(z[s : s + 1], y[s : s + 1], d[s : s + 1])
        assert one == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 1e-5)


def test_the_activation_table_has_one_row_per_kernel_code():
    from fastbp import kernels
    from fastbp.nn.activations import ACTIVATIONS, init_bound

    assert {name: row.code for name, row in ACTIVATIONS.items()} == kernels.ACTIVATION_CODES
    for name, row in ACTIVATIONS.items():
        expected = (6.0 / 3) ** 0.5 if row.init == "he" else (6.0 / 7) ** 0.5
        assert init_bound(name, 3, 4) == expected
