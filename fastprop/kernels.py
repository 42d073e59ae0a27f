"""The compiled kernels, callable from Python on NumPy arrays.

These are the building blocks of every training step, exposed for testing, teaching and custom
loops. Each checks its arguments and then runs one compiled kernel with the GIL released:

- forward:          Z = X W + b, A = f(Z)          (BLAS, then bias and activation fused)
- delta:            dZ_prev = (dZ W^T) * f'(Z_prev) (BLAS, then the derivative fused)
- weight_gradient:  dW = A_prev^T dZ, db = sum dZ  (BLAS with a transpose flag, no copy)
- loss_gradient:    the loss of the output layer and dL/dZ
- sgd_update:       params -= lr * grads over one flat buffer

The dtype (float32 or float64) is that of W (or of params); other inputs are converted to it.
Matrices may be in C or Fortran order (read by BLAS without a copy) or any strided view (copied).
Every input must be finite and non-empty, every dimension within a C int, and an output buffer
must be a writable C-contiguous array of the right shape and dtype that shares no memory with any
input (or with another output): each of these raises a ValueError or TypeError naming the
argument before any compiled code runs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Sequence, overload

import numpy as np

from . import _kernels
from ._kernels import C_INT_MAX as INT_MAX
from ._validation import (as_numeric_array, blas_operand, check_dtype, check_finite,
                          check_matrix, check_positive_float)
from .activations import activation_row
from .losses import LOSSES, canonical_loss, check_output_activation, prepare_targets

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

    from ._typing import ActivationName, FloatArray, LossName
    from .activations import Activation

__all__ = ["forward", "delta", "weight_gradient", "loss_gradient", "sgd_update"]


def _param_dtype(name: str, arr: ArrayLike, ndim: int = 2) -> tuple[FloatArray, np.dtype[Any]]:
    """A float array whose dtype sets the computation's, with `ndim` dimensions, none empty or
    beyond a C int, and finite values."""
    arr = as_numeric_array(name, arr)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {arr.dtype.name!r}")
    if arr.ndim != ndim:
        what = "(n_in, n_out)" if name == "W" else "(n_samples, n_out)"
        raise ValueError(f"{name}: expected a {ndim}-D array {what}, got shape {arr.shape}")
    _check_size(name, arr)
    check_finite(name, arr)
    return arr, arr.dtype


def _check_size(name: str, arr: NDArray[Any]) -> None:
    if 0 in arr.shape:
        raise ValueError(f"{name}: expected no empty dimension, got shape {arr.shape}")
    if max(arr.shape) > INT_MAX:
        raise ValueError(f"{name}: expected dimensions up to {INT_MAX} (a C int), got "
                         f"{arr.shape}")


def _vector(name: str, value: ArrayLike, dtype: np.dtype[Any], n: int) -> FloatArray:
    arr = as_numeric_array(name, value)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},), got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(name, arr)
    return arr


def _out(name: str, out: FloatArray | None, shape: tuple[int, ...], dtype: np.dtype[Any],
         inputs: Sequence[tuple[str, NDArray[Any] | None]] = ()) -> FloatArray:
    """A checked output buffer, or a new one. `inputs`: (name, array) pairs it must not
    overlap (an output read while it is written gives wrong numbers)."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"{name}: expected a {dtype.name} array of shape {shape}, got "
                         f"{out.dtype.name} of shape {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name}: expected a writable C-contiguous array")
    for other, arr in inputs:
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{name}: must not share memory with {other}; pass a separate "
                             f"array (or none, to have one allocated)")
    return out


def _activation(activation: ActivationName, negative_slope: float, alpha: float
                ) -> tuple[Activation, float]:
    """(row, the parameter passed to C): negative_slope for leaky_relu, alpha for elu."""
    row = activation_row(activation)
    params = {"negative_slope": negative_slope, "alpha": alpha}
    for name, value in params.items():
        v = float(value)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        params[name] = v
    return row, params[row.param] if row.param else 0.0


@overload
def forward(X: ArrayLike, W: ArrayLike, b: ArrayLike, activation: ActivationName = ..., *,
            negative_slope: float = ..., alpha: float = ..., out: FloatArray | None = ...,
            Z_out: None = ...) -> FloatArray: ...
@overload
def forward(X: ArrayLike, W: ArrayLike, b: ArrayLike, activation: ActivationName = ..., *,
            negative_slope: float = ..., alpha: float = ..., out: FloatArray | None = ...,
            Z_out: FloatArray | Literal[True]) -> tuple[FloatArray, FloatArray]: ...
def forward(X: ArrayLike, W: ArrayLike, b: ArrayLike, activation: ActivationName = "identity",
            *, negative_slope: float = 0.01, alpha: float = 1.0, out: FloatArray | None = None,
            Z_out: FloatArray | Literal[True] | None = None
            ) -> FloatArray | tuple[FloatArray, FloatArray]:
    """Z = X W + b and A = f(Z) for X (n_samples, n_in), W (n_in, n_out), b (n_out,).

    Returns A; or (Z, A) if `Z_out` is given (pass ``Z_out=True`` to have it allocated).
    """
    W, dtype = _param_dtype("W", W)
    n_in, n_out = W.shape
    X = check_matrix("X", X, dtype, n_cols=n_in)
    b = _vector("b", b, dtype, n_out)
    row, param = _activation(activation, negative_slope, alpha)
    shape = (X.shape[0], n_out)
    inputs = (("X", X), ("W", W), ("b", b))
    A = _out("out", out, shape, dtype, inputs)
    Z = None if Z_out is None else _out("Z_out", None if Z_out is True else Z_out, shape, dtype,
                                        inputs + (("out", A),))
    Xs, trans_x = blas_operand(X)
    Ws, trans_w = blas_operand(W)
    _kernels._forward(Xs, trans_x, Ws, trans_w, b, Z, A, row.code, param)
    return A if Z is None else (Z, A)


def delta(dZ: ArrayLike, W: ArrayLike, A_prev: ArrayLike, activation_prev: ActivationName, *,
          Z_prev: ArrayLike | None = None, negative_slope: float = 0.01, alpha: float = 1.0,
          out: FloatArray | None = None) -> FloatArray:
    """dZ_prev = (dZ W^T) * f'(Z_prev), f' read from A_prev = f(Z_prev) and, for an activation
    whose derivative needs it (gelu, gelu_tanh, silu, elu, softplus), Z_prev itself.

    dZ (n_samples, n_out) is the delta of a layer with weights W (n_in, n_out); A_prev and Z_prev
    (n_samples, n_in) are the previous layer's activation and pre-activation. Returns dZ_prev
    (n_samples, n_in).
    """
    W, dtype = _param_dtype("W", W)
    n_in, n_out = W.shape
    dZ = check_matrix("dZ", dZ, dtype, n_cols=n_out, cols_name="n_out")
    A_prev = np.ascontiguousarray(check_matrix("A_prev", A_prev, dtype, n_cols=n_in,
                                               n_rows=dZ.shape[0]))
    row, param = _activation(activation_prev, negative_slope, alpha)
    if row.name == "softmax":
        raise ValueError("activation_prev: softmax is only an output activation, fused with its loss")
    if row.needs_z and Z_prev is None:
        raise ValueError(f"Z_prev: expected the pre-activation for {row.name!r}, whose "
                         f"derivative reads it, got None")
    if Z_prev is not None:
        Z_prev = np.ascontiguousarray(check_matrix("Z_prev", Z_prev, dtype, n_cols=n_in,
                                                   n_rows=dZ.shape[0]))
    dZ_prev = _out("out", out, A_prev.shape, dtype, (("dZ", dZ), ("W", W), ("A_prev", A_prev),
                                                     ("Z_prev", Z_prev)))
    dZs, trans_d = blas_operand(dZ)
    Ws, trans_w = blas_operand(W)
    _kernels._delta(dZs, trans_d, Ws, trans_w, A_prev, Z_prev, dZ_prev, row.code, param)
    return dZ_prev


def weight_gradient(A_prev: ArrayLike, dZ: ArrayLike, *, dW: FloatArray | None = None,
                    db: FloatArray | None = None, accumulate: bool = False
                    ) -> tuple[FloatArray, FloatArray]:
    """dW = A_prev^T dZ and db = sum over samples of dZ; with accumulate, added to dW and db.

    A_prev (n_samples, n_in), dZ (n_samples, n_out). Returns (dW, db).
    """
    dZ, dtype = _param_dtype("dZ", dZ)
    dZ = np.ascontiguousarray(dZ)
    A_prev = check_matrix("A_prev", A_prev, dtype, n_rows=dZ.shape[0])
    n_in, n_out = A_prev.shape[1], dZ.shape[1]
    if accumulate and (dW is None or db is None):
        raise ValueError("accumulate: expected dW and db buffers to add to, got None")
    inputs = (("A_prev", A_prev), ("dZ", dZ))
    dW = _out("dW", dW, (n_in, n_out), dtype, inputs)
    db = _out("db", db, (n_out,), dtype, inputs + (("dW", dW),))
    if accumulate:
        check_finite("dW", dW)
        check_finite("db", db)
    As, trans_a = blas_operand(A_prev)
    _kernels._weight_gradient(As, trans_a, dZ, dW, db, bool(accumulate))
    return dW, db


def loss_gradient(loss: LossName, Z: ArrayLike, A: ArrayLike, y: ArrayLike,
                  activation: ActivationName, *, negative_slope: float = 0.01, alpha: float = 1.0,
                  out: FloatArray | None = None) -> tuple[float, FloatArray, int]:
    """The mean loss of an output layer and dL/dZ.

    Z (n_samples, n_out) is the output layer's pre-activation and A = f(Z) its activation
    (binary and softmax cross-entropy read only Z, the logits). Returns (loss, dZ, n_correct).
    """
    Z, dtype = _param_dtype("Z", Z)
    Z = np.ascontiguousarray(Z)
    A = np.ascontiguousarray(check_matrix("A", A, dtype, n_cols=Z.shape[1], n_rows=Z.shape[0],
                                          cols_name="n_out"))
    loss = canonical_loss(loss)
    row, param = _activation(activation, negative_slope, alpha)
    check_output_activation(loss, row.name)
    Y, labels = prepare_targets(loss, y, Z.shape[0], Z.shape[1], dtype)
    dZ = _out("out", out, Z.shape, dtype, (("Z", Z), ("A", A), ("y", Y), ("y", labels)))
    value, n_correct = _kernels._loss_gradient(LOSSES[loss], Z, A, Y, labels, dZ, row.code, param)
    return value, dZ, n_correct


def sgd_update(params: FloatArray, grads: ArrayLike, lr: float) -> FloatArray:
    """params -= lr * grads, in place, over two 1-D buffers of one dtype. Returns params."""
    if not isinstance(params, np.ndarray) or params.ndim != 1 or not params.flags.c_contiguous \
            or not params.flags.writeable:
        raise ValueError("params: expected a writable C-contiguous 1-D numpy array")
    dtype = check_dtype(params.dtype)
    check_finite("params", params)
    grads = _vector("grads", grads, dtype, params.shape[0])
    if np.may_share_memory(params, grads):
        raise ValueError("grads: must not share memory with params")
    lr = check_positive_float("lr", lr)
    if params.size:
        _kernels._sgd_update(params, grads, lr)
    return params
