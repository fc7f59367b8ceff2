"""asv: scaling out with Dask (issue P6) -- sweep throughput on 1 and 2 workers, sync-mode per-step overhead.

Each benchmark starts its own LocalCluster (worker processes, one thread each) in ``setup``; the
workloads are defined in ``distributed_compare.py``.  Skipped where dask[distributed] is not installed.
"""

from .distributed_compare import SWEEP_SEEDS, setup_sweep, setup_sync, start_cluster, stop_cluster


class SweepThroughput:
    """``fastbp.distributed.sweep`` of the frozen-hidden experiment: 2 x 2000 XOR networks of 5000 epochs."""

    params = [[1, 2]]
    param_names = ["n_workers"]
    timeout = 300
    number = 1
    repeat = 5

    def setup(self, n_workers):
        self.cluster, self.client = start_cluster(n_workers)
        self.client.wait_for_workers(n_workers)
        self.run = setup_sweep(self.client, SWEEP_SEEDS)  # compiles on the workers

    def teardown(self, n_workers):
        if hasattr(self, "cluster"):  # setup skipped (no dask) or failed before the cluster started
            stop_cluster(self.cluster, self.client)

    def time_sweep(self, n_workers):
        self.run()

    def track_networks_per_second(self, n_workers):
        return self.run()

    track_networks_per_second.unit = "networks/s"


class SyncStep:
    """``fit_data_parallel(mode="sync")`` of a 64-64-10 network, 1440 rows in 2 shards, batch 32, 2 workers."""

    timeout = 300
    number = 1
    repeat = 5

    def setup(self):
        self.cluster, self.client = start_cluster(2)
        self.client.wait_for_workers(2)
        self.measure = setup_sync(self.client)

    def teardown(self):
        if hasattr(self, "cluster"):
            stop_cluster(self.cluster, self.client)

    def track_step_ms(self):
        return 1e3 * self.measure()["cluster"]

    track_step_ms.unit = "ms"

    def track_step_overhead_ms(self):
        sample = self.measure()
        return 1e3 * (sample["cluster"] - sample["local"])

    track_step_overhead_ms.unit = "ms"
