"""Optimizers: hyperparameters for the engine's one fused update pass over the flat buffers.

The update formulas are torch.optim's (SGD with momentum and Nesterov, Adam, AdamW, RMSprop), so
that the same hyperparameters train the same way. `weight_decay` adds L2 (decoupled in AdamW);
`clip_norm` first scales the gradients down to that global L2 norm (as clip_grad_norm_).

An optimizer holds hyperparameters; its state (the step count and the momentum or moment buffers,
shaped like the parameters) belongs to the model it trains: one OptimizerState per model, which
the engine advances in place. `optimizer.t` reads the step count of the model it trained last.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import _kernels
from ._validation import check_fraction, check_non_negative_float, check_positive_float

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from ._typing import FloatArray
    from .model import Sequential

_KIND = _kernels.fp_optimizer_kind
# a hyperparameter's check: (optimizer, name, value) -> the value to keep
_Check = Callable[[Any, str, Any], Any]


class OptimizerState:
    """An optimizer's state for one model: `steps` (one int64, advanced in place by the engine)
    and `buffers` (momentum, or Adam's two moments, or RMSprop's average; zeros at first)."""

    def __init__(self, n_buffers: int, params: FloatArray) -> None:
        self.steps: NDArray[np.int64] = np.zeros(1, np.int64)
        self.buffers: list[FloatArray] = [np.zeros_like(params) for _ in range(n_buffers)]

    @property
    def t(self) -> int:
        return int(self.steps[0])

    def __repr__(self) -> str:
        return f"OptimizerState(t={self.t}, buffers={len(self.buffers)})"


class Optimizer:
    """Base class: the hyperparameters lr, weight_decay and clip_norm, checked when they are set
    and again when training begins."""

    _kind: int = _KIND.FP_OPT_SGD
    lr: float
    weight_decay: float
    clip_norm: float | None

    def __init__(self, lr: float, weight_decay: float = 0.0, clip_norm: float | None = None
                 ) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        self.clip_norm = clip_norm
        self._state: OptimizerState | None = None  # of the model this optimizer trained last

    # Every hyperparameter is checked on assignment, so `opt.lr = -0.1` raises there; any
    # assignment also drops the C description made from them (_hyper).
    def __setattr__(self, name: str, value: Any) -> None:
        check = self._CHECKS.get(name)
        super().__setattr__(name, value if check is None else check(self, name, value))
        if name != "_state":
            super().__setattr__("_hyper_made", None)

    _CHECKS: dict[str, _Check] = {
        "lr": lambda self, name, v: check_positive_float(name, v),
        "weight_decay": lambda self, name, v: check_non_negative_float(name, v),
        "clip_norm": lambda self, name, v: None if v is None else check_positive_float(name, v),
    }

    @property
    def t(self) -> int:
        """The number of steps taken on the model this optimizer trained last."""
        return 0 if self._state is None else self._state.t

    @property
    def n_state(self) -> int:
        """How many buffers shaped like the parameters its state holds."""
        return _kernels._optimizer_n_state(self._kind)

    _hyper_made: dict[str, Any] | None = None

    def _hyper(self) -> dict[str, Any]:
        """Every field of the C description (the engine reads all of them), made from the
        checked hyperparameters once and kept until one is assigned again. Not to be changed."""
        hyper = self._hyper_made
        if hyper is None:
            hyper = self._fields()
            object.__setattr__(self, "_hyper_made", hyper)
        return hyper

    def _fields(self) -> dict[str, Any]:
        return {"kind": int(self._kind), "nesterov": False, "lr": self.lr, "momentum": 0.0,
                "beta1": 0.0, "beta2": 0.0, "eps": 0.0, "alpha": 0.0,
                "weight_decay": self.weight_decay, "max_norm": self.clip_norm or 0.0,
                "eps_outside": False, "lr_in_velocity": False}

    def step(self, model: Sequential) -> None:
        """One update of `model` from the gradients in model.grads (clipping scales them in
        place), continuing this optimizer's state on that model."""
        model._apply_optimizer(self)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments: type(self)(**self.get_config()) is a fresh twin."""
        return {"lr": self.lr, "weight_decay": self.weight_decay, "clip_norm": self.clip_norm}

    def _args(self) -> str:
        return f"lr={self.lr}" + (f", weight_decay={self.weight_decay}" if self.weight_decay else "") \
            + (f", clip_norm={self.clip_norm}" if self.clip_norm else "")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._args()})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum (Nesterov's if `nesterov`):
    buf = momentum * buf + g; params -= lr * (g + momentum * buf if nesterov else buf).
    Plain SGD (no momentum, weight decay or clipping) runs inside the weight-gradient product."""

    _CHECKS = dict(Optimizer._CHECKS, momentum=lambda self, name, v: check_fraction(name, v),
                   nesterov=lambda self, name, v: _check_nesterov(v))

    momentum: float
    nesterov: bool

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None) -> None:
        self.momentum = momentum
        self.nesterov = nesterov
        super().__init__(lr, weight_decay, clip_norm)
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov: needs a momentum > 0, got momentum=0")

    @property  # a class attribute elsewhere; here momentum chooses the kind
    def _kind(self) -> int:  # type: ignore[override]
        return _KIND.FP_OPT_MOMENTUM if self.momentum else _KIND.FP_OPT_SGD

    # scikit-learn's momentum keeps a velocity of rate-scaled steps, v = momentum v - lr g,
    # params += v, which carries earlier rates when lr changes (fastprop.sklearn); torch's buffer
    # holds gradients and the current lr scales it. The two agree at a constant lr.
    _lr_in_velocity = False

    def _fields(self) -> dict[str, Any]:
        if self.nesterov and not self.momentum:
            raise ValueError("nesterov: needs a momentum > 0, got momentum=0")
        return dict(super()._fields(), momentum=self.momentum, nesterov=self.nesterov,
                    lr_in_velocity=self._lr_in_velocity)

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), momentum=self.momentum, nesterov=self.nesterov)

    def _args(self) -> str:
        extra = f", momentum={self.momentum}" if self.momentum else ""
        extra += ", nesterov=True" if self.nesterov else ""
        return super()._args() + extra


def _check_nesterov(value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"nesterov: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def _betas(self: Adam, name: str, betas: Any) -> tuple[float, float]:
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}") from None
    return (check_fraction("betas[0]", b1), check_fraction("betas[1]", b2))


class Adam(Optimizer):
    """Adam (Kingma and Ba), with torch.optim.Adam's bias correction; weight_decay is L2."""

    _kind = _KIND.FP_OPT_ADAM
    betas: tuple[float, float]
    eps: float
    _CHECKS = dict(Optimizer._CHECKS, betas=_betas,
                   eps=lambda self, name, v: check_positive_float(name, v))

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float | None = None
                 ) -> None:
        self.betas = betas
        self.eps = eps
        super().__init__(lr, weight_decay, clip_norm)

    # scikit-learn's Adam adds eps to sqrt(v) before the bias correction (fastprop.sklearn)
    _eps_outside = False

    def _fields(self) -> dict[str, Any]:
        return dict(super()._fields(), beta1=self.betas[0], beta2=self.betas[1], eps=self.eps,
                    eps_outside=self._eps_outside)

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), betas=list(self.betas), eps=self.eps)

    def _args(self) -> str:
        return super()._args() + f", betas={self.betas}, eps={self.eps}"


class AdamW(Adam):
    """Adam with decoupled weight decay: params *= 1 - lr * weight_decay before the update."""

    _kind = _KIND.FP_OPT_ADAMW

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, clip_norm: float | None = None
                 ) -> None:
        super().__init__(lr, betas, eps, weight_decay, clip_norm)


class RMSprop(Optimizer):
    """RMSprop: v = alpha v + (1 - alpha) g^2; params -= lr g / (sqrt(v) + eps)."""

    _kind = _KIND.FP_OPT_RMSPROP
    alpha: float
    eps: float
    _CHECKS = dict(Optimizer._CHECKS, alpha=lambda self, name, v: check_fraction(name, v),
                   eps=lambda self, name, v: check_positive_float(name, v))

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm: float | None = None) -> None:
        self.alpha = alpha
        self.eps = eps
        super().__init__(lr, weight_decay, clip_norm)

    def _fields(self) -> dict[str, Any]:
        return dict(super()._fields(), alpha=self.alpha, eps=self.eps)

    def get_config(self) -> dict[str, Any]:
        return dict(super().get_config(), alpha=self.alpha, eps=self.eps)

    def _args(self) -> str:
        return super()._args() + f", alpha={self.alpha}, eps={self.eps}"


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop)}
