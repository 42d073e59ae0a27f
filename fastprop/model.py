"""Sequential: a stack of Dense layers over one flat parameter buffer.

All parameters live in `model.params` (and their gradients in `model.grads`), each layer's W and b
being views into it, so that an optimizer step, a save or an all-reduce is one operation. The
activations and deltas of a batch live in a workspace allocated once per batch size and reused.
"""
import sys
import time

import numpy as np

from . import _kernels, _train
from ._validation import (blas_operand, check_dtype, check_matrix, check_positive_float,
                          check_positive_int)
from .activations import ACTIVATIONS
from .history import History
from .layers import Dense, Dropout
from .metrics import get_metric
from .losses import (CLASSIFICATION, LOSSES, PER_ELEMENT, canonical_loss, check_output_activation,
                     prepare_targets)
from .optimizers import SGD, Optimizer


class _Workspace:
    """Per-layer activations A and deltas dZ for one batch size, plus the output logits Z."""

    def __init__(self, layers, n_samples, dtype):
        self.A = [np.empty((n_samples, l.n_out), dtype) for l in layers]
        self.dZ = [np.empty((n_samples, l.n_out), dtype) for l in layers]
        self.Z = np.empty((n_samples, layers[-1].n_out), dtype)
        # dropout: the mask and the dropped activations, for layers followed by a Dropout
        self.M = [np.empty((n_samples, l.n_out), dtype) if l.dropout else None for l in layers]
        self.D = [np.empty((n_samples, l.n_out), dtype) if l.dropout else None for l in layers]


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
        given = list(layers)
        if not given:
            raise ValueError("layers: expected at least one layer, got an empty list")
        layers = []
        for i, layer in enumerate(given):  # a Dropout folds into the Dense layer before it
            if isinstance(layer, Dropout):
                if not layers or isinstance(given[i - 1], Dropout):
                    raise ValueError(f"layers[{i}]: a Dropout must follow a Dense layer")
                if i == len(given) - 1:
                    raise ValueError(f"layers[{i}]: a Dropout cannot follow the output layer")
                layers[-1].dropout = layer.rate
            else:
                layers.append(layer)
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
        self._dropout_seed = int(self._rng.integers(2**63))
        self._dropout_step = 0
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
        layers = []
        for l in self.layers:
            layers.append(Dense(l.n_in, l.n_out, l.activation, negative_slope=l.negative_slope,
                                init=l.init if l.init != "array" else None))
            if l.dropout:
                layers.append(Dropout(l.dropout))
        clone = Sequential(layers, dtype=self.dtype if dtype is None else dtype, seed=self.seed)
        clone.params[...] = self.params
        clone._dropout_seed, clone._dropout_step = self._dropout_seed, self._dropout_step
        return clone

    def __repr__(self):
        inner = ",\n".join(f"    {l!r}" + (f",\n    Dropout({l.dropout})" if l.dropout else "")
                           for l in self.layers)
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

    def _forward(self, X, ws, training=False):
        """Forward through every layer; X is a checked matrix. Fills ws.A (and ws.Z, the logits);
        with `training`, applies dropout with the masks of the current step."""
        A_prev, trans = blas_operand(X)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            Z = ws.Z if i == last else None
            _kernels._forward(A_prev, trans, layer._W, False, layer._b, Z, ws.A[i],
                              layer.activation_code, layer.negative_slope)
            A_prev, trans = ws.A[i], False
            if training and layer.dropout:
                key = _kernels._dropout_key(self._dropout_seed, self._dropout_step, i)
                _kernels._dropout(ws.A[i], ws.M[i], ws.D[i], key, layer.dropout)
                A_prev = ws.D[i]
        return ws.A[last]

    def _backward(self, X, Y, labels, loss, ws, training=False):
        """Loss and gradients of a forward pass held in ws; fills model.grads. Returns
        (mean loss, number correct)."""
        out = self.layers[-1]
        value, n_correct = _kernels._loss_gradient(LOSSES[loss], ws.Z, ws.A[-1], Y, labels,
                                                   ws.dZ[-1], out.activation_code,
                                                   out.negative_slope)
        Xs, trans_x = blas_operand(X)
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            dropped = training and i and self.layers[i - 1].dropout
            A_prev, trans = (Xs, trans_x) if i == 0 else (ws.D[i - 1] if dropped else ws.A[i - 1],
                                                          False)
            _kernels._weight_gradient(A_prev, trans, ws.dZ[i], layer._dW, layer._db, False)
            if dropped:  # dZ_{i-1} = (dZ_i W_i^T) * M * f'(.)
                prev = self.layers[i - 1]
                _kernels._delta(ws.dZ[i], False, layer._W, False, ws.A[i - 1], ws.dZ[i - 1], 0,
                                0.0)
                _kernels._mul(ws.dZ[i - 1], ws.M[i - 1])
                _kernels._activation_backward(ws.dZ[i - 1], ws.A[i - 1], prev.activation_code,
                                              prev.negative_slope)
            elif i:
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

    def evaluate(self, X, y, loss, metrics=None):
        """{'loss': mean loss, 'accuracy': fraction correct (classification losses), and each of
        `metrics` ('accuracy', 'top_k_accuracy', 'top_3_accuracy', 'mse', 'mae', 'r2')}."""
        fns = {name: get_metric(name) for name in (metrics or [])}
        X, Y, labels, loss = self._check_data(X, y, loss)
        value, n_correct = self._loss_only(X, Y, labels, loss)
        result = {"loss": value}
        if loss in CLASSIFICATION:
            result["accuracy"] = n_correct / (X.shape[0] * (self.n_out if loss in PER_ELEMENT
                                                            else 1))
        if fns:
            pred = self.predict(X)
            result.update({name: fn(y, pred) for name, fn in fns.items()})
        return result

    def loss_and_gradients(self, X, y, loss):
        """The mean loss on (X, y) and its gradients [(dW, db), ...] per layer (copies), with
        dropout off (the deterministic network that predict runs).

        The gradients are also left in model.grads, where an optimizer's step reads them.
        """
        X, Y, labels, loss = self._check_data(X, y, loss)
        ws = self._workspace(X.shape[0])
        self._forward(X, ws)
        value, _ = self._backward(X, Y, labels, loss, ws)
        return value, [(l.dW.copy(), l.db.copy()) for l in self.layers]

    def train_step(self, X, y, loss, optimizer):
        """One step of gradient descent on the batch (X, y), layer by layer (dropout on, as in
        fit). Returns the batch's mean loss (before the update)."""
        X, Y, labels, loss = self._check_data(X, y, loss)
        ws = self._workspace(X.shape[0])
        self._forward(X, ws, training=True)
        value, _ = self._backward(X, Y, labels, loss, ws, training=True)
        optimizer.step(self)
        self._dropout_step += 1
        return value

    def fit(self, X, y, loss, optimizer=None, epochs=1, batch_size=32, shuffle=True, seed=None,
            verbose=0, n_threads=None, validation_data=None, validation_split=0.0,
            metrics=None, lr_schedule=None, callbacks=None, progress=None, warm_start=True):
        """Trains on (X, y) by mini-batch gradient descent; returns a History.

        Each epoch visits every sample once, in batches of `batch_size` (the last batch may be
        smaller); with `shuffle`, in a new random order each epoch, drawn from `seed` (or from
        the model's seed). Training continues from the current weights and from the optimizer's
        state (its moments and step count), so fit is warm by default.

        Each epoch is one call into compiled code, which gathers every batch's rows, runs its
        step (forward, loss, deltas, weight gradients, update) and releases the GIL throughout.
        With plain SGD the update is fused into the weight-gradient product, so model.grads is
        not written (train_step and loss_and_gradients fill it); other optimizers (momentum,
        Adam, AdamW, RMSprop, weight decay, clipping) run one fused pass over model.grads.

        validation_data=(X_val, y_val), or validation_split=f (the last fraction f of the data,
        before shuffling, as Keras does), adds val_loss and the `metrics` ('accuracy',
        'top_k_accuracy', 'mse', 'mae', 'r2') on it after each epoch. lr_schedule (from
        fastprop.schedules) sets the optimizer's lr before each epoch; callbacks (fastprop.
        callbacks: EarlyStopping, ModelCheckpoint, or any object with their methods) run after
        each epoch and may stop training. `verbose=1` prints each epoch; on a terminal (or with
        progress=True) it also shows a live bar during the epoch (tqdm when installed), for which
        the epoch runs in about 20 compiled calls instead of one. `n_threads` bounds the threads
        of BLAS and of the OpenMP loops during the fit (threadpoolctl).
        """
        if n_threads is not None:
            n_threads = check_positive_int("n_threads", n_threads)
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=n_threads):
                return self.fit(X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose,
                                None, validation_data, validation_split, metrics, lr_schedule,
                                callbacks, progress, warm_start)
        X, Y, labels, loss = self._check_data(X, y, loss)
        optimizer = SGD() if optimizer is None else optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an optimizer such as fastprop.SGD, got "
                            f"{type(optimizer).__name__}")
        epochs = check_positive_int("epochs", epochs)
        batch_size = check_positive_int("batch_size", batch_size)
        metric_fns = {name: get_metric(name) for name in (metrics or [])}
        callbacks = list(callbacks or [])
        for i, cb in enumerate(callbacks):
            if not hasattr(cb, "on_epoch_end"):
                raise TypeError(f"callbacks[{i}]: expected an object with on_epoch_end, got "
                                f"{type(cb).__name__}")
        if lr_schedule is not None and not callable(lr_schedule):
            raise TypeError(f"lr_schedule: expected a schedule, got {type(lr_schedule).__name__}")
        X = np.ascontiguousarray(X)
        val = None
        if validation_data is not None:
            if validation_split:
                raise ValueError("validation_split: give validation_data or validation_split, "
                                 "not both")
            try:
                Xv, yv = validation_data
            except (TypeError, ValueError):
                raise ValueError("validation_data: expected a pair (X_val, y_val)") from None
            Xv, Yv, Lv, _ = self._check_data(Xv, yv, loss)
            val = (Xv, Yv, Lv, yv)
        elif validation_split:
            f = float(validation_split)
            n_val = int(round(f * X.shape[0]))
            if not 0 < f < 1 or n_val < 1 or n_val >= X.shape[0]:
                raise ValueError(f"validation_split: expected a fraction in (0, 1) leaving samples "
                                 f"on both sides, got {validation_split!r}")
            cut = X.shape[0] - n_val
            T = Y if Y is not None else labels
            val = (X[cut:], Y[cut:] if Y is not None else None, labels[cut:] if labels is not None
                   else None, np.asarray(y)[cut:])
            X, T = X[:cut], T[:cut]
            Y, labels = (T, None) if Y is not None else (None, T)
        if not warm_start:
            for layer in self.layers:
                layer._initialize(self._rng)
            optimizer._state, optimizer.t = None, 0
        rng = self._rng if seed is None else np.random.default_rng(seed)
        n = X.shape[0]
        batch_size = min(batch_size, n)
        self.optimizer = optimizer
        trainer = self._trainer(loss, batch_size, labels is not None, optimizer._fused)
        order = np.arange(n, dtype=np.int64) if shuffle else None
        per_sample = self.n_out if loss in PER_ELEMENT else 1
        show_bar = bool(verbose) and (progress if progress is not None else _is_terminal())
        history = History()
        base_lr = optimizer.lr
        logs = {"samples_seen": 0}
        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(self, logs)
        try:
            for epoch in range(epochs):
                if lr_schedule is not None:
                    optimizer.lr = check_positive_float("lr_schedule", lr_schedule(epoch, base_lr, logs))
                if not optimizer._fused:
                    s1, s2 = optimizer.state_buffers(self)
                    trainer.set_optimizer(optimizer._hyper(), s1, s2, optimizer.t)
                trainer.set_dropout_state(self._dropout_seed, self._dropout_step)
                start = time.perf_counter()
                if shuffle:
                    rng.shuffle(order)  # in place: a new order each epoch, no allocation
                bar = _Progress(n, epoch + 1, epochs) if show_bar else None
                total, n_correct = self._run_epoch(trainer, X, Y, labels, order, batch_size,
                                                   optimizer.lr, bar)
                seconds = time.perf_counter() - start
                if optimizer._fused:
                    optimizer.t += -(-n // batch_size)
                else:
                    optimizer.t = trainer.t
                self._dropout_step = trainer.dropout_step
                logs = {"epoch": epoch + 1, "loss": total / n, "lr": optimizer.lr,
                        "seconds": seconds, "samples_per_sec": n / seconds if seconds > 0 else
                        float("inf"), "samples_seen": logs["samples_seen"] + n}
                if loss in CLASSIFICATION:
                    logs["accuracy"] = n_correct / (n * per_sample)
                if val is not None:
                    logs["val_loss"] = self._loss_only(val[0], val[1], val[2], loss)[0]
                    if metric_fns:
                        pred = self.predict(val[0])
                        for name, fn in metric_fns.items():
                            logs["val_" + name] = fn(val[3], pred)
                history._append(logs)
                if bar is not None:
                    bar.close(logs)
                elif verbose:
                    _print_epoch(logs, epochs)
                stop = False
                for cb in callbacks:
                    stop = bool(cb.on_epoch_end(self, epoch, logs)) or stop
                if stop:
                    break
        finally:
            for cb in callbacks:
                if hasattr(cb, "on_train_end"):
                    cb.on_train_end(self, logs)
        return history

    def _run_epoch(self, trainer, X, Y, labels, order, batch_size, lr, bar):
        """One epoch: a single compiled call, or (with a progress bar) about 20 calls over
        whole batches."""
        n = X.shape[0]
        if bar is None:
            return trainer.epoch(X, Y, labels, order, batch_size, lr)
        n_batches = -(-n // batch_size)
        per_call = max(1, n_batches // 20) * batch_size
        total, n_correct = 0.0, 0
        for lo in range(0, n, per_call):
            hi = min(n, lo + per_call)
            if order is not None:
                t, c = trainer.epoch(X, Y, labels, order[lo:hi], batch_size, lr)
            else:
                t, c = trainer.epoch(X[lo:hi], None if Y is None else Y[lo:hi],
                                     None if labels is None else labels[lo:hi], None,
                                     batch_size, lr)
            total += t
            n_correct += c
            bar.update(hi, total / hi)
        return total, n_correct

    def _trainer(self, loss, batch_size, labels, fused):
        """The compiled training loop for this loss, batch size and update, built once and
        reused."""
        key = (loss, batch_size, labels, fused)
        if self._compiled is None or self._compiled[0] != key:
            trainer = _train.Trainer(self.params, self.grads,
                                     [self.n_in] + [l.n_out for l in self.layers],
                                     [l.activation_code for l in self.layers],
                                     [l.negative_slope for l in self.layers],
                                     LOSSES[loss], batch_size, labels, fused,
                                     [l.dropout for l in self.layers])
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


def _is_terminal():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _epoch_line(logs, epochs):
    parts = [f"epoch {logs['epoch']:>{len(str(epochs))}}/{epochs}", f"loss {logs['loss']:.6f}"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k == "accuracy" or k.startswith("val_")]
    parts.append(f"{logs['samples_per_sec']:>12,.0f} samples/s  {logs['seconds']:.3f} s")
    return "  ".join(parts)


def _print_epoch(logs, epochs):
    print(_epoch_line(logs, epochs), file=sys.stdout, flush=True)


class _Progress:
    """A live bar for one epoch: tqdm when it is installed, else one rewritten line."""

    def __init__(self, n, epoch, epochs):
        self.n, self.epoch, self.epochs = n, epoch, epochs
        self.start = time.perf_counter()
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=n, desc=f"epoch {epoch}/{epochs}", unit="samples",
                            leave=True, file=sys.stdout)
        except ImportError:
            self.bar = None
        self.done = 0

    def update(self, done, loss):
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.bar.set_postfix(loss=f"{loss:.4f}")
        else:
            width = 30
            filled = int(width * done / self.n)
            sys.stdout.write(f"\repoch {self.epoch}/{self.epochs} [{'=' * filled}"
                             f"{'.' * (width - filled)}] {done}/{self.n}  loss {loss:.4f}  "
                             f"{rate:,.0f} samples/s")
            sys.stdout.flush()
        self.done = done

    def close(self, logs):
        if self.bar is not None:
            self.bar.close()
            print(_epoch_line(logs, self.epochs), flush=True)
        else:
            sys.stdout.write("\r" + _epoch_line(logs, self.epochs) + " " * 10 + "\n")
            sys.stdout.flush()
