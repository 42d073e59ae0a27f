"""Training loops: fit and partial_fit drive the engine epoch by epoch; between epochs they run
validation, learning-rate schedules and callbacks, in Python.

Every argument is checked (and every scheduled learning rate computed) before the model or its
optimizer state changes. The optimizer's own `lr` is the base rate: schedules and callbacks
scale what each epoch uses and never write it back.

fit and partial_fit are also Sequential's methods: the same functions, so that their options
and defaults are written once.
"""
from __future__ import annotations

import contextlib
import dataclasses
import numbers
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from ._validation import (as_numeric_array, check_choice, check_finite, check_non_negative_float,
                          check_positive_int, check_seed)
from .callbacks import Progress, is_terminal
from . import loop, threads
from .history import History
from .losses import CLASSIFICATION, LOSSES, PER_ELEMENT
from .metrics import get_metric
from .optimizers import SGD, Optimizer, OptimizerState

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import (CommLike, EpochEndCallback, FloatArray, LossName, MatrixLike, Metric, Rows,
                          Schedule, Verbosity)
    from .distributed import Communicator
    from .model import Sequential

    # the validation data, checked: (X, Y or None, labels or None, y as given)
    _Val = tuple[Rows, Optional[FloatArray], Optional[NDArray[np.int64]], ArrayLike]


def check_sample_weight(sample_weight: ArrayLike | None, n: int, dtype: np.dtype[Any]
                        ) -> FloatArray | None:
    """None, or n finite weights >= 0 as a C-contiguous array of `dtype`."""
    if sample_weight is None:
        return None
    w = as_numeric_array("sample_weight", sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight: expected shape ({n},), one weight per sample, got "
                         f"shape {w.shape}")
    w = np.ascontiguousarray(w, dtype=dtype)
    check_finite("sample_weight", w)
    if (w < 0).any():
        raise ValueError(f"sample_weight: expected weights >= 0, got a minimum of {w.min()}")
    return w


def check_metrics(metrics: list[str] | tuple[str, ...] | None) -> dict[str, Metric]:
    """{name: function} for a list of metric names (None: none)."""
    if metrics is None:
        return {}
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics: expected a list of metric names such as ['accuracy'], got "
                        f"{type(metrics).__name__} {metrics!r}")
    return {name: get_metric(name) for name in metrics}


def _check_callbacks(callbacks: list[EpochEndCallback] | tuple[EpochEndCallback, ...] | None
                     ) -> list[EpochEndCallback]:
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"callbacks: expected a list of callbacks, got {type(callbacks).__name__}"
                        f"; write callbacks=[...]")
    for i, cb in enumerate(callbacks):
        if not callable(getattr(cb, "on_epoch_end", None)):
            raise TypeError(f"callbacks[{i}]: expected an object with on_epoch_end, got "
                            f"{type(cb).__name__}")
    return list(callbacks)


def _scheduled_rates(lr_schedule: Schedule | None, epochs: int, base_lr: float) -> list[float]:
    """The learning rate of every epoch: schedules are functions of (epoch, base_lr)."""
    if lr_schedule is None:
        return [base_lr] * epochs
    if not callable(lr_schedule):
        raise TypeError(f"lr_schedule: expected a schedule such as schedules.Cosine(...), got "
                        f"{type(lr_schedule).__name__}")
    rates = []
    for epoch in range(epochs):
        try:
            lr = lr_schedule(epoch, base_lr)
            ok = not isinstance(lr, (bool, np.bool_)) and isinstance(lr, numbers.Real) and \
                np.isfinite(float(lr)) and lr >= 0
        except (OverflowError, ZeroDivisionError) as exc:
            raise ValueError(f"lr_schedule: its rate cannot be computed at epoch {epoch} "
                             f"({exc})") from None
        if not ok:
            raise ValueError(f"lr_schedule: expected a finite learning rate >= 0 for every "
                             f"epoch, got {lr!r} at epoch {epoch}")
        rates.append(float(lr))
    return rates


def _validation(model: Sequential, data: tuple[MatrixLike, ArrayLike] | None, split: float | None,
                X: Rows, Y: FloatArray | None, labels: NDArray[np.int64] | None,
                loss: LossName) -> tuple[Rows, FloatArray | None,
                                         NDArray[np.int64] | None, _Val | None]:
    """(training X, Y, labels, validation tuple or None), the validation data checked."""
    if data is None and type(split) is float and split == 0:  # fit's default
        return X, Y, labels, None
    if data is not None:
        if split:
            raise ValueError("validation_split: give validation_data or validation_split, not both")
        try:
            Xv, yv = data
        except (TypeError, ValueError):
            raise ValueError("validation_data: expected a pair (X_val, y_val)") from None
        Xv, Yv, Lv, _ = model._check_data(Xv, yv, loss, names=("validation_data[0] (X_val)",
                                                               "validation_data[1] (y_val)"))
        return X, Y, labels, (Xv, Yv, Lv, yv)
    if isinstance(split, (bool, np.bool_)) or not isinstance(split, (numbers.Real, type(None))):
        raise TypeError(f"validation_split: expected a fraction in (0, 1), got "
                        f"{type(split).__name__} {split!r}")
    if split is None or split == 0:
        return X, Y, labels, None
    if isinstance(split, (bool, np.bool_)) or not isinstance(split, numbers.Real):
        raise TypeError(f"validation_split: expected a fraction in (0, 1), got "
                        f"{type(split).__name__} {split!r}")
    n = X.shape[0]
    try:
        split = float(split)
    except OverflowError:
        split = float("inf")
    n_val = int(round(split * n)) if np.isfinite(split) else 0
    if not 0 < split < 1 or n_val < 1 or n_val >= n:
        raise ValueError(f"validation_split: expected a fraction in (0, 1) leaving samples on "
                         f"both sides, got {split!r}")
    cut = n - n_val
    y_val = Y[cut:] if Y is not None else labels[cut:]
    val = (X[cut:], None if Y is None else Y[cut:], None if labels is None else labels[cut:],
           y_val)
    return (X[:cut], None if Y is None else Y[:cut], None if labels is None else labels[:cut],
            val)


def fit(model: Sequential, X: MatrixLike, y: ArrayLike, loss: LossName,
        optimizer: Optimizer | None = None, epochs: int = 1, batch_size: int = 32, *,
        shuffle: bool = True, seed: int | None = None, verbose: Verbosity = 0,
        n_threads: int | None = None, validation_data: tuple[MatrixLike, ArrayLike] | None = None,
        validation_split: float = 0.0, metrics: list[str] | tuple[str, ...] | None = None,
        lr_schedule: Schedule | None = None,
        callbacks: list[EpochEndCallback] | tuple[EpochEndCallback, ...] | None = None,
        progress: bool | None = None, warm_start: bool = True,
        sample_weight: ArrayLike | None = None, l2_penalty: float = 0.0,
        comm: CommLike | None = None) -> History:
    """Trains on (X, y) by mini-batch gradient descent; returns a History.

    Each epoch visits every sample once, in batches of `batch_size` (the last batch may be
    smaller); with `shuffle`, in a new random order each epoch: the previous order shuffled by a
    counter-based generator keyed by `seed` and the epoch (or by the model's shuffle state, which
    advances and is saved with the model); a batch that holds every sample is not shuffled (its
    order would change only the order of the sums). Without callbacks, validation or comm, all
    the epochs run in one compiled call. Training continues from the current weights and, when
    `optimizer` is the one the model trained with last (or None), from its state (moments and
    step count): warm_start=False draws fresh weights and starts the optimizer afresh.

    Each epoch is one call into the engine, which gathers every batch's rows, runs its step
    (forward, loss, deltas, weight gradients, update) and releases the GIL throughout. With plain
    SGD the update runs inside the weight-gradient product and model.grads is not written
    (except with comm: the summed gradient); with any other optimizer (momentum, Adam, AdamW,
    RMSprop, weight decay, clipping) model.grads holds the last batch's gradient afterwards.

    validation_data=(X_val, y_val), or validation_split=f (the last fraction f of the data,
    before shuffling, as Keras does), adds val_loss and the `metrics` ('accuracy',
    'top_k_accuracy', 'mse', 'mae', 'r2') on it after each epoch. lr_schedule (from
    fastprop.schedules) gives each epoch's rate from the optimizer's lr, which it never
    changes; callbacks (EarlyStopping, ModelCheckpoint, ReduceLROnPlateau, or any object with
    their methods) run after each epoch and may stop training. `verbose=1` prints each epoch; on
    a terminal (or with progress=True) it also shows a live bar during the epoch (tqdm when
    installed), for which the epoch runs in about 20 engine calls instead of one. `n_threads`
    bounds the threads of BLAS and of the OpenMP loops during the fit (threadpoolctl).

    sample_weight (n_samples,) weights each sample's loss and gradient (within a batch, the
    weighted mean); l2_penalty adds l2_penalty / 2 * ||W||^2 (weights, not biases) divided by the
    batch's size (or its sum of weights) to every batch's loss, as scikit-learn's alpha.

    comm (an mpi4py communicator such as MPI.COMM_WORLD, or a fastprop.distributed.Communicator)
    trains data-parallel: every rank calls fit with the same data and arguments, batch_size is
    the global batch, each rank computes the gradient of its part of every batch and one
    in-place Allreduce sums them, so the fit equals a single-process one with the same batch
    (to rounding) and every rank ends with the same weights. Only rank 0 prints, validates and
    runs the callbacks; n_threads defaults to the node's cores divided by its ranks. See
    fastprop.distributed.
    """
    if comm is not None:
        from . import distributed
        comm = distributed.as_communicator(comm)
        if n_threads is None:
            n_threads = distributed.default_threads(comm)
    args = (X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose, validation_data,
            validation_split, metrics, lr_schedule, callbacks, progress, warm_start,
            sample_weight, l2_penalty)
    with threads.fit_limit(n_threads, threads.step_work(model, batch_size, _rows_of(X))):
        return _fit(model, args, comm)


def partial_fit(model: Sequential, X: MatrixLike, y: ArrayLike, loss: LossName,
                optimizer: Optimizer | None = None, batch_size: int = 32, *,
                shuffle: bool = True, seed: int | None = None, verbose: Verbosity = 0,
                n_threads: int | None = None,
                validation_data: tuple[MatrixLike, ArrayLike] | None = None,
                validation_split: float = 0.0, metrics: list[str] | tuple[str, ...] | None = None,
                lr_schedule: Schedule | None = None,
                callbacks: list[EpochEndCallback] | tuple[EpochEndCallback, ...] | None = None,
                progress: bool | None = None, warm_start: bool = True,
                sample_weight: ArrayLike | None = None, l2_penalty: float = 0.0,
                comm: CommLike | None = None) -> History:
    """One more epoch on (X, y), continuing from the current weights and from the state of
    `optimizer` (by default the model's last, so that momentum and Adam moments carry on).
    The options are fit's (tests/test_typing.py checks that they are all here, with fit's
    defaults)."""
    return fit(model, X, y, loss, optimizer, 1, batch_size, shuffle=shuffle, seed=seed,
               verbose=verbose, n_threads=n_threads, validation_data=validation_data,
               validation_split=validation_split, metrics=metrics, lr_schedule=lr_schedule,
               callbacks=callbacks, progress=progress, warm_start=warm_start,
               sample_weight=sample_weight, l2_penalty=l2_penalty, comm=comm)


def _rows_of(X: object) -> int | None:
    """len(X) for an array-like with a shape, else None (before X is checked)."""
    try:
        return int(X.shape[0])  # type: ignore[attr-defined]
    except Exception:
        return None


@dataclasses.dataclass
class Plan:
    """A fit's arguments, checked: what _train runs."""
    X: Rows
    Y: FloatArray | None   # targets (n, n_out), or None with labels
    labels: NDArray[np.int64] | None  # int64 labels (softmax cross-entropy), or None
    weights: FloatArray | None  # sample weights, or None
    loss: LossName
    optimizer: Optimizer
    epochs: int
    batch_size: int
    shuffle: bool
    seed: int | None
    verbose: int
    val: _Val | None       # (X, Y, labels, y as given) of the validation data, or None
    metrics: dict[str, Metric]
    rates: list[float]     # every epoch's scheduled learning rate
    callbacks: list[EpochEndCallback]
    progress: bool | None
    warm_start: bool
    l2_penalty: float

    @property
    def data(self) -> tuple[Rows, FloatArray | None, NDArray[np.int64] | None,
                            FloatArray | None, int]:
        """What the engine's steps read: (X, Y, labels, weights, loss code)."""
        return self.X, self.Y, self.labels, self.weights, LOSSES[self.loss]


def _fit(model: Sequential, args: tuple[Any, ...], comm: Communicator | None) -> History:
    if comm is None:
        checked = _checked(model, *args)
        with model._exclusive("fit"):
            return _train(model, checked, None)
    plan: Plan | None = None
    error: Exception | None = None
    with contextlib.ExitStack() as held:
        try:
            plan = _checked(model, *args)
            held.enter_context(model._exclusive("fit"))
        except Exception as exc:
            error = exc
        from .distributed import agree_on_plan  # every rank refuses if any does
        return _train(model, agree_on_plan(comm, model, plan, error), comm)


def _checked(model: Sequential, X: MatrixLike, y: ArrayLike, loss: LossName,
             optimizer: Optimizer | None, epochs: int, batch_size: int, shuffle: bool,
             seed: int | None, verbose: Any, validation_data: Any, validation_split: Any,
             metrics: Any, lr_schedule: Schedule | None, callbacks: Any, progress: bool | None,
             warm_start: bool, sample_weight: ArrayLike | None, l2_penalty: float) -> Plan:
    """fit's arguments, checked (a call that raises leaves the model as it was), as a Plan."""
    X, Y, labels, loss = model._check_data(X, y, loss)
    if optimizer is None:
        optimizer = model.optimizer if model.optimizer is not None else SGD()
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected an optimizer such as fastprop.SGD, got "
                        f"{type(optimizer).__name__}")
    optimizer._hyper()
    for name, flag in (("shuffle", shuffle), ("warm_start", warm_start)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {type(flag).__name__} {flag!r}")
    if isinstance(verbose, (bool, np.bool_)):
        verbose = int(verbose)
    check_choice("verbose", verbose, (0, 1, 2))
    check_choice("progress", progress, (None, True, False))
    epochs = check_positive_int("epochs", epochs)
    weights = check_sample_weight(sample_weight, X.shape[0], model.dtype)
    X, Y, labels, val = _validation(model, validation_data, validation_split, X, Y, labels, loss)
    if weights is not None:
        weights = weights[:X.shape[0]]  # a validation split holds out the last rows
    return Plan(X, Y, labels, weights, loss, optimizer, epochs,
                check_positive_int("batch_size", batch_size), bool(shuffle),
                check_seed("seed", seed), verbose, val, check_metrics(metrics),
                _scheduled_rates(lr_schedule, epochs, optimizer.lr),
                _check_callbacks(callbacks), progress, bool(warm_start),
                check_non_negative_float("l2_penalty", l2_penalty))


def _train(model: Sequential, plan: Plan, comm: Communicator | None) -> History:
    """fit's loop over epochs, on a checked plan (comm: a Communicator, or None)."""
    # a fit from scratch: new weights and a new optimizer state (bound below)
    fresh: OptimizerState | None = None
    if not plan.warm_start:
        for layer in model.layers:
            layer._initialize(model._rng)
        fresh = OptimizerState(plan.optimizer.n_state, model._params)
    # the shuffles are counter-based: the model's [seed, epochs shuffled], or this fit's seed
    own = plan.seed is not None
    shuffles = np.array([plan.seed, 0], np.uint64) if own else model._shuffle_state
    n = plan.X.shape[0]
    batch_size = min(plan.batch_size, n)
    # one batch per epoch: its order changes only the order of the step's sums, not the step
    shuffled = plan.shuffle and batch_size < n
    parts = 1 if comm is None else comm.size
    engine = model._bind(plan.optimizer, -(-batch_size // parts), fresh, plan.l2_penalty)
    order = np.arange(n, dtype=np.int64) if shuffled else None
    steps: loop.Steps
    if comm is None:
        steps = loop.Steps(engine, plan.data, order, batch_size)
    else:
        from .distributed import ShardedSteps
        steps = ShardedSteps(comm, engine, plan.data, order, batch_size)
    epochs = loop.Epochs(model, steps, n, batch_size, "fit", [shuffles] if own else ())
    history = History()
    try:
        if comm is None and not plan.callbacks and plan.val is None and not plan.verbose:
            _compiled_epochs(epochs, plan, shuffles if shuffled else None, history)
        else:
            _EpochsWithPython(model, plan, comm, epochs, history).run(
                shuffles if shuffled else None)
    except KeyboardInterrupt as exc:  # the model goes back to the end of the last whole epoch
        history._discard_partial()
        epochs.keep(len(history))
        exc.history = history  # type: ignore[attr-defined]
        raise
    return history


def _compiled_epochs(epochs: loop.Epochs, plan: Plan, shuffles: NDArray[np.uint64] | None,
                     history: History) -> None:
    """Every epoch in one engine call (no callbacks or validation run between them); History
    filled from its arrays once."""
    n, count = plan.X.shape[0], plan.epochs
    out = np.empty((3, count))  # three contiguous rows
    lrs, losses, seconds = out[0], out[1], out[2]
    lrs[:] = plan.rates
    losses.fill(np.nan)
    corrects = np.empty(count, np.int64)
    done = count
    try:
        epochs.run_compiled(lrs, shuffles, losses, corrects, seconds)
    except BaseException:  # interrupted or diverged: the epochs finished wrote their loss
        done = count - int(np.isnan(losses[::-1]).cumprod().sum())
        raise
    finally:
        if done < count:
            out, corrects = out[:, :done], corrects[:done]
        history._extend(1, out[1], corrects if plan.loss in CLASSIFICATION else None,
                        n * _per_sample(plan), out[0], out[2], n)


def _per_sample(plan: Plan) -> int:
    """The outputs that accuracy counts per sample: every one for the per-element losses."""
    return plan.Y.shape[1] if plan.loss in PER_ELEMENT else 1  # type: ignore[union-attr]


class _EpochsWithPython:
    """fit's epochs with Python between them: callbacks, validation, progress, or the ranks'
    agreement. With comm, rank 0 alone prints, validates and runs the callbacks, and every rank
    gets what they decided."""

    def __init__(self, model: Sequential, plan: Plan, comm: Communicator | None,
                 epochs: loop.Epochs, history: History) -> None:
        self.model, self.plan, self.comm, self.epochs, self.history = (model, plan, comm,
                                                                        epochs, history)
        self.root = comm is None or comm.rank == 0
        callbacks: list[Any] = list(plan.callbacks) if self.root else []
        if plan.verbose and self.root:
            callbacks.append(Progress(bar=plan.progress if plan.progress is not None
                                      else is_terminal()))
        self.callbacks = callbacks
        self.watchers = [cb for cb in callbacks if callable(getattr(cb, "on_progress", None))
                         and comm is None]
        # rank 0's callbacks may change the model: then its state is sent to every rank
        self.changes = any(not isinstance(cb, Progress) for cb in callbacks)
        self.val_keys: list[str] = [] if plan.val is None else (
            ["val_loss"] + ["val_accuracy"] * (plan.loss in CLASSIFICATION)
            + ["val_" + name for name in plan.metrics])
        self.logs: dict[str, Any] = {"samples_seen": 0}

    def run(self, shuffles: NDArray[np.uint64] | None) -> None:
        steps, comm, model = self.epochs.steps, self.comm, self.model
        steps.on_root(lambda: _hook(self.callbacks, "on_train_begin", model, self.logs), 0)
        if comm is not None:
            from .distributed import broadcast_model
            broadcast_model(comm, model, self.epochs.extra)  # every rank starts from rank 0's state
        try:
            for epoch in range(self.plan.epochs):
                if self._epoch(epoch, shuffles):
                    break
        finally:
            steps.on_root(lambda: _hook(self.callbacks, "on_train_end", model, self.logs), 0)
            if comm is not None:  # e.g. the best weights rank 0's EarlyStopping restored
                broadcast_model(comm, model)

    def _epoch(self, epoch: int, shuffles: NDArray[np.uint64] | None) -> bool:
        """One epoch and what follows it; True when a callback stops training."""
        epochs, plan, model, n = self.epochs, self.plan, self.model, self.plan.X.shape[0]
        lr = float(epochs.steps.on_root(lambda: self._begins(epoch), 1)[0])
        self._rebind()
        start = time.perf_counter()
        total, n_correct = epochs.run(lr, epoch, shuffles, self.watchers)
        seconds = time.perf_counter() - start
        logs = {"epoch": epoch + 1, "loss": total / n, "lr": lr, "seconds": seconds,
                "samples_per_sec": n / seconds if seconds > 0 else float("inf"),
                "samples_seen": self.logs["samples_seen"] + n}
        if plan.loss in CLASSIFICATION:
            logs["accuracy"] = n_correct / (n * _per_sample(plan))
        self.logs = logs
        decided = epochs.steps.on_root(lambda: self._ends(epoch, logs), 2 + len(self.val_keys))
        if not self.root:
            logs.update(zip(self.val_keys, map(float, decided[2:])))
            self.history._append(logs)
        if self.comm is not None and decided[1]:
            from .distributed import broadcast_model
            broadcast_model(self.comm, model)  # what rank 0's callbacks did to the model
        return bool(decided[0])

    def _rebind(self) -> None:
        """A callback's predict may have rebuilt the engine larger, or trained with another
        optimizer: this fit's optimizer and state are bound again."""
        model, epochs, plan = self.model, self.epochs, self.plan
        engine, state = epochs.steps.engine, epochs.snapshot.state
        if engine is not model._engine or model._optimizer_state is not state:
            parts = 1 if self.comm is None else self.comm.size
            epochs.steps.rebind(model._bind(plan.optimizer, -(-epochs.batch_size // parts),
                                            state, plan.l2_penalty))

    def _begins(self, epoch: int) -> list[float]:  # [the epoch's learning rate]
        lr = self.plan.rates[epoch]
        for cb in self.callbacks:
            lr *= getattr(cb, "lr_factor", 1.0)
            if hasattr(cb, "on_epoch_begin"):
                cb.on_epoch_begin(self.model, epoch, {"epoch": epoch + 1,
                                                      "epochs": self.plan.epochs})
        return [lr]

    def _ends(self, epoch: int, logs: dict[str, Any]) -> list[Any]:
        # [stop?, changed?, validation figures]
        plan = self.plan
        if plan.val is not None:
            logs.update(_validate(self.model, plan.val, plan.loss, _per_sample(plan),
                                  plan.metrics))
        self.history._append(logs)
        stop = False
        for cb in self.callbacks:
            stop = bool(cb.on_epoch_end(self.model, epoch, logs)) or stop
        return [stop, self.changes] + [logs[k] for k in self.val_keys]


def _hook(callbacks: list[Any], name: str, *args: Any) -> list[Any]:
    """cb.<name>(*args) for every callback that has it; no values (for on_root)."""
    for cb in callbacks:
        if hasattr(cb, name):
            getattr(cb, name)(*args)
    return []


def _validate(model: Sequential, val: _Val, loss: LossName, per_sample: int,
              metric_fns: dict[str, Metric]) -> dict[str, float]:
    """The validation logs: val_loss, val_accuracy (classification), val_<metric>."""
    logs: dict[str, float] = {}
    logs["val_loss"], val_correct = model._loss(val[0], val[1], val[2], loss)
    if loss in CLASSIFICATION:  # from the same pass: no metric needed for it
        logs["val_accuracy"] = val_correct / (val[0].shape[0] * per_sample)
    if metric_fns:
        pred = model.predict(val[0])
        for name, fn in metric_fns.items():
            logs["val_" + name] = fn(val[3], pred)
    return logs

