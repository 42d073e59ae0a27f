"""Metrics on predictions: accuracy, top-k accuracy, MSE, MAE and R^2.

`y_pred` is what Sequential.predict returns (probabilities for sigmoid and softmax outputs);
`y_true` is as given to fit (labels, one-hot rows or targets).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import Metric

__all__ = ["accuracy", "top_k_accuracy", "mse", "mae", "r2", "get_metric", "METRICS"]


def _labels(y_true: ArrayLike, n_out: int) -> NDArray[Any]:
    y = np.asarray(y_true)
    return y.argmax(axis=1) if y.ndim == 2 and n_out > 1 else y.reshape(-1)


def _as_pred(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    """y_true shaped like y_pred: integer labels against several outputs become one-hot rows
    (so that mse, mae and r2 work on a classifier's probabilities too)."""
    p = np.asarray(y_pred, dtype=float)
    y = np.asarray(y_true)
    if y.ndim == 1 and p.ndim == 2 and p.shape[1] > 1 and y.shape[0] == p.shape[0]:
        return np.eye(p.shape[1])[y.astype(np.int64)], p
    return y.astype(float).reshape(p.shape), p


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of correct predictions: argmax for several outputs, p > 0.5 for a sigmoid
    output (per element for several labels)."""
    p = np.asarray(y_pred)
    y = np.asarray(y_true)
    if p.ndim == 2 and p.shape[1] > 1 and (y.ndim == 1 or not np.isin(y, (0, 1)).all()
                                           or np.allclose(y.sum(axis=1), 1)):
        return float(np.mean(p.argmax(axis=1) == _labels(y, p.shape[1])))
    return float(np.mean((p.reshape(y.shape) > 0.5) == (y > 0.5)))


def top_k_accuracy(y_true: ArrayLike, y_pred: ArrayLike, k: int = 5) -> float:
    """Fraction of samples whose label is among the k highest predictions."""
    p = np.asarray(y_pred)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError("metrics: top_k_accuracy needs a model with several outputs (one per "
                         f"class), got predictions of shape {p.shape}")
    k = min(int(k), p.shape[1])
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    return float(np.mean((top == _labels(y_true, p.shape[1])[:, None]).any(axis=1)))


def mse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean squared error over every output."""
    y, p = _as_pred(y_true, y_pred)
    return float(np.mean((p - y) ** 2))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error over every output."""
    y, p = _as_pred(y_true, y_pred)
    return float(np.mean(np.abs(p - y)))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination, averaged over outputs (scikit-learn's r2_score)."""
    y, p = _as_pred(y_true, y_pred)
    ss_res = ((y - p) ** 2).sum(axis=0)
    ss_tot = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1 - ss_res / np.where(ss_tot == 0, np.nan, ss_tot)))


METRICS: dict[str, Metric] = {"accuracy": accuracy, "mse": mse, "mae": mae, "r2": r2}


def get_metric(name: str) -> Metric:
    """The metric function for a name: 'accuracy', 'top_k_accuracy' (k = 5), 'top_3_accuracy',
    'mse', 'mae', 'r2'."""
    if not isinstance(name, str):
        raise TypeError(f"metrics: expected metric names, got {type(name).__name__}")
    if name in METRICS:
        return METRICS[name]
    m = re.fullmatch(r"top_(\d+|k)_accuracy", name)
    if m:
        k = 5 if m.group(1) == "k" else int(m.group(1))
        if k < 1:
            raise ValueError(f"metrics: expected top_k_accuracy with k >= 1, got {name!r}")
        return lambda y_true, y_pred: top_k_accuracy(y_true, y_pred, k)
    from ._validation import did_you_mean
    raise ValueError(f"metrics: expected names among {sorted(METRICS) + ['top_k_accuracy']}, "
                     f"got {name!r}{did_you_mean(name, list(METRICS) + ['top_k_accuracy'])}")
