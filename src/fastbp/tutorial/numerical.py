"""Numerical differentiation, the tutorial's section 5 baseline and the second test oracle.

dE/dtheta_k ~ (E(theta + eps e_k) - E(theta - eps e_k)) / (2 eps), one
parameter at a time: 2N forward passes for N parameters, where backprop needs
one forward and one backward pass.
"""

import numpy as np

from fastbp.engine import _serial as _engine
from fastbp.nn.layout import Gradients, Workspace
from fastbp.nn.network import Network
from fastbp.nn.validation import check_positive_number


def numerical_gradient(net, X, D, eps=1e-6):
    """Central-difference gradient of the network's mean loss on (X, D).

    Parameters
    ----------
    net : Network
        Left exactly as it was (every parameter is put back to its original bits).
    X : array_like (n_samples, n_in) or (n_in,)
    D : array_like (n_samples, n_out) or (n_out,)
    eps : float > 0
        The step h of the central difference.

    Returns
    -------
    Gradients
        Shaped like ``net.gradients(X, D)[1]``, always float64: the
        differences are taken on a float64 copy of the network, because
        float32 has too few digits for a central difference of step 1e-6.

    Notes
    -----
    The loop over parameters runs compiled: 2 * net.n_params forward passes.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastbp.Network, got {type(net).__name__}")
    eps = check_positive_number(eps, "eps")
    X2, D2, _ = net._validate_xd(X, D)
    X2 = X2.astype(np.float64)
    D2 = D2.astype(np.float64)
    theta = net.flat_parameters.astype(np.float64)
    layout = net._layout
    ws = Workspace(layout, X2.shape[0], np.float64)
    grad = np.empty_like(theta)
    _engine.numerical_gradient_central(theta, layout.packed, X2, D2, eps, ws.work, grad)
    return Gradients(layout, grad)
