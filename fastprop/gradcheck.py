"""gradcheck: backpropagation's gradients against central differences, in float64."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import LossName, MatrixLike
    from .model import Sequential


class GradcheckResult:
    """The outcome of gradcheck; true when every checked gradient agreed."""

    def __init__(self, ok: bool, max_abs_error: float, max_rel_error: float, n_checked: int,
                 worst: str) -> None:
        self.ok = ok
        self.max_abs_error = max_abs_error
        self.max_rel_error = max_rel_error
        self.n_checked = n_checked
        self.worst = worst

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return (f"GradcheckResult(ok={self.ok}, max_abs_error={self.max_abs_error:.3g}, "
                f"max_rel_error={self.max_rel_error:.3g}, n_checked={self.n_checked}, "
                f"worst={self.worst!r})")


def gradcheck(model: Sequential, X: MatrixLike, y: ArrayLike, loss: LossName = "mse",
              eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8,
              max_params: int | None = None, seed: int | None = 0) -> GradcheckResult:
    """Compares model.loss_and_gradients with central differences (L(p+eps) - L(p-eps)) / 2eps.

    The check runs on a float64 copy of the model, so a float32 model's gradient formulas are
    checked without float32 rounding. A gradient g passes against its estimate e when
    |g - e| <= atol + rtol * max(|g|, |e|). `max_params` checks a random subset of that size.
    Returns a GradcheckResult (true when all pass); `worst` names the parameter that agreed least.
    """
    from ._validation import check_non_negative_float, check_positive_float, check_positive_int, \
        check_seed
    if not hasattr(model, "loss_and_gradients") or not hasattr(model, "copy"):
        raise TypeError(f"model: expected a fastprop.Sequential, got {type(model).__name__}")
    eps = check_positive_float("eps", eps)
    rtol = check_non_negative_float("rtol", rtol)
    atol = check_non_negative_float("atol", atol)
    if max_params is not None:
        max_params = check_positive_int("max_params", max_params)
    seed = check_seed("seed", seed)
    m64 = model.copy(dtype="float64")
    X, Y, labels, name = m64._check_data(X, y, loss)
    if name == "half_mean_squared_error":
        raise ValueError("loss: half_mean_squared_error steps with half_squared_error's gradient "
                         "(scikit-learn's convention), not its own value's: check "
                         "half_squared_error instead")
    m64.loss_and_gradients(X, y, loss)  # the engine's gradient pass, dropout off
    analytic = m64.grads.copy()
    n = m64.params.size
    if max_params is not None and max_params < n:
        index = np.sort(np.random.default_rng(seed).choice(n, size=max_params, replace=False))
    else:
        index = np.arange(n)
    numeric = np.empty(index.size)
    p = m64.params
    for k, i in enumerate(index):
        orig = p[i]
        p[i] = orig + eps
        plus, _ = m64._loss(X, Y, labels, name)
        p[i] = orig - eps
        minus, _ = m64._loss(X, Y, labels, name)
        p[i] = orig
        numeric[k] = (plus - minus) / (2 * eps)
    g = analytic[index]
    abs_err = np.abs(g - numeric)
    scale = np.maximum(np.abs(g), np.abs(numeric))
    rel_err = abs_err / np.maximum(scale, atol)  # relative, except near zero
    ok = bool(np.all(abs_err <= atol + rtol * scale))
    worst_k = int(np.argmax(abs_err - rtol * scale))
    return GradcheckResult(ok, float(abs_err.max()), float(rel_err.max()),
                           int(index.size), _name_param(m64, int(index[worst_k])))


def _name_param(model: Sequential, flat_index: int) -> str:
    """'layers[l].W[i, j]' or 'layers[l].b[j]' for an index into the flat parameter buffer."""
    offset = 0
    for l, layer in enumerate(model.layers):
        n_w = layer.n_in * layer.n_out
        if flat_index < offset + n_w:
            i, j = divmod(flat_index - offset, layer.n_out)
            return f"layers[{l}].W[{i}, {j}]"
        if flat_index < offset + layer.n_params:
            return f"layers[{l}].b[{flat_index - offset - n_w}]"
        offset += layer.n_params
    raise IndexError(flat_index)
