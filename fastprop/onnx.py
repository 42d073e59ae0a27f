"""ONNX export: a fastprop model, or a fitted fastprop.sklearn estimator, as an ONNX graph.

    onnx_model = fastprop.onnx.to_onnx(model)            # input "X" (n, n_in)
    fastprop.onnx.save_onnx(model, "model.onnx")

Each Dense layer becomes MatMul + Add + its activation, written by the activation's row
(fastprop.activations: Sigmoid, Tanh, Relu, a leaky relu as Where(z > 0, z, slope z), gelu with
Erf, gelu_tanh with Tanh, silu as z Sigmoid(z), elu as Where(z > 0, z, alpha (Exp(z) - 1)),
softplus as Where(z > 20, z, Relu(z) + Log(1 + Exp(-|z|))) as torch's threshold, Softmax over
the last axis), in the model's dtype (float32 or float64);
dropout is off at inference and leaves no trace. A Sequential gives one output, "output" (the
last activation: probabilities for sigmoid and softmax outputs). A classifier estimator gives
"label" (its classes_, strings included, or a 0/1 matrix for multilabel) and "probabilities"
(predict_proba's), as skl2onnx does with zipmap off; a regressor gives "variable". Needs the onnx
package: pip install "fastprop[onnx]".
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from .activations import TABLE as _ACTIVATIONS

if TYPE_CHECKING:
    import os

    from .model import Sequential

__all__ = ["to_onnx", "save_onnx"]

_OPSET = 17


class _Graph:
    """The nodes and initializers of a graph being written, for the activations' rows:
    node(op, inputs, output=None, **attributes) adds a node and returns its output's name;
    const(value) a scalar initializer in the model's dtype."""

    def __init__(self, helper: Any, numpy_helper: Any, dtype: np.dtype[Any], prefix: str = ""
                 ) -> None:
        self.helper, self.numpy_helper, self.dtype = helper, numpy_helper, dtype
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.prefix, self._n = prefix, 0

    def _name(self) -> str:
        self._n += 1
        return f"{self.prefix}t{self._n}"

    def node(self, op: str, inputs: Iterable[str], output: str | None = None,
             **attributes: Any) -> str:
        output = self._name() if output is None else output
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], **attributes))
        return output

    def const(self, value: float) -> str:
        name = self._name()
        self.inits.append(self.numpy_helper.from_array(np.array(value, self.dtype), name))
        return name


def _onnx() -> tuple[Any, Any, Any, Any]:
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError('fastprop.onnx needs the onnx package: pip install "fastprop[onnx]"') \
            from None
    return onnx, TensorProto, helper, numpy_helper


def _model_of(obj: object) -> tuple[Sequential, Any]:
    """(Sequential, estimator or None) for a model or a fitted fastprop.sklearn estimator."""
    from .model import Sequential
    if isinstance(obj, Sequential):
        return obj, None
    model = getattr(obj, "model_", None)
    if isinstance(model, Sequential):
        return model, obj
    if hasattr(obj, "fit") and hasattr(obj, "get_params"):
        raise ValueError(f"model_or_estimator: expected a fitted estimator; call fit first on "
                         f"this {type(obj).__name__}")
    raise TypeError(f"model_or_estimator: expected a fastprop.Sequential or a fitted "
                    f"fastprop.sklearn estimator, got {type(obj).__name__}")


def to_onnx(model_or_estimator: object, *, name: str = "fastprop") -> Any:
    """The ONNX ModelProto of a fastprop model or fitted fastprop.sklearn estimator."""
    onnx, TensorProto, helper, numpy_helper = _onnx()
    model, estimator = _model_of(model_or_estimator)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty graph name, got {name!r}")
    elem = TensorProto.FLOAT if model.dtype == np.float32 else TensorProto.DOUBLE
    g = _Graph(helper, numpy_helper, model.dtype, prefix="act_")
    nodes, inits = g.nodes, g.inits
    x = "X"
    for i, layer in enumerate(model.layers):
        inits.append(numpy_helper.from_array(layer.W.copy(), f"W{i}"))
        inits.append(numpy_helper.from_array(layer.b.copy(), f"b{i}"))
        nodes.append(helper.make_node("MatMul", [x, f"W{i}"], [f"xw{i}"]))
        nodes.append(helper.make_node("Add", [f"xw{i}", f"b{i}"], [f"z{i}"]))
        write = _ACTIVATIONS[layer.activation].onnx
        write(g, f"z{i}", f"a{i}", layer.spec.activation_param)  # type: ignore[misc]
        x = f"a{i}"
    outputs = []
    n_out = model.n_out
    if estimator is None:
        nodes.append(helper.make_node("Identity", [x], ["output"]))
        outputs.append(helper.make_tensor_value_info("output", elem, [None, n_out]))
    elif hasattr(estimator, "classes_"):
        outputs += _classifier_outputs(estimator, x, elem, nodes, inits, helper, numpy_helper,
                                       TensorProto)
    else:
        nodes.append(helper.make_node("Identity", [x], ["variable"]))
        outputs.append(helper.make_tensor_value_info("variable", elem, [None, n_out]))
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info(
        "X", elem, [None, model.n_in])], outputs, inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)],
                                   producer_name="fastprop")
    onnx_model.ir_version = min(onnx_model.ir_version, 8)
    onnx.checker.check_model(onnx_model)
    return onnx_model


def _classifier_outputs(est: Any, x: str, elem: int, nodes: list[Any], inits: list[Any],
                        helper: Any, numpy_helper: Any, TensorProto: Any) -> list[Any]:
    kind = est._label_binarizer.y_type_
    classes = np.asarray(est.classes_)
    if len(classes) == 1:  # one class seen in fit: both columns of [1 - p, p] name it
        classes = np.repeat(classes, 2)
    if kind == "multilabel-indicator":
        inits.append(numpy_helper.from_array(np.array(0.5, est.model_.dtype), "half"))
        nodes += [helper.make_node("Greater", [x, "half"], ["above"]),
                  helper.make_node("Cast", ["above"], ["label"], to=TensorProto.INT64),
                  helper.make_node("Identity", [x], ["probabilities"])]
        n = len(classes)
        return [helper.make_tensor_value_info("label", TensorProto.INT64, [None, n]),
                helper.make_tensor_value_info("probabilities", elem, [None, n])]
    if kind == "binary":  # one logistic output p: probabilities [1 - p, p]
        inits.append(numpy_helper.from_array(np.array(1, est.model_.dtype), "one"))
        nodes += [helper.make_node("Sub", ["one", x], ["q"]),
                  helper.make_node("Concat", ["q", x], ["probabilities"], axis=1)]
    else:
        nodes.append(helper.make_node("Identity", [x], ["probabilities"]))
    nodes.append(helper.make_node("ArgMax", ["probabilities"], ["index"], axis=1, keepdims=0))
    if classes.dtype.kind in "OUS":
        table = numpy_helper.from_array(classes.astype(object), "classes")
        label_type = TensorProto.STRING
    else:
        table = numpy_helper.from_array(classes.astype(np.int64), "classes")
        label_type = TensorProto.INT64
    inits.append(table)
    nodes.append(helper.make_node("Gather", ["classes", "index"], ["label"], axis=0))
    return [helper.make_tensor_value_info("label", label_type, [None]),
            helper.make_tensor_value_info("probabilities", elem, [None, len(classes)])]


def save_onnx(model_or_estimator: object, path: str | os.PathLike[str], *,
              name: str = "fastprop") -> str:
    """Writes the ONNX graph of `model_or_estimator` to `path`, atomically; returns the path."""
    from ._validation import check_path
    from .io import write_atomically
    checked = check_path("path", path)
    data = to_onnx(model_or_estimator, name=name).SerializeToString()
    return write_atomically(checked, lambda f: f.write(data))
