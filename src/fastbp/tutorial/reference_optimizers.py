"""The optimizers of the pure-Python reference (beyond the tutorial, issue 6): one update of a flat list
of parameters, written from the published rules, one scalar at a time.

Re-exported by :mod:`fastbp.reference`; imports only :mod:`math`.
"""

import math


def sgd_update(params, grads, velocity, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One SGD step on flat lists; returns (new_params, new_velocity).

    ``g = dE/dp + weight_decay p`` (L2); with momentum ``v <- momentum v + g``
    and the step uses ``v`` (or ``g + momentum v`` for Nesterov); then
    ``p <- p - lr step``.  With momentum 0 it is the tutorial's
    ``w <- w - eta dE/dw``.
    """
    new_params, new_velocity = [], []
    for p, dp, v in zip(params, grads, velocity):
        g = dp + weight_decay * p
        if momentum:
            v = momentum * v + g
            step = g + momentum * v if nesterov else v
        else:
            step = g
        new_params.append(p - lr * step)
        new_velocity.append(v)
    return new_params, new_velocity


def adam_update(params, grads, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
    """One Adam (``decoupled=True``: AdamW) step on flat lists; returns (new_params, new_m, new_v).

    ``m <- beta1 m + (1 - beta1) g``, ``v <- beta2 v + (1 - beta2) g^2`` with
    ``g = dE/dp`` (+ ``weight_decay p`` for Adam's L2), then with the bias
    corrections ``m_hat = m / (1 - beta1^t)``, ``v_hat = v / (1 - beta2^t)``
    (t = 1 for the first step): ``p <- p - lr m_hat / (sqrt(v_hat) + eps)``.
    AdamW first shrinks ``p <- p (1 - lr weight_decay)`` instead of the L2 term.
    """
    new_params, new_m, new_v = [], [], []
    for p, dp, m_k, v_k in zip(params, grads, m, v):
        g = dp if decoupled else dp + weight_decay * p
        if decoupled:
            p = p * (1.0 - lr * weight_decay)
        m_k = beta1 * m_k + (1.0 - beta1) * g
        v_k = beta2 * v_k + (1.0 - beta2) * g * g
        m_hat = m_k / (1.0 - beta1**t)
        v_hat = v_k / (1.0 - beta2**t)
        new_params.append(p - lr * m_hat / (math.sqrt(v_hat) + eps))
        new_m.append(m_k)
        new_v.append(v_k)
    return new_params, new_m, new_v
