"""Shared fixtures, hypothesis strategies and tolerances."""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import fastbp
from fastbp import reference

ACTIVATIONS = reference.ACTIVATION_NAMES
DTYPES = (np.float64, np.float32)

# Kernels and the reference sum in different orders (BLAS blocks, loops go
# sample by sample), so arrays are compared elementwise with an absolute
# tolerance relative to the array's largest entry: |got - ref| <= rtol * max|ref|.
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 2e-4}

settings.register_profile(
    "default", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("ci", parent=settings.get_profile("default"), print_blob=True)
settings.load_profile("default")


def assert_close(got, ref, dtype, rtol=None, what="", scale=0.0):
    """Assert |got - ref| <= rtol * max(max|ref|, scale, tiny) elementwise, with the dtype's tolerance.

    ``scale`` is for results that cancel: after an update w - eta g the
    rounding is relative to |w| and |eta g|, not to their difference.
    """
    rtol = RTOL[np.dtype(dtype)] if rtol is None else rtol
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    scale = max(float(np.max(np.abs(ref))) if ref.size else 0.0, scale, 1e-300)
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    assert err <= rtol * scale, f"{what}: max error {err:.3e} > {rtol:.1e} * {scale:.3e}"


def to_lists(arrays):
    """Arrays -> nested Python lists of floats, for the reference."""
    return [np.asarray(a, dtype=np.float64).tolist() for a in arrays]


# Architectures for the code generated per architecture (fastbp.engine._codegen): each new
# (sizes, activations, dtype) costs a compilation, so tests draw from this fixed list.
SMALL_ARCHITECTURES = [
    ([1, 1], ["identity"]),
    ([2, 2, 1], ["sigmoid", "sigmoid"]),
    ([1, 2, 1], ["relu", "identity"]),
    ([3, 5, 2], ["tanh", "sigmoid"]),
    ([4, 3, 3, 2], ["relu", "tanh", "identity"]),
    ([2, 4, 3, 3, 3, 1], ["sigmoid", "relu", "tanh", "relu", "identity"]),
]
ENGINES = ("generic", "specialized")


def build_network(weights, biases, activations, engine):
    """Network.from_weights on the given engine: "generic" (engine._serial) or "specialized" (engine._codegen)."""
    net = fastbp.Network.from_weights(weights, biases, activations)
    if engine == "generic":
        net._passes.small = None
    else:
        assert net._passes.small_module() is not None, "too big for the specialised code"
    return net


@st.composite
def networks(draw, max_layers=5, max_width=64, max_batch=128, budget=40_000, dtypes=DTYPES, architectures=None):
    """(sizes, activations, weights, biases, X, D, dtype), random within a work budget.

    budget caps batch * (multiply-adds of one forward pass), so the pure-Python
    reference stays fast, while depth, width and batch still each reach their
    maxima (in different examples).  With ``architectures``, sizes and
    activations are drawn from that list instead.
    """
    if architectures is None:
        n_layers = draw(st.integers(1, max_layers))
        sizes = [draw(st.integers(1, max_width)) for _ in range(n_layers + 1)]
        activations = [draw(st.sampled_from(ACTIVATIONS)) for _ in range(n_layers)]
    else:
        sizes, activations = draw(st.sampled_from(architectures))
        n_layers = len(activations)
    macs = sum(a * b for a, b in zip(sizes, sizes[1:]))
    batch = draw(st.integers(1, max(1, min(max_batch, budget // macs))))
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(-1, 1, (a, b)) / np.sqrt(a) for a, b in zip(sizes, sizes[1:])]
    biases = [rng.uniform(-0.5, 0.5, b) for b in sizes[1:]]
    X = rng.uniform(-1, 1, (batch, sizes[0]))
    D = rng.uniform(-1, 1, (batch, sizes[-1]))
    # Round everything to the dtype once, so the reference sees the same numbers.
    cast = [np.asarray(a, dtype=dtype) for a in (*weights, *biases, X, D)]
    weights, biases = cast[:n_layers], cast[n_layers : 2 * n_layers]
    X, D = cast[-2], cast[-1]
    return sizes, activations, weights, biases, X, D, np.dtype(dtype)


FUZZ_TABLES = []  # (title, table) of the fuzz suite's runs, printed at the end


def pytest_terminal_summary(terminalreporter):
    for title, text in FUZZ_TABLES:
        terminalreporter.write_line(title)
        for line in text.splitlines():
            terminalreporter.write_line(line)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
