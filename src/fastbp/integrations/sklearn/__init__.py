"""scikit-learn estimators backed by fastbp: :class:`MLPRegressor` and :class:`MLPClassifier`.

Drop-in counterparts of ``sklearn.neural_network.MLPRegressor`` and
``MLPClassifier`` ("adam", "sgd", "lbfgs"): the same
hyperparameter names and defaults, the same fitted attributes (``coefs_``,
``intercepts_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``n_iter_``,
``classes_``, ``n_features_in_``, ...), the same convergence rule and
``ConvergenceWarning``; the training itself runs in fastbp's compiled kernels.

>>> from fastbp.sklearn import MLPClassifier
>>> clf = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(X, y)
>>> clf.predict_proba(X[:3])

scikit-learn (>= 1.6) is an optional dependency, ``pip install "fastbp[sklearn]"``:
``import fastbp`` does not import it, this module does.

Differences from scikit-learn's estimators (see also the README):

* Not supported yet: sparse inputs, ``sample_weight``, the regressor's
  ``loss="poisson"``.  ``solver="lbfgs"`` minimises scikit-learn's objective
  with scipy's L-BFGS-B, as scikit-learn does; its ``loss_curve_`` has the loss
  after each iteration.
* ``alpha`` (L2 penalty) becomes the optimizer's ``weight_decay = alpha /
  batch_size``.  scikit-learn adds ``alpha * W / n_batch`` to the gradient of
  each mini-batch of ``n_batch`` samples, so this is the same for every full
  batch; it differs in that fastbp also decays the biases (scikit-learn only the
  weights) and uses the full ``batch_size`` for a smaller last batch.
* Weights start He-uniform for relu hidden layers and Glorot-uniform
  otherwise, biases at zero (fastbp's initialisation); scikit-learn draws
  weights and biases Glorot-uniform.
* SGD momentum and Adam follow PyTorch's formulation (fastbp's optimizers);
  with a constant learning rate SGD with momentum is the same update as
  scikit-learn's, Adam differs in where ``epsilon`` enters.  ``momentum``
  must be < 1.
* The network is always float64: float32 (or integer) input is converted.
* ``loss_`` is the mean of the epoch's mini-batch losses (unweighted by batch
  length), measured while training, plus ``alpha / 2 * ||W||^2 * n_batches /
  n_samples`` at the end of the epoch, which is scikit-learn's penalty term;
  for the regressor the squared error is divided by the number of outputs as
  in scikit-learn.
"""

from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
