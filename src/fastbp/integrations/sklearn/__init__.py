"""scikit-learn estimators backed by fastbp: :class:`MLPRegressor` and :class:`MLPClassifier`.

Drop-in counterparts of ``sklearn.neural_network.MLPRegressor`` and
``MLPClassifier`` ("adam", "sgd", "lbfgs"): the same
hyperparameter names and defaults, the same fitted attributes (``coefs_``,
``intercepts_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``n_iter_``,
``classes_``, ``n_features_in_``, ...), the same convergence rule and
``ConvergenceWarning``; the training itself runs in compiled code built on
fastbp's kernels.

>>> from fastbp.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X, y)
>>> clf.predict_proba(X[:3])

scikit-learn (>= 1.6) is an optional dependency, ``pip install "fastbp[sklearn]"``:
``import fastbp`` does not import it, this module does.

They follow scikit-learn's rules (initialisation, shuffling, loss, L2 term,
SGD and Adam updates, schedules, validation split, stopping): the same
``random_state`` gives the same model.  Sparse X (CSR/CSC), ``sample_weight``,
float32, ``loss="poisson"``, multilabel and multi-output targets work with
every solver.  Where fastbp differs on purpose (a failed fit leaves the
estimator as it was, negative sample weights and negative Poisson targets are
refused, lbfgs keeps float32), the documentation (docs/sklearn.md) says why.
"""

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
