"""Sphinx configuration of fastbp's documentation.

Build it from the repository root with

    pip install ".[docs]"
    python -m sphinx -W -b html docs docs/_build/html

On "builder-inited", :func:`generate` writes everything the pages include into ``docs/_generated/`` from the
package's own code: the tutorial's figures (``fastbp plot activations``, ``fastbp plot xor-boundary``), the
performance maps (``benchmarks/size_grid.py``'s ``heatmap`` over the measurements kept in ``docs/images/``)
and the printed output of ``fastbp exercise 1`` and ``fastbp exercise 2``, in English and in Japanese
(``--lang ja``).
Nothing there is committed: it is made again by every build.
"""

import contextlib
import inspect
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
sys.path.append(str(ROOT))  # for benchmarks/, whose size_grid draws the performance maps

import fastbp  # noqa: E402  (installed with pip install ".[docs]")

# -- project -------------------------------------------------------------------------------------------------

project = "fastbp"
author = "the fastbp authors"
copyright = "fastbp authors, MIT license"
version = release = fastbp.__version__
language = "en"

# -- extensions ----------------------------------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# MyST: $...$ and $$...$$ formulas, \begin{align} environments, anchors for the headings up to ###
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
toc_object_entries = False  # the page tables of contents list headings, not every documented name

# MathJax: MathJax 3 from its CDN, unless FASTBP_DOCS_MATHJAX2 names a local MathJax 2 (Debian's libjs-mathjax:
# /usr/share/javascript/mathjax/MathJax.js), for a site read offline (the browser test in tests/test_docs.py).
# MathJax 2 skips what is inside class "tex2jax_ignore" (the theme's page body) unless told to take class "math".
if os.environ.get("FASTBP_DOCS_MATHJAX2"):
    mathjax_path = Path(os.environ["FASTBP_DOCS_MATHJAX2"]).resolve().as_uri() + "?config=TeX-AMS_SVG"
    mathjax2_config = {"tex2jax": {"processClass": "math", "processEscapes": True}}

# autodoc and autosummary: one page per public name, numpy-style docstrings (napoleon)
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
autodoc_preserve_defaults = False  # True rewrites the documented functions' defaults in place
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# doctest: only the explicit ``doctest`` blocks of the pages; the ``>>>`` examples in the docstrings are
# illustrations, some with names defined elsewhere (fastbp.jit's module docstring), and the test suite runs
# the code they show.
doctest_test_doctest_blocks = ""
doctest_global_setup = "import numpy as np\nimport fastbp"

# -- HTML ----------------------------------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"fastbp {release}"
html_theme_options = {
    "navigation_depth": 2,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = []
html_show_sourcelink = False

# -- generated figures and text ------------------------------------------------------------------------------

# the figures of the performance map: the measurements kept in docs/images/ -> a heatmap each
SIZE_GRIDS = {
    "size_grid_zen3.png": "size_grid_zen3.json",
    "size_grid_epyc.png": "size_grid_epyc.json",
    "size_grid.png": "size_grid.json",
}
# the output of these fastbp commands, for literalinclude
COMMANDS = {
    "exercise-1.txt": ["exercise", "1"],
    "exercise-1-ja.txt": ["exercise", "1", "--lang", "ja"],
    "exercise-2.txt": ["exercise", "2"],
    "exercise-2-ja.txt": ["exercise", "2", "--lang", "ja"],
}


def _command_output(argv):
    """What ``fastbp ARGV`` prints, run through the command's own main function."""
    from fastbp.tutorial.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code != 0:
        raise RuntimeError(f"fastbp {' '.join(argv)} exited with code {code}:\n{out.getvalue()}")
    return out.getvalue()


def _write_if_changed(path, data):
    """Write text or bytes, leaving the file (and its modification time) alone when nothing changed, so that
    Sphinx re-reads only the pages whose inputs did change."""
    old = path.read_bytes() if path.exists() else None
    new = data.encode("utf-8") if isinstance(data, str) else data
    if old != new:
        path.write_bytes(new)


def _save_figure(path, draw):
    """draw(tmp) writes a PNG to tmp; path gets it when it differs from what is there."""
    tmp = path.with_name(path.stem + ".new.png")
    try:
        draw(tmp)
        _write_if_changed(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)


def generate(app=None):
    """Write the figures and command outputs that the pages include into docs/_generated/."""
    GENERATED.mkdir(exist_ok=True)
    from fastbp.tutorial import experiments, plots

    # Figure 1 of the tutorial: what `fastbp plot activations` draws (its defaults: 100 dpi)
    _save_figure(GENERATED / "activations.png", lambda p: plots.save(plots.activations_figure(), p))

    # exercise 2(a): what `fastbp plot xor-boundary` draws (its defaults: seed 0, 5000 epochs, eta = 2.0)
    seed, epochs, lr = 0, 5000, 2.0

    def xor_boundary(p):
        net, _ = experiments.train_xor(seed, epochs, lr)
        plots.save(plots.xor_boundary_figure(experiments.best_line(), net, epochs, lr, seed), p)

    _save_figure(GENERATED / "xor-boundary.png", xor_boundary)

    # the performance maps: benchmarks/size_grid.py's heatmap of the kept measurements
    from benchmarks import size_grid  # the repository's benchmarks package (not installed with fastbp)

    for figure, measurements in SIZE_GRIDS.items():
        results = json.loads((DOCS / "images" / measurements).read_text())["results"]
        _save_figure(GENERATED / figure, lambda p, r=results: size_grid.heatmap(r, ["float32", "float64"], p))
    import matplotlib.pyplot as plt

    plt.close("all")  # heatmap draws with pyplot

    for name, argv in COMMANDS.items():
        _write_if_changed(GENERATED / name, _command_output(argv))


def documented_names(text):
    """The full names that api.rst documents: its autosummary entries and autodata/automodule targets, each
    under the ``currentmodule`` in force."""
    names, module = set(), ""
    for line in text.splitlines():
        directive = re.match(r"\.\. (currentmodule|automodule|autodata|autofunction|autoclass):: ([\w.]+)", line)
        if directive:
            kind, target = directive.groups()
            if kind == "currentmodule":
                module = target
            elif kind == "automodule":
                names.add(target)
            else:
                names.add(f"{module}.{target}")
        elif re.fullmatch(r" {3,}~?[A-Za-z_][\w.]*", line):
            names.add(f"{module}.{line.strip().lstrip('~')}")
    return names


def check_api_reference(app):
    """Every public name of the documented modules is in api.rst: a name added to an ``__all__`` without a
    place in the reference fails the build (with -W) instead of going undocumented."""
    from sphinx.util import logging

    import fastbp.distributed
    import fastbp.jit
    import fastbp.kernels
    import fastbp.reference
    import fastbp.sklearn

    documented = documented_names((DOCS / "api.rst").read_text(encoding="utf-8"))
    modules = {
        "fastbp": fastbp,
        "fastbp.kernels": fastbp.kernels,
        "fastbp.jit": fastbp.jit,
        "fastbp.sklearn": fastbp.sklearn,
        "fastbp.distributed": fastbp.distributed,
        "fastbp.reference": fastbp.reference,
    }
    for name, module in modules.items():
        for public in module.__all__:
            value = getattr(module, public)
            if public == "__version__" or f"{name}.{public}" in documented:
                continue
            if isinstance(value, type(sys)) and (value.__name__ in documented or f"{name}.{public}" in modules):
                continue  # a module documented in its own section (fastbp.kernels, fastbp.reference, ...)
            logging.getLogger(__name__).warning(f"api.rst does not document {name}.{public} (in {name}.__all__)")


def skip_foreign_members(app, what, name, obj, skip, options):
    """Leave out the members that fastbp's classes inherit from other packages (scikit-learn's get_params,
    score, set_fit_request, ...): their docstrings are those packages', documented there."""
    if what == "module":
        return None
    target = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    if isinstance(obj, property) and not inspect.isfunction(target):
        return None  # sizes = property(attrgetter("_sizes"), doc=...): fastbp's own, with an operator getter
    owner = getattr(target, "__module__", None) or getattr(getattr(target, "__objclass__", None), "__module__", None)
    if isinstance(owner, str) and owner.split(".")[0] != "fastbp":
        return True
    return None


def clean_docstring(app, what, name, obj, options, lines):
    """A constant without a docstring of its own gets none (instead of the docstring of int, dict or tuple)."""
    own = inspect.cleandoc(type(obj).__doc__ or "")
    if what in ("data", "attribute") and "\n".join(lines).strip() == own.strip():
        lines[:] = []


ASV_DASHBOARD = ROOT / ".asv" / "html"  # where asv publish writes it (asv.conf.json's html_dir)


def copy_asv_dashboard(app, exception):
    """The asv dashboard, if ``asv publish`` wrote one, into the site as asv/ (performance.md links it)."""
    if exception is None and app.builder.format == "html" and (ASV_DASHBOARD / "index.html").is_file():
        shutil.copytree(ASV_DASHBOARD, Path(app.outdir) / "asv", dirs_exist_ok=True)


def setup(app):
    # before autosummary's own builder-inited handler (priority 500), which reads the pages
    app.connect("builder-inited", generate, priority=400)
    app.connect("builder-inited", check_api_reference, priority=450)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("autodoc-process-docstring", clean_docstring)
    app.connect("build-finished", copy_asv_dashboard)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
