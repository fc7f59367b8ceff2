"""The optimizer kernel: one SGD (momentum, Nesterov, L2), Adam or AdamW step on the flat
parameter vector, with PyTorch's update rules; ``hyper`` holds the hyperparameters at the H_* positions.

Unlike PyTorch, a state entry (velocity, m or v) whose next decay would be
subnormal (below tiny / beta, at most 2 tiny) is set to 0: entries decay
by beta or momentum each step their gradient is 0 (a blank pixel, a dead
ReLU unit), and x86 CPUs take ~100x longer over subnormal numbers (float32
Adam on the digits classifier: 20.5 instead of 15 us a step); their share
of an update is below 1e-30 lr.  So Adam also divides m by sqrt(v) + eps
before the step size multiplies it: the other order makes every m below
tiny / lr subnormal (64-1024-1024-1024-10, batch 1: up to 2.5x slower).
"""

import math

import numpy as np

from fastbp.config import jit

SGD = 0


ADAM = 1


ADAMW = 2


# positions in the ``hyper`` array of :func:`optimizer_update`
H_LR, H_MOMENTUM, H_BETA1, H_BETA2, H_EPS, H_WEIGHT_DECAY, H_NESTEROV = 0, 1, 1, 2, 3, 4, 5


N_HYPER = 6


@jit
def _state_floor(tiny, decay):
    """The value below which a state entry that decays by ``decay`` a step is set to 0 (see optimizer_update).
    Callers round it to the parameters' dtype: compared with a float64 floor, every float32 entry would be
    widened to float64 (float32 Adam: 0.53 instead of 0.31-0.37 ns a parameter on one core of an AMD EPYC)."""
    if decay <= 0.5:
        return tiny * 2.0
    return tiny / decay


@jit
def optimizer_update(
    code, theta, grad, lr, hyper, state1, state2, t, frozen, theta_out=None, state1_out=None, state2_out=None
):
    """One optimizer step on the flat parameters, with PyTorch's update rules.

    Parameters
    ----------
    code : int
        SGD, ADAM or ADAMW.
    theta, grad : ndarray (N,)
        Parameters (updated in place) and dE/dtheta.
    lr : float
        This step's learning rate.
    hyper : float64 ndarray (N_HYPER,)
        SGD: [_, momentum, _, _, weight_decay, nesterov]; ADAM/ADAMW:
        [_, beta1, beta2, eps, weight_decay, _].
    state1, state2 : ndarray (N,) or (0,)
        SGD: the velocity (state1) when momentum > 0; ADAM/ADAMW: the first
        and second moment estimates m and v.
    t : int
        The step number, starting at 1 (Adam's bias correction).
    frozen : bool ndarray (N,) or (0,)
        Parameters marked True are left alone (their state too).
    theta_out, state1_out, state2_out : ndarray, optional (all three or none)
        Shaped like theta, state1, state2: the step is written there and
        theta, state1, state2 are only read (frozen entries are copied).

    Notes
    -----
    SGD: g = grad + weight_decay theta; v = momentum v + g; theta -= lr (g +
    momentum v if nesterov else v) (plain theta -= lr g without momentum).
    Adam: g = grad + weight_decay theta; m = b1 m + (1 - b1) g; v = b2 v +
    (1 - b2) g^2; theta -= (lr / (1 - b1^t)) m / (sqrt(v / (1 - b2^t)) + eps),
    the bias correction of v as a multiplication by 1 / (1 - b2^t) under the
    root (PyTorch divides sqrt(v) by sqrt(1 - b2^t): the same to an ulp, and a
    division is the slowest part of this loop).
    AdamW: ``theta *= 1 - lr weight_decay`` first, then Adam without the L2 term.
    The coefficients are worked out in float64 and rounded once to the
    parameters' dtype; the per-parameter arithmetic is in that dtype (as in
    PyTorch: float32 parameters get float32 square roots and divisions, which
    run at twice the float64 rate).
    Subnormal numbers: see the module.
    """
    if theta_out is None:
        # In place: the same arrays, so LLVM sees that each entry is read before it is written (as
        # separate arguments it would guard the SIMD loop with an overlap check that fails).  The two
        # steps below are inlined into this function (numba's inline="always"), which keeps that so.
        theta_out = theta
        state1_out = state1
        state2_out = state2
    if code == SGD:
        _sgd_update(theta, grad, lr, hyper, state1, frozen, theta_out, state1_out)
    else:
        _adam_update(
            code == ADAMW, theta, grad, lr, hyper, state1, state2, t, frozen, theta_out, state1_out, state2_out
        )


@jit(inline="always")
def _sgd_update(theta, grad, lr, hyper, state1, frozen, theta_out, state1_out):
    """optimizer_update's SGD step (momentum, Nesterov, L2), written to theta_out and state1_out."""
    n = theta.shape[0]
    has_frozen = frozen.shape[0] > 0
    real = theta.dtype.type  # the coefficients below, rounded once to the parameters' dtype
    weight_decay = real(hyper[H_WEIGHT_DECAY])
    tiny = np.finfo(theta.dtype).tiny  # the smallest normal number: state below it is set to 0
    zero = real(0.0)
    # Each case is one branch-free loop (frozen parameters by a select), so that LLVM vectorises it.
    momentum = real(hyper[H_MOMENTUM])
    floor1 = real(_state_floor(tiny, hyper[H_MOMENTUM]))
    nesterov = hyper[H_NESTEROV] != 0.0
    if momentum == 0.0 and weight_decay == 0.0:
        # plain gradient descent, in the parameters' dtype exactly as gradient_descent_update
        if has_frozen:
            for k in range(n):
                old = theta[k]
                theta_out[k] = old if frozen[k] else old - lr * grad[k]
        else:
            for k in range(n):
                theta_out[k] = theta[k] - lr * grad[k]
        return
    for k in range(n):
        old = theta[k]
        keep = has_frozen and frozen[k]
        g = grad[k] + weight_decay * old
        if momentum != 0.0:
            v = momentum * state1[k] + g
            v = zero if abs(v) < floor1 else v  # (NaN stays NaN)
            state1_out[k] = state1[k] if keep else v
            g = g + momentum * v if nesterov else v
        theta_out[k] = old if keep else old - lr * g


@jit(inline="always")
def _adam_update(decoupled, theta, grad, lr, hyper, state1, state2, t, frozen, theta_out, state1_out, state2_out):
    """optimizer_update's Adam step (AdamW's if ``decoupled``), written to theta_out, state1_out, state2_out."""
    n = theta.shape[0]
    has_frozen = frozen.shape[0] > 0
    real = theta.dtype.type
    weight_decay = real(hyper[H_WEIGHT_DECAY])
    tiny = np.finfo(theta.dtype).tiny
    zero = real(0.0)
    beta1 = hyper[H_BETA1]
    beta2 = hyper[H_BETA2]
    step_size = real(lr / (1.0 - beta1**t))
    inv_bias2 = real(1.0 / (1.0 - beta2**t))
    eps = real(hyper[H_EPS])
    shrink = real(1.0 - lr * hyper[H_WEIGHT_DECAY] if decoupled else 1.0)
    l2 = real(0.0) if decoupled else weight_decay
    keep1, add1 = real(beta1), real(1.0 - beta1)
    keep2, add2 = real(beta2), real(1.0 - beta2)
    floor1 = real(_state_floor(tiny, beta1))
    floor2 = real(_state_floor(tiny, beta2))
    if has_frozen:
        for k in range(n):
            old = theta[k]
            g = grad[k] + l2 * old
            m = keep1 * state1[k] + add1 * g
            v = keep2 * state2[k] + add2 * g * g
            m = zero if abs(m) < floor1 else m  # (NaN stays NaN)
            v = zero if v < floor2 else v
            keep = frozen[k]
            state1_out[k] = state1[k] if keep else m
            state2_out[k] = state2[k] if keep else v
            theta_out[k] = old if keep else old * shrink - step_size * (m / (math.sqrt(v * inv_bias2) + eps))
    else:
        for k in range(n):
            old = theta[k]
            g = grad[k] + l2 * old
            m = keep1 * state1[k] + add1 * g
            v = keep2 * state2[k] + add2 * g * g
            m = zero if abs(m) < floor1 else m  # (NaN stays NaN)
            v = zero if v < floor2 else v
            state1_out[k] = m
            state2_out[k] = v
            theta_out[k] = old * shrink - step_size * (m / (math.sqrt(v * inv_bias2) + eps))
