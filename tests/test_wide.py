"""fit on several threads for any depth (fastbp.engine._wide): the same training as on one thread.

The threads split each step's passes by samples (batches of at least MIN_SAMPLE_SPLIT) or by units
(smaller batches of networks with a big layer), and its update by parameters.  Sums over samples and
BLAS's blocking differ from one thread's, so results agree with ``engine._serial`` to rounding; runs on
the same number of threads agree bit for bit, and a divergence puts back, bit for bit, the parameters
that a run stopped before the diverging batch ends with.
"""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastbp
from fastbp.engine import _threaded as _parallel
from fastbp.engine import _wide
from fastbp.errors import DivergenceError
from fastbp.nn.activations import ACTIVATIONS
from test_parallel import data

# a layer of 400 x 330 = 132 K weights: batches below MIN_SAMPLE_SPLIT split by units
BIG = [12, 400, 330, 3]
# a layer of 800 x 400: each of two threads' 400 rows of W take two blocks in update_layer at 16-63 samples
WIDE = [12, 800, 400, 3]


@pytest.fixture(autouse=True)
def every_network_wide(monkeypatch):
    """Every network of these tests takes the wide fit when it runs on two threads."""
    monkeypatch.setattr(_parallel, "MIN_WIDE_PARAMS", 0)
    monkeypatch.setattr(_parallel, "MIN_SHARE_MULTIPLY_ADDS", np.inf)  # not the one-hidden-layer split
    # a busy test machine would otherwise make some runs fall back to one thread (see the last test)
    monkeypatch.setattr(_parallel, "CONTENDED_WAIT_SHARE", np.inf)
    _parallel._wide_count.cache_clear()
    _parallel._bounds.cache_clear()
    _parallel._one_thread_until = -np.inf
    yield
    fastbp.set_num_threads(None)
    _parallel._wide_count.cache_clear()
    _parallel._bounds.cache_clear()
    _parallel._one_thread_until = -np.inf


def optimizer(name):
    return {
        "sgd": lambda: fastbp.SGD(lr=0.002),
        "nesterov": lambda: fastbp.SGD(lr=0.0005, momentum=0.9, nesterov=True, weight_decay=1e-3),
        "adam": lambda: fastbp.Adam(lr=1e-3),
        "adamw": lambda: fastbp.AdamW(lr=1e-3, weight_decay=0.1),
    }[name]()


def train(threads, sizes, activations, loss, X, D, opt_name, dtype=np.float64, **fit_kwargs):
    """A fresh network trained on ``threads`` threads: (network, history, optimizer)."""
    net = fastbp.Network(sizes, activations, loss=loss, dtype=dtype, seed=1)
    opt = optimizer(opt_name)
    fastbp.set_num_threads(threads)
    try:
        history = net.fit(X, D, optimizer=opt, seed=3, **fit_kwargs)
    finally:
        fastbp.set_num_threads(None)
    # plain gradient descent on a tiny network runs the code generated for it instead
    generated = net._passes.small_module() is not None and opt.is_plain()
    assert (net._wide_run is not None) == (threads > 1 and not generated)
    return net, history, opt


def assert_same_training(one, two, rtol, atol):
    (net1, h1, opt1), (net2, h2, opt2) = one, two
    np.testing.assert_allclose(net2.flat_parameters, net1.flat_parameters, rtol=rtol, atol=atol)
    for a, b in ((opt1.state1, opt2.state1), (opt1.state2, opt2.state2)):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)
    assert opt1.step_count == opt2.step_count
    np.testing.assert_allclose(h2.loss, h1.loss, rtol=rtol, atol=atol)
    if h1.accuracy is not None:
        np.testing.assert_array_equal(h2.accuracy, h1.accuracy)


@pytest.mark.parametrize("opt_name", ["sgd", "nesterov", "adam", "adamw"])
@pytest.mark.parametrize(
    "sizes, activations, loss, batch_size",
    [
        (BIG, ["relu", "tanh", "softmax"], "cross_entropy", 8),  # split by units
        (BIG, ["elu", "sigmoid", "identity"], "squared_error", 1),  # units, one sample a step
        (WIDE, ["relu", "tanh", "softmax"], "cross_entropy", 32),  # units, blocks of FUSED_BLOCK_ENTRIES
        (BIG, ["leaky_relu", "relu", "sigmoid"], "binary_cross_entropy", 64),  # split by samples
        ([9, 20, 16, 12, 4], ["tanh", "relu", "softplus", "softmax"], "cross_entropy", 80),  # samples
        ([5, 40, 2], ["sigmoid", "identity"], "squared_error", 5),  # small: samples
    ],
)
def test_wide_fit_matches_one_thread(sizes, activations, loss, batch_size, opt_name):
    X, D = data(150, sizes[0], sizes[-1], loss)
    runs = [train(t, sizes, activations, loss, X, D, opt_name, epochs=2, batch_size=batch_size) for t in (1, 2)]
    assert _wide.split_by_units(runs[1][0]._layout.packed, batch_size) == (sizes in (BIG, WIDE) and batch_size < 64)
    if sizes == WIDE:
        assert _wide.rows_per_block(batch_size, 400, 400) < 400
    assert_same_training(*runs, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 8, 32, 64])
def test_wide_fit_on_three_threads_matches_one_thread(batch_size):
    # three partial products a layer in the forward pass split by units, and shares of W of unequal rows; at
    # 64 samples each thread's gradient block is its whole share, and thread 0's 134 of 400 rows fill its block
    X, D = data(120, BIG[0], BIG[-1], "cross_entropy")
    activations = ["relu", "tanh", "softmax"]
    runs = [train(t, BIG, activations, "cross_entropy", X, D, "adam", epochs=2, batch_size=batch_size) for t in (1, 3)]
    assert runs[1][0]._wide_run.n_threads == 3
    assert_same_training(*runs, rtol=1e-9, atol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 24), min_size=1, max_size=3),
    hidden=st.sampled_from(sorted(name for name, row in ACTIVATIONS.items() if not row.output_only)),
    loss=st.sampled_from(["squared_error", "cross_entropy", "binary_cross_entropy"]),
    batch_size=st.integers(1, 40),
    n=st.integers(1, 90),
    opt_name=st.sampled_from(["sgd", "nesterov", "adam", "adamw"]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_wide_fit_matches_one_thread_for_any_shape(widths, hidden, loss, batch_size, n, opt_name, dtype):
    n_out = 3
    sizes = [4, *widths, n_out]
    out = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid", "squared_error": "identity"}[loss]
    activations = [hidden] * len(widths) + [out]
    X, D = data(n, 4, n_out, loss, dtype=dtype)
    runs = [train(t, sizes, activations, loss, X, D, opt_name, dtype, epochs=2, batch_size=batch_size) for t in (1, 2)]
    tol = dict(rtol=1e-8, atol=1e-10) if dtype == np.float64 else dict(rtol=2e-3, atol=2e-4)
    assert_same_training(*runs, **tol)


def test_wide_runs_are_reproducible_bit_for_bit():
    X, D = data(200, 12, 3, "cross_entropy")
    a, b = (train(2, BIG, ["relu", "relu", "softmax"], "cross_entropy", X, D, "adam", epochs=2, batch_size=16)
            for _ in range(2))  # fmt: skip
    np.testing.assert_array_equal(a[0].flat_parameters, b[0].flat_parameters)
    np.testing.assert_array_equal(a[1].loss, b[1].loss)


def test_wide_fit_epoch_by_epoch_matches_one_call():
    """Epochs one compiled call at a time (a callback) carry the backup and the state across calls."""
    X, D = data(300, 12, 3, "cross_entropy")
    kwargs = dict(epochs=3, batch_size=4)
    whole = train(2, BIG, ["relu", "tanh", "softmax"], "cross_entropy", X, D, "adam", **kwargs)
    parts = train(2, BIG, ["relu", "tanh", "softmax"], "cross_entropy", X, D, "adam", callbacks=[lambda *a: None],
                  **kwargs)  # fmt: skip
    np.testing.assert_array_equal(whole[0].flat_parameters, parts[0].flat_parameters)
    np.testing.assert_array_equal(whole[2].state2, parts[2].state2)
    np.testing.assert_array_equal(whole[1].loss, parts[1].loss)


@pytest.mark.parametrize("opt_name", ["nesterov", "adam"])
@pytest.mark.parametrize("batch_size", [1, 70])
@pytest.mark.parametrize("bad_batch", [0, 1, 31, 32, 33, 99])
def test_wide_divergence_puts_back_the_parameters_of_the_last_finite_loss(bad_batch, batch_size, opt_name):
    """A row that overflows the loss makes batch ``bad_batch`` diverge.  The network, its optimizer state
    and step count must then be those of a run over the batches before the last finite one: each thread
    copies its share every CHECKPOINT_EVERY batches, puts the copy back and runs the batches since again."""
    n_batches = 100
    X, D = data(n_batches * batch_size, 12, 3, "squared_error")
    if bad_batch * batch_size >= len(X):
        pytest.skip("the data has fewer batches")
    X[bad_batch * batch_size] = 1e200
    args = (BIG, ["relu", "relu", "identity"], "squared_error")
    net, opt = fastbp.Network(*args, seed=1), optimizer(opt_name)
    fastbp.set_num_threads(2)
    with pytest.raises(DivergenceError) as info:
        net.fit(X, D, epochs=2, batch_size=batch_size, shuffle=False, optimizer=opt, seed=3)
    assert net._wide_run is not None
    assert (info.value.epoch, info.value.batch) == (0, bad_batch)
    if bad_batch >= 2:
        # the same run, stopped before it: over the batches before the last finite one
        rows = (bad_batch - 1) * batch_size
        ref = train(2, *args, X[:rows], D[:rows], opt_name, epochs=1, batch_size=batch_size, shuffle=False)
        np.testing.assert_array_equal(net.flat_parameters, ref[0].flat_parameters)
        np.testing.assert_array_equal(opt.state1, ref[2].state1)
        assert opt.step_count == ref[2].step_count == bad_batch - 1
    else:
        fresh = fastbp.Network(*args, seed=1)
        np.testing.assert_array_equal(net.flat_parameters, fresh.flat_parameters)
        assert opt.step_count == 0


def test_wide_divergence_at_the_first_batch_of_an_epoch():
    """Epoch 1's first batch diverges: back to the parameters before epoch 0's last update (the copy
    each thread makes before the last batch of every epoch), across the calls of an epoch-by-epoch run."""
    batch_size = 5
    X, D = data(40 * batch_size, 12, 3, "squared_error")
    args = (BIG, ["relu", "relu", "identity"], "squared_error")

    def poison(net, epoch, logs):
        X[0] = 1e200  # fit reads X in place: epoch 1 meets the row in its first batch

    clean = X.copy()
    net, opt = fastbp.Network(*args, seed=1), optimizer("adam")
    fastbp.set_num_threads(2)
    with pytest.raises(DivergenceError) as info:
        net.fit(X, D, epochs=3, batch_size=batch_size, shuffle=False, callbacks=[poison], optimizer=opt, seed=3)
    assert net._wide_run is not None
    assert (info.value.epoch, info.value.batch) == (1, 0)
    rows = 39 * batch_size
    ref = train(2, *args, clean[:rows], D[:rows], "adam", epochs=1, batch_size=batch_size, shuffle=False)
    np.testing.assert_array_equal(net.flat_parameters, ref[0].flat_parameters)
    np.testing.assert_array_equal(opt.state2, ref[2].state2)
    assert opt.step_count == ref[2].step_count == 39


def test_a_failing_wide_helper_stops_the_run_and_leaves_the_network_as_it_was(monkeypatch):
    X, D = data(128, 12, 3, "squared_error")

    def broken(*args):
        raise MemoryError("helper out of memory")

    monkeypatch.setattr(_parallel, "_wide_helper_entry", broken)
    net = fastbp.Network(BIG, ["tanh", "tanh", "identity"], seed=0)
    before = net.flat_parameters.copy()
    fastbp.set_num_threads(2)
    with pytest.raises(RuntimeError, match="a fit thread failed.*helper out of memory"):
        net.fit(X, D, epochs=2, lr=0.1, batch_size=16, seed=0)
    np.testing.assert_array_equal(net.flat_parameters, before)
    monkeypatch.undo()
    net.fit(X, D, epochs=1, lr=0.1, batch_size=16, seed=0)  # the helpers still work
    assert net._wide_run is not None and not np.array_equal(net.flat_parameters, before)


def test_wide_fit_refuses_a_non_finite_input_and_changes_nothing():
    X, D = data(64, 12, 3, "squared_error")
    X[-1, 2] = np.nan
    net = fastbp.Network(BIG, ["tanh", "tanh", "identity"], seed=0)
    before = net.flat_parameters.copy()
    fastbp.set_num_threads(2)
    with pytest.raises(ValueError, match="X"):
        net.fit(X, D, epochs=2, lr=0.1, batch_size=16, seed=0, optimizer="adam")
    np.testing.assert_array_equal(net.flat_parameters, before)


def test_which_networks_get_the_wide_fit(monkeypatch):
    monkeypatch.undo()  # the real thresholds
    _parallel._wide_count.cache_clear()
    _parallel._bounds.cache_clear()
    fastbp.set_num_threads(2)

    def chosen(sizes, batch_size, dtype=np.float32):
        layout = fastbp.Network(sizes, ["relu"] * (len(sizes) - 2) + ["softmax"], loss="cross_entropy")._layout
        return _parallel.wide_threads(layout, batch_size, dtype)

    assert chosen([64, 1024, 1024, 1024, 10], 1) == 2  # 2.2 M parameters
    assert chosen([64, 128, 128, 128, 10], 32) == 2  # 41 K parameters x 32 samples: 1.3 M multiply-adds
    assert chosen([64, 128, 128, 128, 10], 1) is None
    # few samples a step: the optimizer's pass is the work, split from 56 K float32 or 12 K float64 parameters
    assert chosen([64, 192, 192, 192, 10], 1) == 2  # 88 K
    assert chosen([64, 128, 128, 128, 10], 1, np.float64) == 2  # 42 K
    assert chosen([64, 128, 128, 128, 10], 4, np.float64) == 2
    assert chosen([64, 128, 128, 128, 10], 5, np.float64) is None  # 210 K multiply-adds a step
    assert chosen([64, 32, 32, 32, 10], 1, np.float64) is None  # 4.5 K
    assert chosen([8, 16, 4], 256) is None  # 220 parameters
    fastbp.set_num_threads(1)
    assert chosen([64, 1024, 1024, 1024, 10], 1) is None


def test_contended_wide_runs_fall_back_to_one_thread_for_a_while(monkeypatch):
    """Thread 0 measures its waits at the barrier after the evenly split updates; a run judged contended
    makes the next fits use one thread, which trains the same steps."""
    X, D = data(256, 12, 3, "squared_error")
    args = (BIG, ["relu", "tanh", "identity"], "squared_error", X, D, "adam")
    train(2, *args, epochs=1, batch_size=4)  # the first run of a dtype is never judged
    net, _, _ = train(2, *args, epochs=1, batch_size=4)
    sync = net._wide_run.sync
    assert 0 < sync[_parallel._sync.WAIT_CYCLES] < sync[_parallel._sync.RUN_CYCLES]
    monkeypatch.setattr(_parallel, "CONTENDED_WAIT_SHARE", -1.0)  # now every run counts as contended
    monkeypatch.setattr(_parallel, "MIN_JUDGED_BARRIERS", 1)
    train(2, *args, epochs=1, batch_size=4)
    assert _parallel._one_thread_until > _parallel.time.monotonic() + 1
    fastbp.set_num_threads(2)
    assert _parallel.wide_threads(net._layout, 4, net.dtype) is None


@pytest.mark.parametrize("why", ["contended", "limit of one", "two threads"])
def test_a_fit_on_one_thread_keeps_blas_on_it_when_two_were_possible(monkeypatch, why):
    """A fit that runs on one thread where two were possible (a contended window, a limit of one) keeps
    BLAS on the calling thread: OpenBLAS's own threads would take the other core, and their spinning
    after each call would make the next two-thread run look contended.  On two threads, each thread of
    the team pins its own (``run_team``); either way the caller's setting is put back."""
    X, D = data(64, 12, 3, "squared_error")
    calls = []
    real = _parallel._blas_threads_here
    caller = threading.get_ident()

    def recording(n):
        before = real(n)
        if threading.get_ident() == caller:  # not the helpers', which pin their own
            calls.append((n, before))
        return before

    monkeypatch.setattr(_parallel, "_blas_threads_here", recording)
    net = fastbp.Network(BIG, ["relu", "tanh", "identity"], loss="squared_error", seed=1)
    fastbp.set_num_threads(2)
    if why == "contended":
        _parallel._one_thread_until = _parallel.time.monotonic() + 1e6
    limit = _parallel.limit_threads(1 if why == "limit of one" else 2)
    with limit:
        net.fit(X, D, optimizer=fastbp.Adam(lr=1e-3), epochs=1, batch_size=8, seed=3)
    assert (net._wide_run is not None) == (why == "two threads")
    assert len(calls) == 2 and calls[0][0] == 1  # pinned for the run (on two threads: thread 0's part)
    assert calls[1][0] == calls[0][1]  # and put back as it was
