"""The code generated per small architecture (fastbp.engine._codegen) and the fast path of step."""

import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp.engine import _codegen

from conftest import assert_close, build_network


def xor_net(engine="specialized", dtype=np.float64):
    W = [np.array([[0.3, -0.2], [0.5, 0.1]], dtype), np.array([[0.7], [-0.4]], dtype)]
    b = [np.array([0.1, -0.1], dtype), np.array([0.05], dtype)]
    return build_network(W, b, ["sigmoid", "sigmoid"], engine)


def test_small_networks_use_generated_code_and_big_ones_do_not():
    assert fastbp.Network([2, 2, 1], ["sigmoid", "sigmoid"], seed=0)._passes.small_module() is not None
    assert fastbp.Network([64, 64, 10], ["tanh", "sigmoid"], seed=0)._passes.small_module() is None


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_generated_and_generic_agree(dtype):
    X = np.random.default_rng(0).uniform(size=(7, 2)).astype(dtype)
    D = np.random.default_rng(1).uniform(size=(7, 1)).astype(dtype)
    a, b = xor_net("specialized", dtype), xor_net("generic", dtype)
    assert_close(a.forward(X), b.forward(X), dtype, what="forward")
    Ea, ga = a.gradients(X, D)
    Eb, gb = b.gradients(X, D)
    assert_close(Ea, Eb, dtype, what="E")
    assert_close(ga.flat, gb.flat, dtype, what="gradient")
    a.fit(X, D, epochs=3, lr=0.3, batch_size=3, shuffle=True, seed=5)
    b.fit(X, D, epochs=3, lr=0.3, batch_size=3, shuffle=True, seed=5)  # same permutation stream
    assert_close(a.flat_parameters, b.flat_parameters, dtype, what="parameters after fit")


def test_fast_path_equals_validated_path():
    x = np.array([1.0, 0.0])
    d = np.array([1.0])
    fast, slow = xor_net(), xor_net()
    E_fast = fast.step(x, d, lr=0.5)  # float64 arrays, float lr: the fast path
    E_slow = slow.step([1, 0], [1], lr=np.float64(0.5))  # lists and a numpy scalar: validated first
    assert E_fast == E_slow
    np.testing.assert_array_equal(fast.flat_parameters, slow.flat_parameters)
    # an int lr, a strided X and a read-only D give the same too
    wide = np.array([[1.0, 9.0, 0.0, 9.0]])[:, ::2]
    ro = np.array([[1.0]])
    ro.flags.writeable = False
    third = xor_net()
    third.step(wide, ro, lr=0.5)
    np.testing.assert_array_equal(third.flat_parameters, slow.flat_parameters)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fast_path_refuses_non_finite_input_and_leaves_network(bad):
    net = xor_net()
    before = net.flat_parameters.tobytes()
    with pytest.raises(ValueError, match=r"X must be finite, but X\[\(1, 0\)\]"):
        net.step(np.array([[0.0, 1.0], [bad, 0.0]]), np.array([[1.0], [0.0]]), lr=0.5)
    with pytest.raises(ValueError, match="D must be finite"):
        net.step(np.array([0.0, 1.0]), np.array([bad]), lr=0.5)
    with pytest.raises(ValueError, match="empty"):
        net.step(np.zeros((0, 2)), np.zeros((0, 1)), lr=0.5)
    with pytest.raises(ValueError, match="lr"):
        net.step(np.zeros(2), np.zeros(1), lr=float("nan"))
    assert net.flat_parameters.tobytes() == before


def test_generated_module_is_written_to_the_cache_dir(tmp_path):
    code = (
        "import numpy as np, fastbp\n"
        "net = fastbp.Network([3, 2, 2], ['tanh', 'identity'], seed=0)\n"
        "print(net.step(np.ones(3), np.zeros(2), lr=0.1))\n"
    )
    env = {"FASTBP_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out1 = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    files = sorted(p.name for p in tmp_path.glob("fastbp_arch_*.py"))
    assert len(files) == 1
    out2 = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out1 == out2
    assert any(tmp_path.joinpath("__pycache__").glob("*.nbi"))  # numba's disk cache of the compiled functions


def test_unwritable_cache_dir_still_works(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    code = (
        "import numpy as np, fastbp\n"
        "net = fastbp.Network([1, 1], ['identity'], seed=0)\n"
        "print(net.step(np.ones(1), np.zeros(1), lr=0.1) >= 0)\n"
    )
    env = {"FASTBP_CACHE_DIR": str(blocked / "sub"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_source_names_units_as_in_the_tutorial():
    src = _codegen.generate_source((2, 2, 1), (1, 1), "float64")
    assert "z1_0 = F(" in src and "delta2_0 = F(" in src and "y2_0 = F(sigmoid_scalar(z2_0))" in src
    compile(src, "<generated>", "exec")
