"""model.summary(): the network as a table, its parameters, and the memory a fit needs.

The workspace is what the engine allocates for batches of `batch_size` rows (Engine.__cinit__ in
_engine.pyx): per layer its activations A and deltas dZ, its pre-activations Z if it keeps them
(the output layer, and the layers whose derivative reads Z), and after a Dropout the mask and the
dropped activations; then one bias gradient of the widest layer and a gathered batch: X's rows,
Y's rows, their labels (int64) and two vectors of sample weights. tests/test_summary.py checks
every figure against the arrays a fit at that batch size holds.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .activations import TABLE as _ACTIVATIONS
from ._validation import check_positive_int
from .optimizers import SGD, Optimizer

if TYPE_CHECKING:
    from .layers import LayerSpec
    from .model import Sequential

_LABEL_BYTES = np.dtype(np.int64).itemsize  # a gathered batch's labels
_COUNTER_BYTES = 2 * np.dtype(np.uint64).itemsize  # [seed, count]: dropout's, the shuffles'


class SummaryRow(NamedTuple):
    """One row of a Summary: a Dense layer, or the Dropout that follows one."""
    kind: str                              # 'Dense' or 'Dropout'
    activation: Optional[str]              # the Dense layer's; None for a Dropout
    output_shape: Tuple[None, int]         # (batch, width): the batch may have any size
    n_params: int
    rate: float = 0.0                      # the Dropout's rate


def workspace_bytes(architecture: Sequence[LayerSpec], rows: int, itemsize: int) -> int:
    """The bytes of the engine's workspace for batches of `rows` rows, the parameters of
    `itemsize` bytes (4: float32, 8: float64)."""
    floats, widest, last = 0, 1, len(architecture) - 1
    for l, spec in enumerate(architecture):
        keeps_z = _ACTIVATIONS[spec.activation].needs_z or l == last
        # A and dZ, Z where kept, and after a Dropout its mask and the dropped activations
        floats += rows * spec.n_out * (2 + keeps_z + 2 * (spec.dropout_rate > 0))
        widest = max(widest, spec.n_out)
    # the bias gradient of a layer; the gathered batch's Y and two sample-weight vectors
    floats += widest + rows * (architecture[-1].n_out + 2)
    return floats * itemsize + rows * _LABEL_BYTES + gather_bytes(architecture, rows, itemsize)


def gather_bytes(architecture: Sequence[LayerSpec], rows: int, itemsize: int) -> int:
    """The bytes of the batch of dense X rows that a fit gathers when it takes them in a
    shuffled order: part of the workspace of such a fit, not of reading passes, of a fit on
    sparse X (its rows are read where they are) or of one whose batch holds every row."""
    return rows * architecture[0].n_in * itemsize


class Summary:
    """What Sequential.summary returns: the table of the layers (`layers`, SummaryRow each), the
    parameters (`total_params`, `param_bytes`) and the bytes a fit at `batch_size` holds:
    `param_bytes`, `grad_bytes`, `optimizer_bytes` (its buffers and step count),
    `snapshot_bytes` (the training state kept to undo a diverged batch) and `workspace_bytes`
    (the engine's buffers), `fit_bytes` in all. Printed, or shown in a notebook, it is a
    table."""

    def __init__(self, model: Sequential, batch_size: int = 32,
                 optimizer: Optimizer | None = None) -> None:
        self.batch_size = check_positive_int("batch_size", batch_size)
        if optimizer is None:  # what fit would train with
            optimizer = model.optimizer if model.optimizer is not None else SGD()
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastprop optimizer such as fastprop.SGD, "
                            f"got {type(optimizer).__name__}")
        self.dtype = model.dtype.name
        self.optimizer = type(optimizer).__name__
        rows = []
        for layer in model.layers:
            rows.append(SummaryRow("Dense", layer.activation, (None, layer.n_out),
                                   layer.n_params))
            if layer.dropout_rate:
                rows.append(SummaryRow("Dropout", None, (None, layer.n_out), 0,
                                       layer.dropout_rate))
        self.layers = tuple(rows)
        self.total_params = model.n_params
        self.param_bytes = model.params.nbytes
        self.grad_bytes = model.grads.nbytes
        self.optimizer_bytes = (optimizer.n_state * self.param_bytes +
                                np.dtype(np.int64).itemsize)  # its buffers and step count
        # the snapshot copies the parameters, the optimizer's state and two counters
        self.snapshot_bytes = self.param_bytes + self.optimizer_bytes + 2 * _COUNTER_BYTES
        self.workspace_bytes = workspace_bytes(model.architecture, self.batch_size,
                                               model.dtype.itemsize)
        # of which the gathered dense X rows of a shuffled fit (see gather_bytes)
        self.gather_bytes = gather_bytes(model.architecture, self.batch_size,
                                         model.dtype.itemsize)
        self.fit_bytes = (self.param_bytes + self.grad_bytes + self.optimizer_bytes +
                          self.snapshot_bytes + self.workspace_bytes)

    def __str__(self) -> str:
        headers = ["layer", "kind", "activation", "output shape", "params"]
        cells, dense = [], 0
        for row in self.layers:
            dense += row.kind == "Dense"
            cells.append([str(dense) if row.kind == "Dense" else "",
                          row.kind if row.kind == "Dense" else f"Dropout({row.rate:g})",
                          row.activation or "", f"(None, {row.output_shape[1]})",
                          f"{row.n_params:,}"])
        widths = [max(len(h), *(len(c[k]) for c in cells)) for k, h in enumerate(headers)]

        def line(values: list[str]) -> str:
            return "  ".join(v.rjust(w) if k in (0, 4) else v.ljust(w)
                             for k, (v, w) in enumerate(zip(values, widths))).rstrip()

        out = [line(headers), line(["-" * w for w in widths])] + [line(c) for c in cells]
        out.append(f"{self.total_params:,} parameters: {_size(self.param_bytes)} of {self.dtype}")
        out.append(f"a fit at batch_size={self.batch_size} with {self.optimizer} holds "
                   f"{_size(self.fit_bytes)}:")
        parts = [("parameters", self.param_bytes, ""), ("gradients", self.grad_bytes, ""),
                 ("optimizer state", self.optimizer_bytes, "its buffers and step count"),
                 ("snapshot", self.snapshot_bytes, "the state kept to undo a diverged batch"),
                 ("workspace", self.workspace_bytes,
                  f"the engine's buffers for {self.batch_size} rows")]
        sizes = [_size(n) for _, n, _ in parts]
        width = max(map(len, sizes))
        out += [f"  {name:<17}{size:>{width}}" + (f"  {why}" if why else "")
                for (name, _, why), size in zip(parts, sizes)]
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"


def _size(n_bytes: int) -> str:
    """'512 B', '1.5 KiB', '3.25 MiB', ...: bytes in binary units, three significant digits."""
    value, unit = float(n_bytes), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{n_bytes} B" if unit == "B" else f"{value:.3g} {unit}"
