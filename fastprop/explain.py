"""explain: one backward pass, laid out layer by layer as the chain rule computes it.

For each layer l (1 = closest to the input), with a_0 = x:
    u_l = a_{l-1} W_l + b_l,   a_l = f_l(u_l)                       (forward)
    dL/da_l = delta_{l+1} W_{l+1}^T    (for the output layer: from the loss)
    delta_l = dL/du_l = dL/da_l * f_l'(u_l)
    dL/dW_l = a_{l-1}^T delta_l,  dL/db_l = sum over samples of delta_l
"""
import numpy as np

from . import _kernels
from .losses import FUSED, LOSSES


class LayerTrace:
    """The quantities of one layer in one backward pass (arrays of shape (n_samples, width))."""

    def __init__(self, index, activation, u, a, fprime, dA, delta, dW, db):
        self.index = index
        self.activation = activation
        self.u, self.a, self.fprime, self.dA, self.delta = u, a, fprime, dA, delta
        self.dW, self.db = dW, db

    def __repr__(self):
        return f"LayerTrace(layer={self.index}, activation={self.activation!r}, u={_cell(self.u)}, " \
               f"delta={_cell(self.delta)})"


class Trace:
    """The trace returned by Sequential.explain: `trace.layers[l]` is a LayerTrace, `trace.loss`
    the loss value; print it for a table."""

    def __init__(self, loss_name, loss, x, layers, fused):
        self.loss_name = loss_name
        self.loss = loss
        self.x = x
        self.layers = layers
        self.fused = fused

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __str__(self):
        headers = ["layer", "f", "u = a_prev W + b", "a = f(u)", "f'(u)", "dL/da",
                   "delta = dL/du", "dL/dW", "dL/db"]
        rows = []
        for t in self.layers:
            fprime = "(fused with loss)" if t.fprime is None else _cell(t.fprime)
            dA = "(fused with loss)" if t.dA is None else _cell(t.dA)
            rows.append([str(t.index), t.activation, _cell(t.u), _cell(t.a), fprime, dA,
                         _cell(t.delta), _cell(t.dW), _cell(t.db)])
        widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(headers)]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        n = self.x.shape[0]
        out = [f"{self.loss_name} = {self.loss:.6g} over {n} sample{'s' if n > 1 else ''}; "
               f"layer 1 is closest to the input",
               line(headers), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        out.append("chain rule: delta_l = dL/da_l * f'(u_l), dL/da_l = delta_{l+1} W_{l+1}^T, "
                   "dL/dW_l = a_{l-1}^T delta_l, dL/db_l = sum(delta_l)")
        if self.fused:
            out.append(f"the output's activation is fused with {self.loss_name}: "
                       f"delta = (a - y) / n, computed from the logits u")
        return "\n".join(out)

    def __repr__(self):
        return f"Trace(loss={self.loss_name!r}, value={self.loss:.6g}, layers={len(self.layers)})"


def _cell(arr):
    arr = np.asarray(arr)
    if arr.size == 1:
        return f"{arr.item():.6g}"
    if arr.size <= 4:
        return "[" + ", ".join(f"{v:.4g}" for v in arr.ravel()) + "]"
    return f"{'x'.join(map(str, arr.shape))} |max| {np.abs(arr).max():.4g}"


def explain(model, X, y, loss):
    X, Y, labels, loss = model._check_data(X, y, loss)
    X = np.ascontiguousarray(X)
    n, dtype, layers = X.shape[0], model.dtype, model.layers
    us, As = [], []
    A_prev = X
    for layer in layers:
        u = np.empty((n, layer.n_out), dtype)
        a = np.empty_like(u)
        _kernels._forward(A_prev, False, layer._W, False, layer._b, u, a, layer.activation_code,
                          layer.negative_slope)
        us.append(u)
        As.append(a)
        A_prev = a
    out = layers[-1]
    fused = loss in FUSED
    delta = np.empty_like(us[-1])
    value, _ = _kernels._loss_gradient(LOSSES[loss], us[-1], As[-1], Y, labels, delta,
                                       out.activation_code, out.negative_slope)
    dA = None
    if not fused:
        # dL/da of the output: the same loss kernel with the identity as the output activation.
        dA = np.empty_like(delta)
        _kernels._loss_gradient(LOSSES[loss], us[-1], As[-1], Y, labels, dA, 0, 0.0)
    traces = [None] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        layer = layers[i]
        a_prev = X if i == 0 else As[i - 1]
        dW = np.empty_like(layer._W)
        db = np.empty_like(layer._b)
        _kernels._weight_gradient(a_prev, False, delta, dW, db, False)
        fprime = None
        if not (fused and i == len(layers) - 1):
            fprime = np.empty_like(As[i])
            _kernels._activation_derivative(As[i], fprime, layer.activation_code,
                                            layer.negative_slope)
        traces[i] = LayerTrace(i + 1, layer.activation, us[i], As[i], fprime, dA, delta, dW, db)
        if i:
            prev = layers[i - 1]
            dA = delta @ layer._W.T
            delta_prev = np.empty_like(As[i - 1])
            _kernels._delta(delta, False, layer._W, False, As[i - 1], delta_prev,
                            prev.activation_code, prev.negative_slope)
            delta = delta_prev
    return Trace(loss, value, X, traces, fused)
