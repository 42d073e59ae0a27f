"""The activation functions a layer can apply, by name.

The codes come from fastprop._kernels (declared once, in _kernels.pxd, from csrc/fastprop.h); the
functions themselves, forward and derivative side by side, are the rows of csrc/activations.h.
Each derivative is written through the activation's output a = f(z), as in the seed's
`sigmoid_derivative`: sigmoid a(1 - a), tanh 1 - a^2, relu [a > 0], leaky relu 1 or the slope.
Softmax is only an output, fused with its cross-entropy loss.
"""
from ._kernels import fp_activation as _code
from ._validation import canonical_name

ACTIVATIONS = {
    "identity": int(_code.FP_IDENTITY),
    "sigmoid": int(_code.FP_SIGMOID),
    "tanh": int(_code.FP_TANH),
    "relu": int(_code.FP_RELU),
    "leaky_relu": int(_code.FP_LEAKY_RELU),
    "softmax": int(_code.FP_SOFTMAX),
}

_ALIASES = {"linear": "identity", "none": "identity", "logistic": "sigmoid"}


def canonical_activation(name):
    """The canonical name of an activation; ValueError for an unknown one."""
    if name is None:
        return "identity"
    return canonical_name("activation", name, ACTIVATIONS, _ALIASES, "relu")
