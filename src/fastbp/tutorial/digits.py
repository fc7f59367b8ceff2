"""A real data set: scikit-learn's bundled 8x8 digits (1797 images, no download).

``fastbp digits`` trains a 64-128-10 classifier (ReLU hidden layer, softmax
output, cross-entropy, Adam) on 80% of the images and reports its accuracy on
the other 20%.  scikit-learn is needed only for the data (``pip install
"fastbp[sklearn]"``).
"""

import time

import numpy as np

from fastbp.nn.network import Network
from fastbp.nn.optimizers import Adam

DEFAULTS = dict(hidden=128, epochs=50, batch_size=32, lr=1e-3, seed=0)


def load_split(test_size=0.2, random_state=0):
    """(X_train, X_test, y_train, y_test): pixels scaled to [0, 1], a stratified split; labels 0-9."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=test_size, random_state=random_state, stratify=y)


def one_hot(y, n_classes=10, dtype=np.float64):
    """(n,) labels -> (n, n_classes) one-hot targets of ``dtype``."""
    return np.eye(n_classes, dtype=dtype)[y]


def train(hidden=128, epochs=50, batch_size=32, lr=1e-3, seed=0, data=None, dtype=np.float64):
    """Train the digits classifier; returns (net, history, test accuracy, training seconds).

    ``dtype``: float64 or float32, of the network and of the data given to it (converted before the clock starts).
    """
    X_train, X_test, y_train, y_test = load_split() if data is None else data
    X_train, X_test = np.asarray(X_train, dtype=dtype), np.asarray(X_test, dtype=dtype)
    D_train, D_test = one_hot(y_train, dtype=dtype), one_hot(y_test, dtype=dtype)
    net = Network([64, hidden, 10], ["relu", "softmax"], loss="cross_entropy", seed=seed, dtype=dtype)
    start = time.perf_counter()
    history = net.fit(X_train, D_train, epochs=epochs, batch_size=batch_size, seed=seed, optimizer=Adam(lr=lr))
    seconds = time.perf_counter() - start
    _, accuracy = net.evaluate(X_test, D_test)
    return net, history, accuracy, seconds
