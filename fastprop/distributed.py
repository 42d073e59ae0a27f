"""Data-parallel training: `model.fit(X, y, ..., comm=MPI.COMM_WORLD)`.

Every rank is given the same data and the same arguments. `batch_size` is the global batch:
rank r of p computes the gradient of rows [rows * r // p, rows * (r + 1) // p) of each batch,
scaled by its share of the batch (its rows, or its sum of sample weights, over the batch's),
so that one in-place sum over the ranks (an Allreduce of the model's flat gradient buffer) is
exactly the gradient of the whole batch; every rank then applies the same update. The weights,
the optimizer state and the dropout and shuffle counters are broadcast from rank 0 when the fit
begins, the shuffles come from the same counter-based generator on every rank, and each row's
dropout mask is the one it has in single-process training: a run is reproducible, equals a
single-process fit with the same global batch to rounding, and every rank holds the same
weights at every step.

Only rank 0 prints progress, validates and runs the callbacks (checkpoints, early stopping,
learning-rate factors); what they decide, and the validation figures, are broadcast each epoch,
so every rank stops at the same epoch and no rank waits alone in a collective. When the fit
ends, rank 0's weights and optimizer state (say, the best weights that EarlyStopping restored)
are broadcast again.

The communication engine sits behind `Communicator` (rank, size, allreduce, broadcast);
`MPICommunicator` wraps an mpi4py communicator (`pip install "fastprop[mpi]"`), the one
implemented. Under MPI each rank's BLAS and OpenMP threads default to the cores of its node
divided by the ranks on that node (`default_threads`), so ranks do not oversubscribe a machine.
"""
from __future__ import annotations

import os
import zlib
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

import numpy as np

from .loop import Steps
from .losses import LOSSES
from .sparse import CSR
from .threads import usable_cores

if TYPE_CHECKING:
    from mpi4py.MPI import Intracomm
    from numpy.typing import NDArray

    from ._engine import Engine
    from ._typing import CommLike
    from .loop import Data
    from .model import Sequential
    from .optimizers import Optimizer
    from .training import Plan

__all__ = ["Communicator", "MPICommunicator", "world", "as_communicator", "default_threads"]


class Communicator:
    """What data-parallel training needs of a communication engine. Every method is a
    collective: every rank calls it, in the same order, with arrays of the same shape and
    dtype."""

    rank: int = 0  # this process's index, 0 to size - 1
    size: int = 1  # the number of processes
    local_size: int = 1  # the number of processes on this machine

    def allreduce(self, buf: NDArray[Any]) -> None:
        """Replaces `buf` (a C-contiguous NumPy array) by its elementwise sum over the ranks."""
        raise NotImplementedError

    def broadcast(self, buf: NDArray[Any], root: int = 0) -> None:
        """Replaces `buf` on every rank by rank `root`'s."""
        raise NotImplementedError


class MPICommunicator(Communicator):
    """A Communicator over an mpi4py intracommunicator (such as MPI.COMM_WORLD): the buffer-based
    calls (Allreduce in place, Bcast), which move NumPy memory without pickling it."""

    def __init__(self, comm: Intracomm) -> None:
        from mpi4py import MPI
        if not isinstance(comm, MPI.Intracomm):
            raise TypeError(f"comm: expected an mpi4py intracommunicator such as "
                            f"MPI.COMM_WORLD, got {type(comm).__name__}")
        if MPI.Query_thread() < MPI.THREAD_FUNNELED:
            raise ValueError("comm: MPI was initialized with MPI_THREAD_SINGLE, but the ranks "
                             "run OpenMP and BLAS threads; initialize it with "
                             "fastprop.distributed.world() or set mpi4py.rc.thread_level = "
                             "'funneled' before importing mpi4py.MPI")
        self._MPI, self.comm = MPI, comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        try:
            self.local_size = node.Get_size()
        finally:
            node.Free()

    def allreduce(self, buf: NDArray[Any]) -> None:
        self.comm.Allreduce(self._MPI.IN_PLACE, buf, op=self._MPI.SUM)

    def broadcast(self, buf: NDArray[Any], root: int = 0) -> None:
        self.comm.Bcast(buf, root=root)


def world() -> MPICommunicator:
    """A Communicator over MPI.COMM_WORLD, MPI initialized (if it is not yet) with
    MPI_THREAD_FUNNELED: only the main thread calls MPI, while OpenMP and BLAS threads compute."""
    try:
        import mpi4py
    except ImportError:
        raise ImportError('fastprop.distributed needs mpi4py: pip install "fastprop[mpi]"') \
            from None
    import sys
    if "mpi4py.MPI" not in sys.modules:
        mpi4py.rc.thread_level = "funneled"
    from mpi4py import MPI
    return MPICommunicator(MPI.COMM_WORLD)


def as_communicator(comm: CommLike) -> Communicator:
    """A Communicator for fit's `comm` argument: one already, or an mpi4py communicator."""
    if isinstance(comm, Communicator):
        return comm
    if type(comm).__module__.startswith("mpi4py"):
        return MPICommunicator(comm)
    raise TypeError(f"comm: expected an mpi4py communicator such as MPI.COMM_WORLD or a "
                    f"fastprop.distributed.Communicator, got {type(comm).__name__}")


def default_threads(comm: Communicator) -> int:
    """The threads for each rank: this machine's cores (those this process may run on) divided
    by the ranks on it, at least 1."""
    return max(1, min(usable_cores(), (os.cpu_count() or 1) // max(1, comm.local_size)))


def all_accept(comm: Communicator, error: BaseException | None) -> None:
    """Collective: raises on every rank if any rank refused its arguments (`error`, or None):
    that rank raises its error, the others a ValueError, so none waits alone in a collective."""
    refused = np.array([0.0 if error is None else 1.0])
    comm.allreduce(refused)
    if error is not None:
        raise error
    if refused[0]:
        raise ValueError(f"comm: {int(refused[0])} of {comm.size} ranks refused their arguments "
                         f"(see their errors); every rank must be given the same data and "
                         f"arguments")


def _sample(arr: NDArray[Any] | CSR) -> int:
    """A checksum of an array's (or CSR rows') shape and of its first, middle and last rows."""
    picks = [0, arr.shape[0] // 2, arr.shape[0] - 1]
    if isinstance(arr, CSR):
        data = b"".join(part.values.tobytes() + part.indices.tobytes()
                        for part in (arr[i:i + 1] for i in picks))
    else:
        data = np.ascontiguousarray(arr[picks]).tobytes()
    return zlib.crc32(data + repr(arr.shape).encode())


def check_same(comm: Communicator, model: Sequential, optimizer: Optimizer,
               arrays: Mapping[str, NDArray[Any] | CSR | None], **numbers: float | None
               ) -> None:
    """Raises the same ValueError on every rank if the ranks were given different arguments:
    the `numbers` (or None), the optimizer's hyperparameters, the model's architecture and
    dtype, and samples of the `arrays` (or None). A fit whose ranks disagree would hang or
    drift apart."""
    numbers = dict(numbers, architecture=zlib.crc32(repr(model.architecture).encode()),
                   itemsize=model.dtype.itemsize)
    numbers.update({f"optimizer {k}": v for k, v in optimizer._hyper().items()})
    numbers.update({name: None if arr is None else _sample(arr) for name, arr in arrays.items()})
    names = sorted(numbers)
    values = [numbers[k] for k in names]
    mine = np.array([np.nan if v is None else float(v) for v in values])
    root = mine.copy()
    comm.broadcast(root)
    differs = np.array([0.0 if np.array_equal(mine, root, equal_nan=True) else 1.0])
    comm.allreduce(differs)
    if differs[0]:
        diff = [k for k, a, b in zip(names, mine, root) if not np.array_equal(a, b, equal_nan=True)]
        where = f"rank {comm.rank} differs from rank 0 in {', '.join(diff)}" if diff else \
            "another rank differs from rank 0"
        raise ValueError(f"comm: every rank must be given the same data and arguments; "
                         f"{int(differs[0])} of {comm.size} ranks were not ({where})")


def agree_on_plan(comm: Communicator, model: Sequential, plan: Plan | None,
                  error: BaseException | None) -> Plan:
    """Collective, before a data-parallel fit: every rank raises if any refused its arguments
    (`error`, or None), and the same ValueError if they were given different ones; returns
    the plan, the same on every rank."""
    all_accept(comm, error)
    assert plan is not None  # a rank without one refused: all_accept raised
    check_same(comm, model, plan.optimizer,
               {"X": plan.X, "y": plan.Y if plan.labels is None else plan.labels,
                "sample_weight": plan.weights,
                "validation X": None if plan.val is None else plan.val[0]},
               loss=LOSSES[plan.loss], epochs=plan.epochs, batch_size=plan.batch_size,
               shuffle=plan.shuffle, seed=plan.seed, warm_start=plan.warm_start,
               l2_penalty=plan.l2_penalty, rates=float(np.sum(plan.rates)))
    return plan


def broadcast_model(comm: Communicator, model: Sequential, extra: Iterable[NDArray[Any]] = ()
                    ) -> None:
    """Rank 0's training state (model._state(): parameters, gradients, optimizer state,
    dropout and shuffle counters) and `extra` arrays, on every rank."""
    for _, buf in model._state():
        comm.broadcast(buf)
    for buf in extra:
        comm.broadcast(buf)


class ShardedSteps(Steps):
    """The steps of fit's epochs on one rank (the loop.Steps of a data-parallel fit): for each
    global batch, this rank's part of its gradient (Engine.part: rows [rows r / p, rows (r + 1)
    / p) of the batch, scaled by their share of it), the sum over the ranks (an Allreduce of
    the flat gradient buffer), and the update, the same on every rank. Decisions (divergence,
    learning rates, stopping) come from values every rank holds: the summed gradient, or what
    rank 0 broadcasts (`on_root`)."""

    def __init__(self, comm: Communicator, engine: Engine, data: Data,
                 order: NDArray[np.int64] | None, batch_size: int) -> None:
        super().__init__(engine, data, order, batch_size)
        self.comm, self.grads = comm, engine.gradient_buffer

    def run(self, lo: int, hi: int, lr: float, check_params: bool = False
            ) -> tuple[float, int, int]:
        """The steps of the batches of rows lo to hi of the epoch. Returns (this rank's share
        of the sum of batch loss times batch size, its number correct, the index of the batch
        at which training diverged or -1), divergence decided from the summed gradient: a part
        whose loss is not finite makes its first element NaN."""
        comm, data, grads, engine = self.comm, self.data, self.grads, self.engine
        r, p, batch_size = comm.rank, comm.size, self.batch_size
        total, n_correct = 0.0, 0
        for batch, start in enumerate(range(lo, hi, batch_size)):
            rows = min(batch_size, hi - start)
            # the last rank's part is never empty: it carries the batch's L2 term
            value, correct = engine.part(data, start, rows, rows * r // p,
                                         rows * (r + 1) // p, r == p - 1)
            comm.allreduce(grads)
            if not np.isfinite(grads[0]):
                return total, n_correct, batch
            engine.update(lr, True)  # the same update on every rank, the step counted
            if check_params and not engine.params_finite():
                return total, n_correct, batch
            total += rows * value
            n_correct += correct
        return total, n_correct, -1

    def totals(self, total: float, n_correct: int) -> tuple[float, int]:
        """(the sums over the ranks of an epoch's loss total and number correct)."""
        sums = np.array([total, n_correct], np.float64)
        self.comm.allreduce(sums)
        return float(sums[0]), int(round(sums[1]))

    def on_root(self, fn: Callable[[], list[Any]], n: int) -> NDArray[np.float64]:
        """fn() -> n numbers, run on rank 0 only (its callbacks, validation); the numbers on
        every rank. If fn raises on rank 0, every rank raises (the others a RuntimeError), so
        none is left waiting in a collective."""
        values = np.zeros(n + 1)
        if self.comm.rank == 0:
            try:
                values[1:] = [float(v) for v in fn()]
            except BaseException:
                values[0] = 1.0
                self.comm.broadcast(values)
                raise
        self.comm.broadcast(values)
        if values[0]:
            raise RuntimeError("fit: rank 0 raised an exception in a callback or in validation "
                               "(see its output); every rank stops")
        return values[1:]
