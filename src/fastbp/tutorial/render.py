"""An exercise's solution as text: every formula with its numbers, in English or Japanese."""

import numpy as np

from fastbp.tutorial.exercises import LANGUAGES, TOLERANCE
from fastbp.tutorial.text import SYMBOLS, TEXT

LINE_WIDTH = 100


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


class _Page:
    """The lines of one rendered solution and what its sections share: texts, symbols, names, number format.

    Exercise 1 is parts (a)-(f); exercise 2(b) is one part, its steps numbered 1.-6. and indented below it:
    ``sub`` is the indent of a part's heading and ``body`` that of the lines below the heading.
    """

    def __init__(self, sol, lang, digits):
        self.sol = sol
        self.text = TEXT[lang]
        self.symbols = SYMBOLS[lang]
        self.names = _Names(sol.spec.n_in, lang)
        self.digits = digits
        self.exercise_1 = sol.spec.number == "1"
        self.parts = self.text["parts1"] if self.exercise_1 else self.text["parts2"]
        self.sub = "" if self.exercise_1 else "    "
        self.body = self.sub + "    "
        self.lines = []

    def add(self, line):
        self.lines.append(line)

    def num(self, v):
        return num(v, self.digits)

    def factor(self, v):
        """num(v), in parentheses when negative (for a factor after the first one)."""
        s = self.num(v)
        return f"({s})" if s.startswith("-") else s

    def vector(self, a):
        a = np.ravel(a)
        return self.num(a[0]) if a.size == 1 else "(" + ", ".join(self.num(v) for v in a) + ")"

    def product(self, *factors):
        return self.symbols["times"].join([self.num(factors[0])] + [self.factor(f) for f in factors[1:]])

    def heading(self, k, text):
        label = f"{self.parts[k]} "
        self.add(_indent(text, self.sub + label, self.sub + " " * len(label)))

    def note(self, text):
        self.add(_indent(text, self.body))

    def equations(self, rows):
        self.lines.extend(_equations(rows, self.body))

    def f_name(self, name):
        return {"relu": "ReLU", "sigmoid": self.symbols["sigma"], "tanh": "tanh"}[name]


def _initial_values(page):
    """The title, the network, the notation and the initial weights, biases, input, target and eta."""
    sol, T, S, N, n, add = page.sol, page.text, page.symbols, page.names, page.num, page.add
    W1, W2 = sol.weights
    b1, b2 = sol.biases
    x, d = sol.x, sol.d
    add(T["title1"] if page.exercise_1 else T["title2"])
    add(T["network1"] if page.exercise_1 else T["network2"])
    add(T["notation"])
    add("")
    if not page.exercise_1:
        add(T["ex2a"])
        add("")
        add(T["ex2b"].format(x=", ".join(n(v) for v in x), d=n(d[0])))
    add(page.sub + T["initial"])
    unit = ["h1", "h2"]
    rows = []
    for i in range(sol.spec.n_in):
        for j in range(2):
            rows.append((f"{N.w(1, i + 1, j + 1)} = {n(W1[i, j])}", f"({N.x(i + 1)} {S['to']} {unit[j]})"))
    for j in range(2):
        rows.append((f"{N.w(2, j + 1, 1)} = {n(W2[j, 0])}", f"({unit[j]} {S['to']} y)"))
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        add(f"{page.body}{a.ljust(width)}  {b}")
    add(f"{page.body}{N.b(1, 1)} = {n(b1[0])}, {N.b(1, 2)} = {n(b1[1])}, {N.b(2, 1)} = {n(b2[0])}")
    add(f"{page.body}x = {page.vector(x)}, d = {n(d[0])}, {S['eta']} = {n(sol.lr)}")
    if sol.given:
        page.note(T["custom"].format(names=", ".join("--" + k for k in sol.given), number=sol.spec.number))
    else:
        page.note(T["note1"] if page.exercise_1 else T["note2"])
    add("")


def _forward_pass(page):
    """Part (a): z and y of every unit, hidden layer then output."""
    sol, N, n, product, factor = page.sol, page.names, page.num, page.product, page.factor
    hid, out = sol.trace.layers
    W1, W2 = sol.weights
    b1, b2 = sol.biases
    x, n_in = sol.x, sol.spec.n_in
    f_hidden, f_out = sol.spec.activations
    page.heading(0, page.text["forward"])
    page.note(page.text["forward_relu"] if f_hidden == "relu" else page.text["forward_sigmoid"])
    rows = []
    for j in range(2):
        terms = " + ".join(f"{N.w(1, i + 1, j + 1)} {N.x(i + 1)}" for i in range(n_in)) + f" + {N.b(1, j + 1)}"
        nums = " + ".join(product(W1[i, j], x[i]) for i in range(n_in)) + f" + {factor(b1[j])}"
        rows.append((N.z(1, j + 1), [terms, nums, n(hid.z[j])]))
    for j in range(2):
        fn = page.f_name(f_hidden)
        rows.append((f"h{j + 1} = {N.y(1, j + 1)}", [f"{fn}({N.z(1, j + 1)})", f"{fn}({n(hid.z[j])})", n(hid.y[j])]))
    terms = " + ".join(f"{N.w(2, j + 1, 1)} {N.y(1, j + 1)}" for j in range(2)) + f" + {N.b(2, 1)}"
    nums = " + ".join(product(W2[j, 0], hid.y[j]) for j in range(2)) + f" + {factor(b2[0])}"
    rows.append(("z^(2)", [terms, nums, n(out.z[0])]))
    if f_out == "identity":
        rows.append(("y", ["z^(2)", n(out.y[0])]))
    else:
        fn = page.f_name(f_out)
        rows.append(("y", [f"{fn}(z^(2))", f"{fn}({n(out.z[0])})", n(out.y[0])]))
    page.equations(rows)
    page.add("")


def _error(page):
    """Part (b): the squared error E."""
    sol, n = page.sol, page.num
    out = sol.trace.layers[1]
    page.heading(1, page.text["error"])
    page.equations([("E", ["1/2 (y - d)^2", f"1/2 ({n(out.y[0])} - {page.factor(sol.d[0])})^2", n(sol.trace.E)])])
    page.add("")


def _output_delta(page):
    """Part (c): the output layer's error term delta^(2)."""
    sol, T, n, times = page.sol, page.text, page.num, page.symbols["times"]
    out = sol.trace.layers[1]
    f_out = sol.spec.activations[1]
    page.heading(2, T["out_delta"])
    page.note(T["out_delta_identity"] if f_out == "identity" else T["out_delta_sigmoid"])
    y0 = n(out.y[0])
    diff = f"({y0} - {page.factor(sol.d[0])})"
    if f_out == "identity":
        steps = [f"(y - d){times}1", f"{diff}{times}1", n(out.delta[0])]
    else:
        steps = [f"(y - d){times}y (1 - y)", f"{diff}{times}{y0}{times}(1 - {y0})", n(out.delta[0])]
    page.equations([(page.names.delta(2, 1), steps)])
    page.add("")


def _hidden_deltas(page):
    """Part (d): the hidden layer's error terms delta_j^(1), with a note for each inactive ReLU unit."""
    sol, T, N, n, product, times = page.sol, page.text, page.names, page.num, page.product, page.symbols["times"]
    hid, out = sol.trace.layers
    W2 = sol.weights[1]
    f_hidden = sol.spec.activations[0]
    slope = T["hidden_delta_relu"] if f_hidden == "relu" else T["hidden_delta_sigmoid"]
    page.heading(3, T["hidden_delta"].format(slope=slope))
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
    page.equations(rows)
    if f_hidden == "relu":
        for j in range(2):
            if not hid.z[j] > 0:
                page.note(T["relu_dead"].format(j=j + 1, z=n(hid.z[j])))
    page.add("")


def _gradients(page):
    """Part (e): every gradient, output layer first (the order backprop computes them)."""
    sol, N, n, product, times = page.sol, page.names, page.num, page.product, page.symbols["times"]
    hid, out = sol.trace.layers
    x, n_in = sol.x, sol.spec.n_in
    page.heading(4, page.text["gradients"])
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
    page.equations(rows)
    for i in range(n_in):
        if n_in > 1 and x[i] == 0:
            page.note(page.text["zero_input"].format(i=i + 1))
    page.add("")


def _update(page):
    """Part (f): every updated weight and bias, in the order of part (e); a note when the hidden units stay equal."""
    sol, T, S, N, n = page.sol, page.text, page.symbols, page.names, page.num
    hid, out = sol.trace.layers
    W1, W2 = sol.weights
    b1, b2 = sol.biases
    n_in = sol.spec.n_in
    page.heading(5, T["update"].format(lr=n(sol.lr)))
    rows = []

    def update_row(name, dname, old, grad, new):
        return (name, [f"{name} - {S['eta']} {dname}", f"{n(old)} - {page.product(sol.lr, grad)}", n(new)])

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
    for line in _equations(rows, page.body):
        page.add(line.replace(" = ", f" {S['arrow']} ", 1) if line.strip()[:1] != "=" else line)
    nw, nb, nw2 = hid.new_weights, hid.new_biases, out.new_weights
    symmetric_before = np.array_equal(W1[:, 0], W1[:, 1]) and b1[0] == b1[1] and W2[0, 0] == W2[1, 0]
    symmetric_after = np.array_equal(nw[:, 0], nw[:, 1]) and nb[0] == nb[1] and nw2[0, 0] == nw2[1, 0]
    if symmetric_before and symmetric_after:
        page.add("")
        page.note(T["symmetric_before"])
        same = [f"{N.w(1, i + 1, 1)} = {N.w(1, i + 1, 2)} = {n(nw[i, 0])}" for i in range(n_in)]
        same += [f"{N.b(1, 1)} = {N.b(1, 2)} = {n(nb[0])}", f"{N.w(2, 1, 1)} = {N.w(2, 2, 1)} = {n(nw2[0, 0])}"]
        for k in range(0, len(same), 2):
            page.add(page.body + "    " + ",   ".join(same[k : k + 2]))
        page.note(T["symmetric_after"])
    page.add("")


def _check_after_step(page):
    """The output and error after the step against before it; exercise 2(c)'s pointer; the cross-check footer."""
    sol, T, n, add = page.sol, page.text, page.num, page.add
    t = sol.trace
    out = t.layers[1]
    add(page.sub + T["check"])
    rows = [("y", f"{n(sol.y_after[0])}", n(out.y[0])), ("E", f"{n(sol.E_after)}", n(t.E))]
    width = max(len(r[1]) for r in rows)
    for name, after, before in rows:
        add(f"{page.body}{name} = {after.ljust(width)}   {T['before'].format(v=before)}")
    add(page.sub + (T["after_down"].format(d=n(sol.d[0])) if sol.E_after < t.E else T["after_up"]))
    add("")
    if not page.exercise_1:
        add(T["ex2c"])
        add("")
    if sol.ok:
        add(T["footer"].format(tol=TOLERANCE, diff=sol.max_difference))


_SECTIONS = (
    _initial_values,
    _forward_pass,
    _error,
    _output_delta,
    _hidden_deltas,
    _gradients,
    _update,
    _check_after_step,
)
"""The sections of the text in the order they are printed; each appends its lines to the page."""


def render(sol, lang="en", digits=6):
    """The worked exercise as text, in English ("en") or Japanese ("ja"), numbers to ``digits`` digits."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
    page = _Page(sol, lang, digits)
    for section in _SECTIONS:
        section(page)
    return "\n".join(page.lines)


def mismatch_warning(sol, lang="en"):
    """The loud warning printed when the kernels and the reference disagree by more than TOLERANCE."""
    w = sol.worst
    return TEXT[lang]["mismatch"].format(
        diff=w.difference, tol=TOLERANCE, name=w.name, a=np.array2string(w.kernels), b=np.array2string(w.reference)
    )
