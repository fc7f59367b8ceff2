"""Which global rows form each sync-mode mini-batch, on the driver and the workers alike."""

import numpy as np

from fastbp.nn.validation import as_row_counts, check_positive_int, check_seed


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
    row_chunks = as_row_counts(row_chunks)
    batch_size = check_positive_int(batch_size, "batch_size")
    if shuffle:
        seed = check_seed(seed, required_because="with shuffle=True: the same seed gives the same batches")
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
