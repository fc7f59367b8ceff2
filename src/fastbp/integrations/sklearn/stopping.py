"""scikit-learn's stopping rules for the stochastic solvers: the held-out validation set of early stopping,
and the count of epochs without improvement (``StoppingRules``, a mixin of ``_BaseMLP``)."""

import numpy as np
from sklearn.model_selection import train_test_split

from fastbp.integrations.sklearn.model import outputs


class StoppingRules:
    """Early stopping and the no-improvement count; uses the estimator's parameters and its
    ``_score_outputs`` and ``_targets_from_outputs``."""

    def _hold_out_validation_set(self, X, D, sample_weight):
        """scikit-learn's split: (X, D, sample_weight) of the rest and (X_val, y_val, sample_weight_val) of a
        held-out ``validation_fraction`` (stratified by class for single-output classifiers)."""
        if self.validation_scores_ is None:  # warm start of a model first fitted without early stopping
            self.validation_scores_, self.best_validation_score_, self.best_loss_ = [], -np.inf, None
        if getattr(self, "_best_parameters", None) is None or self._best_parameters.size != self._theta.size:
            self._best_parameters = self._theta.copy()
        # scikit-learn stratifies by its boolean label indicator, and its messages name the classes so
        stratify = D.astype(bool) if (self._is_classifier() and D.shape[1] == 1) else None
        arrays = (X, D) if sample_weight is None else (X, D, sample_weight)
        split = train_test_split(
            *arrays, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
        )
        X, X_val, D, D_val = split[:4]
        sample_weight, sw_val = (None, None) if sample_weight is None else split[4:]
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        return X, D, sample_weight, X_val, self._targets_from_outputs(D_val), sw_val

    def _update_no_improvement_count(self, early_stopping, packed, theta, X_val, y_val, sw_val):
        """scikit-learn's rule: count the epochs that did not improve the validation score (early stopping,
        keeping the best parameters) or the training loss by tol."""
        if early_stopping:
            score = self._score_outputs(outputs(packed, theta, X_val), y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_parameters = theta.copy()
            return
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]
