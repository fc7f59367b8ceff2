"""The one home of fastbp's numba options.

Every compiled function in the package is built through :func:`jit`, so the
options below hold everywhere:

* ``cache=True``: compiled machine code is written next to the sources and
  reused by later processes (``FASTBP_CACHE=0`` turns it off).
* ``fastmath=False``: fast-math flags would let LLVM assume there are no NaNs
  or infinities and silently break the checks that rely on them.
* ``error_model="numpy"``: a division by zero gives ``inf``/``nan`` as in
  NumPy instead of a Python exception check in every loop, which also lets
  LLVM vectorise the loops.
* ``nogil=True``: compiled calls release the GIL, so two threads can train two
  networks at once.

numba reads these globals when a function is compiled, so changing an
environment variable needs a new process.
"""

import os

import numba

CACHE = os.environ.get("FASTBP_CACHE", "1") != "0"
FASTMATH = False

NJIT_OPTIONS = dict(cache=CACHE, fastmath=FASTMATH, error_model="numpy", nogil=True)

# Below this many multiply-adds per layer call, plain loops beat a BLAS call
# (the call overhead of np.dot is ~0.3-1 us).
BLAS_MIN_MULTIPLY_ADDS = 1000


def jit(func=None, **overrides):
    """``numba.njit`` with the package's options; usable as ``@jit`` or ``@jit(...)``."""
    options = dict(NJIT_OPTIONS, **overrides)
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)
