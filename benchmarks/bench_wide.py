"""W4 wide-step: one ``step`` of a 512-1024-1024-10 relu/relu/identity network on a batch of 256.

impl ``blas_bound`` is the floor: the 8 matrix products one step needs (3 forward, 3 weight
gradients, 2 hidden deltas) as ``np.dot(a, b, out=...)`` on preallocated arrays.  BLAS, numba and
PyTorch keep their default thread counts, so the ratios are same-environment ratios.
"""

from .workloads import DTYPES, IMPLS, setup_w4


class WideStep:
    params = [list(DTYPES), list(IMPLS["W4"])]
    param_names = ["dtype", "impl"]

    def setup(self, dtype, impl):
        self.run = setup_w4(impl, dtype)  # numba compilation (setup calls run once)

    def time_step(self, dtype, impl):
        self.run()

    def peakmem_step(self, dtype, impl):
        self.run()

    def peakmem_reference(self, dtype, impl):
        """The process's peak memory after setup alone, to read peakmem_step against."""
