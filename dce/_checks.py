"""Input validation shared by the numerical modules.

Every public function checks its inputs here so that bad input raises a
``ValueError`` naming the quantity, never an obscure numpy error deep inside a
kernel nor a silently wrong number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def as_float_array(x: ArrayLike, name: str, *, ndim: int | None = None,
                   allow_nan: bool = False, dtype: Any = np.float64) -> NDArray[Any]:
    """Convert ``x`` to a float array, rejecting empty, non-numeric and NaN/inf input."""
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected numbers, got {type(x).__name__} ({exc})") from None
    if arr.size == 0:
        raise ValueError(f"{name}: empty array")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}")
    if not allow_nan and not np.all(np.isfinite(arr)):
        n_bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name}: {n_bad} NaN or infinite value(s)")
    return arr


def check_times(t: ArrayLike, name: str = "t_s", *, min_len: int = 2) -> NDArray[np.float64]:
    """Sample times: 1-D, finite, strictly increasing."""
    arr = as_float_array(t, name, ndim=1)
    if arr.size < min_len:
        raise ValueError(f"{name}: need at least {min_len} time points, got {arr.size}")
    steps = np.diff(arr)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise ValueError(
            f"{name}: times must be strictly increasing; {name}[{i}]={arr[i]:g} is followed "
            f"by {name}[{i + 1}]={arr[i + 1]:g}")
    return arr


def check_last_axis(arr: NDArray[Any], n: int, name: str, ref_name: str) -> None:
    """The last axis of ``arr`` must have length ``n`` (the length of ``ref_name``)."""
    if arr.ndim == 0 or arr.shape[-1] != n:
        raise ValueError(
            f"{name}: last axis has length {arr.shape[-1] if arr.ndim else 0} but {ref_name} "
            f"has {n} points (mismatched lengths)")


def check_positive(x: ArrayLike, name: str, *, allow_nan: bool = False) -> NDArray[np.float64]:
    arr = as_float_array(x, name, allow_nan=allow_nan)
    if np.any(arr[np.isfinite(arr)] <= 0):
        raise ValueError(f"{name}: must be > 0, got minimum {np.nanmin(arr):g}")
    return arr


def check_flip_angle(fa_deg: ArrayLike, name: str = "flip_angle_deg") -> NDArray[np.float64]:
    arr = as_float_array(fa_deg, name)
    if np.any((arr <= 0) | (arr >= 180)):
        raise ValueError(f"{name}: flip angle must be in (0, 180) degrees, got "
                         f"{arr.min():g}..{arr.max():g}")
    return arr


def check_tr(tr_s: float, name: str = "tr_s") -> float:
    arr = as_float_array(tr_s, name)
    if arr.ndim != 0:
        raise ValueError(f"{name}: expected a single repetition time, got shape {arr.shape}")
    val = float(arr)
    if not 0 < val < 1.0:
        raise ValueError(f"{name}: repetition time must be in seconds, 0 < TR < 1 s, got {val:g} "
                         "(did you pass milliseconds?)")
    return val


def check_fraction(x: float, name: str, *, lo: float = 0.0, hi: float = 1.0,
                   closed_hi: bool = False) -> float:
    val = float(as_float_array(x, name))
    ok = lo <= val <= hi if closed_hi else lo <= val < hi
    if not ok:
        raise ValueError(f"{name}: must be in [{lo:g}, {hi:g}{']' if closed_hi else ')'}, "
                         f"got {val:g}")
    return val
