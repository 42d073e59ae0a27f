"""Sequential: a stack of Dense layers over one flat parameter buffer.

All parameters live in `model.params` (and their gradients in `model.grads`), each layer's W and b
being views into it, so that an optimizer step, a save or an all-reduce is one operation. The
activations and deltas of a batch live in a workspace allocated once per batch size and reused.
"""
import sys
import time

import numpy as np

from . import _kernels, _train
from ._validation import blas_operand, check_dtype, check_matrix, check_positive_int
from .activations import ACTIVATIONS
from .history import History
from .layers import Dense
from .losses import CLASSIFICATION, LOSSES, canonical_loss, check_output_activation, prepare_targets
from .optimizers import SGD, Optimizer


class _Workspace:
    """Per-layer activations A and deltas dZ for one batch size, plus the output logits Z."""

    def __init__(self, layers, n_samples, dtype):
        self.A = [np.empty((n_samples, l.n_out), dtype) for l in layers]
        self.dZ = [np.empty((n_samples, l.n_out), dtype) for l in layers]
        self.Z = np.empty((n_samples, layers[-1].n_out), dtype)


class Sequential:
    """A multilayer perceptron: layers applied in order, trained by backpropagation.

    Parameters
    ----------
    layers : list of Dense
        Consecutive layers must agree: layer k's n_out is layer k+1's n_in.
    dtype : 'float32' or 'float64'
        The dtype of parameters, activations and gradients.
    seed : int, optional
        Seeds the initial weights and the default shuffling of `fit`.
    """

    _MAX_WORKSPACES = 4

    def __init__(self, layers, dtype="float32", seed=None):
        layers = list(layers)
        if not layers:
            raise ValueError("layers: expected at least one layer, got an empty list")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Dense):
                raise TypeError(f"layers[{i}]: expected a fastprop.Dense, got {type(layer).__name__}")
            if layer._W is not None:
                raise ValueError(f"layers[{i}]: this layer already belongs to a model; create a new one")
            if i and layers[i - 1].n_out != layer.n_in:
                raise ValueError(f"layers[{i}]: expected n_in={layers[i - 1].n_out} (the n_out of "
                                 f"layers[{i - 1}]), got n_in={layer.n_in}")
            if layer.activation == "softmax" and i != len(layers) - 1:
                raise ValueError(f"layers[{i}]: softmax is only supported as the output activation")
        self.layers = layers
        self.dtype = check_dtype(dtype)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        n_params = sum(l.n_params for l in layers)
        self.params = np.zeros(n_params, self.dtype)
        self.grads = np.zeros(n_params, self.dtype)
        offset = 0
        for layer in layers:
            offset = layer._bind(self.params, self.grads, offset)
            layer._initialize(self._rng)
        self._workspaces = {}
        self._compiled = None
        self.optimizer = None  # the optimizer of the last fit, which save() keeps by default

    # ---------------------------------------------------------------------------------------
    # Introspection

    @property
    def n_in(self):
        return self.layers[0].n_in

    @property
    def n_out(self):
        return self.layers[-1].n_out

    @property
    def n_params(self):
        return self.params.size

    def parameters(self):
        """[W1, b1, W2, b2, ...]: views into the flat parameter buffer."""
        return [p for l in self.layers for p in (l.W, l.b)]

    def zero_grad(self):
        self.grads[...] = 0

    def get_weights(self):
        """[(W, b), ...] per layer, as copies."""
        return [(l.W.copy(), l.b.copy()) for l in self.layers]

    def set_weights(self, weights):
        """Sets every layer's (W, b) from a list like the one get_weights returns."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"weights: expected {len(self.layers)} (W, b) pairs, got {len(weights)}")
        for i, (layer, pair) in enumerate(zip(self.layers, weights)):
            try:
                W, b = pair
            except (TypeError, ValueError):
                raise ValueError(f"weights[{i}]: expected a (W, b) pair") from None
            layer.W = W
            layer.b = b

    def copy(self, dtype=None):
        """An independent model with the same layers and weights (converted to `dtype`)."""
        layers = [Dense(l.n_in, l.n_out, l.activation, negative_slope=l.negative_slope,
                        init=l.init if l.init != "array" else None) for l in self.layers]
        clone = Sequential(layers, dtype=self.dtype if dtype is None else dtype, seed=self.seed)
        clone.params[...] = self.params
        return clone

    def __repr__(self):
        inner = ",\n".join(f"    {l!r}" for l in self.layers)
        return (f"Sequential([\n{inner}\n], dtype={self.dtype.name!r}, n_params={self.n_params})")

    # ---------------------------------------------------------------------------------------
    # Checking inputs

    def _check_X(self, X, name="X"):
        return check_matrix(name, X, self.dtype, n_cols=self.n_in)

    def _check_loss(self, loss):
        loss = canonical_loss(loss)
        check_output_activation(loss, self.layers[-1].activation)
        return loss

    def _check_data(self, X, y, loss):
        loss = self._check_loss(loss)
        X = self._check_X(X)
        Y, labels = prepare_targets(loss, y, X.shape[0], self.n_out, self.dtype)
        return X, Y, labels, loss

    # ---------------------------------------------------------------------------------------
    # The layer-by-layer path: one kernel call per layer and direction

    def _workspace(self, n_samples):
        ws = self._workspaces.get(n_samples)
        if ws is None:
            if len(self._workspaces) >= self._MAX_WORKSPACES:
                self._workspaces.clear()
            ws = self._workspaces[n_samples] = _Workspace(self.layers, n_samples, self.dtype)
        return ws

    def _forward(self, X, ws):
        """Forward through every layer; X is a checked matrix. Fills ws.A (and ws.Z, the logits)."""
        A_prev, trans = blas_operand(X)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            Z = ws.Z if i == last else None
            _kernels._forward(A_prev, trans, layer._W, False, layer._b, Z, ws.A[i],
                              layer.activation_code, layer.negative_slope)
            A_prev, trans = ws.A[i], False
        return ws.A[last]

    def _backward(self, X, Y, labels, loss, ws):
        """Loss and gradients of a forward pass held in ws; fills model.grads. Returns
        (mean loss, number correct)."""
        out = self.layers[-1]
        value, n_correct = _kernels._loss_gradient(LOSSES[loss], ws.Z, ws.A[-1], Y, labels,
                                                   ws.dZ[-1], out.activation_code,
                                                   out.negative_slope)
        Xs, trans_x = blas_operand(X)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            A_prev, trans = (Xs, trans_x) if i == 0 else (ws.A[i - 1], False)
            _kernels._weight_gradient(A_prev, trans, ws.dZ[i], layer._dW, layer._db, False)
            if i:
                prev = self.layers[i - 1]
                _kernels._delta(ws.dZ[i], False, layer._W, False, ws.A[i - 1], ws.dZ[i - 1],
                                prev.activation_code, prev.negative_slope)
        return value, n_correct

    def _loss_only(self, X, Y, labels, loss):
        ws = self._workspace(X.shape[0])
        self._forward(X, ws)
        out = self.layers[-1]
        value, n_correct = _kernels._loss_gradient(LOSSES[loss], ws.Z, ws.A[-1], Y, labels, None,
                                                   out.activation_code, out.negative_slope)
        return value, n_correct

    # ---------------------------------------------------------------------------------------
    # Public API

    def predict(self, X):
        """The output layer's activation for X (n_samples, n_in): probabilities for a sigmoid or
        softmax output. Returns a new array (n_samples, n_out)."""
        X = self._check_X(X)
        ws = _Workspace(self.layers, X.shape[0], self.dtype)
        return self._forward(X, ws)

    __call__ = predict

    def evaluate(self, X, y, loss):
        """{'loss': mean loss, 'accuracy': fraction correct (classification losses only)}."""
        X, Y, labels, loss = self._check_data(X, y, loss)
        value, n_correct = self._loss_only(X, Y, labels, loss)
        result = {"loss": value}
        if loss in CLASSIFICATION:
            result["accuracy"] = n_correct / (X.shape[0] * (self.n_out if Y is not None and
                                                            loss == "binary_cross_entropy" else 1))
        return result

    def loss_and_gradients(self, X, y, loss):
        """The mean loss on (X, y) and its gradients [(dW, db), ...] per layer (copies).

        The gradients are also left in model.grads, where an optimizer's step reads them.
        """
        X, Y, labels, loss = self._check_data(X, y, loss)
        ws = self._workspace(X.shape[0])
        self._forward(X, ws)
        value, _ = self._backward(X, Y, labels, loss, ws)
        return value, [(l.dW.copy(), l.db.copy()) for l in self.layers]

    def train_step(self, X, y, loss, optimizer):
        """One step of gradient descent on the batch (X, y). Returns the batch's mean loss
        (before the update)."""
        X, Y, labels, loss = self._check_data(X, y, loss)
        ws = self._workspace(X.shape[0])
        self._forward(X, ws)
        value, _ = self._backward(X, Y, labels, loss, ws)
        optimizer.step(self)
        return value

    def fit(self, X, y, loss, optimizer=None, epochs=1, batch_size=32, shuffle=True, seed=None,
            verbose=0, n_threads=None):
        """Trains on (X, y) by mini-batch gradient descent; returns a History.

        Each epoch visits every sample once, in batches of `batch_size` (the last batch may be
        smaller); with `shuffle`, in a new random order each epoch, drawn from `seed` (or from
        the model's seed). `verbose=1` prints a line per epoch.

        Each epoch is one call into compiled code, which gathers every batch's rows, runs its
        step (forward, loss, deltas, weight gradients, update) and releases the GIL throughout.
        With plain SGD the update is fused into the weight-gradient product, so model.grads is
        not written (train_step and loss_and_gradients fill it); other optimizers (momentum,
        Adam, AdamW, RMSprop, weight decay, clipping) run one fused pass over model.grads.

        `n_threads` bounds the threads of BLAS and of the OpenMP loops during the fit (through
        threadpoolctl); by default both use every core, and BLAS runs small products on one.
        """
        X, Y, labels, loss = self._check_data(X, y, loss)
        optimizer = SGD() if optimizer is None else optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an optimizer such as fastprop.SGD, got "
                            f"{type(optimizer).__name__}")
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        if n_threads is not None:
            n_threads = check_positive_int("n_threads", n_threads)
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=n_threads):
                return self.fit(X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose)
        rng = self._rng if seed is None else np.random.default_rng(seed)
        X = np.ascontiguousarray(X)
        n = X.shape[0]
        batch_size = min(batch_size, n)
        self.optimizer = optimizer
        trainer = self._trainer(loss, batch_size, labels is not None, optimizer._fused)
        if not optimizer._fused:
            s1, s2 = optimizer.state_buffers(self)
            trainer.set_optimizer(optimizer._hyper(), s1, s2, optimizer.t)
        order = np.arange(n, dtype=np.int64) if shuffle else None
        per_sample = self.n_out if loss == "binary_cross_entropy" else 1
        history = History()
        for epoch in range(epochs):
            start = time.perf_counter()
            if shuffle:
                rng.shuffle(order)  # in place: a new order each epoch, no allocation
            total, n_correct = trainer.epoch(X, Y, labels, order, batch_size, optimizer.lr)
            if optimizer._fused:
                optimizer.t += -(-n // batch_size)
            else:
                optimizer.t = trainer.t
            seconds = time.perf_counter() - start
            accuracy = n_correct / (n * per_sample) if loss in CLASSIFICATION else None
            history._append(epoch + 1, total / n, accuracy, seconds, n)
            if verbose:
                _print_epoch(history, epochs)
        return history

    def _trainer(self, loss, batch_size, labels, fused):
        """The compiled training loop for this loss, batch size and update, built once and
        reused."""
        key = (loss, batch_size, labels, fused)
        if self._compiled is None or self._compiled[0] != key:
            trainer = _train.Trainer(self.params, self.grads,
                                     [self.n_in] + [l.n_out for l in self.layers],
                                     [l.activation_code for l in self.layers],
                                     [l.negative_slope for l in self.layers],
                                     LOSSES[loss], batch_size, labels, fused)
            self._compiled = (key, trainer)
        return self._compiled[1]

    def partial_fit(self, X, y, loss, optimizer=None, batch_size=32, **kwargs):
        """One more epoch on (X, y), continuing from the current weights and from the state of
        `optimizer` (by default the last fit's, so that momentum and Adam moments carry on).
        `fit` itself always starts from the current weights: training is warm by default."""
        optimizer = optimizer if optimizer is not None else self.optimizer
        return self.fit(X, y, loss, optimizer, epochs=1, batch_size=batch_size, **kwargs)

    def to_torch_state_dict(self):
        """The weights as a PyTorch state dict for nn.Sequential(Linear, activation, Linear, ...,
        Linear): keys '0.weight', '0.bias', '2.weight', ...; weights transposed to torch's
        (n_out, n_in)."""
        try:
            import torch
        except ImportError:
            raise ImportError("to_torch_state_dict needs PyTorch: pip install torch") from None
        out = {}
        for i, layer in enumerate(self.layers):
            out[f"{2 * i}.weight"] = torch.from_numpy(layer.W.T.copy())
            out[f"{2 * i}.bias"] = torch.from_numpy(layer.b.copy())
        return out

    def from_torch_state_dict(self, state_dict):
        """Sets the weights from a PyTorch state dict whose '*.weight' and '*.bias' entries are,
        in order, this model's layers (torch's weights are (n_out, n_in): they are transposed)."""
        weights = [(k, v) for k, v in state_dict.items() if k.endswith(".weight")]
        biases = [(k, v) for k, v in state_dict.items() if k.endswith(".bias")]
        if len(weights) != len(self.layers) or len(biases) != len(self.layers):
            raise ValueError(f"state_dict: expected {len(self.layers)} weight and bias entries, "
                             f"got {len(weights)} weights and {len(biases)} biases")
        pairs = []
        for i, ((kw, w), (kb, b)) in enumerate(zip(weights, biases)):
            w = np.asarray(w.detach().cpu().numpy() if hasattr(w, "detach") else w)
            b = np.asarray(b.detach().cpu().numpy() if hasattr(b, "detach") else b)
            layer = self.layers[i]
            if w.shape != (layer.n_out, layer.n_in):
                raise ValueError(f"state_dict[{kw!r}]: expected shape ({layer.n_out}, "
                                 f"{layer.n_in}) for layers[{i}], got {w.shape}")
            pairs.append((w.T, b))
        self.set_weights(pairs)
        return self

    def save(self, path, optimizer=None):
        """Saves the model (and `optimizer`, by default the last fit's) to `path`, atomically:
        see fastprop.io for the format. fastprop.load(path) reads it back."""
        from .io import save
        return save(self, path, optimizer)

    def explain(self, X, y, loss):
        """A trace of one backward pass on (X, y): per layer the pre-activation u, the
        activation a, the local derivative f'(u), the delta dL/du, dL/dW and dL/db."""
        from .explain import explain
        return explain(self, X, y, loss)


def _print_epoch(history, epochs):
    acc = f"  accuracy {history.accuracy[-1]:.4f}" if history.accuracy else ""
    print(f"epoch {history.epoch[-1]:>{len(str(epochs))}}/{epochs}  loss {history.loss[-1]:.6f}{acc}"
          f"  {history.samples_per_sec[-1]:>12,.0f} samples/s  {history.seconds[-1]:.3f} s",
          file=sys.stdout, flush=True)
