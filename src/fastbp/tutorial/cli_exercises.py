"""``fastbp exercise 1|2`` and ``fastbp xor``: the tutorial's exercises and its XOR network."""

import argparse
import json
import sys
import time

import numpy as np

from fastbp import tutorial
from fastbp.tutorial import experiments
from fastbp.tutorial.cli_common import (
    EXIT_CODES,
    EXIT_MISMATCH,
    EXIT_NOT_LEARNED,
    EXIT_OK,
    _figure_path,
    _finite_float,
    _positive_float,
    _positive_int,
    _require_matplotlib,
    _saved,
    _seed,
    _tqdm,
    _write,
)
from fastbp.tutorial.experiments import XOR_INPUTS, XOR_TARGETS


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


_EXERCISE_DESCRIPTION = (
    "Work one of the tutorial's exercises (section 7) step by step: each formula in words, then the\n"
    "numbers of the forward pass, the error E, the error terms delta, every gradient and every updated\n"
    "weight and bias. The numbers come from fastbp's numba kernels (Network.trace) and are checked\n"
    "against the pure-Python reference (fastbp.reference)."
)


_EXERCISE_ABOUT = {
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
"""Per exercise number: (the one-line help in ``fastbp exercise --help``, the description of its own --help)."""


def _network_options(spec):
    """(name, nargs, metavar, help before the default) of each --option that sets a number of the network.

    nargs is None for the single numbers (--b2, --d): argparse then stores a float, not a list of one.
    """
    if spec.n_in == 1:
        w1_names, x_names = ("W11", "W12"), ("X",)
        w1_help = "hidden-layer weights w_11^(1) (x -> h1), w_12^(1) (x -> h2)"
    else:
        w1_names, x_names = ("W11", "W12", "W21", "W22"), ("X1", "X2")
        w1_help = "hidden-layer weights w_11^(1), w_12^(1) (from x_1), w_21^(1), w_22^(1) (from x_2)"
    return (
        ("w1", len(w1_names), w1_names, w1_help),
        ("w2", 2, ("W11", "W21"), "output weights w_11^(2) (h1 -> y), w_21^(2) (h2 -> y)"),
        ("b1", 2, ("B1", "B2"), "hidden biases b_1^(1), b_2^(1)"),
        ("b2", None, "B", "output bias b^(2)"),
        ("x", len(x_names), x_names, "the input"),
        ("d", None, "D", "the target"),
    )


def _add_output_options(parser):
    """--lang, --digits and --json: how `fastbp exercise N` prints its solution."""
    parser.add_argument(
        "--lang",
        choices=tutorial.LANGUAGES,
        default="en",
        help="language of the explanations: en (English, default) or ja (Japanese)",
    )
    parser.add_argument(
        "--digits",
        type=_positive_int,
        default=6,
        help="significant digits of the printed numbers (default 6; --json prints them all)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the numbers as JSON (full precision, layers from 1 to the output) instead",
    )


def _add_exercise_parser(numbers, spec):
    """The parser of `fastbp exercise N` for the exercise ``spec``, added to the sub-parsers ``numbers``."""
    short, long = _EXERCISE_ABOUT[spec.number]
    example = "--w1 0.5 -0.3" if spec.n_in == 1 else "--w1 0.5 -0.3 0.2 -0.1"
    parser = numbers.add_parser(
        spec.number,
        help=short,
        description=long,
        epilog=(
            "w_ij^(l) is the weight from unit i of layer l-1 to unit j of layer l (layer 0: the input).\n"
            f"Negative values work as they are: fastbp exercise {spec.number} {example}\n\n" + EXIT_CODES
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = spec.defaults
    for name, nargs, metavar, what in _network_options(spec):
        default = " ".join(tutorial.num(v) for v in defaults[name])
        parser.add_argument(
            f"--{name}", nargs=nargs, type=_finite_float, metavar=metavar, help=f"{what} (default: {default})"
        )
    parser.add_argument(
        "--lr",
        type=_positive_float,
        metavar="ETA",
        help=f"the learning rate eta, > 0 (default: {tutorial.num(defaults['lr'])})",
    )
    _add_output_options(parser)
    parser.set_defaults(func=_exercise)


def _add_exercise_parsers(sub):
    exercise = sub.add_parser(
        "exercise",
        help="work the tutorial's exercise 1 or 2(b) step by step, numbers from the kernels",
        description=_EXERCISE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    numbers = exercise.add_subparsers(dest="number", required=True, metavar="{1,2}")
    for spec in tutorial.EXERCISES.values():
        _add_exercise_parser(numbers, spec)


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
        from fastbp.tutorial import plots

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
