"""asv: training the digits classifier, fastbp against scikit-learn's MLPClassifier (issue 6)."""

from .digits_classifier import IMPLS, setup


class DigitsClassifier:
    """50 epochs of Adam, batch 32, 64-128-10 ReLU/softmax, cross-entropy, on 1437 digits."""

    params = [list(IMPLS)]
    param_names = ["impl"]
    timeout = 300

    def setup(self, impl):
        self.run = setup(impl)  # numba compilation happens here

    def time_train(self, impl):
        self.run()

    def track_test_accuracy(self, impl):
        return self.run()()

    track_test_accuracy.unit = "accuracy"
