"""What the two estimators share: parameter checks and ``_BaseMLP`` (fit, partial_fit,
the stochastic solvers, early stopping, the network behind ``coefs_`` and ``intercepts_``).
"""

import contextlib
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from fastbp.errors import DivergenceError
from fastbp.nn.network import Network
from fastbp.nn.optimizers import SGD, Adam

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


_SOLVERS = ("adam", "sgd")


_LEARNING_RATES = ("constant", "invscaling", "adaptive")


_OUTPUT = {  # fastbp output activation, fastbp loss, scikit-learn's name of the output activation
    "regression": ("identity", "squared_error", "identity"),
    "multiclass": ("softmax", "cross_entropy", "softmax"),
    "binary": ("sigmoid", "binary_cross_entropy", "logistic"),
}


_MAX_SEED = 2**31 - 1


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _check_real(est, name, low=None, high=None, low_open=False, high_open=False):
    value = getattr(est, name)
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad = bad or value < low or (low_open and value == low)
    if high is not None:
        bad = bad or value > high or (high_open and value == high)
    if bad:
        lo = "" if low is None else f"{low} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} must be a finite number with {lo}{name}{hi}, got {value!r}")
    return value


def _check_int(est, name, low=1):
    value = getattr(est, name)
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return int(value)


def _check_option(est, name, options):
    value = getattr(est, name)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {value!r}")
    return value


def _hidden_sizes(value):
    """hidden_layer_sizes (an int or a sequence of ints >= 1) as a list of int."""
    if isinstance(value, numbers.Integral) and not _is_bool(value):
        sizes = [value]
    elif isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of ints, got {value!r}")
    else:
        sizes = list(value)
    for s in sizes:
        if _is_bool(s) or not isinstance(s, numbers.Integral):
            raise TypeError(f"hidden_layer_sizes must hold integers, got {value!r}")
        if s < 1:
            raise ValueError(f"hidden_layer_sizes must be > 0, got {value!r}")
    return [int(s) for s in sizes]


class _BaseMLP(BaseEstimator):
    """What MLPRegressor and MLPClassifier share: parameters, the training loop, prediction and pickling."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # ------------------------------------------------------------ checks

    def _check_params(self):
        """Validate every hyperparameter (in fit, not in __init__, as scikit-learn requires)."""
        if self.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not supported by fastbp's MLP estimators: use solver='adam' or 'sgd' "
                "(or sklearn.neural_network's estimators for L-BFGS)"
            )
        _check_option(self, "solver", _SOLVERS)
        _check_option(self, "activation", tuple(_ACTIVATIONS))
        _check_option(self, "learning_rate", _LEARNING_RATES)
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        _check_real(self, "alpha", 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_int(self, "batch_size")
        _check_real(self, "learning_rate_init", 0.0, low_open=True)
        _check_real(self, "power_t", 0.0)
        _check_int(self, "max_iter")
        _check_real(self, "tol", 0.0)
        _check_real(self, "momentum", 0.0, 1.0, high_open=True)
        _check_real(self, "validation_fraction", 0.0, 1.0, high_open=True)
        _check_real(self, "beta_1", 0.0, 1.0, high_open=True)
        _check_real(self, "beta_2", 0.0, 1.0, high_open=True)
        _check_real(self, "epsilon", 0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, numbers.Real) and self.n_iter_no_change == np.inf):
            _check_int(self, "n_iter_no_change")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not _is_bool(getattr(self, name)):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not isinstance(self.verbose, (bool, np.bool_, numbers.Integral)):
            raise TypeError(f"verbose must be a bool or an int, got {self.verbose!r}")
        return hidden

    # ------------------------------------------------------------ training

    def _initialize(self, n_features, n_outputs, hidden, kind):
        """A new network (weights seeded from the random state) and fresh training state."""
        out_activation, loss, sk_name = _OUTPUT[kind]
        sizes = [n_features, *hidden, n_outputs]
        activations = [_ACTIVATIONS[self.activation]] * len(hidden) + [out_activation]
        seed = int(self._rng.randint(_MAX_SEED))
        self._net = Network(sizes, activations, loss=loss, dtype=np.float64, seed=seed)
        self._set_parameter_views()
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.out_activation_ = sk_name
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._optimizer = None
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _set_parameter_views(self):
        # views into the network's parameter vector: they follow training, and edits of them take effect
        self.coefs_ = list(self._net.weights)
        self.intercepts_ = list(self._net.biases)

    def _make_optimizer(self):
        if self.solver == "sgd":
            momentum = float(self.momentum)
            return SGD(lr=self.learning_rate_init, momentum=momentum, nesterov=self.nesterovs_momentum and momentum > 0)
        return Adam(lr=self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)

    @contextlib.contextmanager
    def _unchanged_on_error(self):
        """On an error, put back every attribute as it was (a refused fit leaves the estimator as it was;
        arrays changed in place by training, as on a DivergenceError, are the network's business)."""
        before = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _fit(self, X, y, incremental):
        with self._unchanged_on_error():
            return self._fit_unchecked(X, y, incremental)

    def _fit_unchecked(self, X, y, incremental):
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, D, kind = self._validate_input(X, y, incremental, reset=first_pass)
        n_samples, n_features = X.shape
        if first_pass:
            self._rng = check_random_state(self.random_state)
            self._initialize(n_features, D.shape[1], hidden, kind)
        else:
            sizes = (n_features, *hidden, D.shape[1])
            activations = (_ACTIVATIONS[self.activation],) * len(hidden) + (_OUTPUT[kind][0],)
            if (self._net.sizes, self._net.activations) != (sizes, activations):
                raise ValueError(
                    f"the fitted network has layer sizes {list(self._net.sizes)} and activations "
                    f"{list(self._net.activations)}, but these data and parameters need {list(sizes)} and "
                    f"{list(activations)}: fit anew (warm_start=False) to change them"
                )
        self._kind = kind
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer()
        self._fit_stochastic(X, D, incremental)
        return self

    def _fit_stochastic(self, X, D, incremental):
        net, opt = self._net, self._optimizer
        early_stopping = self.early_stopping
        if early_stopping:
            if self.validation_scores_ is None:  # warm start of a model first fitted without early stopping
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            stratify = D if (self._kind != "regression" and D.shape[1] == 1) else None
            X, X_val, D, D_val = train_test_split(
                X, D, random_state=self._rng, test_size=self.validation_fraction, stratify=stratify
            )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
                )
            X, D = np.ascontiguousarray(X), np.ascontiguousarray(D)
            X_val = np.ascontiguousarray(X_val)
            y_val = self._targets_from_outputs(D_val)
            best_params = net.flat_parameters.copy()
        elif self.best_loss_ is None:  # warm start of a model first fitted with early stopping
            self.best_loss_ = np.inf
        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                    UserWarning,
                    stacklevel=4,
                )
            batch_size = min(int(self.batch_size), n_samples)
        n_batches = -(-n_samples // batch_size)
        # scikit-learn adds alpha * W / n_batch to each batch's gradient: the same as weight decay alpha / n_batch
        opt.weight_decay = float(self.alpha) / batch_size
        adaptive = self.solver == "sgd" and self.learning_rate == "adaptive"
        invscaling = self.solver == "sgd" and self.learning_rate == "invscaling"
        loss_scale = 1.0 / D.shape[1] if self._kind == "regression" else 1.0

        self.n_iter_ = 0
        for _ in range(self.max_iter):
            seed = int(self._rng.randint(_MAX_SEED)) if self.shuffle else None
            try:
                history = net.fit(X, D, epochs=1, batch_size=batch_size, shuffle=self.shuffle, seed=seed, optimizer=opt)
            except DivergenceError as exc:
                raise ValueError(
                    "Solver produced non-finite parameter weights: the training loss became inf or NaN "
                    f"in epoch {self.n_iter_ + 1}. The input data may contain large values and need to be "
                    "preprocessed, or learning_rate_init may be too large."
                ) from exc
            self.n_iter_ += 1
            self.t_ += n_samples
            penalty = 0.5 * self.alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in net.weights)
            self.loss_ = float(history.loss[0]) * loss_scale + penalty * n_batches / n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")

            if early_stopping:
                score = self._validation_score(X_val, y_val)
                self.validation_scores_.append(score)
                if self.verbose:
                    print(f"Validation score: {score:f}")
                if score < self.best_validation_score_ + self.tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_params[...] = net.flat_parameters
            else:
                if self.loss_ > self.best_loss_ - self.tol:
                    self._no_improvement_count += 1
                else:
                    self._no_improvement_count = 0
                if self.loss_ < self.best_loss_:
                    self.best_loss_ = self.loss_

            if invscaling:
                opt.lr = float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)

            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if early_stopping else "Training loss"
                msg = (
                    f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
                )
                if adaptive and opt.lr > 1e-6:
                    opt.lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print(f"{msg} Setting learning rate to {opt.lr:f}")
                else:
                    if self.verbose:
                        print(f"{msg} Stopping." if not adaptive else f"{msg} Learning rate too small. Stopping.")
                    break

            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn(
                    f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                    "optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=4,
                )
        if early_stopping:
            net.flat_parameters[...] = best_params

    # ------------------------------------------------------------ prediction

    def _forward(self, X):
        """The network's outputs (n_samples, n_outputs) for validated X."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        return self._net.forward(X)

    # ------------------------------------------------------------ pickling

    def __getstate__(self):
        # a fastbp Network holds a lock and compiled code: pickle its parameters (coefs_, intercepts_) instead
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself, not a copy
        net = state.pop("_net", None)
        if "coefs_" in state:
            state["coefs_"] = [np.array(w) for w in state["coefs_"]]
            state["intercepts_"] = [np.array(b) for b in state["intercepts_"]]
            state["_net_spec"] = (net.activations, net.loss)
        return state

    def __setstate__(self, state):
        spec = state.pop("_net_spec", None)
        super().__setstate__(state)
        if spec is not None:
            activations, loss = spec
            self._net = Network.from_weights(self.coefs_, self.intercepts_, activations, loss)
            self._set_parameter_views()
