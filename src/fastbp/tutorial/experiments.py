"""The computations behind ``fastbp xor``, ``fastbp experiment frozen-hidden`` and ``fastbp gradcheck``.

Everything here returns numbers (numpy arrays, small dataclasses) and prints
nothing; :mod:`fastbp.tutorial.cli` prints them and :mod:`fastbp.tutorial.plots` draws them.
"""

import math
import statistics
import time
from dataclasses import dataclass

import numpy as np

from fastbp.nn.network import Network
from fastbp.tutorial.numerical import numerical_gradient

XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_TARGETS = np.array([[0.0], [1.0], [1.0], [0.0]])


def _no_progress(iterable, total=None, desc=None):
    return iterable


def xor_network(seed):
    """The tutorial's XOR network (exercise 2): 2-2-1, sigmoid hidden and output units, random start."""
    return Network([2, 2, 1], activations=["sigmoid", "sigmoid"], seed=seed)


def xor_correct(net):
    """How many of the four XOR outputs round to their target (0 to 4)."""
    return int(np.sum(np.round(net.forward(XOR_INPUTS)) == XOR_TARGETS))


def train_xor(seed=0, epochs=5000, lr=2.0):
    """Train :func:`xor_network` full batch (4 samples, no shuffling); returns (net, loss per epoch)."""
    net = xor_network(seed)
    history = net.fit(XOR_INPUTS, XOR_TARGETS, epochs=epochs, lr=lr, batch_size=4, shuffle=False)
    return net, history.loss


# ------------------------------------------------------------------ exercise 2(a)


@dataclass
class Line:
    """The classifier ``1 if w1 x1 + w2 x2 + b > 0 else 0`` of a single-layer perceptron."""

    w: tuple
    b: float
    correct: int
    margin: float

    def equation(self):
        """The line as a person writes it, scaled so that the largest coefficient is 1: 'x_1 + x_2 = 0.5'."""
        scale = max(abs(self.w[0]), abs(self.w[1]))
        terms = []
        for k, c in enumerate(self.w, start=1):
            c = round(c / scale, 3) + 0.0
            if c == 0:
                continue
            sign = "-" if c < 0 else "+"
            size = "" if abs(c) == 1 else f"{abs(c):g} "
            terms.append(f"{sign} {size}x_{k}")
        text = " ".join(terms)
        text = text[2:] if text.startswith("+ ") else "-" + text[2:]
        return f"{text} = {round(-self.b / scale, 3) + 0.0:g}"

    def predict(self, X):
        X = np.asarray(X, dtype=float)
        return (X @ np.asarray(self.w) + self.b > 0).astype(float)


def best_line(X=XOR_INPUTS, D=XOR_TARGETS, n_angles=360):
    """The best a single-layer perceptron (a threshold on w . x + b) can do on (X, D), by exhaustive search.

    Every direction w = (cos a, sin a) for ``n_angles`` angles a, and every
    threshold between two consecutive projections w . x: the line with the
    most points on their correct side, ties broken by the widest margin
    (the distance from the line to the nearest point).  On XOR the answer is
    3 of 4: no line separates {(0,1), (1,0)} from {(0,0), (1,1)}.
    """
    X = np.asarray(X, dtype=float)
    d = np.asarray(D, dtype=float).ravel()
    best = None
    for a in np.arange(n_angles) * (2 * math.pi / n_angles):
        w = np.array([math.cos(a), math.sin(a)])
        p = X @ w
        ps = np.unique(p)
        cuts = np.concatenate([[ps[0] - 1.0], (ps[1:] + ps[:-1]) / 2, [ps[-1] + 1.0]])
        for t in cuts:
            correct = int(np.sum((p > t) == (d > 0.5)))
            margin = float(np.min(np.abs(p - t)))
            key = (correct, round(margin, 12))
            if best is None or key > best[0]:
                best = (key, Line((float(w[0]), float(w[1])), float(-t), correct, margin))
    return best[1]


# ------------------------------------------------------------------ exercise 2(c)


@dataclass
class FrozenHiddenResult:
    """Per seed: loss curves, final outputs and whether each way of training solved XOR.

    ``loss_frozen``, ``loss_full``: (n_seeds, epochs), the loss per epoch when
    only the output layer is trained and when the whole network is;
    ``solved_frozen``, ``solved_full``: (n_seeds,) bool, all four outputs
    round to their target; ``separable``: (n_seeds,) bool, the four hidden
    feature vectors of the random start can be separated by a line (the most
    output-only training could ever reach).
    """

    seeds: np.ndarray
    epochs: int
    lr: float
    loss_frozen: np.ndarray
    loss_full: np.ndarray
    solved_frozen: np.ndarray
    solved_full: np.ndarray
    separable: np.ndarray
    seconds_frozen: float
    seconds_full: float


def linearly_separable(H, D):
    """Whether some line w . h + c puts the points H (n, 2) with D = 1 on one side and D = 0 on the other.

    Solves the linear program "find w, c with s_n (w . h_n + c) >= 1" (s_n = +-1) with scipy's HiGHS.
    """
    from scipy.optimize import linprog

    H = np.asarray(H, dtype=float)
    s = np.where(np.asarray(D, dtype=float).ravel() > 0.5, 1.0, -1.0)
    A = -s[:, None] * np.hstack([H, np.ones((H.shape[0], 1))])
    res = linprog(np.zeros(H.shape[1] + 1), A_ub=A, b_ub=-np.ones(H.shape[0]), bounds=(None, None), method="highs")
    return res.status == 0


def hidden_features(net, X=XOR_INPUTS):
    """y^(1), the hidden layer's outputs for each row of X (for a network with one hidden layer)."""
    z = np.asarray(X, dtype=float) @ net.weights[0] + net.biases[0]
    if net.activations[0] == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if net.activations[0] == "tanh":
        return np.tanh(z)
    if net.activations[0] == "relu":
        return np.maximum(z, 0.0)
    return z


def frozen_hidden(seeds=100, epochs=5000, lr=2.0, progress=_no_progress):
    """Exercise 2(c): train only the output layer, or the whole network, from the same random starts.

    For each seed 0..seeds-1 the XOR network starts from the same random
    weights twice: once trained with ``fit(..., trainable=[False, True])``
    (the hidden weights and biases stay at their random start), once with
    every layer trained by backprop.  Same budget for both: ``epochs`` full
    batch epochs of learning rate ``lr``.  ``seconds_frozen`` and ``seconds_full``
    time the training alone: both paths are compiled before the clock starts.
    """
    seed_list = np.arange(seeds)
    loss_frozen = np.empty((seeds, epochs))
    loss_full = np.empty((seeds, epochs))
    solved_frozen = np.zeros(seeds, dtype=bool)
    solved_full = np.zeros(seeds, dtype=bool)
    separable = np.zeros(seeds, dtype=bool)
    t_frozen = t_full = 0.0
    # compile (or load from numba's cache) both training paths first, so that the times are training only
    warm = xor_network(0)
    warm.fit(XOR_INPUTS, XOR_TARGETS, epochs=1, lr=lr, batch_size=4, shuffle=False, trainable=[False, True])
    warm.fit(XOR_INPUTS, XOR_TARGETS, epochs=1, lr=lr, batch_size=4, shuffle=False)
    for k in progress(range(seeds), total=seeds, desc="seeds"):
        seed = int(seed_list[k])
        frozen = xor_network(seed)
        full = frozen.copy()
        separable[k] = linearly_separable(hidden_features(frozen), XOR_TARGETS)
        start = time.perf_counter()
        loss_frozen[k] = frozen.fit(
            XOR_INPUTS, XOR_TARGETS, epochs=epochs, lr=lr, batch_size=4, shuffle=False, trainable=[False, True]
        ).loss
        t_frozen += time.perf_counter() - start
        start = time.perf_counter()
        loss_full[k] = full.fit(XOR_INPUTS, XOR_TARGETS, epochs=epochs, lr=lr, batch_size=4, shuffle=False).loss
        t_full += time.perf_counter() - start
        solved_frozen[k] = xor_correct(frozen) == 4
        solved_full[k] = xor_correct(full) == 4
    return FrozenHiddenResult(
        seed_list, epochs, lr, loss_frozen, loss_full, solved_frozen, solved_full, separable, t_frozen, t_full
    )


# ------------------------------------------------------------------ tutorial section 5


@dataclass
class GradcheckRow:
    """One network of ``fastbp gradcheck``: times are per gradient, in seconds."""

    n_params: int
    hidden: int
    seconds_numerical: float
    seconds_backprop: float
    max_difference: float

    @property
    def ratio(self):
        return self.seconds_numerical / self.seconds_backprop


GRADCHECK_TARGETS = (100, 300, 1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000)
GRADCHECK_INPUTS = 10


def gradcheck_sizes(max_n=10_000, n_in=GRADCHECK_INPUTS):
    """(hidden width h, N) of the networks n_in-h-h-1 whose N is closest to 100, 300, 1000, ... up to max_n."""
    sizes = []
    for target in GRADCHECK_TARGETS:
        if target > max_n * 1.05:
            break
        # N = n_in h + h + h h + h + h + 1 = h^2 + (n_in + 3) h + 1
        h = max(1, round((-(n_in + 3) + math.sqrt((n_in + 3) ** 2 + 4 * (target - 1))) / 2))
        sizes.append((h, h * h + (n_in + 3) * h + 1))
    return sizes


def _seconds_per_call(fn, repeats=5, min_block=0.02, budget=2.0):
    """Median time of one call of fn, which has already run once (so it is compiled).

    Calls are timed in blocks of at least ``min_block`` seconds; slow calls are
    repeated fewer times, so that the whole takes about ``budget`` seconds at most.
    """
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    if once >= min_block:
        samples = [once]
        for _ in range(min(repeats, max(1, int(budget / once))) - 1):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)
    number = math.ceil(min_block / max(once, 1e-9))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def gradcheck(max_n=10_000, batch=16, seed=0, eps=1e-6, activation="tanh", progress=_no_progress):
    """Tutorial section 5: numerical differentiation against backprop for networks of growing N.

    For each n_in-h-h-1 network of :func:`gradcheck_sizes` (``activation`` on
    every layer, float64, a random batch of ``batch`` samples), times
    ``numerical_gradient`` (2N forward passes) and ``net.gradients`` (one
    forward and one backward pass), each the median of a few repeats after a
    warm-up call that compiles, and compares the two gradients.
    """
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(batch, GRADCHECK_INPUTS))
    D = rng.normal(size=(batch, 1))
    rows = []
    sizes = gradcheck_sizes(max_n)
    for h, n_params in progress(sizes, total=len(sizes), desc="networks"):
        net = Network([GRADCHECK_INPUTS, h, h, 1], activations=activation, seed=seed)
        assert net.n_params == n_params
        g_numerical = numerical_gradient(net, X, D, eps=eps)
        _, g_backprop = net.gradients(X, D)
        max_difference = float(np.max(np.abs(g_numerical.flat - g_backprop.flat)))
        t_numerical = _seconds_per_call(lambda net=net: numerical_gradient(net, X, D, eps=eps))
        t_backprop = _seconds_per_call(lambda net=net, g=g_backprop: net.gradients(X, D, out=g))
        rows.append(GradcheckRow(n_params, h, t_numerical, t_backprop, max_difference))
    return rows
