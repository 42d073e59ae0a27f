"""The activation functions a layer can apply, by name.

The codes are those of csrc/fastprop.h. Each derivative is written through the activation's
output a = f(z), as in the seed's `sigmoid_derivative`: sigmoid a(1 - a), tanh 1 - a^2, relu
[a > 0], leaky relu 1 or the slope. Softmax is only an output, fused with its cross-entropy loss.
"""
from ._validation import canonical_name

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
    return canonical_name("activation", name, ACTIVATIONS, _ALIASES, "relu")
