"""``solver="lbfgs"``: scipy's L-BFGS-B over a network's flat parameter vector, with scikit-learn's objective.

The objective of a network with weights W^l on all n samples of (X, D) is

    J(theta) = s E(theta) + (alpha / 2n) sum_l ||W^l||^2

where E is the network's loss (mean over samples) and s is 1 for
classification and 1 / n_outputs for regression, as scikit-learn reports its
squared error.  The gradient scikit-learn hands to L-BFGS is
dE/dtheta + (alpha / n) W (on the weights, not the biases) without the factor
s: the same as its stochastic solvers' step.  We follow it, so that the same
start gives the same iterates.
"""

import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning


def weight_mask(net):
    """1.0 where ``net.flat_parameters`` (n_params,) holds a weight, 0.0 where it holds a bias."""
    saved = net.flat_parameters.copy()
    try:
        net.flat_parameters[...] = 0.0
        for W in net.weights:
            W[...] = 1.0
        return net.flat_parameters.copy()
    finally:
        net.flat_parameters[...] = saved


def scikit_learn_order(sizes):
    """Indices into the flat parameters of a network of ``sizes`` (each layer's W then b) that list them as
    scikit-learn packs them: every layer's W, then every layer's b."""
    weights, biases, offset = [], [], 0
    for n_below, n_above in zip(sizes[:-1], sizes[1:]):
        weights.append(np.arange(offset, offset + n_below * n_above))
        offset += n_below * n_above
        biases.append(np.arange(offset, offset + n_above))
        offset += n_above
    return np.concatenate(weights + biases)


class LbfgsObjective:
    """J(theta) and the gradient above for scipy, in one compiled call of the network per evaluation.

    ``X`` (n_samples, n_in) and ``D`` (n_samples, n_out) are validated, C-contiguous arrays of the network's
    dtype.  Each call writes theta into the network's parameters.
    """

    def __init__(self, net, X, D, alpha, loss_scale):
        self.net, self.X, self.D = net, X, D
        self.l2 = float(alpha) / X.shape[0]
        self.loss_scale = float(loss_scale)
        self.mask = weight_mask(net)
        self.grads = None

    def __call__(self, theta):
        net = self.net
        net.flat_parameters[...] = theta
        E, self.grads = net.gradients(self.X, self.D, out=self.grads)
        weights = theta * self.mask
        J = self.loss_scale * E + 0.5 * self.l2 * float(np.dot(weights, theta))
        return J, self.grads.flat + self.l2 * weights


def fit_lbfgs(net, X, D, alpha, loss_scale, max_iter, max_fun, tol, verbose):
    """Minimise J from the network's current parameters; the network ends at the result.

    Returns
    -------
    n_iter : int
        L-BFGS iterations done (at most ``max_iter``).
    loss : float
        J at the result.
    loss_curve : list of float
        J after each iteration.
    """
    objective = LbfgsObjective(net, X, D, alpha, loss_scale)
    curve = []

    def record(intermediate_result):
        curve.append(float(intermediate_result.fun))
        if verbose:
            print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

    options = {"maxfun": int(max_fun), "maxiter": int(max_iter), "gtol": float(tol)}
    result = scipy.optimize.minimize(
        objective, net.flat_parameters.copy(), method="L-BFGS-B", jac=True, options=options, callback=record
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
        warnings.warn(message, ConvergenceWarning, stacklevel=4)
    net.flat_parameters[...] = result.x
    return n_iter, float(result.fun), curve


class LbfgsSolver:
    """The estimators' ``solver="lbfgs"``: a mixin of _BaseMLP (it uses its ``_net``, ``_kind`` and parameters)."""

    def _check_solver(self):
        """True if partial_fit is available (a stochastic solver); AttributeError, scikit-learn's, for lbfgs."""
        if self.solver == "lbfgs":
            raise AttributeError("partial_fit is only available for stochastic optimizers. lbfgs is not stochastic.")
        return True

    def _loss_grad_lbfgs(self, packed_coef_inter, X, Y, sample_weight, *work_arrays):
        """scikit-learn's L-BFGS objective at packed_coef_inter (n_params,) on X (n_samples, n_features) and
        the binarized targets Y: (J, dJ/dtheta), both packed as scikit-learn packs them (all W, then all b).
        As scikit-learn's method of that name, whose work arrays (activations, deltas, coef_grads,
        intercept_grads) it does not need; the network keeps those parameters."""
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported by fastbp's MLP estimators yet")
        X = np.ascontiguousarray(X, dtype=np.float64)
        Y = np.ascontiguousarray(np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1))
        loss_scale = 1.0 / Y.shape[1] if self._kind == "regression" else 1.0
        order = scikit_learn_order(self._net.sizes)
        theta = np.empty(order.size)
        theta[order] = packed_coef_inter
        J, grad = LbfgsObjective(self._net, X, Y, self.alpha, loss_scale)(theta)
        return J, grad[order]

    def _fit_lbfgs(self, X, D):
        """Full-batch L-BFGS-B on X (n_samples, n_features), D (n_samples, n_outputs) from the current weights;
        on non-finite weights, ValueError with the weights put back."""
        net = self._net
        start = net.flat_parameters.copy()
        loss_scale = 1.0 / D.shape[1] if self._kind == "regression" else 1.0
        self.n_iter_, self.loss_, self.loss_curve_ = fit_lbfgs(
            net, X, D, self.alpha, loss_scale, self.max_iter, self.max_fun, self.tol, self.verbose
        )
        if not np.all(np.isfinite(net.flat_parameters)):
            net.flat_parameters[...] = start
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain large values and need "
                "to be preprocessed."
            )
