"""``fastbp.sklearn``: the scikit-learn estimators (``fastbp.integrations.sklearn``) under their documented name."""

from .integrations.sklearn import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
