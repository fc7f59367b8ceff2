"""What training and tracing give back: the per-epoch ``History`` of ``fit``, and the ``Trace`` of
every intermediate number of backprop for one sample (one ``LayerTrace`` per layer).
"""

import numpy as np

from fastbp.engine import _serial as _engine
from fastbp.nn.layout import Gradients


class History:
    """What ``fit`` saw, one entry per epoch (float64 arrays).

    Attributes
    ----------
    loss : ndarray (epochs,)
        ``loss[k]``: the mean of the batch losses E during epoch k.
    accuracy : ndarray (epochs,) or None
        Classification losses only: the fraction of training samples whose
        class was right as training went through epoch k.
    val_loss, val_accuracy : ndarray (epochs,) or None
        With ``validation_data``: the loss (and accuracy) on it after epoch k.
    lr : ndarray (epochs,)
        The learning rate of each epoch.
    best_epoch : int or None
        With early stopping: the epoch whose parameters were kept.
    """

    def __init__(self, loss, accuracy=None, val_loss=None, val_accuracy=None, lr=None, best_epoch=None):
        self.loss = loss
        self.accuracy = accuracy
        self.val_loss = val_loss
        self.val_accuracy = val_accuracy
        self.lr = lr
        self.best_epoch = best_epoch

    @property
    def epochs(self):
        return len(self.loss)

    def __repr__(self):
        if len(self.loss) == 0:
            return "History(epochs=0)"
        parts = [f"epochs={len(self.loss)}", f"loss[0]={self.loss[0]:.6g}", f"loss[-1]={self.loss[-1]:.6g}"]
        if self.val_loss is not None:
            parts.append(f"val_loss[-1]={self.val_loss[-1]:.6g}")
        if self.accuracy is not None:
            parts.append(f"accuracy[-1]={self.accuracy[-1]:.4g}")
        return f"History({', '.join(parts)})"


class LayerTrace:
    """One layer's numbers for one sample.

    z, y, delta, grad_biases: (n_units,); grad_weights, new_weights: (n_below, n_units).
    """

    def __init__(self, index, activation, z, y, delta, grad_weights, grad_biases, new_weights=None, new_biases=None):
        self.index = index
        self.activation = activation
        self.z = z
        self.y = y
        self.delta = delta
        self.grad_weights = grad_weights
        self.grad_biases = grad_biases
        self.new_weights = new_weights
        self.new_biases = new_biases


class Trace:
    """Every number of one forward and backward pass for one sample, named as in the tutorial.

    ``x``, ``d``: the input and target; ``E``: 1/2 sum_j (y_j - d_j)^2;
    ``layers[l]``: a :class:`LayerTrace` for layer l+1 (``layers[-1]`` is the
    output layer L).  With ``lr`` given, each layer also has the weights and
    biases one gradient-descent step would give (the network is not changed).
    ``str(trace)`` prints it all.
    """

    def __init__(self, x, d, E, layers, lr=None):
        self.x = x
        self.d = d
        self.E = E
        self.layers = layers
        self.lr = lr

    @property
    def y(self):
        """The network's output y^(L)."""
        return self.layers[-1].y

    def __str__(self):
        def fmt(a):
            return np.array2string(np.asarray(a), precision=6, floatmode="maxprec", suppress_small=False)

        L = len(self.layers)
        out = [f"input x = {fmt(self.x)}, target d = {fmt(self.d)}", "forward:"]
        for layer in self.layers:
            out.append(f"  layer {layer.index} ({layer.activation}): z = {fmt(layer.z)}, y = f(z) = {fmt(layer.y)}")
        out.append(f"error E = 1/2 sum_j (y_j - d_j)^2 = {self.E:.10g}")
        out.append("backward:")
        for layer in reversed(self.layers):
            rule = "(y - d) * f'(z)" if layer.index == L else "(sum_k delta_k w_jk) * f'(z)"
            out.append(f"  layer {layer.index}: delta = {rule} = {fmt(layer.delta)}")
            out.append(f"    dE/dw_ij = delta_j y_i = {fmt(layer.grad_weights).replace(chr(10), chr(10) + '    ')}")
            out.append(f"    dE/db_j = delta_j = {fmt(layer.grad_biases)}")
        if self.lr is not None:
            out.append(f"update with eta = {self.lr:g}: w <- w - eta dE/dw, b <- b - eta dE/db")
            for layer in self.layers:
                out.append(f"  layer {layer.index}: W = {fmt(layer.new_weights).replace(chr(10), chr(10) + '    ')}")
                out.append(f"           b = {fmt(layer.new_biases)}")
        return "\n".join(out)

    def __repr__(self):
        return f"Trace(E={self.E!r}, y={self.y!r})"


def trace_one(net, X2, D2, lr):
    """The Trace of one validated sample (X2, D2 of one row each), with the step of ``lr`` if not None."""
    grad = np.empty_like(net._theta)
    with net._passes.lock:
        ws = net._passes.work(1)
        E = _engine.loss_and_gradient(net._theta, net._layout.packed, X2, D2, ws.work, grad)
        g = Gradients(net._layout, grad)
        layers = []
        for layer, name in enumerate(net._activations):
            new_w = new_b = None
            if lr is not None:
                new_w = net.weights[layer] - net._dtype.type(lr) * g.weights[layer]
                new_b = net.biases[layer] - net._dtype.type(lr) * g.biases[layer]
            layers.append(
                LayerTrace(
                    layer + 1,
                    name,
                    ws.rows(ws.z, net._layout, layer, 1)[0],
                    ws.rows(ws.y, net._layout, layer, 1)[0],
                    ws.rows(ws.delta, net._layout, layer, 1)[0],
                    g.weights[layer],
                    g.biases[layer],
                    new_w,
                    new_b,
                )
            )
    return Trace(X2[0].copy(), D2[0].copy(), float(E), layers, lr)
