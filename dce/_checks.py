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


#: Flip angles all at or below this (deg) are taken as radians (pi/2 plus rounding).
_RADIAN_LIMIT = 1.6


def check_flip_angle(fa_deg: ArrayLike, name: str = "flip_angle_deg", *,
                     radians_hint: bool = True) -> NDArray[np.float64]:
    """Flip angle(s) in degrees, each in (0, 180); with ``radians_hint`` (user-facing
    acquisition parameters) all <= 1.6 is reported as radians."""
    arr = as_float_array(fa_deg, name)
    if radians_hint and np.all((arr > 0) & (arr <= _RADIAN_LIMIT)):
        raise ValueError(
            f"{name}: flip angle(s) {_fmt(arr)} look like radians; flip angles are in "
            f"degrees (e.g. 15, not 0.26): multiply by 180/pi")
    if np.any((arr <= 0) | (arr >= 180)):
        raise ValueError(f"{name}: flip angle must be in (0, 180) degrees, got "
                         f"{arr.min():g}..{arr.max():g}")
    return arr


def check_tr(tr_s: float, name: str = "tr_s") -> float:
    """Repetition time (s), 0 < TR < 1; TR >= 1 is reported as milliseconds."""
    arr = as_float_array(tr_s, name)
    if arr.ndim != 0:
        raise ValueError(f"{name}: expected a single repetition time, got shape {arr.shape}")
    val = float(arr)
    if val >= 1.0:
        raise ValueError(f"{name}: repetition time {val:g} looks like ms; TR is in s (SPGR "
                         f"TR is a few ms, e.g. 0.005, not 5): divide by 1000")
    if val <= 0:
        raise ValueError(f"{name}: repetition time must be > 0 s, got {val:g}")
    return val


def _fmt(arr: NDArray[Any]) -> str:
    flat = np.ravel(arr)
    text = ", ".join(f"{v:g}" for v in flat[:6])
    return text + (", ..." if flat.size > 6 else "")


def check_fraction(x: float, name: str, *, lo: float = 0.0, hi: float = 1.0,
                   closed_hi: bool = False) -> float:
    val = float(as_float_array(x, name))
    ok = lo <= val <= hi if closed_hi else lo <= val < hi
    if not ok:
        raise ValueError(f"{name}: must be in [{lo:g}, {hi:g}{']' if closed_hi else ')'}, "
                         f"got {val:g}")
    return val


# --------------------------------------------------------------------------- unit hints
# Physical range checks whose messages say which unit the value looks like. The thresholds
# lie between the physically plausible range in the documented unit and the same quantity
# in the unit it is most often confused with (ms vs s, rad vs deg, /M vs /mM, % vs fraction).

#: A T1 above this (s) is not tissue or blood; 1000 etc. are milliseconds.
T1_MAX_S = 20.0
#: Relaxivities of gadolinium agents are 2-20 /mM/s; above this they are per M.
R1_MAX_PER_MM_PER_S = 100.0
#: Plausible B1 factor (actual / nominal flip angle) range.
B1_FACTOR_RANGE = (0.3, 2.0)


def check_t10(t10_s: ArrayLike, name: str = "t10_s", *, allow_nan: bool = False
              ) -> NDArray[np.float64]:
    """Pre-contrast T1 (s): a value or a map; NaN allowed in maps with ``allow_nan``.

    The median of the finite values must lie in (0, :data:`T1_MAX_S`]; a median above
    that is reported as "looks like ms".
    """
    arr = as_float_array(t10_s, name, allow_nan=allow_nan)
    fin = arr[np.isfinite(arr)]
    if fin.size == 0:
        return arr
    med = float(np.median(fin))
    if med > T1_MAX_S:
        raise ValueError(
            f"{name}: T1 of {med:g} (median) looks like ms; T10 is in s (e.g. 1.2, not "
            f"1200): divide by 1000")
    if arr.ndim == 0 and med <= 0:
        raise ValueError(f"{name}: pre-contrast T1 must be a finite value > 0 s, got {med:g}")
    return arr


def check_relaxivity(r1: ArrayLike, name: str = "r1_per_mM_per_s") -> float:
    """Longitudinal relaxivity (/mM/s): one value in (0, :data:`R1_MAX_PER_MM_PER_S`]."""
    arr = as_float_array(r1, name)
    if arr.ndim != 0:
        raise ValueError(f"{name}: expected a single value, got shape {arr.shape}")
    val = float(arr)
    if val <= 0:
        raise ValueError(f"{name}: relaxivity must be > 0, got {val:g}")
    if val > R1_MAX_PER_MM_PER_S:
        raise ValueError(
            f"{name}: relaxivity {val:g} looks like per M per s; r1 is per mM per s "
            f"(gadolinium agents 2-20 /mM/s, e.g. 4.5): divide by 1000")
    return val


def check_hematocrit(hct: ArrayLike, name: str = "hematocrit") -> float:
    """Hematocrit: a fraction in [0, 1); values in (1, 100) are reported as percent."""
    val = float(as_float_array(hct, name))
    if 1.0 < val < 100.0:
        raise ValueError(f"{name}: {val:g} looks like percent; hematocrit is a fraction "
                         f"(e.g. 0.45): divide by 100")
    return check_fraction(val, name)


def b1_factor_hint(median: float) -> str:
    """Unit hint for a B1 map whose median ``median`` is not a plausible factor."""
    if 30.0 <= median <= 200.0:
        return "looks like percent (100 = nominal); use the 'percent' convention"
    if 240.0 <= median <= 1600.0:
        return ("looks like a Siemens tfl_b1map (flip angle in 0.1 deg of a nominal 80 deg, "
                "800 = nominal); use the 'siemens_tfl_b1map' convention")
    return (f"a B1 factor (actual / nominal flip angle) must lie in "
            f"{B1_FACTOR_RANGE[0]:g}-{B1_FACTOR_RANGE[1]:g}")


def check_b1_factor(b1: ArrayLike, name: str = "b1", *, allow_nan: bool = False
                    ) -> NDArray[np.float64]:
    """Relative flip-angle scale (1.0 = nominal): > 0 and median in :data:`B1_FACTOR_RANGE`."""
    arr = as_float_array(b1, name, allow_nan=allow_nan)
    fin = arr[np.isfinite(arr)]
    if fin.size == 0:
        return arr
    if np.any(fin <= 0):
        raise ValueError(f"{name}: B1 factor must be > 0, got minimum {fin.min():g}")
    med = float(np.median(fin))
    lo, hi = B1_FACTOR_RANGE
    if not lo <= med <= hi:
        raise ValueError(f"{name}: B1 factor median {med:g} {b1_factor_hint(med)}")
    return arr


def check_config_units(config: Any) -> list[str]:
    """Unit hints for the physical values of a workflow configuration (a mapping).

    Returns one message per implausible value, naming the key (``section.key``), the
    value and the unit it looks like; an empty list when everything is plausible. The
    JSON schema gives ranges, this gives the reason.
    """
    checks: list[tuple[str, str, Any]] = [
        ("acquisition", "r1_per_mM_per_s", check_relaxivity),
        ("acquisition", "hematocrit", check_hematocrit),
        ("t1", "fallback_t10_s", check_t10),
        ("aif", "blood_t10_s", check_t10),
    ]
    out: list[str] = []

    def section_of(name: str) -> dict[str, Any]:
        sec = config.get(name) if isinstance(config, dict) else None
        return sec if isinstance(sec, dict) else {}

    for section, key, check in checks:
        value = section_of(section).get(key)
        if value is None or isinstance(value, (str, bool)):
            continue
        try:
            check(value, f"{section}.{key}")
        except ValueError as exc:
            out.append(str(exc))
    rng = section_of("t1").get("t1_range_s")
    if (isinstance(rng, list) and len(rng) == 2
            and all(isinstance(v, (int, float)) for v in rng) and max(rng) > 100 * T1_MAX_S):
        out.append(f"t1.t1_range_s: {list(rng)} looks like ms; the T1 range is in s "
                   "(default [0.01, 20.0])")
    return out
