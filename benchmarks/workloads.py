"""The benchmark workloads W1-W6 of fastbp's performance issue, each defined once.

Every ``setup_w*`` function takes an implementation name (``impl``) and returns ``run``, a
zero-argument callable that does one unit of the workload.  Setup allocates everything
``run`` needs and calls it once, so JIT compilation (numba, JAX, PyTorch's first-call work)
is done before anything is timed.  The asv suites (``bench_*.py``), ``tests/test_bench.py``
and ``compare.py`` all time these callables.

=====  ===============  ==========================================================  ===================
id     name             one ``run()``                                               peers
=====  ===============  ==========================================================  ===================
W1     xor-step         one ``net.step(x, d, lr)`` of the 2-2-1 sigmoid net, one    numba_empty, numpy,
                        sample, float64                                             torch, jax, python
W2     xor-train        ``fit`` on XOR: 4 samples, batch 1, 5000 epochs (20,000     numpy, torch, jax,
                        steps), lr 0.5, no shuffling, float64                       fastbp_step_loop
W3     digits-epoch     one shuffled epoch of batch-32 SGD on sklearn's digits      numpy, torch, jax,
                        (1437 rows), 64-64-10 tanh/sigmoid, squared error           sklearn_*
W4     wide-step        one ``step`` of 512-1024-1024-10 relu/relu/identity,        blas_bound, numpy,
                        batch 256, float64 or float32                               torch
W5     numgrad-ratio    ``net.gradients`` or ``fastbp.numerical_gradient`` of a      (the ratio of the
                        10-h-h-1 tanh net with ~1e2..1e5 parameters, batch 16        two is the number)
W6     start-up         a fresh ``python`` process: import fastbp, build the XOR    python_startup,
                        net, ``fit`` one epoch (warm or empty numba cache)          torch_import
=====  ===============  ==========================================================  ===================

Conventions
-----------
* A peer whose package is not installed raises ``NotImplementedError`` from :func:`require`;
  asv reports that as a skipped benchmark and the pytest suite turns it into a skip.
* Hand-written peers (numpy, torch, jax) do exactly fastbp's math: z = y_prev @ W + b,
  E = mean over samples of 1/2 sum_j (y_j - d_j)^2, plain gradient descent w <- w - lr dE/dw,
  from the same initial weights (:func:`init_parameters`), in float64 unless stated.
  PyTorch keeps its default thread count; JAX runs with ``jax_enable_x64``.
* ``run()`` returns the loss it computed (a Python float where the implementation gives one),
  except ``numba_empty``/``blas_bound`` (None), W5 (the gradient) and W6 (the child's output).
* ``run.params()``, where not None, returns ``(weights, biases)`` as lists of float64 arrays, so
  the tests can check that a peer computed the same numbers as fastbp.  Because setup calls
  ``run`` once, W1 and W4 runners have taken one step when setup returns; W2 and W3 runners
  start every run from the initial weights.
"""

import functools
import importlib
import importlib.util
import math
import statistics
import subprocess
import sys
import textwrap
import timeit

import numba
import numpy as np
import scipy.special

import fastbp

WORKLOADS = {
    "W1": "xor-step",
    "W2": "xor-train",
    "W3": "digits-epoch",
    "W4": "wide-step",
    "W5": "numgrad-ratio",
    "W6": "start-up",
}

IMPLS = {
    "W1": ("fastbp", "numba_empty", "numpy", "torch", "jax", "python"),
    "W2": ("fastbp", "fastbp_step_loop", "numpy", "torch", "jax"),
    "W3": ("fastbp", "fastbp_1thread", "numpy", "torch", "jax", "sklearn_mlpregressor", "sklearn_mlpclassifier"),
    "W4": ("fastbp", "blas_bound", "numpy", "torch"),
    "W5": ("gradients", "numerical_gradient"),
    "W6": ("fastbp_warm", "fastbp_cold", "python_startup", "torch_import"),
}

# W1, W2: the XOR network.
XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_D = np.array([[0.0], [1.0], [1.0], [0.0]])
XOR_SIZES = (2, 2, 1)
XOR_ACTIVATIONS = ("sigmoid", "sigmoid")
XOR_LR = 0.5
XOR_EPOCHS = 5000

# W3: sklearn's digits.
DIGITS_SIZES = (64, 64, 10)
DIGITS_ACTIVATIONS = ("tanh", "sigmoid")
DIGITS_BATCH = 32
DIGITS_LR = 0.5
DIGITS_TRAIN_ROWS = 1437
SKLEARN_REGRESSOR_LR = 0.05

# W4: a wide ReLU network.
WIDE_SIZES = (512, 1024, 1024, 10)
WIDE_ACTIVATIONS = ("relu", "relu", "identity")
WIDE_BATCH = 256
WIDE_LR = 1e-4  # small, so that repeated steps on the same batch stay finite
DTYPES = ("float64", "float32")

# W5: 10-h-h-1 tanh networks; N = h^2 + 13 h + 1 parameters.
NUMGRAD_HIDDEN = {"1e2": 5, "1e3": 26, "1e4": 94, "1e5": 310}
NUMGRAD_BATCH = 16
NUMGRAD_EPS = 1e-6

SEED = 0


# ----------------------------------------------------------------------------- helpers


def require(name):
    """Import and return module ``name``; ``NotImplementedError`` (asv's "skip") if it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NotImplementedError(f"{name} is not installed") from exc


def _jax():
    """jax, with float64 enabled (a process-wide setting, so it is made before any array is created)."""
    jax = require("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def _check_impl(workload, impl):
    if impl not in IMPLS[workload]:
        raise ValueError(f"unknown implementation {impl!r} for {workload}; choose from {IMPLS[workload]}")


def _runner(run, params=None):
    """Attach ``params`` (None or a function giving (weights, biases) as float64 arrays) to ``run``."""
    run.params = params
    return run


def _as_float64(arrays):
    return [np.array(a, dtype=np.float64) for a in arrays]


def init_parameters(sizes, activations, dtype=np.float64, seed=SEED):
    """The initial (weights, biases) every implementation of a workload starts from: fastbp's own initialisation."""
    net = fastbp.Network(list(sizes), list(activations), seed=seed, dtype=dtype)
    return [w.copy() for w in net.weights], [b.copy() for b in net.biases]


def numgrad_sizes(key):
    """Layer sizes (10, h, h, 1) of the W5 network for ``key`` in NUMGRAD_HIDDEN."""
    h = NUMGRAD_HIDDEN[key]
    return (10, h, h, 1)


def n_parameters(sizes):
    """Weights and biases of a dense network with these layer sizes."""
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def measure(fn, *, target=0.2, repeat=7, min_repeat=3, max_time=30.0):
    """Median seconds per call of ``fn``, timeit-style.

    The number of calls per sample grows (1, then by estimate) until one sample takes at least
    ``target`` seconds; those calibration samples double as warm-up.  Then ``repeat`` samples are
    taken, fewer if they would need more than ``max_time`` seconds, but at least ``min_repeat``.
    A function slower than ``target`` is timed one call per sample and its calibration call
    counts as the first sample.  GC is off while timing, as in ``timeit``.

    Returns a dict: median, min, max (seconds per call), number (calls per sample), samples.
    """
    timer = timeit.Timer(fn)
    number = 1
    t = timer.timeit(number)
    samples = []
    if t >= target:
        samples.append(t)
    else:
        while t < target:
            number = min(number * 100, max(number + 1, math.ceil(number * 1.2 * target / max(t, 1e-9))))
            t = timer.timeit(number)
    n_samples = max(min_repeat, min(repeat, int(max_time / max(t, 1e-9))))
    samples += timer.repeat(n_samples - len(samples), number) if n_samples > len(samples) else []
    per_call = [s / number for s in samples]
    return {
        "median": statistics.median(per_call),
        "min": min(per_call),
        "max": max(per_call),
        "number": number,
        "samples": len(per_call),
    }


# ----------------------------------------------------------------------------- numpy peer


_NUMPY_FORWARD = {
    "identity": lambda z: z,
    "sigmoid": lambda z: scipy.special.expit(z, out=z),  # one ufunc, overflow-free (scipy is fastbp's dependency)
    "tanh": lambda z: np.tanh(z, out=z),
    "relu": lambda z: np.maximum(z, 0, out=z),
}
# Derivatives from the layer's output y = f(z), as fastbp's kernels take them (None: f' = 1).
_NUMPY_DERIVATIVE = {
    "identity": None,
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: 1 - y * y,
    "relu": lambda y: y > 0,
}


class NumpyMLP:
    """A hand-written NumPy network: fastbp's math with ordinary NumPy expressions."""

    def __init__(self, weights, biases, activations, dtype=np.float64):
        self.weights = [np.array(w, dtype=dtype) for w in weights]
        self.biases = [np.array(b, dtype=dtype) for b in biases]
        self.initial = [w.copy() for w in self.weights], [b.copy() for b in self.biases]
        self.activations = tuple(activations)

    def reset(self):
        for w, w0 in zip(self.weights, self.initial[0]):
            w[...] = w0
        for b, b0 in zip(self.biases, self.initial[1]):
            b[...] = b0

    def step(self, X, D, lr):
        """One gradient-descent step on the batch (X, D); returns E before the update."""
        ys = [X]
        for W, b, name in zip(self.weights, self.biases, self.activations):
            z = ys[-1] @ W
            z += b
            ys.append(_NUMPY_FORWARD[name](z))
        n = X.shape[0]
        err = ys[-1] - D
        E = 0.5 * float(np.sum(err * err)) / n
        delta = err
        for layer in range(len(self.weights) - 1, -1, -1):
            derivative = _NUMPY_DERIVATIVE[self.activations[layer]]
            if derivative is not None:
                delta = delta * derivative(ys[layer + 1])
            grad_W = ys[layer].T @ delta
            grad_W /= n
            grad_b = delta.sum(axis=0)
            grad_b /= n
            if layer > 0:
                delta = delta @ self.weights[layer].T  # before this layer's update
            self.weights[layer] -= lr * grad_W
            self.biases[layer] -= lr * grad_b
        return E

    def params(self):
        return _as_float64(self.weights), _as_float64(self.biases)


# ----------------------------------------------------------------------------- PyTorch peer


class TorchMLP:
    """A PyTorch autograd network: leaf tensors W (n_below, n_above) and b, ``torch.addmm`` layers,
    ``E.backward()``, then ``p -= lr * p.grad`` under ``no_grad`` (default thread count)."""

    def __init__(self, weights, biases, activations, dtype=np.float64):
        torch = self.torch = require("torch")
        self.tdtype = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}[np.dtype(dtype)]
        self.weights = [torch.tensor(np.asarray(w, dtype=dtype), requires_grad=True) for w in weights]
        self.biases = [torch.tensor(np.asarray(b, dtype=dtype), requires_grad=True) for b in biases]
        self.parameters = [p for pair in zip(self.weights, self.biases) for p in pair]
        self.initial = [p.detach().clone() for p in self.parameters]
        forward = {"identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
        self.functions = [forward[name] for name in activations]

    def tensor(self, a):
        return self.torch.tensor(np.asarray(a), dtype=self.tdtype)

    def reset(self):
        with self.torch.no_grad():
            for p, p0 in zip(self.parameters, self.initial):
                p.copy_(p0)

    def step(self, X, D, lr):
        """One gradient-descent step on the batch (X, D) (tensors); returns E before the update."""
        torch = self.torch
        for p in self.parameters:
            p.grad = None
        y = X
        for W, b, f in zip(self.weights, self.biases, self.functions):
            y = f(torch.addmm(b, y, W))
        E = 0.5 * (y - D).square().sum() / X.shape[0]
        E.backward()
        with torch.no_grad():
            for p in self.parameters:
                p.sub_(p.grad, alpha=lr)
        return E.item()

    def params(self):
        return (
            [w.detach().numpy().astype(np.float64) for w in self.weights],
            [b.detach().numpy().astype(np.float64) for b in self.biases],
        )


# ----------------------------------------------------------------------------- JAX peer


def _jax_functions(activations):
    """(loss(params, X, D), sgd(params, X, D, lr) -> (new params, E)) for this architecture, not yet jitted."""
    jax = _jax()
    jnp = jax.numpy
    forward = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}
    functions = [forward[name] for name in activations]

    def loss(params, X, D):
        weights, biases = params
        y = X
        for W, b, f in zip(weights, biases, functions):
            y = f(y @ W + b)
        return 0.5 * jnp.sum((y - D) ** 2) / X.shape[0]

    def sgd(params, X, D, lr):
        E, grads = jax.value_and_grad(loss)(params, X, D)
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), E

    return loss, sgd


def _jax_params(weights, biases):
    jnp = _jax().numpy
    return [jnp.asarray(w) for w in weights], [jnp.asarray(b) for b in biases]


def _jax_to_numpy(params):
    return _as_float64(params[0]), _as_float64(params[1])


# ----------------------------------------------------------------------------- W1 xor-step


@numba.njit
def _empty(a, b, c, d, e, f):  # the floor of calling compiled code with six arrays
    return None


def setup_w1(impl):
    """W1: one gradient-descent step of the 2-2-1 sigmoid network on one XOR sample (x = [1, 0], d = [1]), float64."""
    _check_impl("W1", impl)
    weights, biases = init_parameters(XOR_SIZES, XOR_ACTIVATIONS)
    x, d, lr = XOR_X[2:3].copy(), XOR_D[2:3].copy(), XOR_LR
    if impl == "fastbp":
        net = fastbp.Network.from_weights(weights, biases, XOR_ACTIVATIONS)

        def run():
            return net.step(x, d, lr)

        params = functools.partial(_fastbp_params, net)
    elif impl == "numba_empty":
        W1, W2 = weights
        b1, b2 = biases

        def run():
            return _empty(x, d, W1, b1, W2, b2)

        params = None
    elif impl == "numpy":
        model = NumpyMLP(weights, biases, XOR_ACTIVATIONS)

        def run():
            return model.step(x, d, lr)

        params = model.params
    elif impl == "torch":
        model = TorchMLP(weights, biases, XOR_ACTIVATIONS)
        xt, dt = model.tensor(x), model.tensor(d)

        def run():
            return model.step(xt, dt, lr)

        params = model.params
    elif impl == "jax":
        jax = _jax()
        _, sgd = _jax_functions(XOR_ACTIVATIONS)
        step = jax.jit(functools.partial(sgd, lr=lr))
        state = [_jax_params(weights, biases)]
        xj, dj = jax.numpy.asarray(x), jax.numpy.asarray(d)

        def run():
            state[0], E = step(state[0], xj, dj)
            return float(E)  # waits for the result

        def params():
            return _jax_to_numpy(state[0])
    else:  # python
        activations = list(XOR_ACTIVATIONS)
        state = [[w.tolist() for w in weights], [b.tolist() for b in biases]]
        xl, dl = x.tolist(), d.tolist()

        def run():
            E, state[0], state[1] = fastbp.reference.step(state[0], state[1], activations, xl, dl, lr)
            return E

        def params():
            return _as_float64(state[0]), _as_float64(state[1])

    run()  # compilation
    return _runner(run, params)


def _fastbp_params(net):
    return _as_float64(net.weights), _as_float64(net.biases)


# ----------------------------------------------------------------------------- W2 xor-train


def setup_w2(impl, epochs=XOR_EPOCHS):
    """W2: train XOR from the initial weights, batch 1, no shuffling, ``epochs`` * 4 steps.

    ``run()`` returns the last epoch's mean E.
    """
    _check_impl("W2", impl)
    weights, biases = init_parameters(XOR_SIZES, XOR_ACTIVATIONS)
    X, D, lr = XOR_X.copy(), XOR_D.copy(), XOR_LR
    n = X.shape[0]
    rows = [(X[i : i + 1].copy(), D[i : i + 1].copy()) for i in range(n)]
    if impl in ("fastbp", "fastbp_step_loop"):
        net = fastbp.Network.from_weights(weights, biases, XOR_ACTIVATIONS)
        theta0 = net.flat_parameters.copy()
        if impl == "fastbp":

            def run():
                net.flat_parameters[...] = theta0
                return float(net.fit(X, D, epochs=epochs, lr=lr, batch_size=1, shuffle=False).loss[-1])

        else:  # 20,000 calls of step from Python: what fit saves

            def run():
                net.flat_parameters[...] = theta0
                for _ in range(epochs):
                    total = 0.0
                    for x, d in rows:
                        total += net.step(x, d, lr)
                return total / n

        params = functools.partial(_fastbp_params, net)
    elif impl in ("numpy", "torch"):
        model = (NumpyMLP if impl == "numpy" else TorchMLP)(weights, biases, XOR_ACTIVATIONS)
        if impl == "torch":
            rows = [(model.tensor(x), model.tensor(d)) for x, d in rows]

        def run():
            model.reset()
            for _ in range(epochs):
                total = 0.0
                for x, d in rows:
                    total += model.step(x, d, lr)
            return total / n

        params = model.params
    else:  # jax: the whole run is one lax.fori_loop
        jax = _jax()
        jnp = jax.numpy
        _, sgd = _jax_functions(XOR_ACTIVATIONS)

        @jax.jit
        def train(params, X, D):
            def body(i, carry):
                params, losses = carry
                k = i % n
                x = jax.lax.dynamic_slice_in_dim(X, k, 1)
                d = jax.lax.dynamic_slice_in_dim(D, k, 1)
                params, E = sgd(params, x, d, lr)
                return params, losses.at[i // n].add(E)

            params, losses = jax.lax.fori_loop(0, epochs * n, body, (params, jnp.zeros(epochs)))
            return params, losses / n

        params0 = _jax_params(weights, biases)
        Xj, Dj = jnp.asarray(X), jnp.asarray(D)
        state = [params0]

        def run():
            state[0], losses = train(params0, Xj, Dj)
            return float(losses[-1])

        def params():
            return _jax_to_numpy(state[0])

    run()  # compilation
    return _runner(run, params)


# ----------------------------------------------------------------------------- W3 digits-epoch


def digits_data():
    """(X, D): sklearn's bundled digits, the 1437 training rows of train_test_split(test_size=0.2, random_state=0).

    X (1437, 64) = pixels / 16, D (1437, 10) one-hot, both float64 C-contiguous.  Needs scikit-learn
    (``NotImplementedError`` otherwise); nothing is downloaded.
    """
    datasets = require("sklearn.datasets")
    model_selection = require("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    X_train, _, y_train, _ = model_selection.train_test_split(X, y, test_size=0.2, random_state=0)
    X = np.ascontiguousarray(X_train / 16.0, dtype=np.float64)
    D = np.ascontiguousarray(np.eye(10)[y_train], dtype=np.float64)
    return X, D


def synthetic_digits(n=DIGITS_TRAIN_ROWS, seed=SEED):
    """Stand-in data shaped like :func:`digits_data` (pixels k/16, one-hot labels), for machines without sklearn."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 17, size=(n, 64)) / 16.0
    D = np.eye(10)[rng.integers(0, 10, size=n)]
    return np.ascontiguousarray(X), np.ascontiguousarray(D)


def setup_w3(impl, data=None, shuffle=True):
    """W3: one epoch of batch-32 SGD, 64-64-10 tanh/sigmoid, from the initial weights; returns the epoch's mean batch E.

    ``data`` defaults to :func:`digits_data`.  With ``shuffle`` each implementation draws its own
    order (seeded), so only ``shuffle=False`` runs can be compared number for number.  The
    scikit-learn peers do similar, not identical, math: MLPRegressor has an identity output
    and sklearn's loss is also averaged over the 10 outputs; MLPClassifier (multilabel) has a
    sigmoid output but a cross-entropy loss.  Both use plain SGD (no momentum, no L2); the
    regressor with step size SKLEARN_REGRESSOR_LR, as DIGITS_LR makes it diverge.
    """
    _check_impl("W3", impl)
    X, D = digits_data() if data is None else (np.ascontiguousarray(data[0]), np.ascontiguousarray(data[1]))
    n, batch, lr = X.shape[0], DIGITS_BATCH, DIGITS_LR
    n_batches = -(-n // batch)
    weights, biases = init_parameters(DIGITS_SIZES, DIGITS_ACTIVATIONS)
    if impl in ("fastbp", "fastbp_1thread"):
        # fastbp trains this network on two threads where the process may use two CPUs; fastbp_1thread
        # is the same on one thread (fastbp.set_num_threads(1)), to show what the second one gives
        net = fastbp.Network.from_weights(weights, biases, DIGITS_ACTIVATIONS)
        theta0 = net.flat_parameters.copy()
        threads = 1 if impl == "fastbp_1thread" else None

        def run():
            net.flat_parameters[...] = theta0
            fastbp.set_num_threads(threads)
            try:
                return float(net.fit(X, D, epochs=1, lr=lr, batch_size=batch, shuffle=shuffle, seed=SEED).loss[0])
            finally:
                fastbp.set_num_threads(None)

        params = functools.partial(_fastbp_params, net)
    elif impl == "numpy":
        model = NumpyMLP(weights, biases, DIGITS_ACTIVATIONS)
        rng = np.random.default_rng(SEED)

        def run():
            model.reset()
            order = rng.permutation(n) if shuffle else np.arange(n)
            total = 0.0
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                total += model.step(X[rows], D[rows], lr)
            return total / n_batches

        params = model.params
    elif impl == "torch":
        model = TorchMLP(weights, biases, DIGITS_ACTIVATIONS)
        torch = model.torch
        Xt, Dt = model.tensor(X), model.tensor(D)
        generator = torch.Generator().manual_seed(SEED)

        def run():
            model.reset()
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            total = 0.0
            for start in range(0, n, batch):
                rows = order[start : start + batch]
                total += model.step(Xt[rows], Dt[rows], lr)
            return total / n_batches

        params = model.params
    elif impl == "jax":
        jax = _jax()
        jnp = jax.numpy
        _, sgd = _jax_functions(DIGITS_ACTIVATIONS)
        n_full = n // batch

        @jax.jit
        def epoch(params, key, X, D):
            key, subkey = jax.random.split(key)
            order = jax.random.permutation(subkey, n) if shuffle else jnp.arange(n)
            Xs, Ds = X[order], D[order]
            Xb = Xs[: n_full * batch].reshape(n_full, batch, X.shape[1])
            Db = Ds[: n_full * batch].reshape(n_full, batch, D.shape[1])
            params, losses = jax.lax.scan(lambda p, xd: sgd(p, xd[0], xd[1], lr), params, (Xb, Db))
            total = losses.sum()
            if n_full * batch < n:  # the last, smaller batch
                params, E = sgd(params, Xs[n_full * batch :], Ds[n_full * batch :], lr)
                total = total + E
            return params, key, total / n_batches

        params0 = _jax_params(weights, biases)
        Xj, Dj = jnp.asarray(X), jnp.asarray(D)
        state = [params0, jax.random.PRNGKey(SEED)]

        def run():
            state[0], state[1], E = epoch(params0, state[1], Xj, Dj)
            return float(E)

        def params():
            return _jax_to_numpy(state[0])
    else:  # sklearn_mlpregressor, sklearn_mlpclassifier: partial_fit = one epoch of SGD
        neural_network = require("sklearn.neural_network")
        common = dict(
            hidden_layer_sizes=(DIGITS_SIZES[1],), activation="tanh", solver="sgd", batch_size=batch,
            learning_rate="constant", momentum=0.0, nesterovs_momentum=False, alpha=0.0, shuffle=shuffle,
            random_state=SEED,
        )  # fmt: skip
        if impl == "sklearn_mlpregressor":
            # With its identity output, lr 0.2 and above diverge to inf within 3 epochs (measured);
            # the time of an epoch does not depend on the step size.
            model = neural_network.MLPRegressor(learning_rate_init=SKLEARN_REGRESSOR_LR, **common)
            model.partial_fit(X, D)
        else:
            model = neural_network.MLPClassifier(learning_rate_init=lr, **common)
            model.partial_fit(X, D.astype(np.int64), classes=np.arange(D.shape[1]))
        Y = D if impl == "sklearn_mlpregressor" else D.astype(np.int64)
        for coef, w in zip(model.coefs_, weights):
            coef[...] = w
        for intercept, b in zip(model.intercepts_, biases):
            intercept[...] = b
        initial = [a.copy() for a in model.coefs_ + model.intercepts_]

        def run():
            for a, a0 in zip(model.coefs_ + model.intercepts_, initial):
                a[...] = a0
            model.partial_fit(X, Y)
            return float(model.loss_)

        def params():
            return _as_float64(model.coefs_), _as_float64(model.intercepts_)

    run()  # compilation
    return _runner(run, params)


# ----------------------------------------------------------------------------- W4 wide-step


def wide_data(dtype, sizes=WIDE_SIZES, batch=WIDE_BATCH, seed=SEED):
    """(X, D) for W4: X ~ N(0, 1) of shape (batch, sizes[0]), D ~ N(0, 1) of shape (batch, sizes[-1])."""
    rng = np.random.default_rng(seed + 1)
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    D = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    return X, D


def setup_w4(impl, dtype="float64", sizes=WIDE_SIZES, batch=WIDE_BATCH):
    """W4: one gradient-descent step of a relu/relu/identity network on one batch, in ``dtype``.

    ``blas_bound`` is the floor for any implementation that uses BLAS: the 8 matrix products
    of one step (3 forward, 3 weight gradients, 2 hidden deltas) as ``np.dot(a, b, out=...)``
    on preallocated arrays of the same shapes.  ``sizes``/``batch`` are for small test runs.
    """
    _check_impl("W4", impl)
    dtype = np.dtype(dtype)
    activations = WIDE_ACTIVATIONS[: len(sizes) - 1]
    if len(sizes) != 4:
        raise ValueError(f"W4 networks have 3 layers, got sizes {sizes}")
    weights, biases = init_parameters(sizes, activations, dtype=dtype)
    X, D = wide_data(dtype, sizes, batch)
    lr = WIDE_LR
    if impl == "fastbp":
        net = fastbp.Network.from_weights(weights, biases, activations)

        def run():
            return net.step(X, D, lr)

        params = functools.partial(_fastbp_params, net)
    elif impl == "blas_bound":
        W1, W2, W3 = weights
        H1 = np.empty((batch, sizes[1]), dtype)
        H2 = np.empty((batch, sizes[2]), dtype)
        Y = np.empty((batch, sizes[3]), dtype)
        dY, dH2, dH1 = np.empty_like(Y), np.empty_like(H2), np.empty_like(H1)
        dY[...] = D
        dH2[...] = 1
        dH1[...] = 1
        gW1, gW2, gW3 = (np.empty_like(w) for w in weights)

        def run():
            np.dot(X, W1, out=H1)  # forward
            np.dot(H1, W2, out=H2)
            np.dot(H2, W3, out=Y)
            np.dot(H2.T, dY, out=gW3)  # backward: weight gradient, hidden delta, ...
            np.dot(dY, W3.T, out=dH2)
            np.dot(H1.T, dH2, out=gW2)
            np.dot(dH2, W2.T, out=dH1)
            np.dot(X.T, dH1, out=gW1)

        params = None
    elif impl == "numpy":
        model = NumpyMLP(weights, biases, activations, dtype=dtype)

        def run():
            return model.step(X, D, lr)

        params = model.params
    else:  # torch
        model = TorchMLP(weights, biases, activations, dtype=dtype)
        Xt, Dt = model.tensor(X), model.tensor(D)

        def run():
            return model.step(Xt, Dt, lr)

        params = model.params
    run()  # compilation
    return _runner(run, params)


# ----------------------------------------------------------------------------- W5 numgrad-ratio


def numgrad_problem(key):
    """(net, X, D) for W5: a 10-h-h-1 tanh float64 network (h from NUMGRAD_HIDDEN[key]) and a batch of 16."""
    sizes = numgrad_sizes(key)
    net = fastbp.Network(list(sizes), "tanh", seed=SEED)
    rng = np.random.default_rng(SEED + 2)
    X = rng.standard_normal((NUMGRAD_BATCH, sizes[0]))
    D = rng.uniform(-0.5, 0.5, (NUMGRAD_BATCH, sizes[-1]))
    return net, X, D


def setup_w5(impl, key="1e2"):
    """W5: ``net.gradients(X, D, out=g)`` (impl "gradients") or ``fastbp.numerical_gradient`` (2N forward passes).

    Setup calls ``run`` once (compilation), except for the numerical gradient at N ~ 1e5, which
    is compiled on a 10-20-20-1 network instead (fastbp's generic compiled code does not depend
    on the sizes; small architectures get their own generated code, which this one is too big
    for).  ``run()`` returns the Gradients.
    """
    _check_impl("W5", impl)
    if key not in NUMGRAD_HIDDEN:
        raise ValueError(f"unknown W5 size {key!r}; choose from {tuple(NUMGRAD_HIDDEN)}")
    net, X, D = numgrad_problem(key)
    if impl == "gradients":
        _, g = net.gradients(X, D)  # compilation

        def run():
            return net.gradients(X, D, out=g)[1]

    else:

        def run():
            return fastbp.numerical_gradient(net, X, D, eps=NUMGRAD_EPS)

        if key == "1e5":  # ~15 s a call: compile on a 10-20-20-1 network instead (661 parameters)
            small = fastbp.Network([10, 20, 20, 1], "tanh", seed=SEED)
            fastbp.numerical_gradient(small, X, D, eps=NUMGRAD_EPS)
        else:
            run()  # compilation
    return _runner(run)


def measure_numgrad_ratio(key, quick=False, runs=None):
    """(seconds of numerical_gradient, seconds of gradients, their ratio) for W5 size ``key``, in this process.

    ``runs``: the (numerical_gradient, gradients) runners from :func:`setup_w5`, made here if None.
    The bar is ratio >= 0.5 N: the numerical gradient needs 2N forward passes, backprop one
    forward and one backward pass.  The numerical gradient is timed with few samples (one
    call takes ~15 s at N = 1e5).
    """
    numerical, gradients = runs or (setup_w5("numerical_gradient", key), setup_w5("gradients", key))
    t_grad = measure(gradients, **(QUICK if quick else FULL))["median"]
    t_num = measure(numerical, **(SLOW_QUICK if quick else SLOW))["median"]
    return t_num, t_grad, t_num / t_grad


# measure() options: FULL and QUICK for everything, SLOW(_QUICK) for the numerical gradient of W5.
QUICK = dict(target=0.05, repeat=3, min_repeat=1, max_time=5.0)
FULL = dict(target=0.2, repeat=7, min_repeat=3, max_time=30.0)
SLOW_QUICK = dict(target=0.1, repeat=3, min_repeat=1, max_time=2.0)
SLOW = dict(target=0.1, repeat=3, min_repeat=1, max_time=40.0)


# ----------------------------------------------------------------------------- W6 start-up

STARTUP_CODE = textwrap.dedent(
    """
    import numpy as np
    import fastbp
    net = fastbp.Network([2, 2, 1], activations=["sigmoid", "sigmoid"], seed=0)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    D = np.array([[0.0], [1.0], [1.0], [0.0]])
    history = net.fit(X, D, epochs=1, lr=0.5, batch_size=1, shuffle=False)
    """
).strip()

# Run before STARTUP_CODE in the same process, before numba is imported: empty caches, removed
# again when the process exits.  NUMBA_CACHE_DIR holds numba's compiled machine code;
# FASTBP_CACHE_DIR the source fastbp generates for small architectures (fastbp.engine._codegen).
EMPTY_CACHE_SETUP = textwrap.dedent(
    """
    import os, tempfile
    _empty_cache = tempfile.TemporaryDirectory(prefix="fastbp-cold-")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(_empty_cache.name, "numba")
    os.environ["FASTBP_CACHE_DIR"] = os.path.join(_empty_cache.name, "fastbp")
    """
).strip()


# Printed by setup_w6's runs (not by asv's timeraw_, which reads the timing from stdout).
REPORT = {"fastbp_warm": "print(history.loss[-1])", "fastbp_cold": "print(history.loss[-1])"}


def startup_code(impl):
    """(stmt, setup) source for W6 ``impl``, the form asv's ``timeraw_`` benchmarks return.

    fastbp_warm: import fastbp, build the XOR net, fit one epoch, with numba's cache as it is
    (warm once it has been run); fastbp_cold: the same with NUMBA_CACHE_DIR (and FASTBP_CACHE_DIR)
    in a new empty directory, so every kernel compiles; python_startup: nothing (the interpreter's own start);
    torch_import: ``import torch``.
    """
    _check_impl("W6", impl)
    if impl == "torch_import":
        if importlib.util.find_spec("torch") is None:
            raise NotImplementedError("torch is not installed")
        return "import torch", ""
    if impl == "python_startup":
        return "pass", ""
    return STARTUP_CODE, EMPTY_CACHE_SETUP if impl == "fastbp_cold" else ""


def setup_w6(impl, warm=True):
    """W6: ``run()`` starts ``python -c CODE`` (setup, stmt of :func:`startup_code`, then a print of the
    loss for fastbp) and returns its stdout.

    The subprocess's wall time includes the interpreter's start.  With ``warm``, fastbp_warm
    runs once in setup to fill numba's on-disk cache.
    """
    stmt, setup = startup_code(impl)
    code = "\n".join(filter(None, [setup, stmt, REPORT.get(impl)]))

    def run():
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"W6 {impl} failed with exit code {done.returncode}:\n{done.stderr}")
        return done.stdout

    if warm and impl == "fastbp_warm":
        run()  # fills numba's cache
    return _runner(run)


SETUPS = {"W1": setup_w1, "W2": setup_w2, "W3": setup_w3, "W4": setup_w4, "W5": setup_w5, "W6": setup_w6}
