"""What the two estimators share: ``_BaseMLP`` (the parameter checks, fit, partial_fit, the stochastic
solvers, early stopping, the network behind ``coefs_`` and ``intercepts_``).
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
from fastbp.integrations.sklearn.lbfgs import LbfgsSolver
from fastbp.nn.network import Network
from fastbp.nn.optimizers import SGD, Adam
from fastbp.nn.validation import (
    as_hidden_layer_sizes,
    check_bool,
    check_bool_or_int,
    check_int_at_least,
    check_option,
    check_real_number,
)

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


_SOLVERS = ("lbfgs", "sgd", "adam")


_LEARNING_RATES = ("constant", "invscaling", "adaptive")


_OUTPUT = {  # fastbp output activation, fastbp loss, scikit-learn's name of the output activation
    "regression": ("identity", "squared_error", "identity"),
    "multiclass": ("softmax", "cross_entropy", "softmax"),
    "binary": ("sigmoid", "binary_cross_entropy", "logistic"),
}


_MAX_SEED = 2**31 - 1


def _split_off_validation(X, D, rng, validation_fraction, stratify):
    """(X, X_val, D, D_val), C-contiguous but D_val: a random ``validation_fraction`` of the rows held out
    (``stratify``: by its rows' classes, as ``train_test_split``); ValueError if fewer than 2 rows."""
    X, X_val, D, D_val = train_test_split(X, D, random_state=rng, test_size=validation_fraction, stratify=stratify)
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your dataset.")
    return np.ascontiguousarray(X), np.ascontiguousarray(X_val), np.ascontiguousarray(D), D_val


def _clipped_batch_size(batch_size, n_samples):
    """The mini-batch size for n_samples rows: "auto" is min(200, n_samples); a larger one is clipped, with
    scikit-learn's warning."""
    if batch_size == "auto":
        return min(200, n_samples)
    if batch_size > n_samples:
        warnings.warn(
            "Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
            UserWarning,
            stacklevel=5,
        )
    return min(int(batch_size), n_samples)


class _BaseMLP(LbfgsSolver, BaseEstimator):
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
        max_fun=15000,
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
        self.max_fun = max_fun

    # ------------------------------------------------------------ checks

    def _check_params(self):
        """Validate every hyperparameter (in fit, not in __init__, as scikit-learn requires)."""
        check_option(self.solver, "solver", _SOLVERS)
        check_option(self.activation, "activation", tuple(_ACTIVATIONS))
        check_option(self.learning_rate, "learning_rate", _LEARNING_RATES)
        hidden = as_hidden_layer_sizes(self.hidden_layer_sizes)
        check_real_number(self.alpha, "alpha", 0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_int_at_least(self.batch_size, "batch_size")
        check_real_number(self.learning_rate_init, "learning_rate_init", 0.0, low_open=True)
        check_real_number(self.power_t, "power_t", 0.0)
        check_int_at_least(self.max_iter, "max_iter")
        check_int_at_least(self.max_fun, "max_fun")
        check_real_number(self.tol, "tol", 0.0)
        for name in ("momentum", "validation_fraction", "beta_1", "beta_2"):
            check_real_number(getattr(self, name), name, 0.0, 1.0, high_open=True)
        check_real_number(self.epsilon, "epsilon", 0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, numbers.Real) and self.n_iter_no_change == np.inf):
            check_int_at_least(self.n_iter_no_change, "n_iter_no_change")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            check_bool(getattr(self, name), name)
        check_bool_or_int(self.verbose, "verbose")
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
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        else:
            self.best_loss_, self.validation_scores_, self.best_validation_score_ = np.inf, None, None

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
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, D)
            return self
        if not incremental or self._optimizer is None:
            self._optimizer = self._make_optimizer()
        self._fit_stochastic(X, D, incremental)
        return self

    def _fit_stochastic(self, X, D, incremental):
        """Epochs of mini-batch training on X (n_samples, n_features) and D (n_samples, n_outputs) until
        scikit-learn's convergence rule stops them, max_iter is reached, or (incremental) after one."""
        net, opt = self._net, self._optimizer
        early_stopping = self.early_stopping
        if early_stopping:
            X, D, X_val, y_val = self._hold_out_validation_set(X, D)
            best_params = net.flat_parameters.copy()
        elif self.best_loss_ is None:  # warm start of a model first fitted with early stopping
            self.best_loss_ = np.inf
        batch_size = _clipped_batch_size(self.batch_size, X.shape[0])
        # scikit-learn adds alpha * W / n_batch to each batch's gradient: the same as weight decay alpha / n_batch
        opt.weight_decay = float(self.alpha) / batch_size
        adaptive = self.solver == "sgd" and self.learning_rate == "adaptive"
        invscaling = self.solver == "sgd" and self.learning_rate == "invscaling"

        self.n_iter_ = 0
        for _ in range(self.max_iter):
            self._train_one_epoch(X, D, batch_size)
            if early_stopping:
                self._track_validation_score(X_val, y_val, best_params)
            else:
                self._track_training_loss()
            if invscaling:
                opt.lr = float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)
            if self._no_improvement_count > self.n_iter_no_change and self._stop_on_plateau(adaptive):
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

    def _hold_out_validation_set(self, X, D):
        """(X, D, X_val, y_val): (X, D) less a held-out ``validation_fraction`` of its rows; y_val: their targets."""
        if self.validation_scores_ is None:  # warm start of a model first fitted without early stopping
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        # scikit-learn stratifies by its binarized labels, so only with one output, and its messages name them
        stratify = D.astype(bool) if (self._kind != "regression" and D.shape[1] == 1) else None
        X, X_val, D, D_val = _split_off_validation(X, D, self._rng, self.validation_fraction, stratify)
        return X, D, X_val, self._targets_from_outputs(D_val)

    def _train_one_epoch(self, X, D, batch_size):
        """One epoch of the network's ``fit`` on (X, D); ``loss_`` becomes scikit-learn's: the mean batch loss
        (the squared error divided by the outputs) plus the L2 penalty."""
        net = self._net
        n_samples = X.shape[0]
        seed = int(self._rng.randint(_MAX_SEED)) if self.shuffle else None
        try:
            history = net.fit(
                X, D, epochs=1, batch_size=batch_size, shuffle=self.shuffle, seed=seed, optimizer=self._optimizer
            )
        except DivergenceError as exc:
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need "
                f"to be preprocessed, or learning_rate_init may be too large (the training loss became inf or NaN "
                f"in epoch {self.n_iter_ + 1})."
            ) from exc
        self.n_iter_ += 1
        self.t_ += n_samples
        n_batches = -(-n_samples // batch_size)
        loss_scale = 1.0 / D.shape[1] if self._kind == "regression" else 1.0
        penalty = 0.5 * self.alpha * sum(float(np.dot(W.ravel(), W.ravel())) for W in net.weights)
        self.loss_ = float(history.loss[0]) * loss_scale + penalty * n_batches / n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")

    def _track_validation_score(self, X_val, y_val, best_params):
        """Early stopping: score the epoch on the held-out set; keep the best parameters in best_params
        (n_params,)."""
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
            best_params[...] = self._net.flat_parameters

    def _track_training_loss(self):
        """Without early stopping: count the epochs whose loss_ did not improve on best_loss_ by tol."""
        if self.loss_ > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_ < self.best_loss_:
            self.best_loss_ = self.loss_

    def _stop_on_plateau(self, adaptive):
        """After n_iter_no_change epochs without improvement: True to stop, False when the adaptive schedule
        divides the learning rate by 5 instead (while it is above 1e-6)."""
        opt = self._optimizer
        what = "Validation score" if self.early_stopping else "Training loss"
        msg = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} consecutive epochs."
        if adaptive and opt.lr > 1e-6:
            opt.lr /= 5.0
            self._no_improvement_count = 0
            if self.verbose:
                print(f"{msg} Setting learning rate to {opt.lr:f}")
            return False
        if self.verbose:
            print(f"{msg} Stopping." if not adaptive else f"{msg} Learning rate too small. Stopping.")
        return True

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
