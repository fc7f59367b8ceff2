"""``MLPRegressor`` and ``MLPClassifier``: scikit-learn's interface on fastbp's network."""

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import validate_data

from fastbp.integrations.sklearn.base import _BaseMLP
from fastbp.nn.validation import check_option


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp; the interface of ``sklearn.neural_network.MLPRegressor``.

    Minimises the squared error (identity output layer) or, with
    ``loss="poisson"``, the Poisson deviance (exponential output layer), with
    mini-batch Adam or SGD or full-batch L-BFGS-B, by scikit-learn's rules:
    the same ``random_state`` gives the same model.  X may be a dense array or
    a CSR/CSC matrix; float32 X gives a float32 network.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer.
    activation : {"identity", "logistic", "tanh", "relu"}, default="relu"
        Activation of the hidden layers.
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
    alpha : float >= 0, default=1e-4
        L2 penalty on the weights (not the biases): ``alpha / 2 * sum ||W||^2``
        divided by the batch's total sample weight.
    batch_size : int or "auto", default="auto"
        "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of the SGD solver, as in scikit-learn (ignored by Adam).
    learning_rate_init : float > 0, default=1e-3
    power_t : float >= 0, default=0.5
        Exponent of the "invscaling" schedule.
    max_iter : int >= 1, default=200
        Maximum number of epochs (lbfgs: of iterations).
    shuffle : bool, default=True
    random_state : int, RandomState or None
        Seeds the initial weights, the shuffling and the early-stopping split.
    tol : float >= 0, default=1e-4
    verbose : bool, default=False
    warm_start : bool, default=False
        fit continues from the current weights (with a new optimizer).
    momentum : float in [0, 1], default=0.9
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its R^2 stops
        improving, and keep the weights of the best epoch.
    validation_fraction : float, default=0.1
    beta_1, beta_2 : float in [0, 1), defaults 0.9 and 0.999
    epsilon : float > 0, default=1e-8
    n_iter_no_change : int >= 1 or np.inf, default=10
    max_fun : int >= 1, default=15000
        lbfgs only: the most evaluations of the loss and gradient.
    loss : {"squared_error", "poisson"}, default="squared_error"
        "poisson" needs y >= 0.

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Weights (n_in, n_out) and biases of each layer, in the dtype of X.  Each
        fit starts from them (they may be set by hand, as in scikit-learn).
    loss_, best_loss_, loss_curve_, n_iter_, t_, n_outputs_, n_layers_, out_activation_,
    validation_scores_, best_validation_score_, n_features_in_, feature_names_in_
        As in scikit-learn.
    """

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
        loss="squared_error",
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
        )
        self.loss = loss

    def _check_params(self):
        check_option(self.loss, "loss", ("squared_error", "poisson"))
        return super()._check_params()

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _is_classifier(self):
        return False

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
            dtype=(np.float64, np.float32), reset=reset,
        )  # fmt: skip
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        D = np.ascontiguousarray(y.reshape(len(y), -1), dtype=X.dtype)
        if self.loss == "poisson" and np.any(D < 0):
            raise ValueError(f"loss='poisson' needs y >= 0, got a smallest y of {D.min()}")
        return X, D

    def _targets_from_outputs(self, D):
        return D.ravel() if D.shape[1] == 1 else D

    def _score_outputs(self, Y, y, sample_weight):
        if not np.all(np.isfinite(Y)):
            return np.nan
        return r2_score(y, Y.ravel() if Y.shape[1] == 1 else Y, sample_weight=sample_weight)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features), dense or sparse, and y (n_samples,) or
        (n_samples, n_outputs); sample_weight (n_samples,) weights each sample's loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state (with
        ``solver="lbfgs"``, as in scikit-learn's regressor: a whole L-BFGS run from the current weights).

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values: (n_samples,), or (n_samples, n_outputs) for multi-output targets."""
        Y = self._forward(X)
        return Y.ravel() if Y.shape[1] == 1 else Y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp; the interface of ``sklearn.neural_network.MLPClassifier``.

    Multiclass targets get a softmax output layer and cross-entropy; binary and
    multilabel targets (a 2-D indicator y) a sigmoid output per label and
    binary cross-entropy.  Parameters and attributes as for
    :class:`MLPRegressor` (without ``loss``), plus ``classes_``; early stopping
    monitors the accuracy on the held-out fraction.
    """

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _is_classifier(self):
        return True

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=(np.float64, np.float32), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the previous "
                        f"call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        return X, np.ascontiguousarray(self._label_binarizer.transform(y), dtype=X.dtype)

    def _targets_from_outputs(self, D):
        return self._label_binarizer.inverse_transform(D.ravel() if D.shape[1] == 1 else D)

    def _score_outputs(self, Y, y, sample_weight):
        return accuracy_score(y, self._labels(Y), sample_weight=sample_weight)

    def _labels(self, Y):
        return self._label_binarizer.inverse_transform(Y.ravel() if Y.shape[1] == 1 else Y)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to X (n_samples, n_features), dense or sparse, and class labels y (n_samples,) or a 2-D
        0/1 label indicator; sample_weight (n_samples,) weights each sample's loss.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), continuing from the current weights and optimizer state.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples,), or a 2-D label indicator for multilabel
        sample_weight : array-like (n_samples,), optional
        classes : array-like, optional
            All the classes there will be; required on the first call (unless
            y is multilabel), ignored afterwards if equal.

        Returns
        -------
        self
        """
        with self._unchanged_on_error():
            return self._partial_fit(X, y, sample_weight, classes)

    def _partial_fit(self, X, y, sample_weight, classes):
        if getattr(self, "classes_", None) is None:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
            self.classes_ = self._label_binarizer.classes_
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: {self.classes_!r}"
            )
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predicted class labels (n_samples,), or a label indicator (n_samples, n_labels) for multilabel."""
        return self._labels(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), classes ordered as ``classes_``.

        Binary: columns [1 - p, p]; multilabel: one independent probability per label.
        """
        Y = self._forward(X)
        if Y.shape[1] == 1:
            p = Y.ravel()
            return np.vstack([1.0 - p, p]).T
        return Y

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags
