"""Callbacks: a small protocol that fit calls between epochs.

A callback may define on_train_begin(model, logs), on_epoch_end(model, epoch, logs) and
on_train_end(model, logs); on_epoch_end returning True asks fit to stop after that epoch.
`logs` holds the epoch's 'loss', 'accuracy', 'val_loss', 'val_<metric>', 'lr', 'seconds' and
'samples_per_sec'. fit runs each epoch in compiled code: callbacks run between epochs, in Python.
"""
import math


class Callback:
    def on_train_begin(self, model, logs):
        pass

    def on_epoch_end(self, model, epoch, logs):
        return False

    def on_train_end(self, model, logs):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _mode(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith("r2")) else "min"
    return mode


class _Monitor(Callback):
    def __init__(self, monitor, min_delta, mode):
        self.monitor = monitor
        self.min_delta = float(min_delta)
        self.mode = _mode(monitor, mode)
        self._best = None

    def _value(self, logs):
        if self.monitor not in logs:
            raise ValueError(f"monitor: {self.monitor!r} is not among the logs {sorted(logs)}; "
                             f"pass validation data to monitor val_ quantities")
        return logs[self.monitor]

    def _improved(self, value):
        if self._best is None or math.isnan(self._best):
            return not math.isnan(value)
        if self.mode == "min":
            return value < self._best - self.min_delta
        return value > self._best + self.min_delta


class EarlyStopping(_Monitor):
    """Stops when `monitor` has not improved by `min_delta` for `patience` epochs; with
    restore_best, puts back the weights of the best epoch when training ends."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, restore_best=True,
                 mode="auto"):
        super().__init__(monitor, min_delta, mode)
        self.patience = int(patience)
        if self.patience < 0:
            raise ValueError(f"patience: expected an integer >= 0, got {patience!r}")
        self.restore_best = bool(restore_best)
        self.best_epoch = None
        self.stopped_epoch = None
        self._wait = 0
        self._best_params = None

    def on_train_begin(self, model, logs):
        self._best, self._wait, self.best_epoch, self.stopped_epoch = None, 0, None, None

    def on_epoch_end(self, model, epoch, logs):
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

    def on_train_end(self, model, logs):
        if self.restore_best and self._best_params is not None:
            model.params[...] = self._best_params


class ModelCheckpoint(_Monitor):
    """Saves the model (with its optimizer) to `path` after each epoch, or, with save_best_only,
    after each epoch that improves `monitor`. The save is atomic."""

    def __init__(self, path, monitor="val_loss", save_best_only=True, min_delta=0.0, mode="auto"):
        super().__init__(monitor, min_delta, mode)
        self.path = path
        self.save_best_only = bool(save_best_only)
        self.saved_epochs = []

    def on_epoch_end(self, model, epoch, logs):
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value):
                return False
            self._best = value
        model.save(self.path)
        self.saved_epochs.append(epoch)
        return False
