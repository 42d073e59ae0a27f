"""The activation functions a layer can apply, by name.

The codes are those of csrc/fastprop.h. Each derivative is written through the activation's
output a = f(z), as in the seed's `sigmoid_derivative`: sigmoid a(1 - a), tanh 1 - a^2, relu
[a > 0], leaky relu 1 or the slope. Softmax is only an output, fused with its cross-entropy loss.
"""

ACTIVATIONS = {
    "identity": 0,
    "sigmoid": 1,
    "tanh": 2,
    "relu": 3,
    "leaky_relu": 4,
    "softmax": 5,
}

_ALIASES = {"linear": "identity", "none": "identity", "logistic": "sigmoid"}


def canonical_activation(name):
    """The canonical name of an activation; ValueError for an unknown one."""
    if name is None:
        return "identity"
    if not isinstance(name, str):
        raise TypeError(f"activation: expected a name such as 'relu', got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {name!r}")
    return key
