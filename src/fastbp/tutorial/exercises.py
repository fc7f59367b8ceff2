"""The tutorial's exercises 1 and 2(b), worked step by step: ``fastbp exercise 1`` and ``fastbp exercise 2``.

Every number is computed by the package's kernels (:meth:`Network.trace`) and
cross-checked against the pure-Python oracle :mod:`fastbp.reference`
(``backward`` and ``step``); :func:`solve` records the largest difference and
:attr:`Solution.ok` says whether it is within :data:`TOLERANCE`.

Exercise 1's initial weights are illegible in the tutorial's source.  fastbp
uses W1 = [[0.5, -0.3]] (x -> h1, x -> h2) and W2 = [[0.8], [0.4]], all biases 0,
x = 1, d = 0.2, eta = 0.1: for x = 1, h1 is active (z = 0.5) and h2 is not
(z = -0.3, where ReLU' = 0), so both cases of the ReLU derivative appear.
Exercise 2(b) uses the tutorial's all-0.5 weights with biases 0 and, as the
tutorial gives no learning rate, eta = 0.5.

English output is plain ASCII (delta, eta, dE/dw); Japanese output uses the
tutorial's symbols (δ, η, ∂E/∂w).
"""

from dataclasses import dataclass

import numpy as np

from fastbp.nn.network import Network
from fastbp.tutorial import reference

TOLERANCE = 1e-12


"""Largest allowed difference between the kernels and the reference: |a - b| / max(1, |b|)."""


LANGUAGES = ("en", "ja")


@dataclass(frozen=True)
class ExerciseSpec:
    """One exercise: its network and default values (w1 is row-major (n_in, 2): w_11, w_12, w_21, w_22, ...)."""

    number: str
    activations: tuple
    n_in: int
    defaults: dict


EXERCISES = {
    "1": ExerciseSpec(
        "1",
        ("relu", "identity"),
        1,
        dict(w1=(0.5, -0.3), w2=(0.8, 0.4), b1=(0.0, 0.0), b2=(0.0,), x=(1.0,), d=(0.2,), lr=0.1),
    ),
    "2": ExerciseSpec(
        "2",
        ("sigmoid", "sigmoid"),
        2,
        dict(w1=(0.5, 0.5, 0.5, 0.5), w2=(0.5, 0.5), b1=(0.0, 0.0), b2=(0.0,), x=(1.0, 0.0), d=(1.0,), lr=0.5),
    ),
}


OPTION_NAMES = ("w1", "w2", "b1", "b2", "x", "d", "lr")


@dataclass
class Check:
    """One quantity computed twice: by the kernels and by the reference."""

    name: str
    kernels: np.ndarray
    reference: np.ndarray
    difference: float


@dataclass
class Solution:
    """An exercise worked out: the inputs, the kernels' :class:`~fastbp.Trace`, and the cross-check."""

    spec: ExerciseSpec
    weights: list
    biases: list
    x: np.ndarray
    d: np.ndarray
    lr: float
    given: tuple
    trace: object
    y_after: np.ndarray
    E_after: float
    checks: list

    @property
    def max_difference(self):
        return max(c.difference for c in self.checks)

    @property
    def worst(self):
        return max(self.checks, key=lambda c: c.difference)

    @property
    def ok(self):
        return self.max_difference <= TOLERANCE


def _difference(a, b):
    """Largest |a - b| / max(1, |b|) over the elements; equal infinities count as 0 and NaN as inf."""
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        return float("inf")
    worst = 0.0
    for u, v in zip(a.tolist(), b.tolist()):
        if u == v:
            continue
        diff = abs(u - v) / max(1.0, abs(v))
        worst = max(worst, diff if diff == diff else float("inf"))
    return worst


def solve(number, **given):
    """Work exercise ``number`` ("1" or "2") with the kernels and check every number against the reference.

    Parameters
    ----------
    number : str
        "1" (1-2-1, ReLU hidden, identity output) or "2" (2-2-1 XOR net, sigmoid).
    **given
        Values that replace the defaults; any of ``w1`` (row-major (n_in, 2):
        w_11, w_12, w_21, w_22, ...), ``w2`` (w_11, w_21), ``b1`` (2), ``b2``
        (1), ``x`` (n_in), ``d`` (1), ``lr``.  None means the default.

    Returns
    -------
    Solution
    """
    spec = EXERCISES[number]
    unknown = set(given) - set(OPTION_NAMES)
    if unknown:
        raise TypeError(f"unknown values {sorted(unknown)}; expected some of {OPTION_NAMES}")
    values = dict(spec.defaults)
    values.update({k: v for k, v in given.items() if v is not None})
    weights = [
        np.array(values["w1"], dtype=float).reshape(spec.n_in, 2),
        np.array(values["w2"], dtype=float).reshape(2, 1),
    ]
    biases = [np.array(values["b1"], dtype=float).reshape(2), np.array(values["b2"], dtype=float).reshape(1)]
    x = np.array(values["x"], dtype=float).reshape(spec.n_in)
    d = np.array(values["d"], dtype=float).reshape(1)
    lr = float(values["lr"])
    activations = list(spec.activations)

    # the kernels
    net = Network.from_weights(weights=weights, biases=biases, activations=activations)
    trace = net.trace(x, d, lr=lr)
    after = Network.from_weights(
        weights=[layer.new_weights for layer in trace.layers],
        biases=[layer.new_biases for layer in trace.layers],
        activations=activations,
    )
    trace_after = after.trace(x, d)

    # the reference, one scalar at a time
    w_lists = [w.tolist() for w in weights]
    b_lists = [b.tolist() for b in biases]
    ref = reference.backward(w_lists, b_lists, activations, x.tolist(), d.tolist())
    E_step, new_w, new_b = reference.step(w_lists, b_lists, activations, [x.tolist()], [d.tolist()], lr)
    _, ys_after = reference.forward(new_w, new_b, activations, x.tolist())
    E_after = reference.squared_error(ys_after[-1], d.tolist())

    pairs = [("E", trace.E, ref["E"]), ("E (reference.step)", trace.E, E_step)]
    for l, layer in enumerate(trace.layers, start=1):
        pairs += [
            (f"z^({l})", layer.z, ref["z"][l]),
            (f"y^({l})", layer.y, ref["y"][l]),
            (f"delta^({l})", layer.delta, ref["delta"][l]),
            (f"dE/dw^({l})", layer.grad_weights, ref["grad_weights"][l - 1]),
            (f"dE/db^({l})", layer.grad_biases, ref["grad_biases"][l - 1]),
            (f"new w^({l})", layer.new_weights, new_w[l - 1]),
            (f"new b^({l})", layer.new_biases, new_b[l - 1]),
        ]
    pairs += [("y after the step", trace_after.y, ys_after[-1]), ("E after the step", trace_after.E, E_after)]
    checks = [Check(name, np.asarray(a, float), np.asarray(b, float), _difference(a, b)) for name, a, b in pairs]
    return Solution(
        spec,
        weights,
        biases,
        x,
        d,
        lr,
        tuple(k for k in OPTION_NAMES if given.get(k) is not None),
        trace,
        trace_after.y,
        trace_after.E,
        checks,
    )


def _plain(a):
    """ndarray or float -> nested lists of Python floats, with -0.0 written as 0.0."""
    return (np.asarray(a, dtype=float) + 0.0).tolist()


def as_dict(sol):
    """The numbers of a :class:`Solution`, ready for ``json.dumps`` (layers listed from layer 1 to the output)."""
    t = sol.trace
    return {
        "exercise": sol.spec.number,
        "network": {"sizes": [sol.spec.n_in, 2, 1], "activations": list(sol.spec.activations)},
        "x": _plain(sol.x),
        "d": _plain(sol.d),
        "lr": sol.lr,
        "initial": {"weights": [_plain(w) for w in sol.weights], "biases": [_plain(b) for b in sol.biases]},
        "layers": [
            {
                "l": layer.index,
                "activation": layer.activation,
                "z": _plain(layer.z),
                "y": _plain(layer.y),
                "delta": _plain(layer.delta),
                "grad_weights": _plain(layer.grad_weights),
                "grad_biases": _plain(layer.grad_biases),
                "new_weights": _plain(layer.new_weights),
                "new_biases": _plain(layer.new_biases),
            }
            for layer in t.layers
        ],
        "y": _plain(t.y),
        "E": _plain(t.E),
        "after_step": {"y": _plain(sol.y_after), "E": _plain(sol.E_after)},
        "reference_check": {
            "max_difference": sol.max_difference,
            "tolerance": TOLERANCE,
            "ok": sol.ok,
            "checked": [c.name for c in sol.checks],
        },
    }


"""Equations longer than this are broken after each '=' (each step of the arithmetic on its own line)."""
