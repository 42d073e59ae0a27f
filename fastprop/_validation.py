"""Argument checks shared by the public API.

Every check raises before any kernel runs, with a message that names the argument, what was
expected and what was given: the compiled code trusts what it is handed.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Mapping, TypeVar, overload

import numpy as np

from ._kernels import C_INT_MAX as INT_MAX  # BLAS dimensions are C ints
from ._kernels import _all_finite, _value_range

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike, NDArray

_T = TypeVar("_T")


def check_dtype(dtype: Any) -> np.dtype[Any]:
    """The model dtype as a numpy dtype: float32 or float64."""
    if dtype is None:  # np.dtype(None) would be float64
        raise TypeError("dtype: expected 'float32' or 'float64', got None")
    try:
        dt: np.dtype[Any] = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected 'float32' or 'float64', got {dt.name!r}")
    return dt


def check_positive_int(name: str, value: Any) -> int:
    if type(value) is not int and (isinstance(value, (bool, np.bool_))
                                   or not isinstance(value, numbers.Integral)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if value > INT_MAX:  # type: ignore[operator]  # numbers.Integral's stub compares one way
        raise ValueError(f"{name}: expected at most {INT_MAX}, got {value!r}")
    return int(value)


def check_seed(name: str, seed: Any) -> int | None:
    """None or an integer in [0, 2**63): what numpy's default_rng accepts as a reproducible seed."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name}: expected None or a non-negative integer, got "
                        f"{type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**63:  # type: ignore[operator]  # (as above)
        raise ValueError(f"{name}: expected None or an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def check_int(name: str, value: Any, low: int = 0, high: int = INT_MAX) -> int:
    """An integer in [low, high] (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer in [{low}, {high}], got "
                        f"{type(value).__name__} {value!r}")
    if not low <= value <= high:  # type: ignore[operator]  # (as above)
        raise ValueError(f"{name}: expected an integer in [{low}, {high}], got {value!r}")
    return int(value)


@overload
def check_path(name: str, value: str | os.PathLike[str]) -> str: ...
@overload
def check_path(name: str, value: object) -> str | bytes: ...
def check_path(name: str, value: Any) -> str | bytes:
    """A file path: str or os.PathLike, neither empty nor a directory (an existing one, or a
    path ending in a separator)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a file path (str or os.PathLike), got "
                        f"{type(value).__name__}")
    path = os.fspath(value)
    text = os.fsdecode(path)
    if not text:
        raise ValueError(f"{name}: expected a file path, got an empty string")
    if text.endswith(tuple(s for s in (os.sep, os.altsep) if s)) or os.path.isdir(path):
        raise ValueError(f"{name}: expected a file path, got {text!r}, a directory")
    return path


def check_choice(name: str, value: _T, choices: Collection[object]) -> _T:
    """One of `choices` (compared only once its type is right)."""
    for c in choices:
        if type(value) is type(c) and value == c:
            return value
    raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}"
                     f"{did_you_mean(value, choices) if isinstance(value, str) else ''}")


def check_real(name: str, value: Any, what: str, in_range: Callable[[float], bool]) -> float:
    """A real number (not a bool) for which in_range(value) holds, as a float; `what` says what
    is expected, in the messages."""
    if type(value) is not float and (isinstance(value, (bool, np.bool_))  # float: no ABC checks
                                     or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ValueError(f"{name}: expected {what}, got an integer of {len(str(value))} "
                         f"digits") from None
    if not in_range(number):
        raise ValueError(f"{name}: expected {what}, got {number!r}")
    return number


def check_non_negative_float(name: str, value: Any) -> float:
    if type(value) is float and 0 <= value < math.inf:
        return value
    return check_real(name, value, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def check_fraction(name: str, value: Any) -> float:
    """A momentum, a beta, a dropout rate."""
    return check_real(name, value, "a number in [0, 1)", lambda v: 0 <= v < 1)


def check_positive_float(name: str, value: Any) -> float:
    return check_real(name, value, "a positive finite number", lambda v: math.isfinite(v) and v > 0)


def as_numeric_array(name: str, value: ArrayLike) -> NDArray[Any]:
    """np.asarray with a clear error for ragged lists and non-numeric data."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected a rectangular numeric array, got {type(value).__name__} "
                         f"that numpy cannot read as one ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numeric data (bool, int or float), got dtype "
                        f"'{arr.dtype}'")
    return arr


_COMPILED = (np.dtype(np.float32), np.dtype(np.float64))


def count_not_finite(arr: NDArray[Any]) -> int:
    """The number of NaN and inf in an array, without a temporary the size of the array: a
    float64 sum is finite exactly when every value is (unless float64 data overflows it, for
    which the values are counted, a chunk at a time)."""
    if arr.dtype.kind != "f":
        return 0
    if arr.dtype in _COMPILED and (arr.flags.c_contiguous or arr.flags.f_contiguous):
        if _all_finite(arr):  # compiled: no warning for inf - inf
            return 0
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.add.reduce(arr, axis=None, dtype=np.float64)):
                return 0
    return sum(int(chunk.size - np.count_nonzero(np.isfinite(chunk)))
               for chunk in np.array_split(arr.reshape(-1), max(1, arr.size // 65536)))


def finite_bounds(name: str, arr: NDArray[Any]) -> tuple[float, float]:
    """(least, largest) value of a non-empty numeric array, ValueError if a float one holds NaN
    or inf: one compiled pass for contiguous float32 and float64 (targets are checked by their
    bounds)."""
    if arr.dtype in _COMPILED and (arr.flags.c_contiguous or arr.flags.f_contiguous):
        lo, hi = _value_range(arr)
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    check_finite(name, arr)
    return float(arr.min()), float(arr.max())


def check_finite(name: str, arr: NDArray[Any]) -> None:
    """ValueError if a float array holds NaN or inf (counted by count_not_finite)."""
    n_bad = count_not_finite(arr)
    if n_bad:
        raise ValueError(f"{name}: expected finite values, got {n_bad} NaN or inf")


def check_matrix(name: str, value: ArrayLike, dtype: DTypeLike, n_cols: int | None = None,
                 n_rows: int | None = None, cols_name: str = "n_in") -> NDArray[Any]:
    """A finite 2-D array of `dtype`, in C or Fortran order (anything else is copied to C order)."""
    if type(value) is np.ndarray and value.dtype in _COMPILED and value.dtype == dtype and \
            value.ndim == 2 and value.flags.c_contiguous and 0 < min(value.shape) and \
            max(value.shape) <= INT_MAX and n_cols in (None, value.shape[1]) and \
            n_rows in (None, value.shape[0]) and _all_finite(value):
        return value  # already right (the common case): taken as it is after one compiled pass
    arr = as_numeric_array(name, value)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, {cols_name}), got "
                         f"{arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one sample, got an empty batch with shape "
                         f"{arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one column ({cols_name}), got shape "
                         f"{arr.shape}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} columns ({cols_name}), got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows (one per sample), got shape {arr.shape}")
    if max(arr.shape) > INT_MAX:
        raise ValueError(f"{name}: dimensions above {INT_MAX} are not supported, got {arr.shape}")
    if arr.dtype != dtype:
        with np.errstate(over="ignore"):  # reported below, naming the argument
            arr = arr.astype(dtype)
    check_finite(name, arr)  # after the cast: 1e39 becomes inf in float32
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr)
    return arr


def blas_operand(arr: NDArray[Any]) -> tuple[NDArray[Any], bool]:
    """(C-contiguous array, transposed?) describing `arr` to BLAS without a copy where possible."""
    if arr.flags.c_contiguous:
        return arr, False
    if arr.flags.f_contiguous:
        return arr.T, True
    return np.ascontiguousarray(arr), False


def canonical_name(argument: str, value: object, table: Collection[str],
                   aliases: Mapping[str, str], example: str) -> str:
    """The key of `table` that `value` names, directly or through `aliases` (case-insensitive)."""
    if not isinstance(value, str):
        raise TypeError(f"{argument}: expected a name such as {example!r}, got {type(value).__name__}")
    key = aliases.get(value.lower(), value.lower())
    if key not in table:
        raise ValueError(f"{argument}: expected one of {sorted(table)}, got {value!r}"
                         f"{did_you_mean(value.lower(), list(table) + list(aliases))}")
    return key


def did_you_mean(value: object, names: Iterable[object]) -> str:
    """'; did you mean ...?' for the closest of `names`, or ''."""
    import difflib
    close = difflib.get_close_matches(str(value), [str(n) for n in names], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
