"""Determinism and threads: per-network locks, GIL released in compiled code, no shared state."""

import os
import threading

import numpy as np
import pytest

import fastbp


def data(seed, n=64):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)), rng.normal(size=(n, 3))


@pytest.mark.parametrize("sizes", [[8, 6, 3], [8, 40, 40, 3]])  # specialised and generic engines
def test_two_threads_training_two_networks_equal_sequential(sizes):
    acts = ["tanh"] * (len(sizes) - 2) + ["identity"]
    jobs = [(fastbp.Network(sizes, acts, seed=s), *data(s)) for s in (1, 2)]
    sequential = [net.copy() for net, _, _ in jobs]
    for twin, (_, X, D) in zip(sequential, jobs):
        twin.fit(X, D, epochs=200, lr=0.01, batch_size=8, seed=5)

    def train(net, X, D):
        net.fit(X, D, epochs=200, lr=0.01, batch_size=8, seed=5)

    threads = [threading.Thread(target=train, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for twin, (net, _, _) in zip(sequential, jobs):
        assert net.flat_parameters.tobytes() == twin.flat_parameters.tobytes()


@pytest.mark.parametrize("sizes", [[8, 6, 3], [8, 40, 40, 3]])
def test_fit_on_one_network_from_two_threads_is_serialised(sizes):
    acts = ["tanh"] * (len(sizes) - 2) + ["identity"]
    net = fastbp.Network(sizes, acts, seed=0)
    (Xa, Da), (Xb, Db) = data(1), data(2)
    a_then_b = net.copy()
    a_then_b.fit(Xa, Da, epochs=100, lr=0.01, batch_size=8, seed=1)
    a_then_b.fit(Xb, Db, epochs=100, lr=0.01, batch_size=8, seed=2)
    b_then_a = net.copy()
    b_then_a.fit(Xb, Db, epochs=100, lr=0.01, batch_size=8, seed=2)
    b_then_a.fit(Xa, Da, epochs=100, lr=0.01, batch_size=8, seed=1)
    threads = [
        threading.Thread(target=net.fit, args=(Xa, Da), kwargs=dict(epochs=100, lr=0.01, batch_size=8, seed=1)),
        threading.Thread(target=net.fit, args=(Xb, Db), kwargs=dict(epochs=100, lr=0.01, batch_size=8, seed=2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = net.flat_parameters.tobytes()
    assert got in (a_then_b.flat_parameters.tobytes(), b_then_a.flat_parameters.tobytes())


def test_same_seed_is_bit_identical():
    X, D = data(0)
    runs = []
    for _ in range(2):
        net = fastbp.Network([8, 16, 3], ["relu", "identity"], seed=42)
        h = net.fit(X, D, epochs=20, lr=0.01, batch_size=5, seed=7)
        runs.append((net.flat_parameters.tobytes(), h.loss.tobytes()))
    assert runs[0] == runs[1]


def test_results_do_not_depend_on_the_blas_thread_count():
    """Large layers go through threaded BLAS: 1 or 2 threads give the same step to rounding."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, fastbp\n"
        "rng = np.random.default_rng(0)\n"
        "net = fastbp.Network([256, 512, 512, 10], ['relu', 'relu', 'identity'], seed=0)\n"
        "X = rng.normal(size=(128, 256)); D = rng.normal(size=(128, 10))\n"
        "net.step(X, D, lr=1e-3)\n"
        "import sys; sys.stdout.buffer.write(net.flat_parameters.tobytes())\n"
    )
    results = []
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300, check=True)
        results.append(np.frombuffer(out.stdout, dtype=np.float64))
    one, two = results
    assert one.shape == two.shape
    np.testing.assert_allclose(one, two, rtol=1e-12, atol=1e-14)


_WAKE_PROBE = """
import os, sys, threading, time
import numpy as np, numba, fastbp

def switches():
    # (thread, what) -> its context switches and CPU ticks, for every thread but this one (a thread that
    # spins on sched_yield with the core to itself is switched nowhere, but its ticks grow)
    counts, me = {}, threading.get_native_id()
    for tid in os.listdir("/proc/self/task"):
        if int(tid) != me:
            with open(f"/proc/self/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        counts[tid, line.split(":")[0]] = int(line.split()[1])
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            counts[tid, "ticks"] = int(fields[11]) + int(fields[12])  # utime + stime
    return counts

def parked():
    # the counts once no other thread has run for 0.2 s: every helper is asleep
    prev = switches()
    for _ in range(100):
        time.sleep(0.2)
        cur = switches()
        if cur == prev:
            return cur
        prev = cur
    sys.exit("the threads did not settle in 20 s")

@numba.njit
def one_product(a, b, c):
    np.dot(a, b, c)

rng = np.random.default_rng(0)
X, W = rng.random((360, 64)), rng.random((64, 128))
Z = np.empty((360, 128))
net = fastbp.Network([64, 128, 10], ["relu", "softmax"], loss="cross_entropy", seed=0)
D = np.eye(10)[rng.integers(0, 10, 360)]
one_product(X, W, Z)  # compiles both, and starts BLAS's threads
net.evaluate(X, D)
woken = {}
for name, call in (("evaluate", lambda: net.evaluate(X, D)), ("control", lambda: one_product(X, W, Z))):
    before = parked()
    for _ in range(10):
        call()
    after = parked()
    woken[name] = sorted({tid for (tid, _), n in after.items() if n != before.get((tid, _))})
print(len(woken["evaluate"]), len(woken["control"]))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread states from Linux's /proc")
def test_evaluate_wakes_no_blas_thread():
    """OpenBLAS runs a product of more than ~1e6 multiply-adds on several threads, which then spin for
    ~0.1 s and slow a threaded fit started in that time.  ``evaluate`` on 360 rows of a 64-128-10
    network (2.9 M multiply-adds in its first layer) goes to BLAS in row blocks below that size, so it
    wakes none of the parked BLAS threads: no thread but the caller is switched in or out or uses CPU time
    (counted in /proc) while it runs ten times.  The control, the same product in one call, wakes at least one."""
    import subprocess
    import sys

    # dask's LocalCluster (earlier tests) sets OPENBLAS_NUM_THREADS=1 and the like in this process's environment
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _WAKE_PROBE], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    woken_by_evaluate, woken_by_control = (int(v) for v in out.stdout.split())
    if woken_by_control == 0:
        pytest.skip("this BLAS runs a 360 x 64 x 128 product on one thread: nothing to compare with")
    assert woken_by_evaluate == 0
