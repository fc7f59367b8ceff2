"""The fastbp command, in process and as a subprocess."""

import subprocess
import sys

import pytest

from fastbp.cli import main


def test_xor_in_process(capsys):
    assert main(["xor"]) == 0
    out = capsys.readouterr().out
    assert "learned truth table" in out
    assert "4/4 correct" in out
    losses = [
        float(line.split()[1]) for line in out.splitlines() if line.strip()[:1].isdigit() and len(line.split()) == 2
    ]
    assert len(losses) == 10
    assert losses[-1] < losses[0] / 10  # the loss falls


def test_xor_as_subprocess():
    result = subprocess.run([sys.executable, "-m", "fastbp", "xor", "--epochs", "200"], capture_output=True, text=True)
    assert "learned truth table" in result.stdout
    assert result.returncode in (0, 1)  # 200 epochs may be too few to learn XOR: exit 1 says so


@pytest.mark.parametrize("argv", [["--help"], ["xor", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage" in capsys.readouterr().out
