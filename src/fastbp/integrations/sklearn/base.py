"""What the two estimators share: ``_BaseMLP`` (the parameter checks, fit and partial_fit, the stochastic
solvers, early stopping, prediction).  It follows scikit-learn's ``BaseMultilayerPerceptron`` step by step
(its initialisation, random-number calls, shuffling, loss, L2 term, optimizers and stopping rules), with
the epochs trained in compiled calls (``epochs.EpochTrainer``).

``coefs_`` and ``intercepts_`` are the truth: each fit packs them into a new flat vector (so a user may set or
replace them, as scikit-learn allows), trains that, and makes them views of it again.
"""

import contextlib
import copy
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from fastbp.integrations.sklearn.epochs import EpochTrainer
from fastbp.integrations.sklearn.lbfgs import LbfgsSolver
from fastbp.integrations.sklearn.model import HIDDEN_CODES, PackedLayout, as_data, initial_parameters, outputs
from fastbp.integrations.sklearn.optimizers import AdamOptimizer, SGDOptimizer
from fastbp.integrations.sklearn.stopping import StoppingRules
from fastbp.nn.validation import (
    as_hidden_layer_sizes,
    check_bool,
    check_bool_or_int,
    check_int_at_least,
    check_option,
    check_real_number,
)

_SOLVERS = ("lbfgs", "sgd", "adam")


_LEARNING_RATES = ("constant", "invscaling", "adaptive")


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


class _BaseMLP(LbfgsSolver, StoppingRules, BaseEstimator):
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
        check_option(self.activation, "activation", tuple(HIDDEN_CODES))
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
        check_real_number(self.momentum, "momentum", 0.0, 1.0)
        for name in ("validation_fraction", "beta_1", "beta_2"):
            check_real_number(getattr(self, name), name, 0.0, 1.0, high_open=True)
        check_real_number(self.epsilon, "epsilon", 0.0, low_open=True)
        if not (isinstance(self.n_iter_no_change, numbers.Real) and self.n_iter_no_change == np.inf):
            check_int_at_least(self.n_iter_no_change, "n_iter_no_change")
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            check_bool(getattr(self, name), name)
        check_bool_or_int(self.verbose, "verbose")
        return hidden

    # ------------------------------------------------------------ parameters

    def _initialize(self, sizes, dtype):
        """scikit-learn's first-fit state: new parameters drawn from the random state, counters, curves."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = sizes[-1]
        self.n_layers_ = len(sizes)
        self.out_activation_ = self._output_activation()
        theta = initial_parameters(self._random_state, sizes, self.activation, dtype)
        self._set_parameters(PackedLayout(sizes, self.activation, self.out_activation_), theta)
        self._best_parameters = theta.copy()
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
            else:
                self.best_loss_, self.validation_scores_, self.best_validation_score_ = np.inf, None, None

    def _set_parameters(self, packed, theta):
        # coefs_ and intercepts_ become views of theta: edits of them take effect
        self._theta = theta
        self.coefs_, self.intercepts_ = packed.views(theta)
        self._views = (tuple(self.coefs_ + self.intercepts_), tuple(int(s) for s in packed.sizes))

    def _packed_parameters(self, sizes, dtype):
        """(packed layout, a new flat parameter vector of dtype) from coefs_ and intercepts_, checked against
        the layer sizes."""
        packed = PackedLayout(sizes, self.activation, self._checked_output_activation())
        return packed, packed.pack(self.coefs_, self.intercepts_, dtype)

    def _current_parameters(self, dtype=None):
        """(packed layout, flat parameters) of the fitted model: the trained vector itself while coefs_ and
        intercepts_ are still its unchanged views (and it has the dtype asked for), else a packed copy."""
        dtype = np.dtype(dtype or self._theta_dtype())
        views, sizes = getattr(self, "_views", ((), ()))
        arrays = [*self.coefs_, *self.intercepts_]
        if len(arrays) == len(views) and all(a is b for a, b in zip(arrays, views)) and self._theta.dtype == dtype:
            packed = PackedLayout(sizes, self.activation, self._checked_output_activation())
            coefs, intercepts = packed.views(self._theta)
            if all(a.shape == b.shape for a, b in zip(arrays, coefs + intercepts)):  # none was reshaped in place
                return packed, self._theta
        sizes = [np.shape(self.coefs_[0])[0], *(np.shape(b)[0] for b in self.intercepts_)]
        return self._packed_parameters(sizes, dtype)

    def _theta_dtype(self):
        return np.result_type(*(np.asarray(c).dtype for c in self.coefs_), np.float32)

    def _checked_output_activation(self):
        check_option(self.out_activation_, "out_activation_", ("identity", "softmax", "logistic", "exp"))
        return self.out_activation_

    # ------------------------------------------------------------ training

    @contextlib.contextmanager
    def _unchanged_on_error(self):
        """On an error, put back every attribute as it was: a refused or failed fit leaves the estimator as it
        was (training works on copies of the parameters and of the optimizer)."""
        before = dict(vars(self))
        try:
            yield
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _fit(self, X, y, sample_weight, incremental):
        with self._unchanged_on_error():
            return self._fit_unchecked(X, y, sample_weight, incremental)

    def _fit_unchecked(self, X, y, sample_weight, incremental):
        hidden = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, D = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype, ensure_non_negative=True)
        sizes = [X.shape[1], *hidden, D.shape[1]]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(sizes, X.dtype)
        elif [np.shape(c)[0] for c in self.coefs_] + [D.shape[1]] != sizes:
            raise ValueError(
                f"the fitted network has layer sizes {[np.shape(c)[0] for c in self.coefs_] + [self.n_outputs_]}, "
                f"but these data and parameters need {sizes}: fit anew (warm_start=False) to change them"
            )
        self.n_outputs_ = D.shape[1]
        packed, theta = self._packed_parameters(sizes, X.dtype)
        if self.solver == "lbfgs":
            self._fit_lbfgs(packed, theta, X, D, sample_weight)
        else:
            self._fit_stochastic(packed, theta, X, D, sample_weight, incremental)
        if not np.all(np.isfinite(theta)):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need "
                "to be preprocessed."
            )
        self._set_parameters(packed, theta)
        return self

    def _make_optimizer(self, n_params, dtype):
        if self.solver == "sgd":
            return SGDOptimizer(
                n_params, dtype, self.learning_rate_init, self.learning_rate, self.momentum,
                self.nesterovs_momentum, self.power_t,
            )  # fmt: skip
        return AdamOptimizer(n_params, dtype, self.learning_rate_init, self.beta_1, self.beta_2, self.epsilon)

    def _fit_stochastic(self, packed, theta, X, D, sample_weight, incremental):
        """Epochs of mini-batches over X (n_samples, n_features) and D (n_samples, n_outputs) until
        scikit-learn's convergence rule stops them, max_iter is reached, or (incremental) after one; theta
        (n_params,) is trained in place."""
        if not incremental or getattr(self, "_optimizer", None) is None:
            self._optimizer = self._make_optimizer(packed.n_params, theta.dtype)
        else:  # a copy, so that a failed call leaves the estimator's optimizer as it was
            self._optimizer = copy.deepcopy(self._optimizer)
        opt = self._optimizer
        opt.packed(packed.n_params, theta.dtype)  # checks the state before anything runs
        early_stopping = self.early_stopping
        if early_stopping:
            X, D, sample_weight, X_val, y_val, sw_val = self._hold_out_validation_set(X, D, sample_weight)
        elif self.best_loss_ is None:  # warm start of a model first fitted with early stopping
            self.best_loss_ = np.inf
        n_samples = X.shape[0]
        batch_size = _clipped_batch_size(self.batch_size, n_samples)
        data = as_data(X, D, sample_weight, theta.dtype)
        run_ahead = not (early_stopping or incremental or self.verbose) and opt.foresees_learning_rates()
        trainer = EpochTrainer(self, packed, theta, data, batch_size, opt, run_ahead)
        trained = []  # losses of epochs trained and not yet booked
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if not trained:
                    trained = trainer.train(self.max_iter - self.n_iter_)
                loss = trained.pop(0)
                self.n_iter_ += 1
                self.loss_ = float(loss)
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(
                    early_stopping,
                    packed,
                    theta,
                    X_val if early_stopping else None,
                    y_val if early_stopping else None,
                    sw_val if early_stopping else None,
                )
                opt.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if early_stopping else "Training loss"
                    msg = (f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change} "
                           "consecutive epochs.")  # fmt: skip
                    if opt.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                        "optimization hasn't converged yet.",
                        ConvergenceWarning,
                        stacklevel=4,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        if early_stopping:
            theta[...] = self._best_parameters

    # ------------------------------------------------------------ prediction

    def _forward(self, X):
        """The network's outputs (n_samples, n_outputs) for X, in numpy's promotion of X's and the
        parameters' float dtypes."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False, dtype=(np.float64, np.float32))
        dtype = np.result_type(X.dtype, self._theta_dtype())
        packed, theta = self._current_parameters(dtype)
        return outputs(packed, theta, X)

    # ------------------------------------------------------------ pickling

    def __getstate__(self):
        # the flat vector behind coefs_ and intercepts_ is not pickled: they are, and unpickling packs them again
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself, not a copy
        state.pop("_theta", None)
        state.pop("_views", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "coefs_" in state:
            packed, theta = self._current_parameters()
            self._set_parameters(packed, theta)
