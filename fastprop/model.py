"""Sequential: the model. Its layers, the flat parameter and gradient buffers their W and b view,
its weights, and the engine passes that read them (predict, evaluate, gradients, a step).

All parameters live in `model.params` (and their gradients in `model.grads`), so that an
optimizer step, a save or an all-reduce is one operation over one buffer. Training loops live in
training.py, the file format in io.py, PyTorch conversion in torch_interop.py.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from . import io, loop, threads, torch_interop, training
from ._engine import READ_ROWS, Engine
from ._validation import (as_numeric_array, check_dtype, check_finite, check_matrix, check_path,
                          check_seed)
from .layers import Dense, Dropout, LayerSpec
from .losses import (CLASSIFICATION, LOSSES, PER_ELEMENT, canonical_loss, check_output_activation,
                     prepare_targets)
from .optimizers import Optimizer, OptimizerState
from .sparse import CSR, check_sparse, is_sparse
from .summary import Summary

if TYPE_CHECKING:
    import os
    from types import TracebackType

    from numpy.typing import ArrayLike, NDArray

    from ._typing import FloatArray, FloatDType, LossName, MatrixLike, Rows
    from .explain import Trace
    from .loop import Snapshot


def _fold_dropout(given: Iterable[Dense | Dropout]) -> list[tuple[Dense, float]]:
    """[(Dense, dropout rate after it)] from a list of Dense and Dropout layers, checked
    throughout; nothing is changed here."""
    if isinstance(given, (Dense, Dropout)):
        raise TypeError("layers: expected a list of layers, got a single "
                        f"{type(given).__name__}; write Sequential([layer])")
    try:
        given = list(given)
    except TypeError:
        raise TypeError(f"layers: expected a list of fastprop.Dense (and Dropout) layers, got "
                        f"{type(given).__name__}") from None
    if not given:
        raise ValueError("layers: expected at least one layer, got an empty list")
    folded: list[Any] = []  # [Dense, dropout rate after it, index in `given`]
    for i, layer in enumerate(given):
        if isinstance(layer, Dropout):
            if not folded or isinstance(given[i - 1], Dropout):
                raise ValueError(f"layers[{i}]: a Dropout must follow a Dense layer")
            if i == len(given) - 1:
                raise ValueError(f"layers[{i}]: a Dropout cannot follow the output layer")
            folded[-1][1] = layer.rate
        elif isinstance(layer, Dense):
            if layer.in_model:
                raise ValueError(f"layers[{i}]: this layer already belongs to a model; create a "
                                 f"new one")
            if any(layer is d for d, _, _ in folded):
                raise ValueError(f"layers[{i}]: the same layer appears twice")
            folded.append([layer, 0.0, i])
        else:
            raise TypeError(f"layers[{i}]: expected a fastprop.Dense or Dropout, got "
                            f"{type(layer).__name__}")
    for k, (layer, _, i) in enumerate(folded):
        if k and folded[k - 1][0].n_out != layer.n_in:
            prev = folded[k - 1]
            raise ValueError(f"layers[{i}]: expected n_in={prev[0].n_out} (the n_out of "
                             f"layers[{prev[2]}]), got n_in={layer.n_in}")
        if layer.activation == "softmax" and k != len(folded) - 1:
            raise ValueError(f"layers[{i}]: softmax is only supported as the output activation")
    return [(layer, rate) for layer, rate, _ in folded]


class Sequential:
    """A multilayer perceptron: layers applied in order, trained by backpropagation.

    Parameters
    ----------
    layers : list of Dense (and Dropout)
        Consecutive layers must agree: layer k's n_out is layer k+1's n_in.
    dtype : 'float32' or 'float64'
        The dtype of parameters, activations and gradients.
    seed : int, optional
        Seeds the initial weights, the dropout masks and the default shuffling of `fit`.
    """

    # reading passes (predict, evaluate, gradients, explain) run in chunks of this many rows:
    # their workspace stays bounded, and a row's result does not depend on the engine's history
    _CHUNK_ROWS = READ_ROWS

    def __init__(self, layers: Iterable[Dense | Dropout], dtype: FloatDType = "float32",
                 seed: int | None = None, *, _initialize: bool = True) -> None:
        folded = _fold_dropout(layers)
        self._dtype = check_dtype(dtype)
        self._seed = check_seed("seed", seed)
        self._rng = np.random.default_rng(self.seed)
        for i, (layer, _) in enumerate(folded):
            if layer._init_array is not None:
                with np.errstate(over="ignore"):
                    check_finite(f"layers[{i}].init", layer._init_array.astype(self._dtype))
        n_params = sum(layer.n_params for layer, _ in folded)
        try:
            self._params = np.zeros(n_params, self.dtype)
            self._grads = np.zeros(n_params, self.dtype)
        except (MemoryError, ValueError):
            raise ValueError(f"layers: a model of {n_params:,} parameters needs "
                             f"{2 * n_params * self.dtype.itemsize / 2**30:,.1f} GiB for its "
                             f"parameters and gradients, more than can be allocated") from None
        offset = 0  # every check has passed: from here on the layers become this model's
        for layer, rate in folded:
            offset = layer._attach(self._params, self._grads, offset, rate)
            if _initialize:
                layer._initialize(self._rng)
        self._layers = tuple(layer for layer, _ in folded)
        # a row's multiply-adds, forward (threads.step_work)
        self._row_work = threads.work_of([self._layers[0].n_in] +
                                         [layer.n_out for layer in self._layers], 1)
        # [dropout seed, training steps taken]: the engine reads the seed and counts the steps
        self._dropout_state = np.array([self._rng.integers(2**63), 0], np.uint64)
        # [seed, epochs shuffled]: fit's counter-based shuffles, saved and resumed with the model
        self._shuffle_state = np.array([self._rng.integers(2**63), 0], np.uint64)
        self._engine: Engine | None = None
        # (engine, hyperparameters, state, penalty) bound last (_bind)
        self._bound: tuple[Engine, dict[str, Any], OptimizerState, float] | None = None
        self._training = threading.Lock()  # held by fit: one training at a time
        self._passes = threading.Lock()  # held by every engine pass: one pass at a time
        self._snapshot: Snapshot | None = None  # of the current training state (_snapshot_for)
        self.optimizer: Optimizer | None = None  # the optimizer of the last training, with ...
        self._optimizer_state: OptimizerState | None = None  # ... its state on this model

    # ---------------------------------------------------------------------------------------
    # Introspection and weights

    # What the model is made of is fixed when it is built: the engine points into its buffers.
    @property
    def layers(self) -> tuple[Dense, ...]:
        """The Dense layers, in order (a tuple)."""
        return self._layers

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of parameters and activations."""
        return self._dtype

    @property
    def seed(self) -> int | None:
        """The seed the model was built with."""
        return self._seed

    @property
    def architecture(self) -> tuple[LayerSpec, ...]:
        """The network's description, one LayerSpec per Dense layer: what the engine is built
        from and what a saved file records."""
        return tuple(layer.spec for layer in self.layers)

    @property
    def n_in(self) -> int:
        """The input width: the first layer's n_in."""
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        """The output width: the last layer's n_out."""
        return self.layers[-1].n_out

    @property
    def n_params(self) -> int:
        """The number of parameters (every W and b)."""
        return self._params.size

    def _set_buffer(self, name: str, target: FloatArray, value: ArrayLike) -> None:
        arr = as_numeric_array(name, value)
        if arr.shape != target.shape:
            raise ValueError(f"{name}: expected shape {target.shape} (this model's flat buffer), "
                             f"got shape {arr.shape}")
        with np.errstate(over="ignore"):
            arr = arr.astype(self.dtype)
        check_finite(name, arr)  # after the cast: 1e39 is inf in float32
        target[...] = arr

    @property
    def params(self) -> FloatArray:
        """The flat parameter buffer; assigning copies into it, after checks."""
        return self._params

    @params.setter
    def params(self, value: ArrayLike) -> None:
        self._set_buffer("params", self._params, value)

    @property
    def grads(self) -> FloatArray:
        """The flat gradient buffer (same layout); assigning copies into it."""
        return self._grads

    @grads.setter
    def grads(self, value: ArrayLike) -> None:
        self._set_buffer("grads", self._grads, value)

    @property
    def _dropout_seed(self) -> int:
        return int(self._dropout_state[0])

    @property
    def _dropout_step(self) -> int:
        """Training steps taken: the counter of the dropout masks."""
        return int(self._dropout_state[1])

    def parameters(self) -> list[FloatArray]:
        """[W1, b1, W2, b2, ...]: views into the flat parameter buffer."""
        return [p for l in self.layers for p in (l.W, l.b)]

    def zero_grad(self) -> None:
        """Sets every gradient to zero."""
        self._grads[...] = 0

    def get_weights(self) -> list[tuple[FloatArray, FloatArray]]:
        """[(W, b), ...] per layer, as copies."""
        return [(l.W.copy(), l.b.copy()) for l in self.layers]

    def set_weights(self, weights: Iterable[Sequence[ArrayLike]]) -> None:
        """Sets every layer's (W, b) from a list like the one get_weights returns. Every pair is
        checked before any is written: a rejected call leaves the weights as they were."""
        try:
            weights = list(weights)
        except TypeError:
            raise TypeError(f"weights: expected a list of (W, b) pairs, got "
                            f"{type(weights).__name__}") from None
        if len(weights) != len(self.layers):
            raise ValueError(f"weights: expected {len(self.layers)} (W, b) pairs, got {len(weights)}")
        checked = []
        for i, (layer, pair) in enumerate(zip(self.layers, weights)):
            try:
                W, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"weights[{i}]: expected a (W, b) pair") from None
            checked.append((layer._checked("W", W, (layer.n_in, layer.n_out), f"weights[{i}][0] (W)"),
                            layer._checked("b", b, (layer.n_out,), f"weights[{i}][1] (b)")))
        for layer, (W, b) in zip(self.layers, checked):
            layer.W, layer.b = W, b

    def copy(self, dtype: FloatDType | None = None) -> Sequential:
        """An independent model with the same layers, weights and dropout state (converted to
        `dtype`); without the optimizer state (pickle or copy.deepcopy keep that too)."""
        clone = Sequential.from_architecture(self.architecture, self.dtype if dtype is None
                                             else dtype, self.seed,
                                             [l.init for l in self.layers])
        with np.errstate(over="ignore"):
            params = self._params.astype(clone.dtype)
        check_finite("dtype", params)  # float64 weights beyond float32's range
        clone._params[...] = params
        clone._dropout_state[...] = self._dropout_state
        clone._shuffle_state[...] = self._shuffle_state
        return clone

    @classmethod
    def from_architecture(cls, architecture: Iterable[Sequence[Any]],
                          dtype: FloatDType = "float32", seed: int | None = None,
                          inits: Sequence[str] | None = None, *, _initialize: bool = True
                          ) -> Sequential:
        """A model of fresh layers built from LayerSpecs (see `architecture`). With
        _initialize=False (for a reader that fills every parameter) no weights are drawn: the
        parameters stay at zero, their pages untouched until written."""
        layers: list[Dense | Dropout] = []
        for k, given in enumerate(architecture):
            spec = LayerSpec(*given)
            init = "zeros" if inits is None or inits[k] == "array" else inits[k]
            # (a spec's activation is a name Dense checks: the file reader's are any string)
            layers.append(Dense(spec.n_in, spec.n_out, spec.activation,  # type: ignore[arg-type]
                                negative_slope=spec.negative_slope, alpha=spec.alpha, init=init))
            if spec.dropout_rate:
                layers.append(Dropout(spec.dropout_rate))
        return cls(layers, dtype=dtype, seed=seed, _initialize=_initialize)

    def __repr__(self) -> str:
        inner = ",\n".join(f"    {l!r}" + (f",\n    Dropout({l.dropout_rate})" if l.dropout_rate
                                            else "") for l in self.layers)
        return f"Sequential([\n{inner}\n], dtype={self.dtype.name!r}, n_params={self.n_params})"

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # pickle, copy.deepcopy and joblib go through the file format of save: no internals
        return _from_bytes, (io.to_bytes(self),)

    # ---------------------------------------------------------------------------------------
    # Checking inputs

    def _check_X(self, X: MatrixLike, name: str = "X") -> Rows:
        """X checked: a C-contiguous array of the model's dtype, or (from scipy.sparse) CSR
        rows, never made dense."""
        if type(X) is not np.ndarray and is_sparse(X):
            return check_sparse(name, X, self.dtype, n_cols=self.n_in)
        return np.ascontiguousarray(check_matrix(name, X, self.dtype, n_cols=self.n_in))

    def _check_loss(self, loss: LossName) -> LossName:
        name = canonical_loss(loss)
        check_output_activation(name, self.layers[-1].activation)
        return name

    def _check_data(self, X: MatrixLike, y: ArrayLike, loss: LossName,
                    names: tuple[str, str] = ("X", "y")
                    ) -> tuple[Rows, FloatArray | None, NDArray[np.int64] | None,
                               LossName]:
        name = self._check_loss(loss)
        Xc = self._check_X(X, names[0])
        Y, labels = prepare_targets(name, y, Xc.shape[0], self.n_out, self.dtype, names[1])
        return Xc, Y, labels, name

    # ---------------------------------------------------------------------------------------
    # The engine and the optimizer state it advances

    def _engine_for(self, rows: int) -> Engine:
        """The engine, with room for batches of `rows` (rebuilt larger when needed: the
        model's state lives in the model, not in the engine; every engine of the model takes
        its one lock for a pass)."""
        engine = self._engine
        if engine is None or engine.capacity < rows:
            engine = self._engine = Engine(self.architecture, self._params, self._grads,
                                           max(1, rows), self._dropout_state, self._passes)
        return engine

    def free_workspace(self) -> None:
        """Lets go of the engine's workspace (a large training batch's, say); the next call
        that needs one builds it anew."""
        with self._passes:
            self._engine = self._bound = None

    def _state_for(self, optimizer: Optimizer) -> OptimizerState:
        """This model's state for `optimizer`: continued if it is the optimizer this model
        trained with last, fresh otherwise."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastprop optimizer such as fastprop.SGD, got "
                            f"{type(optimizer).__name__}")
        state = self._optimizer_state
        if optimizer is not self.optimizer or state is None:
            state = OptimizerState(optimizer.n_state, self._params)
        elif len(state.buffers) != optimizer.n_state:  # e.g. momentum turned on: its buffer at 0
            steps = state.steps
            state = OptimizerState(optimizer.n_state, self._params)
            state.steps[...] = steps
        return state

    def _bind(self, optimizer: Optimizer, rows: int, state: OptimizerState | None = None,
              penalty: float = 0.0) -> Engine:
        """The engine for `rows`, with `optimizer` and this model's state for it bound; the
        model's optimizer becomes `optimizer`. Everything is checked before anything changes."""
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastprop optimizer such as fastprop.SGD, got "
                            f"{type(optimizer).__name__}")
        hyper = optimizer._hyper()
        state = self._state_for(optimizer) if state is None else state
        engine = self._engine_for(rows)
        bound = (engine, hyper, state, penalty)  # hyper: a new dict whenever a value changes
        if self._bound != bound:
            engine.bind_optimizer(hyper, state.buffers, state.steps, penalty)
            self._bound = bound
        self.optimizer, self._optimizer_state = optimizer, state
        if optimizer._state is not state:
            optimizer._state = state
        return engine

    def _reset_optimizer_state(self, optimizer: Optimizer) -> None:
        self._bind(optimizer, 1, OptimizerState(optimizer.n_state, self._params))

    def _state(self) -> list[tuple[str, NDArray[Any]]]:
        """The training state, listed once: (name, array) for everything training changes,
        the parameters, gradients, dropout and shuffle counters, and the optimizer's step count
        and buffers. Snapshots (all but the gradients, which every step computes anew), the
        data-parallel broadcast and the file format iterate it."""
        items: list[tuple[str, NDArray[Any]]] = [("params", self._params), ("grads", self._grads),
                 ("dropout_state", self._dropout_state), ("shuffle_state", self._shuffle_state)]
        state = self._optimizer_state
        if state is not None:
            items.append(("optimizer_steps", state.steps))
            items += [(f"optimizer_state_{i}", buf) for i, buf in enumerate(state.buffers)]
        return items

    def _snapshot_for(self, extra: Sequence[NDArray[Any]] = ()) -> Snapshot:
        """A loop.Snapshot of the training state (and of `extra` arrays); without extra, made
        once per optimizer state and reused, so that a step's rollback allocates nothing."""
        if extra:
            return loop.Snapshot(self, extra)
        if self._snapshot is None or self._snapshot.state is not self._optimizer_state:
            self._snapshot = loop.Snapshot(self)
        return self._snapshot

    def _apply_optimizer(self, optimizer: Optimizer) -> None:
        with self._exclusive("Optimizer.step"):
            self._bind(optimizer, 1).update(optimizer.lr)

    def _exclusive(self, what: str) -> _Exclusive:
        """The training lock, as a context taken without waiting: a second training call on a
        model (fit, train_step, Optimizer.step, an estimator's fit) refuses instead of racing
        the first."""
        return _Exclusive(self._training, what)

    def _loss(self, X: Rows, Y: FloatArray | None, labels: NDArray[np.int64] | None,
              loss: LossName) -> tuple[float, int]:
        """(mean loss, number correct) on checked data, dropout off."""
        engine = self._engine_for(min(X.shape[0], self._CHUNK_ROWS))
        total, n_correct = engine.loss(X, Y, labels, LOSSES[loss])
        return total / X.shape[0], n_correct

    def _gradients(self, X: Rows, Y: FloatArray | None, labels: NDArray[np.int64] | None,
                   loss: LossName, weights: FloatArray | None = None, penalty: float = 0.0,
                   keep: Sequence[Sequence[FloatArray]] | None = None
                   ) -> tuple[float, int]:
        """(mean loss, number correct) of a gradient pass on checked data of any size (`loss`
        a name), dropout off, the gradient left in model.grads: in chunks, with a bounded
        workspace. `weights`: sample weights; `penalty`: L2 on the weights, penalty / 2 ||W||^2
        divided by the sum of the weights (or the rows), as scikit-learn's alpha; `keep`: per
        layer (Z, A, delta) arrays to fill (explain)."""
        engine = self._engine_for(min(X.shape[0], self._CHUNK_ROWS))
        return engine.gradients(X, Y, labels, LOSSES[loss], weights, penalty, keep)

    def _full_gradient(self, X: Rows, Y: FloatArray | None,
                       labels: NDArray[np.int64] | None, weights: FloatArray | None, loss: int,
                       penalty: float) -> float:
        """The objective of full-batch solvers (L-BFGS): the mean loss over every row of checked
        data (`loss` a code), with sample weights and the L2 term, its whole gradient in
        model.grads; no update. The caller holds the training lock."""
        engine = self._engine_for(min(X.shape[0], self._CHUNK_ROWS))
        return engine.gradients(X, Y, labels, loss, weights, penalty)[0]

    # ---------------------------------------------------------------------------------------
    # Public API

    def predict(self, X: MatrixLike) -> FloatArray:
        """The output layer's activation for X (n_samples, n_in): probabilities for a sigmoid or
        softmax output. Returns a new array (n_samples, n_out)."""
        Xc = self._check_X(X)
        out = np.empty((Xc.shape[0], self.n_out), self.dtype)
        return self._engine_for(min(Xc.shape[0], self._CHUNK_ROWS)).predict(Xc, out)

    __call__ = predict

    def evaluate(self, X: MatrixLike, y: ArrayLike, loss: LossName,
                 metrics: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
        """{'loss': mean loss, 'accuracy': fraction correct (classification losses), and each of
        `metrics` ('accuracy', 'top_k_accuracy', 'top_3_accuracy', 'mse', 'mae', 'r2')}."""
        fns = training.check_metrics(metrics)
        Xc, Y, labels, name = self._check_data(X, y, loss)
        value, n_correct = self._loss(Xc, Y, labels, name)
        result = {"loss": value}
        if name in CLASSIFICATION:
            result["accuracy"] = n_correct / (Xc.shape[0] * (self.n_out if name in PER_ELEMENT
                                                             else 1))
        if fns:
            pred = self.predict(Xc)
            result.update({name: fn(y, pred) for name, fn in fns.items()})
        return result

    def loss_and_gradients(self, X: MatrixLike, y: ArrayLike, loss: LossName
                           ) -> tuple[float, list[tuple[FloatArray, FloatArray]]]:
        """The mean loss on (X, y) and its gradients [(dW, db), ...] per layer (copies), with
        dropout off (the deterministic network that predict runs).

        The whole gradient is also left in model.grads, where an optimizer's step reads it.
        """
        Xc, Y, labels, name = self._check_data(X, y, loss)
        value, _ = self._gradients(Xc, Y, labels, name)
        return value, [(l.dW.copy(), l.db.copy()) for l in self.layers]

    def train_step(self, X: MatrixLike, y: ArrayLike, loss: LossName, optimizer: Optimizer,
                   sample_weight: ArrayLike | None = None, l2_penalty: float = 0.0) -> float:
        """One training step on the batch (X, y), dropout on, exactly as fit takes it: returns
        the batch's mean loss (before the update). With plain SGD the update runs inside the
        weight-gradient product and model.grads is not written; with any other optimizer
        model.grads holds the batch's whole gradient afterwards (clipped, if clip_norm is set).
        sample_weight and l2_penalty are fit's."""
        Xc, Y, labels, name = self._check_data(X, y, loss)
        weights = training.check_sample_weight(sample_weight, Xc.shape[0], self.dtype)
        from ._validation import check_non_negative_float
        l2_penalty = check_non_negative_float("l2_penalty", l2_penalty)
        with self._exclusive("train_step"):
            return self._train_step(Xc, Y, labels, weights, name, optimizer, l2_penalty)

    def _train_step(self, X: Rows, Y: FloatArray | None, labels: NDArray[np.int64] | None,
                    weights: FloatArray | None, loss: LossName, optimizer: Optimizer,
                    l2_penalty: float) -> float:
        """One step through the training loop: a single batch of every row, in place."""
        n = X.shape[0]
        steps = loop.Steps(self._bind(optimizer, n, penalty=l2_penalty),
                           (X, Y, labels, weights, LOSSES[loss]), None, n)
        total, _ = loop.Epochs(self, steps, n, n, "train_step").run(optimizer.lr)
        return total / n

    # fit and partial_fit are training.py's functions themselves, the model their first
    # argument: one signature, one docstring, nothing between the call and the training loop.
    fit = training.fit
    partial_fit = training.partial_fit

    def summary(self, batch_size: int = 32, optimizer: Optimizer | None = None) -> Summary:
        """A table of the layers (kind, activation, output shape, parameters), then the
        parameters' count and bytes and the memory a fit at `batch_size` holds: parameters,
        gradients, the state of `optimizer` (by default the one fit would take), the snapshot
        of the training state and the engine's workspace for that many rows (predict and
        evaluate use up to 1024; a data-parallel fit over p ranks, batch_size / p on each).
        The figures are attributes too (Summary)."""
        return Summary(self, batch_size, optimizer)

    def save(self, path: str | os.PathLike[str], optimizer: Optimizer | None = None
             ) -> str:
        """Saves the model and its optimizer state to `path`, atomically: see fastprop.io for
        the format. fastprop.load(path) reads it back."""
        return io.save(self, path, optimizer)

    def explain(self, X: MatrixLike, y: ArrayLike, loss: LossName) -> Trace:
        """A trace of one backward pass on (X, y): per layer the pre-activation u, the
        activation a, the local derivative f'(u), the delta dL/du, dL/dW and dL/db."""
        from .explain import explain
        return explain(self, X, y, loss)

    def to_torch_state_dict(self) -> dict[str, Any]:
        """The weights as a PyTorch state dict for nn.Sequential(Linear, activation, ...)."""
        return torch_interop.to_state_dict(self)

    def from_torch_state_dict(self, state_dict: Any) -> Sequential:
        """Sets the weights from a PyTorch state dict (see fastprop.torch_interop)."""
        torch_interop.load_state_dict(self, state_dict)
        return self


class _Exclusive:
    __slots__ = ("lock", "what")

    def __init__(self, lock: threading.Lock, what: str) -> None:
        self.lock, self.what = lock, what

    def __enter__(self) -> None:
        if not self.lock.acquire(blocking=False):
            raise RuntimeError(f"{self.what}: this model is already being trained in another "
                               f"thread; train a model in one thread at a time, or train copies")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.lock.release()


def load(path: str | os.PathLike[str]) -> Sequential:
    """The model saved at `path` by Sequential.save, with its optimizer and the optimizer's state
    (as `model.optimizer`) if one was saved. Damaged or foreign files raise a ValueError."""
    return io.load(check_path("path", path), Sequential)


def _from_bytes(data: bytes) -> Sequential:
    """Unpickles a Sequential from the bytes of its file format."""
    return io.from_bytes(data, Sequential)
