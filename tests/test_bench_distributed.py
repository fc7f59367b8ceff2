"""pytest-benchmark: fastbp.distributed on LocalClusters of 1 and 2 worker processes (issue P6).

Disabled by default like every benchmark: in CI each test runs once as a smoke test, on a small
sweep.  To time them (about a minute)::

    python -m pytest tests/test_bench_distributed.py --benchmark-enable

``benchmarks/distributed_compare.py`` prints the same measurements with the speedup and the overhead.
"""

import pytest

from benchmarks.distributed_compare import (
    SWEEP_EPOCHS,
    SWEEP_SEEDS,
    setup_sweep,
    setup_sync,
    start_cluster,
    stop_cluster,
)

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def client(request):
    cluster, client = start_cluster(request.param)
    client.wait_for_workers(request.param)
    yield client
    stop_cluster(cluster, client)


def test_sweep_throughput(benchmark, client):
    n_workers = len(client.nthreads())
    benchmark.group = "distributed: sweep of the frozen-hidden experiment"
    n_seeds, epochs = (SWEEP_SEEDS, SWEEP_EPOCHS) if benchmark.enabled else (20, 500)
    run = setup_sweep(client, n_seeds, epochs)
    rate = benchmark.pedantic(run, rounds=5 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info.update(n_workers=n_workers, networks=2 * n_seeds, networks_per_second=rate)
    assert rate > 0


def test_sync_step(benchmark, client):
    """Per-step time of sync mode with 2 shards (on 1 worker both shards' actors share it)."""
    benchmark.group = "distributed: sync-mode step"
    measure = setup_sync(client)
    sample = benchmark.pedantic(measure, rounds=5 if benchmark.enabled else 1, iterations=1)
    benchmark.extra_info.update(
        n_workers=len(client.nthreads()), step_ms=1e3 * sample["cluster"], local_step_ms=1e3 * sample["local"],
        overhead_ms=1e3 * (sample["cluster"] - sample["local"]),
    )  # fmt: skip
    assert sample["cluster"] > sample["local"] > 0
