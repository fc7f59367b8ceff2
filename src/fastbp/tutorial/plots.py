"""The tutorial's figures, drawn with matplotlib (an optional extra: ``pip install "fastbp[plot]"``).

Figures are made with matplotlib's object-oriented API on the Agg canvas
(``matplotlib.figure.Figure``, never ``pyplot``), so nothing needs a display
and no global matplotlib state changes.  Every function that draws first
calls :func:`require_matplotlib`, which raises :class:`MissingDependency`
with the command to run when matplotlib is not installed.
"""

import os

import numpy as np

from fastbp import kernels
from fastbp.tutorial.experiments import XOR_INPUTS, XOR_TARGETS

INSTALL_HINT = 'pip install "fastbp[plot]"'
DPI = 100


class MissingDependency(RuntimeError):
    """An optional package is not installed; ``str(exc)`` says what to install."""

    def __init__(self, package, purpose, extra="plot"):
        self.package = package
        hint = INSTALL_HINT if extra == "plot" else f'pip install "fastbp[{extra}]"'
        super().__init__(
            f"{purpose} needs {package}, which is not installed.\n"
            f"Install fastbp's {extra} extra with:  {hint}\n"
            f"(or just the package:  pip install {package})"
        )


def require_matplotlib(purpose="drawing figures"):
    """Import matplotlib, or raise MissingDependency saying how to install it."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("matplotlib", purpose) from exc


def _figure(width, height):
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path, dpi=DPI):
    """Write the figure (format from the file name's extension); returns (width_px, height_px, bytes)."""
    directory = os.path.dirname(os.fspath(path))
    if directory:
        os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    width, height = fig.get_size_inches()
    return round(width * dpi), round(height * dpi), os.path.getsize(path)


# ------------------------------------------------------------------ figure 1


def _activation_curves(name, x):
    """f(x) and f'(x) computed by fastbp's kernels (activation_forward, activation_derivative)."""
    code = kernels.ACTIVATION_CODES[name]
    z = np.ascontiguousarray(x, dtype=np.float64).reshape(1, -1)
    y = np.empty_like(z)
    dy = np.empty_like(z)
    kernels.activation_forward(code, z, y)
    kernels.activation_derivative(code, z, y, dy)
    return y[0], dy[0]


def activations_figure():
    """The tutorial's Figure 1: sigmoid, tanh and ReLU (top row) and their derivatives (bottom row)."""
    fig = _figure(9.0, 5.6)
    axes = fig.subplots(2, 3, sharex=True)
    x = np.linspace(-5.0, 5.0, 1001)  # includes x = 0 exactly
    specs = [
        ("sigmoid", r"sigmoid  $\sigma(x) = 1/(1+e^{-x})$", r"$\sigma'(x) = \sigma(x)\,(1-\sigma(x))$", "C0"),
        ("tanh", r"$\tanh(x) = (e^x - e^{-x})/(e^x + e^{-x})$", r"$\tanh'(x) = 1-\tanh^2(x)$", "C1"),
        ("relu", r"ReLU$(x) = \max(0, x)$", r"ReLU$'(x)$ = 1 if $x > 0$, else 0", "C2"),
    ]
    for k, (name, title, dtitle, color) in enumerate(specs):
        y, dy = _activation_curves(name, x)
        top, bottom = axes[0, k], axes[1, k]
        top.plot(x, y, color=color, lw=2)
        top.set_title(title, fontsize=10)
        if name == "relu":
            # the jump at 0: ReLU'(0) = 0 (filled dot), the limit from the right is 1 (open dot)
            left, right = x < 0, x > 0
            bottom.plot(x[left], dy[left], color=color, lw=2)
            bottom.plot(x[right], dy[right], color=color, lw=2)
            bottom.plot([0], [0], "o", color=color, ms=6)
            bottom.plot([0], [1], "o", mfc="white", mec=color, ms=6)
        else:
            bottom.plot(x, dy, color=color, lw=2)
        bottom.set_title(dtitle, fontsize=10)
        bottom.set_xlabel("$x$")
        bottom.set_ylim(-0.08, 1.12)
        for ax in (top, bottom):
            ax.axhline(0, color="0.6", lw=0.6)
            ax.axvline(0, color="0.6", lw=0.6)
            ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("$f(x)$")
    axes[1, 0].set_ylabel("$f'(x)$")
    # the sigmoid derivative's maximum, 0.25 at x = 0
    ax = axes[1, 0]
    ax.plot([0], [0.25], "o", color="C3", ms=7, zorder=3)
    ax.axhline(0.25, color="C3", lw=0.8, ls="--")
    ax.annotate(
        "maximum 0.25 at $x = 0$",
        xy=(0, 0.25),
        xytext=(0.6, 0.62),
        color="C3",
        fontsize=9,
        arrowprops=dict(arrowstyle="->", color="C3"),
    )
    fig.suptitle(
        "Figure 1: activation functions (top) and their derivatives (bottom), computed by fastbp.kernels",
        fontsize=11,
    )
    return fig


# ------------------------------------------------------------------ exercise 2(a)


def _xor_points(ax, wrong=None):
    for x, d in zip(XOR_INPUTS, XOR_TARGETS[:, 0]):
        marker, color = ("s", "C1") if d == 1 else ("o", "C0")
        ax.plot(x[0], x[1], marker, color=color, ms=13, mec="black", zorder=4)
        ax.annotate(f"{d:.0f}", (x[0], x[1]), color="white", ha="center", va="center", fontsize=8, zorder=5)
    if wrong is not None:
        for x in wrong:
            ax.plot(x[0], x[1], "o", ms=24, mfc="none", mec="red", mew=2, zorder=6)
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylim(-0.5, 1.5)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_xticks([0, 1])
    ax.set_yticks([0, 1])


def xor_boundary_figure(line, net, epochs, lr, seed):
    """Exercise 2(a): the best line of a single-layer perceptron beside a trained 2-2-1 network's regions.

    Parameters
    ----------
    line : fastbp.tutorial.experiments.Line
        From :func:`fastbp.tutorial.experiments.best_line`.
    net : Network
        The trained 2-2-1 network; its output is drawn over the square [-0.5, 1.5]^2.
    epochs, lr, seed : how it was trained (for the title).
    """
    fig = _figure(9.0, 4.4)
    from matplotlib.colors import ListedColormap

    left, right = fig.subplots(1, 2)
    g = np.linspace(-0.5, 1.5, 201)
    G1, G2 = np.meshgrid(g, g)
    grid = np.column_stack([G1.ravel(), G2.ravel()])
    regions = ListedColormap(["#cfe3f3", "#fbdcc0"])  # pale C0 (class 0), pale C1 (class 1)

    # left: the single-layer perceptron
    pred = line.predict(grid).reshape(G1.shape)
    left.contourf(G1, G2, pred, levels=[-0.5, 0.5, 1.5], cmap=regions)
    w1, w2 = line.w
    if abs(w2) > 1e-12:
        left.plot(g, -(w1 * g + line.b) / w2, color="black", lw=2)
    else:
        left.axvline(-line.b / w1, color="black", lw=2)
    _xor_points(left, wrong=XOR_INPUTS[line.predict(XOR_INPUTS) != XOR_TARGETS[:, 0]])
    left.set_title(
        f"single-layer perceptron: the best line, ${line.equation()}$,\n"
        f"gets {line.correct} of 4 right (circled: wrong)",
        fontsize=10,
    )

    # right: the trained network
    Y = net.forward(grid)[:, 0].reshape(G1.shape)
    filled = right.contourf(G1, G2, Y, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55, vmin=0, vmax=1)
    right.contour(G1, G2, Y, levels=[0.5], colors="black", linewidths=2)
    correct = int(np.sum(np.round(net.forward(XOR_INPUTS)) == XOR_TARGETS))
    _xor_points(right)
    right.set_title(
        f"2-2-1 sigmoid network after {epochs} epochs (eta = {lr:g}, seed {seed}):\n"
        f"{correct} of 4 right; black: output y = 0.5",
        fontsize=10,
    )
    fig.colorbar(filled, ax=right, label="network output $y$", shrink=0.85)
    fig.suptitle("Exercise 2(a): XOR is not linearly separable; a hidden layer bends the boundary", fontsize=11)
    return fig


# ------------------------------------------------------------------ loss curves


def loss_curve_figure(losses, title):
    """Loss per epoch on a log scale."""
    fig = _figure(6.4, 4.0)
    ax = fig.subplots()
    epochs = np.arange(1, len(losses) + 1)
    ax.semilogy(epochs, losses, lw=2)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss $E$ (mean over the 4 samples, log scale)")
    ax.set_title(title, fontsize=10)
    ax.text(0.97, 0.95, f"final E = {losses[-1]:.3g}", transform=ax.transAxes, ha="right", va="top", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    return fig


def _thin(curves, max_points=200):
    """Every k-th epoch, so that each curve has at most max_points points (the last epoch kept)."""
    n = curves.shape[-1]
    idx = np.unique(np.concatenate([np.arange(0, n, max(1, n // max_points)), [n - 1]]))
    return idx + 1, curves[..., idx]


def frozen_hidden_figure(result):
    """Exercise 2(c): loss curves of every seed, output layer only (left) and whole network (right)."""
    fig = _figure(9.0, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    n = len(result.seeds)
    panels = [
        (axes[0], result.loss_frozen, result.solved_frozen, "only the output layer trained (hidden frozen)"),
        (axes[1], result.loss_full, result.solved_full, "whole network trained by backprop"),
    ]
    for ax, curves, solved, title in panels:
        epochs, thin = _thin(curves)
        for curve, ok in zip(thin, solved):
            ax.semilogy(epochs, curve, color="C2" if ok else "C3", lw=0.6, alpha=0.35)
        ax.semilogy(epochs, np.median(thin, axis=0), color="black", lw=2, label="median")
        ax.axhline(0.125, color="0.4", ls="--", lw=1, label="E = 0.125 (output 0.5 everywhere)")
        ax.set_title(f"{title}:\n{int(solved.sum())} of {n} random starts solve XOR", fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("loss $E$ (log scale)")
    axes[1].legend(fontsize=8, loc="lower left")
    fig.suptitle(
        f"Exercise 2(c): XOR 2-2-1, {n} random starts, {result.epochs} epochs, eta = {result.lr:g}"
        " (green: solved, red: not)",
        fontsize=11,
    )
    return fig


# ------------------------------------------------------------------ tutorial section 5


def gradcheck_figure(rows, batch):
    """Tutorial section 5: time per gradient of both methods (left) and their ratio (right) against N."""
    fig = _figure(9.0, 4.0)
    left, right = fig.subplots(1, 2)
    N = np.array([r.n_params for r in rows], dtype=float)
    t_num = np.array([r.seconds_numerical for r in rows])
    t_bp = np.array([r.seconds_backprop for r in rows])
    ratio = t_num / t_bp
    left.loglog(N, t_num, "o-", label="numerical differentiation (2N forward passes)")
    left.loglog(N, t_bp, "s-", label="backprop (1 forward + 1 backward pass)")
    left.set_xlabel("number of parameters $N$")
    left.set_ylabel("seconds per gradient")
    left.set_title(f"time per gradient (batch of {batch})", fontsize=10)
    left.legend(fontsize=8)
    right.loglog(N, ratio, "o-", color="C3", label="measured ratio")
    right.loglog(N, N, "--", color="0.5", label="ratio = N")
    right.set_xlabel("number of parameters $N$")
    right.set_ylabel("numerical time / backprop time")
    right.set_title("the ratio grows like N", fontsize=10)
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(alpha=0.3, which="both")
    fig.suptitle("Tutorial section 5: numerical differentiation costs O(N) passes, backprop O(1)", fontsize=11)
    return fig
