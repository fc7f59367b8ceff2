"""W6 start-up: a fresh Python process imports fastbp, builds the XOR net and fits one epoch.

``timeraw_`` benchmarks run their code in a new interpreter for every sample and time the code
only (not the interpreter's start).  fastbp_warm uses numba's on-disk cache, filled in setup;
fastbp_cold points NUMBA_CACHE_DIR (and FASTBP_CACHE_DIR, where fastbp writes the code it
generates for small architectures) at a new empty directory, so every kernel compiles.
"""

from .workloads import IMPLS, setup_w6, startup_code


class Startup:
    params = [list(IMPLS["W6"])]
    param_names = ["impl"]
    timeout = 300
    repeat = (1, 5, 60.0)
    number = 1

    def setup(self, impl):
        self.code = startup_code(impl)  # NotImplementedError (skip) for torch_import without torch
        if impl == "fastbp_warm":
            setup_w6(impl, warm=True)  # fills numba's cache

    def timeraw_startup(self, impl):
        return self.code
