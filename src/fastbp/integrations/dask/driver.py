"""``fit_data_parallel``: one network trained on data split by rows across Dask workers."""

import contextlib
import math
import time
import uuid
from typing import NamedTuple

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

from fastbp.errors import DivergenceError
from fastbp.integrations.dask.batching import _steps_per_epoch
from fastbp.integrations.dask.worker import _average_part, _make_shard, _ShardActor, _sync_part
from fastbp.nn.history import History
from fastbp.nn.network import Network
from fastbp.nn.validation import (
    as_numpy_array,
    check_2d,
    check_columns,
    check_either,
    check_instance,
    check_known_row_chunks,
    check_non_negative_int,
    check_not_empty,
    check_positive_int,
    check_positive_number,
    check_real_dtype,
    check_same_rows,
    check_seed,
)

MODES = ("sync", "average")


# Above this size the parameter vector is scattered to the workers once per round instead of riding inside
# every task's arguments (which go through the scheduler).
_SCATTER_BYTES = 1 << 20


@contextlib.contextmanager
def _client_scope(client):
    """The given client, or a client of a new LocalCluster (worker processes, one thread each) closed at the end."""
    if client is not None:
        yield client
        return
    cluster = LocalCluster(processes=True, threads_per_worker=1, dashboard_address=":0")  # any free port
    try:
        with Client(cluster) as own:
            yield own
    finally:
        cluster.close()


def _check_client(client):
    check_instance(client, "client", Client, "a dask.distributed.Client or None", allow_none=True)


def _check_network(net):
    check_instance(net, "net", Network, "a fastbp.Network")
    net._check_parameters()


def _spec(net):
    """What a worker needs to rebuild the architecture: (sizes, activations, loss, dtype name, generic engine)."""
    return (tuple(net.sizes), tuple(net.activations), net.loss, net.dtype.name, net._passes.small is None)


def _as_arrays(X, D, n_in, n_out):
    """X (n, n_in) and D (n, n_out) as numpy or dask arrays (see :func:`_as_row_arrays`), widths checked."""
    X, D = _as_row_arrays(X, D)
    check_columns(X.shape[1], "X", n_in)
    check_columns(D.shape[1], "D", n_out, "targets per sample")
    return X, D


class _Settings(NamedTuple):
    """The checked arguments of :func:`fit_data_parallel` that say how to train (see its docstring)."""

    mode: str
    epochs: int
    lr: float
    batch_size: int
    shuffle: bool
    seed: int | None  # an int whenever shuffle is True
    retries: int
    timeout: float | None


def _checked_settings(mode, epochs, lr, batch_size, shuffle, seed, retries, timeout):
    """The arguments as :class:`_Settings`, TypeError/ValueError if one is bad; shuffling without a seed draws
    one from fresh entropy."""
    check_either(mode, "mode", MODES)
    epochs = check_positive_int(epochs, "epochs")
    lr = check_positive_number(lr, "lr")
    batch_size = check_positive_int(batch_size, "batch_size")
    shuffle = bool(shuffle)
    seed = check_seed(seed)
    retries = check_non_negative_int(retries, "retries")
    if timeout is not None:
        timeout = check_positive_number(timeout, "timeout")
    if shuffle and seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return _Settings(mode, epochs, lr, batch_size, shuffle, seed, retries, timeout)


def _n_threads(client):
    return max(1, sum(client.nthreads().values()))


def _shard_arrays(X, D, client):
    """X and D as dask arrays with the same row chunks and one column chunk; numpy X gets one chunk per thread."""
    if not isinstance(X, da.Array):
        n_shards = min(_n_threads(client), X.shape[0])
        rows = [len(r) for r in np.array_split(np.arange(X.shape[0]), n_shards)]
        X = da.from_array(X, chunks=(tuple(rows), X.shape[1]))
    X = X.rechunk({1: -1})
    if not isinstance(D, da.Array):
        D = da.from_array(D, chunks=(X.chunks[0], D.shape[1]))
    return X, D.rechunk({0: X.chunks[0], 1: -1})


def _load_shards(client, X, D, dtype, retries):
    """One future per row chunk, each a :class:`_Shard` held on a worker, spread over the workers."""
    X, D = _shard_arrays(X, D, client)
    x_blocks = X.to_delayed().ravel()
    d_blocks = D.to_delayed().ravel()
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])])
    workers = sorted(client.nthreads())
    shards = []
    make = dask.delayed(_make_shard, pure=False)
    for s, (xb, db) in enumerate(zip(x_blocks, d_blocks)):
        placement = dict(workers=[workers[s % len(workers)]], allow_other_workers=True) if workers else {}
        shards.append(client.compute(make(xb, db, s, int(offsets[s]), dtype.name), retries=retries, **placement))
    try:
        wait(shards)
        for future in shards:
            if future.status == "error":
                future.result()  # raises the worker's exception
    except (ValueError, TypeError):
        client.cancel(shards)
        raise
    except Exception as exc:
        client.cancel(shards)
        raise RuntimeError(f"could not load the data shards onto the workers: {type(exc).__name__}: {exc}") from exc
    return shards, [int(c) for c in X.chunks[0]]


def _run_round(client, futures, timeout, what):
    """The results of one round's futures, in order; RuntimeError naming the round if Dask cannot deliver them."""
    try:
        if timeout is not None:
            wait(futures, timeout=timeout)
        return client.gather(futures)
    except Exception as exc:
        raise RuntimeError(
            f"{what} failed: {type(exc).__name__}: {exc}; the network was left as it was before the call"
        ) from exc


def fit_data_parallel(
    net, X, D, client=None, epochs=1, lr=0.1, batch_size=32, mode="sync", shuffle=True, seed=None,
    retries=1, timeout=None,
):  # fmt: skip
    """Train ``net`` with plain gradient descent on data split by rows across Dask workers.

    Parameters
    ----------
    net : fastbp.Network
        Trained in place, but only when the whole call succeeds: its flat
        parameters are written once, at the end.
    X : dask array or numpy array (n_samples, n_in)
        Each row chunk of a dask array is one shard, loaded once onto one
        worker and kept there; chunk it into one block per worker (or a few).
        Column chunks are merged.  A numpy array is cut into one chunk per
        worker thread (``numpy.array_split``) and goes to the workers inside
        the task graph; for data of more than a few tens of MB, make a dask
        array that the workers load themselves (``da.from_zarr``, ...).
    D : dask array or numpy array (n_samples, n_out), or (n_samples,) when n_out == 1
        Targets; rechunked to X's row chunks.
    client : dask.distributed.Client or None
        None starts a ``LocalCluster`` of worker processes (one per core, one
        thread each) for this call and closes it afterwards.
    epochs : int >= 1
    lr : float > 0
        The learning rate eta.
    batch_size : int >= 1
        Rows per global mini-batch (sync mode; see :func:`batch_rows`), or per
        local mini-batch of each worker (average mode).
    mode : "sync" or "average"
        ``"sync"``: at every step each shard computes the sum of the
        per-sample gradients of its rows of the global mini-batch (fastbp's
        kernels, ``net.gradients``), the driver adds the sums, divides by the
        mini-batch's row count and applies ``theta -= lr * g`` to the flat
        parameters: the same arithmetic as ``net.step`` on the whole
        mini-batch on one machine (equal to 1e-12 in float64).  One round trip
        per step, to one Dask actor per shard (made on the shard's worker and
        called directly, about 3 ms on a 2-worker LocalCluster, where tasks
        through the scheduler take 13 ms; a lost actor's steps fall back to
        tasks): worth it when a step's computation takes much longer than that.
        ``"average"``: local SGD.  Every epoch, each shard trains one epoch of
        ``net.fit`` (plain SGD, ``batch_size``, its rows shuffled with a seed
        derived from (seed, epoch, shard)) from the current parameters, and
        the driver replaces the parameters by the average of the shards'
        results weighted by their row counts.  One round trip per epoch.
    shuffle : bool
        Sync: each shard visits its rows in a new seeded order every epoch
        (:func:`batch_rows`).  Average: each local epoch is shuffled.
    seed : int >= 0 or None
        Seeds the shuffling; None draws one from fresh entropy.
    retries : int >= 0
        How many times Dask reruns a task that raised, for transient failures
        (fastbp's own errors are deterministic and fail again).  Tasks lost
        with a worker that died are rerun by the scheduler in any case, up to
        its ``distributed.scheduler.allowed-failures`` (default 3).
    timeout : float or None
        Seconds to wait for one round (a step or, in average mode, an epoch)
        before giving up with a RuntimeError; None waits as long as it takes.

    Returns
    -------
    History
        ``loss[e]``: sync, the mean of epoch e's mini-batch losses (each
        measured before its update, as in ``fit``); average, the row-weighted
        mean of the shards' local epoch losses.  ``lr[e]``: lr.  No accuracy
        (call ``net.evaluate``).

    Raises
    ------
    TypeError, ValueError
        Bad arguments, raised before any work is submitted (non-finite data
        is found by the workers when they load their shards, before any step).
    fastbp.errors.DivergenceError
        Sync: a mini-batch loss or the parameters after an update were not
        finite (``.epoch``, ``.batch``: that step).  Average: a shard's local
        loss (``.batch``: the shard's local batch) or the averaged parameters
        were not finite.
    RuntimeError
        Dask could not deliver a step's or an epoch's results (e.g. a worker
        died more often than the scheduler allows, or ``client.restart()``
        cancelled the run); the message names the step or epoch.

    In every error case ``net`` is left exactly as it was.  Throughout, only
    the flat parameter vector travels to the workers, and one gradient or
    parameter vector per shard back; the shards stay where they were loaded
    (with their lineage, so a shard lost with its worker is recomputed).  The
    first task on a worker process pays fastbp's compilation: about 0.3 s
    with numba's disk cache warm, 8 s cold (see the module's docstring).
    """
    _check_network(net)
    _check_client(client)
    settings = _checked_settings(mode, epochs, lr, batch_size, shuffle, seed, retries, timeout)
    X, D = _as_arrays(X, D, net.sizes[0], net.sizes[-1])
    theta = net.flat_parameters.copy()
    losses = _train_on_workers(client, X, D, theta, _spec(net), net.dtype, settings)
    net.flat_parameters[...] = theta
    return History(np.asarray(losses), lr=np.full(settings.epochs, settings.lr))


def _train_on_workers(client, X, D, theta, spec, dtype, settings):
    """Load (X, D) into shards on the workers and train ``settings.epochs`` epochs of ``settings.mode`` from
    theta (n_params,), updated in place; the epochs' losses.  ``client`` None: a LocalCluster for the call."""
    with _client_scope(client) as c:
        shards, row_chunks = _load_shards(c, X, D, dtype, settings.retries)
        try:
            run = _sync if settings.mode == "sync" else _average
            return run(c, shards, row_chunks, theta, spec, settings)
        finally:
            c.cancel(shards)


def _submit_theta(client, theta):
    """theta itself (small: it rides in the tasks) or a future of it scattered to every worker (large)."""
    if theta.nbytes <= _SCATTER_BYTES:
        return theta.copy()
    return client.scatter(theta, broadcast=True, hash=False)


def _start_actors(client, shards):
    """(actors, their futures): one :class:`_ShardActor` per shard on the shard's worker, or (None, []) if
    they cannot be made (sync mode then runs on tasks only)."""
    futures = []
    try:
        who_has = client.who_has(shards)
        for shard in shards:
            where = list(who_has.get(shard.key, ()))
            placement = dict(workers=where, allow_other_workers=True) if where else {}
            futures.append(client.submit(_ShardActor, shard, actor=True, **placement))
        return [f.result() for f in futures], futures
    except Exception:
        client.cancel(futures)
        return None, []


_ACTOR_POLL_SECONDS = 0.05


def _actor_round(actors, actor_futures, args, timeout, what):
    """One sync step through the actors: the shards' parts, or None if an actor is gone (its worker died).

    The calls are waited on in slices of 50 ms, and between slices the actors' own futures are checked:
    the scheduler marks them lost as soon as a worker dies, while a call to a dead worker could wait
    for a connection timeout (seen once: 30 s).  RuntimeError after ``timeout`` seconds, as tasks.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    poll = _ACTOR_POLL_SECONDS if timeout is None else min(_ACTOR_POLL_SECONDS, timeout)
    try:
        calls = [actor.part(*args) for actor in actors]
    except Exception:  # "Worker holding Actor was lost"
        return None
    parts = []
    for call in calls:
        while True:
            try:
                parts.append(call.result(timeout=poll))
                break
            except TimeoutError:
                if any(future.status != "finished" for future in actor_futures):
                    return None
                if deadline is not None and time.monotonic() >= deadline:
                    raise RuntimeError(
                        f"{what} failed: TimeoutError: no result within {timeout} s; "
                        "the network was left as it was before the call"
                    ) from None
            except Exception:  # the worker died during the call
                return None
    return parts


def _sync(client, shards, row_chunks, theta, spec, settings):
    """Sync mode.  Each step goes to the shards' actors.  Once an actor fails (its worker died), this step
    and the rest of the epoch go through tasks instead, which Dask reruns, recomputing lost shards from
    their lineage; the next epoch makes new actors.  Both ways run the same :func:`_sync_part` on the
    same shard, so the numbers do not change."""
    epochs, lr, batch_size, shuffle, seed, retries, timeout = settings[1:]
    n_steps = _steps_per_epoch(sum(row_chunks), batch_size)
    token = uuid.uuid4().hex
    lr_t = theta.dtype.type(lr)
    losses = []
    actors, actor_futures = None, []
    try:
        for epoch in range(epochs):
            if actors is None:
                actors, actor_futures = _start_actors(client, shards)
            batch_losses = np.empty(n_steps)
            for k in range(n_steps):
                what = f"sync step {k} of epoch {epoch}"
                parts = None
                if actors is not None:
                    args = (theta.copy(), spec, epoch, k, n_steps, shuffle, seed)
                    parts = _actor_round(actors, actor_futures, args, timeout, what)
                    if parts is None:
                        client.cancel(actor_futures)
                        actors, actor_futures = None, []
                if parts is None:
                    args = (_submit_theta(client, theta), spec, epoch, k, n_steps, shuffle, seed)
                    futures = [
                        client.submit(
                            _sync_part, shard, *args, key=f"fastbp-sync-{token}-{epoch}-{k}-{s}", retries=retries
                        )
                        for s, shard in enumerate(shards)
                    ]
                    parts = _run_round(client, futures, timeout, what)
                n = sum(p[2] for p in parts)
                E = sum(p[0] for p in parts) / n
                grad = np.zeros(theta.shape, dtype=np.float64)
                with np.errstate(over="ignore", invalid="ignore"):  # a divergence is detected below
                    for _, g, count in parts:
                        if count:
                            grad += g
                    grad /= n
                    new_theta = theta - lr_t * grad.astype(theta.dtype, copy=False)
                if not (math.isfinite(E) and np.all(np.isfinite(new_theta))):
                    raise DivergenceError(epoch, k, History(np.asarray(losses), lr=np.full(len(losses), lr)))
                theta[...] = new_theta
                batch_losses[k] = E
            losses.append(float(np.mean(batch_losses)))
    finally:
        client.cancel(actor_futures)
    return losses


def _average(client, shards, row_chunks, theta, spec, settings):
    """Average mode: each epoch, every shard trains one local epoch from theta, which becomes their
    row-weighted average."""
    epochs, lr, batch_size, shuffle, seed, retries, timeout = settings[1:]
    token = uuid.uuid4().hex
    losses = []
    for epoch in range(epochs):
        args = (_submit_theta(client, theta), spec, epoch, lr, batch_size, shuffle, seed)
        futures = [
            client.submit(_average_part, shard, *args, key=f"fastbp-average-{token}-{epoch}-{s}", retries=retries)
            for s, shard in enumerate(shards)
        ]
        parts = _run_round(client, futures, timeout, f"average-mode epoch {epoch}")
        for _, _, _, bad_batch in parts:
            if bad_batch >= 0:
                raise DivergenceError(epoch, bad_batch, History(np.asarray(losses), lr=np.full(epoch, lr)))
        n = sum(p[1] for p in parts)
        total = np.zeros(theta.shape, dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # a divergence is detected below
            for params, count, _, _ in parts:
                if count:
                    total += count * params.astype(np.float64, copy=False)
            new_theta = (total / n).astype(theta.dtype)
        if not np.all(np.isfinite(new_theta)):
            raise DivergenceError(epoch, 0, History(np.asarray(losses), lr=np.full(epoch, lr)))
        theta[...] = new_theta
        losses.append(sum(p[1] * p[2] for p in parts) / n)
    return losses


def _as_row_arrays(X, D, x_name="X", d_name="D"):
    """(X, D) as 2-D numpy or dask arrays of real numbers with as many rows, at least one; D (n,) becomes (n, 1)."""
    out = []
    for name, a in ((x_name, X), (d_name, D)):
        if not isinstance(a, da.Array):
            a = as_numpy_array(a, name, "a dask array or a numpy array")
        check_real_dtype(a, name)
        if a.ndim == 1 and name == d_name:
            a = a.reshape(-1, 1)
        check_2d(a, name)
        if isinstance(a, da.Array):
            check_known_row_chunks(a.chunks[0], name)
        out.append(a)
    check_same_rows(out[0].shape[0], out[1].shape[0], (x_name, d_name))
    check_not_empty(out[0].shape[0], x_name, "it has 0 rows")
    return tuple(out)
