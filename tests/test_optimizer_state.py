"""An optimizer's attributes are checked when set and again at every use: nothing out of shape or out of
range reaches the compiled update (numba does not check bounds), and a refused call changes nothing."""

import numpy as np
import pytest

import fastbp

X = np.random.default_rng(0).normal(size=(12, 3))
D = np.random.default_rng(1).normal(size=(12, 2))


def fitted(make):
    net = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=0)
    opt = make()
    net.fit(X, D, epochs=2, batch_size=4, seed=0, optimizer=opt)
    return net, opt


def snapshot(net, opt):
    states = tuple(None if s is None else s.tobytes() for s in (opt.state1, opt.state2))
    return net.flat_parameters.tobytes(), states, opt.step_count, opt.get_params()


ADAM = (lambda: fastbp.Adam(lr=0.01), "adam")
MOMENTUM = (lambda: fastbp.SGD(lr=0.01, momentum=0.9), "sgd")

# (what the user does to a fitted optimizer, the error, words of the message)
BAD_STATE = [
    (lambda opt: setattr(opt, "state2", np.zeros(0)), ValueError, "state2 is empty"),
    (lambda opt: setattr(opt, "state2", opt.state2[:-1].copy()), ValueError, "state2 holds"),
    (lambda opt: setattr(opt, "state1", opt.state1[:-1].copy()), ValueError, "state1 holds"),
    (lambda opt: setattr(opt, "state1", np.concatenate([opt.state1, [0.0]])), ValueError, "state1 holds"),
    (lambda opt: setattr(opt, "state1", np.repeat(opt.state1, 2)[::2]), ValueError, "state1 must be C-contiguous"),
    (lambda opt: setattr(opt, "state1", None), TypeError, "reset()"),
    (lambda opt: setattr(opt, "state1", list(opt.state1)), TypeError, "state1 must be a 1-D"),
    (lambda opt: setattr(opt, "state1", opt.state1[None, :].copy()), ValueError, "state1 must be 1-D"),
    (lambda opt: setattr(opt, "state1", opt.state1.astype(np.float32)), ValueError, "float32 entries"),
    (lambda opt: setattr(opt, "state1", opt.state1.astype(np.int64)), TypeError, "dtype int64"),
    (lambda opt: setattr(opt, "step_count", 2.5), TypeError, "step_count must be an integer"),
    (lambda opt: setattr(opt, "step_count", -1), ValueError, "step_count must be in"),
    (lambda opt: setattr(opt, "step_count", True), TypeError, "step_count must be an integer"),
    (lambda opt: setattr(opt, "lr", -1.0), ValueError, "lr must be > 0"),
    (lambda opt: setattr(opt, "lr", float("nan")), ValueError, "lr must be finite"),
    (lambda opt: setattr(opt, "lr", "0.1"), TypeError, "lr must be a number"),
    (lambda opt: setattr(opt, "weight_decay", -0.5), ValueError, "weight_decay must be >= 0"),
]
ADAM_ONLY = [
    (lambda opt: setattr(opt, "beta1", 1.5), ValueError, "beta1 must be < 1"),
    (lambda opt: setattr(opt, "beta2", -0.1), ValueError, "beta2 must be >= 0"),
    (lambda opt: setattr(opt, "eps", 0), ValueError, "eps must be > 0"),
]
SGD_ONLY = [
    (lambda opt: setattr(opt, "momentum", 1.0), ValueError, "momentum must be < 1"),
]


def _in_place_edits():
    def readonly(opt):
        opt.state1.flags.writeable = False

    def reshaped(opt):
        opt.state1.shape = (1, -1)

    def shrunk(opt):
        opt.state1.resize(3, refcheck=False)

    return [
        (readonly, ValueError, "state1 must be writeable"),
        (reshaped, ValueError, "state1 must be 1-D"),
        (shrunk, ValueError, "state1 holds 3"),
    ]


CASES = [(ADAM, *case) for case in BAD_STATE + ADAM_ONLY + _in_place_edits()] + [
    (MOMENTUM, *case) for case in BAD_STATE[2:] + SGD_ONLY + _in_place_edits()
]


@pytest.mark.parametrize("optimizer, edit, error, message", CASES)
def test_a_bad_attribute_is_refused_when_set_or_at_the_next_use_and_nothing_changes(optimizer, edit, error, message):
    make, _ = optimizer
    net, opt = fitted(make)
    before = snapshot(net, opt)
    try:
        edit(opt)
    except error as exc:  # refused as it was set: the optimizer keeps what it had
        assert message in str(exc)
        assert snapshot(net, opt) == before
    else:  # an edit of the array in place: refused by the next fit
        params = net.flat_parameters.tobytes()
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            net.fit(X, D, epochs=1, batch_size=4, optimizer=opt)
        assert net.flat_parameters.tobytes() == params
        assert opt.step_count == before[2]


def test_hyperparameters_set_after_construction_follow_the_constructors_rules():
    opt = fastbp.Adam(lr=0.01)
    opt.lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay = 0.02, 0.8, 0.99, 1e-6, 0.1
    assert opt.get_params() == dict(lr=0.02, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)
    assert opt.hyper()[fastbp.kernels.H_BETA1] == 0.8
    for name, value in [("lr", 0.0), ("beta1", 1.0), ("beta2", 1.0), ("eps", -1e-8), ("weight_decay", np.inf)]:
        with pytest.raises(ValueError, match=name):
            setattr(opt, name, value)
        with pytest.raises(ValueError, match=name):
            fastbp.Adam(**{name: value})


def test_nesterov_without_momentum_is_refused_at_use():
    net, opt = fitted(lambda: fastbp.SGD(lr=0.01, momentum=0.9, nesterov=True))
    opt.momentum = 0.0  # each attribute alone is valid; the pair is checked at the next use
    before = snapshot(net, opt)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        net.fit(X, D, epochs=1, optimizer=opt)
    assert snapshot(net, opt) == before


def test_replaced_state_of_the_right_kind_is_used():
    """A valid replacement is taken as it is: the next fit continues from it."""
    net, opt = fitted(ADAM[0])
    twin, twin_opt = net.copy(), fastbp.Adam(lr=0.01)
    twin.fit(X, D, epochs=1, batch_size=4, seed=3, optimizer=twin_opt)  # twin_opt gets its own state ...
    twin.flat_parameters[...] = net.flat_parameters
    twin_opt.state1, twin_opt.state2 = opt.state1.copy(), opt.state2.copy()  # ... replaced by opt's
    twin_opt.step_count = opt.step_count
    net.fit(X, D, epochs=1, batch_size=4, seed=4, optimizer=opt)
    twin.fit(X, D, epochs=1, batch_size=4, seed=4, optimizer=twin_opt)
    assert net.flat_parameters.tobytes() == twin.flat_parameters.tobytes()
    assert opt.state2.tobytes() == twin_opt.state2.tobytes()


def test_momentum_given_to_an_unused_sgd_starts_its_velocity_at_zero_and_is_refused_after_steps():
    net = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=0)
    opt = fastbp.SGD(lr=0.01)
    opt.bind(net.n_params, net.dtype)
    assert opt.state1.shape == (0,)
    opt.momentum = 0.5
    net.fit(X, D, epochs=1, batch_size=4, seed=0, optimizer=opt)
    twin = fastbp.Network([3, 5, 2], ["tanh", "identity"], seed=0)
    twin.fit(X, D, epochs=1, batch_size=4, seed=0, optimizer=fastbp.SGD(lr=0.01, momentum=0.5))
    assert net.flat_parameters.tobytes() == twin.flat_parameters.tobytes()

    used, plain = fitted(lambda: fastbp.SGD(lr=0.01))
    plain.momentum = 0.5
    with pytest.raises(ValueError, match="reset()"):
        used.fit(X, D, epochs=1, optimizer=plain)
    plain.reset()
    used.fit(X, D, epochs=1, optimizer=plain)
    assert plain.state1.shape == (used.n_params,)


def test_one_optimizer_for_two_networks_is_refused():
    net, opt = fitted(ADAM[0])
    other = fastbp.Network([3, 4, 2], ["tanh", "identity"], seed=0)
    before = other.flat_parameters.tobytes()
    with pytest.raises(ValueError, match="use a new optimizer"):
        other.fit(X, D, epochs=1, optimizer=opt)
    assert other.flat_parameters.tobytes() == before


@pytest.mark.parametrize("sizes", [[3, 5, 2], [64, 64, 10]])  # one thread; two threads (the check is in the run)
def test_a_fit_refused_for_non_finite_data_leaves_a_new_optimizer_without_state(sizes):
    rng = np.random.default_rng(0)
    net = fastbp.Network(sizes, ["tanh", "identity"], seed=0)
    X, D = rng.normal(size=(128, sizes[0])), rng.normal(size=(128, sizes[-1]))
    X[100, 1] = np.nan
    opt = fastbp.Adam(lr=0.01)
    before = net.flat_parameters.tobytes()
    with pytest.raises(ValueError, match="X must be finite"):
        net.fit(X, D, epochs=2, batch_size=32, optimizer=opt)
    assert opt.state1 is None and opt.state2 is None and opt.step_count == 0
    assert net.flat_parameters.tobytes() == before and net.optimizer is None
