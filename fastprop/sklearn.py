"""scikit-learn estimators trained by fastprop: MLPClassifier and MLPRegressor.

Drop-in replacements for sklearn.neural_network's: the same parameters with the same defaults
and meanings, the same fitted attributes, the same initialization (Glorot uniform drawn from
random_state in scikit-learn's order), shuffling, early-stopping and tol rules, the same solvers
(sgd with scikit-learn's momentum, adam with its epsilon, lbfgs by scipy on the engine's
full-batch gradient), warnings and errors; plus dropout, dtype, n_threads and (for the
classifier) class_weight. They work in Pipeline, GridSearchCV and cross_val_score, and pickle.
Needs scikit-learn: pip install "fastprop[sklearn]".
"""
from __future__ import annotations

import numbers
import warnings
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence

import numpy as np
import scipy
import scipy.optimize

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, shuffle as _shuffle
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('fastprop.sklearn needs scikit-learn: pip install "fastprop[sklearn]"') \
        from exc

from . import loop, threads
from .layers import Dense, Dropout
from .losses import LOSSES
from .model import Sequential
from .optimizers import SGD, Adam, Optimizer
from .sparse import check_sparse, is_sparse

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import ActivationName, FloatArray, FloatDType, MatrixLike
    from typing_extensions import Self

    from .loop import Data, Epochs

__all__ = ["MLPClassifier", "MLPRegressor", "expected_failed_checks"]

_ACTIVATIONS: dict[str, ActivationName] = {"identity": "identity", "logistic": "sigmoid",
                                           "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("lbfgs", "sgd", "adam")
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed.")
# scipy 1.15 dropped L-BFGS-B's iprint (scikit-learn passes it to older versions only)
_LBFGS_IPRINT = tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 15)


def expected_failed_checks(estimator: object) -> dict[str, str]:
    """The scikit-learn estimator checks these estimators are expected to fail, with why (for
    parametrize_with_checks(..., expected_failed_checks=...)): none."""
    return {}


def _need(ok: object, name: str, what: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name}: expected {what}, got {value!r}")


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v: object, finite: bool = True) -> bool:
    """A real number (not a bool) that converts to a float, not NaN; finite unless
    finite=False."""
    if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
        return False
    try:
        v = float(v)
    except OverflowError:  # an integer beyond any float: no arithmetic would take it
        return False
    return bool(np.isfinite(v)) if finite else not np.isnan(v)


class _RateSchedule:
    """A stochastic solver's learning rate as scikit-learn's optimizers keep it (the estimator's
    `_optimizer`): `learning_rate`, moved at an epoch's end (invscaling; for adam, the step size
    lr sqrt(1 - beta_2^t) / (1 - beta_1^t) after t steps) or when the loss stops improving
    (adaptive). The engine's optimizer does the updates."""

    def __init__(self, estimator: _BaseMLP) -> None:
        self.solver, self.lr_schedule = estimator.solver, estimator.learning_rate
        self.learning_rate_init = estimator.learning_rate_init
        self.learning_rate = float(estimator.learning_rate_init)
        self.power_t, self.betas = estimator.power_t, (estimator.beta_1, estimator.beta_2)

    def rate(self) -> float:
        """The rate the engine takes this epoch (adam corrects its bias itself)."""
        return self.learning_rate if self.solver == "sgd" else float(self.learning_rate_init)

    def iteration_ends(self, time_step: int, steps: int) -> None:
        if self.solver == "adam" and steps:
            b1, b2 = self.betas
            self.learning_rate = self.learning_rate_init * np.sqrt(1 - b2 ** steps) / \
                (1 - b1 ** steps)
        elif self.solver == "sgd" and self.lr_schedule == "invscaling":
            try:
                self.learning_rate = float(self.learning_rate_init) / \
                    (time_step + 1) ** self.power_t
            except OverflowError:  # (t + 1) ** power_t beyond any float: the rate is 0
                self.learning_rate = 0.0

    def trigger_stopping(self, msg: str, verbose: bool | int) -> bool:
        """True to stop; with the adaptive schedule, the rate is divided by 5 first while it is
        above 1e-6."""
        if self.solver != "sgd" or self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

    def __repr__(self) -> str:
        return f"_RateSchedule({self.solver!r}, learning_rate={self.learning_rate})"


def _store(estimator: _BaseMLP, params: Mapping[str, Any]) -> None:
    """Stores __init__'s arguments as attributes, unchanged (scikit-learn's convention)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: checks, the network, the training loop."""

    # the fitted attributes, as scikit-learn's MLPs have them (set by fit)
    model_: Sequential         # the network (fastprop's own: not in scikit-learn's)
    n_features_in_: int
    n_outputs_: int
    n_layers_: int
    n_iter_: int
    t_: int
    loss_: float
    loss_curve_: list[float]
    best_loss_: float | None
    validation_scores_: list[float] | None
    best_validation_score_: float | None
    out_activation_: str

    # -----------------------------------------------------------------------------------------
    # Checks

    def _check_params(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if _is_int(sizes) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes: expected a tuple of positive integers, got "
                             f"{self.hidden_layer_sizes!r}") from None
        _need(all(_is_int(s) and s >= 1 for s in sizes), "hidden_layer_sizes",
              "a tuple of positive integers", self.hidden_layer_sizes)
        _need(self.activation in _ACTIVATIONS, "activation", f"one of {list(_ACTIVATIONS)}",
              self.activation)
        _need(self.solver in _SOLVERS, "solver", "'lbfgs', 'sgd' or 'adam'", self.solver)
        _need(self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1),
              "batch_size", "'auto' or a positive integer", self.batch_size)
        _need(self.learning_rate in ("constant", "invscaling", "adaptive"), "learning_rate",
              "'constant', 'invscaling' or 'adaptive'", self.learning_rate)
        # scikit-learn's ranges (infinite values where they are open above)
        for name, low, high, what in (
                ("alpha", 0, None, "a number >= 0"), ("learning_rate_init", 0, None,
                                                      "a positive number"),
                ("epsilon", 0, None, "a positive number"), ("power_t", 0, None, "a number >= 0"),
                ("tol", 0, None, "a number >= 0"), ("momentum", 0, 1, "a number in [0, 1]"),
                ("validation_fraction", 0, 1, "a number in [0, 1)"),
                ("beta_1", 0, 1, "a number in [0, 1)"), ("beta_2", 0, 1, "a number in [0, 1)"),
                ("dropout", 0, 1, "a number in [0, 1)")):
            v = getattr(self, name)
            positive = name in ("learning_rate_init", "epsilon")
            ok = _is_real(v, finite=False) and (v > low if positive else v >= low) and \
                (high is None or v < high or (name == "momentum" and v == high))
            _need(ok, name, what, v)
        for name in ("alpha", "learning_rate_init", "epsilon"):
            # scikit-learn accepts inf and ends with non-finite weights: refused here at once
            _need(_is_real(getattr(self, name)), name, "a finite number (inf makes the weights "
                  "non-finite)", getattr(self, name))
        for name in ("max_iter", "max_fun"):
            _need(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name,
                  "a positive integer", getattr(self, name))
        _need((_is_int(self.n_iter_no_change) and self.n_iter_no_change >= 1) or
              (_is_real(self.n_iter_no_change, finite=False) and self.n_iter_no_change == np.inf),
              "n_iter_no_change", "a positive integer or np.inf", self.n_iter_no_change)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _need(isinstance(getattr(self, name), (bool, np.bool_)), name, "True or False",
                  getattr(self, name))
        _need(isinstance(self.verbose, (bool, np.bool_)) or (_is_int(self.verbose) and
                                                             self.verbose >= 0),
              "verbose", "True, False or an integer >= 0", self.verbose)
        _need(self.solver != "lbfgs" or not self.dropout, "dropout",
              "0 with solver='lbfgs' (its line search needs a loss without random masks)",
              self.dropout)
        _need(any(self.dtype is d or (isinstance(self.dtype, (str, type)) and self.dtype == d)
                  for d in (None, "float32", "float64", np.float32, np.float64)), "dtype",
              "None (the dtype of X), 'float32' or 'float64'", self.dtype)
        _need(self.n_threads is None or (_is_int(self.n_threads) and self.n_threads >= 1),
              "n_threads", "None or a positive integer", self.n_threads)
        return [int(s) for s in sizes]

    def _dtype(self, X: Any) -> np.dtype[Any]:
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def _validate_X(self, X: MatrixLike, reset: bool) -> Any:
        return validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64,
                                                                           np.float32),
                             reset=reset)

    # -----------------------------------------------------------------------------------------
    # The network

    def _build(self, sizes: list[int], n_in: int, n_out: int, out_activation: ActivationName,
               dtype: np.dtype[Any], rng: Any) -> Sequential:
        """A model with scikit-learn's initial weights: Glorot uniform for weights and biases
        (factor 2 for logistic), drawn layer by layer from `rng` as scikit-learn draws them."""
        widths = [n_in] + sizes + [n_out]
        hidden = _ACTIVATIONS[self.activation]
        layers: list[Dense | Dropout] = []
        for k, (a, b) in enumerate(zip(widths, widths[1:])):
            last = k == len(widths) - 2
            layers.append(Dense(a, b, out_activation if last else hidden, init="zeros"))
            if not last and self.dropout:
                layers.append(Dropout(self.dropout))
        # the model's own seed (dropout masks) comes from random_state without drawing from it,
        # so that the draws below and the shuffles stay scikit-learn's
        seed = self.random_state if _is_int(self.random_state) else \
            int(rng.get_state()[1][0]) if hasattr(rng, "get_state") else None
        model = Sequential(layers, dtype=dtype, seed=seed)
        factor = 2.0 if self.activation == "logistic" else 6.0
        weights = []
        for a, b in zip(widths, widths[1:]):
            bound = np.sqrt(factor / (a + b))
            weights.append((rng.uniform(-bound, bound, (a, b)), rng.uniform(-bound, bound, b)))
        model.set_weights(weights)
        return model

    def _given_model(self, n_in: int, dtype: np.dtype[Any]) -> Sequential:
        """A model of the weights assigned to coefs_ and intercepts_ before any fit (as
        scikit-learn's estimators take them), for partial_fit or a warm start to continue."""
        coefs, intercepts = self.__dict__["_given_coefs"], self.__dict__["_given_intercepts"]
        coefs = [np.asarray(c, dtype=np.float64) for c in coefs]
        _need(len(coefs) == len(intercepts) >= 1 and all(c.ndim == 2 for c in coefs) and
              coefs[0].shape[0] == n_in, "coefs_", f"weight matrices from {n_in} features and "
              f"one intercept vector per layer", [c.shape for c in coefs])
        hidden, last = _ACTIVATIONS[self.activation], len(coefs) - 1
        model = Sequential([Dense(c.shape[0], c.shape[1], self._out_activation() if k == last
                                  else hidden, init="zeros") for k, c in enumerate(coefs)],
                           dtype=dtype, seed=self.random_state if _is_int(self.random_state)
                           else None)
        model.set_weights(list(zip(coefs, intercepts)))
        return model

    def _new_optimizer(self) -> Optimizer:
        """The engine's optimizer, with scikit-learn's update formulas."""
        if self.solver == "adam":
            adam = Adam(self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                        eps=self.epsilon)
            adam._eps_outside = True  # scikit-learn's placement of epsilon
            return adam
        momentum = float(self.momentum)
        sgd = SGD(self.learning_rate_init, momentum=momentum if momentum < 1 else 0.5,
                  nesterov=bool(self.nesterovs_momentum and momentum > 0))
        sgd._lr_in_velocity = True  # scikit-learn's velocity, which carries earlier rates
        if momentum == 1:  # past SGD's check, which stops below 1: scikit-learn's velocity
            object.__setattr__(sgd, "momentum", momentum)  # form takes 1 too
        return sgd

    # -----------------------------------------------------------------------------------------
    # Fitting

    def _fit(self, X: Any, y: Any, sample_weight: ArrayLike | None,
             incremental: bool, classes: ArrayLike | None = None) -> Self:
        sizes = self._check_params()
        if y is None:
            raise ValueError(f"y: {type(self).__name__} requires y to be passed, but the target "
                             f"y is None")
        first = not (incremental or self.warm_start) or not (
            hasattr(self, "model_") or "_given_coefs" in self.__dict__)
        X = self._validate_X(X, reset=first)
        y = self._validate_targets(X, y, first, incremental, classes)
        sample_weight = self._sample_weight(X, y, sample_weight)
        batch = X.shape[0] if self.solver == "lbfgs" else \
            min(200 if self.batch_size == "auto" else self.batch_size, X.shape[0])
        widths = [X.shape[1]] + list(sizes) + [y.shape[1] if y.ndim == 2 else 1]
        with threads.fit_limit(self.n_threads, threads.work_of(widths, batch)):
            return self._fit_checked(X, y, sample_weight, incremental, sizes, first)

    def _fit_checked(self, X: Any, Y: NDArray[np.float64],
                     sample_weight: NDArray[Any] | None, incremental: bool, sizes: list[int],
                     first: bool) -> Self:
        if self.early_stopping and incremental:
            raise ValueError("early_stopping: partial_fit does not support early_stopping=True")
        rng = check_random_state(self.random_state)  # each call, as scikit-learn's
        # everything that can fail runs before the estimator changes: the network is built, the
        # validation split drawn (in scikit-learn's order of draws) and the data cast first
        if first:
            model = self._build(sizes, X.shape[1], Y.shape[1], self._out_activation(),
                                self._dtype(X), rng)
        else:
            model = self.model_ if hasattr(self, "model_") else \
                self._given_model(X.shape[1], self._dtype(X))
        if self.solver == "lbfgs":  # no split, batches or shuffles: scikit-learn's lbfgs
            data = self._engine_data(X, Y, sample_weight, model.dtype)
            self._begin(first, incremental, model, sizes, Y)
            return self._lbfgs(model, data)
        X, Y, sample_weight, held_out = self._held_out(X, Y, sample_weight, rng)
        n = X.shape[0]
        batch_size = min(200, n) if self.batch_size == "auto" else self.batch_size
        if batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped")
        batch_size = int(np.clip(batch_size, 1, n))
        data = self._engine_data(X, Y, sample_weight, model.dtype)
        self._random_state = rng
        self._begin(first, incremental, model, sizes, Y)
        with model._exclusive("fit"):
            engine = model._bind(self._engine_optimizer, batch_size, penalty=float(self.alpha))
            steps = loop.Steps(engine, data, None, batch_size)
            diverged = self._epochs(loop.Epochs(model, steps, n, batch_size, "fit"), *held_out,
                                    np.arange(n, dtype=int), incremental)
        if self.early_stopping:  # the best weights, as scikit-learn restores them
            model.params = self._best_params
        elif diverged:  # scikit-learn's weights are then NaN: its error, from the loop's
            raise ValueError(_NON_FINITE) from diverged
        return self

    def _lbfgs(self, model: Sequential, data: Data) -> Self:
        """scikit-learn's lbfgs: scipy's L-BFGS-B with its options, on the mean loss (with the
        L2 term) and gradient of all the data from the engine, the parameters in the model's
        flat order (L-BFGS does not depend on the order of the coordinates)."""
        options: dict[str, Any] = {"maxfun": self.max_fun, "maxiter": self.max_iter,
                                   "gtol": self.tol}
        if _LBFGS_IPRINT:
            options["iprint"] = 1 if self.verbose is True or self.verbose >= 1 else -1
        with model._exclusive("fit"):
            result = scipy.optimize.minimize(
                loop.FullBatch(model, data, float(self.alpha)), model.params.astype(np.float64),
                method="L-BFGS-B", jac=True, options=options)
            model.params[...] = result.x
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)
        if not np.isfinite(model.params).all():
            raise ValueError(_NON_FINITE)
        return self

    def _loss_grad_lbfgs(self, packed_coef_inter: NDArray[np.float64], X: Any, y: ArrayLike,
                         sample_weight: ArrayLike | None, *workspace: Any
                         ) -> tuple[float, NDArray[np.float64]]:
        """scikit-learn's private lbfgs objective, for code that calls it: (loss, gradient) at
        parameters packed as scikit-learn packs them (every layer's weights, then every
        layer's biases), y binarized; the model takes those parameters. `workspace`
        (scikit-learn's preallocated lists) is not needed."""
        model = self.model_
        Y = np.asarray(y, dtype=np.float64)
        data = self._engine_data(X, Y.reshape(len(Y), -1), sample_weight, model.dtype)
        # the flat buffer holds W1 b1 W2 b2 ...; scikit-learn's vector W1 W2 ... b1 b2 ...
        starts = np.cumsum([0] + [l.n_in * l.n_out + l.n_out for l in model.layers])
        sizes = [l.n_in * l.n_out for l in model.layers]
        order = np.concatenate([np.arange(o, o + n) for o, n in zip(starts, sizes)] +
                               [np.arange(o + n, e) for o, n, e in zip(starts, sizes, starts[1:])])
        flat = np.empty(model.n_params)
        flat[order] = packed_coef_inter
        with model._exclusive("fit"):
            value, grad = loop.FullBatch(model, data, float(self.alpha))(flat)
        return value, grad[order]

    def _held_out(self, X: Any, Y: NDArray[np.float64], sample_weight: NDArray[Any] | None,
                  rng: Any) -> tuple[Any, NDArray[np.float64],
                                                       NDArray[Any] | None, tuple[Any, Any, Any]]:
        """(X, Y, sample_weight, (X_val, y_val, w_val)): with early stopping, the validation
        fraction held out as scikit-learn draws it; else all the data and Nones."""
        if not self.early_stopping:
            return X, Y, sample_weight, (None, None, None)
        # scikit-learn stratifies a single output by its boolean column (multiclass: not at all)
        stratify = Y.astype(bool) if is_classifier(self) and Y.shape[1] == 1 else None
        arrays = [X, Y] + ([sample_weight] if sample_weight is not None else [])
        try:
            parts = train_test_split(*arrays, random_state=rng,
                                     test_size=self.validation_fraction, stratify=stratify)
        except ValueError as exc:
            raise ValueError(f"validation_fraction: cannot hold out {self.validation_fraction} "
                             f"of {X.shape[0]} samples for early stopping: {exc}") from None
        X, X_val, Y, Y_val = parts[:4]
        w, w_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("validation_fraction: The validation set is too small. Increase "
                             "'validation_fraction' or the size of your dataset.")
        return X, Y, w, (X_val, self._decode(Y_val), w_val)

    def _engine_data(self, X: Any, Y: NDArray[np.float64], sample_weight: ArrayLike | None,
                     dtype: np.dtype[Any]) -> Data:
        """What the training loop's steps read: (X, Y, labels, weights, loss code), cast to the
        model's dtype once (sparse X as CSR rows, never made dense)."""
        if is_sparse(X):
            X = check_sparse("X", X, dtype)
        else:
            with np.errstate(over="ignore"):
                X = np.ascontiguousarray(X, dtype=dtype)
            if not np.isfinite(X).all():
                raise ValueError(f"X: expected values that fit in {dtype}, got some beyond its "
                                 f"range (they would be inf)")
        Y, labels = self._engine_targets(Y, dtype)
        if Y is not None and not np.isfinite(Y).all():
            raise ValueError(f"y: expected targets that fit in {dtype}, got some beyond its range")
        weights = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype)
        return X, Y, labels, weights, LOSSES[self._loss()]

    def _begin(self, first: bool, incremental: bool, model: Sequential, sizes: list[int],
               Y: NDArray[np.float64]) -> None:
        """The fitted attributes a fit starts from: all anew on a first fit (the stochastic
        solvers' own only for them, as scikit-learn's)."""
        self.model_ = model
        self.__dict__.pop("_given_coefs", None)
        self.__dict__.pop("_given_intercepts", None)
        self.n_outputs_ = Y.shape[1]
        if first:
            self.t_ = 0
            self.n_layers_ = len(sizes) + 2
            self.out_activation_ = {"sigmoid": "logistic"}.get(self._out_activation(),
                                                               self._out_activation())
            self._best_params = model.params.copy()
            if self.solver != "lbfgs":
                self.loss_curve_ = []
                self._no_improvement_count = 0
                early = self.early_stopping
                self.validation_scores_ = [] if early else None
                self.best_validation_score_ = -np.inf if early else None
                self.best_loss_ = None if early else np.inf
        if self.solver != "lbfgs" and (not incremental or not hasattr(self, "_optimizer")):
            self._optimizer = _RateSchedule(self)
            self._engine_optimizer = self._new_optimizer()
        self.n_iter_ = 0  # counts this call's epochs, as scikit-learn's does

    def _epochs(self, epochs: Epochs, X_val: Any, y_val: Any, w_val: NDArray[Any] | None,
                sample_idx: NDArray[np.int64], incremental: bool) -> FloatingPointError | None:
        """scikit-learn's rules around the training loop's epochs: its shuffles, the tol,
        early-stopping and adaptive rules. Returns the loop's FloatingPointError if training
        diverged (the model then keeps its weights from before the bad batch), else None."""
        curve, t = len(self.loss_curve_), self.t_
        try:
            return self._iterate(epochs, X_val, y_val, w_val, sample_idx, incremental)
        except KeyboardInterrupt:  # as scikit-learn: the estimator keeps its whole epochs
            kept = len(self.loss_curve_) - curve  # the epochs recorded, whatever was cut short
            epochs.keep(kept)
            self.n_iter_, self.t_ = kept, t + kept * epochs.n
            if self.loss_curve_:
                self.loss_ = self.loss_curve_[-1]
            warnings.warn("Training interrupted by user.")
            return None

    def _iterate(self, epochs: Epochs, X_val: Any, y_val: Any, w_val: NDArray[Any] | None,
                 sample_idx: NDArray[np.int64], incremental: bool) -> FloatingPointError | None:
        n, schedule = epochs.n, self._optimizer
        diverged: FloatingPointError | None = None
        for _ in range(1 if incremental else self.max_iter):
            if self.shuffle:
                sample_idx = _shuffle(sample_idx, random_state=self._random_state)
            try:
                total = np.nan if diverged else self._epoch(epochs, sample_idx, schedule.rate())
            except FloatingPointError as exc:
                # scikit-learn's weights become NaN and it trains on: every later loss and
                # score is NaN, no rule stops it before max_iter, and then it raises
                diverged, total = exc, np.nan
            self.loss_curve_.append(total / n)  # the epoch is recorded: the rest follows
            self.n_iter_ += 1
            self.loss_ = total / n
            self.t_ += n
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(X_val, y_val, w_val, diverged)
            state = self.model_._optimizer_state
            schedule.iteration_ends(self.t_, state.t)  # type: ignore[union-attr]
            if self._no_improvement_count > self.n_iter_no_change:
                msg = ("Validation score" if self.early_stopping else "Training loss") + \
                    " did not improve more than tol=%f for %d consecutive epochs." % (
                        self.tol, self.n_iter_no_change)
                if schedule.trigger_stopping(msg, self.verbose):
                    break
                self._no_improvement_count = 0
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                              "optimization hasn't converged yet." % self.max_iter,
                              ConvergenceWarning)
        return diverged

    def _epoch(self, epochs: Epochs, order: NDArray[Any], lr: float) -> float:
        """One epoch through the training loop, in the order scikit-learn draws; divergence
        stops it as it stops fit. The engine is bound once per fit (again only if it was
        rebuilt)."""
        model, steps = self.model_, epochs.steps
        if steps.engine is not model._engine:
            steps.rebind(model._bind(self._engine_optimizer, epochs.batch_size,
                                     penalty=float(self.alpha)))
        steps.set_order(np.ascontiguousarray(order, dtype=np.int64))
        total, _ = epochs.run(lr, self.n_iter_)
        return total

    def _update_no_improvement_count(self, X_val: Any, y_val: Any, w_val: NDArray[Any] | None,
                                     diverged: FloatingPointError | None) -> None:
        if self.early_stopping:
            score = np.nan if diverged is not None else \
                self._validation_score(X_val, y_val, w_val)
            self.validation_scores_.append(score)  # type: ignore[union-attr]  # (early stopping)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:  # type: ignore[operator]
                self.best_validation_score_ = score
                self._best_params = self.model_.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:  # type: ignore[operator]  # (a float here)
                self.best_loss_ = self.loss_curve_[-1]

    def _check_solver(self) -> bool:
        """partial_fit exists for the stochastic solvers only (scikit-learn's available_if)."""
        if self.solver not in ("sgd", "adam"):
            raise AttributeError("partial_fit is only available for stochastic optimizers. %s "
                                 "is not stochastic." % self.solver)
        return True

    def _sample_weight(self, X: Any, y: Any, sample_weight: ArrayLike | None
                       ) -> NDArray[Any] | None:
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64)

    def fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> Self:
        """Fits the network to (X, y), optionally weighting samples; returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    # -----------------------------------------------------------------------------------------
    # Predicting and attributes

    def _output(self, X: MatrixLike) -> FloatArray:
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        model = self.model_
        if is_sparse(X):
            return model.predict(X)  # CSR rows: never made dense
        return model.predict(np.ascontiguousarray(X, dtype=model.dtype))

    # Before a fit, lists assigned to coefs_ and intercepts_ are kept as they are (and may be
    # changed in place) until partial_fit or a warm start trains from them, as scikit-learn's.
    def _weights(self, given: str, k: int) -> list[Any]:
        if not hasattr(self, "model_"):
            if given not in self.__dict__:
                check_is_fitted(self, "model_")
            return self.__dict__[given]
        return [pair[k] for pair in self.model_.get_weights()]

    def _set_weights(self, given: str, k: int, values: Sequence[ArrayLike]) -> None:
        if not hasattr(self, "model_"):
            self.__dict__[given] = values
            return
        pairs: list[list[Any]] = [list(pair) for pair in self.model_.get_weights()]
        values = list(values)
        _need(len(values) == len(pairs), given[7:] + "_", f"{len(pairs)} arrays", len(values))
        for pair, value in zip(pairs, values):
            pair[k] = value
        self.model_.set_weights(pairs)

    @property
    def coefs_(self) -> list[FloatArray]:
        """The weight matrices (n_in, n_out) per layer (copies; assign a list to set them)."""
        return self._weights("_given_coefs", 0)

    @coefs_.setter
    def coefs_(self, value: Sequence[ArrayLike]) -> None:
        self._set_weights("_given_coefs", 0, value)

    @property
    def intercepts_(self) -> list[FloatArray]:
        """The bias vectors per layer (copies; assign a list to set them)."""
        return self._weights("_given_intercepts", 1)

    @intercepts_.setter
    def intercepts_(self, value: Sequence[ArrayLike]) -> None:
        self._set_weights("_given_intercepts", 1, value)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier, drop-in for sklearn.neural_network.MLPClassifier:
    binary (one logistic output), multiclass (softmax) and multilabel (logistic outputs)
    targets, string labels, sample_weight and class_weight ('balanced' or a dict)."""

    classes_: NDArray[Any]  # fitted

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: Literal["identity", "logistic", "tanh", "relu"] = "relu", *,
                 solver: Literal["lbfgs", "sgd", "adam"] = "adam", alpha: float = 0.0001,
                 batch_size: int | Literal["auto"] = "auto",
                 learning_rate: Literal["constant", "invscaling", "adaptive"] = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
                 tol: float = 1e-4, verbose: bool | int = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int | float = 10, max_fun: int = 15000, dropout: float = 0.0,
                 dtype: FloatDType | None = None, n_threads: int | None = None,
                 class_weight: Literal["balanced"] | Mapping[Any, float] | None = None) -> None:
        _store(self, locals())

    def _validate_targets(self, X: Any, y: Any, first: bool, incremental: bool,
                          classes: ArrayLike | None) -> NDArray[np.float64]:
        y = np.asarray(y) if not hasattr(y, "toarray") else y.toarray()
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected.",
                          DataConversionWarning)
            y = y.ravel()
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y: expected {X.shape[0]} labels (one per row of X), got "
                             f"{y.shape[0]}")
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"y: expected class labels (binary, multiclass or multilabel), "
                             f"got a target of type {kind!r}")
        if incremental:  # partial_fit: the classes come with the first call
            self._partial_fit_classes(y, classes)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            seen = unique_labels(y)
            if self.warm_start and not incremental and set(seen) != set(self.classes_):
                raise ValueError(f"y: warm_start can only be used where `y` has the same "
                                 f"classes as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {seen}")
            extra = np.setdiff1d(seen, self.classes_, assume_unique=True)
            if len(extra):
                raise ValueError(f"y: labels {list(extra)} are not among the classes "
                                 f"{list(self.classes_)} of the first call")
        self._y_raw = y
        return self._label_binarizer.transform(y).astype(np.float64)

    def _partial_fit_classes(self, y: NDArray[Any], classes: ArrayLike | None) -> None:
        """scikit-learn's rule: `classes` is needed on the first call, and must not change."""
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes: expected the list of all classes on the first call "
                                 "to partial_fit")
            self._label_binarizer = LabelBinarizer().fit(
                y if type_of_target(y).startswith("multilabel") else classes)
            self.classes_ = unique_labels(classes)
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"classes: expected the classes of the first call "
                             f"{list(self.classes_)}, got "
                             f"{list(classes)}")  # type: ignore[arg-type]

    def _sample_weight(self, X: Any, Y: Any, sample_weight: ArrayLike | None
                       ) -> NDArray[Any] | None:
        w = super()._sample_weight(X, Y, sample_weight)
        if self.class_weight is not None:
            if self._label_binarizer.y_type_ == "multilabel-indicator":
                raise ValueError("class_weight: not supported for multilabel targets")
            cw = compute_sample_weight(self.class_weight, self._y_raw)
            w = cw if w is None else w * cw
        return w

    def _out_activation(self) -> ActivationName:
        lb = self._label_binarizer
        return "softmax" if lb.y_type_ == "multiclass" else "sigmoid"

    def _loss(self) -> str:
        lb = self._label_binarizer
        return {"multiclass": "softmax_cross_entropy",
                "multilabel-indicator": "multilabel_binary_cross_entropy"}.get(
            lb.y_type_, "binary_cross_entropy")

    def _engine_targets(self, Y: NDArray[np.float64], dtype: np.dtype[Any]
                        ) -> tuple[FloatArray | None, NDArray[np.int64] | None]:
        if self._label_binarizer.y_type_ == "multiclass":
            return None, np.ascontiguousarray(Y.argmax(axis=1), dtype=np.int64)
        return np.ascontiguousarray(Y, dtype=dtype), None

    def _decode(self, Y: NDArray[Any]) -> Any:
        return self._label_binarizer.inverse_transform(Y)

    def _validation_score(self, X: Any, y: Any, w: NDArray[Any] | None) -> float:
        return self.score(X, y, sample_weight=w)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """One epoch on (X, y); `classes` (all the classes) is needed on the first call. For
        the stochastic solvers only."""
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X: MatrixLike) -> FloatArray:
        """Class probabilities (n_samples, n_classes); for a binary problem [1 - p, p]."""
        p = self._output(X)
        if self.n_outputs_ == 1 and self._label_binarizer.y_type_ == "binary":
            p = p.ravel()
            return np.column_stack([1 - p, p])
        return p

    def predict_log_proba(self, X: MatrixLike) -> FloatArray:
        """The log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: MatrixLike) -> NDArray[Any]:
        """The predicted classes (labels as given to fit)."""
        p = self._output(X)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return (p > 0.5).astype(int)
        # scikit-learn's decoding: argmax, or p > 0.5 for one logistic output; a single class
        # seen in fit is predicted throughout
        return self._label_binarizer.inverse_transform(p)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor, drop-in for sklearn.neural_network.MLPRegressor:
    identity output, squared error, single or multiple outputs, sample_weight."""

    def __init__(self, loss: Literal["squared_error"] = "squared_error",
                 hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: Literal["identity", "logistic", "tanh", "relu"] = "relu", *,
                 solver: Literal["lbfgs", "sgd", "adam"] = "adam", alpha: float = 0.0001,
                 batch_size: int | Literal["auto"] = "auto",
                 learning_rate: Literal["constant", "invscaling", "adaptive"] = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200,
                 shuffle: bool = True, random_state: int | np.random.RandomState | None = None,
                 tol: float = 1e-4, verbose: bool | int = False, warm_start: bool = False,
                 momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 n_iter_no_change: int | float = 10, max_fun: int = 15000, dropout: float = 0.0,
                 dtype: FloatDType | None = None, n_threads: int | None = None) -> None:
        _store(self, locals())

    def _check_params(self) -> list[int]:
        if self.loss == "poisson":
            raise ValueError("loss: 'poisson' is not offered by fastprop; use 'squared_error'")
        _need(self.loss == "squared_error", "loss", "'squared_error'", self.loss)
        return super()._check_params()

    def _validate_targets(self, X: Any, y: Any, first: bool, incremental: bool,
                          classes: ArrayLike | None) -> NDArray[np.float64]:
        y = np.asarray(y, dtype=np.float64) if not hasattr(y, "toarray") else y.toarray()
        if y.ndim == 0 or y.ndim > 2:
            raise ValueError(f"y: expected a 1-D or 2-D array of targets, got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y: expected {X.shape[0]} targets (one per row of X), got "
                             f"{y.shape[0]}")
        if not np.isfinite(y).all():
            raise ValueError("y: expected finite targets, got NaN or inf")
        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if not first and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y: expected {self.n_outputs_} outputs as in the first fit, got "
                             f"{Y.shape[1]}")
        return Y

    def _out_activation(self) -> ActivationName:
        return "identity"

    def _loss(self) -> str:
        return "half_mean_squared_error"

    def _engine_targets(self, Y: NDArray[np.float64], dtype: np.dtype[Any]
                        ) -> tuple[FloatArray | None, NDArray[np.int64] | None]:
        return np.ascontiguousarray(Y, dtype=dtype), None

    def _decode(self, Y: NDArray[Any]) -> Any:
        return Y

    def _validation_score(self, X: Any, y: Any, w: NDArray[Any] | None) -> float:
        pred = self.predict(X)
        if not np.isfinite(pred).all():  # scikit-learn's score of a diverging network
            return np.nan
        return r2_score(y.ravel() if y.shape[1] == 1 else y, pred, sample_weight=w)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: MatrixLike, y: ArrayLike, sample_weight: ArrayLike | None = None
                    ) -> Self:
        """One epoch on (X, y). For the stochastic solvers only."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: MatrixLike) -> FloatArray:
        """The predicted targets: (n_samples,) for one output, else (n_samples, n_outputs)."""
        p = self._output(X)
        return p.ravel() if self.n_outputs_ == 1 else p

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags

