"""`fastbp exercise 1` and `fastbp exercise 2`: the printed numbers are the reference's.

The text is parsed back into numbers (every 'name = ... = value' line and every
update 'name <- ... = value') and compared with fastbp.reference, which never
touches the kernels; so is the JSON output.
"""

import io
import json
import os
import re
import subprocess
import sys

import pytest

from fastbp import reference, tutorial
from fastbp.tutorial.cli import EXIT_MISMATCH, main
from fastbp.tutorial.cli_common import _write

CUSTOM = {
    "1": [
        "--w1",
        "0.3",
        "-0.7",
        "--w2",
        "-0.5",
        "1.5",
        "--b1",
        "0.1",
        "-0.1",
        "--b2",
        "0.05",
        "--x",
        "2",
        "--d",
        "1",
        "--lr",
        "0.05",
    ],  # fmt: skip
    "2": [
        "--w1",
        "0.2",
        "-0.4",
        "0.7",
        "0.1",
        "--w2",
        "1.1",
        "-0.6",
        "--b1",
        "0",
        "0.3",
        "--b2",
        "-0.2",
        "--x",
        "0.5",
        "1",
        "--d",
        "0",
        "--lr",
        "1.5",
    ],  # fmt: skip
}
CUSTOM_VALUES = {
    "1": dict(w1=[[0.3, -0.7]], w2=[[-0.5], [1.5]], b1=[0.1, -0.1], b2=[0.05], x=[2.0], d=[1.0], lr=0.05),
    "2": dict(
        w1=[[0.2, -0.4], [0.7, 0.1]], w2=[[1.1], [-0.6]], b1=[0.0, 0.3], b2=[-0.2], x=[0.5, 1.0], d=[0.0], lr=1.5
    ),
}
DEFAULT_VALUES = {
    "1": dict(w1=[[0.5, -0.3]], w2=[[0.8], [0.4]], b1=[0.0, 0.0], b2=[0.0], x=[1.0], d=[0.2], lr=0.1),
    "2": dict(w1=[[0.5, 0.5], [0.5, 0.5]], w2=[[0.5], [0.5]], b1=[0.0, 0.0], b2=[0.0], x=[1.0, 0.0], d=[1.0], lr=0.5),
}
ACTIVATIONS = {"1": ["relu", "identity"], "2": ["sigmoid", "sigmoid"]}


def expected_numbers(number, v):
    """Every number the exercise prints, by the name it is printed under, from the pure-Python reference."""
    acts = ACTIVATIONS[number]
    W, b = [v["w1"], v["w2"]], [v["b1"], v["b2"]]
    ref = reference.backward(W, b, acts, v["x"], v["d"])
    _, new_w, new_b = reference.step(W, b, acts, [v["x"]], [v["d"]], v["lr"])
    _, ys_after = reference.forward(new_w, new_b, acts, v["x"])
    n_in = len(v["x"])
    e = {
        "z^(2)": ref["z"][2][0],
        "y": ref["y"][2][0],
        "E": ref["E"],
        "delta^(2)": ref["delta"][2][0],
        "dE/db^(2)": ref["grad_biases"][1][0],
        "b^(2) <-": new_b[1][0],
        "after y": ys_after[2][0],
        "after E": reference.squared_error(ys_after[2], v["d"]),
    }
    for j in (1, 2):
        e[f"z_{j}^(1)"] = ref["z"][1][j - 1]
        e[f"h{j}"] = ref["y"][1][j - 1]  # printed as 'hj = y_j^(1) = f(z_j^(1)) = ...'
        e[f"delta_{j}^(1)"] = ref["delta"][1][j - 1]
        e[f"dE/dw_{j}1^(2)"] = ref["grad_weights"][1][j - 1][0]
        e[f"dE/db_{j}^(1)"] = ref["grad_biases"][0][j - 1]
        e[f"w_{j}1^(2) <-"] = new_w[1][j - 1][0]
        e[f"b_{j}^(1) <-"] = new_b[0][j - 1]
        for i in range(1, n_in + 1):
            e[f"dE/dw_{i}{j}^(1)"] = ref["grad_weights"][0][i - 1][j - 1]
            e[f"w_{i}{j}^(1) <-"] = new_w[0][i - 1][j - 1]
    return e


NUMBER = r"(-?\d+(?:\.\d*)?(?:e[-+]?\d+)?)"


def printed_numbers(out, lang="en"):
    """name -> the last number on its equation (or update) line(s), and 'after y'/'after E' from the check."""
    if lang == "ja":
        for ja, en in (("δ", "delta"), ("∂E/∂", "dE/d"), ("←", "<-"), ("×", "*"), ("(更新前:", "(before the step: ")):
            out = out.replace(ja, en)
    found = {}
    current = None
    for line in out.splitlines():
        check = re.match(rf"^\s+(y|E) = {NUMBER}\s+\(before the step: {NUMBER}\)$", line)
        if check:
            found[f"after {check.group(1)}"] = float(check.group(2))
            current = None
            continue
        start = re.match(r"^\s+(\S[^=<]*?)\s+(=|<-)\s", line)
        if start and not line.strip().startswith("="):
            name = start.group(1) + (" <-" if start.group(2) == "<-" else "")
            current = name if name not in found else None  # the first equation of a name counts
        if current is not None:
            last = re.search(rf"= {NUMBER}$", line)
            if last:
                found[current] = float(last.group(1))
    return found


def check_numbers(out, number, values, rel, lang="en"):
    expected = expected_numbers(number, values)
    got = printed_numbers(out, lang)
    missing = set(expected) - set(got)
    assert not missing, f"not printed: {sorted(missing)}"
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=rel, abs=rel * 1e-3), name


@pytest.mark.parametrize("number", ["1", "2"])
@pytest.mark.parametrize("custom", [False, True], ids=["defaults", "own values"])
def test_printed_numbers_equal_the_reference(number, custom, capsys):
    argv = ["exercise", number, "--digits", "17"] + (CUSTOM[number] if custom else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    check_numbers(out, number, CUSTOM_VALUES[number] if custom else DEFAULT_VALUES[number], rel=1e-13)


@pytest.mark.parametrize("number", ["1", "2"])
def test_default_output_to_6_digits(number, capsys):
    assert main(["exercise", number]) == 0
    out = capsys.readouterr().out
    check_numbers(out, number, DEFAULT_VALUES[number], rel=5e-6)
    assert "largest difference 0" in out or "largest difference" in out
    assert "WARNING" not in out


def test_exercise_1_walks_through_parts_a_to_f_in_order(capsys):
    main(["exercise", "1"])
    out = capsys.readouterr().out
    positions = [out.index(f"\n({part}) ") for part in "abcdef"]
    assert positions == sorted(positions)
    # the hand-computed answers of tests/test_exercises.py, as printed
    for line in [
        "y            = z^(2) = 0.4",
        "E = 1/2 (y - d)^2 = 1/2 (0.4 - 0.2)^2 = 0.02",
        "= 0.2 * 0.8 * 1",
        "= 0.2 * 0.4 * 0",
        "dE/dw_11^(2) = delta^(2) * y_1^(1) = 0.2 * 0.5 = 0.1",
        "dE/dw_11^(1) = delta_1^(1) * x = 0.16 * 1 = 0.16",
        "w_11^(2) <- w_11^(2) - eta dE/dw_11^(2) = 0.8 - 0.1 * 0.1 = 0.79",
        "w_11^(1) <- w_11^(1) - eta dE/dw_11^(1) = 0.5 - 0.1 * 0.16 = 0.484",
        "b^(2)    <- b^(2) - eta dE/db^(2) = 0 - 0.1 * 0.2 = -0.02",
        "b_1^(1)  <- b_1^(1) - eta dE/db_1^(1) = 0 - 0.1 * 0.16 = -0.016",
    ]:
        assert line in out, line
    assert "illegible" in out  # says which weights it chose and why
    assert "h2 is inactive" in out


def test_exercise_2_says_the_hidden_units_stay_identical(capsys):
    main(["exercise", "2"])
    out = capsys.readouterr().out
    assert "eta = 0.5" in out and "no learning rate" in out
    assert "After the step they are still\n        identical:" in out
    assert "w_11^(1) = w_12^(1) = 0.504663" in out
    assert "fastbp plot xor-boundary" in out and "fastbp experiment frozen-hidden" in out
    # with different hidden units there is no such note
    main(["exercise", "2", *CUSTOM["2"]])
    assert "identical" not in capsys.readouterr().out


@pytest.mark.parametrize("number", ["1", "2"])
def test_japanese(number, capsys):
    assert main(["exercise", number, "--lang", "ja", "--digits", "17"]) == 0
    out = capsys.readouterr().out
    for word in ("順伝播", "誤差", "誤差項", "勾配", "学習率", "δ", "η", "∂E/∂w"):
        assert word in out, word
    assert "Forward pass" not in out
    check_numbers(out, number, DEFAULT_VALUES[number], rel=1e-13, lang="ja")


@pytest.mark.parametrize("number", ["1", "2"])
def test_json_has_the_reference_numbers(number, capsys):
    assert main(["exercise", number, "--json", *CUSTOM[number]]) == 0
    data = json.loads(capsys.readouterr().out)
    v = CUSTOM_VALUES[number]
    acts = ACTIVATIONS[number]
    W, b = [v["w1"], v["w2"]], [v["b1"], v["b2"]]
    ref = reference.backward(W, b, acts, v["x"], v["d"])
    _, new_w, new_b = reference.step(W, b, acts, [v["x"]], [v["d"]], v["lr"])
    assert data["exercise"] == number
    assert data["network"]["activations"] == acts
    assert data["lr"] == v["lr"] and data["x"] == v["x"] and data["d"] == v["d"]
    assert data["E"] == pytest.approx(ref["E"], rel=1e-12)
    for l, layer in enumerate(data["layers"], start=1):
        assert layer["l"] == l
        for key in ("z", "y", "delta"):
            assert layer[key] == pytest.approx(ref[key][l], rel=1e-12, abs=1e-15), (l, key)
        assert layer["grad_biases"] == pytest.approx(ref["grad_biases"][l - 1], rel=1e-12, abs=1e-15)
        for got, want in zip(layer["grad_weights"], ref["grad_weights"][l - 1]):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
        for got, want in zip(layer["new_weights"], new_w[l - 1]):
            assert got == pytest.approx(want, rel=1e-12, abs=1e-15)
        assert layer["new_biases"] == pytest.approx(new_b[l - 1], rel=1e-12, abs=1e-15)
    assert data["reference_check"]["ok"] is True
    assert data["reference_check"]["max_difference"] <= 1e-12


def test_disagreement_with_the_reference_is_loud(capsys, monkeypatch):
    honest = reference.backward

    def off_by_a_little(*args):
        result = honest(*args)
        result["delta"][1][0] += 1e-9
        return result

    monkeypatch.setattr(reference, "backward", off_by_a_little)
    assert main(["exercise", "1"]) == EXIT_MISMATCH
    captured = capsys.readouterr()
    assert "WARNING" in captured.err and "DISAGREE" in captured.err and "delta^(1)" in captured.err
    assert "matches the" not in captured.out
    assert main(["exercise", "1", "--json"]) == EXIT_MISMATCH
    captured = capsys.readouterr()
    assert json.loads(captured.out)["reference_check"]["ok"] is False
    assert "WARNING" in captured.err


def test_solution_checks_every_number():
    sol = tutorial.solve("2")
    names = {c.name for c in sol.checks}
    for l in (1, 2):
        for what in ("z", "y", "delta", "dE/dw", "dE/db", "new w", "new b"):
            assert f"{what}^({l})" in names
    assert sol.ok and sol.max_difference <= tutorial.TOLERANCE


def test_japanese_on_a_terminal_that_cannot_show_it():
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    _write("誤差項 δ = 0.2", stream)
    stream.flush()
    assert stream.buffer.getvalue().decode("ascii").strip() == "??? ? = 0.2"


@pytest.mark.parametrize("argv", [["exercise", "1"], ["exercise", "2", "--lang", "ja"]])
def test_as_subprocess(argv):
    env = dict(os.environ, PYTHONIOENCODING="utf-8")  # a pipe's encoding depends on the locale otherwise
    result = subprocess.run([sys.executable, "-m", "fastbp", *argv], capture_output=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    out = result.stdout.decode("utf-8")
    number = argv[1]
    lang = "ja" if "ja" in argv else "en"
    check_numbers(out, number, DEFAULT_VALUES[number], rel=5e-6, lang=lang)


def test_json_as_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "fastbp", "exercise", "1", "--json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["E"] == pytest.approx(0.02, rel=1e-14)
    assert data["layers"][0]["new_weights"] == [[pytest.approx(0.484, rel=1e-14), -0.3]]
