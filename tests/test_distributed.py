"""fastbp.distributed on a real LocalCluster: 2 worker processes, one thread each, on loopback.

One cluster serves the whole module (starting one takes about a second); the tests that kill a
worker or restart the cluster run last and wait for both workers to be back.
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

import fastbp
from fastbp import distributed as fd
from fastbp.integrations.dask import batching as dask_batching
from fastbp.integrations.dask import driver as dask_driver
from fastbp.integrations.dask import worker as dask_worker

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_D = np.array([[0.0], [1.0], [1.0], [0.0]])


@pytest.fixture(scope="module")
def client():
    logging.getLogger("distributed").setLevel(logging.ERROR)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as c,
    ):  # fmt: skip
        yield c


def regression_data(n=120, n_in=3, n_out=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    D = np.tanh(X @ rng.normal(size=(n_in, n_out))) + 0.1 * rng.normal(size=(n, n_out))
    return X, D


def single_machine(net, X, D, row_chunks, epochs, lr, batch_size, shuffle, seed):
    """What sync mode must compute: net.step on each global mini-batch of batch_rows, in turn."""
    net = net.copy()
    losses = []
    for epoch in range(epochs):
        batches = fd.batch_rows(row_chunks, batch_size, epoch=epoch, shuffle=shuffle, seed=seed)
        losses.append(np.mean([net.step(X[rows], D[rows], lr) for rows in batches]))
    return net, np.array(losses)


def assert_params_close(got, want, rtol=1e-12):
    err = np.max(np.abs(got - want))
    assert err <= rtol * np.max(np.abs(want)), f"parameters differ by {err:.3e}"


def test_import_fastbp_does_not_import_dask():
    code = (
        "import sys, fastbp; bad = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- batch_rows


@pytest.mark.parametrize("shuffle", [False, True])
def test_batch_rows_use_every_row_once_in_about_batch_size_pieces(shuffle):
    chunks = (50, 0, 37, 13)
    batches = fd.batch_rows(chunks, 16, epoch=3, shuffle=shuffle, seed=7)
    assert len(batches) == -(-100 // 16)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(100))
    assert all(abs(len(b) - 100 / len(batches)) <= len(chunks) for b in batches)
    again = fd.batch_rows(chunks, 16, epoch=3, shuffle=shuffle, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    if shuffle:
        other_epoch = fd.batch_rows(chunks, 16, epoch=4, shuffle=True, seed=7)
        assert not all(np.array_equal(a, b) for a, b in zip(batches, other_epoch))
    else:
        # K = 7 steps: shard s gives rows [0, floor(n_s / 7)) to the first
        assert np.array_equal(batches[0], [0, 1, 2, 3, 4, 5, 6, 50, 51, 52, 53, 54, 87])


def test_batch_rows_with_shuffle_needs_a_seed():
    with pytest.raises(ValueError, match="seed is required"):
        fd.batch_rows((4, 4), 2, shuffle=True)


@pytest.mark.parametrize("row_chunks", [[2.5], [2, 1.0], [True, 3], "44", 4, [2, "3"]])
def test_batch_rows_refuses_row_counts_that_are_not_integers(row_chunks):
    """[2.5] once gave the batches of 2 rows as if it were a count, silently."""
    with pytest.raises(TypeError, match="row_chunks must be"):
        fd.batch_rows(row_chunks, 2)
    assert [b.tolist() for b in fd.batch_rows([np.int64(2), 1], 2)] == [[0], [1, 2]]  # numpy integers are counts


# ----------------------------------------------------------------------------- sync mode


@pytest.mark.parametrize(
    "case",
    [
        # specialised code (50 parameters), 2 shards, shuffled
        dict(sizes=[3, 8, 2], acts=["tanh", "identity"], loss="squared_error", chunks=(70, 50), shuffle=True),
        # generic engine, softmax + cross-entropy, 3 uneven shards on 2 workers, in order
        dict(sizes=[3, 40, 2], acts=["relu", "softmax"], loss="cross_entropy", chunks=(50, 30, 40), shuffle=False),
    ],
    ids=["specialised-shuffled", "generic-3-shards"],
)
def test_sync_equals_single_machine_steps(client, case):
    X, D = regression_data()
    if case["loss"] == "cross_entropy":
        D = np.eye(2)[(D[:, 0] > D[:, 1]).astype(int)]
    net = fastbp.Network(case["sizes"], case["acts"], loss=case["loss"], seed=1)
    start = net.flat_parameters.copy()
    want, want_loss = single_machine(net, X, D, case["chunks"], 3, 0.2, 16, case["shuffle"], 11)
    Xd = da.from_array(X, chunks=(case["chunks"], 3))
    Dd = da.from_array(D, chunks=(case["chunks"], 2))
    history = fd.fit_data_parallel(
        net, Xd, Dd, client=client, epochs=3, lr=0.2, batch_size=16, shuffle=case["shuffle"], seed=11
    )
    assert not np.array_equal(net.flat_parameters, start)
    assert_params_close(net.flat_parameters, want.flat_parameters)
    np.testing.assert_allclose(history.loss, want_loss, rtol=1e-12)
    assert np.array_equal(history.lr, [0.2] * 3)


def test_sync_steps_go_to_the_shards_actors_not_through_tasks(client, monkeypatch):
    """Each step calls the shard actors directly (about 3 ms a step, not the 13 ms of a task round trip);
    when actors cannot be made, the same run goes through tasks and gives the same parameters."""
    from distributed import get_task_stream

    X, D = regression_data(n=80)
    net = fastbp.Network([3, 8, 2], ["tanh", "identity"], seed=3)
    with get_task_stream(client) as stream:
        fd.fit_data_parallel(via_actors := net.copy(), X, D, client=client, epochs=2, lr=0.1, batch_size=16, seed=5)
    names = {task["key"][0] if isinstance(task["key"], tuple) else task["key"] for task in stream.data}
    assert any("_ShardActor" in str(name) for name in names)
    assert not any("fastbp-sync" in str(name) for name in names)
    monkeypatch.setattr(dask_driver, "_start_actors", lambda client, shards: (None, []))
    with get_task_stream(client) as stream:
        fd.fit_data_parallel(via_tasks := net.copy(), X, D, client=client, epochs=2, lr=0.1, batch_size=16, seed=5)
    assert sum("fastbp-sync" in str(task["key"]) for task in stream.data) == 2 * 5 * 2  # epochs x steps x shards
    assert via_actors.flat_parameters.tobytes() == via_tasks.flat_parameters.tobytes()


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_sync_numpy_input_full_batch_equals_step(client, dtype, rtol):
    X, D = regression_data(n=60)
    net = fastbp.Network([3, 8, 2], ["tanh", "identity"], dtype=dtype, seed=2)
    want = net.copy()
    losses = [want.step(X.astype(dtype), D.astype(dtype), 0.3) for _ in range(4)]
    history = fd.fit_data_parallel(net, X, D, client=client, epochs=4, lr=0.3, batch_size=1000, shuffle=False)
    assert net.flat_parameters.dtype == dtype
    assert_params_close(net.flat_parameters, want.flat_parameters, rtol)
    np.testing.assert_allclose(history.loss, losses, rtol=rtol)


def test_timeout_raises_a_clear_error(client):
    X, D = regression_data(n=60)
    net = fastbp.Network([3, 8, 2], ["tanh", "identity"], seed=2)
    before = net.flat_parameters.copy()
    with pytest.raises(RuntimeError, match="sync step 0 of epoch 0 failed: TimeoutError"):
        fd.fit_data_parallel(net, X, D, client=client, epochs=2, lr=0.3, batch_size=10, timeout=1e-9)
    assert np.array_equal(net.flat_parameters, before)


def test_sync_divergence_raises_and_leaves_net_unchanged(client):
    X, D = regression_data(n=40)
    net = fastbp.Network([3, 8, 2], ["relu", "identity"], seed=0)
    before = net.flat_parameters.copy()
    with pytest.raises(fastbp.errors.DivergenceError) as info:
        fd.fit_data_parallel(net, X * 1e150, D, client=client, epochs=3, lr=1e10, batch_size=20, shuffle=False)
    assert info.value.epoch == 0 and len(info.value.history.loss) == 0
    assert np.array_equal(net.flat_parameters, before)


def test_a_worker_reuses_one_network_per_architecture(client):
    net = fastbp.Network([3, 8, 2], ["tanh", "identity"], seed=0)
    spec, theta = dask_driver._spec(net), net.flat_parameters
    worker = sorted(client.nthreads())[0]
    ids = [
        client.submit(lambda: id(dask_worker._worker_network(spec, theta)), workers=[worker], pure=False).result()
        for _ in range(2)
    ]
    assert ids[0] == ids[1]


# ----------------------------------------------------------------------------- average mode


def test_average_full_batch_on_equal_shards_equals_one_step(client):
    # each shard takes one full-batch step; the average of the two is one step on all rows
    X, D = regression_data(n=64)
    net = fastbp.Network([3, 8, 2], ["tanh", "identity"], seed=3)
    want = net.copy()
    for _ in range(3):
        want.step(X, D, 0.5)
    Xd = da.from_array(X, chunks=(32, 3))
    fd.fit_data_parallel(net, Xd, D, client=client, epochs=3, lr=0.5, batch_size=32, mode="average", shuffle=False)
    assert_params_close(net.flat_parameters, want.flat_parameters)


def test_average_converges_on_xor(client):
    X, D = np.tile(XOR_X, (256, 1)), np.tile(XOR_D, (256, 1))  # 2 shards of 512 rows: 128 local steps a round
    net = fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=0)
    history = fd.fit_data_parallel(net, X, D, client=client, epochs=20, lr=2.0, batch_size=4, mode="average", seed=1)
    assert history.loss[-1] < 0.01 < history.loss[0]
    assert np.array_equal(np.round(net.forward(XOR_X)), XOR_D)


def test_average_converges_on_digits(client):
    pytest.importorskip("sklearn")
    from fastbp.tutorial import digits

    X_train, X_test, y_train, y_test = digits.load_split()
    net = fastbp.Network([64, 32, 10], ["relu", "softmax"], loss="cross_entropy", seed=0)
    history = fd.fit_data_parallel(
        net, X_train, digits.one_hot(y_train), client=client, epochs=10, lr=0.1, batch_size=32, mode="average", seed=0
    )
    assert np.all(np.diff(history.loss) < 0)
    _, accuracy = net.evaluate(X_test, digits.one_hot(y_test))
    assert accuracy > 0.9


# ----------------------------------------------------------------------------- bad input


def bad_calls():
    X, D = regression_data(n=20)
    return [
        (dict(X="not an array"), TypeError, "X must hold real numbers"),
        (dict(X=X[:, :2]), ValueError, "X has 2 features, the network expects 3"),
        (dict(D=D[:10]), ValueError, "X has 20 rows but D has 10"),
        (dict(D=D[:, :1]), ValueError, "D has 1 targets per sample, the network expects 2"),
        (dict(X=X[:0], D=D[:0]), ValueError, "X is empty"),
        (dict(X=X.astype(complex)), TypeError, "X must hold real numbers, got an array of dtype complex128"),
        (dict(mode="async"), ValueError, 'mode must be "sync" or "average", got \'async\''),
        (dict(epochs=0), ValueError, "epochs must be >= 1, got 0"),
        (dict(epochs=1.5), TypeError, "epochs must be a positive integer"),
        (dict(lr=-0.1), ValueError, "lr must be a finite number > 0, got -0.1"),
        (dict(lr=float("nan")), ValueError, "lr must be a finite number > 0"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
        (dict(seed=-1), ValueError, "seed must be None or an integer >= 0"),
        (dict(client="tcp://127.0.0.1:8786"), TypeError, "client must be a dask.distributed.Client or None"),
        (dict(net="net"), TypeError, "net must be a fastbp.Network"),
    ]


@pytest.mark.parametrize("change, error, message", bad_calls(), ids=lambda v: None)
def test_bad_arguments_are_refused_before_any_work(client, monkeypatch, change, error, message):
    X, D = regression_data(n=20)
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    before = net.flat_parameters.copy()

    def no_work(*args, **kwargs):
        raise AssertionError("work was submitted before the arguments were checked")

    for method in ("submit", "compute", "scatter", "map", "persist"):
        monkeypatch.setattr(client, method, no_work)
    kwargs = dict(net=net, X=X, D=D, client=client, epochs=2, lr=0.1, batch_size=4)
    kwargs.update(change)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        fd.fit_data_parallel(**kwargs)
    assert np.array_equal(net.flat_parameters, before)


def test_dask_x_with_wrong_features_is_refused(client):
    X, D = regression_data(n=20)
    net = fastbp.Network([2, 4, 2], ["tanh", "identity"], seed=0)
    with pytest.raises(ValueError, match="X has 3 features, the network expects 2"):
        fd.fit_data_parallel(net, da.from_array(X, chunks=(10, 3)), D, client=client)


def test_non_finite_data_is_found_by_the_workers_and_net_is_unchanged(client):
    X, D = regression_data(n=20)
    X[13, 1] = np.nan
    net = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    before = net.flat_parameters.copy()
    with pytest.raises(ValueError, match=r"X must be finite, but X\[13, 1\] is nan"):
        fd.fit_data_parallel(net, da.from_array(X, chunks=(10, 3)), D, client=client, retries=0)
    assert np.array_equal(net.flat_parameters, before)


# ----------------------------------------------------------------------------- sweep


def test_sweep_returns_one_row_per_config_in_order(client):
    configs = [
        dict(sizes=[2, 2, 1], activations="sigmoid", seed=seed, lr=2.0, epochs=2000, batch_size=4, shuffle=False)
        for seed in range(12)
    ] + [
        dict(sizes=[2, 2, 1], activations="sigmoid", seed=0, lr=2.0, epochs=2000, batch_size=4, trainable=[False, True])
    ]
    table = fd.sweep(configs, XOR_X, XOR_D, client=client, return_parameters=True, configs_per_task=5)
    assert isinstance(table, list) and len(table) == len(configs)
    assert [row["index"] for row in table] == list(range(len(configs)))
    assert [row["seed"] for row in table] == [c["seed"] for c in configs]
    for row in table:
        assert set(fd.RESULT_COLUMNS) <= set(row)
        assert 0.0 <= row["final_loss"] < 0.2 and 0.0 <= row["accuracy"] <= 1.0 and row["seconds"] > 0
        assert row["diverged"] is False and row["worker"].startswith("tcp://127.0.0.1:")
    assert table.column("index") == list(range(len(configs)))
    # the same network as training on one machine, bit for bit
    for i in (3, 12):
        cfg = configs[i]
        net = fastbp.Network(cfg["sizes"], cfg["activations"], seed=cfg["seed"])
        net.fit(XOR_X, XOR_D, epochs=2000, lr=2.0, batch_size=4, shuffle=cfg.get("shuffle", True), seed=cfg["seed"],
                trainable=cfg.get("trainable"))  # fmt: skip
        assert np.array_equal(table[i]["parameters"], net.flat_parameters)
        assert np.array_equal(table.network(i).forward(XOR_X), net.forward(XOR_X))
    assert np.array_equal(table[12]["parameters"][:6], fastbp.Network([2, 2, 1], "sigmoid", seed=0).flat_parameters[:6])


def test_sweep_validation_data_and_classification(client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    D = np.eye(3)[np.argmax(X[:, :3], axis=1)]
    configs = [dict(sizes=[4, h, 3], activations=["tanh", "softmax"], loss="cross_entropy", seed=1, lr=0.5,
                    epochs=30, optimizer="sgd") for h in (4, 8)]  # fmt: skip
    Xd, Dd = da.from_array(X, chunks=(20, 4)), da.from_array(D, chunks=(20, 3))  # computed on the cluster
    table = fd.sweep(configs, Xd[:60], Dd[:60], client=client, validation_data=(Xd[60:], D[60:]))
    assert [row["sizes"][1] for row in table] == [4, 8]
    for row in table:
        assert row["accuracy"] > 0.7 and 0 <= row["val_accuracy"] <= 1 and row["val_loss"] > 0
        assert "parameters" not in row


def test_sweep_records_divergence(client):
    configs = [dict(sizes=[2, 2, 1], activations="relu", seed=0, lr=lr, epochs=50, batch_size=4) for lr in (0.1, 1e300)]
    table = fd.sweep(configs, XOR_X * 1e10, XOR_D, client=client)
    assert [row["diverged"] for row in table] == [False, True]


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(sizes=[2, 2, 1]), r"configs\[1\] needs activations"),
        (dict(sizes=[2, 2, 1], activations="sigmoid", epoch=3), r"configs\[1\] has unknown keys \['epoch'\]"),
        (dict(sizes=[3, 2, 1], activations="sigmoid"), r"configs\[1\]: X has 2 features, the network expects 3"),
        (dict(sizes=[2, 2, 1], activations="sigmoid", lr=0), r"configs\[1\]: lr must be a finite number > 0"),
        (dict(sizes=[2, 2, 1], activations="sigmoid", optimizer="lbfgs"), r"configs\[1\]: optimizer must be"),
        (dict(sizes=[2, 2, 1], activations="sigmoid", trainable=[True]), r"configs\[1\]: trainable must be 2"),
        (dict(sizes=[2, 2, 1], activations="swish"), r"configs\[1\]: .*swish"),
    ],
)
def test_sweep_refuses_bad_configs_before_any_work(client, monkeypatch, config, message):
    def no_work(*args, **kwargs):
        raise AssertionError("work was submitted before the configurations were checked")

    for method in ("submit", "compute", "scatter", "map"):
        monkeypatch.setattr(client, method, no_work)
    good = dict(sizes=[2, 2, 1], activations="sigmoid")
    with pytest.raises((ValueError, TypeError), match=message):
        fd.sweep([good, config], XOR_X, XOR_D, client=client)


def test_client_none_starts_and_closes_a_local_cluster():
    net = fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=0)
    want = net.copy()
    want.step(XOR_X, XOR_D, 0.5)
    fd.fit_data_parallel(net, XOR_X, XOR_D, epochs=1, lr=0.5, batch_size=4, shuffle=False)
    assert_params_close(net.flat_parameters, want.flat_parameters)
    assert len(fd.sweep([dict(sizes=[2, 2, 1], activations="sigmoid", seed=0)], XOR_X, XOR_D)) == 1


# ----------------------------------------------------------------------------- workers failing (run last)


def single_machine_average(net, X, D, row_chunks, epochs, lr, batch_size, seed):
    """What average mode must compute: each shard's epoch of fit from the same start, averaged by rows."""
    theta = net.flat_parameters.copy()
    offsets = np.concatenate([[0], np.cumsum(row_chunks)])
    for epoch in range(epochs):
        total = np.zeros_like(theta)
        for s, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
            local = net.copy()
            local.flat_parameters[...] = theta
            local.fit(
                X[lo:hi],
                D[lo:hi],
                epochs=1,
                lr=lr,
                batch_size=batch_size,
                seed=dask_batching._local_seed(seed, epoch, s),
            )
            total += (hi - lo) * local.flat_parameters
        theta = total / offsets[-1]
    return theta


def run_with_failure(client, fail, mode):
    """fit_data_parallel with ``fail()`` called from a thread 0.3 s in: (outcome, parameters, expected parameters)."""
    X, D = regression_data(n=400)
    net = fastbp.Network([3, 8, 2], ["tanh", "identity"], seed=4)
    before = net.flat_parameters.copy()
    chunks = (200, 200)
    epochs = 40 if mode == "sync" else 100  # 400 steps (about 3 ms each) or 100 rounds (13 ms): over 1 s
    if mode == "sync":
        want = single_machine(net, X, D, chunks, epochs, 0.05, 40, True, 9)[0].flat_parameters
    else:
        want = single_machine_average(net, X, D, chunks, epochs, 0.05, 40, 9)
    failed_at = []
    thread = threading.Thread(target=lambda: (time.sleep(0.3), failed_at.append(time.perf_counter()), fail()))
    thread.start()
    try:
        fd.fit_data_parallel(
            net, da.from_array(X, chunks=(chunks, 3)), D, client=client, epochs=epochs, lr=0.05, batch_size=40,
            mode=mode, shuffle=True, seed=9,
        )  # fmt: skip
        outcome = "completed"
    except RuntimeError as exc:
        outcome = str(exc)
        assert np.array_equal(net.flat_parameters, before), "a failed run must leave the network as it was"
    finished_at = time.perf_counter()
    thread.join()
    client.wait_for_workers(2, timeout=60)
    assert failed_at and failed_at[0] < finished_at, "the failure came after the run had finished"
    return outcome, net.flat_parameters, want


@pytest.mark.parametrize("mode", ["sync", "average"])
def test_worker_killed_mid_run_completes_correctly_or_raises(client, mode):
    pids = client.run(os.getpid)
    victim = pids[sorted(pids)[0]]
    outcome, got, want = run_with_failure(client, lambda: os.kill(victim, signal.SIGKILL), mode)
    assert victim not in client.run(os.getpid).values()
    if outcome == "completed":  # Dask recomputed the lost shard and reran the lost tasks
        assert_params_close(got, want)
    else:
        assert "failed" in outcome and "the network was left as it was" in outcome


def test_client_restart_mid_run_raises_a_clear_error(client):
    outcome, _, _ = run_with_failure(client, client.restart, "sync")
    assert outcome != "completed"
    assert "sync step" in outcome and "epoch" in outcome and "the network was left as it was" in outcome
