"""Tests of the pure-Python oracle ``fastbp.reference`` on its own.

The chain of trust is: hand-worked tutorial exercises and central finite
differences -> ``fastbp.reference`` -> the numba kernels.
"""

import ast
import copy
import importlib
import inspect
import itertools
import math
import random

import pytest

from fastbp import reference

ABS = 1e-12


def _sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


def _flatten(nested):
    if isinstance(nested, list):
        return [v for item in nested for v in _flatten(item)]
    return [nested]


# --------------------------------------------------------------------------
# The oracle never imports the implementation (or numpy/numba).


ORACLE_MODULES = ("fastbp.tutorial.reference_activations", "fastbp.tutorial.reference_optimizers")


@pytest.mark.parametrize("module", [reference, *map(importlib.import_module, ORACLE_MODULES)], ids=lambda m: m.__name__)
def test_source_imports_only_math(module):
    """reference.py and the two modules it is split into import only math and each other."""
    tree = ast.parse(inspect.getsource(module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add("." * node.level + (node.module or ""))
    assert "math" in imported
    assert imported <= {"math", *ORACLE_MODULES}
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "__import__" not in names


# --------------------------------------------------------------------------
# Activations (tutorial §2.3).


def test_activation_names():
    assert reference.ACTIVATION_NAMES == ("identity", "sigmoid", "tanh", "relu")


@pytest.mark.parametrize(
    ("name", "z", "expected"),
    [
        ("identity", -1.5, -1.5),
        ("identity", 2.25, 2.25),
        ("sigmoid", 0.0, 0.5),
        ("sigmoid", 0.5, 0.6224593312018546),
        ("sigmoid", -0.5, 1.0 - 0.6224593312018546),
        ("sigmoid", 2.0, 1.0 / (1.0 + math.exp(-2.0))),
        ("sigmoid", -3.0, 1.0 / (1.0 + math.exp(3.0))),
        ("tanh", 0.0, 0.0),
        ("tanh", 0.5, 0.46211715726000974),
        ("tanh", -1.0, -0.7615941559557649),
        ("relu", -2.0, 0.0),
        ("relu", 0.0, 0.0),
        ("relu", 3.0, 3.0),
    ],
)
def test_activation_values(name, z, expected):
    assert reference.activation(name, z) == pytest.approx(expected, rel=1e-15, abs=1e-16)


@pytest.mark.parametrize(
    ("name", "z", "expected"),
    [
        ("identity", -7.0, 1.0),
        ("identity", 0.0, 1.0),
        ("sigmoid", 0.0, 0.25),
        ("sigmoid", 0.5, 0.6224593312018546 * (1.0 - 0.6224593312018546)),
        ("tanh", 0.0, 1.0),
        ("tanh", 0.5, 1.0 - math.tanh(0.5) ** 2),
        ("relu", -1.0, 0.0),
        ("relu", 0.0, 0.0),
        ("relu", 1e-300, 1.0),
        ("relu", 2.0, 1.0),
    ],
)
def test_activation_derivative_values(name, z, expected):
    got = reference.activation_derivative(name, z)
    assert got == pytest.approx(expected, rel=1e-15, abs=1e-16)


def test_relu_derivative_at_kink_is_zero():
    assert reference.activation_derivative("relu", 0.0) == 0.0
    assert reference.activation_derivative("relu", -0.0) == 0.0


def test_sigmoid_derivative_at_zero_is_quarter():
    assert reference.activation_derivative("sigmoid", 0.0) == 0.25


@pytest.mark.parametrize("z", [800.0, -800.0, 1e308, -1e308, 745.2, -745.2])
def test_sigmoid_does_not_overflow(z):
    s = reference.activation("sigmoid", z)
    ds = reference.activation_derivative("sigmoid", z)
    assert math.isfinite(s) and 0.0 <= s <= 1.0
    assert math.isfinite(ds) and 0.0 <= ds <= 0.25
    assert s == (1.0 if z > 0 else pytest.approx(0.0, abs=1e-300))


@pytest.mark.parametrize("name", [name for name in reference.ACTIVATION_NAMES if name != "relu"])  # the smooth ones
@pytest.mark.parametrize("z", [-2.5, -0.3, 0.0, 0.7, 3.0])
def test_smooth_derivatives_match_finite_differences(name, z):
    h = 1e-6
    numeric = (reference.activation(name, z + h) - reference.activation(name, z - h)) / (2 * h)
    assert reference.activation_derivative(name, z) == pytest.approx(numeric, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("func", [reference.activation, reference.activation_derivative])
def test_unknown_activation_lists_valid_names(func):
    with pytest.raises(ValueError) as info:
        func("softsign", 0.0)
    message = str(info.value)
    assert "softsign" in message
    for name in reference.ACTIVATION_NAMES:
        assert name in message


def test_forward_rejects_unknown_activation():
    with pytest.raises(ValueError, match="sigmoid"):
        reference.forward([[[1.0]]], [[0.0]], ["swish"], [1.0])


def test_forward_rejects_bad_shapes():
    with pytest.raises(ValueError):
        reference.forward([[[1.0, 2.0]]], [[0.0]], ["identity"], [1.0])
    with pytest.raises(ValueError):
        reference.forward([[[1.0]]], [[0.0]], ["identity"], [1.0, 2.0])
    with pytest.raises(ValueError):
        reference.forward([[[1.0]]], [[0.0], [0.0]], ["identity"], [1.0])


def test_gradients_rejects_bad_batches():
    net = ([[[1.0]]], [[0.0]], ["identity"])
    with pytest.raises(ValueError):
        reference.gradients(*net, [], [])
    with pytest.raises(ValueError):
        reference.gradients(*net, [[1.0], [2.0]], [[0.0]])


# --------------------------------------------------------------------------
# Building blocks on a tiny example.


def test_forward_layout():
    weights = [[[1.0, -1.0]], [[2.0], [3.0]]]
    biases = [[0.5, 0.25], [-1.0]]
    x = [2.0]
    zs, ys = reference.forward(weights, biases, ["relu", "identity"], x)
    assert len(zs) == len(ys) == 3
    assert zs[0] is None
    assert ys[0] == x and ys[0] is not x
    assert zs[1] == [2.5, -1.75]
    assert ys[1] == [2.5, 0.0]
    assert zs[2] == [4.0]
    assert ys[2] == [4.0]


def test_squared_error():
    assert reference.squared_error([1.0, 2.0], [0.0, 4.0]) == 2.5
    assert reference.squared_error([0.3], [0.3]) == 0.0


def test_output_and_hidden_delta():
    assert reference.output_delta([1.0, 2.0], [0.0, 4.0], [1.0, 2.0], "identity") == [
        1.0,
        -2.0,
    ]
    # delta_j = (sum_k delta_k w_jk) f'(z_j), weights_next[j][k] = w_jk
    weights_next = [[3.0, 1.0], [0.5, -0.25]]
    delta = reference.hidden_delta([1.0, -2.0], weights_next, [1.0, -1.0], "relu")
    assert delta == [1.0, 0.0]
    delta = reference.hidden_delta([1.0, -2.0], weights_next, [1.0, -1.0], "identity")
    assert delta == [1.0, 1.0]
    delta = reference.hidden_delta([2.0], [[3.0], [0.5]], [0.0, 0.0], "sigmoid")
    assert delta == [1.5, 0.25]


# --------------------------------------------------------------------------
# Tutorial exercise 2(b): XOR, 2-2-1, sigmoid hidden and output layers,
# every weight 0.5, biases 0, x = (1, 0), d = 1, eta = 0.5.
#
# Worked by hand (digits from 40-digit decimal arithmetic):
#   z^(1)_j = 0.5*1 + 0.5*0 = 0.5            y^(1)_j = sigma(0.5)   = 0.6224593312018546
#   z^(2)   = 0.5*y1 + 0.5*y1 = y1            y^(2)   = sigma(y1)    = 0.6507776782147004
#   E       = (y2 - 1)^2 / 2                                         = 0.06097811501655768
#   delta^(2)   = (y2 - 1) y2 (1 - y2)                               = -0.07936639222476872
#   delta^(1)_j = delta^(2) * 0.5 * y1 (1 - y1)                      = -0.009325698398434208
#   dE/dw^(2)_i1 = delta^(2) y1                                      = -0.04940235142413361
#   dE/dw^(1)_1j = delta^(1)_j * 1 = delta^(1)_j;  dE/dw^(1)_2j = delta^(1)_j * 0 = 0
#   w^(2) <- 0.5 - 0.5 * dE/dw^(2)                                   = 0.5247011757120668
#   w^(1)_1j <- 0.5 - 0.5 * delta^(1)_j                              = 0.5046628491992171
#   w^(1)_2j stays 0.5
#   b^(2) <- -0.5 * delta^(2)                                        = 0.03968319611238436
#   b^(1)_j <- -0.5 * delta^(1)_j                                    = 0.004662849199217104

XOR_WEIGHTS = [[[0.5, 0.5], [0.5, 0.5]], [[0.5], [0.5]]]
XOR_BIASES = [[0.0, 0.0], [0.0]]
XOR_ACTIVATIONS = ["sigmoid", "sigmoid"]
XOR_X = [1.0, 0.0]
XOR_D = [1.0]
XOR_ETA = 0.5

HAND = {
    "y1": 0.6224593312018546,
    "y2": 0.6507776782147004,
    "E": 0.06097811501655768,
    "delta2": -0.07936639222476872,
    "delta1": -0.009325698398434208,
    "dw2": -0.04940235142413361,
    "w2_new": 0.5247011757120668,
    "w1_new_row1": 0.5046628491992171,
    "b2_new": 0.03968319611238436,
    "b1_new": 0.004662849199217104,
}


def _xor_closed_form():
    y1 = _sigmoid(0.5 * 1.0 + 0.5 * 0.0)
    z2 = 0.5 * y1 + 0.5 * y1
    y2 = _sigmoid(z2)
    delta2 = (y2 - 1.0) * y2 * (1.0 - y2)
    delta1 = delta2 * 0.5 * y1 * (1.0 - y1)
    return {
        "z1": 0.5,
        "y1": y1,
        "z2": z2,
        "y2": y2,
        "E": 0.5 * (y2 - 1.0) ** 2,
        "delta2": delta2,
        "delta1": delta1,
        "dw2": delta2 * y1,
        "w2_new": 0.5 - XOR_ETA * delta2 * y1,
        "w1_new_row1": 0.5 - XOR_ETA * delta1 * 1.0,
        "b2_new": 0.0 - XOR_ETA * delta2,
        "b1_new": 0.0 - XOR_ETA * delta1,
    }


def test_xor_closed_form_matches_hand_values():
    closed = _xor_closed_form()
    for key, value in HAND.items():
        assert closed[key] == pytest.approx(value, rel=1e-14), key


@pytest.mark.parametrize("expected_source", ["closed_form", "hand"])
def test_tutorial_exercise_2b_xor(expected_source):
    c = _xor_closed_form() if expected_source == "closed_form" else dict(HAND, z1=0.5)
    c.setdefault("z2", c["y1"])
    approx = {"rel": 1e-14, "abs": 1e-15}

    zs, ys = reference.forward(XOR_WEIGHTS, XOR_BIASES, XOR_ACTIVATIONS, XOR_X)
    assert zs[0] is None
    assert ys[0] == XOR_X
    assert zs[1] == pytest.approx([c["z1"], c["z1"]], **approx)
    assert ys[1] == pytest.approx([c["y1"], c["y1"]], **approx)
    assert zs[2] == pytest.approx([c["z2"]], **approx)
    assert ys[2] == pytest.approx([c["y2"]], **approx)

    result = reference.backward(XOR_WEIGHTS, XOR_BIASES, XOR_ACTIVATIONS, XOR_X, XOR_D)
    assert result["z"] == zs and result["y"] == ys
    assert result["E"] == pytest.approx(c["E"], **approx)
    assert reference.squared_error(ys[2], XOR_D) == pytest.approx(c["E"], **approx)
    out_delta = reference.output_delta(ys[2], XOR_D, zs[2], "sigmoid")
    assert out_delta == pytest.approx([c["delta2"]], **approx)
    hid_delta = reference.hidden_delta(out_delta, XOR_WEIGHTS[1], zs[1], "sigmoid")
    assert hid_delta == pytest.approx([c["delta1"], c["delta1"]], **approx)

    delta = result["delta"]
    assert len(delta) == 3 and delta[0] is None
    assert delta[2] == pytest.approx([c["delta2"]], **approx)
    assert delta[1] == pytest.approx([c["delta1"], c["delta1"]], **approx)

    gw, gb = result["grad_weights"], result["grad_biases"]
    assert gw[1][0] == pytest.approx([c["dw2"]], **approx)
    assert gw[1][1] == pytest.approx([c["dw2"]], **approx)
    assert gw[0][0] == pytest.approx([c["delta1"], c["delta1"]], **approx)
    assert gw[0][1] == [0.0, 0.0]
    assert gb[1] == pytest.approx([c["delta2"]], **approx)
    assert gb[0] == pytest.approx([c["delta1"], c["delta1"]], **approx)

    # One sample: the batch mean equals the per-sample result.
    E, bgw, bgb = reference.gradients(XOR_WEIGHTS, XOR_BIASES, XOR_ACTIVATIONS, [XOR_X], [XOR_D])
    assert E == result["E"] and bgw == gw and bgb == gb

    E, new_w, new_b = reference.step(XOR_WEIGHTS, XOR_BIASES, XOR_ACTIVATIONS, [XOR_X], [XOR_D], XOR_ETA)
    assert E == pytest.approx(c["E"], **approx)
    assert new_w[1] == [
        [pytest.approx(c["w2_new"], **approx)],
        [pytest.approx(c["w2_new"], **approx)],
    ]
    assert new_w[0][0] == pytest.approx([c["w1_new_row1"], c["w1_new_row1"]], **approx)
    assert new_w[0][1] == [0.5, 0.5]
    assert new_b[1] == pytest.approx([c["b2_new"]], **approx)
    assert new_b[0] == pytest.approx([c["b1_new"], c["b1_new"]], **approx)


# --------------------------------------------------------------------------
# Tutorial exercise 1: 1-2-1, ReLU hidden, identity output, x = 1, d = 0.2,
# eta = 0.1, biases 0, W1 = [[0.5, -0.3]], W2 = [[0.8], [0.4]].
#   z^(1) = (0.5, -0.3) -> y^(1) = (0.5, 0): h1 active, h2 inactive
#   y = 0.8*0.5 + 0.4*0 = 0.4;  E = (0.4 - 0.2)^2 / 2 = 0.02;  delta^(2) = 0.2
#   delta^(1) = (0.2*0.8*1, 0.2*0.4*0) = (0.16, 0)
#   dW2 = (0.2*0.5, 0.2*0) = (0.1, 0);  dW1 = (0.16*1, 0*1) = (0.16, 0)

EX1_WEIGHTS = [[[0.5, -0.3]], [[0.8], [0.4]]]
EX1_BIASES = [[0.0, 0.0], [0.0]]
EX1_ACTIVATIONS = ["relu", "identity"]


def test_tutorial_exercise_1():
    approx = {"abs": 1e-12}
    result = reference.backward(EX1_WEIGHTS, EX1_BIASES, EX1_ACTIVATIONS, [1.0], [0.2])
    assert result["z"][1] == pytest.approx([0.5, -0.3], **approx)
    assert result["y"][1] == pytest.approx([0.5, 0.0], **approx)
    assert result["y"][2] == pytest.approx([0.4], **approx)
    assert result["E"] == pytest.approx(0.02, **approx)
    assert result["delta"][2] == pytest.approx([0.2], **approx)
    assert result["delta"][1] == pytest.approx([0.16, 0.0], **approx)
    dw1, dw2 = result["grad_weights"]
    db1, db2 = result["grad_biases"]
    assert dw2 == [pytest.approx([0.1], **approx), pytest.approx([0.0], **approx)]
    assert dw1 == [pytest.approx([0.16, 0.0], **approx)]
    assert db2 == pytest.approx([0.2], **approx)
    assert db1 == pytest.approx([0.16, 0.0], **approx)

    E, (w1, w2), (b1, b2) = reference.step(EX1_WEIGHTS, EX1_BIASES, EX1_ACTIVATIONS, [[1.0]], [[0.2]], 0.1)
    assert E == pytest.approx(0.02, **approx)
    assert w2 == [pytest.approx([0.79], **approx), pytest.approx([0.4], **approx)]
    assert w1 == [pytest.approx([0.484, -0.3], **approx)]
    assert b2 == pytest.approx([-0.02], **approx)
    assert b1 == pytest.approx([-0.016, 0.0], **approx)


# --------------------------------------------------------------------------
# Mini-batches: the mean over samples.


def test_gradients_are_batch_means():
    X = [[1.0], [-0.5], [2.0]]
    D = [[0.2], [0.0], [1.0]]
    per_sample = [reference.backward(EX1_WEIGHTS, EX1_BIASES, EX1_ACTIVATIONS, x, d) for x, d in zip(X, D)]
    E, gw, gb = reference.gradients(EX1_WEIGHTS, EX1_BIASES, EX1_ACTIVATIONS, X, D)
    assert E == pytest.approx(sum(r["E"] for r in per_sample) / 3, abs=ABS)
    flat_gw = _flatten(gw)
    for index, value in enumerate(flat_gw):
        mean = sum(_flatten(r["grad_weights"])[index] for r in per_sample) / 3
        assert value == pytest.approx(mean, abs=ABS)
    flat_gb = _flatten(gb)
    for index, value in enumerate(flat_gb):
        mean = sum(_flatten(r["grad_biases"])[index] for r in per_sample) / 3
        assert value == pytest.approx(mean, abs=ABS)


# --------------------------------------------------------------------------
# Backprop vs central finite differences on random small networks.

KINK = 1e-3


def _random_problem(rng, depth, names):
    """Draw a network and batch whose relu pre-activations avoid the kink."""
    for _ in range(1000):
        widths = [rng.randint(1, 4) for _ in range(depth + 1)]
        weights = [
            [[rng.uniform(-1.0, 1.0) for _ in range(n_out)] for _ in range(n_in)]
            for n_in, n_out in itertools.pairwise(widths)
        ]
        biases = [[rng.uniform(-0.5, 0.5) for _ in range(n)] for n in widths[1:]]
        batch = rng.randint(1, 3)
        X = [[rng.uniform(-1.0, 1.0) for _ in range(widths[0])] for _ in range(batch)]
        D = [[rng.uniform(-1.0, 1.0) for _ in range(widths[-1])] for _ in range(batch)]
        near_kink = False
        for x in X:
            zs, _ = reference.forward(weights, biases, names, x)
            for name, z in zip(names, zs[1:]):
                if name == "relu" and any(abs(z_j) <= KINK for z_j in z):
                    near_kink = True
        if not near_kink:
            return weights, biases, X, D
    raise AssertionError("could not draw a problem away from the relu kink")


def _gradient_cases():
    cases = []
    for name in reference.ACTIVATION_NAMES:
        for depth in (1, 2, 3):
            for seed in range(3):
                cases.append(
                    pytest.param(
                        [name] * depth,
                        100 * depth + seed,
                        id=f"{name}-d{depth}-s{seed}",
                    )
                )
    rng = random.Random(12345)
    for seed in range(12):
        depth = rng.randint(1, 3)
        names = [rng.choice(reference.ACTIVATION_NAMES) for _ in range(depth)]
        cases.append(pytest.param(names, 1000 + seed, id=f"mixed-{'-'.join(names)}-s{seed}"))
    return cases


@pytest.mark.parametrize(("names", "seed"), _gradient_cases())
def test_gradients_match_numerical_gradients(names, seed):
    rng = random.Random(seed)
    weights, biases, X, D = _random_problem(rng, len(names), names)
    E, gw, gb = reference.gradients(weights, biases, names, X, D)
    nw, nb = reference.numerical_gradients(weights, biases, names, X, D)
    assert math.isfinite(E) and E >= 0.0
    # Central differences carry ~1e-10 of absolute rounding noise (measured
    # max 3.7e-10 over these cases), which is more than rel 1e-6 of the
    # smallest gradients (worst rel error 4e-6), hence the abs floor.
    assert _flatten(gw) == pytest.approx(_flatten(nw), rel=1e-6, abs=1e-9)
    assert _flatten(gb) == pytest.approx(_flatten(nb), rel=1e-6, abs=1e-9)
    assert [len(m) for m in gw] == [len(m) for m in weights]
    assert [[len(r) for r in m] for m in gw] == [[len(r) for r in m] for m in weights]
    assert [len(b) for b in gb] == [len(b) for b in biases]


# --------------------------------------------------------------------------
# Inputs are never mutated; outputs are fresh lists.


def test_inputs_not_mutated_and_outputs_fresh():
    rng = random.Random(7)
    names = ["tanh", "sigmoid", "identity"]
    weights, biases, X, D = _random_problem(rng, 3, names)
    snapshot = copy.deepcopy((weights, biases, names, X, D))

    _, new_w, new_b = reference.step(weights, biases, names, X, D, 0.3)
    assert (weights, biases, names, X, D) == snapshot
    reference.gradients(weights, biases, names, X, D)
    assert (weights, biases, names, X, D) == snapshot
    reference.numerical_gradients(weights, biases, names, X, D)
    assert (weights, biases, names, X, D) == snapshot
    result = reference.backward(weights, biases, names, X[0], D[0])
    assert (weights, biases, names, X, D) == snapshot

    assert new_w != weights and new_b != biases
    for new, old in zip(new_w, weights):
        assert new is not old
        for new_row, old_row in zip(new, old):
            assert new_row is not old_row
    for new, old in zip(new_b, biases):
        assert new is not old
    assert result["y"][0] is not X[0]
    # Mutating the results must not reach the inputs.
    result["y"][0][0] += 1.0
    new_w[0][0][0] += 1.0
    new_b[0][0] += 1.0
    assert (weights, biases, names, X, D) == snapshot


def test_step_is_gradient_descent():
    rng = random.Random(3)
    names = ["sigmoid", "relu"]
    weights, biases, X, D = _random_problem(rng, 2, names)
    eta = 0.05
    E, gw, gb = reference.gradients(weights, biases, names, X, D)
    E_step, new_w, new_b = reference.step(weights, biases, names, X, D, eta)
    assert E_step == E
    assert _flatten(new_w) == pytest.approx([w - eta * g for w, g in zip(_flatten(weights), _flatten(gw))], abs=ABS)
    assert _flatten(new_b) == pytest.approx([b - eta * g for b, g in zip(_flatten(biases), _flatten(gb))], abs=ABS)


# --------------------------------------------------------------------------
# Beyond the tutorial (issue 6): more activations, softmax and the
# classification losses, each checked against central differences.


@pytest.mark.parametrize("name", ["leaky_relu", "leaky_relu(0.2)", "elu", "elu(0.5)", "softplus", "gelu"])
@pytest.mark.parametrize("z", [-2.5, -0.3, 0.7, 3.0])
def test_extra_activation_derivatives_match_finite_differences(name, z):
    h = 1e-6
    numeric = (reference.activation(name, z + h) - reference.activation(name, z - h)) / (2 * h)
    assert reference.activation_derivative(name, z) == pytest.approx(numeric, rel=1e-7, abs=1e-9)


def test_extra_activation_values():
    assert reference.activation("leaky_relu(0.2)", -2.0) == pytest.approx(-0.4)
    assert reference.activation("leaky_relu", -2.0) == pytest.approx(-0.02)
    assert reference.activation("elu", -1.0) == pytest.approx(math.exp(-1.0) - 1.0)
    assert reference.activation("softplus", 0.0) == pytest.approx(math.log(2.0))
    assert reference.activation("softplus", 800.0) == pytest.approx(800.0)
    assert reference.activation("gelu", 1.0) == pytest.approx(0.8413447460685429)
    y = reference.softmax([1.0, 2.0, 3.0])
    assert sum(y) == pytest.approx(1.0) and y[2] > y[1] > y[0]
    assert reference.softmax([1000.0, 0.0]) == pytest.approx([1.0, 0.0])


@pytest.mark.parametrize(
    "activations, loss",
    [
        (["tanh", "softmax"], "cross_entropy"),
        (["relu", "softmax"], "squared_error"),
        (["elu", "sigmoid"], "binary_cross_entropy"),
        (["gelu", "softplus"], "squared_error"),
        (["leaky_relu(0.1)", "identity"], "squared_error"),
    ],
)
def test_extra_gradients_match_numerical(activations, loss):
    rng = random.Random(5)
    sizes = [3, 4, 3]
    weights = [[[rng.uniform(-1, 1) for _ in range(sizes[l + 1])] for _ in range(sizes[l])] for l in range(2)]
    biases = [[rng.uniform(-0.5, 0.5) for _ in range(sizes[l + 1])] for l in range(2)]
    X = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(4)]
    if loss == "cross_entropy":
        D = [[1.0 if j == rng.randrange(3) else 0.0 for j in range(3)] for _ in range(4)]
    else:
        D = [[rng.uniform(0, 1) for _ in range(3)] for _ in range(4)]
    E, gW, gb = reference.gradients(weights, biases, activations, X, D, loss=loss)
    nW, nb = reference.numerical_gradients(weights, biases, activations, X, D, loss=loss)
    assert E > 0
    for l in range(2):
        for i in range(sizes[l]):
            assert gW[l][i] == pytest.approx(nW[l][i], rel=1e-6, abs=1e-9)
        assert gb[l] == pytest.approx(nb[l], rel=1e-6, abs=1e-9)


def test_cross_entropy_values():
    z = [2.0, 1.0, 0.1]
    y = reference.softmax(z)
    assert reference.loss("cross_entropy", y, [1.0, 0.0, 0.0], z) == pytest.approx(-math.log(y[0]))
    z = [0.3, -1.2]
    y = [1 / (1 + math.exp(-v)) for v in z]
    expected = -(math.log(y[0]) + math.log(1 - y[1]))
    assert reference.loss("binary_cross_entropy", y, [1.0, 0.0], z) == pytest.approx(expected)
    # saturated: finite, not log(0)
    assert reference.loss("binary_cross_entropy", [1.0], [0.0], [800.0]) == pytest.approx(800.0)
    assert reference.loss("cross_entropy", [1.0, 0.0], [0.0, 1.0], [900.0, 0.0]) == pytest.approx(900.0)
