"""pytest-benchmark: training the digits classifier, fastbp against scikit-learn (issue 6).

Disabled by default like every benchmark (one run each in CI, as a smoke test); time with
``python -m pytest tests/test_bench_digits.py --benchmark-enable``.
"""

import pytest

from benchmarks.digits_classifier import DTYPES, ESTIMATORS, IMPLS, LBFGS_ITERATIONS, setup

pytestmark = pytest.mark.bench


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", IMPLS)
def test_digits_classifier(benchmark, impl, dtype):
    pytest.importorskip("sklearn")
    benchmark.group = f"digits classifier: 50 epochs, {dtype}"
    run = setup(impl, epochs=50 if benchmark.enabled else 5, dtype=dtype)
    score = benchmark.pedantic(run, rounds=5 if benchmark.enabled else 1, iterations=1)  # times the training
    accuracy = score()
    benchmark.extra_info["test_accuracy"] = accuracy
    assert accuracy > (0.97 if benchmark.enabled else 0.85)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("impl", ESTIMATORS)
def test_digits_classifier_lbfgs(benchmark, impl, dtype):
    pytest.importorskip("sklearn")
    benchmark.group = f"digits classifier: {LBFGS_ITERATIONS} L-BFGS iterations, {dtype}"
    run = setup(impl, epochs=LBFGS_ITERATIONS if benchmark.enabled else 10, dtype=dtype, solver="lbfgs")
    score = benchmark.pedantic(run, rounds=5 if benchmark.enabled else 1, iterations=1)
    accuracy = score()
    benchmark.extra_info["test_accuracy"] = accuracy
    assert accuracy > (0.95 if benchmark.enabled else 0.5)
