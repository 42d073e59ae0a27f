"""explain: one backward pass of the engine, laid out layer by layer as the chain rule computes it.

For each layer l (1 = closest to the input), with a_0 = x:
    u_l = a_{l-1} W_l + b_l,   a_l = f_l(u_l)                       (forward)
    dL/da_l = delta_{l+1} W_{l+1}^T    (for the output layer: from the loss)
    delta_l = dL/du_l = dL/da_l * f_l'(u_l)
    dL/dW_l = a_{l-1}^T delta_l,  dL/db_l = sum over samples of delta_l
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from . import _kernels, kernels
from .losses import TABLE as _LOSSES

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import FloatArray, LossName, MatrixLike, Rows
    from .model import Sequential


class LayerTrace:
    """The quantities of one layer in one backward pass (arrays of shape (n_samples, width))."""

    def __init__(self, index: int, activation: str, u: FloatArray, a: FloatArray,
                 fprime: FloatArray | None, dA: FloatArray | None, delta: FloatArray,
                 dW: FloatArray, db: FloatArray) -> None:
        self.index = index
        self.activation = activation
        self.u, self.a, self.fprime, self.dA, self.delta = u, a, fprime, dA, delta
        self.dW, self.db = dW, db

    def __repr__(self) -> str:
        return f"LayerTrace(layer={self.index}, activation={self.activation!r}, u={_cell(self.u)}, " \
               f"delta={_cell(self.delta)})"


class Trace:
    """The trace returned by Sequential.explain: `trace.layers[l]` is a LayerTrace, `trace.loss`
    the loss value; print it for a table."""

    def __init__(self, loss_name: str, loss: float, x: Rows, layers: Sequence[LayerTrace],
                 from_logits: bool) -> None:
        self.loss_name = loss_name
        self.loss = loss
        self.x = x
        self.layers = layers
        self.from_logits = from_logits  # the output's derivative is folded into the loss's

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> LayerTrace:
        return self.layers[i]

    def __str__(self) -> str:
        headers = ["layer", "f", "u = a_prev W + b", "a = f(u)", "f'(u)", "dL/da",
                   "delta = dL/du", "dL/dW", "dL/db"]
        rows = []
        for t in self.layers:
            fprime = "(in the loss)" if t.fprime is None else _cell(t.fprime)
            dA = "(in the loss)" if t.dA is None else _cell(t.dA)
            rows.append([str(t.index), t.activation, _cell(t.u), _cell(t.a), fprime, dA,
                         _cell(t.delta), _cell(t.dW), _cell(t.db)])
        widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(headers)]
        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        n = self.x.shape[0]
        out = [f"{self.loss_name} = {self.loss:.6g} over {n} sample{'s' if n > 1 else ''}; "
               f"layer 1 is closest to the input",
               line(headers), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        out.append("chain rule: delta_l = dL/da_l * f'(u_l), dL/da_l = delta_{l+1} W_{l+1}^T, "
                   "dL/dW_l = a_{l-1}^T delta_l, dL/db_l = sum(delta_l)")
        if self.from_logits:
            out.append(f"{self.loss_name} is computed from the output's logits u: "
                       f"delta = (a - y) / n")
        return "\n".join(out)

    def __repr__(self) -> str:
        return f"Trace(loss={self.loss_name!r}, value={self.loss:.6g}, layers={len(self.layers)})"


def _cell(arr: ArrayLike) -> str:
    arr = np.asarray(arr)
    if arr.size == 1:
        return f"{arr.item():.6g}"
    if arr.size <= 4:
        return "[" + ", ".join(f"{v:.4g}" for v in arr.ravel()) + "]"
    return f"{'x'.join(map(str, arr.shape))} |max| {np.abs(arr).max():.4g}"


def explain(model: Sequential, X: MatrixLike, y: ArrayLike, loss: LossName) -> Trace:
    """The engine's gradient pass on (X, y), keeping every layer's Z, A and delta, laid out as
    the chain rule computes it: dL/da and f'(u) are worked out here, outside the engine, from
    what it kept (dL/da_l = delta_{l+1} W_{l+1}^T; for the output, the loss's gradient with
    respect to a; f'(u) by the activation's own derivative kernel)."""
    X, Y, labels, name = model._check_data(X, y, loss)
    n = X.shape[0]
    keep = [tuple(np.empty((n, layer.n_out), model.dtype) for _ in range(3))
            for layer in model.layers]
    value, _ = model._gradients(X, Y, labels, name, keep=keep)
    from_logits = _LOSSES[name].from_logits
    traces = []
    for i, (layer, (u, a, delta)) in enumerate(zip(model.layers, keep)):
        out = i == len(model.layers) - 1
        if out and from_logits:
            fprime = dA = None
        else:
            fprime = np.ones_like(u)
            _kernels._activation_backward(fprime, a, u, layer.activation_code,
                                          layer.spec.activation_param)
            if out:  # dL/da: the loss's gradient through the identity
                dA = kernels.loss_gradient(name, u, a, y, "identity")[1]
            else:
                nxt = model.layers[i + 1]
                dA = keep[i + 1][2] @ nxt.W.T
        traces.append(LayerTrace(i + 1, layer.activation, u, a, fprime, dA, delta,
                                 layer.dW.copy(), layer.db.copy()))
    return Trace(name, value, X, traces, from_logits)
