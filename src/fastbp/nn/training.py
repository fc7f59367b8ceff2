"""One ``fit`` run: its buffers and state, run in one compiled call or epoch by epoch, on one
thread (``fastbp.engine._serial``, or the code generated for small networks) or on several
(``fastbp.engine._threaded``).
"""

import functools

import numpy as np

from fastbp.engine import _serial as _engine
from fastbp.engine import _threaded as _parallel
from fastbp.engine import _threaded_pass, _wide
from fastbp.errors import DivergenceError
from fastbp.kernels import _sync
from fastbp.nn.history import History
from fastbp.nn.optimizers import make_optimizer
from fastbp.nn.validation import (
    as_inputs_and_targets,
    as_pair,
    check_callbacks,
    check_finite,
    check_lr_factors,
    check_min_delta,
    check_positive_int,
    check_positive_number,
)


def _seed_bits(seed):
    """The 63 random bits that start fit's shuffling generator, from ``seed`` as numpy's default_rng takes it."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return _seed_bits_of_int(int(seed))
    return np.random.default_rng(seed).integers(0, 2**63 - 1, dtype=np.int64)


@functools.lru_cache(maxsize=256)
def _seed_bits_of_int(seed):
    # default_rng costs ~8 us a call, as much as a small network's epoch; the bits of an int seed never change
    return np.random.default_rng(seed).integers(0, 2**63 - 1, dtype=np.int64)


def fit(
    net, X, D, epochs, lr, batch_size, shuffle, seed, trainable, optimizer, validation_data, patience, min_delta,
    lr_schedule, callbacks,
):  # fmt: skip
    """:meth:`fastbp.Network.fit` (see there): every argument checked before the network or the optimizer is
    touched, then one compiled call for the whole run, or one an epoch with validation, early stopping or
    callbacks between them."""
    X2, D2, _ = net._validate_xd(X, D, check_values=False)  # X and D finite: checked by the run
    epochs = check_positive_int(epochs, "epochs")
    if lr is not None:
        lr = check_positive_number(lr, "lr")
    opt = make_optimizer(optimizer, lr)
    batch_size = min(check_positive_int(batch_size, "batch_size"), X2.shape[0])
    shuffle = bool(shuffle)
    frozen = frozen_mask(net, trainable)
    epoch_lrs = np.full(epochs, opt.lr)
    if lr_schedule is not None:
        epoch_lrs *= check_lr_factors(lr_schedule, epochs)
    validation = None
    if validation_data is not None:
        Xv, Dv = as_pair(validation_data, "validation_data", "(Xv, Dv)")
        n_in, n_out = net.sizes[0], net.sizes[-1]
        validation = as_inputs_and_targets(Xv, Dv, n_in, n_out, net.dtype, loss=net.loss, names=("Xv", "Dv"))[:2]
    if patience is not None:
        patience = check_positive_int(patience, "patience")
        check_min_delta(min_delta)
    callbacks = check_callbacks(callbacks)

    classify = net.loss != "squared_error"
    unused = opt.state1 is None
    opt.bind(net.n_params, net.dtype)  # last: every argument is checked before the optimizer is touched
    run = _FitRun(net, X2, D2, epoch_lrs, batch_size, shuffle, seed, opt, frozen)
    with net._passes.lock:
        try:
            if validation_data is None and patience is None and not callbacks:
                run.epochs(0, epochs)
                history = run.history(epochs, classify)
            else:
                history = fit_per_epoch(net, run, epochs, classify, validation, patience, min_delta, callbacks)
        except ValueError:  # X or D not finite, found before the first step: nothing was trained
            if unused and opt.step_count == 0:
                opt.reset()  # the optimizer has no state, as before the call
            raise
    net.optimizer = opt
    return history


class _FitRun:
    """The buffers and state of one ``fit`` call, so that it can run in one compiled call or epoch by epoch."""

    def __init__(self, net, X, D, epoch_lrs, batch_size, shuffle, seed, opt, frozen):
        self.net, self.X, self.D = net, X, D
        self.n = X.shape[0]
        self.epoch_lrs = epoch_lrs
        # the compiled update multiplies lr (in the network's dtype, as step does) by the gradient
        self.epoch_lrs_dtype = epoch_lrs.astype(net.dtype)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.opt = opt
        self.frozen = frozen
        seed_bits = _seed_bits(seed) if shuffle else 0
        self.rng_state = np.array([seed_bits], dtype=np.uint64)
        self.order = np.arange(self.n, dtype=np.int64)
        epochs = self.n_epochs = len(epoch_lrs)
        self.losses = np.zeros(epochs)
        self.correct = np.zeros(epochs, dtype=np.int64)
        self.step_count = np.array([opt.step_count], dtype=np.int64)
        self.backup_valid = np.zeros(1, dtype=np.int64)
        self.inputs_checked = False
        self.small = None
        if getattr(opt, "is_plain", lambda: False)():
            self.small = net._passes.small_module()
        if self.small is not None:
            # the generated code takes one flag per layer (1: frozen), from the first parameter of each
            w_offsets = net._layout.w_offsets
            self.frozen_layers = np.array([frozen[w] if frozen.size else 0 for w in w_offsets], dtype=np.uint8)
        self.shared = None
        self.wide = None
        if self.small is not None:
            self.backup = net._backup
        else:
            self.backup = np.empty(net.n_params + opt.state1.shape[0] + opt.state2.shape[0], dtype=net.dtype)
            self.hyper = opt.hyper()
            self.ws = net._passes.work(batch_size)
            bounds = _parallel.thread_bounds(net._layout, batch_size)
            if bounds is not None:
                self.shared = _SharedRun.for_run(net, opt, frozen, batch_size, bounds)
            else:
                n_threads = _parallel.wide_threads(net._layout, batch_size, net.dtype)
                if n_threads is not None:
                    self.wide = _WideRun.for_run(net, n_threads)

    def check_inputs(self):
        """ValueError naming the first NaN or infinite entry of X or D."""
        check_finite(self.X, "X")
        check_finite(self.D, "D")

    def epochs(self, start, stop):
        """Train epochs start..stop-1 (indices into this run's arrays); DivergenceError on a non-finite loss.

        The first call checks that X and D are finite (ValueError, with nothing changed, if not): on
        the threaded path inside the compiled run, while the helper threads start, else here."""
        net = self.net
        lrs = self.epoch_lrs_dtype[start:stop]
        losses = self.losses[start:stop]
        check = not self.inputs_checked
        self.inputs_checked = True
        if check and self.shared is None:
            self.check_inputs()
        if self.small is not None:
            status = self.small.fit_epochs(
                net._theta, self.X, self.D, lrs, self.batch_size, self.shuffle, self.rng_state,
                self.backup, self.backup_valid, self.order, losses, self.frozen_layers,
            )  # fmt: skip
            self.opt.step_count += (stop - start) * -(-self.n // self.batch_size) if status < 0 else 0
        elif self.shared is not None and self.shared.epochs(
            self, lrs, losses, self.correct[start:stop], last=stop == self.n_epochs, check_inputs=check
        ):
            status = self.shared.status
            self.opt.step_count = int(self.step_count[0])
        elif self.wide is not None and self.wide.epochs(self, lrs, losses, self.correct[start:stop]):
            status = self.wide.status
            self.opt.step_count = int(self.step_count[0])
        else:
            if check and self.shared is not None:  # the threads were busy: the run goes on here
                self.check_inputs()
            ws = self.ws
            declined = self.shared is not None or self.wide is not None
            with _parallel.blas_alone(declined or _parallel.get_num_threads() < 2 or _parallel.contended()):
                status = _engine.fit_epochs(
                    net._theta, net._layout.packed, self.X, self.D, lrs, self.batch_size, self.shuffle,
                    self.rng_state, self.opt.code, self.hyper, self.opt.state1, self.opt.state2, self.step_count,
                    self.frozen, ws.work, net._grad, self.backup, self.backup_valid, ws.x_batch, ws.d_batch,
                    self.order, losses, self.correct[start:stop],
                )  # fmt: skip
            self.opt.step_count = int(self.step_count[0])
        if status >= 0:
            n_batches = -(-self.n // self.batch_size)
            epoch, batch = divmod(int(status), n_batches)
            epoch += start
            raise DivergenceError(epoch, batch, self.history(epoch, net._loss != "squared_error"))

    def history(self, epochs, classify):
        return History(
            self.losses[:epochs].copy(),
            accuracy=self.correct[:epochs] / self.n if classify else None,
            lr=self.epoch_lrs[:epochs].copy(),
        )


class _ThreadState:
    """What each thread of a run on several threads keeps for itself: its generator state, shuffled
    order, step count and backup flag (rows a cache line apart: the threads write theirs every step,
    and on one line they would take it from each other each time), equal at the start of every call."""

    def __init__(self, n_threads):
        self.n_threads = n_threads
        self.sync = np.zeros(_sync.SYNC_LENGTH, dtype=np.int64)
        self.rng = np.zeros((n_threads, 8), dtype=np.uint64)
        self.orders = np.zeros((n_threads, 0), dtype=np.int64)
        self.counts = np.zeros((n_threads, 8), dtype=np.int64)
        self.valid = np.zeros((n_threads, 8), dtype=np.int64)
        self.status = -1

    def load(self, run):
        """Every thread's copy of run's order, generator state, step count and backup flag."""
        if self.orders.shape[1] != run.n + 8:
            self.orders = np.empty((self.n_threads, run.n + 8), dtype=np.int64)  # rows padded, as above
        self.orders[:, : run.n] = run.order
        self.rng[:] = run.rng_state[0]
        self.counts[:] = run.step_count[0]
        self.valid[:] = run.backup_valid[0]

    def store(self, run):
        """Thread 0's copies back into run (every thread's are equal)."""
        run.order[:] = self.orders[0, : run.n]
        run.rng_state[0] = self.rng[0, 0]
        run.step_count[0] = self.counts[0, 0]
        run.backup_valid[0] = self.valid[0, 0]


class _SharedRun(_ThreadState):
    """The packed buffers of fit runs on several threads (see ``fastbp.engine._threaded``), kept by the network
    for the next run with the same batch size and kind of optimizer state."""

    def __init__(self, net, batch_size, bounds, has_state1, has_state2, has_frozen):
        super().__init__(len(bounds) - 1)
        layout = net._layout
        n_threads = len(bounds) - 1
        n_in, h, n_out = (int(s) for s in layout.sizes)
        self.key = (batch_size, tuple(bounds), has_state1, has_state2, has_frozen)
        self.bounds = bounds
        self.offsets = _threaded_pass.block_offsets(layout.sizes, bounds)
        size = int(self.offsets[-1])
        dtype = net.dtype
        self.params = np.zeros(size, dtype=dtype)
        self.grad = np.zeros(size, dtype=dtype)
        self.state1 = np.zeros(size if has_state1 else 0, dtype=dtype)
        self.state2 = np.zeros(size if has_state2 else 0, dtype=dtype)
        self.backup = np.zeros(size + self.state1.shape[0] + self.state2.shape[0], dtype=dtype)
        self.frozen = np.zeros(size if has_frozen else 0, dtype=np.bool_)
        widest = max(int(bounds[t + 1] - bounds[t]) for t in range(n_threads))
        per_thread = batch_size * (n_in + 4 * n_out + 3 * widest) + n_out * widest + 8
        self.scratch = np.zeros((n_threads, per_thread), dtype=dtype)
        self.shares = np.zeros((2, n_threads, batch_size * n_out + 8), dtype=dtype)

    @classmethod
    def for_run(cls, net, opt, frozen, batch_size, bounds):
        key = (batch_size, tuple(bounds), opt.state1.shape[0] > 0, opt.state2.shape[0] > 0, frozen.shape[0] > 0)
        cached = net._shared_run
        if cached is None or cached.key != key:
            cached = net._shared_run = cls(net, *key[:1], bounds, *key[2:])
        return cached

    def epochs(self, run, lrs, losses, correct, last, check_inputs):
        """Train run's epochs on the helper threads; False (nothing done) if another run has them.
        ``last``: no epochs of the run follow (the divergence backup then need not be unpacked).
        ``check_inputs``: check first that X and D are finite (ValueError, and nothing changed, if not)."""
        n_threads = len(self.bounds) - 1
        helpers = _parallel.acquire_helpers(n_threads - 1)
        if helpers is None:
            return False
        net, opt = run.net, run.opt
        layout = net._layout.packed
        try:
            if self.frozen.shape[0]:
                _threaded_pass.pack(run.frozen, layout, self.bounds, self.offsets, self.frozen)
            self.load(run)

            pack_backup = bool(run.backup_valid[0])
            split = (self.bounds, self.offsets)
            net_run = (net._theta, opt.state1, opt.state2, run.backup, pack_backup, not last)

            def args_of(t, entered_before, max_spins):
                team = (t, n_threads, self.sync, helpers.control, entered_before, max_spins)
                data = (
                    run.X,
                    run.D,
                    lrs,
                    run.batch_size,
                    run.shuffle,
                    self.rng[t],
                    self.orders[t, : run.n],
                    check_inputs,
                )
                packed = (
                    self.params, self.state1, self.state2, self.grad, self.backup, self.valid[t], self.scratch[t],
                    self.shares, self.frozen,
                )  # fmt: skip
                opt_state = (opt.code, run.hyper, self.counts[t])
                return team, layout, split, data, opt_state, packed, net_run, (losses, correct)

            bad = _sync.INPUTS_BAD
            self.sync[bad : bad + 2] = 0  # no thread of this run has started yet
            entries = (_parallel._helper_entry, _threaded_pass.fit_epochs_share)
            self.status = _parallel.run_team(helpers, *entries, args_of, n_threads, self.sync, net.dtype)
        finally:
            helpers.lock.release()
        if self.status == _threaded_pass.BAD_INPUT:
            run.check_inputs()
            raise RuntimeError("the threads of fit found a NaN or an infinity in X or D that the check did not")
        self.store(run)
        return True


def _at_least(buffer, entries, dtype):
    """``buffer`` if it holds at least ``entries`` values of ``dtype``, else a new one of zeros that does."""
    if buffer.shape[0] >= entries and buffer.dtype == dtype:
        return buffer
    return np.zeros(entries, dtype=dtype)


class _WideRun(_ThreadState):
    """Per-thread state of fit runs on several threads for any depth (``fastbp.engine._wide``), kept by the
    network; the parameters, optimizer state and work buffers are the run's own, shared by the threads."""

    def __init__(self, n_threads):
        super().__init__(n_threads)
        self.partials = np.zeros((2, n_threads * _wide.PARTIAL_STRIDE), dtype=np.float64)
        self.part_z = np.zeros(0)
        self.grad_blocks = np.zeros(0)

    @classmethod
    def for_run(cls, net, n_threads):
        cached = net._wide_run
        if cached is None or cached.n_threads != n_threads:
            cached = net._wide_run = cls(n_threads)
        return cached

    def epochs(self, run, lrs, losses, correct):
        """Train run's epochs on the helper threads; False (nothing done) if another run has them."""
        helpers = _parallel.acquire_helpers(self.n_threads - 1)
        if helpers is None:
            return False
        net, opt, ws = run.net, run.opt, run.ws
        try:
            self.load(run)
            layout = net._layout.packed
            data = (run.X, run.D, lrs, run.batch_size, run.shuffle)
            opt_state = (opt.code, run.hyper, opt.state1, opt.state2)
            sizes, n_threads = net._sizes, self.n_threads
            rows = min(run.batch_size, _wide.MIN_SAMPLE_SPLIT - 1)
            # see _wide.partial_product
            self.part_z = _at_least(self.part_z, 2 * n_threads * rows * max(sizes[1:]), net.dtype)
            # one block a thread, of its largest share of a layer's W (ceil(k / T) rows) or b: see _wide.update_layer
            share = max(max(1, -(-k // n_threads)) * u for k, u in zip(sizes[:-1], sizes[1:]))
            self.grad_blocks = _at_least(self.grad_blocks, n_threads * share, net.dtype)
            bufs = (net._theta, self.grad_blocks, run.backup)
            buffers = (ws.work, ws.x_batch, ws.d_batch, self.partials, self.part_z)

            def args_of(t, entered_before, max_spins):
                team = (t, self.n_threads, self.sync, helpers.control, entered_before, max_spins)
                return (
                    team, layout, (*data, self.rng[t, :1], self.orders[t, : run.n]),
                    (*opt_state, self.counts[t, :1], run.frozen), (*bufs, self.valid[t, :1], *buffers),
                    (losses, correct),
                )  # fmt: skip

            entries = (_parallel._wide_helper_entry, _wide.fit_epochs_wide)
            self.status = _parallel.run_team(helpers, *entries, args_of, self.n_threads, self.sync, net.dtype)
        finally:
            helpers.lock.release()
        self.store(run)
        return True


def fit_per_epoch(net, run, epochs, classify, validation, patience, min_delta, callbacks):
    """The epochs of ``run`` one compiled call at a time: validation loss, early stopping and callbacks
    between them (``net``'s lock held, released around each callback); the History."""
    val_loss, val_acc = [], []
    best, best_epoch, best_theta, waited = np.inf, None, None, 0
    for epoch in range(epochs):
        run.epochs(epoch, epoch + 1)
        logs = {"loss": float(run.losses[epoch]), "lr": float(run.epoch_lrs[epoch])}
        if classify:
            logs["accuracy"] = run.correct[epoch] / run.n
        if validation is not None:
            E_val, acc_val = net._passes.evaluate(*validation)
            val_loss.append(E_val)
            logs["val_loss"] = E_val
            if classify:
                val_acc.append(acc_val)
                logs["val_accuracy"] = acc_val
        stop = False
        if patience is not None:
            monitored = logs["val_loss"] if validation is not None else logs["loss"]
            if monitored < best - min_delta:
                best, best_epoch, waited = monitored, epoch, 0
                best_theta = net._theta.copy()
            else:
                waited += 1
                stop = waited >= patience
        for cb in callbacks:
            net._passes.lock.release()  # a callback may use the network
            try:
                stop = bool(cb(net, epoch, dict(logs))) or stop
            finally:
                net._passes.lock.acquire()
        if stop:
            epochs = epoch + 1
            break
    if patience is not None and best_theta is not None:
        net._theta[...] = best_theta
    history = run.history(epochs, classify)
    if validation is not None:
        history.val_loss = np.asarray(val_loss)
        history.val_accuracy = np.asarray(val_acc) if classify else None
    history.best_epoch = best_epoch
    return history


def frozen_mask(net, trainable):
    """bool (n_params,) marking the parameters of layers not trained; length 0 when all are trained."""
    if trainable is None:
        return np.zeros(0, dtype=np.bool_)
    flags = list(trainable)
    n_layers = len(net._activations)
    if len(flags) != n_layers or not all(isinstance(f, (bool, np.bool_)) for f in flags):
        raise ValueError(f"trainable must be {n_layers} booleans, one per non-input layer, got {trainable!r}")
    if all(flags):
        return np.zeros(0, dtype=np.bool_)
    frozen = np.zeros(net.n_params, dtype=np.bool_)
    for layer, flag in enumerate(flags):
        if not flag:
            start = int(net._layout.w_offsets[layer])
            frozen[start : int(net._layout.b_offsets[layer]) + net._sizes[layer + 1]] = True
    return frozen
