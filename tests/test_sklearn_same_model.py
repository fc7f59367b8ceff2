"""fastbp.sklearn gives scikit-learn's model, and has its features.

With the same ``random_state``, in float64, ``coefs_``, ``intercepts_``, ``loss_curve_``, ``n_iter_`` (and the
validation scores, the optimizer's learning rate and the warnings) equal scikit-learn's to a relative 1e-6
after 15 epochs of a two-hidden-layer network on the digits data, for every solver and learning-rate rule;
the same holds with ``sample_weight``, sparse X, ``loss="poisson"``, multilabel and multi-output targets.
The objective and its gradient are checked against scikit-learn's and against central differences.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")

import scipy.sparse as sp  # noqa: E402
import sklearn.neural_network as skn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from fastbp import sklearn as fsk  # noqa: E402

RTOL = 1e-6


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def fit_both(name, X, y, fit="fit", **params):
    """The fastbp and the scikit-learn estimator of that name, each fitted alike; and the warnings of each
    (category and message)."""
    models, caught = [], []
    for module in (fsk, skn):
        est = getattr(module, name)(**params)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            getattr(est, fit)(X, y) if not isinstance(fit, dict) else est.fit(X, y, **fit)
        models.append(est)
        caught.append([(w.category, str(w.message)) for w in record if not issubclass(w.category, DeprecationWarning)])
    return models, caught


def relative_error(a, b):
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(np.asarray(a, dtype=float) - b)) / max(np.max(np.abs(b)), 1e-300))


def assert_same_model(ours, theirs, rtol=RTOL):
    assert ours.n_iter_ == theirs.n_iter_
    assert [c.dtype for c in ours.coefs_] == [c.dtype for c in theirs.coefs_]
    for mine, other in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.shape == other.shape
        assert relative_error(mine, other) < rtol
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=rtol)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    if getattr(theirs, "validation_scores_", None) is not None:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=rtol)
        assert ours.best_validation_score_ == pytest.approx(theirs.best_validation_score_, rel=rtol)
    if hasattr(theirs, "_optimizer"):
        assert ours._optimizer.learning_rate == pytest.approx(theirs._optimizer.learning_rate, rel=rtol)
    assert ours.t_ == theirs.t_


SOLVERS = {
    "adam": dict(solver="adam"),
    "sgd nesterov": dict(solver="sgd", learning_rate_init=0.05),
    "sgd momentum": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False),
    "sgd plain": dict(solver="sgd", learning_rate_init=0.05, momentum=0.0),
    "sgd invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.3, power_t=0.25),
    "sgd adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, tol=0.05, n_iter_no_change=1),
    "lbfgs": dict(solver="lbfgs"),
    "adam early stopping": dict(solver="adam", early_stopping=True, learning_rate_init=0.01),
    "sgd early stopping": dict(solver="sgd", early_stopping=True, learning_rate_init=0.05, n_iter_no_change=2),
    "adam alpha batch 64 no shuffle": dict(solver="adam", alpha=0.3, batch_size=64, shuffle=False),
}


@pytest.mark.parametrize("config", SOLVERS)
def test_classifier_is_scikit_learns_model(digits, config):
    X, y = digits
    params = dict(hidden_layer_sizes=(32, 16), random_state=0, max_iter=15, **SOLVERS[config])
    (ours, theirs), (w_ours, w_theirs) = fit_both("MLPClassifier", X, y, **params)
    assert_same_model(ours, theirs)
    assert w_ours == w_theirs
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6, atol=1e-9)
    if config == "sgd adaptive":  # the schedule did divide the learning rate
        assert theirs._optimizer.learning_rate < 0.05


@pytest.mark.parametrize("config", ["adam", "sgd nesterov", "sgd invscaling", "lbfgs", "adam early stopping"])
@pytest.mark.parametrize("targets", ["one output", "three outputs"])
def test_regressor_is_scikit_learns_model(digits, config, targets):
    X, y = digits
    Y = y / 9.0 if targets == "one output" else np.column_stack([y / 9.0, X[:, 20], X[:, 36] * X[:, 43]])
    params = dict(hidden_layer_sizes=(32, 16), random_state=1, max_iter=15, **SOLVERS[config])
    if config.startswith("sgd"):
        params["learning_rate_init"] = 0.01
    (ours, theirs), (w_ours, w_theirs) = fit_both("MLPRegressor", X, Y, **params)
    assert_same_model(ours, theirs)
    assert w_ours == w_theirs
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("config", ["adam", "sgd nesterov", "lbfgs"])
def test_multilabel_classifier_and_poisson_regressor_are_scikit_learns_models(digits, config):
    X, y = digits
    labels = np.column_stack([y % 2, y > 4, y == 7]).astype(int)
    (ours, theirs), _ = fit_both("MLPClassifier", X, labels, hidden_layer_sizes=(16, 8), random_state=2, max_iter=15,
                                 **SOLVERS[config])  # fmt: skip
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert_same_model(ours, theirs)
    counts = np.random.default_rng(0).poisson(np.exp(X[:, 20] + X[:, 43]))
    params = dict(hidden_layer_sizes=(8,), loss="poisson", random_state=3, max_iter=15, **SOLVERS[config])
    if config.startswith("sgd"):
        params["learning_rate_init"] = 0.001
    (ours, theirs), _ = fit_both("MLPRegressor", X, counts, **params)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("config", ["adam", "sgd nesterov", "lbfgs", "adam early stopping"])
@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_sample_weight_is_scikit_learns(digits, config, name):
    X, y = digits
    weights = np.random.default_rng(4).uniform(0.0, 2.0, len(y))
    target = y if name == "MLPClassifier" else y / 9.0
    params = dict(hidden_layer_sizes=(16,), random_state=5, max_iter=15, **SOLVERS[config])
    (ours, theirs), _ = fit_both(name, X, target, fit=dict(sample_weight=weights), **params)
    assert_same_model(ours, theirs)
    (unweighted, _), _ = fit_both(name, X, target, **params)
    assert relative_error(ours.coefs_[0], unweighted.coefs_[0]) > 1e-3  # the weights did change the model


def test_integer_sample_weights_equal_repeated_samples_with_lbfgs(digits):
    X, y = digits
    X, y = X[:300], y[:300]
    counts = np.random.default_rng(6).integers(0, 3, len(y))
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0, max_iter=30, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weighted = fsk.MLPClassifier(**params).fit(X, y, sample_weight=counts)
        repeated = fsk.MLPClassifier(**params).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    for a, b in zip(weighted.coefs_, repeated.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_partial_fit_with_sample_weight_is_scikit_learns(digits):
    X, y = digits
    weights = np.random.default_rng(7).uniform(0.5, 1.5, len(y))
    ours = fsk.MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    theirs = skn.MLPClassifier(hidden_layer_sizes=(16,), random_state=0)
    for start in range(0, 1500, 500):
        rows = slice(start, start + 500)
        for est in (ours, theirs):
            est.partial_fit(X[rows], y[rows], sample_weight=weights[rows], classes=np.arange(10))
    assert_same_model(ours, theirs)


def _refuse_to_densify(method, shape):
    """The sparse method ``method`` (toarray, todense), failing the test when called on a matrix of ``shape``
    (the label binarizer densifies its own small matrices)."""

    def refuse(self, *args, **kwargs):
        if self.shape == shape:
            pytest.fail("X was densified")
        return method(self, *args, **kwargs)

    return refuse


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
@pytest.mark.parametrize("config", ["adam", "lbfgs"])
def test_sparse_input_gives_the_dense_model_without_densifying(digits, config, container, monkeypatch):
    X, y = digits
    X_sparse = container(X)
    params = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=10, **SOLVERS[config])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = fsk.MLPClassifier(**params).fit(X, y)
        theirs = skn.MLPClassifier(**params).fit(X_sparse, y)
        for cls in (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array):
            for method in ("toarray", "todense"):
                monkeypatch.setattr(cls, method, _refuse_to_densify(getattr(cls, method), X.shape))
        ours = fsk.MLPClassifier(**params).fit(X_sparse, y)
        proba = ours.predict_proba(X_sparse)
    monkeypatch.undo()
    for a, b in zip(ours.coefs_ + ours.intercepts_, dense.coefs_ + dense.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert_same_model(ours, theirs)
    np.testing.assert_allclose(proba, dense.predict_proba(X), rtol=1e-9, atol=1e-12)


def test_a_malformed_sparse_matrix_is_refused_before_compiled_code(digits):
    X, y = digits
    X_sparse = sp.csr_matrix(X[:50])
    X_sparse.indices[3] = 10**6  # a column far outside the 64 features
    with pytest.raises(ValueError, match="indices must be < 64"):
        fsk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X_sparse, y[:50])


@pytest.mark.parametrize("name", ["MLPClassifier", "MLPRegressor"])
def test_float32_input_gives_a_float32_model_computed_in_float32(digits, name):
    X, y = digits
    target = y if name == "MLPClassifier" else y / 9.0
    params = dict(hidden_layer_sizes=(16,), random_state=0, max_iter=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours32 = getattr(fsk, name)(**params).fit(X.astype(np.float32), target)
        theirs32 = getattr(skn, name)(**params).fit(X.astype(np.float32), target)
        ours64 = getattr(fsk, name)(**params).fit(X, target)
    assert all(a.dtype == np.float32 for a in ours32.coefs_ + ours32.intercepts_)
    for a, b, c in zip(ours32.coefs_, theirs32.coefs_, ours64.coefs_):
        assert relative_error(a, b) < 1e-3  # float32 rounding only
        assert not np.array_equal(a, c.astype(np.float32))  # not a float64 fit cast down
    if name == "MLPRegressor":
        assert ours32.predict(X.astype(np.float32)).dtype == np.float32
        assert ours32.predict(X).dtype == np.float64  # numpy's promotion, as scikit-learn's


def test_sample_weight_errors():
    X, y = np.random.default_rng(0).normal(size=(10, 3)), np.arange(10) % 2
    est = fsk.MLPClassifier(hidden_layer_sizes=(4,), max_iter=2)
    for weights, message in [
        ([1.0] * 9, r"sample_weight.shape == \(9,\), expected \(10,\)"),
        ([1.0] * 9 + [-1.0], "Negative values"),
        ([1.0] * 9 + [np.nan], "NaN"),
        ([0.0] * 10, "non-zero"),
    ]:
        with pytest.raises(ValueError, match=message):
            est.fit(X, y, sample_weight=weights)
        assert not hasattr(est, "coefs_")


KINDS = ["regression", "two outputs", "multiclass", "binary", "multilabel", "poisson"]


def problem(kind, rng, n=30):
    X = rng.normal(size=(n, 4))
    targets = {
        "regression": rng.normal(size=n),
        "two outputs": rng.normal(size=(n, 2)),
        "multiclass": rng.integers(0, 3, n),
        "binary": rng.integers(0, 2, n),
        "multilabel": rng.integers(0, 2, (n, 3)),
        "poisson": rng.poisson(2.0, n).astype(float),
    }
    return X, targets[kind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_objective_and_gradient_match_scikit_learn_and_central_differences(kind, weighted, sparse):
    """The loss and gradient at the same parameters: scikit-learn's _loss_grad_lbfgs (first oracle) and
    central differences of the objective (second; scikit-learn's gradient is that of its reported loss except
    for the squared error of several outputs, which it reports divided by their number)."""
    rng = np.random.default_rng(KINDS.index(kind))
    X, y = problem(kind, rng)
    name = "MLPClassifier" if kind in ("multiclass", "binary", "multilabel") else "MLPRegressor"
    extra = {"loss": "poisson"} if kind == "poisson" else {}
    params = dict(hidden_layer_sizes=(5, 3), activation="tanh", solver="lbfgs", alpha=0.3, max_iter=1, **extra)
    (ours, theirs), _ = fit_both(name, X, y, random_state=0, **params)
    theta = rng.normal(scale=0.5, size=sum(w.size for w in ours.coefs_) + sum(b.size for b in ours.intercepts_))
    Y = np.asarray(y, dtype=float).reshape(len(y), -1) if kind != "multiclass" else np.eye(3)[y]
    weights = rng.uniform(0.2, 2.0, len(X)) if weighted else None
    Xs = sp.csr_matrix(X) if sparse else X
    J, g = ours._loss_grad_lbfgs(theta.copy(), Xs, Y, weights)
    theirs._unpack(theta)
    n_layers = theirs.n_layers_
    work = ([Xs] + [None] * (n_layers - 1), [None] * (n_layers - 1),
            [np.empty_like(w) for w in theirs.coefs_], [np.empty_like(b) for b in theirs.intercepts_])  # fmt: skip
    J_sk, g_sk = theirs._loss_grad_lbfgs(theta.copy(), Xs, Y, weights, *work)
    np.testing.assert_allclose(J, J_sk, rtol=1e-12)
    np.testing.assert_allclose(g, g_sk, rtol=1e-10, atol=1e-13)
    if kind != "two outputs":
        h = 1e-6

        def objective(t):
            return ours._loss_grad_lbfgs(t, Xs, Y, weights)[0]

        numeric = [(objective(theta + h * e) - objective(theta - h * e)) / (2 * h) for e in np.eye(theta.size)]
        np.testing.assert_allclose(g, numeric, rtol=1e-6, atol=1e-8)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    hidden=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    activation=st.sampled_from(["identity", "logistic", "tanh", "relu"]),
    solver=st.sampled_from(["adam", "sgd", "lbfgs"]),
    kind=st.sampled_from(KINDS),
    n=st.integers(12, 60),
    batch_size=st.sampled_from(["auto", 1, 5, 16]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 100),
)
def test_property_same_model_over_shapes_depths_batches_activations_and_dtypes(
    hidden, activation, solver, kind, n, batch_size, dtype, seed
):
    rng = np.random.default_rng(seed)
    X, y = problem(kind, rng, n)
    name = "MLPClassifier" if kind in ("multiclass", "binary", "multilabel") else "MLPRegressor"
    extra = {"loss": "poisson"} if kind == "poisson" else {}
    params = dict(hidden_layer_sizes=tuple(hidden), activation=activation, solver=solver, batch_size=batch_size,
                  max_iter=3, random_state=seed, learning_rate_init=0.01, **extra)  # fmt: skip
    (ours, theirs), (w_ours, w_theirs) = fit_both(name, X.astype(dtype), y, **params)
    assert w_ours == w_theirs
    if dtype == np.float64:
        assert_same_model(ours, theirs)
    else:  # float32: the same model up to float32 rounding
        assert ours.n_iter_ == theirs.n_iter_
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
