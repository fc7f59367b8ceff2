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

numba's disk cache checks only the timestamp of the file that defines a
function, not of the files its callees live in: after an edit to
``fastbp/kernels/`` the cached ``engine._serial`` functions would still run the old
kernels.  So the package keeps a fingerprint of all its sources next to the
cache and clears its cached functions when any source changed.
"""

import hashlib
import os
from pathlib import Path
from typing import Any

import numba

CACHE = os.environ.get("FASTBP_CACHE", "1") != "0"
FASTMATH = False

# The modules that hold compiled functions (or generate them): an edit of any of these invalidates
# the cached machine code of all of them; edits elsewhere (the tutorial, the integrations ...) do not.
# Paths relative to the package.
COMPILED_SOURCES = (
    "config.py",
    *(f"kernels/{name}.py" for name in ("_jit_utils", "_vecmath", "_blas", "_sync")),
    *(f"kernels/{name}.py" for name in ("activations", "dense", "losses", "backprop", "optimizers")),
    *(f"engine/_{name}.py" for name in ("serial", "threaded", "threaded_pass", "wide", "codegen")),
    "nn/jit_model.py",
    "integrations/sklearn/_compiled.py",
    "integrations/sklearn/_split.py",
)

NJIT_OPTIONS: Any = dict(cache=CACHE, fastmath=FASTMATH, error_model="numpy", nogil=True)

# Below this many multiply-adds per layer call, plain loops beat a BLAS call
# (the call overhead of np.dot is ~0.3-1 us).
BLAS_MIN_MULTIPLY_ADDS = 1000

# Below this many samples a weight gradient (sum_s y_i delta_j) is summed in plain loops, and a layer's
# products (forward, error terms) are one GEMV a sample: OpenBLAS's GEMM of so few rows first copies all of
# W into its blocked layout.  Measured on one thread, AMD EPYC Zen 3: a 512 x 512 float64 gradient of one
# sample GEMM 420 us, loops 41 us (of four: 191 against 150 us); forward through 512 x 512, float32, 2
# samples 124 against 34 us, 4 samples 125 against 64, 8 samples 108 against 121 (float64 4: 163 against
# 132, 8: 178 against 264); through 160 x 160, float32, 4 samples 16.6 against 4.7 us.
MIN_GEMM_SAMPLES = 5

# OpenBLAS runs a product on several threads above a size that depends on the CPU it detected: 999,424
# multiply-adds ran on one thread and 1,003,520 on two on a 2-core Intel Xeon (786,432 on one on an AMD
# EPYC with AVX-512), but on an AMD EPYC Zen 3 (OpenBLAS's Haswell kernels) 393,216 on one and 524,288 on two.
# Those threads then spin on the cores for ~0.1 s, which makes a threaded ``fit`` started in that time
# about 2x slower (the digits classifier: 56 -> 110 ms after an ``evaluate`` of 360 rows).  So a forward
# product of up to BLAS_CHUNKED_MAX multiply-adds is done in row blocks of at most BLAS_ONE_THREAD_MAX
# each, below the smallest of those sizes, which OpenBLAS runs on the caller's thread (at this size two
# threads would save ~0.1 ms at most); larger ones keep BLAS's threads.  The blocks are for the public kernel
# and ``fastbp.jit``: every block packs W again, so the threaded engines and a network's forward passes keep
# BLAS on the calling thread instead where they can (``CompiledPasses.forward_blas``), and passes whose
# backward products wake BLAS's threads anyway (gradients, steps, fit) take each product in one call.
BLAS_ONE_THREAD_MAX = 384 * 1024
BLAS_CHUNKED_MAX = 8 * 1024 * 1024


def _clear_stale_cache():
    """Delete fastbp's numba cache files if any of the package's sources changed since they were written."""
    package = Path(__file__).parent
    cache = package / "__pycache__"
    sources = [package / name for name in COMPILED_SOURCES]
    fingerprint = hashlib.sha256(
        "".join(f"{p.relative_to(package)}:{p.stat().st_mtime_ns}:{p.stat().st_size};" for p in sources).encode()
    ).hexdigest()
    stamp = cache / "fastbp-sources.txt"
    try:
        if stamp.exists() and stamp.read_text() == fingerprint:
            return
        for folder in {p.parent / "__pycache__" for p in sources}:
            for pattern in ("*.nbi", "*.nbc"):
                for f in folder.glob(pattern):
                    f.unlink()
        cache.mkdir(exist_ok=True)
        stamp.write_text(fingerprint)
    except OSError:
        pass  # a read-only install: numba then does not cache there either


if CACHE:
    _clear_stale_cache()


def jit(func=None, **overrides):
    """``numba.njit`` with the package's options; usable as ``@jit`` or ``@jit(...)``."""
    options = dict(NJIT_OPTIONS, **overrides)
    if func is None:
        return lambda f: numba.njit(**options)(f)
    return numba.njit(**options)(func)
