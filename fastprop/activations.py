"""The activation functions a layer can apply: one row per activation.

A row holds what Python needs to know of an activation: its name and aliases, its code (from
fastprop._kernels, declared once in _kernels.pxd from csrc/fastprop.h), the initializer a Dense
layer takes by default, the name of its one parameter (the LayerSpec field the engine passes to
C: leaky_relu's negative_slope, elu's alpha), how ONNX writes it and which torch.nn module it is.
Whether its derivative reads the pre-activation Z is read from the C table (csrc/activations.h,
where forward and derivative stand side by side). Softmax is only an output, fused with its
cross-entropy loss.

Default initializers follow torch's and Keras's practice: He (Kaiming) for the rectifier family,
whose output keeps about half its input's variance at initialization (relu, leaky_relu, elu,
gelu, gelu_tanh, silu, softplus, mish, as the ELU, Swish and Mish papers train them), Glorot for
the saturating and linear ones (identity, sigmoid, tanh, softmax).

The new smooth activations are computed within a few units in the last place (ulp) of an exact
reference (tests/test_activations.py states each bound): gelu (v Phi(v), exact, through a
vectorized normal CDF) and mish within 4 ulp over the whole line, silu, elu and softplus within
3 ulp, gelu_tanh within 3 ulp times its condition number max(1, |v f'(v) / f(v)|) (torch's
formula itself loses every digit for v below about -5 in float32).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Literal, NamedTuple, Optional

from . import _kernels
from ._kernels import fp_activation as _code
from ._validation import canonical_name

if TYPE_CHECKING:
    from .onnx import _Graph

    _Writer = Callable[[_Graph, str, str, float], None]


class Activation(NamedTuple):
    name: str
    code: int
    aliases: tuple[str, ...] = ()
    init: str = "glorot_uniform"       # Dense's default initializer
    param: Optional[str] = None        # the LayerSpec field passed to C as the parameter
    onnx: Optional[_Writer] = None     # onnx(graph, z, a, param): writes a = f(z) (fastprop.onnx)
    torch: Optional[str] = None        # the torch.nn module; its keyword for `param` has its name
    torch_kwargs: tuple[tuple[str, object], ...] = ()  # its fixed keywords, (name, value) pairs
    needs_z: bool = False              # the derivative reads Z (from the C table)


# ONNX: each writes a = f(z) into the graph g (fastprop.onnx._Graph) with standard operators.
def _onnx_op(op: str) -> _Writer:
    def write(g: _Graph, z: str, a: str, p: float) -> None:
        g.node(op, [z], a)
    return write


def _onnx_leaky_relu(g: _Graph, z: str, a: str, slope: float) -> None:
    # Where(z > 0, z, slope z), in the model's dtype
    g.node("Where", [g.node("Greater", [z, g.const(0)]), z, g.node("Mul", [z, g.const(slope)])],
           a)


def _onnx_gelu(g: _Graph, z: str, a: str, p: float) -> None:
    # z (1 + erf(z / sqrt 2)) / 2
    erf = g.node("Erf", [g.node("Mul", [z, g.const(1 / math.sqrt(2))])])
    g.node("Mul", [g.node("Mul", [z, g.const(0.5)]), g.node("Add", [erf, g.const(1)])], a)


def _onnx_gelu_tanh(g: _Graph, z: str, a: str, p: float) -> None:
    # z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))) / 2
    cube = g.node("Mul", [g.node("Mul", [z, z]), z])
    inner = g.node("Add", [z, g.node("Mul", [cube, g.const(0.044715)])])
    t = g.node("Tanh", [g.node("Mul", [inner, g.const(math.sqrt(2 / math.pi))])])
    g.node("Mul", [g.node("Mul", [z, g.const(0.5)]), g.node("Add", [t, g.const(1)])], a)


def _onnx_silu(g: _Graph, z: str, a: str, p: float) -> None:
    g.node("Mul", [z, g.node("Sigmoid", [z])], a)


def _onnx_elu(g: _Graph, z: str, a: str, alpha: float) -> None:
    # Where(z > 0, z, alpha (exp(z) - 1))
    neg = g.node("Mul", [g.node("Sub", [g.node("Exp", [z]), g.const(1)]), g.const(alpha)])
    g.node("Where", [g.node("Greater", [z, g.const(0)]), z, neg], a)


def _onnx_log1p_exp(g: _Graph, z: str) -> str:
    # log(1 + exp(z)) as relu(z) + log(1 + exp(-|z|)): finite everywhere
    return g.node("Add", [g.node("Relu", [z]), g.node("Log", [g.node("Add", [
        g.node("Exp", [g.node("Neg", [g.node("Abs", [z])])]), g.const(1)])])])


def _onnx_softplus(g: _Graph, z: str, a: str, p: float) -> None:
    # and z above torch's threshold 20
    g.node("Where", [g.node("Greater", [z, g.const(20)]), z, _onnx_log1p_exp(g, z)], a)


def _onnx_mish(g: _Graph, z: str, a: str, p: float) -> None:
    # z tanh(softplus(z))
    g.node("Mul", [z, g.node("Tanh", [_onnx_log1p_exp(g, z)])], a)


def _onnx_softmax(g: _Graph, z: str, a: str, p: float) -> None:
    g.node("Softmax", [z], a, axis=-1)


# The names an activation is known by: each row's name and aliases below (case does not matter
# at run time).
ActivationName = Literal["identity", "linear", "none", "sigmoid", "logistic", "tanh", "relu",
                         "leaky_relu", "softmax", "gelu", "gelu_tanh", "silu", "swish", "elu",
                         "softplus", "mish"]

_HE = "he_uniform"
# Each row names its code in the C table (csrc/fastprop.h) by the C name.
_ROWS = (
    Activation("identity", _code["FP_IDENTITY"], ("linear", "none"), onnx=_onnx_op("Identity"),
               torch="Identity"),
    Activation("sigmoid", _code["FP_SIGMOID"], ("logistic",), onnx=_onnx_op("Sigmoid"),
               torch="Sigmoid"),
    Activation("tanh", _code["FP_TANH"], onnx=_onnx_op("Tanh"), torch="Tanh"),
    Activation("relu", _code["FP_RELU"], init=_HE, onnx=_onnx_op("Relu"), torch="ReLU"),
    Activation("leaky_relu", _code["FP_LEAKY_RELU"], init=_HE, param="negative_slope",
               onnx=_onnx_leaky_relu, torch="LeakyReLU"),
    Activation("softmax", _code["FP_SOFTMAX"], onnx=_onnx_softmax, torch="Softmax",
               torch_kwargs=(("dim", 1),)),
    Activation("gelu", _code["FP_GELU"], init=_HE, onnx=_onnx_gelu, torch="GELU"),
    Activation("gelu_tanh", _code["FP_GELU_TANH"], init=_HE, onnx=_onnx_gelu_tanh, torch="GELU",
               torch_kwargs=(("approximate", "tanh"),)),
    Activation("silu", _code["FP_SILU"], ("swish",), init=_HE, onnx=_onnx_silu, torch="SiLU"),
    Activation("elu", _code["FP_ELU"], init=_HE, param="alpha", onnx=_onnx_elu, torch="ELU"),
    Activation("softplus", _code["FP_SOFTPLUS"], init=_HE, onnx=_onnx_softplus, torch="Softplus"),
    Activation("mish", _code["FP_MISH"], init=_HE, onnx=_onnx_mish, torch="Mish"),
)

# name -> row, each row completed by what the C table knows of its code
TABLE: dict[str, Activation] = {
    r.name: r._replace(code=int(r.code), **_kernels._activation_describe(int(r.code)))
    for r in _ROWS}
if sorted(r.code for r in TABLE.values()) != list(range(_kernels.N_CODES["activation"])):
    raise ImportError("fastprop.activations: the rows do not match the C codes one to one")

ACTIVATIONS: dict[str, int] = {name: r.code for name, r in TABLE.items()}
_ALIASES = {alias: r.name for r in TABLE.values() for alias in r.aliases}


def canonical_activation(name: ActivationName | None) -> ActivationName:
    """The canonical name of an activation; ValueError for an unknown one."""
    if name is None:
        return "identity"
    # a key of ACTIVATIONS: an ActivationName (tests/test_typing.py checks the names)
    return canonical_name("activation", name, ACTIVATIONS, _ALIASES,  # type: ignore[return-value]
                          "relu")


def activation_row(name: ActivationName | None) -> Activation:
    """The row of an activation, by name or alias; ValueError for an unknown one."""
    return TABLE[canonical_activation(name)]
