"""The backpropagation tutorial made runnable: the pure-Python ``reference`` (the test oracle), numerical
gradients, the exercises and their explanations (English and Japanese), the experiments, the figures, the
digits example and the ``fastbp`` command."""

from .exercises import EXERCISES, LANGUAGES, OPTION_NAMES, TOLERANCE, Check, ExerciseSpec, Solution, as_dict, solve
from .render import mismatch_warning, num, render
from .text import SYMBOLS, TEXT

__all__ = [
    "EXERCISES",
    "LANGUAGES",
    "OPTION_NAMES",
    "TOLERANCE",
    "Check",
    "ExerciseSpec",
    "Solution",
    "as_dict",
    "solve",
    "render",
    "mismatch_warning",
    "num",
    "SYMBOLS",
    "TEXT",
]
