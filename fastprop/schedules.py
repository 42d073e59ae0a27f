"""Learning-rate schedules: pure functions of (epoch, base_lr).

fit computes every epoch's rate, schedule(epoch, base_lr) with base_lr the optimizer's lr, before
training begins, and never writes a scheduled rate back into the optimizer: two fits with the
same schedule run at the same rates. A schedule past its horizon holds its last value. Reducing
the rate when a metric stalls depends on results, so it is a callback:
fastprop.callbacks.ReduceLROnPlateau.
"""
from __future__ import annotations

import math

from ._validation import (check_int, check_non_negative_float, check_positive_float,
                          check_positive_int)

__all__ = ["Schedule", "Constant", "StepDecay", "Exponential", "Cosine", "InverseScaling"]


class Schedule:
    """Base class. epoch counts from 0; base_lr is the optimizer's lr."""

    def __call__(self, epoch: int, base_lr: float) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """lr = base_lr."""

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr


class StepDecay(Schedule):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_positive_int("step_size", step_size)
        self.gamma = check_positive_float("gamma", gamma)

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, gamma: float) -> None:
        self.gamma = check_positive_float("gamma", gamma)

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** epoch


class Cosine(Schedule):
    """Linear warm-up over `warmup` epochs, then a half cosine from base_lr down to min_lr at
    epoch `epochs`."""

    def __init__(self, epochs: int, warmup: int = 0, min_lr: float = 0.0) -> None:
        self.epochs = check_positive_int("epochs", epochs)
        self.warmup = check_int("warmup", warmup, 0, self.epochs - 1)
        self.min_lr = check_non_negative_float("min_lr", min_lr)

    def __call__(self, epoch: int, base_lr: float) -> float:
        if epoch < self.warmup:
            return base_lr * (epoch + 1) / self.warmup
        p = min(1.0, (epoch - self.warmup) / max(1, self.epochs - self.warmup))
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * p))


class InverseScaling(Schedule):
    """scikit-learn's 'invscaling': lr = base_lr / (t + 1) ** power_t with t the samples seen
    before the epoch, epoch * samples_per_epoch (by default 1: t counts epochs)."""

    def __init__(self, power_t: float = 0.5, samples_per_epoch: int = 1) -> None:
        self.power_t = check_positive_float("power_t", power_t)
        self.samples_per_epoch = check_positive_int("samples_per_epoch", samples_per_epoch)

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr / (epoch * self.samples_per_epoch + 1) ** self.power_t
