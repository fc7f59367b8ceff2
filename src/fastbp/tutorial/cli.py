"""The ``fastbp`` command (also ``python -m fastbp``): the backprop tutorial, runnable.

Subcommands: ``exercise 1``, ``exercise 2``, ``xor``, ``plot activations``,
``plot xor-boundary``, ``experiment frozen-hidden`` and ``gradcheck``; each has
``--help``.  matplotlib (for figures) and tqdm (for progress bars) are optional:
``pip install "fastbp[plot]"``.
"""

import argparse
import os
import sys

from fastbp.tutorial.cli_common import (
    EXIT_BROKEN_PIPE,
    EXIT_CANNOT_WRITE,
    EXIT_CODES,
    EXIT_MISMATCH,
    EXIT_MISSING_PACKAGE,
    EXIT_NOT_LEARNED,
    EXIT_OK,
    EXIT_USAGE,
    _write,
)
from fastbp.tutorial.cli_exercises import _add_exercise_parsers, _add_xor_parser
from fastbp.tutorial.cli_figures import (
    _add_digits_parser,
    _add_experiment_parsers,
    _add_gradcheck_parser,
    _add_plot_parsers,
)
from fastbp.tutorial.experiments import XOR_INPUTS, XOR_TARGETS


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
    from fastbp.tutorial.plots import MissingDependency

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


__all__ = [
    "main",
    "build_parser",
    "XOR_INPUTS",
    "XOR_TARGETS",
    "EXIT_OK",
    "EXIT_NOT_LEARNED",
    "EXIT_USAGE",
    "EXIT_MISSING_PACKAGE",
    "EXIT_MISMATCH",
    "EXIT_CANNOT_WRITE",
    "EXIT_BROKEN_PIPE",
    "EXIT_CODES",
]


if __name__ == "__main__":
    sys.exit(main())
