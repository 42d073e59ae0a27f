"""Conversion to and from PyTorch: nn.Sequential(Linear, activation, ..., Linear) state dicts,
with torch's weights (n_out, n_in) transposed to and from fastprop's (n_in, n_out); and the
torch module of a model (each activation the torch.nn module its row names)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .activations import TABLE as _ACTIVATIONS

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from .layers import Dense
    from .model import Sequential

__all__ = ["to_state_dict", "load_state_dict", "to_module", "activation_module"]


def _torch(what: str) -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch: pip install torch") from None
    return torch


def to_state_dict(model: Sequential) -> dict[str, Any]:
    """The weights as a state dict: keys '0.weight', '0.bias', '2.weight', ... (a Linear at every
    other index, the activations between them)."""
    torch = _torch("to_torch_state_dict")
    out = {}
    for i, layer in enumerate(model.layers):
        out[f"{2 * i}.weight"] = torch.from_numpy(layer.W.T.copy())
        out[f"{2 * i}.bias"] = torch.from_numpy(layer.b.copy())
    return out


def activation_module(layer: Dense) -> Any:
    """The torch.nn module computing `layer`'s activation (its parameter passed under its name:
    LeakyReLU's negative_slope, ELU's alpha; Softmax over dim 1)."""
    torch = _torch("activation_module")
    row = _ACTIVATIONS[layer.activation]
    kwargs: dict[str, object] = dict(row.torch_kwargs)
    if row.param:
        kwargs[row.param] = layer.spec.activation_param
    return getattr(torch.nn, row.torch)(**kwargs)  # type: ignore[arg-type]  # every row has one


def to_module(model: Sequential) -> Any:
    """An nn.Sequential(Linear, activation, Linear, activation, ...) computing what `model`
    predicts, in its dtype, with its weights; its state dict is to_state_dict's."""
    torch = _torch("to_torch_module")
    mods = []
    for layer in model.layers:
        linear = torch.nn.Linear(layer.n_in, layer.n_out).to(
            torch.float32 if model.dtype == np.float32 else torch.float64)
        mods += [linear, activation_module(layer)]
    net = torch.nn.Sequential(*mods)
    net.load_state_dict(to_state_dict(model))
    return net


def _numpy(value: Any) -> NDArray[Any]:
    return np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)


def load_state_dict(model: Sequential, state_dict: Mapping[str, Any]) -> None:
    """Sets `model`'s weights from a state dict whose '*.weight' and '*.bias' entries are, in
    order, the model's layers. Every entry is checked before any weight changes."""
    if not hasattr(state_dict, "items"):
        raise TypeError(f"state_dict: expected a mapping of names to tensors, got "
                        f"{type(state_dict).__name__}")
    weights = [(k, v) for k, v in state_dict.items() if str(k).endswith(".weight")]
    biases = [(k, v) for k, v in state_dict.items() if str(k).endswith(".bias")]
    n = len(model.layers)
    if len(weights) != n or len(biases) != n:
        raise ValueError(f"state_dict: expected {n} weight and bias entries, got {len(weights)} "
                         f"weights and {len(biases)} biases")
    pairs = []
    for i, ((kw, w), (kb, b)) in enumerate(zip(weights, biases)):
        layer = model.layers[i]
        w, b = _numpy(w), _numpy(b)
        if w.shape != (layer.n_out, layer.n_in):
            raise ValueError(f"state_dict[{kw!r}]: expected shape ({layer.n_out}, {layer.n_in}) "
                             f"for layers[{i}], got {w.shape}")
        if b.shape != (layer.n_out,):
            raise ValueError(f"state_dict[{kb!r}]: expected shape ({layer.n_out},) for "
                             f"layers[{i}], got {b.shape}")
        pairs.append((w.T, b))
    model.set_weights(pairs)  # checks every pair before it writes any
