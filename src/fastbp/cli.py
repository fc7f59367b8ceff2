"""The ``fastbp`` command (also ``python -m fastbp``): the backprop tutorial, runnable.

Subcommands: ``exercise 1``, ``exercise 2``, ``xor``, ``plot activations``,
``plot xor-boundary``, ``experiment frozen-hidden`` and ``gradcheck``; each has
``--help``.  matplotlib (for figures) and tqdm (for progress bars) are optional:
``pip install "fastbp[plot]"``.
"""

import argparse
import json
import math
import os
import re
import statistics
import sys
import textwrap
import time

import numpy as np

from . import experiments, tutorial
from .experiments import XOR_INPUTS, XOR_TARGETS

EXIT_OK = 0
EXIT_NOT_LEARNED = 1
EXIT_USAGE = 2
EXIT_MISSING_PACKAGE = 3
EXIT_MISMATCH = 4
EXIT_CANNOT_WRITE = 5
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away

EXIT_CODES = """exit codes:
  0  success
  1  fastbp xor: the network did not learn XOR (fewer than 4 of 4 outputs right)
  2  bad command line
  3  an optional package is missing (matplotlib for figures): pip install "fastbp[plot]"
  4  fastbp exercise: the kernels and the pure-Python reference disagree (a bug: please report it)
  5  a file could not be written (the message says which and why)"""

__all__ = ["main", "build_parser", "XOR_INPUTS", "XOR_TARGETS"]


# ------------------------------------------------------------------ helpers


def _finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _positive_float(text):
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _gradcheck_max_n(text):
    value = _positive_int(text)
    smallest = experiments.GRADCHECK_TARGETS[0]
    if value < smallest:
        raise argparse.ArgumentTypeError(f"must be at least {smallest} (the smallest network has N close to it)")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


# the formats matplotlib writes with its own Agg, vector and Pillow backends
FIGURE_FORMATS = ("png", "pdf", "svg", "svgz", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")


def _dpi(text):
    value = _positive_int(text)
    if not 10 <= value <= 1000:  # below 10 matplotlib's fonts fail; above 1000 a figure takes gigabytes
        raise argparse.ArgumentTypeError(f"must be between 10 and 1000 pixels per inch, got {text!r}")
    return value


def _figure_path(text):
    extension = os.path.splitext(text)[1].lower().lstrip(".")
    if extension not in FIGURE_FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs the extension of an image format: {', '.join('.' + f for f in FIGURE_FORMATS)}"
        )
    return text


def _write(text, stream=None):
    """print(), replacing characters the stream's encoding cannot show instead of failing."""
    stream = sys.stdout if stream is None else stream
    try:
        print(text, file=stream)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        print(text.encode(encoding, "replace").decode(encoding), file=stream)


def _tqdm():
    """tqdm's class, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def _progress(iterable, total=None, desc=None):
    """A tqdm bar on stderr when tqdm is installed and stderr is a terminal; the plain iterable otherwise."""
    tqdm = _tqdm()
    if tqdm is None:
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=None, leave=False)


def _require_matplotlib(option):
    from . import plots

    plots.require_matplotlib(option)


def _seconds(t):
    """A duration with a unit a person reads at a glance: 1.23 s, 45.6 ms, 7.89 us."""
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def _keep(formula):
    """A formula that _paragraph will not break across lines."""
    return formula.replace(" ", "\xa0")


def _paragraph(text, indent=""):
    """text wrapped to 100 columns, every line starting with indent; formulas marked by _keep stay whole."""
    text = re.sub(r"[ \t\n]+", " ", text.strip())
    wrapped = textwrap.fill(text, width=100, initial_indent=indent, subsequent_indent=indent)
    return wrapped.replace("\xa0", " ")


def _ratio(r):
    return f"{r:.0f}" if r >= 10 else f"{r:.2f}"


def _saved(path, size):
    width, height, n_bytes = size
    return f"wrote {path} ({width} x {height} pixels, {n_bytes / 1024:.0f} KiB)"


# ------------------------------------------------------------------ fastbp exercise


def _exercise(args):
    given = {name: getattr(args, name) for name in tutorial.OPTION_NAMES}
    for name in ("b2", "d"):  # single numbers on the command line, vectors of length 1 in the network
        if given[name] is not None:
            given[name] = (given[name],)
    sol = tutorial.solve(args.number, **given)
    if args.json:
        _write(json.dumps(tutorial.as_dict(sol), indent=2))
    else:
        _write(tutorial.render(sol, args.lang, digits=args.digits))
    if not sol.ok:
        _write("\n" + tutorial.mismatch_warning(sol, args.lang), sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK


def _add_exercise_parsers(sub):
    exercise = sub.add_parser(
        "exercise",
        help="work the tutorial's exercise 1 or 2(b) step by step, numbers from the kernels",
        description=(
            "Work one of the tutorial's exercises (section 7) step by step: each formula in words, then the\n"
            "numbers of the forward pass, the error E, the error terms delta, every gradient and every updated\n"
            "weight and bias. The numbers come from fastbp's numba kernels (Network.trace) and are checked\n"
            "against the pure-Python reference (fastbp.reference)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    numbers = exercise.add_subparsers(dest="number", required=True, metavar="{1,2}")
    about = {
        "1": (
            "exercise 1: backprop by hand in a 1-2-1 network (ReLU hidden, identity output), parts (a) to (f)",
            "Exercise 1 (tutorial 7.1): input x; hidden units h1, h2 with ReLU; output y, identity.\n\n"
            "Defaults: w_11^(1) = 0.5 (x -> h1), w_12^(1) = -0.3 (x -> h2), w_11^(2) = 0.8 (h1 -> y),\n"
            "w_21^(2) = 0.4 (h2 -> y), all biases 0, x = 1, d = 0.2, eta = 0.1.\n"
            "The tutorial's weights are illegible in the source; these were chosen so that h1 is active\n"
            "(z = 0.5 > 0) and h2 is not (z = -0.3 <= 0), so both cases of the ReLU derivative appear.\n"
            "The input, biases, target and learning rate are the tutorial's.",
        ),
        "2": (
            "exercise 2(b): one backprop step on the XOR network (2-2-1, sigmoid) from all-0.5 weights",
            "Exercise 2(b) (tutorial 7.2): inputs x_1, x_2; hidden units h1, h2 and output y, all sigmoid.\n\n"
            "Defaults: the tutorial's weights, all 0.5; biases 0; input x = (1, 0); target d = 1;\n"
            "learning rate eta = 0.5 (the tutorial gives no biases and no learning rate: these are fastbp's\n"
            "choice). Exercise 2(a) is `fastbp plot xor-boundary`, 2(c) is `fastbp experiment frozen-hidden`.",
        ),
    }
    for number, spec in tutorial.EXERCISES.items():
        dflt = spec.defaults
        short, long = about[number]
        example = "--w1 0.5 -0.3" if spec.n_in == 1 else "--w1 0.5 -0.3 0.2 -0.1"
        p = numbers.add_parser(
            number,
            help=short,
            description=long,
            epilog=(
                "w_ij^(l) is the weight from unit i of layer l-1 to unit j of layer l (layer 0: the input).\n"
                f"Negative values work as they are: fastbp exercise {number} {example}\n\n" + EXIT_CODES
            ),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if spec.n_in == 1:
            w1_names, x_names = ("W11", "W12"), ("X",)
            w1_help = "hidden-layer weights w_11^(1) (x -> h1), w_12^(1) (x -> h2)"
        else:
            w1_names, x_names = ("W11", "W12", "W21", "W22"), ("X1", "X2")
            w1_help = "hidden-layer weights w_11^(1), w_12^(1) (from x_1), w_21^(1), w_22^(1) (from x_2)"

        def fmt(values):
            return " ".join(tutorial.num(v) for v in values)

        p.add_argument(
            "--w1",
            nargs=len(w1_names),
            type=_finite_float,
            metavar=w1_names,
            help=f"{w1_help} (default: {fmt(dflt['w1'])})",
        )
        p.add_argument(
            "--w2",
            nargs=2,
            type=_finite_float,
            metavar=("W11", "W21"),
            help=f"output weights w_11^(2) (h1 -> y), w_21^(2) (h2 -> y) (default: {fmt(dflt['w2'])})",
        )
        p.add_argument(
            "--b1",
            nargs=2,
            type=_finite_float,
            metavar=("B1", "B2"),
            help=f"hidden biases b_1^(1), b_2^(1) (default: {fmt(dflt['b1'])})",
        )
        p.add_argument("--b2", type=_finite_float, metavar="B", help=f"output bias b^(2) (default: {fmt(dflt['b2'])})")
        p.add_argument(
            "--x",
            nargs=len(x_names),
            type=_finite_float,
            metavar=x_names,
            help=f"the input (default: {fmt(dflt['x'])})",
        )
        p.add_argument("--d", type=_finite_float, metavar="D", help=f"the target (default: {fmt(dflt['d'])})")
        p.add_argument(
            "--lr",
            type=_positive_float,
            metavar="ETA",
            help=f"the learning rate eta, > 0 (default: {tutorial.num(dflt['lr'])})",
        )
        p.add_argument(
            "--lang",
            choices=tutorial.LANGUAGES,
            default="en",
            help="language of the explanations: en (English, default) or ja (Japanese)",
        )
        p.add_argument(
            "--digits",
            type=_positive_int,
            default=6,
            help="significant digits of the printed numbers (default 6; --json prints them all)",
        )
        p.add_argument(
            "--json",
            action="store_true",
            help="print the numbers as JSON (full precision, layers from 1 to the output) instead",
        )
        p.set_defaults(func=_exercise)


# ------------------------------------------------------------------ fastbp xor


def _xor(args):
    if args.plot:
        _require_matplotlib("fastbp xor --plot")
    net = experiments.xor_network(args.seed)
    print("Training the tutorial's XOR network: 2-2-1, sigmoid hidden and output units,")
    print(
        f"squared error, full batch of 4 samples, learning rate eta = {args.lr}, "
        f"{args.epochs} epochs, seed {args.seed}."
    )
    print()
    tqdm = _tqdm()
    if tqdm is None and sys.stderr.isatty():
        print('(no progress bar: tqdm is not installed; pip install "fastbp[plot]" adds it)', file=sys.stderr)
    bar = (
        None if tqdm is None else tqdm(total=args.epochs, desc="training", unit="epoch", file=sys.stderr, disable=None)
    )

    def out(line):
        if bar is None:
            print(line)
        else:
            bar.write(line, file=sys.stdout)

    n_reports = 10
    chunk = max(1, args.epochs // n_reports)
    # the bar moves ten times per reported chunk; the fit calls in between cost a few microseconds each
    step = max(1, chunk // 10)
    losses = []
    start = time.perf_counter()
    done = 0
    out(f"{'epoch':>7}  {'loss E':>12}")
    while done < args.epochs:
        n = min(chunk, args.epochs - done)
        end = done + n
        while done < end:
            k = min(step, end - done)
            history = net.fit(XOR_INPUTS, XOR_TARGETS, epochs=k, lr=args.lr, batch_size=4, shuffle=False)
            losses.extend(history.loss)
            done += k
            if bar is not None:
                bar.update(k)
        out(f"{done:>7}  {losses[-1]:>12.6f}")
    elapsed = time.perf_counter() - start
    if bar is not None:
        bar.close()
    Y = net.forward(XOR_INPUTS)
    print()
    print("learned truth table:")
    print(" x1  x2   target   output  rounded")
    for x, d, y in zip(XOR_INPUTS, XOR_TARGETS, Y):
        print(f" {x[0]:>2.0f}  {x[1]:>2.0f}   {d[0]:>6.0f}   {y[0]:.4f}  {round(y[0]):>7d}")
    correct = int(np.sum(np.round(Y) == XOR_TARGETS))
    print()
    print(f"final loss E = {losses[-1]:.6g}; {correct}/4 correct; training took {elapsed:.3f} s (compilation included)")
    if args.plot:
        from . import plots

        fig = plots.loss_curve_figure(
            np.array(losses),
            f"XOR, 2-2-1 sigmoid network: loss per epoch (eta = {args.lr:g}, seed {args.seed}, {correct}/4 right)",
        )
        print(_saved(args.plot, plots.save(fig, args.plot)))
    return EXIT_OK if correct == 4 else EXIT_NOT_LEARNED


def _add_xor_parser(sub):
    xor = sub.add_parser(
        "xor",
        help="train the tutorial's 2-2-1 sigmoid network on XOR and print the truth table",
        description=(
            "Train the tutorial's XOR network (exercise 2: 2-2-1, sigmoid hidden and output units, squared error)\n"
            "full batch, print the loss every 10% of the epochs, the learned truth table, the final loss and\n"
            "the training time. A progress bar appears on stderr when tqdm is installed and stderr is a terminal."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    xor.add_argument("--epochs", type=_positive_int, default=5000, help="full-batch epochs (default 5000)")
    xor.add_argument("--lr", type=_positive_float, default=2.0, help="learning rate eta (default 2.0)")
    xor.add_argument("--seed", type=_seed, default=0, help="seed of the initial weights (default 0)")
    xor.add_argument(
        "--plot", type=_figure_path, metavar="PATH", help="also save the loss curve to PATH (needs matplotlib)"
    )
    xor.set_defaults(func=_xor)


# ------------------------------------------------------------------ fastbp plot


def _plot_activations(args):
    from . import plots

    plots.require_matplotlib("fastbp plot activations")
    print(f"Drawing Figure 1 into {args.output} ...", flush=True)  # matplotlib takes a few seconds to start
    fig = plots.activations_figure()
    print(_saved(args.output, plots.save(fig, args.output, dpi=args.dpi)))
    print("Figure 1 of the tutorial: sigmoid, tanh and ReLU (top row) and their derivatives (bottom row);")
    print("the sigmoid's derivative is largest at x = 0, where it is 0.25, while ReLU's is 1 for every x > 0.")
    return EXIT_OK


def _plot_xor_boundary(args):
    from . import plots

    plots.require_matplotlib("fastbp plot xor-boundary")
    line = experiments.best_line()
    net, losses = experiments.train_xor(args.seed, args.epochs, args.lr)
    correct = experiments.xor_correct(net)
    fig = plots.xor_boundary_figure(line, net, args.epochs, args.lr, args.seed)
    print(_saved(args.output, plots.save(fig, args.output, dpi=args.dpi)))
    print(
        _paragraph(
            "Exercise 2(a), left: a single-layer perceptron answers 1 on one side of a line"
            f" {_keep('w_1 x_1 + w_2 x_2 + b = 0')}. The best line, {_keep(line.equation())} (found by trying"
            " every direction), gets"
            f" {line.correct} of the 4 points right: no line puts (0, 1) and (1, 0) on one side and (0, 0) and"
            " (1, 1) on the other, so XOR is not linearly separable."
        )
    )
    print(
        _paragraph(
            "Right: the 2-2-1 network's hidden layer bends the boundary (black: output y = 0.5) into a band;"
            f" after {args.epochs} epochs (eta = {args.lr:g}, seed {args.seed}) it gets {correct} of the 4 points"
            " right."
        )
    )
    return EXIT_OK


def _add_plot_parsers(sub):
    plot = sub.add_parser(
        "plot",
        help="draw the tutorial's figures (needs matplotlib)",
        description='Draw the tutorial\'s figures as image files. Needs matplotlib: pip install "fastbp[plot]".',
    )
    figures = plot.add_subparsers(dest="figure", required=True, metavar="{activations,xor-boundary}")
    p = figures.add_parser(
        "activations",
        help="Figure 1: sigmoid, tanh, ReLU and their derivatives",
        description=(
            "The tutorial's Figure 1: sigmoid, tanh and ReLU on the top row, their derivatives on the bottom row,\n"
            "with the sigmoid derivative's maximum, 0.25 at x = 0, marked. Curves computed by fastbp.kernels."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-o",
        "--output",
        type=_figure_path,
        default="activations.png",
        metavar="PATH",
        help="image file to write; .png, .svg, .pdf ... (default activations.png)",
    )
    p.add_argument("--dpi", type=_dpi, default=100, help="pixels per inch, 10-1000 (default 100: 900 x 560 pixels)")
    p.set_defaults(func=_plot_activations)
    p = figures.add_parser(
        "xor-boundary",
        help="exercise 2(a): the best single-layer line on XOR beside a trained 2-2-1 network's regions",
        description=(
            "Exercise 2(a): the four XOR points with the best a single-layer perceptron can do (a line that gets\n"
            "at most 3 of 4 right) beside the decision regions a trained 2-2-1 sigmoid network learns."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-o",
        "--output",
        type=_figure_path,
        default="xor-boundary.png",
        metavar="PATH",
        help="image file to write (default xor-boundary.png)",
    )
    p.add_argument("--epochs", type=_positive_int, default=5000, help="training epochs of the network (default 5000)")
    p.add_argument("--lr", type=_positive_float, default=2.0, help="learning rate eta (default 2.0)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the network's initial weights (default 0)")
    p.add_argument("--dpi", type=_dpi, default=100, help="pixels per inch, 10-1000 (default 100: 900 x 440 pixels)")
    p.set_defaults(func=_plot_xor_boundary)


# ------------------------------------------------------------------ fastbp experiment frozen-hidden


def _frozen_hidden(args):
    if args.plot:
        _require_matplotlib("fastbp experiment frozen-hidden --plot")
    from .activations import init_bound

    seeds = "seed 0" if args.seeds == 1 else f"seeds 0 to {args.seeds - 1}"
    print("Exercise 2(c): can XOR be learned without backpropagation, by training only the output layer?")
    print(f"The tutorial's XOR network (2-2-1, sigmoid) from {args.seeds} random starts ({seeds}). Each start is")
    print(f"trained twice with the same budget, {args.epochs} full-batch epochs with learning rate eta = {args.lr:g}:")
    print("  output layer only: fit(..., trainable=[False, True]); the hidden weights and biases stay at their")
    print("                     random start")
    print("  whole network:     fit(...); backprop trains both layers")
    print("A run solves XOR when all four outputs round to their target.")
    print()
    r = experiments.frozen_hidden(args.seeds, args.epochs, args.lr, progress=_progress)
    n = args.seeds
    median_frozen = statistics.median(r.loss_frozen[:, -1])
    median_full = statistics.median(r.loss_full[:, -1])
    rows = [
        ("solved XOR", *(f"{int(s.sum())}/{n} ({100 * s.mean():.0f}%)" for s in (r.solved_frozen, r.solved_full))),
        ("median final loss E", f"{median_frozen:.6g}", f"{median_full:.6g}"),
        ("training time, all runs", _seconds(r.seconds_frozen), _seconds(r.seconds_full)),
        ("time per epoch", *(_seconds(t / (n * args.epochs)) for t in (r.seconds_frozen, r.seconds_full))),
    ]
    print(f"{'':24}{'output layer only':>19}{'whole network':>16}")
    for name, a, b in rows:
        print(f"{name:24}{a:>19}{b:>16}")
    print()
    bound = init_bound("sigmoid", 2, 2)
    n_sep = int(r.separable.sum())
    n_sep_solved = int((r.separable & r.solved_frozen).sum())
    failed = n - int(r.solved_full.sum())
    paragraphs = [
        "With the hidden layer frozen, the output unit sees fixed features h = (h1, h2) of each input, a random"
        " projection of x squashed by the sigmoid. Its weighted sum"
        f" {_keep('z^(2) = w_11^(2) h1 + w_21^(2) h2 + b^(2)')} can"
        " only cut the h-plane along a straight line, so output-only training can succeed only if the four"
        " feature vectors are linearly separable: h(0,1) and h(1,0) on one side, h(0,0) and h(1,1) on the other.",
        (
            f"Checked by linear programming, they are separable in {n_sep} of the {n} random starts (output-only"
            f" training solved {n_sep_solved} of those); in the others no output weights solve XOR, however long"
            " they train."
            if n_sep
            else f"Checked by linear programming, they are separable in none of the {n} random starts: from"
            " these starts no output weights solve XOR, however long they train."
        ),
        f"The starting weights are small (uniform in [-{bound:.2f}, {bound:.2f}]) and the biases 0, so z stays"
        " near 0, where the sigmoid is almost a straight line: the four feature vectors keep nearly the"
        " parallelogram shape of the four inputs, and XOR on a parallelogram is not linearly separable. The best"
        " the output can then do is answer close to 0.5 for every input,"
        f" {_keep('E = 1/2 (0.5)^2 = 0.125')}: the median"
        f" output-only run ends at {median_frozen:.4g}.",
        "Backprop also trains the hidden layer: the hidden error terms delta^(1) tell each hidden unit how to"
        " change its features so that the output unit can separate them."
        + (
            f" {failed} of the {n} full-network runs still {'fails' if failed == 1 else 'fail'} within this"
            " budget: with only two hidden units,"
            " gradient descent can stall on a plateau or in a local minimum."
            if failed
            else ""
        ),
        "(Output-only training runs on fastbp's generic kernels, full training on code generated for the 2-2-1"
        " architecture: hence the difference in time.)",
    ]
    print("Why training only the output layer struggles:")
    for text in paragraphs:
        print(_paragraph(text, "  "))
    if args.plot:
        from . import plots

        print()
        print(_saved(args.plot, plots.save(plots.frozen_hidden_figure(r), args.plot)))
    return EXIT_OK


def _add_experiment_parsers(sub):
    experiment = sub.add_parser(
        "experiment",
        help="experiments from the tutorial's exercises",
        description="Experiments that answer the tutorial's exercises with many runs.",
    )
    which = experiment.add_subparsers(dest="experiment", required=True, metavar="{frozen-hidden}")
    p = which.add_parser(
        "frozen-hidden",
        help="exercise 2(c): train only the output layer vs the whole network, over many seeds",
        description=(
            "Exercise 2(c): over many random starts of the XOR network (2-2-1, sigmoid), train only the output\n"
            "layer (hidden weights frozen at their random start) and train the whole network by backprop, with\n"
            "the same budget; print the success rate and median final loss of each, and why."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seeds", type=_positive_int, default=100, help="random starts, seeds 0..N-1 (default 100)")
    p.add_argument("--epochs", type=_positive_int, default=5000, help="full-batch epochs per run (default 5000)")
    p.add_argument("--lr", type=_positive_float, default=2.0, help="learning rate eta (default 2.0)")
    p.add_argument(
        "--plot", type=_figure_path, metavar="PATH", help="also save the loss curves to PATH (needs matplotlib)"
    )
    p.set_defaults(func=_frozen_hidden)


# ------------------------------------------------------------------ fastbp gradcheck


def _gradcheck(args):
    if args.plot:
        _require_matplotlib("fastbp gradcheck --plot")
    eps = 1e-6
    print("Tutorial section 5: numerical differentiation against backpropagation.")
    print(
        f"Networks {experiments.GRADCHECK_INPUTS}-h-h-1 with tanh units, float64, a batch of {args.batch} random "
        "samples; N = number of weights and biases."
    )
    print("  numerical: central differences (E(w + eps) - E(w - eps)) / (2 eps), eps = 1e-6, one parameter at a")
    print("             time: 2N forward passes (fastbp.numerical_gradient)")
    print("  backprop:  one forward and one backward pass (net.gradients)")
    print("Times are medians of repeated runs after a first call that compiles.")
    print()
    print("Compiling and timing (each network takes a few seconds) ...", flush=True)
    rows = experiments.gradcheck(args.max_n, args.batch, args.seed, eps=eps, progress=_progress)
    print(f"{'N':>8} {'h':>4} {'numerical':>11} {'backprop':>10} {'ratio':>8} {'ratio/N':>8} {'max |difference|':>17}")
    for row in rows:
        print(
            f"{row.n_params:>8} {row.hidden:>4} {_seconds(row.seconds_numerical):>11} "
            f"{_seconds(row.seconds_backprop):>10} {_ratio(row.ratio):>8} {row.ratio / row.n_params:>8.2f} "
            f"{row.max_difference:>17.2g}"
        )
    print()
    last = rows[-1]
    per_n = statistics.median(r.ratio / r.n_params for r in rows)
    print(
        _paragraph(
            "The ratio grows in proportion to N: ratio/N stays roughly constant. A numerical gradient costs 2N"
            f" forward passes, so a ratio of about {per_n:.2f} N means that one backprop gradient (forward and"
            f" backward pass) costs about as much as {2 / per_n:.1f} forward passes. At N = {last.n_params},"
            f" backprop is {last.ratio:.0f} times faster."
        )
    )
    print(
        _paragraph(
            f"The two gradients agree to {max(r.max_difference for r in rows):.1g}: that is the rounding error of"
            " a central difference with eps = 1e-6 (about 1e-16 / eps), not an error of backprop."
        )
    )
    print(
        _paragraph(
            "Networks of at most 256 parameters run on code generated for their architecture, larger ones on the"
            " generic kernels, which call BLAS for large layers."
        )
    )
    if args.plot:
        from . import plots

        print()
        print(_saved(args.plot, plots.save(plots.gradcheck_figure(rows, args.batch), args.plot)))
    return EXIT_OK


def _add_gradcheck_parser(sub):
    p = sub.add_parser(
        "gradcheck",
        help="tutorial section 5: time numerical differentiation against backprop as N grows",
        description=(
            "Tutorial section 5 made visible: for networks of growing N parameters (10-h-h-1, tanh, N close to\n"
            "100, 300, 1000, ... up to --max-n), the time of a numerical gradient (2N forward passes) against a\n"
            "backprop gradient, their ratio, ratio/N, and the largest difference between the two gradients."
        ),
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--max-n",
        type=_gradcheck_max_n,
        default=10_000,
        metavar="N",
        help="largest N, at least 100 (default 10000; 100000 takes a few minutes)",
    )
    p.add_argument("--batch", type=_positive_int, default=16, help="samples in the batch (default 16)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the weights and the data (default 0)")
    p.add_argument(
        "--plot",
        type=_figure_path,
        metavar="PATH",
        help="also save time and ratio against N, log axes (needs matplotlib)",
    )
    p.set_defaults(func=_gradcheck)


# ------------------------------------------------------------------ the command


def _digits(args):
    from .plots import MissingDependency

    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("scikit-learn", "fastbp digits (its data set)", extra="sklearn") from exc
    from . import digits

    data = digits.load_split()
    X_train, X_test = data[0], data[1]
    print(
        f"scikit-learn's digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels, scaled to [0, 1]."
    )
    print(f"Network 64-{args.hidden}-10: ReLU hidden layer, softmax output, cross-entropy loss, Adam (lr {args.lr}),")
    print(f"batch size {args.batch_size}, {args.epochs} epochs, seed {args.seed}, {args.dtype}.")
    print()
    options = dict(
        hidden=args.hidden, batch_size=args.batch_size, lr=args.lr, seed=args.seed, data=data, dtype=args.dtype
    )
    digits.train(epochs=1, **options)
    net, history, accuracy, seconds = digits.train(epochs=args.epochs, **options)
    for k in sorted(
        {0, len(history.loss) // 4, len(history.loss) // 2, 3 * len(history.loss) // 4, len(history.loss) - 1}
    ):
        print(f"  epoch {k + 1:>4}: loss {history.loss[k]:.4f}, training accuracy {history.accuracy[k]:.4f}")
    print()
    print(f"test accuracy: {accuracy:.4f} ({round(accuracy * len(X_test))}/{len(X_test)} test images right)")
    print(f"epochs: {len(history.loss)}; training took {seconds * 1000:.1f} ms (compilation excluded)")
    return EXIT_OK


def _add_digits_parser(sub):
    p = sub.add_parser(
        "digits",
        help="train a classifier on scikit-learn's bundled digits and print its test accuracy",
        description=(
            "Train a 64-H-10 network (ReLU, softmax, cross-entropy, Adam) on 80% of scikit-learn's 8x8 digits and\n"
            'print its accuracy on the other 20%. Needs scikit-learn: pip install "fastbp[sklearn]".'
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES,
    )
    p.add_argument("--hidden", type=_positive_int, default=128, help="hidden units H (default 128)")
    p.add_argument("--epochs", type=_positive_int, default=50, help="epochs (default 50)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="samples per step (default 32)")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam's learning rate (default 0.001)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the weights and the shuffling (default 0)")
    p.add_argument(
        "--dtype", choices=["float64", "float32"], default="float64", help="of the network and data (default float64)"
    )
    p.set_defaults(func=_digits)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastbp",
        description=(
            "Backpropagation with numba kernels, from the tutorial: run its exercises, draw its figures,\n"
            "repeat its experiments. Every subcommand has --help."
        ),
        epilog=(
            "start with:\n"
            "  fastbp exercise 1                    exercise 1, step by step (--lang ja: in Japanese)\n"
            "  fastbp exercise 2                    exercise 2(b)\n"
            "  fastbp plot xor-boundary -o xor.png  exercise 2(a)\n"
            "  fastbp experiment frozen-hidden      exercise 2(c)\n"
            "  fastbp xor                           train the XOR network\n"
            "  fastbp plot activations -o fig1.png  Figure 1\n"
            "  fastbp gradcheck                     section 5: numerical differentiation vs backprop\n"
            "  fastbp digits                        a real data set: scikit-learn's digits\n\n"
            'Figures need matplotlib and progress bars tqdm: pip install "fastbp[plot]"\n\n' + EXIT_CODES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_exercise_parsers(sub)
    _add_xor_parser(sub)
    _add_plot_parsers(sub)
    _add_experiment_parsers(sub)
    _add_gradcheck_parser(sub)
    _add_digits_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``fastbp`` console script; returns the exit code."""
    from .plots import MissingDependency

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MissingDependency as exc:
        _write(f"fastbp: {exc}", sys.stderr)
        return EXIT_MISSING_PACKAGE
    except BrokenPipeError:
        # the reader went away (`fastbp exercise 1 | head`): stop quietly, as other command-line tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a figure or file that could not be written (no space, no permission, ...)
        _write(f"fastbp: cannot write {exc.filename or 'the output'}: {exc.strerror or exc}", sys.stderr)
        return EXIT_CANNOT_WRITE


if __name__ == "__main__":
    sys.exit(main())
