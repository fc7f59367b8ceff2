"""The package is typed: mypy passes on src/ (the configuration in pyproject.toml), the wheel marks it with
py.typed, and the public API that users call most carries type hints."""

import typing
from pathlib import Path

import fastbp
from fastbp import jit

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes_on_the_package():
    from mypy import api

    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "src" / "fastbp")])
    assert status == 0, stdout + stderr
    assert "Success" in stdout


def test_py_typed_ships_with_the_package():
    assert (Path(fastbp.__file__).parent / "py.typed").is_file()


def test_the_public_api_has_type_hints():
    functions = [fastbp.Network.__init__, fastbp.Network.from_weights, fastbp.Network.forward,
                 fastbp.Network.gradients, fastbp.Network.step, fastbp.Network.fit, fastbp.Network.evaluate,
                 fastbp.Network.trace, fastbp.Network.save, fastbp.Network.copy, fastbp.Network.to_jit, fastbp.load,
                 jit.forward, jit.loss_and_gradient, jit.backward, jit.sgd_step]  # fmt: skip
    for function in functions:
        hints = typing.get_type_hints(function)
        assert "return" in hints, function.__qualname__
        code = function.__code__
        parameters = [p for p in code.co_varnames[: code.co_argcount] if p not in ("self", "cls")]
        assert set(parameters) <= set(hints), (function.__qualname__, set(parameters) - set(hints))
