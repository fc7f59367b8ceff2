"""``fastbp plot``, ``fastbp experiment``, ``fastbp gradcheck`` and ``fastbp digits``."""

import argparse
import statistics

from fastbp.tutorial import experiments
from fastbp.tutorial.cli_common import (
    EXIT_CODES,
    EXIT_OK,
    _dpi,
    _figure_path,
    _gradcheck_max_n,
    _keep,
    _paragraph,
    _positive_float,
    _positive_int,
    _progress,
    _ratio,
    _require_matplotlib,
    _saved,
    _seconds,
    _seed,
)


def _plot_activations(args):
    from fastbp.tutorial import plots

    plots.require_matplotlib("fastbp plot activations")
    print(f"Drawing Figure 1 into {args.output} ...", flush=True)  # matplotlib takes a few seconds to start
    fig = plots.activations_figure()
    print(_saved(args.output, plots.save(fig, args.output, dpi=args.dpi)))
    print("Figure 1 of the tutorial: sigmoid, tanh and ReLU (top row) and their derivatives (bottom row);")
    print("the sigmoid's derivative is largest at x = 0, where it is 0.25, while ReLU's is 1 for every x > 0.")
    return EXIT_OK


def _plot_xor_boundary(args):
    from fastbp.tutorial import plots

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


def _frozen_hidden(args):
    if args.plot:
        _require_matplotlib("fastbp experiment frozen-hidden --plot")
    from fastbp.nn.activations import init_bound

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
        from fastbp.tutorial import plots

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
            "Networks of at most 64 parameters run on code generated for their architecture, larger ones on the"
            " generic kernels, which call BLAS for large layers."
        )
    )
    if args.plot:
        from fastbp.tutorial import plots

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


def _digits(args):
    from fastbp.tutorial.plots import MissingDependency

    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("scikit-learn", "fastbp digits (its data set)", extra="sklearn") from exc
    from fastbp.tutorial import digits

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
