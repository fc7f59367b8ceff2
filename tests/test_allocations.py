"""Steady state allocates nothing inside the kernels: checked with numba's runtime statistics.

NUMBA_NRT_STATS must be set before numba is imported, hence the subprocess.

numba itself allocates one small MemInfo record for every array argument it
unboxes when Python calls a compiled function.  So the test compares each
method's allocations with those of an empty compiled function called with the
very same arguments (every compiled call a method makes, the finiteness checks
of its validation included): any difference would be an allocation inside
fastbp's kernels.  And ``fit`` must allocate the same for 2 epochs as for 50,
on one thread and on two (both threaded engines).
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import time

    import numba
    import numpy as np
    from numba.core.runtime import rtsys
    import fastbp
    from fastbp.engine import _serial as _engine
    from fastbp.engine import _threaded as _parallel
    import fastbp.nn.passes as passes_module
    import fastbp.nn.training as training_module
    import fastbp.nn.validation as validation_module

    def allocations():
        stats = rtsys.get_allocation_stats()
        return stats.alloc - stats.free, stats.alloc

    @numba.njit
    def empty(*args):
        return 0

    recorded = []  # the arguments of every compiled call since the last reset

    class Recording:
        # stands in for a module of compiled functions, recording the arguments of each call

        def __init__(self, module):
            self.module = module

        def __getattr__(self, name):
            return recording(getattr(self.module, name))

    def recording(function):
        def wrapper(*args):
            recorded.append(args)
            return function(*args)

        return wrapper

    passes_module._engine = Recording(_engine)  # the network's compiled calls
    training_module._engine = Recording(_engine)  # fit's run (the network's other compiled calls: above)
    validation_module.all_finite_flat = recording(validation_module.all_finite_flat)

    def unboxing(calls):
        # what numba allocates to unbox the arguments of these calls (an empty function, same arguments)
        return sum(allocated_by(lambda: empty(*args))[0] for args in calls)

    def allocated_by(call):
        before = allocations()
        call()
        after = allocations()
        return after[1] - before[1], after[0] - before[0]

    rng = np.random.default_rng(0)
    cases = [
        ([2, 2, 1], ["sigmoid", "sigmoid"], 1),
        ([16, 64, 64, 4], ["relu", "tanh", "identity"], 64),
        ([10, 200, 200, 1], ["tanh", "tanh", "identity"], 16),  # one call a product (passes.forward_blas)
    ]
    for sizes, acts, n in cases:
        for dtype in (np.float64, np.float32):
            net = fastbp.Network(sizes, acts, dtype=dtype, seed=0)
            if net._passes.small_module() is not None:  # the architecture-specialised code of small networks
                net._passes.small = Recording(net._passes.small_module())
            X = rng.normal(size=(n, sizes[0])).astype(dtype)
            D = rng.normal(size=(n, sizes[-1])).astype(dtype)
            E, g = net.gradients(X, D)
            net.step(X, D, lr=0.01)
            net.fit(X, D, epochs=2, lr=0.01, batch_size=8)
            label = f"{sizes} {np.dtype(dtype).name}"
            for method, call in [
                ("step", lambda: net.step(X, D, lr=0.01)),
                ("gradients(out=g)", lambda: net.gradients(X, D, out=g)),
                ("fit 2 epochs", lambda: net.fit(X, D, epochs=2, lr=0.01, batch_size=8)),
            ]:
                call()
                for args in recorded:
                    empty(*args)  # compile the probe for these argument types
                recorded.clear()
                got, leaked = allocated_by(call)
                boundary = unboxing(list(recorded))
                print(label, method, "allocations:", got, "argument unboxing:", boundary, "not freed:", leaked)
                assert got == boundary, (label, method, got, boundary)
                assert leaked == 0, (label, method, leaked)
            short, _ = allocated_by(lambda: net.fit(X, D, epochs=2, lr=0.01, batch_size=8))
            long, _ = allocated_by(lambda: net.fit(X, D, epochs=50, lr=0.01, batch_size=8))
            print(label, "fit allocations, 2 epochs:", short, "50 epochs:", long)
            assert short == long
    # fit on two threads (fastbp.engine._threaded): its compiled calls are not recorded above, so check that
    # 50 epochs allocate what 2 do, and that all of it is freed
    fastbp.set_num_threads(2)
    _parallel.CONTENDED_WAIT_SHARE = float("inf")  # this test checks the threaded path, even on a busy machine
    for dtype in (np.float64, np.float32):
        net = fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], dtype=dtype, seed=0)
        X = rng.normal(size=(100, 64)).astype(dtype)
        D = rng.random(size=(100, 10)).astype(dtype)
        for optimizer in (None, "adam"):
            kwargs = dict(lr=0.01, batch_size=32, optimizer=optimizer)
            for _ in range(2):  # compile (in both threads), then run once more
                net.fit(X, D, epochs=2, **kwargs)
                time.sleep(0.1)
            assert net._shared_run is not None
            # the helper's call returns (and numba frees what it unboxed) up to ~1 ms after fit: wait for it
            short, short_leak = allocated_by(lambda: (net.fit(X, D, epochs=2, **kwargs), time.sleep(0.1)))
            long, long_leak = allocated_by(lambda: (net.fit(X, D, epochs=50, **kwargs), time.sleep(0.1)))
            print("threaded", np.dtype(dtype).name, optimizer, "fit allocations, 2 epochs:", short, "50 epochs:", long)
            assert short == long, (short, long)
            assert short_leak == long_leak == 0, (short_leak, long_leak)
    # the wide fit (fastbp.engine._wide): split by units (batch 8) and by samples (batch 64)
    _parallel.MIN_SHARE_MULTIPLY_ADDS = float("inf")
    for dtype in (np.float64, np.float32):
        net = fastbp.Network([16, 400, 330, 4], ["relu", "tanh", "identity"], dtype=dtype, seed=0)
        X = rng.normal(size=(128, 16)).astype(dtype)
        D = rng.random(size=(128, 4)).astype(dtype)
        for batch_size in (8, 64):
            kwargs = dict(lr=1e-3, batch_size=batch_size, optimizer="adam")
            for _ in range(2):
                net.fit(X, D, epochs=2, **kwargs)
                time.sleep(0.1)
            assert net._wide_run is not None
            short, short_leak = allocated_by(lambda: (net.fit(X, D, epochs=2, **kwargs), time.sleep(0.1)))
            long, long_leak = allocated_by(lambda: (net.fit(X, D, epochs=20, **kwargs), time.sleep(0.1)))
            print("wide", np.dtype(dtype).name, batch_size, "fit allocations, 2 epochs:", short, "20 epochs:", long)
            assert short == long, (short, long)
            assert short_leak == long_leak == 0, (short_leak, long_leak)
    print("OK")
    """
)


def test_step_gradients_and_fit_make_no_numba_allocations():
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    print(result.stdout)


SKLEARN_SCRIPT = textwrap.dedent(
    """
    import numba
    import numpy as np
    import scipy.sparse as sp
    from numba.core.runtime import rtsys

    from fastbp.integrations.sklearn import _compiled, model

    @numba.njit
    def empty(*args):
        return 0

    def allocations(function, args):
        before = rtsys.get_allocation_stats().alloc
        function(*args)
        return rtsys.get_allocation_stats().alloc - before

    rng = np.random.default_rng(0)
    X, D, weights = rng.normal(size=(300, 12)), np.eye(4)[rng.integers(0, 4, 300)], rng.uniform(0.5, 2.0, 300)
    for sparse in (False, True):
        for rule in (_compiled.ADAM_RULE, _compiled.SGD_RULE):
            for dtype in (np.float64, np.float32):
                sizes = [12, 40, 30, 4]
                packed = model.PackedLayout(sizes, "relu", "softmax")
                theta = model.initial_parameters(np.random.RandomState(0), sizes, "relu", dtype)
                data = model.as_data(sp.csr_matrix(X) if sparse else X, D, weights, dtype)
                work = packed.work(32, 12, dtype, gather=True)
                grad = np.empty_like(theta)
                order = rng.permutation(300).astype(np.int64)
                opt = (rule, 1e-3, 0.9, True, 0.9, 0.999, 1e-8, 0, np.zeros_like(theta), np.zeros_like(theta))
                args = (theta, packed.layout, data, order, True, 32, 1e-4, 1e-7, work, grad, opt)
                _compiled.fit_epoch(*args)
                empty(*args)
                extra = allocations(_compiled.fit_epoch, args) - allocations(empty, args)
                assert extra == 0, (sparse, rule, dtype, extra)

    # the epochs split by hidden units, on two threads and on one: the same for 2 epochs as for 20
    from fastbp.engine import _threaded
    from fastbp.integrations.sklearn import split_run

    _threaded.set_num_threads(2)
    for alone in (False, True):
        _threaded._one_thread_until = _threaded.time.monotonic() + 1e6 if alone else -np.inf
        for rule in (_compiled.ADAM_RULE, _compiled.SGD_RULE):
            for dtype in (np.float64, np.float32):
                sizes = [12, 64, 4]
                packed = model.PackedLayout(sizes, "relu", "softmax")
                theta = model.initial_parameters(np.random.RandomState(0), sizes, "relu", dtype)
                data = model.as_data(X, D, weights, dtype)
                split = split_run.SplitEpochs(packed, np.array([0, 32, 64]), 32, dtype, rule)
                opt = (rule, 1e-3, 0.9, True, 0.9, 0.999, 1e-8, 0, np.zeros_like(theta), np.zeros_like(theta))
                order = rng.permutation(300).astype(np.int64)[None, :]

                def run(k):
                    lrs = np.full(k, 1e-3)
                    split.epochs(theta, data, order, lrs, (0.0, 0.0, 0.0, 0.0, 0.0), 1e-4, 1e-7, opt)

                run(1)
                assert allocations(run, (2,)) == allocations(run, (20,)), (alone, rule, dtype)
    print("ok")
    """
)


def test_sklearn_estimators_epoch_makes_no_numba_allocations():
    """An epoch of the estimators' compiled training (10 mini-batches, each with its optimizer step; dense and
    sparse X, Adam and SGD, float64 and float32) allocates nothing beyond what unboxing its arguments does;
    a run of epochs split by hidden units allocates the same for 2 epochs as for 20 (two threads and one)."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    command = [sys.executable, "-c", SKLEARN_SCRIPT]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


JIT_SCRIPT = textwrap.dedent(
    """
    import numba
    import numpy as np
    from numba.core.runtime import rtsys

    import fastbp
    from fastbp import jit

    @numba.njit
    def calls(model, X, D, Y, grad, k):
        for _ in range(k):
            jit.forward(model, X, Y)
            jit.loss_and_gradient(model, X, D, grad)
            jit.backward(model, X, Y, grad)
            jit.sgd_step(model, X, D, 0.01)

    def allocations(k, args):
        before = rtsys.get_allocation_stats().alloc
        calls(*args, k)
        return rtsys.get_allocation_stats().alloc - before

    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        net = fastbp.Network([12, 40, 30, 4], ["relu", "tanh", "softmax"], loss="cross_entropy", dtype=dtype)
        X = rng.normal(size=(32, 12)).astype(dtype)
        D = np.eye(4, dtype=dtype)[rng.integers(0, 4, 32)]
        args = (net.to_jit(max_batch=32), X, D, np.empty((32, 4), dtype), np.empty(net.n_params, dtype))
        calls(*args, 1)
        assert allocations(1, args) == allocations(50, args), dtype
    print("ok")
    """
)


def test_jit_calls_make_no_numba_allocations():
    """fastbp.jit's four functions, called from compiled code, allocate the same for 1 and 50 rounds."""
    env = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run([sys.executable, "-c", JIT_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr
