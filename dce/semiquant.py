"""Semi-quantitative time-intensity-curve (TIC) metrics and the TIC type A-E classifier.

Model-free descriptors of a DCE-MRI signal time course (seed review: Saha et al., AJNR
2025; Jackson 2014; Khadem 2012; Lang 2013; Meng 2016) and the five TIC shapes of
Chen et al. (J Magn Reson Imaging 2002;15:308-14):

====  ===============================  ==========================================
Type  Shape                            Spine examples in the seed review
====  ===============================  ==========================================
A     almost flat                      normal marrow, successfully treated lesion
B     gradual rise                     (none given)
C     fast wash-in, then plateau       viable tumour
D     fast wash-in, then washout       untreated metastasis, myeloma
E     fast wash-in, then gradual rise  metastasis after successful radiotherapy
====  ===============================  ==========================================

Everything is vectorised over curves: ``signal`` has shape ``(..., n_times)`` (one curve
per voxel or ROI) and every metric has shape ``signal.shape[:-1]``. Times ``t_s`` are the
actual (possibly unevenly spaced) acquisition times of the phases, in seconds.

Notation used in all docstrings
-------------------------------
``S[k]``
    signal of phase ``k`` at time ``t[k]`` (signal units, "a.u."); between samples the
    curve is the straight line through neighbouring samples (linear interpolation).
``S0``
    baseline signal: mean of ``S`` over the baseline phases (``n_baseline`` leading
    phases or explicit ``baseline_idx``).
``kb``
    index of the last baseline phase. Phases ``k > kb`` are post-baseline.
``t_arr``
    bolus arrival time (s). Default ``t[kb]``, the last pre-contrast phase: the curve
    is assumed unenhanced up to that time and enhancement is measured from there. A
    scalar or per-curve arrival time may be given instead (e.g. from an arrival-time
    estimator); it must lie in ``[t[0], t[-1])``.
``E(t) = S(t) - S0``
    (absolute) enhancement, signal units.
post-arrival phases
    phases ``k`` with ``k > kb`` and ``t[k] > t_arr``; the peak is searched among them.

Bad voxels never raise: a curve whose ``S0 <= 0`` gets NaN for every metric that divides
by ``S0`` and the :attr:`CurveFlag.NONPOSITIVE_BASELINE` bit in ``flags``; with
``allow_nan=True`` a curve containing NaN/inf gets NaN everywhere and
:attr:`CurveFlag.NONFINITE`. Invalid *arguments* (mismatched lengths, non-increasing
times, impossible baseline, bad rule thresholds, ...) raise ``ValueError``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from numbers import Integral
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dce._checks import as_float_array, check_fraction, check_last_axis, check_times
from dce.registry import TIC_CODES

__all__ = [
    "MENG2016_RSLOPE_CUTOFFS",
    "TIC_TYPES",
    "CurveFlag",
    "TICFeatures",
    "TICMetrics",
    "TICRule",
    "baseline_signal",
    "classify_tic",
    "normalized_peak_enhancement",
    "relative_enhancement",
    "rslope_max",
    "semiquant_maps",
    "tic_metrics",
    "tic_type_codes",
]

FloatArray = NDArray[np.float64]

#: Chen et al. 2002 TIC types, letter -> description.
TIC_TYPES = {
    "A": "almost flat",
    "B": "gradual rise",
    "C": "fast wash-in then plateau",
    "D": "fast wash-in then washout",
    "E": "fast wash-in then gradual rise",
}

#: RSlope_max cut-offs of Meng et al. (Eur Spine J 2016;25:3952-61) against angiography:
#: < 1.325 hypovascular (87.5% sensitivity), > 1.85 hypervascular (96.4%), moderate between.
MENG2016_RSLOPE_CUTOFFS = (1.325, 1.85)


class CurveFlag(enum.IntFlag):
    """Per-curve quality bits, combined in the ``flags`` arrays (``uint8``).

    Test with ``flags & CurveFlag.X``. ``flags == 0`` means every metric is defined
    (the one exception: ``washout_pct`` is NaN, unflagged, if the peak signal is <= 0).
    """

    OK = 0
    #: The curve contains NaN/inf (only possible with ``allow_nan=True``): all metrics NaN.
    NONFINITE = 1
    #: Per-curve arrival time NaN or outside ``[t[0], t[-1])``: all metrics except S0 NaN.
    INVALID_ARRIVAL = 2
    #: ``S0 <= 0``: every metric that divides by S0 is NaN; no TIC type.
    NONPOSITIVE_BASELINE = 4
    #: At least one IAUC window ends after the last phase: that IAUC is NaN.
    IAUC_BEYOND_DATA = 8
    #: The reference curve's peak enhancement (%) is <= 0 or NaN: normalized peak NaN.
    INVALID_REFERENCE = 16
    #: ``t_arr + rule.fast_window_s >= t[-1]``: no late phase to judge, no TIC type.
    SHORT_ACQUISITION = 32


# --------------------------------------------------------------------------------------
# shared preparation
# --------------------------------------------------------------------------------------

def _resolve_baseline(n_times: int, n_baseline: Any, baseline_idx: Any) -> NDArray[np.intp]:
    """Sorted baseline phase indices; at least one post-baseline phase must follow them."""
    if (n_baseline is None) == (baseline_idx is None):
        raise ValueError("baseline: give exactly one of n_baseline (number of leading "
                         "baseline phases) or baseline_idx (explicit phase indices)")
    if n_baseline is not None:
        if isinstance(n_baseline, (bool, np.bool_)) or not isinstance(n_baseline, Integral):
            raise ValueError(f"n_baseline: expected an integer number of phases, got "
                             f"{n_baseline!r}")
        nb = int(n_baseline)
        if nb < 1:
            raise ValueError(f"n_baseline: need at least 1 baseline phase, got {nb}")
        if nb >= n_times:
            raise ValueError(f"n_baseline: {nb} baseline phases leave no post-baseline phase "
                             f"in {n_times} time points (need n_baseline < n_times)")
        return np.arange(nb, dtype=np.intp)
    idx = np.asarray(baseline_idx)
    if idx.size == 0:
        raise ValueError("baseline_idx: empty array")
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"baseline_idx: expected a 1-D list of integer phase indices, got "
                         f"{baseline_idx!r}")
    if idx.min() < 0 or idx.max() >= n_times:
        raise ValueError(f"baseline_idx: indices must be in [0, {n_times - 1}], got "
                         f"{idx.min()}..{idx.max()}")
    if np.unique(idx).size != idx.size:
        raise ValueError("baseline_idx: duplicate phase indices")
    if idx.max() >= n_times - 1:
        raise ValueError(f"baseline_idx: the last phase ({n_times - 1}) is a baseline phase; "
                         "at least one post-baseline phase must follow the baseline")
    return np.sort(idx).astype(np.intp)


@dataclass
class _Prep:
    sig: FloatArray            # (m, n) curves; invalid rows replaced by ones
    t: FloatArray              # (n,)
    batch_shape: tuple[int, ...]
    kb: int                    # last baseline index
    s0: FloatArray             # (m,)
    t_arr: FloatArray          # (m,); invalid rows replaced by t[kb]
    arrival_is_scalar: bool
    nonfinite: NDArray[np.bool_]   # (m,)
    bad_arrival: NDArray[np.bool_]  # (m,)
    post: NDArray[np.bool_]    # (m, n) post-arrival phases
    k_peak: NDArray[np.intp]   # (m,)
    flags: NDArray[np.uint8]   # (m,)


def _prepare(signal: ArrayLike, t_s: ArrayLike, n_baseline: Any, baseline_idx: Any,
             t_arrival_s: ArrayLike | None, allow_nan: bool) -> _Prep:
    t = check_times(t_s, "t_s", min_len=2)
    n = t.size
    sig = as_float_array(signal, "signal", allow_nan=allow_nan)
    if sig.ndim == 0:
        raise ValueError("signal: expected an array shaped (..., n_times), got a scalar")
    check_last_axis(sig, n, "signal", "t_s")
    base = _resolve_baseline(n, n_baseline, baseline_idx)
    kb = int(base[-1])
    batch_shape = sig.shape[:-1]
    m = int(np.prod(batch_shape, dtype=np.int64))
    sig2 = sig.reshape(m, n)
    nonfinite = ~np.all(np.isfinite(sig2), axis=1)

    t_default = float(t[kb])
    if t_arrival_s is None:
        t_arr = np.full(m, t_default)
        bad_arr = np.zeros(m, dtype=bool)
        scalar = True
    else:
        arr = as_float_array(t_arrival_s, "t_arrival_s", allow_nan=allow_nan)
        if arr.ndim == 0:
            v = float(arr)
            if not np.isfinite(v):
                raise ValueError(f"t_arrival_s: must be finite, got {v}")
            if not t[0] <= v < t[-1]:
                raise ValueError(f"t_arrival_s: {v:g} s is outside the acquisition "
                                 f"[{t[0]:g}, {t[-1]:g}) s")
            t_arr = np.full(m, v)
            bad_arr = np.zeros(m, dtype=bool)
            scalar = True
        else:
            try:
                arr_b = np.broadcast_to(arr, batch_shape)
            except ValueError:
                raise ValueError(f"t_arrival_s: shape {arr.shape} does not broadcast to the "
                                 f"curves' shape {batch_shape}") from None
            t_arr = np.array(arr_b, dtype=np.float64).reshape(m)
            with np.errstate(invalid="ignore"):
                bad_arr = ~np.isfinite(t_arr) | (t_arr < t[0]) | (t_arr >= t[-1])
            scalar = False

    if np.any(nonfinite) or np.any(bad_arr):
        sig2 = sig2.copy()
        sig2[nonfinite] = 1.0
        t_arr = np.where(bad_arr, t_default, t_arr)

    s0 = sig2[:, base].mean(axis=1)
    if scalar:  # one arrival for every curve: the post-arrival phases are one suffix
        row = (np.arange(n) > kb) & (t > t_arr[0])
        post = np.broadcast_to(row, (m, n))
        j0 = int(np.argmax(row)) if row.any() else n
        # the first maximum over that suffix: argmax of the masked curves (no -inf copy)
        k_peak = (np.argmax(sig2[:, j0:], axis=1) + j0 if j0 < n
                  else np.zeros(m, dtype=np.intp)).astype(np.intp)
    else:
        post = (np.arange(n) > kb)[None, :] & (t[None, :] > t_arr[:, None])
        k_peak = np.argmax(np.where(post, sig2, -np.inf), axis=1).astype(np.intp)

    flags = np.zeros(m, dtype=np.uint8)
    flags[nonfinite] |= np.uint8(CurveFlag.NONFINITE)
    flags[bad_arr & ~nonfinite] |= np.uint8(CurveFlag.INVALID_ARRIVAL)
    flags[(s0 <= 0) & ~nonfinite] |= np.uint8(CurveFlag.NONPOSITIVE_BASELINE)
    return _Prep(sig=sig2, t=t, batch_shape=batch_shape, kb=kb, s0=s0, t_arr=t_arr,
                 arrival_is_scalar=scalar, nonfinite=nonfinite, bad_arrival=bad_arr,
                 post=post, k_peak=k_peak, flags=flags)


def _pct(x: FloatArray, s0: FloatArray) -> FloatArray:
    """``100 * x / s0`` where ``s0 > 0``, NaN elsewhere."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s0 > 0, 100.0 * x / s0, np.nan)


def _interp_rows(t: FloatArray, y: FloatArray, tau: FloatArray
                 ) -> tuple[FloatArray, NDArray[np.intp]]:
    """Linear interpolation of each row of ``y`` (m, n) at its own time ``tau`` (m,).

    ``tau`` must lie in ``[t[0], t[-1]]``. Returns the values and the left sample index.
    """
    n = t.size
    j = np.clip(np.searchsorted(t, tau, side="right") - 1, 0, n - 2).astype(np.intp)
    rows = np.arange(y.shape[0])
    w = (tau - t[j]) / (t[j + 1] - t[j])
    yj = y[rows, j]
    return yj + w * (y[rows, j + 1] - yj), j


def _integral_to(t: FloatArray, y: FloatArray, cum: FloatArray, tau: FloatArray) -> FloatArray:
    """Exact integral of the piecewise-linear rows of ``y`` from ``t[0]`` to ``tau``."""
    y_tau, j = _interp_rows(t, y, tau)
    rows = np.arange(y.shape[0])
    return cum[rows, j] + 0.5 * (tau - t[j]) * (y[rows, j] + y_tau)


def _cumtrapz(t: FloatArray, y: FloatArray) -> FloatArray:
    cum = np.zeros_like(y)
    np.cumsum(0.5 * (y[:, 1:] + y[:, :-1]) * np.diff(t), axis=1, out=cum[:, 1:])
    return cum


# --------------------------------------------------------------------------------------
# public metrics
# --------------------------------------------------------------------------------------

def baseline_signal(signal: ArrayLike, *, n_baseline: int | None = None,
                    baseline_idx: ArrayLike | None = None,
                    allow_nan: bool = False) -> FloatArray:
    """Baseline (pre-contrast) signal S0 of each curve.

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        Signal time courses (signal units).
    n_baseline : int, optional
        Number of leading pre-contrast phases, ``1 <= n_baseline < n_times``.
    baseline_idx : array_like of int, optional
        Explicit baseline phase indices instead (e.g. ``[1, 2, 3, 4]`` to drop a first
        phase that is not yet at steady state). Give exactly one of the two.
    allow_nan : bool
        Accept NaN/inf in ``signal``; the affected S0 values are NaN.

    Returns
    -------
    ndarray, shape (...)
        ``S0 = mean(S[baseline])`` (signal units).
    """
    sig = as_float_array(signal, "signal", allow_nan=allow_nan)
    if sig.ndim == 0:
        raise ValueError("signal: expected an array shaped (..., n_times), got a scalar")
    base = _resolve_baseline(sig.shape[-1], n_baseline, baseline_idx)
    return np.asarray(sig[..., base].mean(axis=-1), dtype=np.float64)


def relative_enhancement(signal: ArrayLike, *, n_baseline: int | None = None,
                         baseline_idx: ArrayLike | None = None,
                         allow_nan: bool = False) -> FloatArray:
    """Relative enhancement curve ``(S - S0) / S0`` (dimensionless; x100 for SE%).

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        Signal time courses (signal units).
    n_baseline, baseline_idx : int or array_like of int
        Baseline definition, see :func:`baseline_signal`.
    allow_nan : bool
        Accept NaN/inf in ``signal`` (they propagate).

    Returns
    -------
    ndarray, shape (..., n_times)
        Relative enhancement. Curves with ``S0 <= 0`` are all-NaN (no exception); use
        :func:`tic_metrics` to get the matching :attr:`CurveFlag.NONPOSITIVE_BASELINE`.
    """
    sig = as_float_array(signal, "signal", allow_nan=allow_nan)
    if sig.ndim == 0:
        raise ValueError("signal: expected an array shaped (..., n_times), got a scalar")
    base = _resolve_baseline(sig.shape[-1], n_baseline, baseline_idx)
    s0 = sig[..., base].mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(s0 > 0, (sig - s0) / s0, np.nan), dtype=np.float64)


@dataclass(frozen=True)
class TICMetrics:
    """Semi-quantitative metrics, one value per curve (arrays shaped ``signal.shape[:-1]``).

    See :func:`tic_metrics` for the exact definitions. Signal units are those of the
    input (arbitrary units for magnitude images; mM if concentration curves are passed,
    in which case the ``*_pct`` metrics are meaningless because S0 ~ 0).

    Attributes
    ----------
    s0 : ndarray
        Baseline signal (signal units).
    t_arrival_s : ndarray
        Bolus arrival time used (s).
    t_peak_s : ndarray
        Acquisition time of the peak phase (s).
    peak_signal : ndarray
        ``S_max`` (signal units).
    peak_enhancement : ndarray
        ``S_max - S0`` (signal units).
    peak_enhancement_pct : ndarray
        Peak SE%, ``100 (S_max - S0) / S0`` (%).
    time_to_peak_s : ndarray
        ``t_peak - t_arr`` (s), from bolus arrival.
    wash_in_slope_per_s : ndarray
        ``(S_max - S0) / time_to_peak`` (signal units / s).
    wash_in_slope_pct_per_s : ndarray
        ``100 (S_max - S0) / S0 / time_to_peak`` (% of S0 / s).
    max_slope_per_s : ndarray
        Largest finite-difference slope over the wash-in (signal units / s).
    max_slope_pct_per_s : ndarray
        ``100 max_slope / S0`` (% of S0 / s).
    steepest_wash_in_se_pct : ndarray
        Largest single-interval signal increase over the wash-in, % of S0 (Lang 2013).
    iauc : dict of float -> ndarray
        Initial area under the enhancement curve per window length (s) after arrival
        (signal units x s).
    washout_pct : ndarray
        ``100 (S_end - S_max) / S_max`` (%, <= 0).
    normalized_peak_enhancement : ndarray or None
        Peak SE% over the reference curve's peak SE% (dimensionless); None without a
        reference curve.
    flags : ndarray of uint8
        :class:`CurveFlag` bits.
    """

    s0: FloatArray
    t_arrival_s: FloatArray
    t_peak_s: FloatArray
    peak_signal: FloatArray
    peak_enhancement: FloatArray
    peak_enhancement_pct: FloatArray
    time_to_peak_s: FloatArray
    wash_in_slope_per_s: FloatArray
    wash_in_slope_pct_per_s: FloatArray
    max_slope_per_s: FloatArray
    max_slope_pct_per_s: FloatArray
    steepest_wash_in_se_pct: FloatArray
    iauc: dict[float, FloatArray]
    washout_pct: FloatArray
    normalized_peak_enhancement: FloatArray | None
    flags: NDArray[np.uint8]

    def as_dict(self) -> dict[str, NDArray[Any]]:
        """Flat ``{column name: array}`` mapping, e.g. for a TIC table.

        IAUC columns are named ``iauc_<window>s`` (``iauc_60s``, ``iauc_90s``); the
        normalized peak enhancement column is present only with a reference curve.
        """
        out: dict[str, NDArray[Any]] = {}
        for name in ("s0", "t_arrival_s", "t_peak_s", "peak_signal", "peak_enhancement",
                     "peak_enhancement_pct", "time_to_peak_s", "wash_in_slope_per_s",
                     "wash_in_slope_pct_per_s", "max_slope_per_s", "max_slope_pct_per_s",
                     "steepest_wash_in_se_pct"):
            out[name] = getattr(self, name)
        for w, v in self.iauc.items():
            out[f"iauc_{w:g}s"] = v
        out["washout_pct"] = self.washout_pct
        if self.normalized_peak_enhancement is not None:
            out["normalized_peak_enhancement"] = self.normalized_peak_enhancement
        out["flags"] = self.flags
        return out


def tic_metrics(signal: ArrayLike, t_s: ArrayLike, *, n_baseline: int | None = None,
                baseline_idx: ArrayLike | None = None,
                t_arrival_s: ArrayLike | None = None,
                iauc_windows_s: ArrayLike = (60.0, 90.0),
                reference_signal: ArrayLike | None = None,
                allow_nan: bool = False) -> TICMetrics:
    """Semi-quantitative metrics of signal time-intensity curves, vectorised over curves.

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        Signal time courses (signal units), one curve per voxel or ROI.
    t_s : array_like, shape (n_times,)
        Acquisition time of each phase (s), strictly increasing, possibly uneven.
    n_baseline : int, optional
        Number of leading pre-contrast phases, ``1 <= n_baseline < n_times``.
    baseline_idx : array_like of int, optional
        Explicit pre-contrast phase indices instead; give exactly one of the two.
    t_arrival_s : float or array_like, optional
        Bolus arrival time (s), scalar or broadcastable to ``signal.shape[:-1]``.
        Default: ``t_s`` of the last baseline phase. A scalar outside
        ``[t_s[0], t_s[-1])`` raises; per-curve values that are NaN or outside are
        flagged :attr:`CurveFlag.INVALID_ARRIVAL` (NaN needs ``allow_nan=True``).
    iauc_windows_s : sequence of float
        IAUC window lengths after arrival (s), > 0. Default 60 and 90 s.
    reference_signal : array_like, shape (n_times,) or broadcastable to ``signal``, optional
        Reference-tissue curve (e.g. normal marrow) for the normalized peak enhancement.
        It is evaluated with the same baseline and arrival time.
    allow_nan : bool
        If False (default) NaN/inf in ``signal`` raise ``ValueError``; if True the
        affected curves get NaN metrics and :attr:`CurveFlag.NONFINITE`.

    Returns
    -------
    TICMetrics
        One value per curve. Definitions (notation in the module docstring):

        - ``s0``: ``S0 = mean(S[baseline])``.
        - ``peak_signal``: ``S_max = S[k_peak]``, the largest signal among the
          post-arrival phases (first one on ties); ``t_peak_s = t[k_peak]``.
        - ``peak_enhancement = S_max - S0`` (signal units);
          ``peak_enhancement_pct = 100 (S_max - S0) / S0`` (the "peak SE%").
        - ``time_to_peak_s = t_peak - t_arr``, measured **from bolus arrival** (with the
          default arrival, from the last pre-contrast phase); always > 0. Subtract
          ``t[kb + 1] - t_arr`` to count from the first post-baseline phase instead.
        - ``wash_in_slope_per_s = (S_max - S0) / time_to_peak_s``: mean rate of
          enhancement from arrival (enhancement 0 by definition) to the peak, i.e. the
          chord slope; ``wash_in_slope_pct_per_s`` is the same divided by S0, x100.
        - wash-in intervals: the sampling intervals ``[t[k], t[k+1]]`` that end after
          arrival and no later than the peak (``t[k+1] > t_arr`` and ``k+1 <= k_peak``).
          ``max_slope_per_s`` is the largest forward difference
          ``(S[k+1] - S[k]) / (t[k+1] - t[k])`` over them, using the actual ``dt`` on
          uneven grids; ``max_slope_pct_per_s = 100 max_slope / S0``.
        - ``steepest_wash_in_se_pct = 100 max(S[k+1] - S[k]) / S0`` over the wash-in
          intervals: the largest signal increase between consecutive phases as a
          percentage of the pre-contrast signal (Lang et al. 2013). It is per sampling
          interval, not per second, so it depends on the temporal resolution; compare
          it only between acquisitions with the same phase spacing.
        - ``iauc[w] = integral of (S(t) - S0) dt from t_arr to t_arr + w``: exact
          integral of the piecewise-linear curve (trapezoid rule on the actual samples,
          the end points interpolated linearly), so exact on uneven grids. Negative
          enhancement (noise) counts negatively. NaN with
          :attr:`CurveFlag.IAUC_BEYOND_DATA` when ``t_arr + w > t[-1]``.
        - ``washout_pct = 100 (S[-1] - S_max) / S_max``: signal change from the peak to
          the last phase relative to the peak signal; 0 when the peak is the last
          phase, negative for washout (NaN where ``S_max <= 0``).
        - ``normalized_peak_enhancement = peak_enhancement_pct / peak_enhancement_pct
          of reference_signal``. Relative (%) enhancements are used so that different
          receive-coil sensitivity at the two locations cancels. NaN with
          :attr:`CurveFlag.INVALID_REFERENCE` where the reference's value is <= 0.

        Curves with ``S0 <= 0`` get NaN for every ``*_pct`` metric and
        :attr:`CurveFlag.NONPOSITIVE_BASELINE`; their absolute metrics stay defined.

    Raises
    ------
    ValueError
        Empty or non-numeric input, NaN without ``allow_nan``, ``t_s`` not strictly
        increasing, ``signal`` last axis not matching ``t_s``, an impossible baseline
        (fewer than 1 phase, no post-baseline phase left, bad indices), a scalar
        arrival outside the acquisition, non-positive IAUC windows, or a reference
        curve that does not broadcast.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(0.0, 305.0, 5.0)
    >>> s = 200 + np.interp(t, [25, 55, 300], [0, 100, 100])   # type C
    >>> m = tic_metrics(s, t, n_baseline=6)
    >>> float(m.peak_enhancement_pct), float(m.time_to_peak_s), float(m.iauc[60.0])
    (50.0, 30.0, 4500.0)
    """
    p = _prepare(signal, t_s, n_baseline, baseline_idx, t_arrival_s, allow_nan)
    return _metrics(p, iauc_windows_s, reference_signal, n_baseline, baseline_idx)


def _metrics(p: _Prep, iauc_windows_s: ArrayLike, reference_signal: ArrayLike | None,
             n_baseline: int | None, baseline_idx: ArrayLike | None,
             enh: FloatArray | None = None) -> TICMetrics:
    """:func:`tic_metrics` of prepared curves (``p.flags`` is updated in place); ``enh``:
    the enhancement ``p.sig - p.s0[:, None]`` when already computed."""
    t, sig, s0, t_arr, flags = p.t, p.sig, p.s0, p.t_arr, p.flags
    m, n = sig.shape
    rows = np.arange(m)

    windows = np.zeros(0)
    if np.size(iauc_windows_s):
        windows = as_float_array(iauc_windows_s, "iauc_windows_s").reshape(-1)
        if np.any(windows <= 0):
            raise ValueError(f"iauc_windows_s: windows must be > 0 s, got {windows.tolist()}")

    s_max = sig[rows, p.k_peak]
    t_peak = t[p.k_peak]
    pe = s_max - s0
    ttp = t_peak - t_arr
    wash_in = pe / ttp

    # wash-in intervals: end after arrival, end no later than the peak phase
    k_end = np.arange(1, n)
    win = (t[1:][None, :] > t_arr[:, None]) & (k_end[None, :] <= p.k_peak[:, None])
    ds = np.diff(sig, axis=1)
    steepest = np.max(np.where(win, ds, -np.inf), axis=1)
    dt = np.diff(t)
    if np.all(dt == dt[0]):
        # uniform sampling: division by one positive step is monotonic (correctly rounded),
        # so the largest quotient is the largest step's quotient, bit for bit
        max_slope = steepest / dt[0]
    else:
        max_slope = np.max(np.where(win, ds / dt, -np.inf), axis=1)

    enh = sig - s0[:, None] if enh is None else enh
    iauc: dict[float, FloatArray] = {}
    if windows.size:
        # the running integral only up to the last sample interval an IAUC reaches
        # (cumsum is sequential: the same values as over the whole curve)
        tau_max = np.minimum(t_arr.max() + windows.max(), t[-1])
        j_max = int(np.clip(np.searchsorted(t, tau_max, side="right") - 1, 0, n - 2))
        cum = _cumtrapz(t[:j_max + 2], enh[:, :j_max + 2])
        a0 = _integral_to(t, enh, cum, t_arr)
        for w in windows:
            tau = t_arr + w
            beyond = tau > t[-1]
            val = _integral_to(t, enh, cum, np.minimum(tau, t[-1])) - a0
            iauc[float(w)] = np.where(beyond, np.nan, val)
            flags[beyond] |= np.uint8(CurveFlag.IAUC_BEYOND_DATA)

    with np.errstate(divide="ignore", invalid="ignore"):
        washout = np.where(s_max > 0, 100.0 * (sig[:, -1] - s_max) / s_max, np.nan)

    pe_pct = _pct(pe, s0)
    npe: FloatArray | None = None
    if reference_signal is not None:
        ref = as_float_array(reference_signal, "reference_signal")
        check_last_axis(ref, n, "reference_signal", "t_s")
        try:
            ref_b = np.broadcast_to(ref, (*p.batch_shape, n)).reshape(m, n)
        except ValueError:
            raise ValueError(f"reference_signal: shape {ref.shape} does not broadcast to the "
                             f"signal's shape {(*p.batch_shape, n)}") from None
        base = _resolve_baseline(n, n_baseline, baseline_idx)
        ref_s0 = ref_b[:, base].mean(axis=1)
        ref_max = np.max(np.where(p.post, ref_b, -np.inf), axis=1)
        ref_pct = _pct(ref_max - ref_s0, ref_s0)
        bad_ref = ~(ref_pct > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            npe = np.where(bad_ref, np.nan, pe_pct / ref_pct)
        flags[bad_ref] |= np.uint8(CurveFlag.INVALID_REFERENCE)

    invalid = p.nonfinite | p.bad_arrival
    out: dict[str, FloatArray] = {
        "s0": s0.copy(), "t_arrival_s": t_arr.copy(), "t_peak_s": t_peak,
        "peak_signal": s_max, "peak_enhancement": pe, "peak_enhancement_pct": pe_pct,
        "time_to_peak_s": ttp, "wash_in_slope_per_s": wash_in,
        "wash_in_slope_pct_per_s": _pct(wash_in, s0), "max_slope_per_s": max_slope,
        "max_slope_pct_per_s": _pct(max_slope, s0),
        "steepest_wash_in_se_pct": _pct(steepest, s0), "washout_pct": washout,
    }
    if np.any(invalid):
        for key, arr in out.items():
            if key != "s0":
                arr[invalid] = np.nan
        out["s0"][p.nonfinite] = np.nan
        for v in iauc.values():
            v[invalid] = np.nan
        if npe is not None:
            npe[invalid] = np.nan
    # only the invalid-curve bit is meaningful for invalid curves
    flags[invalid] &= np.uint8(CurveFlag.NONFINITE | CurveFlag.INVALID_ARRIVAL)

    shape = p.batch_shape
    return TICMetrics(
        **{k: v.reshape(shape) for k, v in out.items()},
        iauc={w: v.reshape(shape) for w, v in iauc.items()},
        normalized_peak_enhancement=None if npe is None else npe.reshape(shape),
        flags=flags.reshape(shape),
    )


def _safe_ratio(num: ArrayLike, den: ArrayLike, num_name: str, den_name: str) -> FloatArray:
    a = as_float_array(num, num_name, allow_nan=True)
    b = as_float_array(den, den_name, allow_nan=True)
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"{num_name} shape {a.shape} and {den_name} shape {b.shape} do not "
                         "broadcast") from None
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(b > 0, a / b, np.nan), dtype=np.float64)


def rslope_max(lesion_max_slope: ArrayLike, marrow_max_slope: ArrayLike) -> FloatArray:
    """RSlope_max: lesion maximum slope over normal-marrow maximum slope (Meng 2016).

    Parameters
    ----------
    lesion_max_slope : array_like
        Maximum wash-in slope of the lesion, e.g. :attr:`TICMetrics.max_slope_per_s`
        (signal units / s) or :attr:`TICMetrics.max_slope_pct_per_s` (% / s).
    marrow_max_slope : array_like
        Maximum slope of normal-appearing marrow of the same session, **same kind and
        units** as ``lesion_max_slope``; broadcastable to it. The %/s form cancels
        receive-coil sensitivity differences between the two locations.

    Returns
    -------
    ndarray
        Dimensionless ratio; NaN where the marrow slope is <= 0 or NaN (NaN inputs
        propagate, nothing raises for them). Meng et al. (Eur Spine J 2016) used cut-offs
        1.325 (hypovascular below, 87.5% sensitivity) and 1.85 (hypervascular above,
        96.4% sensitivity) against angiography, see :data:`MENG2016_RSLOPE_CUTOFFS`.
    """
    return _safe_ratio(lesion_max_slope, marrow_max_slope, "lesion_max_slope",
                       "marrow_max_slope")


def normalized_peak_enhancement(peak_enhancement_pct: ArrayLike,
                                reference_peak_enhancement_pct: ArrayLike) -> FloatArray:
    """Peak enhancement normalized to a reference tissue of the same subject and session.

    Parameters
    ----------
    peak_enhancement_pct : array_like
        Peak SE% of the lesion (or any ROI), :attr:`TICMetrics.peak_enhancement_pct`.
    reference_peak_enhancement_pct : array_like
        Peak SE% of the reference tissue (e.g. normal vertebral marrow); broadcastable.

    Returns
    -------
    ndarray
        Dimensionless ratio; NaN where the reference is <= 0 or NaN. Normalizing per
        subject removes the inter-subject variability of peak enhancement (seed review:
        Liu et al., normalized peak enhancement 0.85-0.99 in lumbar marrow).
    """
    return _safe_ratio(peak_enhancement_pct, reference_peak_enhancement_pct,
                       "peak_enhancement_pct", "reference_peak_enhancement_pct")


# --------------------------------------------------------------------------------------
# TIC type
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TICRule:
    """Explicit, configurable rule for the Chen et al. (2002) TIC types A-E.

    Chen et al. defined the types by shape only; this rule turns the shapes into
    thresholds. Quantities per curve (notation of the module docstring):

    - ``PE% = 100 (S_max - S0) / S0``: peak enhancement over post-arrival phases.
    - ``E_early``: the largest enhancement ``S - S0`` of the linearly interpolated curve
      within ``(t_arr, t_arr + fast_window_s]`` (post-arrival samples in the window and
      the interpolated value at its end). ``S_early = S0 + E_early``.
    - ``early_fraction = E_early / (S_max - S0)``.
    - ``S_late``: mean signal of the phases with ``t >= t[-1] - late_window_s`` (at least
      the last phase); ``E_late = S_late - S0``.
    - ``late_change_pct = 100 (S_late - S_early) / S_early`` when
      ``late_change_relative_to == "signal"`` (default, the convention of breast-MRI
      kinetic curves, Kuhl et al. Radiology 1999), or ``100 (E_late - E_early) / E_early``
      when ``"enhancement"`` (more sensitive for weakly enhancing tissue).

    Rule, applied in this order:

    1. **A** (almost flat) if ``PE% < flat_max_pct``.
    2. fast wash-in if ``E_early > 0`` and ``early_fraction >= fast_min_fraction``;
       otherwise **B** (gradual rise). Every non-flat curve without a fast wash-in is
       B, whatever its late phase (the scheme has no slow-washout type).
    3. fast curves: **D** (washout) if ``late_change_pct < -plateau_band_pct``;
       **E** (continued gradual rise) if ``late_change_pct > +plateau_band_pct``;
       **C** (plateau) otherwise (the band is closed: exactly +-band is C).

    Curves with ``S0 <= 0``, non-finite data, an invalid arrival time, or
    ``t_arr + fast_window_s >= t[-1]`` get no type (``""``) and a flag.

    Attributes
    ----------
    flat_max_pct : float
        Default 10 %. Peak SE% below it is "almost flat". 10% is just above the apparent
        peak that noise alone produces (the maximum of tens of post-contrast samples of a
        curve with 2-4% relative noise, i.e. SNR 25-50), so A means "no enhancement
        distinguishable from noise", and it matches the +-10% band used for the late
        phase. Raise it (e.g. 20-30%) to call weakly enhancing normal marrow of older
        adults flat.
    fast_window_s : float
        Default 60 s. The first-pass bolus passes within about a minute of arrival:
        tissue whose enhancement is driven by perfusion and blood volume (the
        hypervascular lesions of types C-E) takes up most of its contrast in that time,
        while interstitial leakage alone (type B) keeps rising over minutes.
    fast_min_fraction : float
        Default 0.5: "fast" means at least half of the peak enhancement is reached within
        ``fast_window_s`` of arrival. Amplitude-independent, so it separates shape from
        enhancement level (which rule 1 handles). With acquisitions of 4-6 min a linear
        rise (type B) reaches only 15-25% of its peak in the first minute.
    plateau_band_pct : float
        Default 10 %: late-phase signal within +-10% of the early post-contrast signal is
        a plateau, the band of Kuhl et al. (1999) used for washout/plateau/persistent
        curves in breast DCE-MRI and the example of the project design.
    late_window_s : float
        Default 30 s: the late signal is averaged over the last 30 s (at least the last
        phase) to reduce noise; 0 uses the last phase only.
    late_change_relative_to : {"signal", "enhancement"}
        Denominator of ``late_change_pct``, default ``"signal"``.
    """

    flat_max_pct: float = 10.0
    fast_window_s: float = 60.0
    fast_min_fraction: float = 0.5
    plateau_band_pct: float = 10.0
    late_window_s: float = 30.0
    late_change_relative_to: Literal["signal", "enhancement"] = "signal"

    def __post_init__(self) -> None:
        for name in ("flat_max_pct", "fast_window_s", "plateau_band_pct", "late_window_s"):
            val = float(as_float_array(getattr(self, name), f"TICRule.{name}"))
            strict = name == "fast_window_s"
            if val < 0 or (strict and val == 0):
                raise ValueError(f"TICRule.{name}: must be {'> 0' if strict else '>= 0'}, "
                                 f"got {val:g}")
        check_fraction(self.fast_min_fraction, "TICRule.fast_min_fraction", lo=0.0, hi=1.0,
                       closed_hi=True)
        if self.late_change_relative_to not in ("signal", "enhancement"):
            raise ValueError("TICRule.late_change_relative_to: must be 'signal' or "
                             f"'enhancement', got {self.late_change_relative_to!r}")

    def describe(self) -> str:
        """The rule with this instance's thresholds, as citable text (e.g. for a report)."""
        if self.late_change_relative_to == "signal":
            ref = "signal (S_late - S_early) / S_early"
        else:
            ref = "enhancement (E_late - E_early) / E_early"
        return (
            "TIC types after Chen et al. (2002), rule of dce.semiquant.TICRule: "
            f"A (almost flat) if peak enhancement < {self.flat_max_pct:g}% of baseline; "
            f"otherwise fast wash-in if within {self.fast_window_s:g} s of bolus arrival the "
            f"curve reaches >= {100 * self.fast_min_fraction:g}% of its peak enhancement, "
            "else B (gradual rise); for fast curves the late change of "
            f"{ref}, with the late signal averaged over the last {self.late_window_s:g} s and "
            f"the early signal the maximum within the first {self.fast_window_s:g} s, gives "
            f"D (washout) below -{self.plateau_band_pct:g}%, E (gradual rise) above "
            f"+{self.plateau_band_pct:g}%, C (plateau) within +-{self.plateau_band_pct:g}%."
        )


@dataclass(frozen=True)
class TICFeatures:
    """Intermediate quantities of :func:`classify_tic`, arrays shaped ``signal.shape[:-1]``.

    Attributes
    ----------
    peak_enhancement_pct : ndarray
        ``PE%`` (%).
    early_fraction : ndarray
        ``E_early / (S_max - S0)`` (dimensionless; NaN if the peak enhancement is <= 0).
    late_change_pct : ndarray
        Late-phase change (%), see :class:`TICRule`.
    is_fast : ndarray of bool
        Fast wash-in criterion.
    flags : ndarray of uint8
        :class:`CurveFlag` bits.
    """

    peak_enhancement_pct: FloatArray
    early_fraction: FloatArray
    late_change_pct: FloatArray
    is_fast: NDArray[np.bool_]
    flags: NDArray[np.uint8]


@overload
def classify_tic(signal: ArrayLike, t_s: ArrayLike, *, n_baseline: int | None = ...,
                 baseline_idx: ArrayLike | None = ..., t_arrival_s: ArrayLike | None = ...,
                 rule: TICRule | None = ..., allow_nan: bool = ...,
                 return_details: Literal[False] = ...) -> NDArray[np.str_]: ...


@overload
def classify_tic(signal: ArrayLike, t_s: ArrayLike, *, n_baseline: int | None = ...,
                 baseline_idx: ArrayLike | None = ..., t_arrival_s: ArrayLike | None = ...,
                 rule: TICRule | None = ..., allow_nan: bool = ...,
                 return_details: Literal[True]) -> tuple[NDArray[np.str_], TICFeatures]: ...


def classify_tic(signal: ArrayLike, t_s: ArrayLike, *, n_baseline: int | None = None,
                 baseline_idx: ArrayLike | None = None, t_arrival_s: ArrayLike | None = None,
                 rule: TICRule | None = None, allow_nan: bool = False,
                 return_details: bool = False
                 ) -> NDArray[np.str_] | tuple[NDArray[np.str_], TICFeatures]:
    """Classify time-intensity curves into the Chen et al. (2002) types A-E.

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        Signal time courses (signal units).
    t_s : array_like, shape (n_times,)
        Acquisition times (s), strictly increasing, possibly uneven.
    n_baseline, baseline_idx, t_arrival_s, allow_nan
        As in :func:`tic_metrics`.
    rule : TICRule, optional
        Thresholds; default ``TICRule()``. The full rule is in the :class:`TICRule`
        docstring and, with the values used, in ``rule.describe()``.
    return_details : bool
        Also return the intermediate quantities as :class:`TICFeatures`.

    Returns
    -------
    types : ndarray of str, shape (...)
        ``"A"`` .. ``"E"`` per curve (see :data:`TIC_TYPES`); ``""`` for curves that
        cannot be classified (flagged: S0 <= 0, non-finite data, invalid per-curve
        arrival, or too short an acquisition after a per-curve arrival).
    features : TICFeatures
        Only with ``return_details=True``.

    Raises
    ------
    ValueError
        Invalid arguments as in :func:`tic_metrics`, or (for the default or a scalar
        arrival time) ``t_arr + rule.fast_window_s >= t_s[-1]``, leaving no late phase.
    """
    rule = TICRule() if rule is None else rule
    if not isinstance(rule, TICRule):
        raise ValueError(f"rule: expected a TICRule, got {type(rule).__name__}")
    p = _prepare(signal, t_s, n_baseline, baseline_idx, t_arrival_s, allow_nan)
    return _classify(p, rule, return_details)


def _classify(p: _Prep, rule: TICRule, return_details: bool, enh: FloatArray | None = None
              ) -> NDArray[np.str_] | tuple[NDArray[np.str_], TICFeatures]:
    """:func:`classify_tic` of prepared curves (``p.flags`` is updated in place); ``enh``:
    the enhancement ``p.sig - p.s0[:, None]`` when already computed."""
    t, sig, s0, t_arr, flags = p.t, p.sig, p.s0, p.t_arr, p.flags
    m = sig.shape[0]
    rows = np.arange(m)

    tau = t_arr + rule.fast_window_s
    short = tau >= t[-1]
    if p.arrival_is_scalar and np.any(short):
        raise ValueError(
            f"rule.fast_window_s: the early window ends at {float(tau[0]):g} s (arrival "
            f"{float(t_arr[0]):g} s + {rule.fast_window_s:g} s), at or after the last phase "
            f"({t[-1]:g} s): no late phase left to tell plateau from washout; shorten "
            "fast_window_s or acquire longer")
    short &= ~(p.nonfinite | p.bad_arrival)
    flags[short] |= np.uint8(CurveFlag.SHORT_ACQUISITION)

    enh = sig - s0[:, None] if enh is None else enh
    e_peak = enh[rows, p.k_peak]
    pe_pct = _pct(e_peak, s0)

    e_tau, _ = _interp_rows(t, enh, np.minimum(tau, t[-1]))
    if p.arrival_is_scalar:  # one window for every curve: a run of phases (or none)
        cols = np.flatnonzero(p.post[0] & (t <= tau[0]))
        e_max = (np.max(enh[:, cols[0]:cols[-1] + 1], axis=1) if cols.size
                 else np.full(m, -np.inf))
    else:
        early = p.post & (t[None, :] <= tau[:, None])
        e_max = np.max(np.where(early, enh, -np.inf), axis=1)
    e_early = np.maximum(e_max, e_tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        early_fraction = np.where(e_peak > 0, e_early / e_peak, np.nan)
    is_fast = (e_early > 0) & (e_early >= rule.fast_min_fraction * e_peak)

    late = t >= t[-1] - rule.late_window_s
    s_late = sig[:, late].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if rule.late_change_relative_to == "signal":
            s_early = s0 + e_early
            late_change = np.where(s_early > 0, 100.0 * (s_late - s_early) / s_early, np.nan)
        else:
            late_change = np.where(e_early > 0,
                                   100.0 * (s_late - s0 - e_early) / e_early, np.nan)
    late_change = np.where(s0 > 0, late_change, np.nan)

    invalid = p.nonfinite | p.bad_arrival
    valid = ~invalid & (s0 > 0) & ~short
    flat = valid & (pe_pct < rule.flat_max_pct)
    rest = valid & ~flat
    fast = rest & is_fast
    band = rule.plateau_band_pct
    types = np.full(m, "", dtype="<U1")
    types[flat] = "A"
    types[rest & ~is_fast] = "B"
    types[fast & (late_change < -band)] = "D"
    types[fast & (late_change > band)] = "E"
    types[fast & (np.abs(late_change) <= band)] = "C"

    shape = p.batch_shape
    types_out = types.reshape(shape)
    if not return_details:
        return types_out
    for arr in (pe_pct, early_fraction, late_change):
        arr[invalid] = np.nan
    is_fast = is_fast & ~invalid & (s0 > 0)
    flags[invalid] &= np.uint8(CurveFlag.NONFINITE | CurveFlag.INVALID_ARRIVAL)
    return types_out, TICFeatures(
        peak_enhancement_pct=pe_pct.reshape(shape), early_fraction=early_fraction.reshape(shape),
        late_change_pct=late_change.reshape(shape), is_fast=is_fast.reshape(shape),
        flags=flags.reshape(shape))


def tic_type_codes(types: ArrayLike) -> NDArray[np.int8]:
    """TIC type letters as the codes of the ``tictype`` map
    (:data:`dce.registry.TIC_CODES`: 0 not classifiable, 1-5 = A-E)."""
    letters = np.asarray(types)
    codes = np.zeros(letters.shape, dtype=np.int8)
    for letter, code in TIC_CODES.items():
        codes[letters == letter] = code
    return codes


def semiquant_maps(signal: ArrayLike, t_s: ArrayLike, *, n_baseline: int,
                   iauc_windows_s: ArrayLike, rule: TICRule) -> dict[str, NDArray[Any]]:
    """Voxel-wise semi-quantitative maps keyed by column (:mod:`dce.registry`).

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        DCE signal (signal units); NaN/inf curves give NaN metrics and TIC code 0.
    t_s : array_like, shape (n_times,)
        Phase times (s).
    n_baseline : int
        Leading pre-contrast phases.
    iauc_windows_s : array_like
        IAUC windows (s).
    rule : TICRule
        TIC type thresholds.

    Returns
    -------
    dict of str to ndarray
        Every column of :meth:`TICMetrics.as_dict` plus ``tic_type_code``
        (:func:`tic_type_codes` of :func:`classify_tic`).
    """
    sig = np.asanyarray(signal)
    if sig.ndim < 2 or sig.size <= _CHUNK_VALUES:
        return _semiquant_block(sig, t_s, n_baseline, iauc_windows_s, rule)
    # blocks of curves in memory order (a Fortran-ordered image, as nibabel reads it, by
    # its reversed axes), each copied to C order in the input dtype: the float64
    # temporaries stay in the cache instead of 0.4 GB per whole-volume array; every metric
    # is per curve, so the values are those of one call on the whole volume
    axes: tuple[int, ...] | None = None
    if sig.ndim > 2 and sig.flags.f_contiguous and not sig.flags.c_contiguous:
        axes = tuple(range(sig.ndim - 2, -1, -1))
        sig = sig.transpose(*axes, sig.ndim - 1)
    rows = sig.reshape(-1, sig.shape[-1])
    step = max(1, _CHUNK_VALUES // sig.shape[-1])
    out: dict[str, NDArray[Any]] = {}
    for lo in range(0, rows.shape[0], step):
        block = _semiquant_block(np.ascontiguousarray(rows[lo:lo + step]), t_s, n_baseline,
                                 iauc_windows_s, rule)
        for k, v in block.items():
            if k not in out:
                out[k] = np.empty(rows.shape[0], dtype=v.dtype)
            out[k][lo:lo + step] = v
    return {k: (v.reshape(sig.shape[:-1]) if axes is None
                else v.reshape(sig.shape[:-1]).transpose(axes)) for k, v in out.items()}


#: Signal values per block of :func:`semiquant_maps` (about 2 MB of float64 per temporary).
_CHUNK_VALUES = 1 << 18


def _semiquant_block(signal: NDArray[Any], t_s: ArrayLike, n_baseline: int,
                     iauc_windows_s: ArrayLike, rule: TICRule) -> dict[str, NDArray[Any]]:
    """:func:`semiquant_maps` of one block of curves."""
    # one preparation for both (the flags each updates are their own copies)
    if not isinstance(rule, TICRule):
        raise ValueError(f"rule: expected a TICRule, got {type(rule).__name__}")
    p = _prepare(signal, t_s, n_baseline, None, None, True)
    enh = p.sig - p.s0[:, None]  # the enhancement, computed once for both
    met = _metrics(replace(p, flags=p.flags.copy()), iauc_windows_s, None, n_baseline,
                   None, enh).as_dict()
    types = _classify(p, rule, False, enh)
    met["tic_type_code"] = tic_type_codes(np.asarray(types))
    return met
