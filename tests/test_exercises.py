"""The tutorial's exercises, worked by the Network (the reference's own check is in test_reference.py).

Exercise 1's initial weights are illegible in the source; we use
W1 = [[0.5, -0.3]] (x -> h1, x -> h2) and W2 = [[0.8], [0.4]], all biases 0,
so that for x = 1 hidden unit h1 is active (z = 0.5) and h2 is not
(z = -0.3, where ReLU' = 0): both branches of the ReLU derivative show.
"""

import numpy as np
import pytest

import fastbp

from test_reference import HAND, XOR_ETA

APPROX = dict(rel=1e-14, abs=1e-15)


def exercise_1_network():
    return fastbp.Network.from_weights(
        weights=[np.array([[0.5, -0.3]]), np.array([[0.8], [0.4]])],
        biases=[np.zeros(2), np.zeros(1)],
        activations=["relu", "identity"],
    )


def test_exercise_1_by_hand():
    net = exercise_1_network()
    t = net.trace([1.0], [0.2], lr=0.1)
    h, out = t.layers
    # (a) forward: z_h = (0.5, -0.3), y_h = ReLU(z_h) = (0.5, 0), y = 0.8*0.5 + 0.4*0 = 0.4
    assert h.z.tolist() == pytest.approx([0.5, -0.3], **APPROX)
    assert h.y.tolist() == pytest.approx([0.5, 0.0], **APPROX)
    assert out.y.tolist() == pytest.approx([0.4], **APPROX)
    # (b) E = 1/2 (0.4 - 0.2)^2 = 0.02
    assert t.E == pytest.approx(0.02, **APPROX)
    # (c) delta^(2) = (y - d) * 1 = 0.2
    assert out.delta.tolist() == pytest.approx([0.2], **APPROX)
    # (d) delta^(1)_j = delta^(2) w_j1^(2) ReLU'(z_j): (0.2*0.8*1, 0.2*0.4*0) = (0.16, 0)
    assert h.delta.tolist() == pytest.approx([0.16, 0.0], **APPROX)
    # (e) dE/dw^(2)_j1 = delta^(2) y_j = (0.1, 0); dE/dw^(1)_1j = delta^(1)_j x = (0.16, 0); dE/db = delta
    assert out.grad_weights.tolist() == [[pytest.approx(0.1, **APPROX)], [0.0]]
    assert h.grad_weights.tolist() == [[pytest.approx(0.16, **APPROX), 0.0]]
    assert out.grad_biases.tolist() == pytest.approx([0.2], **APPROX)
    assert h.grad_biases.tolist() == pytest.approx([0.16, 0.0], **APPROX)
    # (f) w <- w - 0.1 dE/dw
    assert out.new_weights.tolist() == [[pytest.approx(0.79, **APPROX)], [0.4]]
    assert h.new_weights.tolist() == [[pytest.approx(0.484, **APPROX), -0.3]]
    assert out.new_biases.tolist() == pytest.approx([-0.02], **APPROX)
    assert h.new_biases.tolist() == pytest.approx([-0.016, 0.0], **APPROX)
    # and a real step lands on the same numbers
    assert net.step([1.0], [0.2], lr=0.1) == pytest.approx(0.02, **APPROX)
    np.testing.assert_allclose(net.weights[0], [[0.484, -0.3]], rtol=1e-14)
    np.testing.assert_allclose(net.weights[1], [[0.79], [0.4]], rtol=1e-14)
    np.testing.assert_allclose(net.biases[0], [-0.016, 0.0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(net.biases[1], [-0.02], rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_exercise_2b_xor_one_step(dtype):
    net = fastbp.Network.from_weights(
        weights=[np.full((2, 2), 0.5, dtype), np.full((2, 1), 0.5, dtype)],
        biases=[np.zeros(2, dtype), np.zeros(1, dtype)],
        activations=["sigmoid", "sigmoid"],
    )
    approx = APPROX if dtype == np.float64 else dict(rel=1e-6, abs=1e-7)
    t = net.trace([1.0, 0.0], [1.0], lr=XOR_ETA)
    h, out = t.layers
    assert h.z.tolist() == pytest.approx([0.5, 0.5], **approx)
    assert h.y.tolist() == pytest.approx([HAND["y1"]] * 2, **approx)
    assert out.z.tolist() == pytest.approx([HAND["y1"]], **approx)  # z^(2) = 0.5 y1 + 0.5 y1
    assert out.y.tolist() == pytest.approx([HAND["y2"]], **approx)
    assert t.E == pytest.approx(HAND["E"], **approx)
    assert out.delta.tolist() == pytest.approx([HAND["delta2"]], **approx)
    assert h.delta.tolist() == pytest.approx([HAND["delta1"]] * 2, **approx)
    assert out.grad_weights.ravel().tolist() == pytest.approx([HAND["dw2"]] * 2, **approx)
    assert h.grad_weights.tolist() == [pytest.approx([HAND["delta1"]] * 2, **approx), [0.0, 0.0]]
    E = net.step([1.0, 0.0], [1.0], lr=XOR_ETA)
    assert E == pytest.approx(HAND["E"], **approx)
    assert net.weights[1].ravel().tolist() == pytest.approx([HAND["w2_new"]] * 2, **approx)
    assert net.weights[0][0].tolist() == pytest.approx([HAND["w1_new_row1"]] * 2, **approx)
    assert net.weights[0][1].tolist() == [0.5, 0.5]  # x2 = 0: its weights get no gradient
    assert net.biases[1].tolist() == pytest.approx([HAND["b2_new"]], **approx)
    assert net.biases[0].tolist() == pytest.approx([HAND["b1_new"]] * 2, **approx)
    # the two hidden units stay identical: all-0.5 weights give them the same gradient
    assert net.weights[0][0, 0] == net.weights[0][0, 1]
