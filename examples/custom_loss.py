"""A loss of your own, trained in your own compiled loop: Huber regression with Adam, through fastbp.jit.

    python examples/custom_loss.py

The network's forward pass and its vector-Jacobian product run inside the @numba.njit loop below; the
loss (Huber, robust to the outliers in the targets) and the optimizer step (``kernels.optimizer_update`` on
the flat gradient) are the loop's own.  Training through the model trains ``net`` itself.
"""

import numba
import numpy as np

import fastbp
from fastbp import jit, kernels


@numba.njit
def huber_epochs(model, X, D, Y, dY, grad, m, v, hyper, lr, delta, batch, epochs):
    """Mini-batches in order for ``epochs`` epochs; returns the Huber loss of the last epoch (mean)."""
    theta = model[1]
    no_frozen = np.zeros(0, dtype=np.bool_)
    t = 0
    total = 0.0
    for _ in range(epochs):
        total = 0.0
        for start in range(0, X.shape[0], batch):
            stop = min(X.shape[0], start + batch)
            n = stop - start
            jit.forward(model, X[start:stop], Y[:n])
            for s in range(n):
                r = Y[s, 0] - D[start + s, 0]
                if abs(r) <= delta:
                    total += 0.5 * r * r
                    dY[s, 0] = r / n
                else:
                    total += delta * (abs(r) - 0.5 * delta)
                    dY[s, 0] = delta * np.sign(r) / n
            jit.backward(model, X[start:stop], dY[:n], grad)
            t += 1
            kernels.optimizer_update(kernels.ADAM, theta, grad, lr, hyper, m, v, t, no_frozen)
    return total / X.shape[0]


def main():
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(2000, 1))
    D = np.sin(X) + 0.05 * rng.normal(size=X.shape)
    D[rng.random(2000) < 0.05] += 5.0  # 5% outliers
    net = fastbp.Network([1, 32, 32, 1], ["tanh", "tanh", "identity"], seed=0)
    batch = 64
    model = net.to_jit(max_batch=batch)
    Y, dY, grad = np.empty((batch, 1)), np.empty((batch, 1)), np.empty(net.n_params)
    m, v = np.zeros(net.n_params), np.zeros(net.n_params)
    hyper = fastbp.Adam(lr=0.01).hyper()
    for round_ in range(3):
        loss = huber_epochs(model, X, D, Y, dY, grad, m, v, hyper, 0.01, 1.0, batch, 50)
        print(f"after {50 * (round_ + 1)} epochs: Huber loss {loss:.4f}")
    grid = np.linspace(-3, 3, 7).reshape(-1, 1)
    error = np.abs(net.forward(grid) - np.sin(grid)).max()  # net itself was trained
    print(f"largest error against sin(x) on [-3, 3]: {error:.3f}")
    return error


if __name__ == "__main__":
    main()
