"""The types of fastprop's annotations, named once: what an argument may be (an array, a sparse
matrix, an activation's or a loss's name) and what a callback or a communicator must offer.

The package's modules import these under TYPE_CHECKING only, so nothing here runs when fastprop
is used; tests/test_typing.py checks the names below against the tables they come from.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal, Protocol, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

# The names an activation or a loss is known by are written beside their tables, so that adding
# one touches no Python file but its table's.
from .activations import ActivationName
from .losses import LossName

if TYPE_CHECKING:
    import scipy.sparse
    from mpi4py.MPI import Intracomm

    from .distributed import Communicator
    from .model import Sequential
    from .sparse import CSR

__all__ = ["ArrayLike", "MatrixLike", "FloatArray", "Rows", "FloatDType", "ActivationName", "LossName",
           "InitName", "Verbosity", "Schedule", "Metric", "Logs", "EpochEndCallback", "CommLike"]

# X, wherever a model takes it (fit, predict, evaluate, ...): an array or, as that comes, a
# scipy.sparse matrix or array. Widening what X may be changes this alias only.
MatrixLike = Union[ArrayLike, "scipy.sparse.spmatrix", "scipy.sparse.sparray"]

# What a model computes in and returns: float32 or float64 arrays, its dtype.
FloatArray = NDArray[np.floating[Any]]

# X once checked: C-contiguous rows of the model's dtype, or CSR rows (fastprop.sparse).
Rows = Union[FloatArray, "CSR"]

# A model's dtype, as Sequential(dtype=...) takes it.
FloatDType = Union[Literal["float32", "float64"], "type[np.float32]", "type[np.float64]",
                   "np.dtype[Any]"]

# Dense's initializers by name (fastprop.layers.INITIALIZERS); an array is taken too.
InitName = Literal["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros"]

# fit's verbose: 0 silent, 1 a line per epoch (and a bar on a terminal), 2 a line per epoch.
Verbosity = Union[Literal[0, 1, 2], bool]

# A learning-rate schedule: the rate of an epoch (from 0) given the optimizer's lr.
Schedule = Callable[[int, float], float]

# A metric (fastprop.metrics): its value for the targets as given to fit and the predictions.
Metric = Callable[[ArrayLike, ArrayLike], float]

# What fit hands a callback after each epoch: 'loss', 'accuracy', 'val_loss', 'lr', ...
Logs = dict[str, Any]


class EpochEndCallback(Protocol):
    """What fit's `callbacks` must offer (fastprop.Callback offers it, with the other hooks):
    on_epoch_end, whose true result stops training."""

    def on_epoch_end(self, model: Sequential, epoch: int, logs: Logs) -> object: ...


# fit's comm: a fastprop.distributed.Communicator or an mpi4py intracommunicator.
CommLike = Union["Communicator", "Intracomm"]
