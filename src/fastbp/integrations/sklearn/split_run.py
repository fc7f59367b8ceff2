"""The estimators' epochs of Adam and SGD split by hidden units (``_split``): which networks get it, its buffers,
and its runs on ``fastbp.engine._threaded``'s helper threads.

A network with one hidden layer, dense X and a batch size at which ``Network.fit`` would use several threads
gets the split; its shares run on that many threads, or all on the caller's thread while the helpers are
busy or the last runs were contended, with the same arithmetic either way.
"""

import numpy as np

from fastbp.engine import _threaded as _parallel
from fastbp.engine._threaded_pass import block_offsets
from fastbp.integrations.sklearn._compiled import ADAM_RULE
from fastbp.integrations.sklearn._split import fit_epochs_split
from fastbp.kernels import _sync

_helper_entry = fit_epochs_split  # what the helpers call (a test replaces it to make a helper fail)


class SplitEpochs:
    """Buffers of one ``fit`` whose epochs run split by hidden units; build with :meth:`for_fit`."""

    @classmethod
    def for_fit(cls, packed, data, batch_size, dtype, rule):
        """A SplitEpochs for this network (``model.PackedLayout``), data (``_compiled``'s tuple), batch size,
        dtype and optimizer rule, or None if the network does not get the split."""
        sizes = packed.sizes
        if data[4] or len(sizes) != 3:  # sparse X, or not one hidden layer
            return None
        bounds = _parallel.unit_split(sizes, packed.layout[1:3], batch_size)
        if bounds is None:
            return None
        return cls(packed, bounds, batch_size, dtype, rule)

    def __init__(self, packed, bounds, batch_size, dtype, rule):
        self.packed = packed
        self.bounds = bounds
        self.offsets = block_offsets(packed.sizes, bounds)
        self.batch_size = batch_size
        self.dtype = dtype
        n_in, _, n_out = (int(s) for s in packed.sizes)
        n_shares = len(bounds) - 1
        size = int(self.offsets[-1])
        widest = int(np.max(np.diff(bounds)))
        states = (size, size if rule == ADAM_RULE else 0)
        self.buffers = (
            np.zeros(size, dtype=dtype),  # parameters
            np.zeros(size, dtype=dtype),  # gradient
            *(np.zeros(k, dtype=dtype) for k in states),
            np.zeros((n_shares, batch_size * (n_in + 2 * n_out) + 8), dtype=dtype),  # scratch, a row per thread
            np.zeros((n_shares, (2 * batch_size + n_out) * widest + 8), dtype=dtype),
            np.zeros((2, n_shares, batch_size * n_out + 8), dtype=dtype),  # z2's shares, by step parity
        )
        self.sync = np.zeros(_sync.SYNC_LENGTH, dtype=np.int64)  # the barrier of runs on several threads
        self.alone = (np.zeros(_sync.SYNC_LENGTH, dtype=np.int64), np.zeros(1, dtype=np.int64))

    def epochs(self, theta, data, orders, epoch_lrs, stopping, alpha, clip, opt):
        """Train theta and the optimizer state of ``opt`` (``_compiled.fit_epoch``'s tuple) in place for
        len(epoch_lrs) epochs, each over the rows in its row of ``orders`` (int64 (E, n), or (1, n) for all)
        with its learning rate (Adam: learning_rate_init), or until scikit-learn's no-improvement rule stops
        them: ``stopping`` = (check, tol, n_iter_no_change, best_loss, no_improvement_count).

        Returns (losses, t, lr_t): the loss of each epoch run, and ``_compiled.fit_epoch``'s t and lr_t.
        """
        rule = opt[0]
        hyper = (rule, float(opt[2]), bool(opt[3]), *(float(v) for v in opt[4:7]), int(opt[7]))
        net = (theta, opt[8], opt[9] if rule == ADAM_RULE else opt[9][:0])
        n_epochs = len(epoch_lrs)
        losses = np.zeros(n_epochs, dtype=np.float64)
        result = np.zeros(4, dtype=np.float64)
        n_shares = len(self.bounds) - 1
        rules = np.asarray(stopping, dtype=np.float64)  # thread 0 applies them

        def args_of(tid, n_threads, sync, control, entered_before, max_spins):
            team = (tid, n_threads, sync, control, entered_before, max_spins)
            epochs = (orders, epoch_lrs, rules)
            return (team, self.packed.layout, (self.bounds, self.offsets), data, epochs, self.batch_size, alpha,
                    clip, hyper, self.buffers, net, (losses, result))  # fmt: skip

        helpers = None if _parallel.contended() else _parallel.acquire_helpers(n_shares - 1)
        if helpers is None:  # every share on this thread
            sync, control = self.alone
            with _parallel.blas_alone():
                fit_epochs_split(*args_of(0, 1, sync, control, 0, 0))
        else:
            try:
                _parallel.run_team(
                    helpers, _helper_entry, fit_epochs_split,
                    lambda t, entered, spins: args_of(t, n_shares, self.sync, helpers.control, entered, spins),
                    n_shares, self.sync, self.dtype,
                )  # fmt: skip
            finally:
                helpers.lock.release()
        done, t, lr_t = result[:3]
        return losses[: int(done)], int(t), float(lr_t)
