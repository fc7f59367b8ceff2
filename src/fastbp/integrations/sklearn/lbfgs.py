"""``solver="lbfgs"``: scipy's L-BFGS-B over the flat parameter vector, with scikit-learn's objective.

The objective on all n samples of (X, D), with sample weights s_i (1 without them), is

    J(theta) = L(theta) + (alpha / 2) sum_l ||W^l||^2 / sum_i s_i

where L is scikit-learn's loss (``_compiled.data_loss``); the gradient handed to L-BFGS is scikit-learn's,
``(y_prev^T delta + alpha W) / sum_i s_i`` and ``sum delta / sum_i s_i`` with delta^L = (y - d) s_i, so that the
same start gives the same iterates.  (For the squared error of several outputs that is n_outputs times the
gradient of the J reported, as in scikit-learn.)  One evaluation is one compiled call.  The parameters are
packed as scikit-learn packs them (every W, then every b), so scipy's vector is scikit-learn's.
"""

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from fastbp.integrations.sklearn.model import PackedLayout, as_data, full_batch_loss_and_gradient


class LbfgsObjective:
    """J(theta) and its gradient for scipy (float64 vectors), computed in ``theta``'s dtype on (X, D)."""

    def __init__(self, packed, theta, X, D, sample_weight, alpha):
        self.packed, self.theta = packed, theta
        self.data = as_data(X, D, sample_weight, theta.dtype)
        self.alpha = alpha
        self.work = packed.work(max(1, X.shape[0]), X.shape[1], theta.dtype, gather=False)
        self.grad = np.empty_like(theta)

    def __call__(self, x):
        self.theta[...] = x
        J = full_batch_loss_and_gradient(self.packed, self.theta, self.data, self.alpha, self.work, self.grad)
        return float(J), self.grad.astype(np.float64)


def fit_lbfgs(objective, max_iter, max_fun, tol, verbose):
    """Minimise the objective from its current theta, which ends at the result.

    Returns
    -------
    n_iter : int
        L-BFGS iterations done (at most ``max_iter``).
    loss : float
        J at the result.
    loss_curve : list of float
        J after each iteration.
    """
    curve = []

    def record(intermediate_result):
        curve.append(float(intermediate_result.fun))
        if verbose:
            print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

    options = {"maxfun": int(max_fun), "maxiter": int(max_iter), "gtol": float(tol)}
    result = scipy.optimize.minimize(
        objective, objective.theta.astype(np.float64), method="L-BFGS-B", jac=True, options=options, callback=record
    )
    n_iter = min(int(result.nit), int(max_iter))
    if result.status != 0:
        message = f"lbfgs failed to converge after {n_iter} iteration(s) (status={result.status}):\n{result.message}\n"
        if n_iter == max_iter:
            message += f"\nIncrease the number of iterations to improve the convergence (max_iter={max_iter})."
        message += (
            "\nYou might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html"
        )
        warnings.warn(message, ConvergenceWarning, stacklevel=5)
    objective.theta[...] = result.x
    return n_iter, float(result.fun), curve


class LbfgsSolver:
    """The estimators' ``solver="lbfgs"``: a mixin of _BaseMLP (it uses its parameters and layout)."""

    def _check_solver(self):
        """True if partial_fit is available (a stochastic solver); AttributeError, scikit-learn's, for lbfgs."""
        if self.solver == "lbfgs":
            raise AttributeError("partial_fit is only available for stochastic optimizers. lbfgs is not stochastic.")
        return True

    def _loss_grad_lbfgs(self, packed_coef_inter, X, Y, sample_weight, *work_arrays):
        """scikit-learn's L-BFGS objective at packed_coef_inter (n_params,) on X (n_samples, n_features) and
        the binarized targets Y: (J, dJ/dtheta), packed as scikit-learn packs them (all W, then all b).
        As scikit-learn's method of that name, whose work arrays it does not need; the estimator's
        parameters are left alone."""
        X = np.asarray(X) if not hasattr(X, "tocsr") else X
        dtype = np.result_type(X.dtype, np.float32)
        Y = np.asarray(Y, dtype=dtype).reshape(X.shape[0], -1)
        sizes = [X.shape[1], *(np.shape(b)[0] for b in self.intercepts_)]
        packed = PackedLayout(sizes, self.activation, self._checked_output_activation())
        theta = np.asarray(packed_coef_inter, dtype=dtype).copy()
        if theta.shape != (packed.n_params,):
            raise ValueError(f"packed_coef_inter must have shape ({packed.n_params},), got {theta.shape}")
        return LbfgsObjective(packed, theta, X, Y, sample_weight, float(self.alpha))(theta)

    def _fit_lbfgs(self, packed, theta, X, D, sample_weight):
        """Full-batch L-BFGS-B on X (n_samples, n_features), D (n_samples, n_outputs) from theta, trained in
        place."""
        objective = LbfgsObjective(packed, theta, X, D, sample_weight, float(self.alpha))
        self.n_iter_, self.loss_, self.loss_curve_ = fit_lbfgs(
            objective, self.max_iter, self.max_fun, self.tol, self.verbose
        )
