"""What the ``fastbp`` command's subcommands share: exit codes, argument types, printing."""

import argparse
import math
import os
import re
import sys
import textwrap

from fastbp.tutorial import experiments

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
    from fastbp.tutorial import plots

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
