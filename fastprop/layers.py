"""Layers. A Dense layer computes A = f(X W + b) with the seeds' layout W (n_in, n_out).

A layer's architecture is a LayerSpec, immutable: the one description of the network that the
engine is built from and that a saved file records. A layer holds no memory of its own: when a
Sequential model is built, its W and b become views into the model's one flat parameter buffer
(and dW, db into its gradient buffer).
"""
from typing import NamedTuple

import numpy as np

from ._validation import (as_numeric_array, check_finite, check_fraction, check_non_negative_float,
                          check_positive_int)
from .activations import TABLE as _ACTIVATIONS, canonical_activation


class LayerSpec(NamedTuple):
    """What the engine needs to know of a Dense layer (and of the Dropout folded after it)."""
    n_in: int
    n_out: int
    activation: str
    negative_slope: float = 0.01
    dropout_rate: float = 0.0
    alpha: float = 1.0  # elu's

    @property
    def activation_code(self):
        return _ACTIVATIONS[self.activation].code

    @property
    def activation_param(self):
        """The activation's one parameter, passed to C (0 for an activation without one)."""
        field = _ACTIVATIONS[self.activation].param
        return 0.0 if field is None else float(getattr(self, field))

    @property
    def n_params(self):
        return self.n_in * self.n_out + self.n_out

INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros")


def _default_init(activation):
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

    def __init__(self, n_in, n_out, activation="identity", *, negative_slope=0.01, alpha=1.0,
                 init=None):
        activation = canonical_activation(activation)
        self._spec = LayerSpec(check_positive_int("n_in", n_in), check_positive_int("n_out", n_out),
                               activation, check_non_negative_float("negative_slope",
                                                                    negative_slope),
                               alpha=check_non_negative_float("alpha", alpha))
        if activation == "softmax" and self.n_out < 2:
            raise ValueError("n_out: a softmax output needs at least 2 units (one unit's softmax "
                             "is always 1); for two classes use 1 sigmoid unit with "
                             "binary_cross_entropy")
        self._init_array = None
        if init is not None and not isinstance(init, str):
            arr = as_numeric_array("init", init)
            if arr.shape != (self.n_in, self.n_out):
                raise ValueError(f"init: expected an array of shape ({self.n_in}, {self.n_out}), "
                                 f"got shape {arr.shape}")
            check_finite("init", arr)
            self._init_array = arr.copy()
            init = "array"
        init = _default_init(activation) if init is None else init
        if init not in INITIALIZERS + ("array",):
            raise ValueError(f"init: expected one of {list(INITIALIZERS)} or an array, got {init!r}")
        self.init = init
        self._W = self._b = self._dW = self._db = None

    # The architecture, read-only: a model's engine is built from it.
    spec = property(lambda self: self._spec, doc="This layer's LayerSpec (read-only).")
    n_in = property(lambda self: self.spec.n_in)
    n_out = property(lambda self: self.spec.n_out)
    activation = property(lambda self: self.spec.activation)
    activation_code = property(lambda self: self.spec.activation_code)
    negative_slope = property(lambda self: self.spec.negative_slope)
    alpha = property(lambda self: self.spec.alpha)
    dropout_rate = property(lambda self: self.spec.dropout_rate,
                            doc="The rate of the Dropout that follows this layer in its model.")
    n_params = property(lambda self: self.spec.n_params)

    @property
    def in_model(self):
        return self._W is not None

    def _attach(self, params, grads, offset, dropout_rate):
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

    def _initialize(self, rng):
        # Glorot: variance 2 / (n_in + n_out); He: 2 / n_in. Uniform on [-limit, limit] has
        # variance limit^2 / 3.
        fan = self.n_in / 2.0 if self.init.startswith("he") else (self.n_in + self.n_out) / 2.0
        if self.init == "array":
            self._W[...] = self._init_array
        elif self.init == "zeros":
            self._W[...] = 0
        elif self.init.endswith("uniform"):
            limit = np.sqrt(3.0 / fan)
            self._W[...] = rng.uniform(-limit, limit, size=self._W.shape)
        else:
            self._W[...] = rng.normal(0.0, np.sqrt(1.0 / fan), size=self._W.shape)
        self._b[...] = 0

    def _bound(self, name):
        value = getattr(self, "_" + name)
        if value is None:
            raise RuntimeError(f"{name}: this layer is not part of a model yet; build a "
                               f"fastprop.Sequential with it first")
        return value

    def _checked(self, attr, value, shape, name=None):
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

    def _assign(self, name, value, shape):
        self._bound(name)[...] = self._checked(name, value, shape)

    # W and b are writable views into the model's flat parameter buffer; assigning copies into it.
    W = property(lambda self: self._bound("W"),
                 lambda self, v: self._assign("W", v, (self.n_in, self.n_out)),
                 doc="Weights (n_in, n_out), a view into the model's parameter buffer.")
    b = property(lambda self: self._bound("b"),
                 lambda self, v: self._assign("b", v, (self.n_out,)),
                 doc="Biases (n_out,), a view into the model's parameter buffer.")
    dW = property(lambda self: self._bound("dW"),
                  doc="Gradient of the last backward pass with respect to W.")
    db = property(lambda self: self._bound("db"),
                  doc="Gradient of the last backward pass with respect to b.")

    def __repr__(self):
        param = _ACTIVATIONS[self.activation].param
        extra = f", {param}={getattr(self, param)}" if param else ""
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{extra})"


class Dropout:
    """Inverted dropout on the output of the Dense layer before it: while training, each value
    is zeroed with probability `rate` and the others scaled by 1 / (1 - rate); at predict and
    evaluate time it is the identity. Masks come from the model's seed and step count, so runs
    reproduce. In a Sequential model it folds into the Dense layer it follows (that layer's
    `dropout_rate`), and runs inside the compiled training step."""

    def __init__(self, rate):
        self.rate = check_fraction("rate", rate)

    def __repr__(self):
        return f"Dropout({self.rate})"
