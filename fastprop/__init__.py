"""fastprop: multilayer perceptrons trained by backpropagation, with compiled kernels.

    import fastprop as fp
    model = fp.Sequential([fp.Dense(2, 4, activation="sigmoid"),
                           fp.Dense(4, 1, activation="sigmoid")], seed=42)
    history = model.fit(X, y, loss="binary_cross_entropy", optimizer=fp.SGD(lr=0.1), epochs=100)
"""
import os as _os

# libgomp reads OMP_WAIT_POLICY once, when it loads (here, with _kernels). By default its idle
# threads spin for a while after every parallel region, taking the cores from OpenBLAS's threads
# (a third slower on the wide benchmark); passive threads sleep at once. Set for that load only,
# and only when the user has not chosen: libraries loaded later see the environment unchanged.
_wait_policy = _os.environ.get("OMP_WAIT_POLICY")
if _wait_policy is None:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from . import _kernels
except ImportError as exc:  # the source tree, without its compiled extension
    raise ImportError(
        f"fastprop's compiled extension is missing from {_os.path.dirname(__file__)}: this is "
        "the source tree, not an installed build. Run from another directory after "
        "`pip install .`, or build in place with `pip install -e .`") from exc
finally:
    if _wait_policy is None:
        del _os.environ["OMP_WAIT_POLICY"]

from . import datasets, kernels
from .activations import ACTIVATIONS
from .explain import LayerTrace, Trace
from .gradcheck import GradcheckResult, gradcheck
from .history import History
from .layers import Dense
from .losses import LOSSES
from .model import Sequential
from .optimizers import SGD

__version__ = "0.1.0"

__all__ = ["Sequential", "Dense", "SGD", "History", "gradcheck", "GradcheckResult", "Trace",
           "LayerTrace", "kernels", "datasets", "ACTIVATIONS", "LOSSES", "__version__"]
