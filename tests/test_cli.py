"""The fastbp command, in process and as a subprocess: `fastbp xor`, --help everywhere, optional packages.

The exercises are tested in test_tutorial_cli.py, the figures and experiments in test_tutorial_cli_plots.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastbp.tutorial.cli import EXIT_MISSING_PACKAGE, main

SUBCOMMANDS = [
    [],
    ["exercise"],
    ["exercise", "1"],
    ["exercise", "2"],
    ["xor"],
    ["plot"],
    ["plot", "activations"],
    ["plot", "xor-boundary"],
    ["experiment"],
    ["experiment", "frozen-hidden"],
    ["gradcheck"],
]


def run_fastbp(*args, env=None):
    """`python -m fastbp args...` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fastbp", *args], capture_output=True, text=True, env=env, timeout=300)


def xor_losses(out):
    return [
        float(line.split()[1]) for line in out.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 2
    ]


def test_xor_in_process(capsys):
    assert main(["xor"]) == 0
    out = capsys.readouterr().out
    assert "learned truth table" in out
    assert "4/4 correct" in out
    losses = xor_losses(out)
    assert len(losses) == 10
    assert losses[-1] < losses[0] / 10  # the loss falls


def test_xor_as_subprocess():
    result = run_fastbp("xor", "--epochs", "200")
    assert "learned truth table" in result.stdout
    assert result.returncode in (0, 1)  # 200 epochs may be too few to learn XOR: exit 1 says so


def test_xor_reports_every_tenth_of_the_epochs_and_the_time(capsys):
    main(["xor", "--epochs", "55"])
    out = capsys.readouterr().out
    epochs = [
        int(line.split()[0]) for line in out.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 2
    ]
    assert epochs == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
    assert "training took" in out and " s (compilation included)" in out


def test_xor_without_tqdm_still_works(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` now raises ImportError
    assert main(["xor", "--epochs", "3000"]) == 0
    captured = capsys.readouterr()
    assert "4/4 correct" in captured.out
    assert len(xor_losses(captured.out)) == 10
    assert "Traceback" not in captured.err


def test_xor_progress_bar_stays_off_stdout(capsys):
    pytest.importorskip("tqdm")
    main(["xor", "--epochs", "1000"])
    captured = capsys.readouterr()
    assert "epochs:" not in captured.out  # the bar goes to stderr, and only when stderr is a terminal
    assert captured.err == ""


def test_xor_plot_without_matplotlib_says_what_to_install(capsys, monkeypatch, tmp_path):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    path = tmp_path / "loss.png"
    assert main(["xor", "--plot", str(path)]) == EXIT_MISSING_PACKAGE
    captured = capsys.readouterr()
    assert 'pip install "fastbp[plot]"' in captured.err
    assert "learned truth table" not in captured.out  # it stops before training
    assert not path.exists()


@pytest.mark.parametrize("argv", SUBCOMMANDS, ids=lambda a: " ".join(a) or "fastbp")
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: fastbp")
    assert len(out.splitlines()) > 3


def test_help_as_subprocess():
    result = run_fastbp("--help")
    assert result.returncode == 0
    for command in ("exercise", "xor", "plot", "experiment", "gradcheck"):
        assert command in result.stdout


def test_installed_console_script():
    """`pip install .` puts a `fastbp` script beside the interpreter."""
    script = Path(sys.executable).with_name("fastbp.exe" if os.name == "nt" else "fastbp")
    if not script.exists():
        pytest.skip("fastbp is not installed as a console script in this environment")
    result = subprocess.run([str(script), "exercise", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "usage: fastbp exercise" in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["exercise", "1", "--w1", "0.5"],  # needs two numbers
        ["exercise", "2", "--x", "1"],  # needs two inputs
        ["exercise", "1", "--lr", "0"],
        ["exercise", "1", "--lr", "nan"],
        ["exercise", "1", "--d", "inf"],
        ["exercise", "1", "--lang", "fr"],
        ["exercise", "3"],
        ["xor", "--epochs", "0"],
        ["plot"],
        ["experiment", "frozen-hidden", "--seeds", "-1"],
        ["gradcheck", "--max-n", "ten"],
        ["gradcheck", "--max-n", "3"],  # below the smallest network (an IndexError once)
        ["xor", "--seed", "-1"],  # numpy's seeds are >= 0 (a traceback once)
        ["plot", "xor-boundary", "--seed", "-1"],
        ["plot", "activations", "-o", "figure.xyz"],  # no such format (a matplotlib traceback once)
        ["plot", "activations", "-o", "figure"],  # no extension: matplotlib would write figure.png
        ["xor", "--plot", "loss.txt"],
        ["gradcheck", "--plot", "ratio"],
        ["plot", "xor-boundary", "--dpi", "3"],  # matplotlib's fonts fail below 10 (a RuntimeError once)
        ["plot", "activations", "--dpi", "100000"],
    ],
)
def test_bad_command_lines_exit_2_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("usage:") and "Traceback" not in "".join(lines)
    assert [line for line in lines if "error:" in line] == lines[-1:]  # the usage, then one line of message


def test_a_figure_that_cannot_be_written_exits_5_with_one_line(capsys, tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a directory")
    assert main(["plot", "activations", "-o", str(blocker / "fig1.png")]) == 5
    err = capsys.readouterr().err.strip()
    assert err.startswith("fastbp: cannot write") and len(err.splitlines()) == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_digits_reaches_97_percent(capsys, dtype):
    pytest.importorskip("sklearn")
    assert main(["digits"] + (["--dtype", dtype] if dtype != "float64" else [])) == 0
    out = capsys.readouterr().out
    assert f"seed 0, {dtype}." in out
    line = next(line for line in out.splitlines() if "accuracy" in line and line.startswith("test"))
    accuracy = float(line.split()[2])
    assert accuracy >= 0.97, out
    assert "epochs: 50" in out and "training took" in out


def test_digits_without_sklearn_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert main(["digits"]) == 3
    assert 'pip install "fastbp[sklearn]"' in capsys.readouterr().err


@pytest.mark.parametrize("number", ["1", "2"])
def test_the_example_in_each_exercises_help_runs(number, capsys):
    """exercise 2 --help once showed exercise 1's example (--w1 with two numbers), which exercise 2 refuses."""
    with pytest.raises(SystemExit):
        main(["exercise", number, "--help"])
    line = next(line for line in capsys.readouterr().out.splitlines() if "Negative values work as they are" in line)
    example = line.split("fastbp ", 1)[1].split()
    assert example[:2] == ["exercise", number]
    assert main(example) == 0
