"""Learning-rate schedules: before each epoch, fit sets the optimizer's lr to
schedule(epoch, base_lr, logs), where `logs` holds the previous epoch's results."""
import math


class Schedule:
    """Base class. epoch counts from 0; base_lr is the optimizer's lr when fit began."""

    def __call__(self, epoch, base_lr, logs):
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


def _positive(name, value, integer=False):
    if integer:
        if int(value) != value or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        return int(value)
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return value


class Constant(Schedule):
    def __call__(self, epoch, base_lr, logs):
        return base_lr


class StepDecay(Schedule):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, step_size, gamma=0.1):
        self.step_size = _positive("step_size", step_size, integer=True)
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch, base_lr, logs):
        return base_lr * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, gamma):
        self.gamma = _positive("gamma", gamma)

    def __call__(self, epoch, base_lr, logs):
        return base_lr * self.gamma ** epoch


class Cosine(Schedule):
    """Linear warm-up over `warmup` epochs, then a half cosine from base_lr down to min_lr at
    epoch `epochs`."""

    def __init__(self, epochs, warmup=0, min_lr=0.0):
        self.epochs = _positive("epochs", epochs, integer=True)
        self.warmup = int(warmup)
        if not 0 <= self.warmup < self.epochs:
            raise ValueError(f"warmup: expected 0 <= warmup < epochs={self.epochs}, got {warmup!r}")
        self.min_lr = float(min_lr)
        if not (math.isfinite(self.min_lr) and self.min_lr >= 0):
            raise ValueError(f"min_lr: expected a finite number >= 0, got {min_lr!r}")

    def __call__(self, epoch, base_lr, logs):
        if epoch < self.warmup:
            return base_lr * (epoch + 1) / self.warmup
        p = min(1.0, (epoch - self.warmup) / max(1, self.epochs - self.warmup))
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * p))


class InverseScaling(Schedule):
    """scikit-learn's 'invscaling': lr = base_lr / (t + 1) ** power_t, t the samples seen."""

    def __init__(self, power_t=0.5):
        self.power_t = _positive("power_t", power_t)

    def __call__(self, epoch, base_lr, logs):
        return base_lr / (logs.get("samples_seen", 0) + 1) ** self.power_t


class ReduceOnPlateau(Schedule):
    """Multiplies the lr by `factor` when `monitor` has not improved by `min_delta` for more than
    `patience` epochs (as torch's ReduceLROnPlateau), never below min_lr."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, min_lr=0.0):
        self.monitor = monitor
        self.factor = _positive("factor", factor)
        if self.factor >= 1:
            raise ValueError(f"factor: expected a number below 1, got {factor!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.min_lr = float(min_lr)
        self._best = math.inf
        self._bad = 0
        self._lr = None

    def __call__(self, epoch, base_lr, logs):
        if self._lr is None:
            self._lr = base_lr
        if self.monitor in logs:
            value = logs[self.monitor]
            if value < self._best - self.min_delta:
                self._best, self._bad = value, 0
            else:
                self._bad += 1
                if self._bad > self.patience:
                    self._lr = max(self.min_lr, self._lr * self.factor)
                    self._bad = 0
        elif epoch > 0:
            raise ValueError(f"monitor: {self.monitor!r} is not among the logs {sorted(logs)}; "
                             f"pass validation data to monitor val_loss")
        return self._lr
