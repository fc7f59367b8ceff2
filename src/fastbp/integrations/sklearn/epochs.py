"""The compiled calls behind the stochastic solvers' epochs: ``EpochTrainer`` trains one epoch a call
(``_compiled.fit_epoch``, one thread), or runs of epochs split by hidden units (``split_run``).

A run of several epochs is used where nothing between two epochs needs Python: no early stopping (which
scores the validation set), no verbose output, no partial_fit and no adaptive learning rate.  The run then
draws its epochs' shuffles ahead from the estimator's RandomState, takes their learning rates from the
schedule, and stops where scikit-learn's no-improvement rule would; the estimator books the epochs one by
one afterwards, with the same rule, so the run and the booking stop at the same epoch.  The RandomState is
left as the epochs actually run left it.
"""

import time

import numpy as np

from fastbp.integrations.sklearn._compiled import fit_epoch
from fastbp.integrations.sklearn.split_run import SplitEpochs

# A run of epochs lasts about this long at most (Ctrl-C is seen between runs).
RUN_SECONDS = 0.25

# The epochs' row orders drawn ahead take at most this many bytes.
MAX_ORDER_BYTES = 32 * 1024 * 1024

# Before a first run has been timed, an epoch is reckoned at 3 multiply-adds per parameter and sample (the
# forward pass, the error terms, the gradient) at this rate: ~one core's float64 rate on the 2-core VM.
MULTIPLY_ADDS_PER_SECOND = 1e10


class EpochTrainer:
    """Trains a stochastic fit's epochs; see the module.  ``est`` is the estimator (its random state,
    shuffle, alpha, tol, n_iter_no_change, best_loss_, _no_improvement_count and t_ are read), ``packed`` its
    ``model.PackedLayout``, theta the flat parameters (trained in place), ``data`` the ``_compiled`` tuple,
    ``opt`` its optimizer object, ``run_ahead`` whether runs of several epochs are allowed."""

    def __init__(self, est, packed, theta, data, batch_size, opt, run_ahead):
        self.est, self.packed, self.theta, self.data, self.opt = est, packed, theta, data, opt
        self.batch_size = batch_size
        n_samples, dtype = data[5].shape[0], theta.dtype
        self.sample_idx = np.arange(n_samples, dtype=np.int64)
        self.clip = float(np.finfo(dtype).eps)
        rule = opt.packed(packed.n_params, dtype)[0]  # the rule the runs will get (sizes Adam's second state)
        self.split = SplitEpochs.for_fit(packed, data, batch_size, dtype, rule)
        self.run_ahead = run_ahead and self.split is not None
        self.max_run = max(1, MAX_ORDER_BYTES // (8 * max(1, n_samples)))
        self.seconds_per_epoch = 3.0 * n_samples * packed.n_params / MULTIPLY_ADDS_PER_SECOND
        if self.split is None:
            self.work = packed.work(batch_size, data[0].shape[1], dtype, gather=True)
            self.grad = np.empty_like(theta)

    def train(self, n_wanted):
        """Train 1 .. n_wanted epochs; the loss of each (a list)."""
        est, opt = self.est, self.opt
        n_epochs = 1
        if self.run_ahead:
            n_epochs = max(1, min(n_wanted, self.max_run, int(RUN_SECONDS / max(self.seconds_per_epoch, 1e-9))))
        started = time.perf_counter()
        orders, before = self._draw_orders(n_epochs)
        packed_opt = opt.packed(self.packed.n_params, self.theta.dtype)
        alpha = float(est.alpha)
        if self.split is None:
            loss, t, lr_t = fit_epoch(
                self.theta, self.packed.layout, self.data, self.sample_idx, bool(est.shuffle), self.batch_size,
                alpha, self.clip, self.work, self.grad, packed_opt,
            )  # fmt: skip
            losses = [loss]
        else:
            epoch_lrs = np.asarray(opt.epoch_learning_rates(est.t_, self.data[5].shape[0], n_epochs), dtype=np.float64)
            stopping = (0.0, 0.0, 0.0, 0.0, 0.0)  # one epoch: the estimator applies the rule
            if self.run_ahead:
                stopping = (1.0, float(est.tol), float(est.n_iter_no_change), float(est.best_loss_),
                            float(est._no_improvement_count))  # fmt: skip
            losses, t, lr_t = self.split.epochs(
                self.theta, self.data, orders, epoch_lrs, stopping, alpha, self.clip, packed_opt
            )
            losses = [float(v) for v in losses]
            if len(losses) < n_epochs and before is not None:  # stopped early: undo the shuffles not used
                self._replay_shuffles(before, len(losses))
        opt.after_epoch(t, lr_t)
        self.seconds_per_epoch = (time.perf_counter() - started) / len(losses)
        return losses

    def _draw_orders(self, n_epochs):
        """The row orders of the next n_epochs epochs ((n_epochs, n), or (1, n) without shuffling), shuffling
        ``sample_idx`` in place as scikit-learn does each epoch; and what :meth:`_replay_shuffles` needs to
        draw fewer (None for one epoch)."""
        est = self.est
        if not est.shuffle:
            return self.sample_idx[None, :], None
        rng = est._random_state
        before = (rng.get_state(), self.sample_idx.copy()) if n_epochs > 1 else None
        orders = np.empty((n_epochs, self.sample_idx.shape[0]), dtype=np.int64)
        for e in range(n_epochs):
            # scikit-learn's shuffle(sample_idx, random_state=rng), without its checks: the same draws
            rng.shuffle(self.sample_idx)
            orders[e] = self.sample_idx
        return orders, before

    def _replay_shuffles(self, before, n_used):
        """Put the RandomState and ``sample_idx`` where n_used epochs' shuffles leave them."""
        state, sample_idx = before
        rng = self.est._random_state
        rng.set_state(state)
        for _ in range(n_used):
            rng.shuffle(sample_idx)
        self.sample_idx[:] = sample_idx
