"""Data sets the package generates, so that examples and the demo need no download."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["make_seed_dataset", "make_spirals"]

from ._validation import check_non_negative_float, check_positive_int, check_seed


def make_seed_dataset(n_samples: int = 100, seed: int | None = 42
                      ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The seeds' data: X = randn(n_samples, 2) under np.random.seed(seed), y = x0 + x1 > 0."""
    n_samples = check_positive_int("n_samples", n_samples)
    np.random.seed(check_seed("seed", seed) if seed is not None else None)
    X = np.random.randn(n_samples, 2)
    y = (X[:, 0] + X[:, 1] > 0).astype(float).reshape(-1, 1)
    return X, y


def make_spirals(n_samples: int = 3000, n_classes: int = 3, noise: float = 0.2,
                 seed: int | None = 0) -> tuple[NDArray[np.float64], NDArray[Any]]:
    """Interleaved 2-D spirals, one arm per class: a task no linear model solves.

    Returns X (n_samples, 2) float64 and integer labels y (n_samples,).
    """
    n_samples = check_positive_int("n_samples", n_samples)
    n_classes = check_positive_int("n_classes", n_classes)
    noise = check_non_negative_float("noise", noise)
    seed = check_seed("seed", seed)
    rng = np.random.default_rng(seed)
    y = np.arange(n_samples) % n_classes
    r = rng.uniform(0.05, 1.0, n_samples)
    theta = 4.0 * r + 2.0 * np.pi * y / n_classes + rng.normal(0.0, noise, n_samples)
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    perm = rng.permutation(n_samples)
    return X[perm], y[perm]
