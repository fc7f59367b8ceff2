"""fastbp.jit: a whole network called, differentiated and trained from a user's own @numba.njit code.

Oracles: the Network's own methods (forward, gradients, step, fit), central differences of a loss the user
writes (Huber), and the pure-Python reference for the forward pass.
"""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbp
from fastbp import jit, kernels, reference
from fastbp.nn.activations import ACTIVATIONS

HIDDEN = [name for name, spec in ACTIVATIONS.items() if name != "softmax"]


@numba.njit
def user_forward(model, X, Y):
    jit.forward(model, X, Y)


@numba.njit
def user_gradient(model, X, D, grad):
    return jit.loss_and_gradient(model, X, D, grad)


@numba.njit
def huber_loss_and_gradient(model, X, D, Y, dY, grad, delta):
    """E = mean over samples of sum_j huber(y_j - d_j), its gradient by the vector-Jacobian product."""
    jit.forward(model, X, Y)
    n = X.shape[0]
    E = 0.0
    for s in range(n):
        for j in range(Y.shape[1]):
            r = Y[s, j] - D[s, j]
            if abs(r) <= delta:
                E += 0.5 * r * r
                dY[s, j] = r / n
            else:
                E += delta * (abs(r) - 0.5 * delta)
                dY[s, j] = delta * np.sign(r) / n
    jit.backward(model, X, dY, grad)
    return E / n


@numba.njit
def user_sgd_loop(model, X, D, lr, steps, losses):
    for k in range(steps):
        losses[k] = jit.sgd_step(model, X, D, lr)


@numba.njit
def user_adam_loop(model, X, D, batch, epochs, lr, hyper, m, v, grad, frozen):
    """Adam over mini-batches in order, through kernels.optimizer_update on the flat gradient."""
    theta = model[1]
    t = 0
    for _ in range(epochs):
        for start in range(0, X.shape[0], batch):
            stop = min(X.shape[0], start + batch)
            jit.loss_and_gradient(model, X[start:stop], D[start:stop], grad)
            t += 1
            kernels.optimizer_update(kernels.ADAM, theta, grad, lr, hyper, m, v, t, frozen)
    return t


def problem(sizes, activations, loss, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    net = fastbp.Network(sizes, activations, loss=loss, dtype=dtype, seed=seed)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    if loss == "cross_entropy":
        D = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    elif loss == "binary_cross_entropy":
        D = rng.integers(0, 2, (n, sizes[-1])).astype(dtype)
    else:
        D = rng.normal(size=(n, sizes[-1])).astype(dtype)
    return net, X, D


@settings(max_examples=20, deadline=None, derandomize=True)
@given(
    depth=st.integers(1, 3),
    width=st.integers(1, 24),
    hidden=st.sampled_from(HIDDEN),
    out=st.sampled_from(
        [
            "identity-squared_error",
            "softmax-cross_entropy",
            "sigmoid-binary_cross_entropy",
            "sigmoid-squared_error",
            "softmax-squared_error",
        ]
    ),  # fmt: skip
    n=st.integers(1, 16),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 50),
)
def test_forward_and_gradient_inside_njit_equal_the_network(depth, width, hidden, out, n, dtype, seed):
    out_activation, loss = out.split("-")
    n_out = 3 if out_activation == "softmax" else 2
    sizes = [3] + [width] * depth + [n_out]
    net, X, D = problem(sizes, [hidden] * depth + [out_activation], loss, n, dtype, seed)
    model = net.to_jit(max_batch=16)
    Y = np.empty((n, n_out), dtype=dtype)
    user_forward(model, X, Y)
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(Y, net.forward(X), rtol=rtol, atol=rtol)
    grad = np.empty(net.n_params, dtype=dtype)
    E = user_gradient(model, X, D, grad)
    E_net, g_net = net.gradients(X, D)
    assert E == pytest.approx(E_net, rel=rtol, abs=rtol)
    np.testing.assert_allclose(grad, g_net.flat, rtol=rtol, atol=rtol * max(1.0, np.abs(g_net.flat).max()))


def test_forward_equals_the_pure_python_reference():
    net, X, _ = problem([3, 5, 4, 2], ["tanh", "relu", "sigmoid"], "squared_error", 6, np.float64)
    Y = np.empty((6, 2))
    user_forward(net.to_jit(8), X, Y)
    weights = [w.tolist() for w in net.weights]
    biases = [b.tolist() for b in net.biases]
    for x, y in zip(X, Y):
        expected = reference.forward(weights, biases, ["tanh", "relu", "sigmoid"], x.tolist())[1][-1]
        np.testing.assert_allclose(y, expected, rtol=1e-12)


@pytest.mark.parametrize("out", ["identity", "sigmoid", "softmax"])
def test_backward_with_a_users_huber_loss_equals_central_differences(out):
    net, X, D = problem([4, 6, 5, 3], ["tanh", "elu", out], "squared_error", 7, np.float64, seed=3)
    D *= 2.0  # some residuals beyond the Huber threshold
    model = net.to_jit(max_batch=8)
    Y, dY, grad = np.empty((7, 3)), np.empty((7, 3)), np.empty(net.n_params)
    huber_loss_and_gradient(model, X, D, Y, dY, grad, 0.5)
    theta, h = net.flat_parameters, 1e-6
    numeric = np.empty(net.n_params)
    scratch = np.empty(net.n_params)
    for k in range(net.n_params):
        saved = theta[k]
        theta[k] = saved + h
        plus = huber_loss_and_gradient(model, X, D, Y, dY, scratch, 0.5)
        theta[k] = saved - h
        minus = huber_loss_and_gradient(model, X, D, Y, dY, scratch, 0.5)
        theta[k] = saved
        numeric[k] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("sizes", [[2, 3, 1], [8, 32, 16, 4]])
def test_fifty_compiled_sgd_steps_equal_fifty_network_steps(sizes, dtype):
    activations = ["sigmoid"] * (len(sizes) - 2) + ["identity"]
    net, X, D = problem(sizes, activations, "squared_error", 12, dtype, seed=1)
    twin = net.copy()
    losses = np.empty(50)
    user_sgd_loop(net.to_jit(max_batch=12), X, D, 0.05, 50, losses)
    twin_losses = [twin.step(X, D, lr=0.05) for _ in range(50)]
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(losses, twin_losses, rtol=rtol)
    np.testing.assert_allclose(net.flat_parameters, twin.flat_parameters, rtol=rtol, atol=rtol)
    assert not np.array_equal(net.flat_parameters, problem(sizes, activations, "squared_error", 12, dtype, 1)[0]
                              .flat_parameters)  # fmt: skip


def test_an_adam_loop_through_optimizer_update_equals_fit_without_shuffling():
    net, X, D = problem([6, 20, 3], ["relu", "softmax"], "cross_entropy", 40, np.float64, seed=2)
    twin = net.copy()
    opt = fastbp.Adam(lr=0.01)
    twin.fit(X, D, epochs=3, batch_size=8, shuffle=False, optimizer=opt)
    hyper = fastbp.Adam(lr=0.01).hyper()
    m, v = np.zeros(net.n_params), np.zeros(net.n_params)
    t = user_adam_loop(net.to_jit(max_batch=8), X, D, 8, 3, 0.01, hyper, m, v, np.empty(net.n_params),
                       np.zeros(0, dtype=np.bool_))  # fmt: skip
    assert t == opt.step_count == 15
    np.testing.assert_allclose(net.flat_parameters, twin.flat_parameters, rtol=1e-12, atol=1e-14)


def test_training_through_the_model_changes_the_network():
    net, X, D = problem([3, 4, 1], ["tanh", "identity"], "squared_error", 5, np.float64)
    before = net.forward(X)
    model = net.to_jit(max_batch=5)
    assert model[1] is net.flat_parameters.base or np.shares_memory(model[1], net.flat_parameters)
    jit.sgd_step(model, X, D, 0.1)
    assert not np.array_equal(net.forward(X), before)


def test_python_calls_check_their_arguments():
    net, X, D = problem([3, 4, 2], ["tanh", "identity"], "squared_error", 5, np.float64)
    model = net.to_jit(max_batch=4)
    Y, grad = np.empty((4, 2)), np.empty(net.n_params)
    with pytest.raises(ValueError, match="5 rows: the model takes batches of 1 to max_batch=4"):
        jit.forward(model, X, np.empty((5, 2)))
    with pytest.raises(
        ValueError, match=r"Y must be a C-contiguous float64 array of shape \(4, 2\), got float64 \(4, 3\)"
    ):
        jit.forward(model, X[:4], np.empty((4, 3)))
    with pytest.raises(ValueError, match="X must be a C-contiguous float64"):
        jit.forward(model, X[:4].astype(np.float32), Y)
    with pytest.raises(ValueError, match=r"grad must be .* shape \(26,\)"):
        jit.loss_and_gradient(model, X[:4], D[:4], grad[:5])
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        jit.sgd_step(model, X[:4], D[:4], -1.0)
    with pytest.raises(TypeError, match="what Network.to_jit returns"):
        jit.forward((1, 2), X[:4], Y)
    bad = (model[0], model[1], (1000, *model[2][1:]), model[3], model[4])  # a capacity its buffers do not have
    with pytest.raises(ValueError, match="the model's z must be"):
        jit.forward(bad, X[:4], Y)
    with pytest.raises(ValueError, match="max_batch"):
        net.to_jit(max_batch=0)


def test_checked_models_raise_inside_compiled_code():
    net, X, D = problem([3, 4, 2], ["tanh", "identity"], "squared_error", 6, np.float64)
    checked, unchecked = net.to_jit(max_batch=4, checked=True), net.to_jit(max_batch=8)
    with pytest.raises(ValueError, match="larger than the model's max_batch"):
        user_forward(checked, X, np.empty((6, 2)))
    with pytest.raises(ValueError, match="grad does not have"):
        user_gradient(checked, X[:4], D[:4], np.empty(3))
    with pytest.raises(ValueError, match="not \\(n, n_out\\)"):
        user_forward(checked, X[:4], np.empty((3, 2)))
    user_forward(unchecked, X, np.empty((6, 2)))  # a right call passes either way


USER_PROCESS = """
import numba, numpy as np, fastbp
from fastbp import jit

@numba.njit(cache=True)
def user_loop(model, X, D, Y, dY, grad, lr):
    jit.forward(model, X, Y)
    dY[:, :] = Y - D
    jit.backward(model, X, dY, grad)
    return jit.loss_and_gradient(model, X, D, grad) + jit.sgd_step(model, X, D, lr)

net = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=0)
X, D = np.ones((4, 3)), np.zeros((4, 2))
user_loop(net.to_jit(max_batch=4), X, D, np.empty((4, 2)), np.empty((4, 2)), np.empty(net.n_params), 0.1)
"""

PYTHON_PROCESS = """
import numpy as np, fastbp
from fastbp import jit

net = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=0)
twin = net.copy()
model = net.to_jit(max_batch=4)
X, D = np.ones((4, 3)), np.zeros((4, 2))
Y, grad = np.empty((4, 2)), np.empty(net.n_params)
jit.forward(model, X, Y)
assert np.array_equal(Y, twin.forward(X))
jit.backward(model, X, Y - D, grad)
E = jit.loss_and_gradient(model, X, D, grad)
assert E == twin.gradients(X, D)[0]
assert jit.sgd_step(model, X, D, 0.1) == twin.step(X, D, lr=0.1)
assert np.allclose(net.flat_parameters, twin.flat_parameters, rtol=1e-12, atol=1e-15)
print("ok")
"""


def test_python_calls_after_a_user_function_was_cached(tmp_path):
    """A user's cached @njit function that calls the four functions, compiled in one process, and then the
    four called from Python in another, with the same caches: each finds its own compiled code (the functions
    numba compiles into the user's code once shared the compiled functions' cache entries, and the Python
    calls crashed)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)  # the caches the suite uses, so that only the user's function compiles anew
    for name, script in (("user.py", USER_PROCESS), ("python_calls.py", PYTHON_PROCESS)):
        (tmp_path / name).write_text(script)
        command = [sys.executable, str(tmp_path / name)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"
