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

from . import reference
from .network import Network

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
    """An exercise worked out: the inputs, the kernels' :class:`~fastbp.network.Trace`, and the cross-check."""

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


# ------------------------------------------------------------------ JSON


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


# ------------------------------------------------------------------ text

SYMBOLS = {
    "en": dict(delta="delta", eta="eta", sigma="sigma", times=" * ", dE="dE/d", arrow="<-", to="->"),
    "ja": dict(delta="δ", eta="η", sigma="σ", times=" × ", dE="∂E/∂", arrow="←", to="→"),
}

TEXT = {
    "en": {
        "title1": "Exercise 1 (tutorial section 7.1): backpropagation by hand in a simple 2-layer network",
        "network1": (
            "Network: input layer 1 unit (x); hidden layer 2 units (h1, h2), ReLU;\noutput layer 1 unit (y), identity."
        ),
        "title2": "Exercise 2 (tutorial section 7.2): backpropagation on the XOR problem",
        "network2": (
            "Network: input layer 2 units (x_1, x_2); hidden layer 2 units (h1, h2), sigmoid;\n"
            "output layer 1 unit (y), sigmoid."
        ),
        "notation": (
            "Notation as in the tutorial: layer 0 is the input, layer 1 the hidden layer, layer 2 the output.\n"
            "w_ij^(l) is the weight from unit i of layer l-1 to unit j of layer l, b_j^(l) the bias of unit j\n"
            "of layer l, z_j^(l) its weighted sum and y_j^(l) = f(z_j^(l)) its output;\n"
            "h1 = y_1^(1), h2 = y_2^(1) and y = y^(2)."
        ),
        "initial": "Initial values:",
        "note1": (
            "The tutorial's weights for this exercise are illegible in the source. fastbp uses these so that,\n"
            "for x = 1, h1 is active (z_1^(1) = 0.5 > 0) and h2 is not (z_2^(1) = -0.3 <= 0): both cases of the\n"
            "ReLU derivative appear. The input, biases, target and learning rate are the tutorial's.\n"
            "Try your own with --w1, --w2, --b1, --b2, --x, --d, --lr (see fastbp exercise 1 --help)."
        ),
        "note2": (
            "The weights and the input are the tutorial's. It gives no biases and no learning rate: fastbp\n"
            "takes the biases as 0 (as in exercise 1) and eta = 0.5.\n"
            "Try your own with --w1, --w2, --b1, --b2, --x, --d, --lr (see fastbp exercise 2 --help)."
        ),
        "custom": (
            "Given on the command line: {names}; the other values are fastbp's defaults\n"
            "(see fastbp exercise {number} --help)."
        ),
        "ex2a": (
            "(a) Why a single-layer perceptron (no hidden layer) cannot solve XOR is a figure:\n"
            "    fastbp plot xor-boundary -o xor.png"
        ),
        "ex2b": "(b) One learning step for the input ({x}) -> target {d}.",
        "ex2c": (
            "(c) What happens if only the output layer learns (no backpropagation into the hidden layer):\n"
            "    fastbp experiment frozen-hidden"
        ),
        "forward": (
            "Forward pass: each unit adds up its inputs times their weights, plus its bias,\n"
            "z_j^(l) = sum_i w_ij^(l) y_i^(l-1) + b_j^(l), then applies its activation: y_j^(l) = f(z_j^(l))."
        ),
        "forward_relu": "Hidden units: ReLU(z) = max(0, z). Output unit: the identity, y = z^(2).",
        "forward_sigmoid": "Hidden and output units: the sigmoid, sigma(z) = 1 / (1 + e^-z).",
        "error": "Error: E = 1/2 (y - d)^2, half the squared difference between the output y and the target d.",
        "out_delta": "Output error term: delta^(2) = dE/dz^(2) = (y - d) f'(z^(2)).",
        "out_delta_identity": "The output is the identity, f' = 1, so delta^(2) = y - d (tutorial section 4.1.2).",
        "out_delta_sigmoid": (
            "The tutorial derives it for an identity output (f' = 1, section 4.1.2). Here the output is a\n"
            "sigmoid, so the factor stays: sigma'(z) = sigma(z) (1 - sigma(z)) = y (1 - y)."
        ),
        "hidden_delta": (
            "Hidden error terms: delta_j^(1) = (sum_k delta_k^(2) w_jk^(2)) f'(z_j^(1)) (tutorial section 4.2.2).\n"
            "There is one output unit, so the sum is the single term delta^(2) w_j1^(2): the output's error\n"
            "flows back along the weight that leaves h_j, and is multiplied by the slope of h_j's activation,\n"
            "{slope}"
        ),
        "hidden_delta_relu": "ReLU'(z) = 1 if z > 0, else 0.",
        "hidden_delta_sigmoid": "sigma'(z_j^(1)) = y_j^(1) (1 - y_j^(1)).",
        "gradients": (
            "Gradients: dE/dw_ij^(l) = delta_j^(l) y_i^(l-1), the error term of the unit the weight leads to\n"
            "times the value that flows along the weight; dE/db_j^(l) = delta_j^(l) (tutorial 4.1, 4.2, 4.3)."
        ),
        "update": "Updated weights and biases: w <- w - eta dE/dw and b <- b - eta dE/db, with eta = {lr}.",
        "relu_dead": (
            "h{j} is inactive (z_{j}^(1) = {z} <= 0), so ReLU'(z_{j}^(1)) = 0: no error reaches h{j}, and its\n"
            "incoming weight and bias get zero gradient, so they do not change."
        ),
        "zero_input": (
            "x_{i} = 0, so the weights that leave x_{i} get zero gradient (dE/dw_{i}j^(1) = delta_j^(1) x_{i} = 0)\n"
            "and keep their values."
        ),
        "symmetric_before": (
            "h1 and h2 started with the same incoming weights, bias and outgoing weight, so they computed the\n"
            "same output, received the same error term and the same gradients. After the step they are still\n"
            "identical:"
        ),
        "symmetric_after": (
            "This holds after every step: from a symmetric start, gradient descent can never make the two\n"
            "hidden units differ, so the network acts as if it had a single hidden unit, which cannot represent\n"
            "XOR. That is why networks start from random weights; (c) asks what training can do from there."
        ),
        "check": "Check: a forward pass with the updated weights gives",
        "before": "(before the step: {v})",
        "after_down": "One step moved y towards d = {d} and lowered the error E.",
        "after_up": "The error went up: this learning rate is too large for this step.",
        "footer": (
            "Every number above was computed by fastbp's numba kernels (Network.trace) and matches the\n"
            "pure-Python reference (fastbp.reference.backward and .step) to within {tol:g}:\n"
            "largest difference {diff:.3g}."
        ),
        "mismatch": (
            "WARNING: fastbp's kernels and the pure-Python reference DISAGREE by {diff:.3g} (more than {tol:g})\n"
            "on {name}: kernels {a}, reference {b}.\n"
            "The numbers printed above cannot be trusted. This is a bug in fastbp: please report it."
        ),
        "parts1": ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"),
        "parts2": ("(1)", "(2)", "(3)", "(4)", "(5)", "(6)"),
    },
    "ja": {
        "title1": "問題 1(チュートリアル 7.1 節):シンプルな 2 層ネットワークでの誤差逆伝播法の手計算",
        "network1": (
            "ネットワーク構造:入力層 1 ニューロン (x)、隠れ層 2 ニューロン (h1, h2、ReLU)、\n"
            "出力層 1 ニューロン (y、恒等関数)"
        ),
        "title2": "問題 2(チュートリアル 7.2 節):XOR 問題における誤差逆伝播法",
        "network2": (
            "ネットワーク構造:入力層 2 ニューロン (x_1, x_2)、隠れ層 2 ニューロン (h1, h2、シグモイド)、\n"
            "出力層 1 ニューロン (y、シグモイド)"
        ),
        "notation": (
            "記号はチュートリアルと同じ。0 層目が入力層、1 層目が隠れ層、2 層目が出力層。\n"
            "w_ij^(l) は l-1 層目の i 番目のニューロンから l 層目の j 番目のニューロンへの重み、\n"
            "b_j^(l) は l 層目の j 番目のニューロンへのバイアス、z_j^(l) は活性化関数適用前の入力\n"
            "(重み付き線形和)、y_j^(l) = f(z_j^(l)) は活性化関数適用後の出力。\n"
            "h1 = y_1^(1)、h2 = y_2^(1)、y = y^(2) である。"
        ),
        "initial": "初期値:",
        "note1": (
            "原文の初期重みは判読できないため、fastbp ではこの値を選んだ。x = 1 のとき h1 は活性\n"
            "(z_1^(1) = 0.5 > 0)、h2 は非活性 (z_2^(1) = -0.3 ≤ 0) となり、ReLU の導関数の両方の場合が現れる。\n"
            "入力・バイアス・教師データ・学習率はチュートリアルの値。\n"
            "--w1, --w2, --b1, --b2, --x, --d, --lr で自分の値を試せる(fastbp exercise 1 --help を参照)。"
        ),
        "note2": (
            "重みと入力はチュートリアルの値。バイアスと学習率は書かれていないため、fastbp ではバイアスを\n"
            "0(問題 1 と同じ)、η = 0.5 とした。\n"
            "--w1, --w2, --b1, --b2, --x, --d, --lr で自分の値を試せる(fastbp exercise 2 --help を参照)。"
        ),
        "custom": (
            "コマンドラインで指定した値:{names}。それ以外は fastbp の既定値\n(fastbp exercise {number} --help を参照)。"
        ),
        "ex2a": (
            "(a) 単層パーセプトロン(隠れ層なし)で XOR 問題が解けない理由は図で示す:\n"
            "    fastbp plot xor-boundary -o xor.png"
        ),
        "ex2b": "(b) 入力 ({x}) → 出力 {d} の学習を 1 ステップ実行する。",
        "ex2c": (
            "(c) 誤差逆伝播法なしで(出力層の重みのみを更新して)学習するとどうなるか:\n"
            "    fastbp experiment frozen-hidden"
        ),
        "forward": (
            "順伝播:各ニューロンは入力と重みの積の和にバイアスを加えて\n"
            "z_j^(l) = Σ_i w_ij^(l) y_i^(l-1) + b_j^(l) を求め、活性化関数を通して y_j^(l) = f(z_j^(l)) を出力する。"
        ),
        "forward_relu": "隠れ層は ReLU(z) = max(0, z)、出力層は恒等関数 y = z^(2)。",
        "forward_sigmoid": "隠れ層も出力層もシグモイド関数 σ(z) = 1 / (1 + e^-z)。",
        "error": "誤差:E = 1/2 (y - d)^2(出力 y と教師データ d の差の二乗の半分)。",
        "out_delta": "出力層の誤差項:δ^(2) = ∂E/∂z^(2) = (y - d) f'(z^(2))。",
        "out_delta_identity": "出力層は恒等関数で f' = 1 なので δ^(2) = y - d(4.1.2 節)。",
        "out_delta_sigmoid": (
            "チュートリアルは出力層が恒等関数 (f' = 1) の場合を導出している(4.1.2 節)。ここでは出力層が\n"
            "シグモイドなので係数が残る:σ'(z) = σ(z)(1 - σ(z)) = y (1 - y)。"
        ),
        "hidden_delta": (
            "隠れ層の誤差項:δ_j^(1) = (Σ_k δ_k^(2) w_jk^(2)) f'(z_j^(1))(4.2.2 節)。\n"
            "出力ニューロンは 1 つなので和は δ^(2) w_j1^(2) の 1 項だけ。出力の誤差が h_j から出る重みを\n"
            "通って逆向きに伝わり、h_j の活性化関数の傾きが掛かる。{slope}"
        ),
        "hidden_delta_relu": "ReLU'(z) は z > 0 なら 1、それ以外は 0。",
        "hidden_delta_sigmoid": "σ'(z_j^(1)) = y_j^(1) (1 - y_j^(1))。",
        "gradients": (
            "各重みの勾配:∂E/∂w_ij^(l) = δ_j^(l) y_i^(l-1)(重みの行き先のニューロンの誤差項 × その重みを\n"
            "流れる値)、∂E/∂b_j^(l) = δ_j^(l)(4.1 節、4.2 節、4.3 節)。"
        ),
        "update": "更新後の重みとバイアス:w ← w - η ∂E/∂w、b ← b - η ∂E/∂b(学習率 η = {lr})。",
        "relu_dead": (
            "h{j} は非活性 (z_{j}^(1) = {z} ≤ 0) なので ReLU'(z_{j}^(1)) = 0。誤差は h{j} に届かず、\n"
            "h{j} に入る重みとバイアスの勾配は 0 で、値は変わらない。"
        ),
        "zero_input": (
            "x_{i} = 0 なので、x_{i} から出る重みの勾配は 0 (∂E/∂w_{i}j^(1) = δ_j^(1) x_{i} = 0) で、\n値は変わらない。"
        ),
        "symmetric_before": (
            "h1 と h2 は入る重み・バイアス・出る重みがすべて同じ状態から始まったので、出力も誤差項も勾配も\n"
            "同じになり、更新後も同一のまま:"
        ),
        "symmetric_after": (
            "これは何ステップ学習しても変わらない。対称な初期値からは勾配降下法で 2 つの隠れニューロンを\n"
            "区別できず、ネットワークは隠れニューロンが 1 つしかないのと同じになり、XOR を表現できない。\n"
            "重みを乱数で初期化するのはこのため。そこから何が学習できるかを問うのが (c) である。"
        ),
        "check": "確認:更新後の重みでもう一度順伝播すると",
        "before": "(更新前:{v})",
        "after_down": "1 ステップで y が d = {d} に近づき、誤差 E が減った。",
        "after_up": "誤差が増えた:このステップには学習率が大きすぎる。",
        "footer": (
            "上の数値はすべて fastbp の numba カーネル (Network.trace) で計算し、純 Python の参照実装\n"
            "(fastbp.reference.backward と .step) と {tol:g} 以内で一致することを確認した(最大の差:{diff:.3g})。"
        ),
        "mismatch": (
            "警告:fastbp のカーネルと純 Python の参照実装の結果が {diff:.3g} 食い違っている({tol:g} を超える)。\n"
            "{name}:カーネル {a}、参照実装 {b}。\n"
            "上に表示した数値は信頼できない。fastbp のバグなので報告してほしい。"
        ),
        "parts1": ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"),
        "parts2": ("(1)", "(2)", "(3)", "(4)", "(5)", "(6)"),
    },
}

LINE_WIDTH = 100
"""Equations longer than this are broken after each '=' (each step of the arithmetic on its own line)."""


def num(v, digits=6):
    """A number as a learner would write it: ``digits`` significant digits, no trailing zeros, 0 not -0."""
    v = float(v) + 0.0
    return f"{v:.{digits}g}"


def _indent(text, first, rest=None):
    """text with ``first`` before its first line and ``rest`` (default: first) before the others."""
    rest = first if rest is None else rest
    return "\n".join((first if k == 0 else rest) + line for k, line in enumerate(text.splitlines()))


def _equations(rows, indent):
    """Lines 'lhs = step = step = ...', left-hand sides padded to one width; long ones one step a line."""
    width = max(len(lhs) for lhs, _ in rows)
    lines = []
    for lhs, steps in rows:
        line = f"{indent}{lhs.ljust(width)} = " + " = ".join(steps)
        if len(line) <= LINE_WIDTH or len(steps) == 1:
            lines.append(line)
        else:
            lines.append(f"{indent}{lhs.ljust(width)} = {steps[0]}")
            lines.extend(f"{indent}{' ' * width} = {step}" for step in steps[1:])
    return lines


class _Names:
    """The tutorial's names of the quantities of an n_in-2-1 network, in the chosen language's symbols."""

    def __init__(self, n_in, lang):
        self.s = SYMBOLS[lang]
        self.n_in = n_in

    def x(self, i):
        return "x" if self.n_in == 1 else f"x_{i}"

    def w(self, l, i, j):
        return f"w_{i}{j}^({l})"

    def b(self, l, j):
        return f"b_{j}^(1)" if l == 1 else "b^(2)"

    def z(self, l, j):
        return f"z_{j}^(1)" if l == 1 else "z^(2)"

    def y(self, l, j):
        return f"y_{j}^(1)" if l == 1 else "y"

    def delta(self, l, j):
        return f"{self.s['delta']}_{j}^(1)" if l == 1 else f"{self.s['delta']}^(2)"

    def dw(self, l, i, j):
        return f"{self.s['dE']}{self.w(l, i, j)}"

    def db(self, l, j):
        return f"{self.s['dE']}{self.b(l, j)}"


def render(sol, lang="en", digits=6):
    """The worked exercise as text, in English ("en") or Japanese ("ja"), numbers to ``digits`` digits."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    T = TEXT[lang]
    S = SYMBOLS[lang]
    N = _Names(sol.spec.n_in, lang)
    times = S["times"]
    t = sol.trace
    hid, out = t.layers
    W1, W2 = sol.weights
    b1, b2 = sol.biases
    x, d = sol.x, sol.d
    n_in = sol.spec.n_in
    f_hidden, f_out = sol.spec.activations
    exercise_1 = sol.spec.number == "1"
    lines = []
    add = lines.append

    def n(v):
        return num(v, digits)

    def factor(v):
        """n(v), in parentheses when negative (for a factor after the first one)."""
        s = n(v)
        return f"({s})" if s.startswith("-") else s

    def vector(a):
        a = np.ravel(a)
        return n(a[0]) if a.size == 1 else "(" + ", ".join(n(v) for v in a) + ")"

    def product(*factors):
        return times.join([n(factors[0])] + [factor(f) for f in factors[1:]])

    # exercise 1 is parts (a)-(f); exercise 2(b) is one part, its steps numbered 1.-6. and indented below it
    parts = T["parts1"] if exercise_1 else T["parts2"]
    sub = "" if exercise_1 else "    "
    body = sub + "    "

    def heading(k, text):
        label = f"{parts[k]} "
        add(_indent(text, sub + label, sub + " " * len(label)))

    def note(text):
        add(_indent(text, body))

    def equations(rows):
        lines.extend(_equations(rows, body))

    def f_name(name):
        return {"relu": "ReLU", "sigmoid": S["sigma"], "tanh": "tanh"}[name]

    # ---- heading, network, notation, initial values
    add(T["title1"] if exercise_1 else T["title2"])
    add(T["network1"] if exercise_1 else T["network2"])
    add(T["notation"])
    add("")
    if not exercise_1:
        add(T["ex2a"])
        add("")
        add(T["ex2b"].format(x=", ".join(n(v) for v in x), d=n(d[0])))
    add(sub + T["initial"])
    unit = ["h1", "h2"]
    rows = []
    for i in range(n_in):
        for j in range(2):
            rows.append((f"{N.w(1, i + 1, j + 1)} = {n(W1[i, j])}", f"({N.x(i + 1)} {S['to']} {unit[j]})"))
    for j in range(2):
        rows.append((f"{N.w(2, j + 1, 1)} = {n(W2[j, 0])}", f"({unit[j]} {S['to']} y)"))
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        add(f"{body}{a.ljust(width)}  {b}")
    add(f"{body}{N.b(1, 1)} = {n(b1[0])}, {N.b(1, 2)} = {n(b1[1])}, {N.b(2, 1)} = {n(b2[0])}")
    add(f"{body}x = {vector(x)}, d = {n(d[0])}, {S['eta']} = {n(sol.lr)}")
    if sol.given:
        note(T["custom"].format(names=", ".join("--" + k for k in sol.given), number=sol.spec.number))
    else:
        note(T["note1"] if exercise_1 else T["note2"])
    add("")

    # ---- (a) forward pass
    heading(0, T["forward"])
    note(T["forward_relu"] if f_hidden == "relu" else T["forward_sigmoid"])
    rows = []
    for j in range(2):
        terms = " + ".join(f"{N.w(1, i + 1, j + 1)} {N.x(i + 1)}" for i in range(n_in)) + f" + {N.b(1, j + 1)}"
        nums = " + ".join(product(W1[i, j], x[i]) for i in range(n_in)) + f" + {factor(b1[j])}"
        rows.append((N.z(1, j + 1), [terms, nums, n(hid.z[j])]))
    for j in range(2):
        fn = f_name(f_hidden)
        rows.append((f"h{j + 1} = {N.y(1, j + 1)}", [f"{fn}({N.z(1, j + 1)})", f"{fn}({n(hid.z[j])})", n(hid.y[j])]))
    terms = " + ".join(f"{N.w(2, j + 1, 1)} {N.y(1, j + 1)}" for j in range(2)) + f" + {N.b(2, 1)}"
    nums = " + ".join(product(W2[j, 0], hid.y[j]) for j in range(2)) + f" + {factor(b2[0])}"
    rows.append(("z^(2)", [terms, nums, n(out.z[0])]))
    if f_out == "identity":
        rows.append(("y", ["z^(2)", n(out.y[0])]))
    else:
        fn = f_name(f_out)
        rows.append(("y", [f"{fn}(z^(2))", f"{fn}({n(out.z[0])})", n(out.y[0])]))
    equations(rows)
    add("")

    # ---- (b) error
    heading(1, T["error"])
    equations([("E", ["1/2 (y - d)^2", f"1/2 ({n(out.y[0])} - {factor(d[0])})^2", n(t.E)])])
    add("")

    # ---- (c) output error term
    heading(2, T["out_delta"])
    note(T["out_delta_identity"] if f_out == "identity" else T["out_delta_sigmoid"])
    y0 = n(out.y[0])
    diff = f"({y0} - {factor(d[0])})"
    if f_out == "identity":
        steps = [f"(y - d){times}1", f"{diff}{times}1", n(out.delta[0])]
    else:
        steps = [f"(y - d){times}y (1 - y)", f"{diff}{times}{y0}{times}(1 - {y0})", n(out.delta[0])]
    equations([(N.delta(2, 1), steps)])
    add("")

    # ---- (d) hidden error terms
    slope = T["hidden_delta_relu"] if f_hidden == "relu" else T["hidden_delta_sigmoid"]
    heading(3, T["hidden_delta"].format(slope=slope))
    rows = []
    for j in range(2):
        k = j + 1
        head = f"{N.delta(2, 1)}{times}{N.w(2, k, 1)}"
        if f_hidden == "relu":
            active = 1 if hid.z[j] > 0 else 0
            steps = [
                f"{head}{times}ReLU'({N.z(1, k)})",
                f"{product(out.delta[0], W2[j, 0])}{times}ReLU'({n(hid.z[j])})",
                product(out.delta[0], W2[j, 0], active),
                n(hid.delta[j]),
            ]
        else:
            yj = n(hid.y[j])
            steps = [
                f"{head}{times}{N.y(1, k)} (1 - {N.y(1, k)})",
                f"{product(out.delta[0], W2[j, 0], hid.y[j])}{times}(1 - {yj})",
                n(hid.delta[j]),
            ]
        rows.append((N.delta(1, k), steps))
    equations(rows)
    if f_hidden == "relu":
        for j in range(2):
            if not hid.z[j] > 0:
                note(T["relu_dead"].format(j=j + 1, z=n(hid.z[j])))
    add("")

    # ---- (e) gradients, output layer first (the order backprop computes them)
    heading(4, T["gradients"])
    rows = []
    for j in range(2):
        rows.append(
            (
                N.dw(2, j + 1, 1),
                [f"{N.delta(2, 1)}{times}{N.y(1, j + 1)}", product(out.delta[0], hid.y[j]), n(out.grad_weights[j, 0])],
            )
        )
    rows.append((N.db(2, 1), [N.delta(2, 1), n(out.grad_biases[0])]))
    for i in range(n_in):
        for j in range(2):
            rows.append(
                (
                    N.dw(1, i + 1, j + 1),
                    [
                        f"{N.delta(1, j + 1)}{times}{N.x(i + 1)}",
                        product(hid.delta[j], x[i]),
                        n(hid.grad_weights[i, j]),
                    ],
                )
            )
    for j in range(2):
        rows.append((N.db(1, j + 1), [N.delta(1, j + 1), n(hid.grad_biases[j])]))
    equations(rows)
    for i in range(n_in):
        if n_in > 1 and x[i] == 0:
            note(T["zero_input"].format(i=i + 1))
    add("")

    # ---- (f) update, in the same order
    heading(5, T["update"].format(lr=n(sol.lr)))
    rows = []

    def update_row(name, dname, old, grad, new):
        return (name, [f"{name} - {S['eta']} {dname}", f"{n(old)} - {product(sol.lr, grad)}", n(new)])

    for j in range(2):
        rows.append(
            update_row(N.w(2, j + 1, 1), N.dw(2, j + 1, 1), W2[j, 0], out.grad_weights[j, 0], out.new_weights[j, 0])
        )
    rows.append(update_row(N.b(2, 1), N.db(2, 1), b2[0], out.grad_biases[0], out.new_biases[0]))
    for i in range(n_in):
        for j in range(2):
            rows.append(
                update_row(
                    N.w(1, i + 1, j + 1), N.dw(1, i + 1, j + 1), W1[i, j], hid.grad_weights[i, j], hid.new_weights[i, j]
                )
            )
    for j in range(2):
        rows.append(update_row(N.b(1, j + 1), N.db(1, j + 1), b1[j], hid.grad_biases[j], hid.new_biases[j]))
    # 'w <- ...' rather than 'w = ...' for the first step: the arrow of the tutorial's update rule
    for line in _equations(rows, body):
        add(line.replace(" = ", f" {S['arrow']} ", 1) if line.strip()[:1] != "=" else line)
    nw, nb, nw2 = hid.new_weights, hid.new_biases, out.new_weights
    symmetric_before = np.array_equal(W1[:, 0], W1[:, 1]) and b1[0] == b1[1] and W2[0, 0] == W2[1, 0]
    symmetric_after = np.array_equal(nw[:, 0], nw[:, 1]) and nb[0] == nb[1] and nw2[0, 0] == nw2[1, 0]
    if symmetric_before and symmetric_after:
        add("")
        note(T["symmetric_before"])
        same = [f"{N.w(1, i + 1, 1)} = {N.w(1, i + 1, 2)} = {n(nw[i, 0])}" for i in range(n_in)]
        same += [f"{N.b(1, 1)} = {N.b(1, 2)} = {n(nb[0])}", f"{N.w(2, 1, 1)} = {N.w(2, 2, 1)} = {n(nw2[0, 0])}"]
        for k in range(0, len(same), 2):
            add(body + "    " + ",   ".join(same[k : k + 2]))
        note(T["symmetric_after"])
    add("")

    # ---- check: the error after the step
    add(sub + T["check"])
    rows = [("y", f"{n(sol.y_after[0])}", n(out.y[0])), ("E", f"{n(sol.E_after)}", n(t.E))]
    width = max(len(r[1]) for r in rows)
    for name, after, before in rows:
        add(f"{body}{name} = {after.ljust(width)}   {T['before'].format(v=before)}")
    add(sub + (T["after_down"].format(d=n(d[0])) if sol.E_after < t.E else T["after_up"]))
    add("")
    if not exercise_1:
        add(T["ex2c"])
        add("")
    if sol.ok:
        add(T["footer"].format(tol=TOLERANCE, diff=sol.max_difference))
    return "\n".join(lines)


def mismatch_warning(sol, lang="en"):
    """The loud warning printed when the kernels and the reference disagree by more than TOLERANCE."""
    w = sol.worst
    return TEXT[lang]["mismatch"].format(
        diff=w.difference, tol=TOLERANCE, name=w.name, a=np.array2string(w.kernels), b=np.array2string(w.reference)
    )
