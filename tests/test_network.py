"""The Network API against its contract and against both oracles."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import fastbp
from fastbp import reference
from fastbp.nn.activations import ACTIVATIONS

from conftest import ENGINES, RTOL, SMALL_ARCHITECTURES, assert_close, build_network, networks, to_lists


def ref_forward_batch(weights, biases, activations, X):
    W, b = to_lists(weights), to_lists(biases)
    return [reference.forward(W, b, activations, x)[1][-1] for x in X.tolist()]


# ---------------------------------------------------------------- contract


def test_constructor_and_description():
    net = fastbp.Network([2, 3, 1], activations=["sigmoid", "identity"], seed=0)
    assert net.sizes == (2, 3, 1)
    assert net.activations == ("sigmoid", "identity")
    assert net.loss == "squared_error"
    assert net.dtype == np.float64
    assert net.n_params == 2 * 3 + 3 + 3 * 1 + 1
    assert [w.shape for w in net.weights] == [(2, 3), (3, 1)]
    assert [b.shape for b in net.biases] == [(3,), (1,)]
    assert all(np.all(b == 0) for b in net.biases)
    assert net.flat_parameters.shape == (net.n_params,)


def test_same_seed_same_network_and_different_seed_differs():
    a = fastbp.Network([4, 8, 3], ["tanh", "sigmoid"], seed=7)
    b = fastbp.Network([4, 8, 3], ["tanh", "sigmoid"], seed=7)
    c = fastbp.Network([4, 8, 3], ["tanh", "sigmoid"], seed=8)
    assert np.array_equal(a.flat_parameters, b.flat_parameters)
    assert not np.array_equal(a.flat_parameters, c.flat_parameters)


@pytest.mark.parametrize("activation", [name for name, row in ACTIVATIONS.items() if not row.output_only])
def test_default_initialisation_bounds(activation):
    net = fastbp.Network([300, 200, 5], [activation, activation], seed=0)
    W = net.weights[0]
    bound = {"he": np.sqrt(6 / 300), "glorot": np.sqrt(6 / 500)}[ACTIVATIONS[activation].init]
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.95 * bound  # uniform over the whole range
    assert abs(W.mean()) < 0.01


def test_weights_are_live_views_into_flat_parameters():
    net = fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=0)
    net.weights[0][1, 0] = 3.5
    net.biases[1][0] = -2.0
    assert net.flat_parameters[2] == 3.5  # W1 row-major: (0,0), (0,1), (1,0)
    assert net.flat_parameters[-1] == -2.0
    x = np.array([0.3, -0.7])
    y_before = net.forward(x)
    net.weights[1][...] = 0.0
    assert not np.array_equal(net.forward(x), y_before)  # the edit takes effect
    assert net.forward(x)[0] == pytest.approx(1 / (1 + np.exp(2.0)))


def test_from_weights_copies_and_keeps_dtype():
    W1 = np.array([[0.5, -0.3]], dtype=np.float32)
    W2 = np.array([[0.8], [0.4]], dtype=np.float32)
    b1 = np.zeros(2, np.float32)
    b2 = np.zeros(1, np.float32)
    net = fastbp.Network.from_weights(weights=[W1, W2], biases=[b1, b2], activations=["relu", "identity"])
    assert net.dtype == np.float32
    assert net.sizes == (1, 2, 1)
    W1[0, 0] = 99.0
    assert net.weights[0][0, 0] == np.float32(0.5)
    assert net.forward(np.array([1.0], np.float32)).dtype == np.float32
    net64 = fastbp.Network.from_weights([[[1, 2]], [[3], [4]]], [[0, 0], [0]], ["relu", "identity"])
    assert net64.dtype == np.float64


def test_forward_shapes():
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=1)
    assert net.forward(np.zeros((5, 3))).shape == (5, 2)
    assert net.forward(np.zeros(3)).shape == (2,)
    assert net.forward([[0.1, 0.2, 0.3]]).shape == (1, 2)


def test_float32_network_computes_in_float32():
    net = fastbp.Network([3, 4, 2], ["tanh", "sigmoid"], dtype=np.float32, seed=1)
    assert net.flat_parameters.dtype == np.float32
    X = np.ones((2, 3))
    assert net.forward(X).dtype == np.float32
    E, g = net.gradients(X, np.zeros((2, 2)))
    assert g.flat.dtype == np.float32 and isinstance(E, float)


def test_gradients_into_preallocated_out():
    net = fastbp.Network([3, 5, 2], ["tanh", "sigmoid"], seed=2)
    X = np.random.default_rng(0).normal(size=(6, 3))
    D = np.random.default_rng(1).normal(size=(6, 2))
    E1, g1 = net.gradients(X, D)
    E2, g2 = net.gradients(X, D, out=g1)
    assert g2 is g1 and E1 == E2
    with pytest.raises(TypeError, match="Gradients"):
        net.gradients(X, D, out=np.zeros(net.n_params))


def test_step_returns_loss_before_update_and_moves_against_gradient():
    net = fastbp.Network([2, 3, 1], ["sigmoid", "sigmoid"], seed=3)
    X = np.array([[0.0, 1.0], [1.0, 1.0]])
    D = np.array([[1.0], [0.0]])
    theta = net.flat_parameters.copy()
    E, g = net.gradients(X, D)
    assert net.step(X, D, lr=0.3) == E
    np.testing.assert_array_equal(net.flat_parameters, theta - 0.3 * g.flat)
    assert net.gradients(X, D)[0] < E


def test_bad_shapes_raise_before_any_kernel_runs():
    net = fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=0)
    theta = net.flat_parameters.copy()
    with pytest.raises(ValueError, match="X has 3 features, the network expects 2"):
        net.forward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="D has 2 targets"):
        net.step(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="4 samples but D has 3"):
        net.fit(np.zeros((4, 2)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="finite"):
        net.step(np.array([[np.nan, 0.0]]), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="lr"):
        net.step(np.zeros((1, 2)), np.zeros((1, 1)), lr=-1.0)
    with pytest.raises(ValueError, match="valid activations"):
        fastbp.Network([2, 1], ["softsign"])
    with pytest.raises(ValueError, match="one activation per non-input layer"):
        fastbp.Network([2, 2, 1], ["sigmoid"])
    with pytest.raises(TypeError, match="real numbers"):
        net.forward(np.array([["a", "b"]]))
    assert np.array_equal(net.flat_parameters, theta)


# ---------------------------------------------------------------- against the reference


def engine_cases(engine, **kwargs):
    """Random architectures for the generic engine; the fixed list for the specialised code."""
    if engine == "specialized":
        kwargs["architectures"] = SMALL_ARCHITECTURES
    return networks(**kwargs)


@pytest.mark.parametrize("engine", ENGINES)
@given(data=st.data())
def test_network_matches_reference(engine, data):
    case = data.draw(engine_cases(engine))
    sizes, activations, weights, biases, X, D, dtype = case
    net = build_network(weights, biases, activations, engine)
    assert net.dtype == dtype
    W, b = to_lists(weights), to_lists(biases)
    Xl, Dl = X.astype(np.float64).tolist(), D.astype(np.float64).tolist()

    assert_close(net.forward(X), ref_forward_batch(weights, biases, activations, X), dtype, what="forward")

    E_ref, gW_ref, gb_ref = reference.gradients(W, b, activations, Xl, Dl)
    E, g = net.gradients(X, D)
    assert_close(E, E_ref, dtype, what="E")
    # A batch gradient is a mean of per-sample terms that may cancel: its rounding error is relative
    # to the size of those terms (mean |term|), which in float32 can far exceed the result itself.
    per_sample = [reference.backward(W, b, activations, x, d) for x, d in zip(Xl, Dl)]
    for layer in range(len(weights)):
        w_terms = np.mean([np.abs(r["grad_weights"][layer]).max() for r in per_sample])
        b_terms = np.mean([np.abs(r["grad_biases"][layer]).max() for r in per_sample])
        assert_close(g.weights[layer], gW_ref[layer], dtype, what=f"dE/dW[{layer}]", scale=w_terms)
        assert_close(g.biases[layer], gb_ref[layer], dtype, what=f"dE/db[{layer}]", scale=b_terms)

    E_step_ref, W_new, b_new = reference.step(W, b, activations, Xl, Dl, 0.1)
    assert_close(net.step(X, D, lr=0.1), E_step_ref, dtype, what="step E")
    for layer in range(len(weights)):
        w_scale = max(np.abs(weights[layer]).max(), 0.1 * np.abs(gW_ref[layer]).max())
        b_scale = max(np.abs(biases[layer]).max(), 0.1 * np.abs(gb_ref[layer]).max())
        assert_close(net.weights[layer], W_new[layer], dtype, what=f"W[{layer}] after step", scale=w_scale)
        assert_close(net.biases[layer], b_new[layer], dtype, what=f"b[{layer}] after step", scale=b_scale)


@given(networks(max_layers=3, max_width=8, max_batch=4, budget=400))
def test_trace_matches_reference_backward(case):
    sizes, activations, weights, biases, X, D, dtype = case
    net = fastbp.Network.from_weights(weights, biases, activations)
    ref = reference.backward(to_lists(weights), to_lists(biases), activations, X[0].tolist(), D[0].tolist())
    t = net.trace(X[0], D[0], lr=0.5)
    assert_close(t.E, ref["E"], dtype, what="E")
    for layer, lt in enumerate(t.layers, start=1):
        assert_close(lt.z, ref["z"][layer], dtype, what="z")
        assert_close(lt.y, ref["y"][layer], dtype, what="y")
        assert_close(lt.delta, ref["delta"][layer], dtype, what="delta")
        assert_close(lt.grad_weights, ref["grad_weights"][layer - 1], dtype, what="dE/dW")
        assert_close(lt.grad_biases, ref["grad_biases"][layer - 1], dtype, what="dE/db")
        assert_close(lt.new_weights, np.asarray(weights[layer - 1], np.float64) - 0.5 * np.asarray(lt.grad_weights),
                     dtype, what="updated W")  # fmt: skip
    text = str(t)
    assert "delta" in text and "dE/dw_ij" in text and f"{t.E:.10g}" in text
    # trace does not change the network
    assert np.array_equal(net.weights[0], np.asarray(weights[0]))


# ---------------------------------------------------------------- against numerical gradients


def relu_kink_distance(weights, biases, activations, X):
    """Smallest |z| over the relu units of all samples (inf if there are none)."""
    W, b = to_lists(weights), to_lists(biases)
    smallest = np.inf
    for x in X.tolist():
        zs, _ = reference.forward(W, b, activations, x)
        for layer, name in enumerate(activations, start=1):
            if name == "relu":
                smallest = min(smallest, min(abs(z) for z in zs[layer]))
    return smallest


@pytest.mark.parametrize("engine", ENGINES)
@given(data=st.data())
def test_backprop_matches_numerical_gradient(engine, data):
    case = data.draw(engine_cases(engine, dtypes=(np.float64,), budget=4000))
    sizes, activations, weights, biases, X, D, dtype = case
    # Central differences are wrong across a relu kink: keep every relu z clear of 0.
    assume(relu_kink_distance(weights, biases, activations, X) > 1e-4)
    net = build_network(weights, biases, activations, engine)
    theta = net.flat_parameters.copy()
    E, g = net.gradients(X, D)
    g_num = fastbp.numerical_gradient(net, X, D, eps=1e-6)
    assert np.array_equal(net.flat_parameters, theta), "numerical_gradient changed the network"
    scale = max(np.abs(g_num.flat).max(), 1e-12)
    err = np.abs(g.flat - g_num.flat).max()
    # truncation O(eps^2 f''') plus rounding O(1e-16 E / eps)
    assert err <= 1e-6 * scale + 1e-9 * max(E, 1.0), f"max error {err:.3e}, gradient scale {scale:.3e}"


def test_numerical_gradient_of_float32_network_is_float64_and_close():
    net = fastbp.Network([3, 4, 2], ["tanh", "sigmoid"], dtype=np.float32, seed=4)
    X = np.random.default_rng(0).normal(size=(5, 3))
    D = np.random.default_rng(1).uniform(size=(5, 2))
    theta = net.flat_parameters.copy()
    g_num = fastbp.numerical_gradient(net, X, D)
    assert g_num.flat.dtype == np.float64
    assert net.flat_parameters.tobytes() == theta.tobytes()
    _, g = net.gradients(X, D)
    assert_close(g.flat, g_num.flat, np.float32, rtol=1e-4, what="float32 backprop vs float64 numerical")


# ---------------------------------------------------------------- fit


@pytest.mark.parametrize("engine", ENGINES)
@given(data=st.data(), batch_size=st.integers(1, 9), epochs=st.integers(1, 3))
def test_fit_without_shuffle_equals_sequence_of_steps(engine, data, batch_size, epochs):
    case = data.draw(engine_cases(engine, max_layers=3, max_width=16, budget=20_000))
    sizes, activations, weights, biases, X, D, dtype = case
    fitted = build_network(weights, biases, activations, engine)
    stepped = build_network(weights, biases, activations, engine)
    history = fitted.fit(X, D, epochs=epochs, lr=0.05, batch_size=batch_size, shuffle=False)
    n = X.shape[0]
    bs = min(batch_size, n)
    expected = []
    for _ in range(epochs):
        losses = [stepped.step(X[s : s + bs], D[s : s + bs], lr=0.05) for s in range(0, n, bs)]
        expected.append(np.mean(np.asarray(losses, dtype=np.float64)))
    np.testing.assert_array_equal(fitted.flat_parameters, stepped.flat_parameters)
    np.testing.assert_allclose(history.loss, expected, rtol=1e-12)
    assert history.loss.shape == (epochs,)


def test_fit_shuffle_is_seeded():
    X = np.random.default_rng(0).normal(size=(50, 3))
    D = np.random.default_rng(1).normal(size=(50, 1))
    nets = [fastbp.Network([3, 4, 1], ["tanh", "identity"], seed=0) for _ in range(3)]
    h0 = nets[0].fit(X, D, epochs=3, lr=0.1, batch_size=7, seed=11)
    h1 = nets[1].fit(X, D, epochs=3, lr=0.1, batch_size=7, seed=11)
    h2 = nets[2].fit(X, D, epochs=3, lr=0.1, batch_size=7, seed=12)
    assert np.array_equal(nets[0].flat_parameters, nets[1].flat_parameters)
    np.testing.assert_array_equal(h0.loss, h1.loss)
    assert not np.array_equal(nets[0].flat_parameters, nets[2].flat_parameters)
    assert not np.array_equal(h0.loss, h2.loss)


def test_fit_shuffled_epoch_visits_every_sample_once():
    # lr tiny and identity output: each batch's gradient is linear in its samples, so
    # the sum of the steps over one epoch is the same whatever the order (to rounding).
    X = np.random.default_rng(0).normal(size=(12, 2))
    D = np.random.default_rng(1).normal(size=(12, 1))
    a = fastbp.Network([2, 1], ["identity"], seed=0)
    b = a.copy()
    a.fit(X, D, epochs=1, lr=1e-8, batch_size=12, shuffle=True, seed=3)
    b.fit(X, D, epochs=1, lr=1e-8, batch_size=12, shuffle=False)
    np.testing.assert_allclose(a.flat_parameters, b.flat_parameters, rtol=0, atol=1e-15)


def test_fit_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    D = np.array([[0], [1], [1], [0]], dtype=float)
    net = fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=0)
    h = net.fit(X, D, epochs=5000, lr=2.0, batch_size=4, shuffle=False)
    assert h.loss[-1] < 0.01 < h.loss[0]
    np.testing.assert_array_equal(np.round(net.forward(X)), D)


def test_fit_mean_of_batch_losses():
    X = np.random.default_rng(0).normal(size=(10, 2))
    D = np.random.default_rng(1).normal(size=(10, 1))
    net = fastbp.Network([2, 3, 1], ["tanh", "identity"], seed=0)
    twin = net.copy()
    h = net.fit(X, D, epochs=1, lr=0.1, batch_size=4, shuffle=False)  # batches of 4, 4, 2
    losses = [twin.step(X[:4], D[:4]), twin.step(X[4:8], D[4:8]), twin.step(X[8:], D[8:])]
    assert h.loss[0] == pytest.approx(np.mean(losses), rel=RTOL[np.dtype(np.float64)])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("trainable", [[False, True], [True, False], [False, False]])
def test_fit_with_frozen_layers_changes_only_trainable_ones(trainable, engine):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    D = np.array([[0], [1], [1], [0]], dtype=float)
    seeded = fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=1)
    net = build_network(seeded.weights, seeded.biases, ["sigmoid", "sigmoid"], engine)
    before = [(w.copy(), b.copy()) for w, b in zip(net.weights, net.biases)]
    net.fit(X, D, epochs=50, lr=0.5, batch_size=2, seed=0, trainable=trainable)
    for layer, flag in enumerate(trainable):
        w0, b0 = before[layer]
        if flag:
            assert not np.array_equal(net.weights[layer], w0)
        else:
            assert net.weights[layer].tobytes() == w0.tobytes() and net.biases[layer].tobytes() == b0.tobytes()


@pytest.mark.parametrize("engine", ENGINES)
def test_fit_with_frozen_hidden_layer_equals_manual_output_only_steps(engine):
    X = np.random.default_rng(0).normal(size=(6, 3))
    D = np.random.default_rng(1).normal(size=(6, 2))
    seeded = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    net = build_network(seeded.weights, seeded.biases, ["tanh", "identity"], engine)
    twin = net.copy()
    net.fit(X, D, epochs=2, lr=0.1, batch_size=3, shuffle=False, trainable=[False, True])
    for _ in range(2):
        for s in range(0, 6, 3):
            _, g = twin.gradients(X[s : s + 3], D[s : s + 3])
            twin.weights[1][...] -= 0.1 * g.weights[1]
            twin.biases[1][...] -= 0.1 * g.biases[1]
    np.testing.assert_allclose(net.flat_parameters, twin.flat_parameters, rtol=1e-13, atol=1e-15)


def test_trainable_all_true_is_plain_fit_and_bad_flags_are_refused():
    X = np.random.default_rng(0).normal(size=(6, 3))
    D = np.random.default_rng(1).normal(size=(6, 2))
    a = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    b = a.copy()
    a.fit(X, D, epochs=2, lr=0.1, batch_size=3, seed=0, trainable=[True, True])
    b.fit(X, D, epochs=2, lr=0.1, batch_size=3, seed=0)
    np.testing.assert_array_equal(a.flat_parameters, b.flat_parameters)
    with pytest.raises(ValueError, match="trainable must be 2 booleans"):
        a.fit(X, D, trainable=[True])
    with pytest.raises(ValueError, match="trainable"):
        a.fit(X, D, trainable=[1, 0])
