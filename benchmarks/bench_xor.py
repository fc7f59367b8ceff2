"""W1 xor-step and W2 xor-train: the 2-2-1 sigmoid XOR network, float64.

W1's bar: fastbp's ``step`` within 3x of an empty ``@numba.njit`` call with six array arguments
(impl ``numba_empty``).  Peers that are not installed are skipped (NotImplementedError in setup).
"""

from .workloads import IMPLS, setup_w1, setup_w2


class XorStep:
    """W1: one ``net.step(x, d, lr)`` on one sample, called from Python."""

    params = [list(IMPLS["W1"])]
    param_names = ["impl"]

    def setup(self, impl):
        self.run = setup_w1(impl)  # numba compilation (setup calls run once)

    def time_step(self, impl):
        self.run()


class XorTrain:
    """W2: ``fit`` on XOR, batch 1, lr 0.5, 5000 epochs = 20,000 steps, no shuffling."""

    params = [list(IMPLS["W2"])]
    param_names = ["impl"]
    timeout = 300  # the PyTorch loop takes ~2.5 s a run

    def setup(self, impl):
        self.run = setup_w2(impl)  # numba compilation (setup calls run once)

    def time_fit(self, impl):
        self.run()
