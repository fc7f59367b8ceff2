"""Data-parallel training and sweeps of many networks on Dask's distributed scheduler.

``pip install "fastbp[distributed]"`` (dask[distributed]).  Only this module
imports dask: ``import fastbp`` does not.

Dask does the scheduling, the data movement and the fault handling; every
number is computed by fastbp's own compiled code on the workers.  The same
call runs on a laptop and on a cluster: pass ``client=None`` and a
``LocalCluster`` of worker processes (one per core, one thread each) is
started for the call and closed after it, or pass the ``Client`` of a real
cluster.

* :func:`fit_data_parallel` trains one network on data split by rows across
  the workers, in ``"sync"`` mode (one gradient step per global mini-batch,
  the same arithmetic as one machine) or ``"average"`` mode (local SGD: each
  worker trains an epoch on its shard, then the parameters are averaged).
* :func:`sweep` trains one network per configuration (sizes, activations,
  seed, lr, ...) in parallel and returns a :class:`SweepTable` of results.
* :func:`batch_rows` says which global rows form each sync-mode mini-batch,
  so that a run can be reproduced on one machine.

What travels
------------
The data is loaded once into one *shard* per row chunk of ``X`` (held in the
memory of a worker for the whole call, with its Dask lineage, so a lost
shard is recomputed); after that only the flat parameter vector (n_params
numbers) goes out to the workers and one flat gradient (sync) or parameter
vector (average) per shard comes back, each round.

Compilation on workers
----------------------
fastbp's kernels are compiled with numba's disk cache (``cache=True``), and
the code generated for small networks (at most 256 parameters) lives in
``$FASTBP_CACHE_DIR`` (default ``~/.cache/fastbp``).  Worker processes
inherit the environment, so they load the machine code the driver (or an
earlier worker) compiled, and within a worker process each architecture is
set up once and reused by every later task (one network per architecture and
worker thread).  The first task on a fresh worker process pays for
compilation; measured on a 2-core VM (``benchmarks/distributed_compare.py``,
first call minus second call on a new 1-worker cluster): with empty caches
5.0 s for a sweep of the 2-2-1 XOR network (generated code) and 8.0 s for a
sync step of a 64-64-10 network (generic engine); with warm caches 0.25 s and
0.26 s (loading the cached machine code); nothing for every later task in
that process.  A worker that has not imported fastbp yet adds about 0.3 s.
Warm the caches once (any fastbp run on the machine, or on a shared cache
directory) before timing a cluster.
"""

import contextlib
import math
import numbers
import threading
import time
import uuid

import numpy as np

try:
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, wait
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        'fastbp.distributed needs dask[distributed]: pip install "fastbp[distributed]" '
        '(or pip install "dask[distributed]")'
    ) from exc

from ._parallel import limit_threads
from ._validation import as_float_array, as_pair, check_finite, check_positive_int, check_positive_number
from .errors import DivergenceError
from .network import History, Network
from .optimizers import OPTIMIZERS

MODES = ("sync", "average")

# Above this size the parameter vector is scattered to the workers once per round instead of riding inside
# every task's arguments (which go through the scheduler).
_SCATTER_BYTES = 1 << 20


# ----------------------------------------------------------------------------- helpers used on both sides


def _steps_per_epoch(n_rows, batch_size):
    """K = ceil(n_rows / batch_size): the number of global mini-batches (steps) in a sync-mode epoch."""
    return max(1, -(-n_rows // batch_size))


def _piece(n_shard, k, n_steps):
    """Rows [lo, hi) of a shard of n_shard rows that go into global mini-batch k of n_steps."""
    return (k * n_shard) // n_steps, ((k + 1) * n_shard) // n_steps


def _shard_order(n_shard, shuffle, seed, epoch, shard):
    """The order in which a shard visits its rows in an epoch: None (0, 1, 2, ...) or a seeded permutation."""
    if not shuffle:
        return None
    return np.random.default_rng([seed, epoch, shard]).permutation(n_shard)


def _local_seed(seed, epoch, shard):
    """The int seed of shard ``shard``'s local ``fit`` in epoch ``epoch`` (average mode)."""
    return int(np.random.SeedSequence([seed, epoch, shard]).generate_state(1, np.uint64)[0])


def batch_rows(row_chunks, batch_size, epoch=0, shuffle=False, seed=None):
    """The global row indices of every sync-mode mini-batch of one epoch.

    Sync mode splits each global mini-batch across the shards in proportion
    to their sizes, so that every worker works at every step.  With n rows in
    all, an epoch has K = ceil(n / batch_size) steps.  Shard s (the s-th row
    chunk of X, with n_s rows starting at global row o_s) visits its rows in
    the order p_s = 0, 1, ..., n_s - 1 (``shuffle=False``) or
    p_s = ``numpy.random.default_rng([seed, epoch, s]).permutation(n_s)``,
    and contributes to mini-batch k its rows
    ``o_s + p_s[floor(k n_s / K) : floor((k + 1) n_s / K)]``.  Mini-batch k
    is the concatenation of those pieces in shard order.  Each mini-batch
    therefore has about n / K <= batch_size rows (up to one more or fewer
    per shard); every row is used exactly once per epoch.

    Parameters
    ----------
    row_chunks : sequence of int
        Rows per shard, in order: ``X.chunks[0]`` of the dask array.
    batch_size : int >= 1
    epoch : int >= 0
        Only matters with shuffling.
    shuffle : bool
    seed : int >= 0
        Required with ``shuffle=True``: the seed passed to :func:`fit_data_parallel`.

    Returns
    -------
    list of ndarray
        K int64 arrays of global row indices; ``net.step(X[rows], D[rows], lr)``
        for each in turn is what one sync-mode epoch computes.
    """
    if isinstance(row_chunks, (str, bytes)) or not hasattr(row_chunks, "__iter__"):
        raise TypeError(f"row_chunks must be a sequence of row counts (integers >= 0), got {row_chunks!r}")
    row_chunks = list(row_chunks)
    if not all(isinstance(c, numbers.Integral) and not isinstance(c, (bool, np.bool_)) for c in row_chunks):
        raise TypeError(f"row_chunks must be row counts (integers >= 0), got {row_chunks}")
    row_chunks = [int(c) for c in row_chunks]
    if any(c < 0 for c in row_chunks):
        raise ValueError(f"row_chunks must be row counts >= 0, got {row_chunks}")
    batch_size = check_positive_int(batch_size, "batch_size")
    if shuffle:
        seed = _check_seed(seed, required=True)
    n_steps = _steps_per_epoch(sum(row_chunks), batch_size)
    offsets = np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64)
    orders = [_shard_order(n, shuffle, seed, epoch, s) for s, n in enumerate(row_chunks)]
    batches = []
    for k in range(n_steps):
        parts = []
        for s, n in enumerate(row_chunks):
            lo, hi = _piece(n, k, n_steps)
            local = np.arange(lo, hi, dtype=np.int64) if orders[s] is None else orders[s][lo:hi]
            parts.append(offsets[s] + local)
        batches.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
    return batches


def _check_seed(seed, required=False):
    if seed is None:
        if required:
            raise ValueError("seed is required with shuffle=True: the same seed gives the same batches")
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)


# ----------------------------------------------------------------------------- worker side


class _Shard:
    """One row chunk of (X, D) in a worker's memory: C-contiguous arrays of the network's dtype.

    ``X`` (n, n_in), ``D`` (n, n_out); ``index`` is the chunk's position, ``offset`` its first global row.
    """

    def __init__(self, index, offset, X, D):
        self.index = index
        self.offset = offset
        self.X = X
        self.D = D
        self._order = None  # (epoch, seed, order): this epoch's permutation, made at its first step

    @property
    def n(self):
        return self.X.shape[0]

    def batch(self, epoch, k, n_steps, shuffle, seed):
        """(X_k, D_k): this shard's rows of global mini-batch k (see :func:`batch_rows`)."""
        lo, hi = _piece(self.n, k, n_steps)
        if not shuffle:
            return self.X[lo:hi], self.D[lo:hi]
        if self._order is None or self._order[:2] != (epoch, seed):
            self._order = (epoch, seed, _shard_order(self.n, True, seed, epoch, self.index))
        rows = self._order[2][lo:hi]
        return self.X[rows], self.D[rows]


def _make_shard(x_block, d_block, index, offset, dtype_name):
    """Load one chunk: a :class:`_Shard` of validated arrays; ValueError naming the global row if not finite."""
    dtype = np.dtype(dtype_name)
    X = as_float_array(x_block, "X", dtype)
    D = as_float_array(d_block, "D", dtype)
    if D.ndim == 1:
        D = D.reshape(-1, 1)
    for name, arr in (("X", X), ("D", D)):
        if not np.all(np.isfinite(arr)):
            row, col = (int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ValueError(f"{name} must be finite, but {name}[{offset + row}, {col}] is {arr[row, col]}")
    return _Shard(index, offset, X, D)


_local = threading.local()


def _worker_network(spec, theta):
    """This worker thread's network of architecture ``spec``, its parameters set to ``theta``.

    One network per architecture and thread is kept for the life of the worker
    process, so its compiled code and buffers are set up once, not per task.
    """
    cache = getattr(_local, "networks", None)
    if cache is None:
        cache = _local.networks = {}
    net = cache.get(spec)
    if net is None:
        sizes, activations, loss, dtype_name, generic = spec
        net = Network(list(sizes), list(activations), loss=loss, dtype=np.dtype(dtype_name), seed=0)
        if generic:
            net._small = None
        cache[spec] = net
    net.flat_parameters[...] = theta
    return net


def _sync_part(shard, theta, spec, epoch, k, n_steps, shuffle, seed):
    """One shard's share of sync step k: (sum of the per-sample losses, sum of the gradients (n_params,), count)."""
    X, D = shard.batch(epoch, k, n_steps, shuffle, seed)
    n = X.shape[0]
    if n == 0:
        return 0.0, None, 0
    net = _worker_network(spec, theta)
    E, g = net.gradients(X, D)
    with np.errstate(over="ignore"):  # an overflow is a divergence, which the driver reports
        return E * n, g.flat * n, n


class _ShardActor:
    """A Dask actor holding one shard, on the shard's worker: sync steps call :meth:`part` directly, without
    a trip through the scheduler (about 3 ms a step on a 2-worker LocalCluster, against 13 ms for tasks)."""

    def __init__(self, shard):
        self.shard = shard

    def part(self, theta, spec, epoch, k, n_steps, shuffle, seed):
        return _sync_part(self.shard, theta, spec, epoch, k, n_steps, shuffle, seed)


def _average_part(shard, theta, spec, epoch, lr, batch_size, shuffle, seed):
    """One shard's local epoch: (parameters after it (n_params,), rows, mean batch loss, diverged batch or -1)."""
    if shard.n == 0:
        return None, 0, 0.0, -1
    net = _worker_network(spec, theta)
    local_seed = _local_seed(seed, epoch, shard.index) if shuffle else None
    try:
        with limit_threads(1):  # the worker's other tasks have the other cores
            history = net.fit(
                shard.X, shard.D, epochs=1, lr=lr, batch_size=batch_size, shuffle=shuffle, seed=local_seed
            )
    except DivergenceError as exc:
        return None, shard.n, math.nan, exc.batch
    return net.flat_parameters.copy(), shard.n, float(history.loss[0]), -1


# ----------------------------------------------------------------------------- driver side


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
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"client must be a dask.distributed.Client or None, got {type(client).__name__}")


def _check_network(net):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastbp.Network, got {type(net).__name__}")
    net._check_parameters()


def _spec(net):
    """What a worker needs to rebuild the architecture: (sizes, activations, loss, dtype name, generic engine)."""
    return (tuple(net.sizes), tuple(net.activations), net.loss, net.dtype.name, net._small is None)


def _check_real(a, name):
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {a.dtype}")


def _as_arrays(X, D, n_in, n_out):
    """X (n, n_in) and D (n, n_out) as numpy or dask arrays (see :func:`_as_row_arrays`), widths checked."""
    X, D = _as_row_arrays(X, D)
    if X.shape[1] != n_in:
        raise ValueError(f"X has {X.shape[1]} features, the network expects {n_in}")
    if D.shape[1] != n_out:
        raise ValueError(f"D has {D.shape[1]} targets per sample, the network expects {n_out}")
    return X, D


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
    if mode not in MODES:
        raise ValueError(f'mode must be "sync" or "average", got {mode!r}')
    epochs = check_positive_int(epochs, "epochs")
    lr = check_positive_number(lr, "lr")
    batch_size = check_positive_int(batch_size, "batch_size")
    shuffle = bool(shuffle)
    seed = _check_seed(seed)
    if isinstance(retries, (bool, np.bool_)) or not isinstance(retries, numbers.Integral) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if timeout is not None:
        timeout = check_positive_number(timeout, "timeout")
    X, D = _as_arrays(X, D, net.sizes[0], net.sizes[-1])
    if shuffle and seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])

    theta = net.flat_parameters.copy()
    spec = _spec(net)
    with _client_scope(client) as c:
        shards, row_chunks = _load_shards(c, X, D, net.dtype, retries)
        try:
            run = _sync if mode == "sync" else _average
            losses = run(c, shards, row_chunks, theta, spec, epochs, lr, batch_size, shuffle, seed, retries, timeout)
        finally:
            c.cancel(shards)
    net.flat_parameters[...] = theta
    return History(np.asarray(losses), lr=np.full(epochs, lr))


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


def _sync(client, shards, row_chunks, theta, spec, epochs, lr, batch_size, shuffle, seed, retries, timeout):
    """Sync mode.  Each step goes to the shards' actors.  Once an actor fails (its worker died), this step
    and the rest of the epoch go through tasks instead, which Dask reruns, recomputing lost shards from
    their lineage; the next epoch makes new actors.  Both ways run the same :func:`_sync_part` on the
    same shard, so the numbers do not change."""
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


def _average(client, shards, row_chunks, theta, spec, epochs, lr, batch_size, shuffle, seed, retries, timeout):
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


# ----------------------------------------------------------------------------- sweeps

_CONFIG_DEFAULTS = dict(
    loss="squared_error", dtype="float64", seed=None, lr=None, epochs=1, batch_size=32, shuffle=True, optimizer=None,
    trainable=None,
)  # fmt: skip
CONFIG_KEYS = ("sizes", "activations", *_CONFIG_DEFAULTS)
RESULT_COLUMNS = ("final_loss", "accuracy", "last_epoch_loss", "diverged", "seconds", "worker")


class SweepTable(list):
    """The rows of a :func:`sweep`: a plain list of dicts, one per configuration, in the configurations' order.

    Each row holds the keys of its configuration as given (``sizes``,
    ``seed``, ``lr``, ...), ``index`` (its position in ``configs``) and:

    * ``final_loss`` -- the trained network's mean loss on (X, D);
    * ``accuracy`` -- on (X, D): for cross-entropy losses the fraction of
      samples classified right (``Network.evaluate``); for squared error the
      fraction of samples whose every output is within 0.5 of its target
      (all four XOR outputs round right: 1.0);
    * ``last_epoch_loss`` -- ``history.loss[-1]`` of ``fit``;
    * ``diverged`` -- True if ``fit`` raised ``DivergenceError`` (the losses
      are then those of the parameters it put back) or its last update left
      parameters that are not finite (the losses and accuracy are then NaN);
    * ``seconds`` -- wall time of ``fit`` on the worker, compilation excluded;
    * ``worker`` -- the address of the worker that trained it;
    * ``val_loss``, ``val_accuracy`` -- the same on ``validation_data``, if given;
    * ``parameters`` -- the flat parameters (n_params,), with ``return_parameters=True``.

    No pandas needed; :meth:`to_pandas` converts when pandas is installed.
    """

    def column(self, name):
        """One value per row (a list)."""
        return [row.get(name) for row in self]

    def to_pandas(self):
        """A ``pandas.DataFrame`` of the rows (requires pandas)."""
        import pandas as pd

        return pd.DataFrame(list(self))

    def network(self, i):
        """Row i's trained network (needs ``return_parameters=True``)."""
        row = self[i]
        if "parameters" not in row:
            raise ValueError("the sweep was run without return_parameters=True")
        net = Network(
            list(row["sizes"]), row["activations"], loss=row.get("loss", "squared_error"),
            dtype=row.get("dtype", "float64"), seed=0,
        )  # fmt: skip
        net.flat_parameters[...] = row["parameters"]
        return net


def _check_config(i, config, n_in, n_out, checked):
    """The configuration with defaults filled in; TypeError/ValueError naming configs[i] if it is not valid."""
    if not isinstance(config, dict):
        raise TypeError(f"configs[{i}] must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"configs[{i}] has unknown keys {unknown}; valid keys are {', '.join(CONFIG_KEYS)}")
    missing = [key for key in ("sizes", "activations") if key not in config]
    if missing:
        raise ValueError(f"configs[{i}] needs {' and '.join(missing)}")
    full = dict(_CONFIG_DEFAULTS, **config)
    try:
        arch = (
            tuple(int(s) for s in full["sizes"]),
            full["activations"] if isinstance(full["activations"], str) else tuple(full["activations"]),
            full["loss"],
            np.dtype(full["dtype"]).name,
        )
        if arch not in checked:
            checked[arch] = Network(list(arch[0]), full["activations"], loss=arch[2], dtype=arch[3], seed=0)
        net = checked[arch]
        if net.sizes[0] != n_in:
            raise ValueError(f"X has {n_in} features, the network expects {net.sizes[0]}")
        if net.sizes[-1] != n_out:
            raise ValueError(f"D has {n_out} targets per sample, the network expects {net.sizes[-1]}")
        _check_seed(full["seed"])
        if full["lr"] is not None:
            check_positive_number(full["lr"], "lr")
        check_positive_int(full["epochs"], "epochs")
        check_positive_int(full["batch_size"], "batch_size")
        if full["optimizer"] is not None and full["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"optimizer must be None or one of {', '.join(OPTIMIZERS)}, got {full['optimizer']!r}")
        if full["trainable"] is not None:
            full["trainable"] = [bool(f) if isinstance(f, np.bool_) else f for f in full["trainable"]]
            net._frozen_mask(full["trainable"])
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"configs[{i}]: {exc}") from exc
    return full


_warmed = set()


def _train_one(full, X, D, validation, return_parameters):
    """Train and measure the network of one (completed) configuration; the row's result columns."""
    with limit_threads(1):  # one network per core: the sweep's tasks share the worker's cores
        return _train_one_here(full, X, D, validation, return_parameters)


def _train_one_here(full, X, D, validation, return_parameters):
    net = Network(list(full["sizes"]), full["activations"], loss=full["loss"], dtype=full["dtype"], seed=full["seed"])
    kwargs = dict(
        epochs=full["epochs"], lr=full["lr"], batch_size=full["batch_size"], shuffle=full["shuffle"], seed=full["seed"],
        trainable=full["trainable"], optimizer=full["optimizer"],
    )  # fmt: skip
    path = (net.sizes, net.activations, net.loss, net.dtype.name, full["optimizer"], str(full["trainable"]))
    if path not in _warmed:  # compile (or load) this training path before the clock starts
        rows = min(full["batch_size"], X.shape[0])
        for step in ("fit", "evaluate", "forward"):
            warm = Network(list(net.sizes), list(net.activations), loss=net.loss, dtype=net.dtype, seed=0)
            with contextlib.suppress(DivergenceError):
                if step == "fit":
                    warm.fit(X[:rows], D[:rows], **dict(kwargs, epochs=1, seed=0))
                elif step == "evaluate":
                    warm.evaluate(X[:rows], D[:rows])
                else:
                    warm.forward(X[:rows])
        _warmed.add(path)
    start = time.perf_counter()
    try:
        history = net.fit(X, D, **kwargs)
        diverged = False
    except DivergenceError as exc:
        history, diverged = exc.history, True
    seconds = time.perf_counter() - start
    # the last step's update can make the parameters non-finite without a later batch to notice
    diverged = diverged or not np.all(np.isfinite(net.flat_parameters))
    result = {}
    result["final_loss"], result["accuracy"] = _loss_and_accuracy(net, X, D)
    result["last_epoch_loss"] = float(history.loss[-1]) if len(history.loss) else math.nan
    result["diverged"] = diverged
    result["seconds"] = seconds
    if validation is not None:
        result["val_loss"], result["val_accuracy"] = _loss_and_accuracy(net, *validation)
    if return_parameters:
        result["parameters"] = net.flat_parameters.copy()
    return result


def _loss_and_accuracy(net, X, D):
    """(mean loss, accuracy) of ``net`` on (X, D), see :class:`SweepTable`; (nan, nan) for non-finite parameters."""
    if not np.all(np.isfinite(net.flat_parameters)):
        return math.nan, math.nan
    E, accuracy = net.evaluate(X, D)
    if accuracy is None:  # squared error: every output within 0.5 of its target
        Y = net.forward(X)
        accuracy = float(np.mean(np.all(np.abs(Y - D) < 0.5, axis=1)))
    return E, accuracy


def _sweep_chunk(X, D, validation, items, return_parameters):
    """Train the configurations ``items`` [(index, completed config), ...] one after another on one worker."""
    from distributed import get_worker

    try:
        worker = get_worker().address
    except ValueError:
        worker = None
    converted = {}

    def data(dtype):  # X, D (and the validation pair) once per dtype: writeable, C-contiguous
        if dtype not in converted:
            pairs = [(X, D)] + ([validation] if validation is not None else [])
            converted[dtype] = [tuple(as_float_array(a, "X", np.dtype(dtype)) for a in p) for p in pairs]
        return converted[dtype]

    rows = []
    for index, full in items:
        pairs = data(np.dtype(full["dtype"]).name)
        result = _train_one(full, *pairs[0], pairs[1] if validation is not None else None, return_parameters)
        result["worker"] = worker
        rows.append((index, result))
    return rows


def _sweep_data(client, a, name):
    """numpy data scattered to every worker once, or a dask array computed into one future (its lineage kept)."""
    if isinstance(a, da.Array):
        return client.compute(a.rechunk({0: -1, 1: -1}))
    check_finite(a, name)
    return client.scatter(a, broadcast=True, hash=False)


def sweep(
    configs, X, D, client=None, validation_data=None, return_parameters=False, configs_per_task=None, retries=1,
):  # fmt: skip
    """Train one network per configuration, in parallel on Dask workers; one row of results per configuration.

    Parameters
    ----------
    configs : sequence of dict
        Each dict takes ``sizes`` and ``activations`` (required) and any of
        ``loss``, ``dtype``, ``seed`` (the arguments of ``Network``) and
        ``lr``, ``epochs``, ``batch_size``, ``shuffle``, ``optimizer`` (a name:
        "sgd", "adam" or "adamw"), ``trainable`` (the arguments of
        ``Network.fit``), with the same defaults.  ``seed`` seeds both the
        initial weights and the shuffling, so a configuration with a seed
        gives the same network as ``Network(..., seed=s).fit(X, D, ..., seed=s)``
        on one machine, bit for bit.
    X : numpy or dask array (n_samples, n_in)
    D : numpy or dask array (n_samples, n_out), or (n_samples,) when n_out == 1
        Every network trains on all of (X, D); it is sent to each worker once
        (numpy: scattered; dask: computed on the cluster, then copied to the
        workers that need it), not once per task.
    client : dask.distributed.Client or None
        None: a ``LocalCluster`` of worker processes for this call.
    validation_data : (Xv, Dv), optional
        Adds ``val_loss`` and ``val_accuracy`` to every row.
    return_parameters : bool
        Adds each trained network's flat parameters (n_params,) to its row;
        :meth:`SweepTable.network` rebuilds the network from them.
    configs_per_task : int or None
        Configurations trained one after another in one Dask task.  Dask's
        overhead is about 1 ms per task, more than a small network's training,
        so configurations are grouped: None gives about four tasks per worker
        thread (at most 1000 configurations each).
    retries : int >= 0
        How many times Dask reruns a task that raised.

    Returns
    -------
    SweepTable
        A list of dicts, one per configuration, in order (see
        :class:`SweepTable` for the columns: final_loss, accuracy, seconds, ...).

    Raises
    ------
    TypeError, ValueError
        A bad configuration (the message names ``configs[i]``) or bad data,
        before any work is submitted.
    RuntimeError
        Dask could not deliver a group of results; the message names the
        configurations.  A network that diverges does not raise: its row has
        ``diverged=True``.
    """
    _check_client(client)
    configs = list(configs)
    if not configs:
        raise ValueError("configs is empty: give at least one configuration")
    X, D = _as_row_arrays(X, D)
    validation = None
    if validation_data is not None:
        validation = _as_row_arrays(*as_pair(validation_data, "validation_data", "(Xv, Dv)"), "Xv", "Dv")
        if validation[0].shape[1] != X.shape[1] or validation[1].shape[1] != D.shape[1]:
            raise ValueError(
                f"validation_data has {validation[0].shape[1]} features and {validation[1].shape[1]} targets, "
                f"X and D have {X.shape[1]} and {D.shape[1]}"
            )
    checked = {}
    full = [_check_config(i, cfg, X.shape[1], D.shape[1], checked) for i, cfg in enumerate(configs)]
    return_parameters = bool(return_parameters)
    if isinstance(retries, (bool, np.bool_)) or not isinstance(retries, numbers.Integral) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if configs_per_task is not None:
        configs_per_task = check_positive_int(configs_per_task, "configs_per_task")

    with _client_scope(client) as c:
        per_task = configs_per_task or min(1000, max(1, -(-len(full) // (4 * _n_threads(c)))))
        x_f, d_f = _sweep_data(c, X, "X"), _sweep_data(c, D, "D")
        v_f = None
        if validation is not None:
            v_f = (_sweep_data(c, validation[0], "Xv"), _sweep_data(c, validation[1], "Dv"))
        token = uuid.uuid4().hex
        groups = [list(enumerate(full))[i : i + per_task] for i in range(0, len(full), per_task)]
        args = (x_f, d_f, v_f)
        futures = [
            c.submit(_sweep_chunk, *args, group, return_parameters, key=f"fastbp-sweep-{token}-{j}", retries=retries)
            for j, group in enumerate(groups)
        ]
        results = {}
        for j, future in enumerate(futures):
            try:
                results.update(future.result())
            except (ValueError, TypeError):
                raise
            except Exception as exc:
                first, last = groups[j][0][0], groups[j][-1][0]
                raise RuntimeError(
                    f"sweep: the results of configs[{first}..{last}] could not be computed: {type(exc).__name__}: {exc}"
                ) from exc
    table = SweepTable()
    for i, cfg in enumerate(configs):
        table.append({"index": i, **cfg, **results[i]})
    return table


def _as_row_arrays(X, D, x_name="X", d_name="D"):
    """(X, D) as 2-D numpy or dask arrays of real numbers with as many rows, at least one; D (n,) becomes (n, 1)."""
    out = []
    for name, a in ((x_name, X), (d_name, D)):
        if not isinstance(a, da.Array):
            try:
                a = np.asarray(a)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name} must be a dask array or a numpy array, got {type(a).__name__}") from exc
        _check_real(a, name)
        if a.ndim == 1 and name == d_name:
            a = a.reshape(-1, 1)
        if a.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_columns), got shape {a.shape}")
        if isinstance(a, da.Array) and any(math.isnan(c) for c in a.chunks[0]):
            raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
        out.append(a)
    if out[0].shape[0] != out[1].shape[0]:
        raise ValueError(f"{x_name} has {out[0].shape[0]} rows but {d_name} has {out[1].shape[0]}")
    if out[0].shape[0] == 0:
        raise ValueError(f"{x_name} is empty: it has 0 rows")
    return tuple(out)


__all__ = ["fit_data_parallel", "sweep", "batch_rows", "SweepTable", "MODES", "CONFIG_KEYS", "RESULT_COLUMNS"]
