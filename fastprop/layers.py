"""Layers. A Dense layer computes A = f(X W + b) with the seeds' layout W (n_in, n_out).

A layer's architecture is a LayerSpec, immutable: the one description of the network that the
engine is built from and that a saved file records. A layer holds no memory of its own: when a
Sequential model is built, its W and b become views into the model's one flat parameter buffer
(and dW, db into its gradient buffer).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._validation import (as_numeric_array, check_finite, check_fraction, check_non_negative_float,
                          check_positive_int)
from .activations import TABLE as _ACTIVATIONS, canonical_activation

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from ._typing import ActivationName, FloatArray, InitName


class LayerSpec(NamedTuple):
    """What the engine needs to know of a Dense layer (and of the Dropout folded after it)."""
    n_in: int
    n_out: int
    activation: str
    negative_slope: float = 0.01
    dropout_rate: float = 0.0
    alpha: float = 1.0  # elu's

    @property
    def activation_code(self) -> int:
        """The activation's code in the C table."""
        return _ACTIVATIONS[self.activation].code

    @property
    def activation_param(self) -> float:
        """The activation's one parameter, passed to C (0 for an activation without one)."""
        field = _ACTIVATIONS[self.activation].param
        return 0.0 if field is None else float(getattr(self, field))

    @property
    def n_params(self) -> int:
        """The parameters of W and b."""
        return self.n_in * self.n_out + self.n_out


INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros")


def _default_init(activation: str) -> str:
    # He for the rectifier family, Glorot for the saturating and linear activations (the row's)
    return _ACTIVATIONS[activation].init


class Dense:
    """A fully connected layer: Z = X W + b, A = f(Z).

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths; W has shape (n_in, n_out) and b shape (n_out,).
    activation : str
        'identity', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'gelu' (exact, with erf),
        'gelu_tanh' (torch's approximate='tanh'), 'silu' ('swish'), 'elu', 'softplus' (beta 1,
        and z itself above 20, as torch's) or (output layer only) 'softmax'.
    negative_slope : float
        The slope of leaky_relu for z < 0.
    alpha : float
        elu's alpha >= 0: alpha (exp(z) - 1) for z <= 0.
    init : str or array, optional
        'glorot_uniform', 'glorot_normal' (Xavier), 'he_uniform', 'he_normal' (Kaiming), 'zeros',
        or an array (n_in, n_out) to start from; by default He uniform for the rectifier family
        (relu, leaky_relu, elu, gelu, gelu_tanh, silu, softplus), Glorot uniform otherwise.
        Biases start at zero. Draws come from the model's seed.
    """

    def __init__(self, n_in: int, n_out: int, activation: ActivationName | None = "identity", *,
                 negative_slope: float = 0.01, alpha: float = 1.0,
                 init: InitName | ArrayLike | None = None) -> None:
        name = canonical_activation(activation)
        self._spec = LayerSpec(check_positive_int("n_in", n_in), check_positive_int("n_out", n_out),
                               name, check_non_negative_float("negative_slope", negative_slope),
                               alpha=check_non_negative_float("alpha", alpha))
        if name == "softmax" and self.n_out < 2:
            raise ValueError("n_out: a softmax output needs at least 2 units (one unit's softmax "
                             "is always 1); for two classes use 1 sigmoid unit with "
                             "binary_cross_entropy")
        self._init_array: np.ndarray[Any, Any] | None = None
        if init is not None and not isinstance(init, str):
            arr = as_numeric_array("init", init)
            if arr.shape != (self.n_in, self.n_out):
                raise ValueError(f"init: expected an array of shape ({self.n_in}, {self.n_out}), "
                                 f"got shape {arr.shape}")
            check_finite("init", arr)
            self._init_array = arr.copy()
            init = "array"
        init = _default_init(name) if init is None else init
        if init not in INITIALIZERS + ("array",):
            raise ValueError(f"init: expected one of {list(INITIALIZERS)} or an array, got {init!r}")
        self.init: str = init
        self._W: FloatArray | None = None
        self._b: FloatArray | None = None
        self._dW: FloatArray | None = None
        self._db: FloatArray | None = None

    # The architecture, read-only: a model's engine is built from it.
    @property
    def spec(self) -> LayerSpec:
        """This layer's LayerSpec (read-only)."""
        return self._spec

    @property
    def n_in(self) -> int:
        """The input width: W's rows."""
        return self._spec.n_in

    @property
    def n_out(self) -> int:
        """The output width (units): W's columns."""
        return self._spec.n_out

    @property
    def activation(self) -> str:
        """The activation's canonical name."""
        return self._spec.activation

    @property
    def activation_code(self) -> int:
        """The activation's code in the C table."""
        return self._spec.activation_code

    @property
    def negative_slope(self) -> float:
        """leaky_relu's slope for z < 0."""
        return self._spec.negative_slope

    @property
    def alpha(self) -> float:
        """elu's alpha."""
        return self._spec.alpha

    @property
    def dropout_rate(self) -> float:
        """The rate of the Dropout that follows this layer in its model."""
        return self._spec.dropout_rate

    @property
    def n_params(self) -> int:
        """The parameters of W and b: n_in * n_out + n_out."""
        return self._spec.n_params

    @property
    def in_model(self) -> bool:
        """True once a model holds this layer (its W and b are views into the model's buffer)."""
        return self._W is not None

    def _attach(self, params: FloatArray, grads: FloatArray, offset: int,
                dropout_rate: float) -> int:
        """Makes W, b (and dW, db) views of the flat buffers at `offset` and records the rate of
        the Dropout after it; returns the next offset. Called once, by Sequential, after every
        check has passed."""
        n_w = self.n_in * self.n_out
        self._spec = self._spec._replace(dropout_rate=dropout_rate)
        self._W = params[offset:offset + n_w].reshape(self.n_in, self.n_out)
        self._b = params[offset + n_w:offset + self.n_params]
        self._dW = grads[offset:offset + n_w].reshape(self.n_in, self.n_out)
        self._db = grads[offset + n_w:offset + self.n_params]
        return offset + self.n_params

    def _initialize(self, rng: np.random.Generator) -> None:
        # Glorot: variance 2 / (n_in + n_out); He: 2 / n_in. Uniform on [-limit, limit] has
        # variance limit^2 / 3.
        fan = self.n_in / 2.0 if self.init.startswith("he") else (self.n_in + self.n_out) / 2.0
        W = self._bound("W")
        if self.init == "array":
            W[...] = self._init_array
        elif self.init == "zeros":
            W[...] = 0
        elif self.init.endswith("uniform"):
            limit = np.sqrt(3.0 / fan)
            W[...] = rng.uniform(-limit, limit, size=W.shape)
        else:
            W[...] = rng.normal(0.0, np.sqrt(1.0 / fan), size=W.shape)
        self._bound("b")[...] = 0

    def _bound(self, name: str) -> FloatArray:
        value: FloatArray | None = getattr(self, "_" + name)
        if value is None:
            raise RuntimeError(f"{name}: this layer is not part of a model yet; build a "
                               f"fastprop.Sequential with it first")
        return value

    def _checked(self, attr: str, value: ArrayLike, shape: tuple[int, ...],
                 name: str | None = None) -> FloatArray:
        """`value` as an array of this layer's dtype and `shape`, checked; raises otherwise,
        naming the argument `name` (by default the attribute)."""
        target = self._bound(attr)
        name = attr if name is None else name
        arr = as_numeric_array(name, value)
        if arr.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got shape {arr.shape}")
        with np.errstate(over="ignore"):
            arr = arr.astype(target.dtype, copy=False)
        check_finite(name, arr)  # after the cast: 1e39 is inf in float32
        return arr

    def _assign(self, name: str, value: ArrayLike, shape: tuple[int, ...]) -> None:
        self._bound(name)[...] = self._checked(name, value, shape)

    # W and b are writable views into the model's flat parameter buffer; assigning copies into it.
    @property
    def W(self) -> FloatArray:
        """Weights (n_in, n_out), a view into the model's parameter buffer."""
        return self._bound("W")

    @W.setter
    def W(self, value: ArrayLike) -> None:
        self._assign("W", value, (self.n_in, self.n_out))

    @property
    def b(self) -> FloatArray:
        """Biases (n_out,), a view into the model's parameter buffer."""
        return self._bound("b")

    @b.setter
    def b(self, value: ArrayLike) -> None:
        self._assign("b", value, (self.n_out,))

    @property
    def dW(self) -> FloatArray:
        """Gradient of the last backward pass with respect to W."""
        return self._bound("dW")

    @property
    def db(self) -> FloatArray:
        """Gradient of the last backward pass with respect to b."""
        return self._bound("db")

    def __repr__(self) -> str:
        param = _ACTIVATIONS[self.activation].param
        extra = f", {param}={getattr(self, param)}" if param else ""
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{extra})"


class Dropout:
    """Inverted dropout on the output of the Dense layer before it: while training, each value
    is zeroed with probability `rate` and the others scaled by 1 / (1 - rate); at predict and
    evaluate time it is the identity. Masks come from the model's seed and step count, so runs
    reproduce. In a Sequential model it folds into the Dense layer it follows (that layer's
    `dropout_rate`), and runs inside the compiled training step."""

    def __init__(self, rate: float) -> None:
        self.rate = check_fraction("rate", rate)

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"
