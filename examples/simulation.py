"""A small compiled simulation that calls a network every step: a cart steered to the origin.

    python examples/simulation.py

A network learns, inside one @numba.njit loop (``jit.sgd_step``), to imitate a PD controller: the force
-k x - c v for a cart at position x with velocity v.  A second compiled loop then simulates the cart with the
network as its controller, calling ``jit.forward`` once per time step, and compares the final position with
that of the PD controller itself.
"""

import numba
import numpy as np

import fastbp
from fastbp import jit

K, C, DT, STEPS = 4.0, 2.5, 0.01, 1000


@numba.njit
def imitate(model, states, forces, batch, steps, lr, seed):
    """``steps`` gradient steps on random mini-batches of (state, PD force); returns the last loss."""
    np.random.seed(seed)  # numba's generator, seeded in compiled code
    E = 0.0
    for _ in range(steps):
        start = np.random.randint(0, states.shape[0] - batch)
        E = jit.sgd_step(model, states[start : start + batch], forces[start : start + batch], lr)
    return E


@numba.njit
def simulate(model, x0, v0, use_network, state, force):
    """The cart's final (x, v) after STEPS steps of size DT from (x0, v0)."""
    x, v = x0, v0
    for _ in range(STEPS):
        if use_network:
            state[0, 0] = x
            state[0, 1] = v
            jit.forward(model, state, force)
            f = force[0, 0]
        else:
            f = -K * x - C * v
        v += DT * f
        x += DT * v
    return x, v


def main():
    rng = np.random.default_rng(1)
    states = rng.uniform(-2, 2, size=(4096, 2))
    forces = (-K * states[:, :1] - C * states[:, 1:]).copy()
    net = fastbp.Network([2, 16, 1], ["tanh", "identity"], seed=0)
    model = net.to_jit(max_batch=32)
    loss = imitate(model, states, forces, 32, 20000, 0.02, 1)
    print(f"imitation loss after 20,000 compiled steps: {loss:.2e}")
    state, force = np.empty((1, 2)), np.empty((1, 1))
    learned = simulate(model, 1.5, 0.0, True, state, force)
    pd = simulate(model, 1.5, 0.0, False, state, force)
    print(f"after {STEPS * DT:.0f} s from x = 1.5: network-controlled x = {learned[0]:+.4f}, ", end="")
    print(f"PD-controlled x = {pd[0]:+.4f}")
    return learned, pd


if __name__ == "__main__":
    main()
