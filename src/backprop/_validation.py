"""Argument, array and shape checks: the one place where error wording lives.

Every message names the argument, says what was expected and what was received:
"`learning_rate` must be a positive number; got -0.1".
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

import numpy as np

__all__ = [
    "BackpropError",
    "UsageError",
    "NotFittedError",
    "check_positive",
    "check_non_negative",
    "check_int",
    "check_probability",
    "check_choice",
    "check_dtype",
    "as_float_array",
    "as_batch",
    "as_targets",
    "check_finite",
    "describe",
    "check_pair",
]


class BackpropError(ValueError):
    """A problem with the user's input, data or model file (a ValueError, so callers may catch either)."""


class UsageError(BackpropError):
    """A bad option value or combination of options: the command line's usage error (exit 2)."""


class NotFittedError(BackpropError, AttributeError):
    """A method that needs a trained model was called before training."""


def describe(value: Any) -> str:
    """Short human description of a received value for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, str):
        return repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value: Any) -> float:
    """Return `value` as a float if it is a finite number > 0."""
    if not _is_real(value) or not np.isfinite(value) or value <= 0:
        raise BackpropError(f"`{name}` must be a positive number; got {describe(value)}")
    return float(value)


def check_non_negative(name: str, value: Any) -> float:
    """Return `value` as a float if it is a finite number >= 0."""
    if not _is_real(value) or not np.isfinite(value) or value < 0:
        raise BackpropError(f"`{name}` must be a non-negative number; got {describe(value)}")
    return float(value)


def check_probability(name: str, value: Any, *, inclusive_high: bool = False) -> float:
    """Return `value` if 0 <= value < 1 (or <= 1 with inclusive_high)."""
    ok = _is_real(value) and 0 <= value and (value <= 1 if inclusive_high else value < 1)
    if not ok:
        bound = "[0, 1]" if inclusive_high else "[0, 1)"
        raise BackpropError(f"`{name}` must be a number in {bound}; got {describe(value)}")
    return float(value)


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return `value` if it is an integer >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise BackpropError(f"`{name}` must be an integer >= {minimum}; got {describe(value)}")
    return int(value)


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Return `value` if it is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise BackpropError(
            f"`{name}` must be one of {', '.join(map(repr, choices))}; got {describe(value)}"
        )
    return value


def check_dtype(name: str, value: Any) -> np.dtype:
    """Accept float32 or float64 (as dtype, type or string)."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise BackpropError(f"`{name}` must be float32 or float64; got {describe(value)}")
    return dtype


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# From this many items, a contiguous 2-D float array is first screened by its row sums.
SCREEN_FROM = 1 << 20


def _row_sums_finite(array: np.ndarray) -> bool:
    """True when every row of the 2-D float array sums to a finite number, which proves every
    entry finite: under IEEE arithmetic a NaN or an infinity times 1 stays what it is, and no
    addition turns it back into a finite number. False proves nothing (finite entries may
    overflow their row's sum). The sums are one BLAS matrix-vector product in BLAS's threads:
    60000 x 784 float32 in 7 ms, where ``np.isfinite`` takes 29 ms (it writes a temporary
    array of booleans as large as X) and a compiled single-thread pass 13 ms."""
    ones = np.ones(array.shape[1], array.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(array @ ones).all())


def check_finite(name: str, array: np.ndarray) -> np.ndarray:
    """Raise if `array` holds NaN or infinity, saying where the first one is."""
    if (array.size >= SCREEN_FROM and array.ndim == 2 and array.dtype in _FLOATS
            and (array.flags.c_contiguous or array.flags.f_contiguous) and _row_sums_finite(array)):
        return array
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        where = ", ".join(str(int(i)) for i in bad)
        raise BackpropError(
            f"`{name}` must contain only finite numbers; got {array.flat[np.ravel_multi_index(bad, array.shape)]} "
            f"at index ({where}); remove or impute missing values first"
        )
    return array


def as_float_array(name: str, value: Any, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Convert to a float array of `dtype`, with a clear error for non-numeric, complex or ragged data."""
    if getattr(getattr(value, "dtype", None), "kind", None) == "c":
        raise BackpropError(f"`{name}` must be real numbers; got complex values ({describe(value)})")
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        if "inhomogeneous" in str(exc):
            raise BackpropError(
                f"`{name}` must be a rectangular array (every row the same length); got rows of different lengths"
            ) from None
        raise BackpropError(
            f"`{name}` must be numeric (an array of numbers); got {describe(value)} ({exc}); "
            f"encode text or class labels as numbers first (e.g. backprop.datasets.one_hot)"
        ) from None
    return array


def as_batch(
    name: str, value: Any, n_features: int, dtype: np.dtype | type = np.float64, finite: bool = True
) -> tuple[np.ndarray, bool]:
    """Return (2-D array of shape (n, n_features), was_1d).

    A 1-D array of length n_features is one sample; it comes back as shape (1, n_features).
    ``finite=False`` leaves the check for NaN and infinity to the caller.
    """
    array = as_float_array(name, value, dtype)
    was_1d = array.ndim == 1
    if was_1d:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != n_features:
        raise BackpropError(
            f"`{name}` must have shape (n_samples, {n_features}) or ({n_features},); "
            f"got shape {np.shape(value)}"
        )
    if array.shape[0] == 0:
        raise BackpropError(f"`{name}` must contain at least one sample; got shape {array.shape}")
    if finite:
        check_finite(name, array)
    return array, was_1d


def as_targets(
    name: str, value: Any, n_samples: int, n_outputs: int, dtype: np.dtype | type = np.float64
) -> np.ndarray:
    """Return targets as a 2-D array of shape (n_samples, n_outputs).

    Accepted: (n_samples, n_outputs); (n_outputs,) for a single sample; (n_samples,) when
    n_outputs == 1.
    """
    array = as_float_array(name, value, dtype)
    if array.ndim == 1:
        if n_samples == 1 and array.shape[0] == n_outputs:
            array = array.reshape(1, n_outputs)
        elif n_outputs == 1 and array.shape[0] == n_samples:
            array = array.reshape(n_samples, 1)
    if array.shape != (n_samples, n_outputs):
        raise BackpropError(
            f"`{name}` must have shape ({n_samples}, {n_outputs}) to match the inputs and the "
            f"network's {n_outputs} output(s); got shape {np.shape(value)}"
        )
    check_finite(name, array)
    return array


def check_pair(name: str, value: Any, *, minimum: int = 1) -> tuple[int, int]:
    """Return an int or a pair of ints, each >= minimum, as a pair (kernel sizes, strides, padding)."""
    pair = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    ok = (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum for v in pair)
    )
    if not ok:
        raise BackpropError(
            f"`{name}` must be an integer >= {minimum} or a pair of them; got {describe(value)}"
        )
    return int(pair[0]), int(pair[1])
