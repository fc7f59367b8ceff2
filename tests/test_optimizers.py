"""Optimizers, schedules and training control, checked against hand-written NumPy update rules."""

import numpy as np
import pytest

import fastbp
from fastbp.errors import DivergenceError


def data(n=24, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.normal(size=(n, n_out))


def numpy_training(net, X, D, rule, epochs, batch_size, lrs, **h):
    """Replay fit without shuffling: net.gradients per batch, then the update rule written in NumPy."""
    theta = net.flat_parameters
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    t = 0
    for epoch in range(epochs):
        lr = lrs[epoch]
        for s in range(0, len(X), batch_size):
            _, g = net.gradients(X[s : s + batch_size], D[s : s + batch_size])
            g = g.flat.copy()
            t += 1
            if rule == "sgd":
                g = g + h.get("weight_decay", 0.0) * theta
                mu = h.get("momentum", 0.0)
                if mu:
                    m[...] = mu * m + g
                    g = g + mu * m if h.get("nesterov") else m
                theta -= lr * g
            elif rule in ("adam", "adamw"):
                b1, b2, eps, wd = h["beta1"], h["beta2"], h["eps"], h["weight_decay"]
                if rule == "adamw":
                    theta *= 1 - lr * wd
                else:
                    g = g + wd * theta
                m[...] = b1 * m + (1 - b1) * g
                v[...] = b2 * v + (1 - b2) * g * g
                m_hat = m / (1 - b1**t)
                v_hat = v / (1 - b2**t)
                theta -= lr * m_hat / (np.sqrt(v_hat) + eps)


CASES = [
    ("sgd", dict(momentum=0.9), fastbp.SGD(lr=0.05, momentum=0.9)),
    ("sgd", dict(momentum=0.9, nesterov=True), fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd", dict(weight_decay=0.01), fastbp.SGD(lr=0.05, weight_decay=0.01)),
    ("adam", dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0), fastbp.Adam(lr=0.05)),
    ("adam", dict(beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1), fastbp.Adam(0.05, 0.8, 0.99, 1e-6, 0.1)),
    ("adamw", dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01), fastbp.AdamW(lr=0.05)),
]


@pytest.mark.parametrize("rule, hyper, optimizer", CASES, ids=[repr(c[2]) for c in CASES])
def test_update_rules_match_numpy(rule, hyper, optimizer):
    X, D = data()
    net = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=1)
    twin = net.copy()
    net.fit(X, D, epochs=3, batch_size=8, shuffle=False, optimizer=optimizer)
    numpy_training(twin, X, D, rule, 3, 8, [0.05] * 3, **hyper)
    np.testing.assert_allclose(net.flat_parameters, twin.flat_parameters, rtol=1e-10, atol=1e-12)
    assert net.optimizer is optimizer and optimizer.step_count == 9


def test_optimizer_state_continues_across_fit_calls():
    X, D = data()
    one = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=2)
    two = one.copy()
    a, b = fastbp.Adam(lr=0.01), fastbp.Adam(lr=0.01)
    one.fit(X, D, epochs=4, batch_size=8, shuffle=False, optimizer=a)
    two.fit(X, D, epochs=2, batch_size=8, shuffle=False, optimizer=b)
    two.fit(X, D, epochs=2, batch_size=8, shuffle=False, optimizer=b)
    assert one.flat_parameters.tobytes() == two.flat_parameters.tobytes()
    assert a.step_count == b.step_count == 12


def test_optimizer_by_name_and_lr_rules():
    X, D = data()
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    net.fit(X, D, epochs=1, optimizer="adam")
    assert isinstance(net.optimizer, fastbp.Adam) and net.optimizer.lr == 1e-3
    net.fit(X, D, epochs=1, optimizer="sgd", lr=0.2)
    assert isinstance(net.optimizer, fastbp.SGD) and net.optimizer.lr == 0.2
    with pytest.raises(ValueError, match="valid optimizers are sgd, adam, adamw"):
        net.fit(X, D, optimizer="rmsprop")
    with pytest.raises(ValueError, match="set lr on"):
        net.fit(X, D, optimizer=fastbp.Adam(), lr=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        fastbp.SGD(nesterov=True)
    with pytest.raises(ValueError, match="beta1"):
        fastbp.Adam(beta1=1.0)
    adam = fastbp.Adam()
    net.fit(X, D, optimizer=adam)
    with pytest.raises(ValueError, match="use a new optimizer per network"):
        fastbp.Network([2, 2], ["tanh"]).fit(np.ones((2, 2)), np.ones((2, 2)), optimizer=adam)


def test_lr_schedules():
    X, D = data()
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    h = net.fit(X, D, epochs=7, lr=0.1, lr_schedule=fastbp.StepDecay(3, 0.5))
    np.testing.assert_allclose(h.lr, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
    h = net.fit(X, D, epochs=3, lr=0.1, lr_schedule=fastbp.ExponentialDecay(0.9))
    np.testing.assert_allclose(h.lr, [0.1, 0.09, 0.081])
    # a schedule changes training exactly as separate calls with those learning rates do
    a, b = net.copy(), net.copy()
    a.fit(X, D, epochs=2, lr=0.1, shuffle=False, lr_schedule=lambda k: [1.0, 0.5][k])
    b.fit(X, D, epochs=1, lr=0.1, shuffle=False)
    b.fit(X, D, epochs=1, lr=0.05, shuffle=False)
    assert a.flat_parameters.tobytes() == b.flat_parameters.tobytes()


def test_validation_early_stopping_restores_best_and_callbacks():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    D = X @ rng.normal(size=(3, 1)) + 0.5 * rng.normal(size=(40, 1))
    Xv = rng.normal(size=(10, 3))
    Dv = Xv @ rng.normal(size=(3, 1))  # a different relation: val_loss soon stops improving
    net = fastbp.Network([3, 16, 1], ["tanh", "identity"], seed=0)
    seen = []

    def record(n, epoch, logs):
        seen.append((epoch, logs["val_loss"], n.flat_parameters.copy()))

    h = net.fit(X, D, epochs=200, lr=0.05, batch_size=8, seed=0, validation_data=(Xv, Dv), patience=5,
                callbacks=[record])  # fmt: skip
    assert len(h.loss) == len(h.val_loss) == len(seen) < 200
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best and len(h.loss) == best + 6
    np.testing.assert_array_equal(net.flat_parameters, seen[best][2])
    assert net.evaluate(Xv, Dv)[0] == pytest.approx(h.val_loss[best], rel=1e-12)


def test_callback_can_stop_training():
    X, D = data()
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    h = net.fit(X, D, epochs=50, callbacks=[lambda n, epoch, logs: epoch == 2])
    assert len(h.loss) == 3


def test_classification_history_has_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    labels = (X[:, 0] > 0).astype(int)
    D = np.eye(2)[labels]
    net = fastbp.Network([2, 8, 2], ["tanh", "softmax"], loss="cross_entropy", seed=0)
    h = net.fit(X, D, epochs=30, lr=0.5, batch_size=10, seed=0, validation_data=(X, D))
    assert h.accuracy.shape == (30,) and h.val_accuracy.shape == (30,)
    assert h.val_accuracy[-1] > 0.9 and h.accuracy[-1] > 0.8
    loss, acc = net.evaluate(X, D)
    assert acc == h.val_accuracy[-1] and loss == pytest.approx(h.val_loss[-1])
    assert np.all((h.accuracy >= 0) & (h.accuracy <= 1))


def test_adam_divergence_restores_parameters_and_state():
    X, D = data()
    D = D * 1e200
    net = fastbp.Network([3, 4, 2], ["relu", "identity"], seed=0)
    opt = fastbp.Adam(lr=1e10)
    with pytest.raises(DivergenceError):
        net.fit(X, D, epochs=5, batch_size=4, optimizer=opt)
    assert np.all(np.isfinite(net.flat_parameters))
    assert np.all(np.isfinite(opt.state1)) and np.all(np.isfinite(opt.state2))


def test_against_pytorch_step_by_step():
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    X, D = data()
    for make_ours, make_theirs in [
        (lambda: fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
         lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (lambda: fastbp.Adam(lr=0.01, weight_decay=0.01), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
        (lambda: fastbp.AdamW(lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01)),
    ]:  # fmt: skip
        net = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=3)
        W1, W2 = (torch.tensor(w.T.copy(), requires_grad=True) for w in net.weights)
        b1, b2 = (torch.tensor(b.copy(), requires_grad=True) for b in net.biases)
        theirs = make_theirs([W1, b1, W2, b2])
        Xt, Dt = torch.tensor(X), torch.tensor(D)
        for s in range(0, 24, 8):
            theirs.zero_grad()
            y = torch.tanh(Xt[s : s + 8] @ W1.T + b1) @ W2.T + b2
            (0.5 * ((y - Dt[s : s + 8]) ** 2).sum(dim=1).mean()).backward()
            theirs.step()
        net.fit(X, D, epochs=1, batch_size=8, shuffle=False, optimizer=make_ours())
        np.testing.assert_allclose(net.weights[0], W1.detach().numpy().T, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(net.biases[1], b2.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "code, hyper",
    [
        ("sgd", dict(momentum=0.0, nesterov=False, weight_decay=0.0)),
        ("sgd", dict(momentum=0.9, nesterov=False, weight_decay=0.01)),
        ("sgd", dict(momentum=0.8, nesterov=True, weight_decay=0.0)),
        ("adam", dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)),
        ("adamw", dict(beta1=0.85, beta2=0.99, eps=1e-6, weight_decay=0.05)),
    ],
)
def test_optimizer_kernel_matches_pure_python_reference(code, hyper, dtype):
    """The compiled update against fastbp.reference's scalar transcription, over 5 steps."""
    from fastbp import kernels, reference

    rng = np.random.default_rng(0)
    n = 37
    theta = rng.normal(size=n).astype(dtype)
    s1, s2 = np.zeros(n, dtype), np.zeros(n, dtype)
    p, m, v = theta.astype(float).tolist(), [0.0] * n, [0.0] * n
    h = np.zeros(kernels.N_HYPER)
    if code == "sgd":
        h[kernels.H_MOMENTUM], h[kernels.H_WEIGHT_DECAY] = hyper["momentum"], hyper["weight_decay"]
        h[kernels.H_NESTEROV] = float(hyper["nesterov"])
    else:
        h[kernels.H_BETA1], h[kernels.H_BETA2] = hyper["beta1"], hyper["beta2"]
        h[kernels.H_EPS], h[kernels.H_WEIGHT_DECAY] = hyper["eps"], hyper["weight_decay"]
    kernel_code = {"sgd": kernels.SGD, "adam": kernels.ADAM, "adamw": kernels.ADAMW}[code]
    lr = 0.05
    for t in range(1, 6):
        g = rng.normal(size=n).astype(dtype)
        kernels.optimizer_update(kernel_code, theta, g, dtype(lr), h, s1, s2, t, np.zeros(0, np.bool_))
        grads = g.astype(float).tolist()
        if code == "sgd":
            p, m = reference.sgd_update(p, grads, m, lr, **hyper)
        else:
            p, m, v = reference.adam_update(p, grads, m, v, t, lr, decoupled=code == "adamw", **hyper)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(theta, p, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("code", ["adam", "adamw", "sgd"])
def test_float32_parameters_are_updated_in_float32_arithmetic(code):
    """float32 parameters get float32 arithmetic, as in PyTorch: the kernel equals, bit for bit, the
    update rule evaluated by NumPy on float32 arrays with the coefficients rounded once to float32
    (float64 arithmetic rounded at the end gives different last bits)."""
    from fastbp import kernels

    rng = np.random.default_rng(7)
    n = 301
    f32 = np.float32
    lr, beta1, beta2, eps, wd, t = 1e-3, 0.9, 0.999, 1e-8, 0.01, 4
    h = np.zeros(kernels.N_HYPER)
    h[kernels.H_WEIGHT_DECAY] = wd
    if code == "sgd":
        h[kernels.H_MOMENTUM] = beta1
    else:
        h[kernels.H_BETA1], h[kernels.H_BETA2], h[kernels.H_EPS] = beta1, beta2, eps
    theta = rng.normal(size=n).astype(f32)
    m = np.abs(rng.normal(size=n)).astype(f32)
    v = np.abs(rng.normal(size=n)).astype(f32) if code != "sgd" else np.zeros(0, f32)
    g = rng.normal(size=n).astype(f32)
    expected_theta, expected_m, expected_v = theta.copy(), m.copy(), v.copy()
    with np.errstate(all="raise"):
        if code == "sgd":
            grad = g + f32(wd) * theta
            expected_m = f32(beta1) * m + grad
            expected_theta = theta - f32(lr) * expected_m
        else:
            decoupled = code == "adamw"
            grad = g if decoupled else g + f32(wd) * theta
            expected_m = f32(beta1) * m + f32(1 - beta1) * grad
            expected_v = f32(beta2) * v + f32(1 - beta2) * grad * grad
            shrink = f32(1 - lr * wd if decoupled else 1.0)
            step = f32(lr / (1 - beta1**t)) * expected_m / (np.sqrt(expected_v * f32(1 / (1 - beta2**t))) + f32(eps))
            expected_theta = theta * shrink - step
    kernel_code = {"sgd": kernels.SGD, "adam": kernels.ADAM, "adamw": kernels.ADAMW}[code]
    kernels.optimizer_update(kernel_code, theta, g, f32(lr), h, m, v, t, np.zeros(0, np.bool_))
    for ours, theirs in ((theta, expected_theta), (m, expected_m), (v, expected_v)):
        assert ours.dtype == np.float32
        assert ours.tobytes() == theirs.astype(f32).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("code", ["adam", "sgd"])
def test_optimizer_state_below_the_smallest_normal_number_becomes_zero(code, dtype):
    """A moment or velocity that decays into the subnormal range is set to 0 (subnormal arithmetic is
    ~100x slower on x86); normal ones are kept, NaN stays NaN, and the parameters move as without it."""
    from fastbp import kernels

    tiny = np.finfo(dtype).tiny
    # entries: decays into the subnormal range, stays normal, NaN, 0
    state = np.array([1.0005 * tiny, 1e-3, np.nan, 0.0], dtype)
    theta = np.array([0.5, 0.5, 0.5, 0.5], dtype)
    g = np.zeros(4, dtype)
    h = np.zeros(kernels.N_HYPER)
    if code == "sgd":
        h[kernels.H_MOMENTUM] = 0.9
        s1, s2, kernel_code = state.copy(), np.zeros(0, dtype), kernels.SGD
    else:
        h[kernels.H_BETA1], h[kernels.H_BETA2], h[kernels.H_EPS] = 0.9, 0.999, 1e-8
        s1, s2, kernel_code = state.copy(), state.copy(), kernels.ADAM
    kernels.optimizer_update(kernel_code, theta, g, dtype(0.01), h, s1, s2, 2, np.zeros(0, np.bool_))
    assert 0.999 * 1.0005 * tiny < tiny  # without the rule, entry 0 would be subnormal now (beta2 = 0.999)
    for moment in (s1, s2) if code == "adam" else (s1,):
        assert moment[0] == 0.0 and moment[1] > 0.0 and np.isnan(moment[2]) and moment[3] == 0.0
    assert theta[0] == dtype(0.5) and theta[3] == dtype(0.5)  # a step of ~1e-38 lr: nothing to see
    assert theta[1] < dtype(0.5) and np.isnan(theta[2])


@pytest.mark.parametrize("with_frozen", [False, True])
@pytest.mark.parametrize(
    "code, momentum_or_beta1, weight_decay",
    [("sgd", 0.0, 0.0), ("sgd", 0.9, 0.01), ("adam", 0.9, 0.1), ("adamw", 0.85, 0.05)],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_optimizer_update_out_of_place_equals_in_place(code, momentum_or_beta1, weight_decay, with_frozen, dtype):
    """theta_out/state*_out get exactly what the in-place update writes; the inputs are only read."""
    from fastbp import kernels

    rng = np.random.default_rng(1)
    n = 53
    h = np.zeros(kernels.N_HYPER)
    h[kernels.H_WEIGHT_DECAY] = weight_decay
    if code == "sgd":
        h[kernels.H_MOMENTUM] = momentum_or_beta1
    else:
        h[kernels.H_BETA1], h[kernels.H_BETA2], h[kernels.H_EPS] = momentum_or_beta1, 0.99, 1e-8
    kernel_code = {"sgd": kernels.SGD, "adam": kernels.ADAM, "adamw": kernels.ADAMW}[code]
    frozen = rng.random(n) < 0.3 if with_frozen else np.zeros(0, np.bool_)
    theta = rng.normal(size=n).astype(dtype)
    s1 = np.abs(rng.normal(size=n if momentum_or_beta1 else 0)).astype(dtype)  # no velocity without momentum
    s2 = np.abs(rng.normal(size=n)).astype(dtype) if code != "sgd" else np.zeros(0, dtype)
    inputs = [a.copy() for a in (theta, s1, s2)]
    outs = [np.full_like(a, np.nan) for a in (theta, s1, s2)]
    g = rng.normal(size=n).astype(dtype)
    kernels.optimizer_update(kernel_code, theta, g, dtype(0.05), h, s1, s2, 3, frozen, *outs)
    for a, a0 in zip((theta, s1, s2), inputs):
        np.testing.assert_array_equal(a, a0)
    kernels.optimizer_update(kernel_code, theta, g, dtype(0.05), h, s1, s2, 3, frozen)
    for out, in_place in zip(outs, (theta, s1, s2)):
        assert out.tobytes() == in_place.tobytes()
    if with_frozen:
        np.testing.assert_array_equal(theta[frozen], inputs[0][frozen])


@pytest.mark.parametrize("per_epoch", [False, True])
@pytest.mark.parametrize("lr", [1e2, 1e5, 1e20, 1e80])  # divergence at epochs 4, 3, 2, 1
def test_optimizer_divergence_puts_back_the_parameters_and_state_before_the_last_step(lr, per_epoch):
    """With an optimizer, fit steps out of place between theta and a second buffer.  After a divergence
    at epoch e (one batch per epoch: the loss at the parameters of e steps is the first that is not
    finite) the network and the optimizer hold exactly what e - 1 clean epochs give, whether e - 1 is odd
    or even, and whether fit runs in one compiled call or epoch by epoch."""
    rng = np.random.default_rng(0)
    X, D = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)) * 1e3
    extra = dict(validation_data=(X, D)) if per_epoch else {}
    net = fastbp.Network([3, 16, 2], ["relu", "identity"], seed=0)
    opt = fastbp.SGD(lr=lr, momentum=0.9, weight_decay=0.5)
    with pytest.raises(DivergenceError) as info:
        with np.errstate(all="ignore"):
            net.fit(X, D, epochs=60, batch_size=8, shuffle=False, optimizer=opt, **extra)
    good_epochs = info.value.epoch
    assert info.value.batch == 0 and good_epochs >= 1
    twin = fastbp.Network([3, 16, 2], ["relu", "identity"], seed=0)
    twin_opt = fastbp.SGD(lr=lr, momentum=0.9, weight_decay=0.5).bind(twin.n_params, twin.dtype)
    if good_epochs > 1:
        twin.fit(X, D, epochs=good_epochs - 1, batch_size=8, shuffle=False, optimizer=twin_opt)
    assert net.flat_parameters.tobytes() == twin.flat_parameters.tobytes()
    assert opt.state1.tobytes() == twin_opt.state1.tobytes()
    assert opt.step_count == twin_opt.step_count == good_epochs - 1


def test_a_schedule_that_overflows_is_a_value_error_and_changes_nothing():
    X, D = data()
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    before = net.flat_parameters.tobytes()
    with pytest.raises(ValueError, match="lr_schedule must give finite factors > 0, but it overflowed"):
        net.fit(X, D, epochs=3, lr_schedule=fastbp.ExponentialDecay(1e300))
    assert net.flat_parameters.tobytes() == before and net.optimizer is None
