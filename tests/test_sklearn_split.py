"""The estimators' epochs split by hidden units over threads (``integrations/sklearn/_split.py``).

Oracles: scikit-learn itself (the same model to a relative 1e-6 after 15 epochs, with the split in use), the
one-thread rule book ``_compiled.fit_epoch`` (every shape, depth of split, activation, loss, rule and dtype
that hypothesis draws), and the split itself run on one thread (the same numbers, bit for bit).
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sklearn")

import sklearn.neural_network as skn  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fastbp  # noqa: E402
from fastbp import sklearn as fsk  # noqa: E402
from fastbp.engine import _threaded as _parallel  # noqa: E402
from fastbp.integrations.sklearn import _compiled, model, split_run  # noqa: E402
from test_sklearn_same_model import assert_same_model, fit_both  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture
def two_threads():
    """Two threads allowed (also on a one-CPU machine), and a record of the split runs: (epochs asked, run)."""
    runs = []
    original = split_run.SplitEpochs.epochs

    def recorded(self, *args):
        result = original(self, *args)
        runs.append((len(args[3]), len(result[0])))
        return result

    fastbp.set_num_threads(2)
    _parallel._one_thread_until = -np.inf  # not still one thread after an earlier test's contended run
    split_run.SplitEpochs.epochs = recorded
    try:
        yield runs
    finally:
        split_run.SplitEpochs.epochs = original
        fastbp.set_num_threads(None)


SPLIT_CONFIGS = {
    "adam": dict(solver="adam"),
    "adam alpha batch 48 no shuffle": dict(solver="adam", alpha=0.3, batch_size=48, shuffle=False),
    "sgd nesterov": dict(solver="sgd", learning_rate_init=0.05),
    "sgd momentum": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False),
    "sgd invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.3, power_t=0.25),
    "sgd adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, tol=0.05, n_iter_no_change=1),
    "adam early stopping": dict(solver="adam", early_stopping=True, learning_rate_init=0.01),
    "adam stops on tol": dict(solver="adam", tol=0.05, n_iter_no_change=2, learning_rate_init=0.01),
    "adam tanh": dict(solver="adam", activation="tanh"),
    "sgd logistic": dict(solver="sgd", activation="logistic", learning_rate_init=0.2),
}


@pytest.mark.parametrize("config", SPLIT_CONFIGS)
def test_one_hidden_layer_on_the_split_is_scikit_learns_model(digits, config, two_threads):
    X, y = digits
    params = {**dict(hidden_layer_sizes=(128,), batch_size=32, max_iter=15, random_state=0), **SPLIT_CONFIGS[config]}
    (ours, theirs), (w_ours, w_theirs) = fit_both("MLPClassifier", X, y, **params)
    assert two_threads, "the split was not used"
    assert_same_model(ours, theirs)
    assert w_ours == w_theirs
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    if config == "adam stops on tol":  # stopped inside a run of epochs, before max_iter
        assert ours.n_iter_ < 15 and two_threads[-1][1] < two_threads[-1][0]
    if config in ("adam", "sgd invscaling", "adam stops on tol"):
        assert max(asked for asked, _ in two_threads) > 1  # several epochs in one compiled run
    if config in ("adam early stopping", "sgd adaptive"):
        assert max(asked for asked, _ in two_threads) == 1  # the estimator steps in after each epoch


def test_a_run_that_stops_early_leaves_the_random_state_where_scikit_learn_does(digits, two_threads):
    X, y = digits
    states = []
    for module in (fsk, skn):
        rng = np.random.RandomState(3)
        est = module.MLPClassifier(hidden_layer_sizes=(128,), batch_size=32, max_iter=40, tol=0.05,
                                   n_iter_no_change=2, learning_rate_init=0.01, random_state=rng)  # fmt: skip
        est.fit(X, y)
        states.append((est.n_iter_, rng.randint(0, 2**31, size=4).tolist()))
    assert states[0] == states[1]
    assert states[0][0] < 40


@pytest.mark.parametrize("targets", ["one output", "three outputs"])
def test_regressor_and_weights_on_the_split_are_scikit_learns(digits, targets, two_threads):
    X, y = digits
    Y = y / 9.0 if targets == "one output" else np.column_stack([y / 9.0, X[:, 20], X[:, 36] * X[:, 43]])
    weights = np.random.default_rng(4).uniform(0.0, 2.0, len(y))
    params = dict(hidden_layer_sizes=(96,), batch_size=40, random_state=1, max_iter=15, alpha=0.01)
    (ours, theirs), _ = fit_both("MLPRegressor", X, Y, fit=dict(sample_weight=weights), **params)
    assert two_threads
    assert_same_model(ours, theirs)


def test_multilabel_classifier_on_the_split_is_scikit_learns(digits, two_threads):
    X, y = digits
    labels = np.column_stack([y % 2, y > 4, y == 7]).astype(int)
    params = dict(hidden_layer_sizes=(64,), batch_size=64, random_state=2, max_iter=15)
    (ours, theirs), _ = fit_both("MLPClassifier", X, labels, **params)
    assert two_threads and ours.out_activation_ == "logistic"
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_split_gives_the_same_numbers_on_one_thread_as_on_two(digits, dtype, two_threads, monkeypatch):
    X, y = digits
    X = X.astype(dtype)
    params = dict(hidden_layer_sizes=(128,), batch_size=32, random_state=0, max_iter=5, alpha=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_two = fsk.MLPClassifier(**params).fit(X, y)
        monkeypatch.setattr(_parallel, "contended", lambda: True)  # every share on the caller's thread
        on_one = fsk.MLPClassifier(**params).fit(X, y)
    assert len(two_threads) >= 2
    assert on_two.coefs_[0].dtype == dtype
    for a, b in zip(on_two.coefs_ + on_two.intercepts_, on_one.coefs_ + on_one.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert on_two.loss_curve_ == on_one.loss_curve_


def test_a_failing_helper_stops_the_fit_and_leaves_the_estimator_as_it_was(digits, two_threads, monkeypatch):
    X, y = digits
    est = fsk.MLPClassifier(hidden_layer_sizes=(128,), batch_size=32, random_state=0, max_iter=2, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    before = [c.copy() for c in est.coefs_ + est.intercepts_], list(est.loss_curve_), est._optimizer.t

    def broken(*args):
        raise MemoryError("helper out of memory")

    monkeypatch.setattr(_parallel, "contended", lambda: False)  # the helpers run, however the last runs went
    monkeypatch.setattr(split_run, "_helper_entry", broken)
    with pytest.raises(RuntimeError, match="a fit thread failed.*helper out of memory"):
        est.fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, before[0]):
        np.testing.assert_array_equal(a, b)
    assert est.loss_curve_ == before[1] and est._optimizer.t == before[2]
    monkeypatch.undo()
    fastbp.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)  # the helpers still work
    assert len(est.loss_curve_) == 4


def _serial_epochs(packed, theta, data, orders, epoch_lrs, batch_size, alpha, opt):
    losses = []
    work = packed.work(batch_size, data[0].shape[1], theta.dtype, gather=True)
    t = opt[7]
    for e, lr in enumerate(epoch_lrs):
        order = orders[min(e, len(orders) - 1)]
        step = (opt[0], lr, *opt[2:7], t, *opt[8:])
        loss, t, _ = _compiled.fit_epoch(theta, packed.layout, data, order, True, batch_size, alpha, 1e-7, work,
                                         np.empty_like(theta), step)  # fmt: skip
        losses.append(loss)
    return losses, t


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_in=st.integers(1, 9),
    hidden=st.integers(2, 24),
    n_out=st.integers(1, 5),
    n_samples=st.integers(1, 70),
    batch_size=st.integers(1, 33),
    n_shares=st.integers(2, 4),
    activation=st.sampled_from(["identity", "logistic", "tanh", "relu"]),
    output=st.sampled_from(["identity", "softmax", "logistic", "exp"]),
    rule=st.sampled_from([_compiled.ADAM_RULE, _compiled.SGD_RULE]),
    nesterov=st.booleans(),
    alpha=st.sampled_from([0.0, 0.5]),
    weighted=st.booleans(),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_the_split_follows_the_one_thread_rules(
    n_in, hidden, n_out, n_samples, batch_size, n_shares, activation, output, rule, nesterov, alpha, weighted,
    dtype, seed, two_threads,
):  # fmt: skip
    """Any split of the hidden units into shares (2 to 4, on two threads: a thread may run several), three
    epochs: the parameters, optimizer state, losses and step count of ``_compiled.fit_epoch``'s rules."""
    n_shares = min(n_shares, hidden)
    rng = np.random.default_rng(seed)
    batch_size = min(batch_size, n_samples)
    X = rng.normal(size=(n_samples, n_in))
    D = rng.uniform(0.0, 1.0, (n_samples, n_out))
    if output == "softmax":
        D = np.eye(n_out)[rng.integers(0, n_out, n_samples)]
    elif output == "logistic":
        D = (D > 0.5).astype(float)
    weights = rng.uniform(0.0, 2.0, n_samples) if weighted else None
    sizes = [n_in, hidden, n_out]
    packed = model.PackedLayout(sizes, activation, output)
    theta = model.initial_parameters(np.random.RandomState(seed), sizes, activation, dtype)
    data = model.as_data(X, D, weights, dtype)
    orders = np.stack([rng.permutation(n_samples) for _ in range(3)]).astype(np.int64)
    epoch_lrs = np.array([0.01, 0.007, 0.005])
    bounds = np.unique(np.concatenate([[0, hidden], rng.choice(np.arange(1, hidden), n_shares - 1, replace=False)]))
    states = [np.abs(rng.normal(size=theta.shape)).astype(dtype) * 1e-3 for _ in range(2)]
    opt = (rule, 0.01, 0.9, nesterov, 0.9, 0.999, 1e-8, 4, *states)
    expected_theta, expected_states = theta.copy(), [s.copy() for s in states]
    expected = _serial_epochs(packed, expected_theta, data, orders, epoch_lrs, batch_size, alpha,
                              (*opt[:8], *expected_states))  # fmt: skip

    split = split_run.SplitEpochs(packed, bounds.astype(np.int64), batch_size, dtype, rule)
    stopping = (0.0, 0.0, 0.0, 0.0, 0.0)
    losses, t, _ = split.epochs(theta, data, orders, epoch_lrs, stopping, alpha, 1e-7, opt)
    rtol = 1e-9 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(theta, expected_theta, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(states[0], expected_states[0], rtol=rtol, atol=rtol)
    if rule == _compiled.ADAM_RULE:
        np.testing.assert_allclose(states[1], expected_states[1], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(losses, expected[0], rtol=rtol)
    assert t == expected[1]
