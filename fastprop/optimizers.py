"""Optimizers: each step is one fused kernel over the model's flat parameter buffer.

The update formulas are torch.optim's (SGD with momentum and Nesterov, Adam, AdamW, RMSprop), so
that the same hyperparameters train the same way. `weight_decay` adds L2 (decoupled in AdamW);
`clip_norm` first scales the gradients down to that global L2 norm (as clip_grad_norm_). State
(momentum, moments) lives in flat buffers shaped like the parameters, created at the first step.
"""
import numpy as np

from . import _kernels
from ._validation import check_positive_float

_SGD, _MOMENTUM, _ADAM, _ADAMW, _RMSPROP = 0, 1, 2, 3, 4


def _fraction(name, value, low_inclusive=True):
    value = float(value)
    if not (0 <= value < 1) or (not low_inclusive and value == 0):
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return value


def _non_negative(name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return value


class Optimizer:
    """Base class: holds the hyperparameters, the state buffers and the step count `t`."""

    _kind = _SGD
    _n_state = 0

    def __init__(self, lr, weight_decay=0.0, clip_norm=None):
        self.lr = check_positive_float("lr", lr)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.clip_norm = None if clip_norm is None else check_positive_float("clip_norm", clip_norm)
        self.t = 0
        self._state = None

    def _hyper(self):
        return {"kind": self._kind, "lr": self.lr, "weight_decay": self.weight_decay,
                "max_norm": self.clip_norm or 0.0}

    @property
    def _fused(self):
        """Plain SGD can be fused into the weight-gradient product (see _train.pyx)."""
        return False

    def state_buffers(self, model):
        """The state buffers for `model` (created at zero on first use, or after the model's
        size or dtype changed)."""
        key = (model.params.shape, model.params.dtype)
        if self._state is None or self._state[0] != key:
            self._state = (key, [np.zeros(*key) for _ in range(self._n_state)])
            self.t = 0
        buffers = self._state[1] + [None] * (2 - self._n_state)
        return buffers[0], buffers[1]

    def step(self, model):
        """One update of `model` from the gradients of its last backward pass (model.grads;
        clipping scales them in place)."""
        s1, s2 = self.state_buffers(model)
        self.t += 1
        _kernels._optimizer_step(self._hyper(), model.params, model.grads, s1, s2, self.t)

    def get_config(self):
        """The constructor's arguments: type(self)(**self.get_config()) is a fresh twin."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "clip_norm": self.clip_norm}

    def _args(self):
        return f"lr={self.lr}" + (f", weight_decay={self.weight_decay}" if self.weight_decay else "") \
            + (f", clip_norm={self.clip_norm}" if self.clip_norm else "")

    def __repr__(self):
        return f"{type(self).__name__}({self._args()})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (Nesterov's if `nesterov`):
    buf = momentum * buf + g; params -= lr * (g + momentum * buf if nesterov else buf)."""

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)
        self.momentum = _fraction("momentum", momentum)
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov: needs a momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        self._kind = _MOMENTUM if self.momentum else _SGD
        self._n_state = 1 if self.momentum else 0

    def _hyper(self):
        return dict(super()._hyper(), momentum=self.momentum, nesterov=self.nesterov)

    @property
    def _fused(self):
        return self._kind == _SGD and not self.weight_decay and not self.clip_norm

    def get_config(self):
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)

    def _args(self):
        extra = f", momentum={self.momentum}" if self.momentum else ""
        extra += ", nesterov=True" if self.nesterov else ""
        return super()._args() + extra


class Adam(Optimizer):
    """Adam (Kingma and Ba), with torch.optim.Adam's bias correction; weight_decay is L2."""

    _kind = _ADAM
    _n_state = 2

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_fraction("betas[0]", b1), _fraction("betas[1]", b2))
        self.eps = check_positive_float("eps", eps)

    def _hyper(self):
        return dict(super()._hyper(), beta1=self.betas[0], beta2=self.betas[1], eps=self.eps)

    def get_config(self):
        return dict(super().get_config(), betas=list(self.betas), eps=self.eps)

    def _args(self):
        return super()._args() + f", betas={self.betas}, eps={self.eps}"


class AdamW(Adam):
    """Adam with decoupled weight decay: params *= 1 - lr * weight_decay before the update."""

    _kind = _ADAMW

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, clip_norm=None):
        super().__init__(lr, betas, eps, weight_decay, clip_norm)


class RMSprop(Optimizer):
    """RMSprop: v = alpha v + (1 - alpha) g^2; params -= lr g / (sqrt(v) + eps)."""

    _kind = _RMSPROP
    _n_state = 1

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, clip_norm=None):
        super().__init__(lr, weight_decay, clip_norm)
        self.alpha = _fraction("alpha", alpha)
        self.eps = check_positive_float("eps", eps)

    def _hyper(self):
        return dict(super()._hyper(), alpha=self.alpha, eps=self.eps)

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha, eps=self.eps)

    def _args(self):
        return super()._args() + f", alpha={self.alpha}, eps={self.eps}"
