"""Training the digits classifier (``fastbp digits``) against scikit-learn's MLPClassifier.

``impl`` is "fastbp" (``Network.fit``), "fastbp.sklearn" (fastbp's MLPClassifier, which follows
scikit-learn's rules and gives its model) or "sklearn"; ``solver`` "adam" (50 epochs) or, for the two
estimators, "lbfgs" (200 iterations of L-BFGS-B, issue 17).

Same architecture (64-128-10, ReLU, softmax, cross-entropy), same optimizer (Adam, lr 1e-3), same
batch size (32) and number of epochs (50), same data split, same dtype (float64 or float32: both
libraries compute in the dtype of the data they are given); scikit-learn with ``alpha=0`` (no L2),
``tol=0`` and a huge ``n_iter_no_change`` so that it runs every epoch.  The bar (issue 6): fastbp at
least 10x faster, with the same accuracy within 1 point.
"""

import warnings

EPOCHS = 50
HIDDEN = 128
BATCH = 32
LR = 1e-3
LBFGS_ITERATIONS = 200
IMPLS = ("fastbp", "fastbp.sklearn", "sklearn")
ESTIMATORS = ("fastbp.sklearn", "sklearn")
DTYPES = ("float64", "float32")


def setup(impl, epochs=EPOCHS, dtype="float64", solver="adam"):
    """A zero-argument callable that trains from scratch (compiled first) and returns a zero-argument
    callable giving the trained model's test accuracy.

    Only the training is timed: the issue compares training times.  Scoring in the timed call would
    also put each library's test-set product between the rounds of the other: numpy's and scipy's
    OpenBLAS keep their threads spinning on the cores for ~0.1 s after a multithreaded product.
    """
    try:
        from sklearn.neural_network import MLPClassifier
    except ImportError as exc:
        raise NotImplementedError("scikit-learn is not installed") from exc
    import numpy as np

    from fastbp import Adam, Network
    from fastbp.tutorial import digits

    X_train, X_test, y_train, y_test = digits.load_split()
    X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    if impl == "fastbp":
        D_train, D_test = digits.one_hot(y_train, dtype=dtype), digits.one_hot(y_test, dtype=dtype)

        def train(n_epochs):
            net = Network([64, HIDDEN, 10], ["relu", "softmax"], loss="cross_entropy", seed=0, dtype=dtype)
            net.fit(X_train, D_train, epochs=n_epochs, batch_size=BATCH, seed=0, optimizer=Adam(lr=LR))
            return lambda: net.evaluate(X_test, D_test)[1]

        train(1)  # numba compilation

        def run():
            return train(epochs)

        return run
    if impl in ESTIMATORS:
        if impl == "fastbp.sklearn":
            from fastbp.sklearn import MLPClassifier
        if solver == "lbfgs":
            params = dict(solver="lbfgs", max_iter=epochs, tol=0.0)
        else:
            params = dict(solver="adam", learning_rate_init=LR, batch_size=BATCH, max_iter=epochs, alpha=0.0,
                          tol=0.0, n_iter_no_change=10**9)  # fmt: skip

        def run():
            clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), activation="relu", random_state=0, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as intended
                clf.fit(X_train, y_train)
            if solver == "adam" or impl == "fastbp.sklearn":  # scikit-learn's lbfgs ends with float64 coefs_
                assert clf.coefs_[0].dtype == np.dtype(dtype)
            return lambda: clf.score(X_test, y_test)

        run()  # numba compilation (fastbp), the same warm-up for both
        return run
    raise ValueError(f"unknown impl {impl!r}")
