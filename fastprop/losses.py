"""The losses, by name, and the checking of their targets.

Every loss is a mean over the batch, so the gradient of a batch does not grow with its size:
- mse: mean over all elements of (a - y)^2 (as torch.nn.MSELoss);
- half_squared_error: mean over samples of 1/2 sum_j (a_j - y_j)^2 (the seeds' L = 1/2 (z - y)^2);
- binary_cross_entropy: on a sigmoid output, computed from its logits; mean over elements
  (as torch.nn.BCEWithLogitsLoss); its gradient with respect to the logits is (a - y) / n;
- softmax_cross_entropy: on a softmax output, from its logits; targets are integer labels or
  one-hot (or probability) rows; mean over samples (as torch.nn.CrossEntropyLoss);
- mae: mean over all elements of |a - y| (as torch.nn.L1Loss);
- huber: mean over all elements of 1/2 r^2 for |r| <= 1, |r| - 1/2 beyond (torch.nn.HuberLoss
  with its default delta = 1);
- multilabel_binary_cross_entropy: on a sigmoid output, summed over the labels and averaged
  over the samples (scikit-learn's multi-label log-loss);
- half_mean_squared_error: mean over all elements of 1/2 (a - y)^2, stepping with half_squared_error's gradient
  ((a - y) / n_samples): scikit-learn's squared loss, exactly as its MLPRegressor reports and
  follows it (the two differ for several outputs).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Optional

import numpy as np

from . import _kernels
from ._kernels import fp_loss as _code
from ._validation import as_numeric_array, canonical_name, check_finite, finite_bounds

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike, NDArray

    from ._typing import FloatArray


class Loss(NamedTuple):
    """One loss: its name, code (from fastprop._kernels, which reads the C table; each row names
    it by its C name) and aliases; the rest is read from the C table (csrc/losses.h)."""
    name: str
    code: int
    aliases: tuple[str, ...] = ()
    output_activation: Optional[str] = None  # the activation its output must have; None: any
    from_logits: bool = False     # computed from the output's logits, its derivative folded in
    classification: bool = False  # counts correct predictions (accuracy)
    per_element: bool = False     # accuracy counts each output element (several labels a sample)
    squares: bool = False         # squares the residual: targets beyond sqrt(the dtype's max) overflow


# The names a loss is known by: each row's name and aliases below.
LossName = Literal["mse", "mean_squared_error", "squared_error", "half_squared_error",
                   "half_mse", "binary_cross_entropy", "bce", "softmax_cross_entropy",
                   "cross_entropy", "categorical_cross_entropy", "mae", "mean_absolute_error",
                   "l1", "huber", "multilabel_binary_cross_entropy", "multilabel_bce",
                   "half_mean_squared_error"]

_ROWS = (
    Loss("mse", _code["FP_LOSS_MSE"], ("mean_squared_error", "squared_error"), squares=True),
    Loss("half_squared_error", _code["FP_LOSS_HALF_SE"], ("half_mse",), squares=True),
    Loss("binary_cross_entropy", _code["FP_LOSS_BCE"], ("bce",)),
    Loss("softmax_cross_entropy", _code["FP_LOSS_SOFTMAX_XENT"],
         ("cross_entropy", "categorical_cross_entropy")),
    Loss("mae", _code["FP_LOSS_MAE"], ("mean_absolute_error", "l1")),
    Loss("huber", _code["FP_LOSS_HUBER"]),
    Loss("multilabel_binary_cross_entropy", _code["FP_LOSS_MULTILABEL_BCE"], ("multilabel_bce",)),
    Loss("half_mean_squared_error", _code["FP_LOSS_HALF_MSE"], squares=True),
)


def _complete(row: Loss) -> Loss:
    from .activations import TABLE as activations  # the activation names, by code
    info = _kernels._loss_describe(int(row.code))
    code = info["output_activation"]
    names = {a.code: a.name for a in activations.values()}
    return row._replace(code=int(row.code), output_activation=None if code is None
                        else names[code], from_logits=info["from_logits"],
                        classification=info["classification"], per_element=info["per_element"])


# name -> row
TABLE: dict[str, Loss] = {r.name: _complete(r) for r in _ROWS}
if sorted(r.code for r in TABLE.values()) != list(range(_kernels.N_CODES["loss"])):
    raise ImportError("fastprop.losses: the rows do not match the C codes one to one")

LOSSES: dict[str, int] = {name: r.code for name, r in TABLE.items()}
CLASSIFICATION = tuple(name for name, r in TABLE.items() if r.classification)
FROM_LOGITS = tuple(name for name, r in TABLE.items() if r.from_logits)
PER_ELEMENT = tuple(name for name, r in TABLE.items() if r.per_element)
_ALIASES = {alias: r.name for r in TABLE.values() for alias in r.aliases}


def canonical_loss(name: LossName) -> LossName:
    """The canonical name of a loss; ValueError for an unknown one."""
    # a key of LOSSES: a LossName (tests/test_typing.py checks the names)
    return canonical_name("loss", name, LOSSES, _ALIASES, "mse")  # type: ignore[return-value]


def check_output_activation(loss: str, activation: str) -> None:
    """ValueError if the model's output activation does not suit the loss."""
    needed = TABLE[loss].output_activation
    if needed is not None and activation != needed:
        raise ValueError(f"loss={loss!r} needs an output layer with activation={needed!r} (it is "
                         f"computed from that layer's logits), got activation={activation!r}")
    if needed is None and activation == "softmax":
        raise ValueError(f"loss={loss!r}: a softmax output is only supported with "
                         f"loss='softmax_cross_entropy', got loss={loss!r}")


def prepare_targets(loss: str, y: ArrayLike, n_samples: int, n_out: int, dtype: DTypeLike,
                    name: str = "y") -> tuple[FloatArray | None, NDArray[np.int64] | None]:
    """Checked targets for `loss`: (Y, None) with Y (n_samples, n_out) of `dtype`, or
    (None, labels) with int64 labels (n_samples,) for softmax cross-entropy. The values are
    checked by their bounds, read in one pass."""
    arr = as_numeric_array(name, y)
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(f"{name}: expected a 1-D or 2-D array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{name}: expected {n_samples} rows (one per sample of X), got shape {arr.shape}")
    lo, hi = finite_bounds(name, arr) if arr.size else (0.0, 0.0)
    if loss == "softmax_cross_entropy" and arr.ndim == 1:
        if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{name}: expected integer class labels for softmax_cross_entropy, got "
                             "non-integer values")
        if lo < 0 or hi >= n_out:
            raise ValueError(f"{name}: expected class labels in [0, {n_out - 1}] (n_out={n_out}), got "
                             f"labels from {arr.min()} to {arr.max()}")
        return None, np.ascontiguousarray(arr, dtype=np.int64)
    if arr.ndim == 1:
        if n_out != 1:
            raise ValueError(f"{name}: expected shape ({n_samples}, {n_out}) for a model with {n_out} "
                             f"outputs, got shape {arr.shape}")
        arr = arr.reshape(-1, 1)
    if arr.shape[1] != n_out:
        raise ValueError(f"{name}: expected shape ({n_samples}, {n_out}) for a model with {n_out} "
                         f"outputs, got shape {arr.shape}")
    row = TABLE[loss]
    if loss in PER_ELEMENT and (lo < 0 or hi > 1):
        raise ValueError(f"{name}: expected targets in [0, 1] for {loss}, got values from "
                         f"{arr.min()} to {arr.max()}")
    if loss == "softmax_cross_entropy":
        if lo < 0:
            raise ValueError(f"{name}: expected non-negative one-hot or probability rows for "
                             f"softmax_cross_entropy, got a minimum of {arr.min()}")
        sums = arr.sum(axis=1, dtype=np.float64)
        worst = int(np.argmax(np.abs(sums - 1)))
        if abs(sums[worst] - 1) > 1e-4:
            raise ValueError(f"{name}: expected one-hot or probability rows summing to 1 for "
                             f"softmax_cross_entropy, got row {worst} summing to {sums[worst]:g}")
    if arr.dtype == dtype:  # checked above
        arr = np.ascontiguousarray(arr)
    else:
        with np.errstate(over="ignore"):
            arr = np.ascontiguousarray(arr, dtype=dtype)
        check_finite(name, arr)  # after the cast: 1e39 is inf in float32
    if row.squares:
        largest = max(-lo, hi)
        limit = _SQUARE_LIMIT[np.dtype(dtype).char]  # (a - y)^2 of outputs near them
        if largest > limit:
            raise ValueError(f"{name}: expected targets whose squares fit in {np.dtype(dtype)} "
                             f"for {loss} (|y| up to {limit:.3g}), got |y| up to {largest:.3g}; "
                             f"scale the targets")
    return arr, None


# the largest |target| of a squaring loss, per dtype: (a - y)^2 of outputs near it stays finite
_SQUARE_LIMIT = {np.dtype(t).char: float(np.sqrt(np.finfo(t).max)) / 4
                 for t in (np.float32, np.float64)}
