"""What runs on the Dask workers: the shards of the data, and one network per architecture."""

import math
import threading

import numpy as np

from fastbp.engine._threaded import limit_threads
from fastbp.errors import DivergenceError
from fastbp.integrations.dask.batching import _local_seed, _piece, _shard_order
from fastbp.nn.network import Network
from fastbp.nn.validation import as_float_array, check_finite_rows


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
    check_finite_rows(X, "X", offset)
    check_finite_rows(D, "D", offset)
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
            net._passes.small = None
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
