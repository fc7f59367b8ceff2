"""W5 numgrad-ratio: time(fastbp.numerical_gradient) / time(net.gradients) for 10-h-h-1 tanh networks.

The bar: ratio >= 0.5 N for N parameters (2N forward passes against one forward and one
backward pass).  N ~ 1e2, 1e3, 1e4, 1e5 (h = 5, 26, 94, 310: N = 91, 1015, 10059, 100131),
batch 16, float64.
"""

from .workloads import NUMGRAD_HIDDEN, measure_numgrad_ratio, setup_w5


class NumgradRatio:
    params = [list(NUMGRAD_HIDDEN)]
    param_names = ["n_params"]
    unit = "ratio"
    timeout = 600  # one numerical gradient at N = 1e5 takes ~15 s
    rounds = 1

    def setup(self, key):
        # numba compilation (setup_w5 calls each runner once; at N ~ 1e5 the numerical one is
        # compiled on a small network instead)
        self.runs = setup_w5("numerical_gradient", key), setup_w5("gradients", key)

    def track_numgrad_ratio(self, key):
        """Numerical over backprop gradient time, both timed here (the numerical one once at N ~ 1e5)."""
        return measure_numgrad_ratio(key, quick=key == "1e5", runs=self.runs)[2]


class NumgradTimes:
    """W5's two sides as plain timings, for N up to 1e4."""

    params = [["1e2", "1e3", "1e4"], ["gradients", "numerical_gradient"]]
    param_names = ["n_params", "impl"]

    def setup(self, key, impl):
        self.run = setup_w5(impl, key)  # numba compilation

    def time_gradient(self, key, impl):
        self.run()
