"""scikit-learn estimators trained by fastprop: MLPClassifier and MLPRegressor.

Drop-in replacements for sklearn.neural_network's: the same parameters with the same defaults
and meanings, the same fitted attributes, the same initialization (Glorot uniform drawn from
random_state in scikit-learn's order), shuffling, early-stopping and tol rules; plus dropout,
dtype, n_threads and (for the classifier) class_weight. They work in Pipeline, GridSearchCV and
cross_val_score, and pickle. Needs scikit-learn: pip install "fastprop[sklearn]".

Differences, documented: solver="lbfgs" is not offered; with a learning rate that changes
(invscaling, adaptive) momentum follows torch's formula (lr times the velocity) rather than
scikit-learn's (a velocity that carries earlier rates): the two agree exactly at a constant rate.
loss_ and loss_curve_ are scikit-learn's (for regression, the loss "half_mean_squared_error").
"""
import numbers
import warnings

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, shuffle as _shuffle
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import type_of_target, unique_labels
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('fastprop.sklearn needs scikit-learn: pip install "fastprop[sklearn]"') \
        from exc

from . import loop, threads
from .layers import Dense, Dropout
from .losses import LOSSES
from .model import Sequential
from .optimizers import SGD, Adam

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_PREDICT_CHUNK = 4096


def expected_failed_checks(estimator):
    """The scikit-learn estimator checks these estimators are expected to fail, with why (for
    parametrize_with_checks(..., expected_failed_checks=...)): none."""
    return {}


def _need(ok, name, what, value):
    if not ok:
        raise ValueError(f"{name}: expected {what}, got {value!r}")


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v):
    if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
        return False
    try:
        return bool(np.isfinite(float(v)))
    except OverflowError:
        return False


def _store(estimator, params):
    """Stores __init__'s arguments as attributes, unchanged (scikit-learn's convention)."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)


class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: checks, the network, the training loop."""


    # -----------------------------------------------------------------------------------------
    # Checks

    def _check_params(self):
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
        if self.solver == "lbfgs":
            raise ValueError("solver: 'lbfgs' is not offered by fastprop (its mini-batch engine "
                             "is for 'sgd' and 'adam'); use scikit-learn's MLP for lbfgs")
        _need(self.solver in ("sgd", "adam"), "solver", "'sgd' or 'adam'", self.solver)
        _need(_is_real(self.alpha) and self.alpha >= 0, "alpha", "a number >= 0", self.alpha)
        _need(self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1),
              "batch_size", "'auto' or a positive integer", self.batch_size)
        _need(self.learning_rate in ("constant", "invscaling", "adaptive"), "learning_rate",
              "'constant', 'invscaling' or 'adaptive'", self.learning_rate)
        for name in ("learning_rate_init", "epsilon"):
            _need(_is_real(getattr(self, name)) and getattr(self, name) > 0, name,
                  "a positive number", getattr(self, name))
        _need(_is_real(self.power_t) and self.power_t >= 0, "power_t", "a number >= 0",
              self.power_t)
        for name in ("max_iter", "n_iter_no_change", "max_fun"):
            _need(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name,
                  "a positive integer", getattr(self, name))
        _need(_is_real(self.tol) and self.tol >= 0, "tol", "a number >= 0", self.tol)
        for name in ("momentum", "beta_1", "beta_2", "validation_fraction", "dropout"):
            v = getattr(self, name)
            ok = _is_real(v) and (v > 0 if name == "validation_fraction" else v >= 0) and \
                (v <= 1 if name == "momentum" else v < 1)
            _need(ok, name, "a number in [0, 1)", v)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            _need(isinstance(getattr(self, name), (bool, np.bool_)), name, "True or False",
                  getattr(self, name))
        _need(any(self.dtype is d or (isinstance(self.dtype, (str, type)) and self.dtype == d)
                  for d in (None, "float32", "float64", np.float32, np.float64)), "dtype",
              "None (the dtype of X), 'float32' or 'float64'", self.dtype)
        _need(self.n_threads is None or (_is_int(self.n_threads) and self.n_threads >= 1),
              "n_threads", "None or a positive integer", self.n_threads)
        return [int(s) for s in sizes]

    def _dtype(self, X):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def _validate_X(self, X, reset):
        return validate_data(self, X, accept_sparse=["csr", "csc"], dtype=(np.float64,
                                                                           np.float32),
                             reset=reset)

    # -----------------------------------------------------------------------------------------
    # The network

    def _build(self, sizes, n_in, n_out, out_activation, dtype, rng):
        """A model with scikit-learn's initial weights: Glorot uniform for weights and biases
        (factor 2 for logistic), drawn layer by layer from `rng` as scikit-learn draws them."""
        widths = [n_in] + sizes + [n_out]
        hidden = _ACTIVATIONS[self.activation]
        layers = []
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

    def _optimizer(self):
        if self.solver == "adam":
            adam = Adam(self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                        eps=self.epsilon)
            adam._eps_outside = True  # scikit-learn's placement of epsilon
            return adam
        momentum = float(self.momentum) if self.momentum < 1 else 0.999999
        return SGD(self.learning_rate_init, momentum=momentum,
                   nesterov=bool(self.nesterovs_momentum and momentum > 0))

    # -----------------------------------------------------------------------------------------
    # Fitting

    def _fit(self, X, y, sample_weight, incremental, classes=None):
        sizes = self._check_params()
        if y is None:
            raise ValueError(f"y: {type(self).__name__} requires y to be passed, but the target "
                             f"y is None")
        first = not (incremental or self.warm_start) or not hasattr(self, "model_")
        X = self._validate_X(X, reset=first)
        y = self._validate_targets(X, y, first, incremental, classes)
        sample_weight = self._sample_weight(X, y, sample_weight)
        batch = min(200 if self.batch_size == "auto" else self.batch_size, X.shape[0])
        widths = [X.shape[1]] + list(sizes) + [y.shape[1] if y.ndim == 2 else 1]
        with threads.fit_limit(self.n_threads, threads.work_of(widths, batch)):
            return self._fit_checked(X, y, sample_weight, incremental, sizes, first)

    def _fit_checked(self, X, Y, sample_weight, incremental, sizes, first):
        if self.early_stopping and incremental:
            raise ValueError("early_stopping: partial_fit does not support early_stopping=True")
        rng = check_random_state(self.random_state)  # each call, as scikit-learn's
        # everything that can fail runs before the estimator changes: the network is built, the
        # validation split drawn (in scikit-learn's order of draws) and the data cast first
        model = self._build(sizes, X.shape[1], Y.shape[1], self._out_activation(),
                            self._dtype(X), rng) if first else self.model_
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
            engine = model._bind(self._optimizer_, batch_size, penalty=float(self.alpha))
            steps = (loop.Steps if isinstance(data[0], np.ndarray) else loop.SparseSteps)(
                engine, data, None, batch_size)
            self._epochs(loop.Epochs(model, steps, n, batch_size, "fit"), *held_out,
                         np.arange(n, dtype=int), incremental)
        if self.early_stopping and self._best_params is not None:
            model.params = self._best_params
        return self

    def _held_out(self, X, Y, sample_weight, rng):
        """(X, Y, sample_weight, (X_val, y_val, w_val)): with early stopping, the validation
        fraction held out as scikit-learn draws it; else all the data and Nones."""
        if not self.early_stopping:
            return X, Y, sample_weight, (None, None, None)
        stratify = Y if is_classifier(self) and Y.shape[1] == 1 else None
        arrays = [X, Y] + ([sample_weight] if sample_weight is not None else [])
        try:
            parts = train_test_split(*arrays, random_state=rng,
                                     test_size=self.validation_fraction, stratify=stratify)
        except ValueError as exc:
            raise ValueError(f"validation_fraction: cannot hold out {self.validation_fraction} "
                             f"of {X.shape[0]} samples for early stopping ({exc})") from None
        X, X_val, Y, Y_val = parts[:4]
        w, w_val = (parts[4], parts[5]) if sample_weight is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError("validation_fraction: the validation set is too small; "
                             "increase validation_fraction or the size of the data set")
        return X, Y, w, (X_val, self._decode(Y_val), w_val)

    def _engine_data(self, X, Y, sample_weight, dtype):
        """What the training loop's steps read: (X, Y, labels, weights, loss code), cast to the
        model's dtype once (sparse X as CSR, its batches made dense as they are taken)."""
        if hasattr(X, "toarray"):
            X = X.tocsr()  # batches are rows
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

    def _begin(self, first, incremental, model, sizes, Y):
        """The fitted attributes a fit starts from: all anew on a first fit."""
        if first:
            self.model_ = model
            self.t_ = 0
            self.n_layers_ = len(sizes) + 2
            self.n_outputs_ = Y.shape[1]
            self.out_activation_ = {"sigmoid": "logistic"}.get(self._out_activation(),
                                                               self._out_activation())
            self.loss_curve_ = []
            self._no_improvement_count = 0
            early = self.early_stopping
            self.validation_scores_ = [] if early else None
            self.best_validation_score_ = -np.inf if early else None
            self.best_loss_ = None if early else np.inf
        if first or not incremental or not hasattr(self, "_optimizer_"):
            self._optimizer_ = self._optimizer()
            self._lr = float(self.learning_rate_init)
        self.n_iter_ = 0  # counts this call's epochs, as scikit-learn's does

    def _epochs(self, epochs, X_val, y_val, w_val, sample_idx, incremental):
        """scikit-learn's rules around the training loop's epochs: its shuffles, the tol,
        early-stopping and adaptive rules."""
        try:
            self._iterate(epochs, X_val, y_val, w_val, sample_idx, incremental)
        except KeyboardInterrupt:  # as scikit-learn: the estimator keeps its whole epochs
            warnings.warn("Training interrupted by user.")

    def _iterate(self, epochs, X_val, y_val, w_val, sample_idx, incremental):
        n = epochs.n
        for _ in range(1 if incremental else self.max_iter):
            if self.shuffle:
                sample_idx = _shuffle(sample_idx, random_state=self._random_state)
            lr = self._lr if self.solver == "sgd" else float(self.learning_rate_init)
            total = self._epoch(epochs, sample_idx, lr)
            self.n_iter_ += 1
            self.loss_ = total / n
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
            self._update_no_improvement_count(X_val, y_val, w_val)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                try:
                    self._lr = self.learning_rate_init / float(self.t_ + 1) ** self.power_t
                except OverflowError:  # (t + 1) ** power_t beyond any float: the rate is 0
                    self._lr = 0.0
            if self._no_improvement_count > self.n_iter_no_change:
                if self.solver == "sgd" and self.learning_rate == "adaptive" and \
                        self._lr > 1e-6:
                    self._lr /= 5.0
                    self._no_improvement_count = 0
                    if self.verbose:
                        print("Setting learning rate to %f" % self._lr)
                else:
                    if self.verbose:
                        print("Training loss did not improve more than tol=%f for %d "
                              "consecutive epochs. Stopping." % (self.tol,
                                                                 self.n_iter_no_change))
                    break
            if incremental:
                break
            if self.n_iter_ == self.max_iter:
                warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                              "optimization hasn't converged yet." % self.max_iter,
                              ConvergenceWarning)

    def _epoch(self, epochs, order, lr):
        """One epoch through the training loop, in the order scikit-learn draws; divergence
        stops it as it stops fit. The engine is bound once per fit (again only if it was
        rebuilt)."""
        model, steps = self.model_, epochs.steps
        if steps.engine is not model._engine:
            steps.rebind(model._bind(self._optimizer_, epochs.batch_size,
                                     penalty=float(self.alpha)))
        steps.set_order(np.ascontiguousarray(order, dtype=np.int64))
        total, _ = epochs.run(lr, self.n_iter_)
        return total

    def _update_no_improvement_count(self, X_val, y_val, w_val):
        if self.early_stopping:
            score = self._validation_score(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.model_.params.copy()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    _best_params = None

    def _sample_weight(self, X, y, sample_weight):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64)

    def fit(self, X, y, sample_weight=None):
        """Fits the network to (X, y), optionally weighting samples; returns self."""
        self._best_params = None
        return self._fit(X, y, sample_weight, incremental=False)

    # -----------------------------------------------------------------------------------------
    # Predicting and attributes

    def _output(self, X):
        check_is_fitted(self, "model_")
        X = self._validate_X(X, reset=False)
        model = self.model_
        if not hasattr(X, "toarray"):
            return model.predict(np.ascontiguousarray(X, dtype=model.dtype))
        out = np.empty((X.shape[0], model.n_out), model.dtype)
        for lo in range(0, X.shape[0], _PREDICT_CHUNK):
            rows = X[lo:lo + _PREDICT_CHUNK].toarray()
            out[lo:lo + rows.shape[0]] = model.predict(rows)
        return out

    @property
    def coefs_(self):
        """The weight matrices (n_in, n_out) per layer (copies; assign a list to set them)."""
        check_is_fitted(self, "model_")
        return [l.W.copy() for l in self.model_.layers]

    @coefs_.setter
    def coefs_(self, values):
        check_is_fitted(self, "model_")
        self.model_.set_weights(list(zip(values, self.intercepts_)))

    @property
    def intercepts_(self):
        """The bias vectors per layer (copies; assign a list to set them)."""
        check_is_fitted(self, "model_")
        return [l.b.copy() for l in self.model_.layers]

    @intercepts_.setter
    def intercepts_(self, values):
        check_is_fitted(self, "model_")
        self.model_.set_weights(list(zip(self.coefs_, values)))

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier, drop-in for sklearn.neural_network.MLPClassifier:
    binary (one logistic output), multiclass (softmax) and multilabel (logistic outputs)
    targets, string labels, sample_weight and class_weight ('balanced' or a dict)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, dtype=None, n_threads=None, class_weight=None):
        _store(self, locals())

    def _validate_targets(self, X, y, first, incremental, classes):
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
        if first:
            self._label_binarizer = LabelBinarizer()
            if incremental:
                if classes is None:
                    raise ValueError("classes: expected the list of all classes on the first "
                                     "call to partial_fit")
                self._label_binarizer.fit(classes)
                extra = set(unique_labels(y)) - set(self._label_binarizer.classes_)
                if extra:
                    raise ValueError(f"y: labels {sorted(extra)} are not in classes")
            else:
                self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            if classes is not None and not np.array_equal(np.sort(classes), self.classes_):
                raise ValueError(f"classes: expected the classes of the first call "
                                 f"{list(self.classes_)}, got {list(classes)}")
            unseen = set(unique_labels(y)) - set(self.classes_)
            if unseen:
                raise ValueError(f"y: labels {sorted(unseen)} were not seen in the first fit; "
                                 f"expected labels among {list(self.classes_)}")
        self._y_raw = y
        return self._label_binarizer.transform(y).astype(np.float64)

    def _sample_weight(self, X, Y, sample_weight):
        w = super()._sample_weight(X, Y, sample_weight)
        if self.class_weight is not None:
            if self._label_binarizer.y_type_ == "multilabel-indicator":
                raise ValueError("class_weight: not supported for multilabel targets")
            cw = compute_sample_weight(self.class_weight, self._y_raw)
            w = cw if w is None else w * cw
        return w

    def _out_activation(self):
        lb = self._label_binarizer
        return "softmax" if lb.y_type_ == "multiclass" else "sigmoid"

    def _loss(self):
        lb = self._label_binarizer
        return {"multiclass": "softmax_cross_entropy",
                "multilabel-indicator": "multilabel_binary_cross_entropy"}.get(
            lb.y_type_, "binary_cross_entropy")

    def _engine_targets(self, Y, dtype):
        if self._label_binarizer.y_type_ == "multiclass":
            return None, np.ascontiguousarray(Y.argmax(axis=1), dtype=np.int64)
        return np.ascontiguousarray(Y, dtype=dtype), None

    def _decode(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _validation_score(self, X, y, w):
        return self.score(X, y, sample_weight=w)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on (X, y); `classes` (all the classes) is needed on the first call."""
        if self.solver not in ("sgd", "adam"):
            self._check_params()
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); for a binary problem [1 - p, p]."""
        p = self._output(X)
        if self.n_outputs_ == 1 and self._label_binarizer.y_type_ == "binary":
            p = p.ravel()
            return np.column_stack([1 - p, p])
        return p

    def predict_log_proba(self, X):
        """The log of predict_proba."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The predicted classes (labels as given to fit)."""
        p = self._output(X)
        if self._label_binarizer.y_type_ == "multilabel-indicator":
            return (p > 0.5).astype(int)
        # scikit-learn's decoding: argmax, or p > 0.5 for one logistic output; a single class
        # seen in fit is predicted throughout
        return self._label_binarizer.inverse_transform(p)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor, drop-in for sklearn.neural_network.MLPRegressor:
    identity output, squared error, single or multiple outputs, sample_weight."""

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, dtype=None, n_threads=None):
        _store(self, locals())

    def _check_params(self):
        if self.loss == "poisson":
            raise ValueError("loss: 'poisson' is not offered by fastprop; use 'squared_error'")
        _need(self.loss == "squared_error", "loss", "'squared_error'", self.loss)
        return super()._check_params()

    def _validate_targets(self, X, y, first, incremental, classes):
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

    def _out_activation(self):
        return "identity"

    def _loss(self):
        return "half_mean_squared_error"

    def _engine_targets(self, Y, dtype):
        return np.ascontiguousarray(Y, dtype=dtype), None

    def _decode(self, Y):
        return Y

    def _validation_score(self, X, y, w):
        return self.score(X, y.ravel() if y.shape[1] == 1 else y, sample_weight=w)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on (X, y)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """The predicted targets: (n_samples,) for one output, else (n_samples, n_outputs)."""
        p = self._output(X)
        return p.ravel() if self.n_outputs_ == 1 else p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags

