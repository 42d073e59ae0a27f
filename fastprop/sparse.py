"""Sparse X: scipy.sparse matrices and arrays, read by the engine as CSR rows.

Every entry point that takes X (fit, partial_fit, train_step, predict, evaluate,
loss_and_gradients, gradcheck, explain, validation_data and the estimators) takes a
scipy.sparse matrix or array too. It is turned into CSR once (no copy for CSR input), its values
cast to the model's dtype once (no copy when they have it), and checked once; it is never made
dense. The first layer reads only the stored values: its forward product sums the rows of W
that a sample's values name, and its weight gradient is written only in those rows. Duplicate
column indices in a row add up, as scipy sums them; unsorted indices are fine.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ._validation import INT_MAX, count_not_finite

if TYPE_CHECKING:
    import scipy.sparse
    from numpy.typing import DTypeLike, NDArray

__all__ = ["CSR", "check_sparse", "is_sparse"]


class CSR:
    """Rows of a sparse matrix as the engine reads them: `values` of the model's dtype, int32
    column `indices` and int64 row pointers `indptr` (from 0), and `shape`. Made by
    check_sparse; a slice of rows is a view of the values and indices."""

    __slots__ = ("values", "indices", "indptr", "shape")
    ndim = 2

    def __init__(self, values: NDArray[Any], indices: NDArray[np.int32],
                 indptr: NDArray[np.int64], shape: tuple[int, int]) -> None:
        self.values, self.indices, self.indptr = values, indices, indptr
        self.shape = (int(shape[0]), int(shape[1]))

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.values.dtype

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> CSR:
        """Rows lo:hi (a slice with step 1): a view of the values and indices."""
        if not isinstance(rows, slice):
            raise TypeError(f"rows: expected a slice such as X[10:20], got {type(rows).__name__}")
        lo, hi, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError(f"rows: expected a slice with step 1, got step {step}")
        hi = max(lo, hi)
        a, b = int(self.indptr[lo]), int(self.indptr[hi])
        return CSR(self.values[a:b], self.indices[a:b], self.indptr[lo:hi + 1] - a,
                   (hi - lo, self.shape[1]))

    def tocsr(self) -> scipy.sparse.csr_matrix:
        """A scipy.sparse.csr_matrix of these rows (sharing the values and indices)."""
        import scipy.sparse
        return scipy.sparse.csr_matrix((self.values, self.indices, self.indptr),
                                       shape=self.shape)

    def toarray(self) -> NDArray[Any]:
        return np.asarray(self.tocsr().toarray())

    def __repr__(self) -> str:
        return (f"CSR(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype.name!r})")


def is_sparse(X: object) -> bool:
    """True for a scipy.sparse matrix or array (or checked CSR rows), without importing scipy
    for anything else."""
    return isinstance(X, CSR) or type(X).__module__.startswith("scipy.sparse")


def check_sparse(name: str, X: Any, dtype: DTypeLike, n_cols: Optional[int] = None,
                 n_rows: Optional[int] = None, cols_name: str = "n_in") -> CSR:
    """A scipy.sparse matrix or array (any format) as CSR rows of `dtype`: checked, converted
    and cast once."""
    if isinstance(X, CSR) and X.dtype == dtype:
        shape = X.shape
    else:
        shape = tuple(getattr(X, "shape", ()))
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D sparse matrix (n_samples, {cols_name}), got "
                         f"{len(shape)}-D with shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name}: expected at least one sample and one column, got shape "
                         f"{shape}")
    if n_cols is not None and shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} columns ({cols_name}), got shape {shape}")
    if n_rows is not None and shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows (one per sample), got shape {shape}")
    if max(shape) > INT_MAX:
        raise ValueError(f"{name}: dimensions above {INT_MAX} are not supported, got {shape}")
    if isinstance(X, CSR) and X.dtype == dtype:
        return X  # checked already
    csr = X.tocsr() if not isinstance(X, CSR) else X  # CSR input: no copy
    stored = int(csr.indptr[-1])
    values = csr.values if isinstance(csr, CSR) else csr.data
    if values.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numeric data (bool, int or float), got dtype "
                        f"'{values.dtype}'")
    with np.errstate(over="ignore"):  # reported below, naming the argument
        values = np.ascontiguousarray(values[:stored], dtype=dtype)
    n_bad = count_not_finite(values)  # after the cast: 1e39 becomes inf in float32
    if n_bad:
        raise ValueError(f"{name}: expected finite values, got {n_bad} NaN or inf among the "
                         f"stored values")
    indices, indptr = csr.indices[:stored], csr.indptr
    if indptr.shape != (shape[0] + 1,) or indptr[0] != 0 or (np.diff(indptr) < 0).any():
        raise ValueError(f"{name}: expected row pointers (indptr) from 0 that never decrease, "
                         f"one more than the {shape[0]} rows")
    if stored and not (indices.min() >= 0 and indices.max() < shape[1]):
        raise ValueError(f"{name}: expected column indices in [0, {shape[1]}), got "
                         f"{indices.min()} to {indices.max()}")
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    return CSR(values, indices, indptr, shape)
