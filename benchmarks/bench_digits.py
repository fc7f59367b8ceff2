"""W3 digits-epoch: one shuffled epoch of batch-32 SGD on scikit-learn's digits, 64-64-10 tanh/sigmoid."""

from .workloads import IMPLS, setup_w3


class DigitsEpoch:
    """W3: 1437 training rows, 45 batches (the last one of 29 rows), squared error, float64.

    Skipped without scikit-learn, which ships the data (nothing is downloaded).
    """

    params = [list(IMPLS["W3"])]
    param_names = ["impl"]

    def setup(self, impl):
        self.run = setup_w3(impl)  # numba compilation (setup calls run once)

    def time_epoch(self, impl):
        self.run()

    def peakmem_epoch(self, impl):
        self.run()

    def peakmem_reference(self, impl):
        """The process's peak memory after setup alone, to read peakmem_epoch against."""
