"""The one training loop. An epoch is: a snapshot of the training state, the batches, and, should
a loss or an update stop being finite, the replay that finds the first bad batch and stops with
the model as it was before that batch.

Every way to train feeds it: fit and partial_fit (training.py), train_step (model.py), the
scikit-learn estimators' solvers (sklearn.py) and data-parallel fits (distributed.py). They
differ only in where a batch's rows come from, which their Steps object says:

    Steps          the engine's epoch over rows in an order (or in X's order): dense rows or
                   CSR rows (sparse X), which the engine reads in place
    ShardedSteps   (distributed.py) this rank's part of every batch, summed over the ranks

A full-batch solver (the estimators' L-BFGS, which scipy runs) takes no steps of its own: it
evaluates FullBatch, the loss and gradient over every row at the parameters it chooses.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, NoReturn, Sequence, Tuple, Union

import numpy as np

from ._kernels import Copies

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ._engine import Engine
    from ._typing import FloatArray
    from .callbacks import Progress
    from .model import Sequential

# What the engine's steps read: (X, Y or None, labels or None, sample weights or None, loss code)
# (X dense rows, or CSR rows: fastprop.sparse.CSR).
Data = Tuple[Any, Union["FloatArray", None], Union["NDArray[np.int64]", None],
             Union["FloatArray", None], int]


class Snapshot:
    """A copy of the model's training state (model._state(): parameters, optimizer buffers and
    step count, dropout and shuffle counters; not the gradients, which every step computes
    anew) and of `extra` arrays, taken and restored by compiled memcpy loops: no allocation per
    epoch."""

    def __init__(self, model: Sequential, extra: Iterable[NDArray[Any]] = ()) -> None:
        self.state = model._optimizer_state
        live = [arr for name, arr in model._state() if name != "grads"] + list(extra)
        self.copies = Copies([(arr, arr.copy()) for arr in live])
        self.take, self.restore = self.copies.take, self.copies.restore


def diverged(where: str, kept: str, lr: float) -> FloatingPointError:
    return FloatingPointError(
        f"{where}: the loss or the update was not finite (nan or inf), so training stopped; "
        f"{kept}. Lower the learning rate (lr={lr:g}) or clip the gradients (clip_norm=...)")


class Steps:
    """The steps of an epoch in this process: the engine's epoch over checked Data (X, its
    targets, sample weights and the rows' order: None for X's order, or a permutation that
    `shuffle` permutes further)."""

    def __init__(self, engine: Engine, data: Data, order: NDArray[np.int64] | None,
                 batch_size: int) -> None:
        self.engine, self.batch_size = engine, batch_size
        self.data = engine.data(*data, order)

    def rebind(self, engine: Engine) -> None:
        self.engine = engine  # another engine of the same model: the data stands

    def set_order(self, order: NDArray[np.int64]) -> None:
        """The rows' order from now on (a permutation of the rows)."""
        self.data.set_order(order)

    def shuffle(self, shuffles: NDArray[np.uint64]) -> None:
        """The order shuffled in place by the counter-based generator shuffles = [seed, count]."""
        self.data.shuffle(shuffles[0], shuffles[1])
        shuffles[1] += 1

    def run(self, lo: int, hi: int, lr: float, check_params: bool = False
            ) -> tuple[float, int, int]:
        """The batches of rows lo to hi of the epoch: (sum of batch loss times batch size,
        number correct, index of the batch at which training diverged or -1)."""
        return self.engine.epoch(self.data, lo, hi, self.batch_size, lr, check_params)

    def params_finite(self) -> bool:
        return self.engine.params_finite()

    def totals(self, total: float, n_correct: int) -> tuple[float, int]:
        """(the epoch's loss total and number correct): this process's alone."""
        return total, n_correct

    def on_root(self, fn: Callable[[], list[Any]], n: int
                ) -> Sequence[Any] | NDArray[np.float64]:
        """fn() (a list of n values): in one process, simply run."""
        return fn()


class FullBatch:
    """The objective of a full-batch solver: called with parameters (float64, the model's flat
    order), it sets the model's parameters to them and returns (the mean loss over every row,
    with sample weights and the L2 penalty, and its gradient as a new float64 array). There is
    no update to replay: a loss that is not finite is a value the solver's line search backs
    away from, and the caller checks the parameters the solver ends on."""

    def __init__(self, model: Sequential, data: Data, penalty: float) -> None:
        self.model, self.data, self.penalty = model, data, penalty

    def __call__(self, params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        model = self.model
        X, Y, labels, weights, loss = self.data
        model.params[...] = params  # the buffer itself: rounded to float32 if that is its dtype
        value = model._full_gradient(X, Y, labels, weights, loss, self.penalty)
        return value, model.grads.astype(np.float64)


class Epochs:
    """The loop over epochs of one training call: `run` one epoch at a time (with Python
    between them), or `run_compiled` many in one engine call; either stops on divergence the
    same way. `where` names the caller in the error ('fit', 'train_step', ...)."""

    def __init__(self, model: Sequential, steps: Steps, n: int, batch_size: int, where: str,
                 extra: Iterable[NDArray[Any]] = ()) -> None:
        self.model, self.steps, self.n, self.batch_size = model, steps, n, batch_size
        self.where, self.extra = where, list(extra)
        self.snapshot = model._snapshot_for(self.extra)
        self.n_batches = -(-n // batch_size)
        self.first_step = model._dropout_step  # the training steps taken before this call

    def keep(self, epochs: int) -> None:
        """After a KeyboardInterrupt: the model goes back to the end of the `epochs` epochs
        its caller recorded. An epoch interrupted in the engine is undone there; one that
        trained whole but was cut short before it was recorded is undone here (the snapshot
        holds its start). The step count tells which: every epoch takes n_batches steps."""
        if self.model._dropout_step != self.first_step + epochs * self.n_batches:
            self.snapshot.restore()

    def run(self, lr: float, epoch: int | None = None, shuffles: NDArray[np.uint64] | None = None,
            watchers: Sequence[Progress] = ()) -> tuple[float, int]:
        """One epoch at `lr` (`epoch`: its index, for the error; None for a single step), the
        order shuffled first (shuffles: [seed, count], or None): (sum over batches of loss times
        batch size, number correct), summed over the ranks."""
        steps = self.steps
        self.snapshot.take()
        try:
            if shuffles is not None:  # in place: a new order each epoch, no allocation
                steps.shuffle(shuffles)
            if watchers:
                total, n_correct, bad = self._chunked(lr, watchers)
            else:
                total, n_correct, bad = steps.run(0, self.n, lr)
        except KeyboardInterrupt:  # the model goes back to the end of the last whole epoch
            self.snapshot.restore()
            raise
        if bad >= 0 or not steps.params_finite():
            self.stop(lr, epoch)
        return steps.totals(total, n_correct)

    def run_compiled(self, rates: NDArray[np.float64], shuffles: NDArray[np.uint64] | None,
                     losses: NDArray[np.float64], corrects: NDArray[np.int64],
                     seconds: NDArray[np.float64]) -> int:
        """len(rates) epochs in one engine call (local steps only; nothing runs in Python
        between them); fills losses, corrects and seconds and returns the epochs done."""
        steps = self.steps
        done, diverged = steps.engine.epochs(steps.data, self.batch_size, rates, shuffles,
                                             losses, corrects, seconds, self.snapshot.copies)
        if done < len(rates):  # epoch `done` diverged: the snapshot holds its start
            self.stop(rates[done], done)
        return done

    def _chunked(self, lr: float, watchers: Sequence[Progress]) -> tuple[float, int, int]:
        """The epoch in about 20 calls over whole batches, telling the watchers (a progress
        bar) how far it got: the same steps as one call."""
        n, batch_size, model = self.n, self.batch_size, self.model
        per_call = max(1, self.n_batches // 20) * batch_size
        total, n_correct = 0.0, 0
        for lo in range(0, n, per_call):
            hi = min(n, lo + per_call)
            t, c, bad = self.steps.run(lo, hi, lr)
            if bad >= 0:
                return total, n_correct, lo // batch_size + bad
            total += t
            n_correct += c
            for cb in watchers:
                cb.on_progress(model, hi, n, total / hi)
        return total, n_correct, -1

    def stop(self, lr: float, epoch: int | None) -> NoReturn:
        """Training diverged in this epoch: replays it from its start, checking the parameters
        after every step, to find the first batch whose loss or update is not finite; leaves
        the model as it was before that batch and raises FloatingPointError."""
        steps, snapshot = self.steps, self.snapshot
        snapshot.restore()
        _, _, bad = steps.run(0, self.n, lr, True)
        snapshot.restore()
        if bad > 0:  # the batches before it were fine: take them again
            steps.run(0, bad * self.batch_size, lr)
        place = [] if epoch is None else [f"epoch {epoch + 1}"]
        if bad >= 0:
            place.append(f"batch {bad + 1} of {self.n_batches}")
            kept = "the model keeps its weights and optimizer state from before that batch"
        else:
            kept = "the model keeps its weights from the start of " + \
                ("the step" if epoch is None else f"epoch {epoch + 1}")
        where = f"{self.where}: {', '.join(place)}"
        raise diverged(where, kept, lr)
