"""Callbacks: a small protocol that fit calls between epochs.

A callback may define on_train_begin(model, logs), on_epoch_begin(model, epoch, info),
on_epoch_end(model, epoch, logs) and on_train_end(model, logs); on_epoch_end returning True asks
fit to stop after that epoch. `logs` holds the epoch's 'loss', 'accuracy', 'val_loss',
'val_<metric>', 'lr', 'seconds' and 'samples_per_sec'. Two optional hooks: an `lr_factor`
attribute scales the learning rate of the epochs that follow (ReduceLROnPlateau), and
on_progress(model, done, n, loss) is told how far an epoch got, for which fit runs the epoch in
about 20 engine calls (Progress's bar). Callbacks run between engine calls, in Python.
"""
from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Any, Literal

from ._validation import (check_choice, check_int, check_non_negative_float, check_path,
                          did_you_mean)

if TYPE_CHECKING:
    import os

    from ._typing import FloatArray, Logs
    from .model import Sequential

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "ReduceLROnPlateau"]


class Callback:
    """Base class of fit's callbacks: every hook does nothing; a subclass overrides those it
    needs. on_epoch_end returning True stops training after that epoch."""

    def on_train_begin(self, model: Sequential, logs: Logs) -> None:
        """Before the first epoch."""

    def on_epoch_begin(self, model: Sequential, epoch: int, info: dict[str, int]) -> None:
        """Before each epoch (counted from 0); info: {'epoch': epoch + 1, 'epochs': epochs}."""

    def on_epoch_end(self, model: Sequential, epoch: int, logs: Logs) -> bool:
        """After each epoch, with its logs; True stops training."""
        return False

    def on_train_end(self, model: Sequential, logs: Logs) -> None:
        """After the last epoch (or the one a callback stopped at, or an error)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _mode(monitor: str, mode: Literal["auto", "min", "max"]) -> Literal["min", "max"]:
    check_choice("mode", mode, ("auto", "min", "max"))
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith("r2")) else "min"
    return mode


class _Monitor(Callback):
    def __init__(self, monitor: str, min_delta: float, mode: Literal["auto", "min", "max"]) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected the name of a logged value such as 'val_loss', "
                            f"got {type(monitor).__name__}")
        self.monitor = monitor
        self.min_delta = check_non_negative_float("min_delta", min_delta)
        self.mode = _mode(monitor, mode)
        self._best: float | None = None

    def _value(self, logs: Logs) -> float:
        if self.monitor not in logs:
            hint = did_you_mean(self.monitor, logs)
            if not hint and self.monitor.startswith("val_"):
                hint = ("; pass validation_data or validation_split" if "val_loss" not in logs
                        else f"; add {self.monitor[4:]!r} to fit's metrics")
            raise ValueError(f"monitor: {self.monitor!r} is not among the logs {sorted(logs)}"
                             f"{hint}")
        return logs[self.monitor]

    def _improved(self, value: float) -> bool:
        if self._best is None or math.isnan(self._best):
            return not math.isnan(value)
        if self.mode == "min":
            return value < self._best - self.min_delta
        return value > self._best + self.min_delta


class EarlyStopping(_Monitor):
    """Stops when `monitor` has not improved by `min_delta` for `patience` epochs; with
    restore_best, puts back the weights of the best epoch when training ends."""

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best: bool = True, mode: Literal["auto", "min", "max"] = "auto") -> None:
        super().__init__(monitor, min_delta, mode)
        self.patience = check_int("patience", patience)
        self.restore_best = _flag("restore_best", restore_best)
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self._wait = 0
        self._best_params: FloatArray | None = None

    def on_train_begin(self, model: Sequential, logs: Logs) -> None:
        self._best, self._wait, self.best_epoch, self.stopped_epoch = None, 0, None, None

    def on_epoch_end(self, model: Sequential, epoch: int, logs: Logs) -> bool:
        value = self._value(logs)
        if self._improved(value):
            self._best, self._wait, self.best_epoch = value, 0, epoch
            if self.restore_best:
                self._best_params = model.params.copy()
            return False
        self._wait += 1
        if self._wait >= max(self.patience, 1):  # Keras' semantics: stop after `patience` more
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model: Sequential, logs: Logs) -> None:
        if self.restore_best and self._best_params is not None:
            model.params[...] = self._best_params


class ModelCheckpoint(_Monitor):
    """Saves the model (with its optimizer) to `path` after each epoch, or, with save_best_only,
    after each epoch that improves `monitor`. The save is atomic."""

    def __init__(self, path: str | os.PathLike[str], monitor: str = "val_loss",
                 save_best_only: bool = True, min_delta: float = 0.0, mode: Literal["auto", "min", "max"] = "auto"
                 ) -> None:
        super().__init__(monitor, min_delta, mode)
        self.path = check_path("path", path)
        self.save_best_only = _flag("save_best_only", save_best_only)
        self.saved_epochs: list[int] = []

    def on_epoch_end(self, model: Sequential, epoch: int, logs: Logs) -> bool:
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                return False
            self._best = value
        model.save(self.path)
        self.saved_epochs.append(epoch)
        return False


class ReduceLROnPlateau(_Monitor):
    """Multiplies the learning rate of the following epochs by `factor` when `monitor` has not
    improved by `min_delta` for more than `patience` epochs (torch's ReduceLROnPlateau), never
    below min_lr. It scales the rate fit uses, never the optimizer's own lr, and starts afresh
    with each fit."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, min_lr: float = 0.0, mode: Literal["auto", "min", "max"] = "auto") -> None:
        super().__init__(monitor, min_delta, mode)
        self.factor = check_non_negative_float("factor", factor)
        if not 0 < self.factor < 1:
            raise ValueError(f"factor: expected a number in (0, 1), got {factor!r}")
        self.patience = check_int("patience", patience)
        self.min_lr = check_non_negative_float("min_lr", min_lr)
        self.lr_factor = 1.0
        self._wait = 0

    def on_train_begin(self, model: Sequential, logs: Logs) -> None:
        self._best, self._wait, self.lr_factor = None, 0, 1.0

    def on_epoch_end(self, model: Sequential, epoch: int, logs: Logs) -> bool:
        value = self._value(logs)
        if self._improved(value):
            self._best, self._wait = value, 0
            return False
        self._wait += 1
        if self._wait > self.patience:
            lr = logs["lr"]
            if lr > 0:  # the next rate is max(min_lr, lr * factor)
                self.lr_factor *= max(self.min_lr, lr * self.factor) / lr
            self._wait = 0
        return False


def _flag(name: str, value: object) -> bool:
    import numpy as np
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def epoch_line(logs: Logs, epochs: int) -> str:
    parts = [f"epoch {logs['epoch']:>{len(str(epochs))}}/{epochs}", f"loss {logs['loss']:.6f}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k == "accuracy" or k.startswith("val_")]
    parts.append(f"{logs['samples_per_sec']:>12,.0f} samples/s  {logs['seconds']:.3f} s")
    return "  ".join(parts)


class Progress(Callback):
    """What fit(verbose=1) prints: a line per epoch and, with `bar`, a live bar during each
    epoch (tqdm when installed, else one rewritten line)."""

    def __init__(self, bar: bool = False) -> None:
        self.bar = bool(bar)
        self._epochs = 0
        self._tqdm: Any = None

    def on_epoch_begin(self, model: Sequential, epoch: int, info: dict[str, int]) -> None:
        self._epoch, self._epochs = epoch + 1, info["epochs"]
        self._start, self._done, self._tqdm = time.perf_counter(), 0, None
        if self.bar:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._tqdm = tqdm(desc=f"epoch {epoch + 1}/{self._epochs}", unit="samples",
                              leave=True, file=sys.stdout)

    def on_progress(self, model: Sequential, done: int, n: int, loss: float) -> None:
        if not self.bar:
            return
        if self._tqdm is not None:
            self._tqdm.total = n
            self._tqdm.update(done - self._done)
            self._tqdm.set_postfix(loss=f"{loss:.4f}")
        else:
            rate = done / max(time.perf_counter() - self._start, 1e-9)
            width = 30
            filled = int(width * done / n)
            sys.stdout.write(f"\repoch {self._epoch}/{self._epochs} "
                             f"[{'=' * filled}{'.' * (width - filled)}] {done}/{n}  "
                             f"loss {loss:.4f}  {rate:,.0f} samples/s")
            sys.stdout.flush()
        self._done = done

    def on_epoch_end(self, model: Sequential, epoch: int, logs: Logs) -> bool:
        line = epoch_line(logs, self._epochs)
        if self._tqdm is not None:
            self._tqdm.close()
            print(line, flush=True)
        elif self.bar:
            sys.stdout.write("\r" + line + " " * 10 + "\n")
            sys.stdout.flush()
        else:
            print(line, flush=True)
        return False
