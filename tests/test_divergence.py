"""fit stops at the first non-finite loss, puts back the last good parameters and says where."""

import numpy as np
import pytest

import fastbp
from fastbp.errors import DivergenceError

from conftest import ENGINES, build_network


def diverging_case(engine):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 3))
    D = rng.normal(size=(8, 2)) * 10
    W = [rng.normal(size=(3, 5)), rng.normal(size=(5, 2))]
    b = [np.zeros(5), np.zeros(2)]
    return build_network(W, b, ["relu", "identity"], engine), X, D


@pytest.mark.parametrize("engine", ENGINES)
def test_divergence_raises_names_the_batch_and_keeps_last_good_parameters(engine):
    net, X, D = diverging_case(engine)
    twin = build_network(net.weights, net.biases, list(net.activations), engine)
    lr = 1e50
    with pytest.raises(DivergenceError) as info:
        net.fit(X, D, epochs=10, lr=lr, batch_size=2, shuffle=False)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert f"epoch {err.epoch}, batch {err.batch}" in str(err)
    # replay with steps: the loss of every batch before the reported one is finite, that one is not
    n_batches = 4
    diverged_at = err.epoch * n_batches + err.batch
    assert diverged_at >= 1
    params_before = None
    for k in range(diverged_at + 1):
        s = 2 * (k % n_batches)
        params_before_step = twin.flat_parameters.copy()
        with np.errstate(all="ignore"):
            E = twin.step(X[s : s + 2], D[s : s + 2], lr=lr)
        if k < diverged_at:
            assert np.isfinite(E), k
            params_before = params_before_step
        else:
            assert not np.isfinite(E)
    # the network holds the parameters at which the last finite loss was measured
    np.testing.assert_array_equal(net.flat_parameters, params_before)
    assert np.all(np.isfinite(net.flat_parameters))
    assert len(err.history.loss) == err.epoch
    assert np.all(np.isfinite(err.history.loss))


@pytest.mark.parametrize("engine", ENGINES)
def test_no_divergence_no_error(engine):
    net, X, D = diverging_case(engine)
    h = net.fit(X, D, epochs=3, lr=1e-3, batch_size=2)
    assert np.all(np.isfinite(h.loss))


def test_divergence_on_the_first_batch_leaves_the_network_as_it_was():
    net = fastbp.Network.from_weights([np.array([[1e200]])], [np.array([0.0])], ["identity"])
    before = net.flat_parameters.tobytes()
    with pytest.raises(DivergenceError) as info:
        net.fit(np.array([[1e200]]), np.array([[0.0]]), epochs=2, lr=0.1)
    assert (info.value.epoch, info.value.batch) == (0, 0)
    assert net.flat_parameters.tobytes() == before
    assert len(info.value.history.loss) == 0


def test_divergence_error_survives_pickling():
    """Dask sends exceptions from its workers pickled; the attributes and the message come through."""
    import pickle

    net, X, D = diverging_case("generic")
    with pytest.raises(DivergenceError) as info:
        net.fit(X, D, epochs=10, lr=1e50, batch_size=2, shuffle=False)
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.epoch, copy.batch, str(copy)) == (info.value.epoch, info.value.batch, str(info.value))
    np.testing.assert_array_equal(copy.history.loss, info.value.history.loss)
