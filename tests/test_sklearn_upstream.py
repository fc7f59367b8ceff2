"""scikit-learn's own MLP tests, run on fastbp's estimators.

The installed scikit-learn ships ``sklearn/neural_network/tests/test_mlp.py``.
This module reads it at test time, changes its one import of the estimators to
``fastbp.sklearn``'s, and hands its test functions to pytest.  Nothing of it is
copied into this repository.

``NOT_YET`` lists, per checked scikit-learn version, the tests that do not pass
on fastbp yet, each with the missing feature; they run as strict xfails, so a
test that starts to pass fails the run until it is taken off the list.  Every
other test of the file must pass.  For scikit-learn 1.9.1 the list is empty:
every test of its test_mlp.py passes.
"""

import pathlib

import pytest

sklearn = pytest.importorskip("sklearn")

CHECKED_VERSIONS = ("1.9.1",)
SOURCE = pathlib.Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
IMPORT = "from sklearn.neural_network import MLPClassifier, MLPRegressor"

NOT_YET = {
    "1.9.1": {},
}  # fmt: skip


def _load_upstream():
    text = SOURCE.read_text(encoding="utf-8")
    if text.count(IMPORT) != 1:
        raise RuntimeError(f"{SOURCE} no longer has the line {IMPORT!r} once: look at how it imports the estimators")
    namespace = {"__name__": "sklearn_test_mlp_on_fastbp", "__file__": str(SOURCE)}
    code = compile(text.replace(IMPORT, "from fastbp.sklearn import MLPClassifier, MLPRegressor"), str(SOURCE), "exec")
    exec(code, namespace)
    return namespace


if sklearn.__version__ not in CHECKED_VERSIONS:
    pytest.skip(
        f"scikit-learn {sklearn.__version__} is not among the versions its MLP tests are checked against "
        f"({', '.join(CHECKED_VERSIONS)}); the test extra pins one of them",
        allow_module_level=True,
    )

_upstream = _load_upstream()
_not_yet = NOT_YET[sklearn.__version__]


globals().update({name: obj for name, obj in _upstream.items() if name.startswith("test_")})


@pytest.fixture(autouse=True)
def _expected_failure(request):
    """A strict xfail for the tests (by name, or name[parameters]) that ``NOT_YET`` lists."""
    node = request.node
    reason = _not_yet.get(node.name, _not_yet.get(node.originalname))
    if reason is not None:
        node.add_marker(pytest.mark.xfail(reason=f"not yet in fastbp: {reason}", strict=True))


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture of that name, with its default seed (42)."""
    return 42


def test_upstream_file_was_loaded():
    """The upstream module defines the tests this module runs, and the estimators it tests are fastbp's."""
    from fastbp.sklearn import MLPClassifier

    assert _upstream["MLPClassifier"] is MLPClassifier
    assert sum(name.startswith("test_") for name in _upstream) >= 40
    assert {name.split("[")[0] for name in _not_yet} <= {name for name in _upstream if name.startswith("test_")}
