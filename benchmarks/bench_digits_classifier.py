"""asv: training the digits classifier, fastbp against scikit-learn's MLPClassifier (issue 6)."""

from . import digits_classifier
from .digits_classifier import DTYPES, ESTIMATORS, IMPLS, LBFGS_ITERATIONS

# (digits_classifier.setup is not imported by name: asv would call a module-level ``setup`` before every
# benchmark of this module, with the parameters as its arguments)


class DigitsClassifier:
    """50 epochs of Adam, batch 32, 64-128-10 ReLU/softmax, cross-entropy, on 1437 digits."""

    params = [list(IMPLS), list(DTYPES)]
    param_names = ["impl", "dtype"]
    timeout = 300

    def setup(self, impl, dtype):
        self.run = digits_classifier.setup(impl, dtype=dtype)  # numba compilation happens here

    def time_train(self, impl, dtype):
        self.run()

    def track_test_accuracy(self, impl, dtype):
        return self.run()()

    track_test_accuracy.unit = "accuracy"


class DigitsLbfgs:
    """200 iterations of L-BFGS-B, 64-128-10 ReLU/softmax, on 1437 digits: the two MLPClassifiers."""

    params = [list(ESTIMATORS), list(DTYPES)]
    param_names = ["impl", "dtype"]
    timeout = 300

    def setup(self, impl, dtype):
        self.run = digits_classifier.setup(impl, epochs=LBFGS_ITERATIONS, dtype=dtype, solver="lbfgs")

    def time_train(self, impl, dtype):
        self.run()

    def track_test_accuracy(self, impl, dtype):
        return self.run()()

    track_test_accuracy.unit = "accuracy"
