"""Training loops: fit and partial_fit drive the engine epoch by epoch; between epochs they run
validation, learning-rate schedules and callbacks, in Python.

Every argument is checked (and every scheduled learning rate computed) before the model or its
optimizer state changes. The optimizer's own `lr` is the base rate: schedules and callbacks
scale what each epoch uses and never write it back.
"""
import contextlib
import numbers
import time

import numpy as np

from ._validation import (as_numeric_array, check_choice, check_finite, check_non_negative_float,
                          check_positive_int, check_seed)
from .callbacks import Progress, is_terminal
from . import _kernels, threads
from ._engine import Copies
from .history import History
from .losses import CLASSIFICATION, LOSSES, PER_ELEMENT
from .metrics import get_metric
from .optimizers import SGD, Optimizer, OptimizerState


class Snapshot:
    """A copy of what a training step changes: the parameters, the optimizer state and the
    dropout counter; taken and restored without allocating."""

    def __init__(self, model, state, extra=()):
        self.state = state
        pairs = [(model.params, model.params.copy()),
                 (model._dropout_state, model._dropout_state.copy()),
                 (state.steps, state.steps.copy())]
        pairs += [(buf, buf.copy()) for buf in list(state.buffers) + list(extra)]
        self.copies = Copies(pairs)  # compiled: a take per epoch costs no Python loop
        self.take, self.restore = self.copies.take, self.copies.restore


def diverged(where, snapshot_note, lr):
    return FloatingPointError(
        f"{where}: the loss or the update was not finite (nan or inf), so training stopped; "
        f"{snapshot_note}. Lower the learning rate (lr={lr:g}) or clip the gradients "
        f"(clip_norm=...)")


def check_sample_weight(sample_weight, n, dtype):
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


def check_metrics(metrics):
    """{name: function} for a list of metric names (None: none)."""
    if metrics is None:
        return {}
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics: expected a list of metric names such as ['accuracy'], got "
                        f"{type(metrics).__name__} {metrics!r}")
    return {name: get_metric(name) for name in metrics}


def _check_callbacks(callbacks):
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


def _scheduled_rates(lr_schedule, epochs, base_lr):
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


def _validation(model, data, split, X, Y, labels, loss):
    """(training X, Y, labels, validation tuple or None), the validation data checked."""
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


def fit(model, X, y, loss, optimizer=None, epochs=1, batch_size=32, shuffle=True, seed=None,
        verbose=0, n_threads=None, validation_data=None, validation_split=0.0, metrics=None,
        lr_schedule=None, callbacks=None, progress=None, warm_start=True, sample_weight=None,
        l2_penalty=0.0, comm=None):
    """Trains on (X, y) by mini-batch gradient descent; returns a History.

    Each epoch visits every sample once, in batches of `batch_size` (the last batch may be
    smaller); with `shuffle`, in a new random order each epoch: the previous order shuffled by a
    counter-based generator keyed by `seed` and the epoch (or by the model's shuffle state, which
    advances and is saved with the model); a batch that holds every sample is not shuffled (its
    order would change only the order of the sums). Without callbacks, validation or comm, all
    the epochs run in one compiled call. Training continues from the current weights and, when `optimizer` is the
    one the model trained with last (or None), from its state (moments and step count): fit is
    warm by default; warm_start=False draws fresh weights and starts the optimizer afresh.

    Each epoch is one call into the engine, which gathers every batch's rows, runs its step
    (forward, loss, deltas, weight gradients, update) and releases the GIL throughout. With plain
    SGD the update runs inside the weight-gradient product and model.grads is not written
    (except with comm, where it holds the summed gradient); with any other optimizer (momentum, Adam, AdamW, RMSprop, weight decay, clipping) model.grads holds
    the last batch's whole gradient when fit returns.

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
    args = (model, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose,
            validation_data, validation_split, metrics, lr_schedule, callbacks, progress,
            warm_start, sample_weight, l2_penalty, comm)
    with threads.fit_limit(n_threads, threads.step_work(model, batch_size, _rows_of(X))):
        return _fit(*args)


def _rows_of(X):
    """len(X) for an array-like with a shape, else None (before X is checked)."""
    try:
        return int(X.shape[0])
    except Exception:
        return None


def _fit(model, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose,
         validation_data, validation_split, metrics, lr_schedule, callbacks, progress, warm_start,
         sample_weight, l2_penalty, comm):
    with contextlib.ExitStack() as held:
        try:
            args = _checked(model, X, y, loss, optimizer, epochs, batch_size, shuffle, seed,
                            verbose, validation_data, validation_split, metrics, lr_schedule,
                            callbacks, progress, warm_start, sample_weight, l2_penalty)
            held.enter_context(model._exclusive("fit"))
            error = None
        except Exception as exc:
            if comm is None:
                raise
            error = exc
        if comm is not None:  # every rank refuses if any does, and they must agree
            from .distributed import all_accept, check_same
            all_accept(comm, error)
            (X, Y, labels, weights, loss, optimizer, epochs, batch_size, shuffle, seed, _, val,
             _, rates, _, _, warm_start, l2_penalty) = args
            check_same(comm, model, optimizer,
                       {"X": X, "y": Y if labels is None else labels, "sample_weight": weights,
                        "validation X": None if val is None else val[0]},
                       loss=LOSSES[loss], epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                       seed=seed, warm_start=warm_start, l2_penalty=l2_penalty,
                       rates=float(np.sum(rates)))
        return _train(model, *args, comm)


def _checked(model, X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose,
             validation_data, validation_split, metrics, lr_schedule, callbacks, progress,
             warm_start, sample_weight, l2_penalty):
    """fit's arguments, checked (a call that raises leaves the model as it was), in _train's
    order."""
    # Check everything first: a call that raises leaves the model as it was.
    X, Y, labels, loss = model._check_data(X, y, loss)
    if optimizer is None:
        optimizer = model.optimizer if model.optimizer is not None else SGD()
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer: expected an optimizer such as fastprop.SGD, got "
                        f"{type(optimizer).__name__}")
    optimizer._hyper()
    epochs = check_positive_int("epochs", epochs)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed("seed", seed)
    metric_fns = check_metrics(metrics)
    callbacks = _check_callbacks(callbacks)
    for name, flag in (("shuffle", shuffle), ("warm_start", warm_start)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {type(flag).__name__} {flag!r}")
    if isinstance(verbose, (bool, np.bool_)):
        verbose = int(verbose)
    check_choice("verbose", verbose, (0, 1, 2))
    check_choice("progress", progress, (None, True, False))
    rates = _scheduled_rates(lr_schedule, epochs, optimizer.lr)
    weights = check_sample_weight(sample_weight, X.shape[0], model.dtype)
    l2_penalty = check_non_negative_float("l2_penalty", l2_penalty)
    X, Y, labels, val = _validation(model, validation_data, validation_split, X, Y, labels, loss)
    if weights is not None:
        weights = weights[:X.shape[0]]  # a validation split holds out the last rows
    return (X, Y, labels, weights, loss, optimizer, epochs, batch_size, shuffle, seed, verbose,
            val, metric_fns, rates, callbacks, progress, warm_start, l2_penalty)


def _train(model, X, Y, labels, weights, loss, optimizer, epochs, batch_size, shuffle, seed,
           verbose, val, metric_fns, rates, callbacks, progress, warm_start, l2_penalty, comm):
    """fit's loop, on checked arguments (comm: a Communicator, or None)."""

    fresh = None  # a fit from scratch: new weights and a new optimizer state (bound below)
    if not warm_start:
        for layer in model.layers:
            layer._initialize(model._rng)
        fresh = OptimizerState(optimizer.n_state, model._params)
    # the shuffles are counter-based: the model's [seed, epochs shuffled], or this fit's seed
    shuffles = model._shuffle_state if seed is None else np.array([seed, 0], np.uint64)
    n = X.shape[0]
    batch_size = min(batch_size, n)
    # one batch per epoch: its order changes only the order of the step's sums, not the step
    shuffle = shuffle and batch_size < n
    per_sample = model.n_out if loss in PER_ELEMENT else 1
    root = comm is None or comm.rank == 0
    if not root:
        callbacks = []  # rank 0 prints, validates, checkpoints and decides for every rank
    if verbose and root:
        callbacks.append(Progress(bar=progress if progress is not None else is_terminal()))
    watchers = [cb for cb in callbacks if callable(getattr(cb, "on_progress", None))
                and comm is None]
    history = History()
    logs = {"samples_seen": 0}
    parts = 1 if comm is None else comm.size
    engine = model._bind(optimizer, -(-batch_size // parts), fresh, penalty=l2_penalty)
    state = model._optimizer_state
    snapshot = Snapshot(model, state, [shuffles])  # the epoch's start, should it diverge
    n_batches = -(-n // batch_size)
    order = np.arange(n, dtype=np.int64) if shuffle else None
    if comm is None and not callbacks and val is None:  # nothing in Python between epochs
        return _compiled_epochs(engine, snapshot, history, X, Y, labels, weights, order,
                                shuffles if shuffle else None, batch_size, loss, rates,
                                per_sample, n_batches)
    if comm is None:
        steps = _Steps(engine, X, Y, labels, weights, order, batch_size, loss)
    else:
        from .distributed import broadcast_model, ShardedSteps
        steps = ShardedSteps(comm, engine, X, Y, labels, weights, order, batch_size, loss)
    # rank 0's callbacks may change the model: then its state is sent to every rank
    changes = any(not isinstance(cb, Progress) for cb in callbacks)
    steps.on_root(lambda: _hook(callbacks, "on_train_begin", model, logs), 0)
    if comm is not None:
        broadcast_model(comm, model, [shuffles])  # every rank starts from rank 0's state
    val_keys = [] if val is None else (["val_loss"] + ["val_accuracy"] * (loss in CLASSIFICATION)
                                       + ["val_" + name for name in metric_fns])

    def epoch_begins(epoch):  # -> [the epoch's learning rate]
        lr = rates[epoch]
        for cb in callbacks:
            lr *= getattr(cb, "lr_factor", 1.0)
            if hasattr(cb, "on_epoch_begin"):
                cb.on_epoch_begin(model, epoch, {"epoch": epoch + 1, "epochs": epochs})
        return [lr]

    def epoch_ends(epoch, logs):  # -> [stop?, changed?, validation figures]
        if val is not None:
            logs.update(_validate(model, val, loss, per_sample, metric_fns))
        history._append(logs)
        stop = False
        for cb in callbacks:
            stop = bool(cb.on_epoch_end(model, epoch, logs)) or stop
        return [stop, changes] + [logs[k] for k in val_keys]

    try:
        for epoch in range(epochs):
            # rank 0's callbacks set every rank's rate
            lr = float(steps.on_root(lambda: epoch_begins(epoch), 1)[0])
            if engine is not model._engine or model._optimizer_state is not state:
                # a callback's predict rebuilt the engine larger, or trained with another
                # optimizer: bind this fit's optimizer and state again
                engine = model._bind(optimizer, -(-batch_size // parts), state, l2_penalty)
                steps.rebind(engine)
            snapshot.take()
            start = time.perf_counter()
            if shuffle:  # in place: a new order each epoch, no allocation
                steps.shuffle(shuffles)
            if watchers:
                total, n_correct, bad = _chunked_epoch(steps, model, n, batch_size, lr, watchers)
            else:
                total, n_correct, bad = steps.run(0, n, lr)
            if bad >= 0 or not engine.params_finite():
                _stop(steps, snapshot, n, batch_size, lr, epoch, n_batches)
            total, n_correct = steps.totals(total, n_correct)
            seconds = time.perf_counter() - start
            logs = {"epoch": epoch + 1, "loss": total / n, "lr": lr, "seconds": seconds,
                    "samples_per_sec": n / seconds if seconds > 0 else float("inf"),
                    "samples_seen": logs["samples_seen"] + n}
            if loss in CLASSIFICATION:
                logs["accuracy"] = n_correct / (n * per_sample)
            decided = steps.on_root(lambda: epoch_ends(epoch, logs), 2 + len(val_keys))
            if not root:
                logs.update(zip(val_keys, map(float, decided[2:])))
                history._append(logs)
            if comm is not None and decided[1]:
                broadcast_model(comm, model)  # what rank 0's callbacks did to the model
            if decided[0]:
                break
    finally:
        steps.on_root(lambda: _hook(callbacks, "on_train_end", model, logs), 0)
        if comm is not None:  # e.g. the best weights rank 0's EarlyStopping restored
            broadcast_model(comm, model)
    return history


def _hook(callbacks, name, *args):
    """cb.<name>(*args) for every callback that has it; no values (for on_root)."""
    for cb in callbacks:
        if hasattr(cb, name):
            getattr(cb, name)(*args)
    return []


def _validate(model, val, loss, per_sample, metric_fns):
    """The validation logs: val_loss, val_accuracy (classification), val_<metric>."""
    logs = {}
    logs["val_loss"], val_correct = model._loss(val[0], val[1], val[2], loss)
    if loss in CLASSIFICATION:  # from the same pass: no metric needed for it
        logs["val_accuracy"] = val_correct / (val[0].shape[0] * per_sample)
    if metric_fns:
        pred = model.predict(val[0])
        for name, fn in metric_fns.items():
            logs["val_" + name] = fn(val[3], pred)
    return logs


class _Steps:
    """The steps of fit's epochs in this process: engine.epoch over the rows' order (or X's
    order)."""

    def __init__(self, engine, X, Y, labels, weights, order, batch_size, loss):
        self.engine, self.X, self.Y, self.labels, self.weights = engine, X, Y, labels, weights
        self.order, self.batch_size, self.loss = order, batch_size, LOSSES[loss]

    def rebind(self, engine):
        self.engine = engine

    def shuffle(self, shuffles):
        _kernels._shuffle(self.order, shuffles[0], shuffles[1])
        shuffles[1] += 1

    def run(self, lo, hi, lr, check_params=False):
        """The batches of rows lo to hi of the epoch: (sum of batch loss times batch size,
        number correct, index of the batch at which training diverged or -1)."""
        engine, X, Y, labels, weights, order = (self.engine, self.X, self.Y, self.labels,
                                                self.weights, self.order)
        if order is not None:
            return engine.epoch(X, Y, labels, order[lo:hi], self.batch_size, self.loss, lr,
                                check_params, weights)
        cut = slice(lo, hi)
        return engine.epoch(X[cut], None if Y is None else Y[cut],
                            None if labels is None else labels[cut], None, self.batch_size,
                            self.loss, lr, check_params,
                            None if weights is None else weights[cut])

    @staticmethod
    def totals(total, n_correct):
        return total, n_correct

    @staticmethod
    def on_root(fn, n):
        """fn() (a list of n values): in one process, simply run."""
        return fn()


def _compiled_epochs(engine, snapshot, history, X, Y, labels, weights, order, shuffles,
                     batch_size, loss, rates, per_sample, n_batches):
    """Every epoch in one engine call (no callbacks or validation run between them); History
    filled from its arrays once."""
    n, epochs = X.shape[0], len(rates)
    lrs = np.asarray(rates, dtype=np.float64)
    losses, seconds = np.empty(epochs), np.empty(epochs)
    corrects = np.empty(epochs, np.int64)
    done, bad = engine.epochs(X, Y, labels, weights, order, batch_size, LOSSES[loss], lrs,
                              shuffles, losses, corrects, seconds, snapshot.copies)
    history._extend(1, losses[:done], corrects[:done] / (n * per_sample)
                    if loss in CLASSIFICATION else None, lrs[:done], seconds[:done], n)
    if done < epochs:  # epoch `done` diverged: the snapshot holds its start
        _stop(_Steps(engine, X, Y, labels, weights, order, batch_size, loss), snapshot, n,
              batch_size, lrs[done], done, n_batches)
    return history


def _chunked_epoch(steps, model, n, batch_size, lr, watchers):
    """One epoch in about 20 engine calls over whole batches, telling the watchers (a progress
    bar) how far it got: the same steps as one call."""
    n_batches = -(-n // batch_size)
    per_call = max(1, n_batches // 20) * batch_size
    total, n_correct = 0.0, 0
    for lo in range(0, n, per_call):
        hi = min(n, lo + per_call)
        t, c, bad = steps.run(lo, hi, lr)
        if bad >= 0:
            return total, n_correct, lo // batch_size + bad
        total += t
        n_correct += c
        for cb in watchers:
            cb.on_progress(model, hi, n, total / hi)
    return total, n_correct, -1


def _stop(steps, snapshot, n, batch_size, lr, epoch, n_batches):
    """Training diverged in this epoch: replays it from its start, checking the parameters
    after every step, to find the first batch whose loss or update is not finite; leaves the
    model as it was before that batch and raises FloatingPointError."""
    snapshot.restore()
    _, _, bad = steps.run(0, n, lr, True)
    snapshot.restore()
    if bad > 0:  # the batches before it were fine: take them again
        steps.run(0, bad * batch_size, lr)
    where = (f"fit: epoch {epoch + 1}, batch {bad + 1} of {n_batches}" if bad >= 0 else
             f"fit: epoch {epoch + 1}")
    kept = ("the model keeps its weights and optimizer state from before that batch"
            if bad >= 0 else f"the model keeps its weights from the start of epoch {epoch + 1}")
    raise diverged(where, kept, lr)


def partial_fit(model, X, y, loss, optimizer=None, batch_size=32, **options):
    """One more epoch on (X, y), continuing from the current weights and from the state of
    `optimizer` (by default the model's last, so that momentum and Adam moments carry on)."""
    return fit(model, X, y, loss, optimizer, epochs=1, batch_size=batch_size, **options)
