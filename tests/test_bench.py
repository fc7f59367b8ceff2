"""The benchmark workloads W1-W6 (benchmarks/workloads.py) under pytest-benchmark.

Benchmarks are disabled by default (``--benchmark-disable`` in pyproject's addopts), so in CI
every test here runs its workload once, as a smoke test: fastbp must compute something sane,
and each installed peer must agree with fastbp on a small case where that is cheap.  Peers
that are not installed are skipped.  To time them::

    python -m pytest tests/test_bench.py -m bench --benchmark-enable --benchmark-autosave

One benchmark group per workload ("W1 xor-step", ...).  W5 runs only N ~ 1e2 unless benchmarks
are enabled; W6 starts one subprocess per test when disabled.
"""

import math

import numpy as np
import pytest

import fastbp

from benchmarks.workloads import (
    DTYPES,
    IMPLS,
    NUMGRAD_HIDDEN,
    STARTUP_CODE,
    WORKLOADS,
    digits_data,
    n_parameters,
    numgrad_sizes,
    setup_w1,
    setup_w2,
    setup_w3,
    setup_w4,
    setup_w5,
    setup_w6,
    synthetic_digits,
)

pytestmark = pytest.mark.bench

# Peers that do the same math as fastbp, compared number for number (rtol relative to the largest entry).
SAME_MATH = ("fastbp_1thread", "numpy", "torch", "jax", "python")
RTOL = {"float64": 1e-12, "float32": 2e-5}


def group(workload):
    return f"{workload} {WORKLOADS[workload]}"


def make(setup, *args, **kwargs):
    """setup(*args, **kwargs), or a skip when it needs a peer that is not installed."""
    try:
        return setup(*args, **kwargs)
    except NotImplementedError as exc:
        pytest.skip(str(exc))


def assert_same_params(peer, ref, rtol, what):
    """Every weight and bias of ``peer`` within rtol * max|ref| of ``ref`` (both (weights, biases) lists)."""
    got = np.concatenate([a.ravel() for arrays in peer for a in arrays])
    want = np.concatenate([a.ravel() for arrays in ref for a in arrays])
    assert got.shape == want.shape, f"{what}: {got.shape} parameters, fastbp has {want.shape}"
    err = float(np.max(np.abs(got - want)))
    scale = float(np.max(np.abs(want)))
    assert err <= rtol * scale, f"{what}: parameters differ from fastbp's by {err:.3e} (> {rtol:.0e} * {scale:.3e})"


def assert_loss(E, upper):
    assert isinstance(E, float), f"the loss should be a float, got {type(E).__name__}"
    assert math.isfinite(E) and 0.0 <= E < upper, f"implausible loss {E!r}"


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits when scikit-learn is installed, else synthetic data of the same shape."""
    try:
        return digits_data()
    except NotImplementedError:
        return synthetic_digits()


# ----------------------------------------------------------------------------- W1


@pytest.mark.parametrize("impl", IMPLS["W1"])
def test_w1_xor_step(benchmark, impl):
    benchmark.group = group("W1")
    run = make(setup_w1, impl)
    if impl in SAME_MATH:  # both have taken one step from the same weights in setup
        ref = setup_w1("fastbp")
        assert_same_params(run.params(), ref.params(), 1e-12, f"W1 {impl}")
        assert run() == pytest.approx(ref(), rel=1e-12, abs=0)
    E = benchmark(run)
    if impl == "numba_empty":
        assert E is None
    else:
        assert_loss(E, 0.5)


# ----------------------------------------------------------------------------- W2


@pytest.mark.parametrize("impl", IMPLS["W2"])
def test_w2_xor_train(benchmark, impl):
    benchmark.group = group("W2")
    if impl != "fastbp":  # 25 epochs (100 steps) from the same weights
        peer = make(setup_w2, impl, epochs=25)
        ref = setup_w2("fastbp", epochs=25)
        assert_same_params(peer.params(), ref.params(), 1e-10, f"W2 {impl}")
        assert peer() == pytest.approx(ref(), rel=1e-10)
    run = make(setup_w2, impl)
    E = benchmark(run)
    assert_loss(E, 0.25)
    if impl == "fastbp":
        assert E < 0.01, f"5000 epochs should learn XOR, mean loss {E}"


# ----------------------------------------------------------------------------- W3


@pytest.mark.parametrize("impl", IMPLS["W3"])
def test_w3_digits_epoch(benchmark, impl, digits):
    benchmark.group = group("W3")
    if impl in SAME_MATH:  # one epoch over 100 rows without shuffling: 3 batches of 32 and one of 4
        small = (digits[0][:100], digits[1][:100])
        peer = make(setup_w3, impl, data=small, shuffle=False)
        ref = setup_w3("fastbp", data=small, shuffle=False)
        assert_same_params(peer.params(), ref.params(), 1e-10, f"W3 {impl}")
    run = make(setup_w3, impl, data=digits)
    E = benchmark(run)
    assert_loss(E, 5.0)


# ----------------------------------------------------------------------------- W4


@pytest.mark.parametrize("impl", IMPLS["W4"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_w4_wide_step(benchmark, impl, dtype):
    benchmark.group = group("W4")
    if impl in SAME_MATH:  # one step (in setup) of an 8-16-16-3 network on 5 samples
        peer = make(setup_w4, impl, dtype, sizes=(8, 16, 16, 3), batch=5)
        ref = setup_w4("fastbp", dtype, sizes=(8, 16, 16, 3), batch=5)
        assert_same_params(peer.params(), ref.params(), RTOL[dtype], f"W4 {impl} {dtype}")
    run = make(setup_w4, impl, dtype)
    E = benchmark(run)
    if impl == "blas_bound":
        assert E is None
    else:
        assert_loss(E, 1e3)


# ----------------------------------------------------------------------------- W5


@pytest.mark.parametrize("impl", IMPLS["W5"])
@pytest.mark.parametrize("key", list(NUMGRAD_HIDDEN))
def test_w5_numgrad_ratio(benchmark, impl, key):
    benchmark.group = f"{group('W5')} N~{key}"  # the two methods at one N: their ratio is the result
    if key != "1e2" and benchmark.disabled:
        pytest.skip("W5 above N ~ 1e2 runs only with --benchmark-enable")
    benchmark.extra_info["n_params"] = n_parameters(numgrad_sizes(key))
    run = setup_w5(impl, key)
    if impl == "numerical_gradient" and key in ("1e4", "1e5"):  # ~1 s and ~15 s a call
        g = benchmark.pedantic(run, rounds=3, iterations=1)  # (one round has no spread: ratios of inf)
    else:
        g = benchmark(run)
    assert isinstance(g, fastbp.Gradients)
    assert np.all(np.isfinite(g.flat))
    if key == "1e2":  # the two gradients agree
        other = setup_w5("gradients" if impl == "numerical_gradient" else "numerical_gradient", key)()
        np.testing.assert_allclose(g.flat, other.flat, rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------- W6


@pytest.mark.parametrize("impl", IMPLS["W6"])
def test_w6_startup(benchmark, impl):
    benchmark.group = group("W6")
    run = make(setup_w6, impl, warm=False)
    out = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)  # one subprocess when disabled
    if impl.startswith("fastbp"):
        namespace = {}
        exec(STARTUP_CODE, namespace)  # the same work in this process
        assert float(out) == pytest.approx(float(namespace["history"].loss[-1]), rel=1e-12)
    else:
        assert out == ""
