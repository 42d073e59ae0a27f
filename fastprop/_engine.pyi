# Type stubs of the engine (fastprop/_engine.pyx): the compiled passes of one network over a
# model's flat parameter and gradient buffers. Arrays are C-contiguous, of the engine's dtype
# (float32 or float64) unless said otherwise; the engine checks every one it is handed.
# tests/test_typing.py checks these stubs against the module (mypy's stubtest).
import threading
from typing import Any, Iterable, List, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray
from typing_extensions import disjoint_base

from fastprop._kernels import Copies
from fastprop.sparse import CSR

_Floats = NDArray[np.floating[Any]]
_Int64s = NDArray[np.int64]
_Keep = Sequence[Sequence[_Floats]]         # per layer (Z, A, delta)

class _Layer(Protocol):
    """What the engine reads of a layer: fastprop.layers.LayerSpec has it."""
    @property
    def n_in(self) -> int: ...
    @property
    def n_out(self) -> int: ...
    @property
    def activation_code(self) -> int: ...
    @property
    def activation_param(self) -> float: ...
    @property
    def dropout_rate(self) -> float: ...

# X as the passes take it: C-contiguous rows of the engine's dtype, or CSR rows
_Rows = Union[_Floats, CSR]

# Reading passes run in chunks of this many rows (or the capacity, if smaller).
READ_ROWS: int

@disjoint_base
class Data:
    """Training data checked once by Engine.data: X, its targets for one loss, sample weights
    and the rows' order (None: X's order)."""
    @property
    def loss(self) -> int: ...
    @property
    def n(self) -> int: ...
    @property
    def order(self) -> Optional[_Int64s]: ...
    def set_order(self, order: _Int64s) -> None: ...
    def shuffle(self, seed: int, count: int) -> None: ...

class _Shape:
    n_in: int
    n_out: int
    def __init__(self, n_in: int, n_out: int) -> None: ...

@disjoint_base
class Engine:
    """The compiled passes of one network over one pair of flat buffers, with a workspace for
    batches of up to `capacity` rows."""
    @property
    def capacity(self) -> int: ...
    @property
    def dtype(self) -> np.dtype[Any]: ...
    def __new__(cls, layers: Iterable[_Layer], params: _Floats, grads: _Floats,
                capacity: int, dropout_state: NDArray[np.uint64],
                lock: Optional[threading.Lock] = ...) -> Engine: ...
    def bind_optimizer(self, hyper: dict[str, Any], state: List[_Floats], steps: _Int64s,
                       penalty: float = ...) -> None: ...
    @property
    def gradient_buffer(self) -> _Floats: ...
    @property
    def keeps_z(self) -> List[bool]: ...
    @property
    def updates_in_gemm(self) -> bool: ...
    def predict(self, X: _Rows, out: _Floats) -> _Floats: ...
    # (sum over rows of the loss, number correct)
    def loss(self, X: _Rows, Y: Optional[_Floats], labels: Optional[_Int64s],
             loss: int) -> Tuple[float, int]: ...
    # (mean loss, number correct); the gradient in the gradient buffer
    def gradients(self, X: _Rows, Y: Optional[_Floats], labels: Optional[_Int64s], loss: int,
                  weights: Optional[_Floats] = ..., penalty: float = ...,
                  keep: Optional[_Keep] = ...) -> Tuple[float, int]: ...
    def layer_shapes(self) -> List[_Shape]: ...
    def data(self, X: _Rows, Y: Optional[_Floats], labels: Optional[_Int64s],
             weights: Optional[_Floats], loss: int, order: Optional[_Int64s] = ...) -> Data: ...
    # (sum of batch loss times batch size, number correct, diverged batch or -1)
    def epoch(self, data: Data, lo: int, hi: int, batch_size: int, lr: float,
              check_params: bool = ...) -> Tuple[float, int, int]: ...
    # (epochs completed, the diverged epoch's bad batch, -2 or -1)
    def epochs(self, data: Data, batch_size: int, lrs: NDArray[np.float64],
               shuffle_state: Optional[NDArray[np.uint64]], losses: NDArray[np.float64],
               corrects: _Int64s, seconds: NDArray[np.float64],
               snapshot: Copies) -> Tuple[int, int]: ...
    # (its share of the batch's mean loss, its number correct)
    def part(self, data: Data, lo: int, rows: int, part_lo: int, part_hi: int,
             penalty: bool) -> Tuple[float, int]: ...
    def params_finite(self) -> bool: ...
    def update(self, lr: float, count_step: bool = ...) -> None: ...
