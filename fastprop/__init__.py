"""fastprop: multilayer perceptrons trained by backpropagation, with compiled kernels.

    import fastprop as fp
    model = fp.Sequential([fp.Dense(2, 4, activation="sigmoid"),
                           fp.Dense(4, 1, activation="sigmoid")], seed=42)
    history = model.fit(X, y, loss="binary_cross_entropy", optimizer=fp.SGD(lr=0.1), epochs=100)
"""
from __future__ import annotations

import os as _os

try:
    from . import _kernels
except ImportError as exc:  # the source tree, without its compiled extension
    raise ImportError(
        f"fastprop's compiled extension is missing from {_os.path.dirname(__file__)}: this is "
        "the source tree, not an installed build. Run from another directory after "
        "`pip install .`, or build in place with `pip install -e .`") from exc

from . import callbacks, datasets, kernels, metrics, schedules
from .callbacks import Callback, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau
from .activations import ACTIVATIONS
from .explain import LayerTrace, Trace
from .gradcheck import GradcheckResult, gradcheck
from .history import History
from .layers import Dense, Dropout, LayerSpec
from .losses import LOSSES
from .model import Sequential, load
from .optimizers import SGD, Adam, AdamW, Optimizer, RMSprop
from .summary import Summary, SummaryRow

__version__ = "0.1.0"

__all__ = ["Sequential", "load", "Dense", "Dropout", "LayerSpec", "ACTIVATIONS", "LOSSES",
           "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "History", "Summary", "SummaryRow",
           "Trace", "LayerTrace", "gradcheck", "GradcheckResult", "Callback", "EarlyStopping",
           "ModelCheckpoint", "ReduceLROnPlateau", "callbacks", "schedules", "metrics", "datasets",
           "kernels", "__version__"]
