"""fit on several threads (fastbp.engine._threaded): the same training as on one thread, up to rounding.

Each test trains twin networks, one with ``set_num_threads(1)`` and one with
2 (or 3) threads, and compares parameters, optimizer state and history.  The
threaded run sums the output layer's weighted sums in shares (one per
thread), so results agree to rounding, not bit for bit; runs on the same
number of threads agree bit for bit.
"""

import os
import threading

import numpy as np
import pytest

import fastbp
from fastbp import reference
from fastbp.engine import _serial as _engine_serial
from fastbp.engine import _threaded as _parallel
from fastbp.engine import _threaded_pass
from fastbp.errors import DivergenceError


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch):
    # a busy test machine would otherwise make some runs fall back to one thread (see
    # test_contended_threads_fall_back_to_one_for_a_while), and the tests check the threaded path
    monkeypatch.setattr(_parallel, "CONTENDED_WAIT_SHARE", np.inf)
    _parallel._one_thread_until = -np.inf
    yield
    fastbp.set_num_threads(None)
    _parallel._one_thread_until = -np.inf


def data(n, n_in, n_out, loss, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(dtype)
    if loss == "cross_entropy":
        D = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    elif loss == "binary_cross_entropy":
        D = (rng.random((n, n_out)) < 0.5).astype(float)
    else:
        D = rng.random((n, n_out))
    return X, D.astype(dtype)


def twins(sizes, activations, loss="squared_error", dtype=np.float64, seed=1):
    return [fastbp.Network(sizes, activations, loss=loss, dtype=dtype, seed=seed) for _ in range(2)]


def train(net, threads, X, D, **fit_kwargs):
    fastbp.set_num_threads(threads)
    try:
        return net.fit(X, D, **fit_kwargs)
    finally:
        fastbp.set_num_threads(None)


def tolerance(dtype):
    return dict(rtol=1e-9, atol=1e-11) if dtype == np.float64 else dict(rtol=2e-3, atol=2e-4)


def test_which_networks_get_threads(monkeypatch):
    fastbp.set_num_threads(2)
    net = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"])
    bounds = _parallel.thread_bounds(net._layout, 32)
    assert bounds.tolist() == [0, 32, 64]
    assert _parallel.thread_bounds(fastbp.Network([64, 64, 64, 10], ["tanh", "tanh", "sigmoid"])._layout, 32) is None
    assert _parallel.thread_bounds(fastbp.Network([4, 8, 2], ["tanh", "sigmoid"])._layout, 32) is None  # too small
    big = fastbp.Network([784, 1024, 10], ["relu", "identity"])._layout
    # big shares only where BLAS can be kept to each thread (else OpenBLAS would start threads inside ours)
    assert (_parallel.thread_bounds(big, 256) is None) == (not _parallel.can_pin_blas())
    _parallel._bounds.cache_clear()
    monkeypatch.setattr(_parallel, "can_pin_blas", lambda: False)
    assert _parallel.thread_bounds(big, 256) is None
    _parallel._bounds.cache_clear()
    # one sample a step: split when each thread's share of the parameters (the optimizer's pass) is large
    assert _parallel.thread_bounds(fastbp.Network([64, 512, 10], ["relu", "softmax"])._layout, 1).tolist() == [
        0, 256, 512,
    ]  # fmt: skip
    assert _parallel.thread_bounds(fastbp.Network([64, 256, 10], ["relu", "softmax"])._layout, 1) is None
    fastbp.set_num_threads(1)
    assert _parallel.thread_bounds(net._layout, 32) is None
    fastbp.set_num_threads(3)
    assert _parallel.thread_bounds(fastbp.Network([64, 99, 10], ["tanh", "sigmoid"])._layout, 32).tolist() == [
        0, 33, 66, 99,
    ]  # fmt: skip


def test_fit_uses_the_threads_and_falls_back_to_one_when_they_are_busy():
    X, D = data(200, 64, 10, "squared_error")
    threaded, busy = twins([64, 64, 10], ["tanh", "sigmoid"])
    serial = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=1)
    train(threaded, 2, X, D, epochs=2, lr=0.3, batch_size=32, seed=3)
    assert threaded._shared_run is not None and threaded._shared_run.status == -1
    train(serial, 1, X, D, epochs=2, lr=0.3, batch_size=32, seed=3)
    # another run holds the helper threads: this one runs on one thread, exactly as the serial one
    helpers = _parallel.acquire_helpers(1)
    try:
        train(busy, 2, X, D, epochs=2, lr=0.3, batch_size=32, seed=3)
    finally:
        helpers.lock.release()
    np.testing.assert_array_equal(busy.flat_parameters, serial.flat_parameters)
    np.testing.assert_allclose(threaded.flat_parameters, serial.flat_parameters, **tolerance(np.float64))
    assert not np.array_equal(threaded.flat_parameters, serial.flat_parameters)  # it did run differently


CASES = [
    # sizes, activations, loss, optimizer, dtype, batch_size
    ([64, 64, 10], ["tanh", "sigmoid"], "squared_error", None, np.float64, 32),
    ([64, 128, 10], ["relu", "softmax"], "cross_entropy", "adam", np.float64, 32),
    ([80, 33, 3], ["leaky_relu(0.1)", "sigmoid"], "binary_cross_entropy", "sgd_momentum", np.float64, 50),
    ([48, 64, 5], ["elu", "identity"], "squared_error", "sgd_nesterov_l2", np.float64, 40),
    ([64, 64, 10], ["gelu", "softmax"], "cross_entropy", "adamw", np.float32, 32),
    ([32, 96, 4], ["softplus", "tanh"], "squared_error", None, np.float32, 40),
]


def make_optimizer(name):
    return {
        None: None,
        "adam": fastbp.Adam(lr=1e-2),
        "adamw": fastbp.AdamW(lr=1e-2, weight_decay=0.1),
        "sgd_momentum": fastbp.SGD(lr=0.05, momentum=0.9),
        "sgd_nesterov_l2": fastbp.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3),
    }[name]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("sizes, activations, loss, opt_name, dtype, batch_size", CASES)
def test_threaded_fit_matches_one_thread(threads, sizes, activations, loss, opt_name, dtype, batch_size):
    X, D = data(230, sizes[0], sizes[-1], loss, dtype=dtype)  # 230 rows: the last batch is smaller
    nets = twins(sizes, activations, loss, dtype)
    results = []
    for net, n_threads in zip(nets, (1, threads)):
        opt = make_optimizer(opt_name)
        kwargs = dict(epochs=3, batch_size=batch_size, seed=5, optimizer=opt)
        if opt is None:
            kwargs["lr"] = 0.1
        history = train(net, n_threads, X, D, **kwargs)
        # the optimizer continues where it stopped, now with the hidden layer frozen
        history2 = train(net, n_threads, X, D, **dict(kwargs, epochs=1, seed=6, trainable=[False, True]))
        results.append((net, opt, history, history2))
    (serial, opt1, h1, g1), (threaded, opt2, h2, g2) = results
    assert threaded._shared_run is not None
    tol = tolerance(dtype)
    np.testing.assert_allclose(threaded.flat_parameters, serial.flat_parameters, **tol)
    np.testing.assert_allclose(h2.loss, h1.loss, **tol)
    np.testing.assert_allclose(g2.loss, g1.loss, **tol)
    if h1.accuracy is not None:
        np.testing.assert_allclose(h2.accuracy, h1.accuracy, atol=2 / len(X))
    if opt1 is not None:
        assert opt2.step_count == opt1.step_count == 4 * -(-len(X) // batch_size)
        for a, b in ((opt2.state1, opt1.state1), (opt2.state2, opt1.state2)):
            np.testing.assert_allclose(a, b, rtol=tol["rtol"], atol=tol["atol"] * 1e-2)
    # the frozen hidden layer kept its parameters exactly through the second fit
    assert np.all(np.isfinite(threaded.flat_parameters))


def test_frozen_layer_keeps_its_exact_bits_on_threads():
    X, D = data(128, 64, 10, "squared_error")
    net = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0)
    W1, b1 = net.weights[0].copy(), net.biases[0].copy()
    W2 = net.weights[1].copy()
    train(net, 2, X, D, epochs=2, lr=0.5, batch_size=32, trainable=[False, True], seed=0)
    assert net._shared_run is not None
    np.testing.assert_array_equal(net.weights[0], W1)
    np.testing.assert_array_equal(net.biases[0], b1)
    assert not np.array_equal(net.weights[1], W2)


def test_threaded_runs_are_reproducible_bit_for_bit():
    X, D = data(300, 64, 10, "cross_entropy")
    params = []
    for _ in range(3):
        net = fastbp.Network([64, 64, 10], ["relu", "softmax"], loss="cross_entropy", seed=2)
        train(net, 2, X, D, epochs=3, batch_size=32, seed=9, optimizer="adam")
        params.append(net.flat_parameters.copy())
    np.testing.assert_array_equal(params[0], params[1])
    np.testing.assert_array_equal(params[0], params[2])


def test_one_threaded_step_matches_the_reference():
    # one batch of all rows, no shuffling: one plain gradient-descent step, checked against the tutorial's formulas
    X, D = data(48, 64, 10, "squared_error", seed=4)
    net = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=3)
    weights = [w.tolist() for w in net.weights]
    biases = [b.tolist() for b in net.biases]
    train(net, 2, X, D, epochs=1, lr=0.7, batch_size=48, shuffle=False)
    assert net._shared_run is not None
    E, new_w, new_b = reference.step(weights, biases, ["tanh", "sigmoid"], X.tolist(), D.tolist(), 0.7)
    for got, want in zip(net.weights, new_w):
        np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-14)
    for got, want in zip(net.biases, new_b):
        np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-14)


def test_threaded_fit_epoch_by_epoch_matches_one_call():
    # callbacks make fit run one compiled call per epoch: the state (order, generator, backup) carries over
    X, D = data(200, 64, 10, "cross_entropy")
    nets = [fastbp.Network([64, 64, 10], ["relu", "softmax"], loss="cross_entropy", seed=1) for _ in range(2)]
    seen = []
    train(nets[0], 2, X, D, epochs=4, batch_size=32, seed=2, optimizer="adam")
    train(nets[1], 2, X, D, epochs=4, batch_size=32, seed=2, optimizer="adam", callbacks=[lambda *a: seen.append(1)])
    assert len(seen) == 4
    np.testing.assert_array_equal(nets[0].flat_parameters, nets[1].flat_parameters)


@pytest.mark.parametrize("opt_name", ["plain", "momentum"])
def test_threaded_divergence_puts_back_the_last_good_parameters(opt_name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 64))
    D = rng.normal(size=(96, 10)) * 1e3
    nets = twins([64, 64, 10], ["relu", "identity"])
    errors, opts = [], []
    for net, threads in zip(nets, (1, 2)):
        # momentum: the out-of-place update, which takes back a step by switching buffers
        opt = fastbp.SGD(lr=1e3, momentum=0.9) if opt_name == "momentum" else fastbp.SGD(lr=1e3)
        opts.append(opt)
        with pytest.raises(DivergenceError) as info, np.errstate(all="ignore"):
            train(net, threads, X, D, epochs=50, batch_size=32, seed=1, optimizer=opt)
        errors.append(info.value)
    assert (errors[1].epoch, errors[1].batch) == (errors[0].epoch, errors[0].batch)
    assert nets[1]._shared_run is not None
    assert np.all(np.isfinite(nets[1].flat_parameters))
    np.testing.assert_allclose(nets[1].flat_parameters, nets[0].flat_parameters, rtol=1e-6, atol=1e-6)
    assert opts[1].step_count == opts[0].step_count


def test_a_failing_helper_stops_the_run_and_leaves_the_network_as_it_was(monkeypatch):
    X, D = data(128, 64, 10, "squared_error")
    net = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0)
    before = net.flat_parameters.copy()

    def broken(*args):
        raise MemoryError("helper out of memory")

    monkeypatch.setattr(_parallel, "_helper_entry", broken)
    with pytest.raises(RuntimeError, match="a fit thread failed.*helper out of memory"):
        train(net, 2, X, D, epochs=3, lr=0.5, batch_size=32, seed=0)
    np.testing.assert_array_equal(net.flat_parameters, before)
    monkeypatch.undo()
    train(net, 2, X, D, epochs=1, lr=0.5, batch_size=32, seed=0)  # the helpers still work
    assert not np.array_equal(net.flat_parameters, before)


@pytest.mark.parametrize("where", ["X", "D"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("per_epoch", [False, True])
def test_threaded_fit_refuses_a_non_finite_input_and_changes_nothing(where, bad, per_epoch):
    """On the threaded path X and D are checked inside the compiled run, row by row as the threads
    gather them in the first epoch: a NaN or an infinity anywhere (here in the last row, which the
    shuffle puts in some step of the first epoch) gives the same ValueError as on one thread, and the
    network, its optimizer state and step count are as they were."""
    X, D = data(200, 64, 10, "cross_entropy")
    net = fastbp.Network([64, 64, 10], ["tanh", "softmax"], loss="cross_entropy", seed=0)
    opt = fastbp.Adam(lr=1e-2)
    train(net, 2, X, D, epochs=1, batch_size=32, seed=0, optimizer=opt)
    assert net._shared_run is not None and net._shared_run.status == -1  # the threads did run
    before = (net.flat_parameters.copy(), opt.state1.copy(), opt.state2.copy(), opt.step_count)
    (X if where == "X" else D)[-1, 3] = bad
    callbacks = [lambda *args: None] if per_epoch else None
    with pytest.raises(ValueError, match=rf"{where} must be finite, but {where}\[\(199, 3\)\] is {bad}"):
        train(net, 2, X, D, epochs=2, batch_size=32, seed=0, optimizer=opt, callbacks=callbacks)
    assert net._shared_run.status == _threaded_pass.BAD_INPUT
    for now, then in zip((net.flat_parameters, opt.state1, opt.state2, opt.step_count), before):
        np.testing.assert_array_equal(now, then)
    fastbp.set_num_threads(1)
    with pytest.raises(ValueError, match=rf"{where} must be finite, but {where}\[\(199, 3\)\] is {bad}"):
        net.fit(X, D, epochs=2, batch_size=32, seed=0, optimizer=opt, callbacks=callbacks)
    helpers = _parallel.acquire_helpers(1)  # busy helpers: the run would go on one thread, checked first
    try:
        with pytest.raises(ValueError, match=rf"{where} must be finite, but {where}\[\(199, 3\)\] is {bad}"):
            train(net, 2, X, D, epochs=2, batch_size=32, seed=0, optimizer=opt, callbacks=callbacks)
    finally:
        helpers.lock.release()
    for now, then in zip((net.flat_parameters, opt.state1, opt.state2, opt.step_count), before):
        np.testing.assert_array_equal(now, then)
    (X if where == "X" else D)[-1, 3] = 0.0
    train(net, 2, X, D, epochs=1, batch_size=32, seed=0, optimizer=opt)  # the threads work on
    assert net._shared_run.status == -1 and opt.step_count == before[3] + 7


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
def test_a_refused_run_ends_only_when_every_thread_has_stopped():
    """Regression: a run stopped by a NaN in X used to return in thread 0 before the helper had read the
    stop flag; the next fit reset the flag, and the helper went on with the old run against the new one
    (wrong results, then a deadlock). On one CPU the helper is preempted right after each barrier, which
    made this happen in the first few of these NaN-then-clean pairs; now every pair ends cleanly."""
    import subprocess
    import sys

    code = (
        "import os, numpy as np\n"
        "os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "import fastbp\n"
        "from fastbp.engine import _threaded as _parallel\n"
        "_parallel.CONTENDED_WAIT_SHARE = np.inf\n"
        "fastbp.set_num_threads(2)\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(200, 64)); D = np.eye(10)[rng.integers(0, 10, 200)]\n"
        "bad = X.copy(); bad[-1, 3] = np.nan\n"
        "net = fastbp.Network([64, 64, 10], ['tanh', 'softmax'], loss='cross_entropy', seed=0)\n"
        "for i in range(100):\n"
        "    try:\n"
        "        net.fit(bad, D, epochs=2, batch_size=32, seed=i)\n"
        "    except ValueError as exc:\n"
        "        assert 'X must be finite' in str(exc), exc\n"
        "    else:\n"
        "        raise AssertionError('no error')\n"
        "    net.fit(X, D, epochs=1, batch_size=32, seed=i)\n"
        "    assert net._shared_run.status == -1\n"
        "print('pairs', i + 1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pairs 100" in out.stdout


def test_contended_threads_fall_back_to_one_for_a_while(monkeypatch):
    X, D = data(128, 64, 10, "squared_error")
    # a run is judged contended when thread 0 waited more than this share of its time in barriers
    monkeypatch.setattr(_parallel, "CONTENDED_WAIT_SHARE", -1.0)
    monkeypatch.setattr(_parallel, "MIN_JUDGED_BARRIERS", 1)
    fastbp.set_num_threads(2)
    probe = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0)
    probe.fit(X, D, epochs=2, lr=0.5, batch_size=32, seed=0)  # the first run of a dtype is never judged
    probe.fit(X, D, epochs=2, lr=0.5, batch_size=32, seed=0)
    assert _parallel._one_thread_until > _parallel.time.monotonic() + 1
    net = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0)
    assert _parallel.thread_bounds(net._layout, 32) is None
    _parallel._one_thread_until = -np.inf
    assert _parallel.thread_bounds(net._layout, 32) is not None
    _parallel._one_thread_until = _parallel.time.monotonic() + 60
    assert _parallel.thread_bounds(net._layout, 32) is None
    serial = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0)
    train(net, 2, X, D, epochs=1, lr=0.5, batch_size=32, seed=0)
    train(serial, 1, X, D, epochs=1, lr=0.5, batch_size=32, seed=0)
    np.testing.assert_array_equal(net.flat_parameters, serial.flat_parameters)


def test_two_user_threads_fitting_at_once():
    X, D = data(256, 64, 10, "squared_error")
    nets = [fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=k) for k in range(4)]
    fastbp.set_num_threads(2)
    expected = []
    for k in range(4):
        twin = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=k)
        twin.fit(X, D, epochs=5, lr=0.3, batch_size=32, seed=k)
        expected.append(twin.flat_parameters.copy())
    failures = []

    def work(k):
        try:
            nets[k].fit(X, D, epochs=5, lr=0.3, batch_size=32, seed=k)
        except Exception as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures and not any(t.is_alive() for t in threads)
    for net, want in zip(nets, expected):
        # on the helpers or, when another run had them, on one thread: the same training either way
        np.testing.assert_allclose(net.flat_parameters, want, **tolerance(np.float64))


def test_fit_on_threads_after_fork(monkeypatch):
    # after a fork the parent's helper threads do not exist in the child: a new process id makes
    # fit start new helpers (forking for real here would fork the test runner's other threads too)
    X, D = data(128, 64, 10, "squared_error")
    nets = [fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0) for _ in range(2)]
    train(nets[0], 2, X, D, epochs=2, lr=0.5, batch_size=32, seed=0)
    old = _parallel._helpers
    assert old is not None and old.pid == os.getpid()
    monkeypatch.setattr(_parallel.os, "getpid", lambda: old.pid + 1)
    train(nets[1], 2, X, D, epochs=2, lr=0.5, batch_size=32, seed=0)
    assert _parallel._helpers is not old and _parallel._helpers.pid == old.pid + 1
    assert nets[1]._shared_run is not None
    np.testing.assert_array_equal(nets[1].flat_parameters, nets[0].flat_parameters)


def test_set_num_threads_checks_its_argument(monkeypatch):
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="integer >= 1"):
            fastbp.set_num_threads(bad)
    fastbp.set_num_threads(3)
    assert fastbp.get_num_threads() == 3
    with _parallel.limit_threads(1):
        assert fastbp.get_num_threads() == 1
    assert fastbp.get_num_threads() == 3
    fastbp.set_num_threads(None)
    monkeypatch.setenv("FASTBP_NUM_THREADS", "1")
    assert fastbp.get_num_threads() == 1
    monkeypatch.setenv("FASTBP_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="FASTBP_NUM_THREADS"):
        fastbp.get_num_threads()
    monkeypatch.delenv("FASTBP_NUM_THREADS")
    assert fastbp.get_num_threads() == min(2, _parallel.available_cpus())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mid_sized_passes_take_each_product_in_one_call(monkeypatch, dtype):
    # 10-200-200-1 at 16 samples: the 200 x 200 product, 640 K multiply-adds, is more than one BLAS thread
    # takes (config.BLAS_ONE_THREAD_MAX) and less than BLAS_CHUNKED_MAX: forward and evaluate keep BLAS to
    # the calling thread, gradients and step leave it as it is; all take each product in one call
    acts = ["tanh", "tanh", "identity"]
    net = fastbp.Network([10, 200, 200, 1], acts, dtype=dtype, seed=0)
    X, D = data(16, 10, 1, "squared_error", seed=2, dtype=dtype)
    passes = net._passes
    assert passes.small_module() is None
    pinned = _parallel.can_pin_blas()
    assert passes.forward_blas(16)[1] == pinned  # without the per-thread setting: dense_forward's row blocks
    assert passes.forward_blas(4)[1]  # 160 K: one BLAS thread anyway
    assert passes.forward_blas(1024)[1]  # 41 M: BLAS's own threads pay
    wide = fastbp.Network([10, 700, 700, 1], acts, dtype=dtype, seed=0)._passes  # 490 K a sample: BLAS's threads
    assert all(wide.forward_blas(n)[1] for n in (1, 2, 16))
    settings = []
    real = _parallel._blas_threads_here

    def recording(n):
        settings.append(n)
        return real(n)

    monkeypatch.setattr(_parallel, "_blas_threads_here", recording)
    weights = [w.tolist() for w in net.weights]
    biases = [b.tolist() for b in net.biases]
    E, g = net.gradients(X, D)
    E_ref, gw_ref, gb_ref = reference.gradients(weights, biases, acts, X.tolist(), D.tolist())
    rtol, atol = (1e-10, 1e-13) if dtype == np.float64 else (2e-4, 2e-6)
    np.testing.assert_allclose(E, E_ref, rtol=rtol)
    for got, want in zip(g.weights + g.biases, gw_ref + gb_ref):
        np.testing.assert_allclose(got, np.array(want), rtol=rtol, atol=atol)
    # the row blocks of dense_forward (the forward pass of fastbp.jit) compute the same
    ws = passes.work(16)
    _engine_serial.forward_pass(net._theta, net._layout.packed, X, ws.work)
    blocks = ws.rows(ws.y, net._layout, 2, 16)
    assert settings == []
    Y = net.forward(X)
    if pinned:
        assert settings[0] == 1 and len(settings) == 2  # one thread within the call, the setting before after it
    np.testing.assert_allclose(Y, blocks, rtol=rtol, atol=atol)
    np.testing.assert_allclose(Y, np.array([reference.forward(weights, biases, acts, x)[1][-1] for x in X.tolist()]),
                               rtol=rtol, atol=atol)  # fmt: skip
    np.testing.assert_allclose(net.evaluate(X, D)[0], E_ref, rtol=rtol)
    E_step = net.step(X, D, lr=0.1)
    np.testing.assert_allclose(E_step, E_ref, rtol=rtol)
    _, new_w, new_b = reference.step(weights, biases, acts, X.tolist(), D.tolist(), 0.1)
    for got, want in zip(net.weights + net.biases, new_w + new_b):
        np.testing.assert_allclose(got, np.array(want), rtol=rtol, atol=atol)
    assert len(settings) == (4 if pinned else 0)  # forward and evaluate: two settings each
