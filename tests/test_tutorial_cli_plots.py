"""The figures and experiments: `fastbp plot ...`, `fastbp xor --plot`, `fastbp experiment frozen-hidden`,
`fastbp gradcheck`, in process and as subprocesses, and the friendly message when matplotlib is missing.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from fastbp.tutorial import experiments
from fastbp.tutorial.cli import EXIT_MISSING_PACKAGE, main
from pngs import assert_png


def hide_matplotlib(monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.colors"):
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib` now raises ImportError


def run_fastbp(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "fastbp", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


# ------------------------------------------------------------------ figures


def test_plot_activations(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "fig1.png"
    assert main(["plot", "activations", "-o", str(path)]) == 0
    assert_png(path, (900, 560))
    out = capsys.readouterr().out
    assert f"wrote {path} (900 x 560 pixels" in out
    assert "0.25" in out


def test_plot_xor_boundary(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "sub" / "xor.png"  # the folder is made
    assert main(["plot", "xor-boundary", "-o", str(path), "--dpi", "80"]) == 0
    assert_png(path, (720, 352))
    out = " ".join(capsys.readouterr().out.split())
    assert "x_1 + x_2 = 0.5" in out and "gets 3 of the 4 points" in out and "4 of the 4 points right" in out


def test_xor_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "loss.png"
    assert main(["xor", "--plot", str(path)]) == 0
    assert_png(path, (640, 400))
    assert "4/4 correct" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, size",
    [
        (["plot", "activations", "-o", "fig1.png"], (900, 560)),
        (["plot", "xor-boundary", "-o", "xor.png", "--epochs", "3000"], (900, 440)),
        (["experiment", "frozen-hidden", "--seeds", "3", "--epochs", "300", "--plot", "frozen.png"], (900, 420)),
        (["gradcheck", "--max-n", "100", "--batch", "4", "--plot", "gradcheck.png"], (900, 400)),
    ],
    ids=["activations", "xor-boundary", "frozen-hidden", "gradcheck"],
)
def test_figures_as_subprocess(argv, size, tmp_path):
    pytest.importorskip("matplotlib")
    result = run_fastbp(*argv, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    name = next(a for a in argv if a.endswith(".png"))
    assert f"wrote {name}" in result.stdout
    assert_png(tmp_path / name, size)


@pytest.mark.parametrize(
    "argv",
    [
        ["plot", "activations"],
        ["plot", "xor-boundary"],
        ["experiment", "frozen-hidden", "--seeds", "2", "--epochs", "10", "--plot", "f.png"],
        ["gradcheck", "--max-n", "100", "--plot", "g.png"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_without_matplotlib_says_what_to_install(argv, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    hide_matplotlib(monkeypatch)
    assert main(argv) == EXIT_MISSING_PACKAGE
    captured = capsys.readouterr()
    assert "needs matplotlib, which is not installed" in captured.err
    assert 'pip install "fastbp[plot]"' in captured.err
    assert captured.out == ""  # it stops before computing anything
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_as_subprocess(tmp_path):
    """A `matplotlib` that fails to import, first on the path: exit 3 and a message, no traceback."""
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError(\"No module named 'matplotlib'\")\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    result = run_fastbp("plot", "activations", "-o", str(tmp_path / "fig1.png"), env=env)
    assert result.returncode == EXIT_MISSING_PACKAGE
    assert "Traceback" not in result.stderr
    assert 'pip install "fastbp[plot]"' in result.stderr
    assert not (tmp_path / "fig1.png").exists()
    result = run_fastbp("exercise", "1", env=env)  # everything else works without matplotlib
    assert result.returncode == 0


# ------------------------------------------------------------------ experiments


def test_frozen_hidden(capsys):
    assert main(["experiment", "frozen-hidden", "--seeds", "6", "--epochs", "2000"]) == 0
    out = capsys.readouterr().out
    solved = re.search(r"solved XOR\s+(\d+)/6 \(\d+%\)\s+(\d+)/6 \(\d+%\)", out)
    assert solved, out
    frozen, full = int(solved.group(1)), int(solved.group(2))
    assert frozen < full
    losses = re.search(r"median final loss E\s+(\S+)\s+(\S+)", out)
    assert float(losses.group(1)) > 0.1 > float(losses.group(2))
    assert "Why training only the output layer struggles" in out
    assert "linearly separable" in out


def test_frozen_hidden_keeps_the_hidden_layer_and_compares_like_with_like():
    r = experiments.frozen_hidden(seeds=3, epochs=50, lr=2.0)
    assert r.loss_frozen.shape == r.loss_full.shape == (3, 50)
    # both runs of a seed start from the same network: the same loss in the first epoch
    np.testing.assert_allclose(r.loss_frozen[:, 0], r.loss_full[:, 0], rtol=1e-12)
    assert r.separable.dtype == bool and r.solved_frozen.dtype == bool


def test_best_line_and_separability():
    line = experiments.best_line()
    assert line.correct == 3  # no line gets XOR right
    assert line.equation() in ("x_1 + x_2 = 0.5", "-x_1 - x_2 = -1.5", "x_1 - x_2 = 0.5", "-x_1 + x_2 = 0.5")
    and_targets = np.array([[0.0], [0.0], [0.0], [1.0]])
    assert experiments.best_line(D=and_targets).correct == 4
    assert experiments.linearly_separable(experiments.XOR_INPUTS, and_targets)
    assert not experiments.linearly_separable(experiments.XOR_INPUTS, experiments.XOR_TARGETS)


def test_gradcheck(capsys):
    assert main(["gradcheck", "--max-n", "300", "--batch", "4"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if re.match(r"^\s+\d+\s+\d+\s", line)]
    assert [int(r[0]) for r in rows] == [91, 301]
    for r in rows:
        assert float(r[-1]) < 1e-7  # max |numerical - backprop|
        assert float(r[-3]) > 1  # backprop is faster
    assert "ratio/N" in out


def test_gradcheck_sizes():
    sizes = experiments.gradcheck_sizes(100_000)
    assert [n for _, n in sizes] == [91, 301, 1015, 3039, 10059, 30061, 100131]
    for h, n in sizes:
        assert n == 10 * h + h + h * h + h + h + 1
