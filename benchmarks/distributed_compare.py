"""Scaling out with Dask: sweep throughput on 1 and 2 workers, sync-mode per-step overhead, first-task cost.

Usage, from the repository root with ``pip install -e ".[distributed]"``::

    python benchmarks/distributed_compare.py            # about two minutes on 2 cores
    python benchmarks/distributed_compare.py --quick    # fewer networks and repeats

It prints, each a median of repeated samples:

* **sweep throughput**: networks trained per second by ``fastbp.distributed.sweep`` on a
  ``LocalCluster`` of 1 and of 2 worker processes (one thread each), and the speedup.  The
  workload is the frozen-hidden experiment (exercise 2(c)): for each seed, the 2-2-1 sigmoid XOR
  network trained twice for ``SWEEP_EPOCHS`` full-batch epochs at lr 2.0, once with only the
  output layer trainable and once whole.  The same networks trained in a plain loop in this
  process (no Dask) are the baseline, and the same loop split over two plain processes running
  at once (no Dask either) is the best 2 workers could do on this machine.
* **sync-mode per-step overhead**: the time of one ``fit_data_parallel(mode="sync")`` step on a
  2-worker cluster (the difference between a 3-epoch and a 1-epoch run, divided by the extra
  steps, so loading the shards is not counted) minus the time of ``net.step`` on the same rows
  on one machine.  Network: W3's 64-64-10 tanh/sigmoid; 1440 rows in 2 shards; batch 32.
* **first-task cost**: the first call on a fresh 1-worker cluster minus the second, with empty
  numba and fastbp caches (cold: ``NUMBA_CACHE_DIR`` and ``FASTBP_CACHE_DIR`` point to new
  temporary directories) and with those caches filled (warm).  It includes the worker's import
  of fastbp and dask.

The helpers are shared with ``benchmarks/bench_distributed.py`` (asv) and
``tests/test_bench_distributed.py`` (pytest-benchmark).  dask is imported lazily, so this module
can be imported (by asv's discovery) where dask is not installed; the setups then raise
``NotImplementedError``, asv's "skip".
"""

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

import fastbp

try:
    from .workloads import DIGITS_ACTIVATIONS, DIGITS_BATCH, DIGITS_LR, DIGITS_SIZES, XOR_D, XOR_X
except ImportError:  # run as a script: python benchmarks/distributed_compare.py
    from workloads import DIGITS_ACTIVATIONS, DIGITS_BATCH, DIGITS_LR, DIGITS_SIZES, XOR_D, XOR_X

SWEEP_SEEDS = 2000  # 4000 networks, two per seed: a few seconds of work, so that Dask's per-task cost is amortised
SWEEP_EPOCHS = 5000
SWEEP_LR = 2.0
# sync mode: W3's digits network (sizes, activations, batch, step size) on 1440 synthetic rows
SYNC_SIZES = DIGITS_SIZES
SYNC_ACTIVATIONS = DIGITS_ACTIVATIONS
SYNC_ROWS = 1440
SYNC_BATCH = DIGITS_BATCH
SYNC_LR = DIGITS_LR


def require_distributed():
    """fastbp.distributed; NotImplementedError (asv's skip) if dask[distributed] is not installed."""
    try:
        from fastbp import distributed
    except ImportError as exc:
        raise NotImplementedError(f"dask[distributed] is not installed ({exc})") from exc
    return distributed


def start_cluster(n_workers, env=None):
    """(cluster, client): a LocalCluster of ``n_workers`` processes with one thread each, on loopback, quiet."""
    require_distributed()
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
        silence_logs=logging.ERROR, env=env or {},
    )  # fmt: skip
    return cluster, Client(cluster)


def stop_cluster(cluster, client):
    client.close()
    cluster.close()


@contextlib.contextmanager
def cluster_of(n_workers, env=None):
    cluster, client = start_cluster(n_workers, env)
    try:
        yield client
    finally:
        stop_cluster(cluster, client)


def frozen_hidden_configs(n_seeds=SWEEP_SEEDS, epochs=SWEEP_EPOCHS):
    """The frozen-hidden experiment as sweep configurations: per seed, output layer only, then the whole network."""
    base = dict(sizes=[2, 2, 1], activations="sigmoid", lr=SWEEP_LR, epochs=epochs, batch_size=4, shuffle=False)
    configs = []
    for seed in range(n_seeds):
        configs.append(dict(base, seed=seed, trainable=[False, True]))
        configs.append(dict(base, seed=seed))
    return configs


def setup_sweep(client, n_seeds=SWEEP_SEEDS, epochs=SWEEP_EPOCHS):
    """run(): one sweep of the frozen-hidden configurations on ``client``; returns networks per second.

    Setup runs the sweep once, so every worker has compiled (or loaded) both training paths.
    """
    fd = require_distributed()
    configs = frozen_hidden_configs(n_seeds, epochs)

    def run():
        start = time.perf_counter()
        table = fd.sweep(configs, XOR_X, XOR_D, client=client)
        seconds = time.perf_counter() - start
        assert len(table) == len(configs)
        return len(configs) / seconds

    run()
    return run


def local_sweep_rate(n_seeds=SWEEP_SEEDS, epochs=SWEEP_EPOCHS):
    """Networks per second for the same configurations trained in a loop in this process (no Dask)."""
    configs = frozen_hidden_configs(n_seeds, epochs)
    for cfg in configs[:2]:  # compile both paths
        net = fastbp.Network(cfg["sizes"], cfg["activations"], seed=0)
        net.fit(XOR_X, XOR_D, epochs=1, lr=SWEEP_LR, batch_size=4, shuffle=False, trainable=cfg.get("trainable"))
    start = time.perf_counter()
    for cfg in configs:
        net = fastbp.Network(cfg["sizes"], cfg["activations"], seed=cfg["seed"])
        net.fit(XOR_X, XOR_D, epochs=epochs, lr=SWEEP_LR, batch_size=4, shuffle=False, trainable=cfg.get("trainable"))
        net.evaluate(XOR_X, XOR_D)
    return len(configs) / (time.perf_counter() - start)


def _half_sweep(n_seeds, epochs, barrier, queue):
    barrier.wait()  # both processes start training together
    queue.put(local_sweep_rate(n_seeds, epochs))


def two_process_rate(n_seeds=SWEEP_SEEDS, epochs=SWEEP_EPOCHS):
    """Networks per second of two plain processes (no Dask) training half of the configurations each, at once."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_half_sweep, args=(n_seeds // 2, epochs, barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    rates = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def sync_data(seed=0):
    """(X (1440, 64), D (1440, 10)): digits-shaped synthetic data, one-hot targets."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(SYNC_ROWS, SYNC_SIZES[0]))
    D = np.eye(SYNC_SIZES[-1])[rng.integers(0, SYNC_SIZES[-1], SYNC_ROWS)]
    return X, D


def setup_sync(client, n_shards=2):
    """measure(): seconds per sync-mode step on the cluster and per ``net.step`` on one machine (same rows)."""
    fd = require_distributed()
    import dask.array as da

    X, D = sync_data()
    chunks = (SYNC_ROWS // n_shards,) * n_shards
    Xd = da.from_array(X, chunks=(chunks, X.shape[1]))
    net = fastbp.Network(list(SYNC_SIZES), list(SYNC_ACTIVATIONS), seed=0)
    batches = fd.batch_rows(chunks, SYNC_BATCH)
    pairs = [(np.ascontiguousarray(X[rows]), np.ascontiguousarray(D[rows])) for rows in batches]

    def cluster_seconds(epochs):
        start = time.perf_counter()
        fd.fit_data_parallel(
            net.copy(), Xd, D, client=client, epochs=epochs, lr=SYNC_LR, batch_size=SYNC_BATCH, shuffle=False
        )
        return time.perf_counter() - start

    def local_step():
        twin = net.copy()
        start = time.perf_counter()
        for Xb, Db in pairs:
            twin.step(Xb, Db, SYNC_LR)
        return (time.perf_counter() - start) / len(pairs)

    def measure(short=1, long=3):
        per_step_cluster = (cluster_seconds(long) - cluster_seconds(short)) / ((long - short) * len(batches))
        return {"cluster": per_step_cluster, "local": local_step(), "steps_per_epoch": len(batches)}

    cluster_seconds(1)  # workers compile
    local_step()
    return measure


def first_task_cost(cache_root):
    """Seconds of the first and of the second call on a fresh 1-worker cluster whose caches live in ``cache_root``.

    Two calls are measured, each on its own fresh worker and then again on it: a one-network
    ``sweep`` of the XOR network (generated code) and a one-epoch sync ``fit_data_parallel`` of the
    64-64-10 network (generic engine), each with its own numba and fastbp cache directories under
    ``cache_root``: empty the first time (cold), filled by that first run when called again (warm).
    """
    fd = require_distributed()
    X, D = sync_data()
    config = dict(sizes=[2, 2, 1], activations="sigmoid", seed=0, lr=SWEEP_LR, epochs=100, batch_size=4)
    calls = {
        "sweep (2-2-1, generated code)": lambda client: fd.sweep([config], XOR_X, XOR_D, client=client),
        "sync fit (64-64-10, generic engine)": lambda client: fd.fit_data_parallel(
            fastbp.Network(list(SYNC_SIZES), list(SYNC_ACTIVATIONS), seed=0), X, D, client=client, epochs=1,
            batch_size=SYNC_BATCH, lr=SYNC_LR,
        ),
    }  # fmt: skip
    out = {}
    for i, (name, call) in enumerate(calls.items()):
        root = os.path.join(cache_root, str(i))  # each call its own caches: cold means cold
        env = {"NUMBA_CACHE_DIR": os.path.join(root, "numba"), "FASTBP_CACHE_DIR": os.path.join(root, "fastbp")}
        # Set in this process, so the worker processes inherit it from their start: Dask applies a
        # Nanny's ``env`` only after the spawned process has re-imported __main__ (and with it numba).
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            with cluster_of(1) as client:
                client.wait_for_workers(1)
                times = []
                for _ in range(2):
                    start = time.perf_counter()
                    call(client)
                    times.append(time.perf_counter() - start)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key)
                else:
                    os.environ[key] = value
        out[name] = times
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer networks and repeats")
    parser.add_argument("--skip-first-task", action="store_true", help="do not measure the cold/warm first task")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 5
    n_seeds = 50 if args.quick else SWEEP_SEEDS
    import dask
    import distributed

    print(
        f"# fastbp.distributed on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"dask {dask.__version__}, distributed {distributed.__version__}, fastbp {fastbp.__version__}"
    )

    print(f"\n## sweep: frozen-hidden experiment, {2 * n_seeds} networks of {SWEEP_EPOCHS} epochs")
    local = statistics.median(local_sweep_rate(n_seeds) for _ in range(repeats))
    pair = statistics.median(two_process_rate(n_seeds) for _ in range(repeats))
    print(f"one process, no Dask:    {local:8.0f} networks/s")
    print(f"two processes, no Dask:  {pair:8.0f} networks/s  ({pair / local:.2f}x: the ceiling for 2 workers here)")
    rates = {}
    for n_workers in (1, 2):
        with cluster_of(n_workers) as client:
            client.wait_for_workers(n_workers)
            run = setup_sweep(client, n_seeds)
            samples = [run() for _ in range(repeats)]
        rates[n_workers] = statistics.median(samples)
        spread = ", ".join(f"{s:.0f}" for s in samples)
        name = f"{n_workers} Dask worker{'s' if n_workers > 1 else ''}:"
        print(f"{name:24} {rates[n_workers]:8.0f} networks/s  ({spread})")
    print(f"speedup 1 -> 2 workers: {rates[2] / rates[1]:.2f}x")

    print(f"\n## sync mode: {'-'.join(map(str, SYNC_SIZES))} network, {SYNC_ROWS} rows in 2 shards, batch {SYNC_BATCH}")
    with cluster_of(2) as client:
        client.wait_for_workers(2)
        measure = setup_sync(client)
        samples = [measure() for _ in range(repeats)]
    cluster = statistics.median(s["cluster"] for s in samples)
    one = statistics.median(s["local"] for s in samples)
    overheads = [1e3 * (s["cluster"] - s["local"]) for s in samples]
    print(f"per step on 2 workers: {1e3 * cluster:.2f} ms; net.step on one machine: {1e6 * one:.1f} us")
    print(
        f"per-step overhead: {statistics.median(overheads):.2f} ms  ({', '.join(f'{o:.2f}' for o in overheads)}); "
        f"{samples[0]['steps_per_epoch']} steps per epoch"
    )

    if args.skip_first_task:
        return 0
    print("\n## first task on a fresh worker (call 1 / call 2, seconds)")
    with tempfile.TemporaryDirectory(prefix="fastbp-cold-") as root:
        for label in ("cold caches", "warm caches"):
            for name, (first, second) in first_task_cost(root).items():
                print(f"{label}, {name}: {first:.2f} / {second:.3f}  -> first-task cost {first - second:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
