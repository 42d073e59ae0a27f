"""The record of a training run, one entry per epoch."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from numpy.typing import NDArray

    from ._typing import Logs

_COLUMNS = ("loss", "accuracy", "val_loss")


_LISTS = ("epoch", "loss", "accuracy", "val_loss", "lr", "seconds", "samples_per_sec")


def _column(name: str) -> Any:
    """The property of a column (its type is the one History declares for it)."""
    def get(self: History) -> list[Any]:
        if self._pending:
            self._flush()
        return self._lists[name]

    def set(self: History, value: list[Any]) -> None:
        if self._pending:
            self._flush()
        self._lists[name] = value

    return property(get, set, doc=f"Per epoch: {name.replace('_', ' ')} (a list).")


class History:
    """Per epoch: train loss, accuracy (classification losses, from the training pass), val_loss
    and val_<metric> (with validation data), learning rate, seconds and samples per second."""

    def __init__(self) -> None:
        self._lists: dict[str, list[Any]] = {name: [] for name in _LISTS}
        # epochs run in one compiled call, as arrays until a list is read
        self._pending: list[tuple[int, NDArray[Any], NDArray[Any] | None, int, NDArray[Any],
                                  NDArray[Any], int]] = []
        self.metrics: dict[str, list[float]] = {}  # 'val_<metric>' -> list
        # during _append: each list's length before it (see _discard_partial)
        self._before: list[tuple[list[Any], int]] | None = None

    epoch: list[int] = _column("epoch")
    loss: list[float] = _column("loss")
    accuracy: list[float] = _column("accuracy")
    val_loss: list[float] = _column("val_loss")
    lr: list[float] = _column("lr")
    seconds: list[float] = _column("seconds")
    samples_per_sec: list[float] = _column("samples_per_sec")

    def __getstate__(self) -> dict[str, Any]:
        """Lists only (pending arrays made lists first): what pickle and copy take. A copy gets
        its own dict of the columns, so assigning a column of one does not change the other."""
        if self._pending:
            self._flush()
        return {"lists": dict(self._lists), "metrics": self.metrics}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "lists" not in state:  # pickled by an earlier fastprop: the columns as attributes
            state = {"lists": {name: state.get(name, []) for name in _LISTS},
                     "metrics": state.get("metrics", {})}
        self._lists = {name: state["lists"].get(name, []) for name in _LISTS}
        self._pending = []
        self.metrics = state["metrics"]
        self._before = None

    def _append(self, logs: Logs) -> None:
        """One epoch from its logs (run after each epoch with callbacks: kept short)."""
        if self._pending:
            self._flush()
        lists = self._lists
        # the lengths before: an append that a KeyboardInterrupt cuts short is undone whole
        self._before = [(column, len(column)) for column in
                        list(lists.values()) + list(self.metrics.values())]
        for key, column in lists.items():
            if key in logs:
                column.append(logs[key])
        for key, value in logs.items():
            if key[:4] == "val_" and key != "val_loss":
                self.metrics.setdefault(key, []).append(value)
        self._before = None

    def _discard_partial(self) -> None:
        """Undoes an append that was interrupted part way (a KeyboardInterrupt between two
        of its lists): every list is as long as before it."""
        before, self._before = self._before, None
        for column, length in before or ():
            del column[length:]
        for key in [k for k, v in self.metrics.items() if not v]:
            del self.metrics[key]

    def _extend(self, first_epoch: int, losses: NDArray[Any], corrects: NDArray[Any] | None,
                counted: int, lrs: NDArray[Any], seconds: NDArray[Any], n_samples: int) -> None:
        """Epochs run in one compiled call, from their arrays (no callbacks ran between them;
        accuracy is corrects / counted), kept as they are until a list is read: making a
        Python float per value per epoch costs more than a step of the seeds' network."""
        self._pending.append((first_epoch, losses, corrects, counted, lrs, seconds, n_samples))

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        lists = self._lists
        for first_epoch, losses, corrects, counted, lrs, seconds, n_samples in pending:
            k = len(losses)
            lists["epoch"].extend(range(first_epoch, first_epoch + k))
            lists["loss"].extend(np.asarray(losses, np.float64).tolist())
            if corrects is not None:
                lists["accuracy"].extend((np.asarray(corrects, np.float64) / counted).tolist())
            lists["lr"].extend(np.asarray(lrs, np.float64).tolist())
            times = np.asarray(seconds, np.float64)
            lists["seconds"].extend(times.tolist())
            rate = np.full(k, np.inf)
            np.divide(n_samples, times, out=rate, where=times > 0)
            lists["samples_per_sec"].extend(rate.tolist())

    def as_dict(self) -> dict[str, list[Any]]:
        """The history as a dict of lists (empty ones left out)."""
        keys = ("epoch", "loss", "accuracy", "val_loss", "lr", "seconds", "samples_per_sec")
        out = {k: list(getattr(self, k)) for k in keys if getattr(self, k)}
        out.update({k: list(v) for k, v in self.metrics.items()})
        return out

    def plot(self, ax: Axes | None = None) -> Axes:
        """Draws the loss and every recorded metric per epoch on `ax` (a matplotlib Axes; by
        default a new figure's), each validation curve dashed in its training curve's colour,
        and returns the Axes. Needs matplotlib: pip install "fastprop[plot]"."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError('History.plot needs matplotlib: pip install "fastprop[plot]"') \
                from None
        if ax is None:
            ax = plt.figure().add_subplot()
        curves = self.as_dict()
        epochs = curves.pop("epoch", [])
        for key in ("lr", "seconds", "samples_per_sec"):
            curves.pop(key, None)
        drawn = set()
        for name in [k for k in curves if not k.startswith("val_")]:
            line, = ax.plot(epochs, curves[name], label=name)
            drawn.add(name)
            if "val_" + name in curves:  # beside its training curve, dashed
                ax.plot(epochs, curves["val_" + name], linestyle="--", color=line.get_color(),
                        label="val_" + name)
                drawn.add("val_" + name)
        for name in [k for k in curves if k not in drawn]:  # validation-only metrics
            ax.plot(epochs, curves[name], linestyle="--", label=name)
        ax.set_xlabel("epoch")
        ax.legend()
        return ax

    def __len__(self) -> int:
        return len(self.epoch)

    def __str__(self) -> str:
        d = self.as_dict()
        cols = [k for k in d if k != "epoch"]
        rows = [["epoch"] + cols]
        for i, e in enumerate(self.epoch):
            rows.append([str(e)] + [f"{d[c][i]:,.0f}" if c == "samples_per_sec" else
                                    f"{d[c][i]:.6g}" for c in cols])
        widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
        return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(epochs=0)"
        last = ", ".join(f"{k}={getattr(self, k)[-1]:.6g}" for k in _COLUMNS if getattr(self, k))
        return f"History(epochs={len(self.epoch)}, {last})"
