"""The vectorisable exp, sigmoid and tanh against libm, in units in the last place."""

import math

import numba
import numpy as np
import pytest

from fastbp.kernels import _vecmath


@numba.njit
def apply(code, x, out):
    for i in range(x.shape[0]):
        if code == 0:
            out[i] = _vecmath.exp(x[i])
        elif code == 1:
            out[i] = _vecmath.sigmoid(x[i])
        else:
            out[i] = _vecmath.tanh(x[i])


def libm_sigmoid(z):
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def ulp_error(got, ref):
    """|got - ref| in units of the spacing of floats at ref (subnormals at the smallest normal's spacing)."""
    ref = np.asarray(ref)
    return np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), np.finfo(np.float64).tiny))


def points():
    rng = np.random.default_rng(20261127)
    return np.concatenate(
        [
            rng.uniform(-745.0, 709.7, 100_000),
            rng.uniform(-40.0, 40.0, 100_000),
            rng.uniform(-1.0, 1.0, 100_000),
            rng.uniform(-1e-6, 1e-6, 10_000),
            [0.0, -0.0, 1e-300, -1e-300, 0.35, -0.35, 19.9, 20.0, 20.1, 709.78, -708.4, -745.1],
        ]
    )


@pytest.mark.parametrize(
    "code, name, libm, max_ulp",
    [(0, "exp", math.exp, 2), (1, "sigmoid", libm_sigmoid, 4), (2, "tanh", math.tanh, 4)],
)
def test_accuracy_in_ulp(code, name, libm, max_ulp):
    x = points()
    got = np.empty_like(x)
    apply(code, x, got)
    ref = np.array([libm(v) for v in x])
    err = ulp_error(got, ref)
    print(
        f"{name}: max {err.max():.1f} ulp at x = {x[np.argmax(err)]!r}, mean {err.mean():.3f} ulp over {x.size} points"
    )
    assert err.max() <= max_ulp


@pytest.mark.parametrize("code", [0, 1, 2])
def test_special_values(code):
    x = np.array([np.nan, np.inf, -np.inf, 1e4, -1e4, 0.0, -0.0])
    got = np.empty_like(x)
    apply(code, x, got)
    assert np.isnan(got[0])
    expected = {
        0: [math.inf, 0.0, math.inf, 0.0, 1.0, 1.0],
        1: [1.0, 0.0, 1.0, 0.0, 0.5, 0.5],
        2: [1.0, -1.0, 1.0, -1.0, 0.0, -0.0],
    }[code]
    assert got[1:].tolist() == expected
    if code == 2:
        assert math.copysign(1.0, got[-1]) == -1.0  # tanh(-0.0) = -0.0


def test_sigmoid_keeps_subnormal_results():
    x = np.array([-740.0])
    got = np.empty_like(x)
    apply(1, x, got)
    assert 0.0 < got[0] == pytest.approx(libm_sigmoid(-740.0), rel=1e-3)
