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
the code generated for small networks (at most 64 parameters) lives in
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

try:
    import dask  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        'fastbp.distributed needs dask[distributed]: pip install "fastbp[distributed]" '
        '(or pip install "dask[distributed]")'
    ) from exc

from .batching import batch_rows
from .driver import MODES, fit_data_parallel
from .sweep import CONFIG_KEYS, RESULT_COLUMNS, SweepTable, sweep

__all__ = ["fit_data_parallel", "sweep", "batch_rows", "SweepTable", "MODES", "CONFIG_KEYS", "RESULT_COLUMNS"]
