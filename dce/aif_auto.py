"""Automatic arterial input function (AIF) extraction from the aorta, with QC and fallback.

The seed review (Saha et al., AJNR 2025) describes the individual AIF as the mean curve
of aortic voxels "with a rapid increase in signal enhancement and sharp peak followed by
minimal temporal noises ... a large change in signal intensity ... and an early peak";
in a sagittal spine slab the aorta lies anterior to the vertebral bodies. This module
turns that description into an explicit, vectorised and configurable rule.

Algorithm (:class:`AortaAIF`)
-----------------------------
All features are computed for every voxel at once (blocks of voxels, no per-voxel
Python loop) from the baseline-subtracted concentration ``e(t) = C(t) - mean(C[:nb])``,
``nb`` = ``n_baseline`` leading pre-contrast phases:

``peak``
    Peak enhancement (mM): ``max e`` over the post-baseline phases; ``t_peak`` its time.
``sd``
    Baseline noise: temporal SD (ddof 1) of the ``nb`` baseline phases (mM).
``noise``
    ``max(sd, sd_diff)`` with ``sd_diff = 1.4826 median|diff e| / sqrt 2``, a robust
    whole-curve noise estimate (the few large bolus steps do not move the median); it
    guards against a baseline SD that is small by chance with few baseline phases.
``cnr``
    ``peak / noise``.
``arrival``
    Bolus arrival (s): first time ``e`` exceeds ``max(k * noise, f * peak)``
    (defaults ``k = 3``, ``f = 0.10``), linearly interpolated between the two bracketing
    phases. The volume's median arrival is the median over *enhancing* voxels
    (finite, ``cnr >= min_cnr``, peak after the baseline).
``ttp``
    Time to peak relative to the volume's median arrival, ``t_peak - median arrival`` (s).
``width``
    Full width at half maximum (s): total sampling interval (trapezoid weights) of the
    phases with ``e >= peak / 2``; small = sharp.
``washout``
    ``1 - late / peak`` with ``late`` the mean enhancement over the last
    ``late_fraction`` (default 1/4) of the phases; 0 when the peak lies in that window.

Hard criteria (:class:`AIFCriteria`; a voxel must pass all): finite curve; inside
``mask`` (and the anatomical prior, see below); peak after the baseline and not on the
last phase; ``cnr >= min_cnr``; ``ttp <= max_ttp_s``; ``washout >= min_washout``; and
a two-step peak criterion. First ``peak >= coarse_peak_fraction`` (0.25) times the
``n_voxels``-th largest peak of the voxels passing the other criteria, which removes
tissue (peaks an order of magnitude below blood); then ``peak >= min_peak_fraction``
(0.5) times the *median* peak of those survivors, which removes partial-volume rim
voxels. The median, not the largest peaks, sets the second threshold because arterial
peak concentrations have a heavy upper tail (the SPGR conversion is steep near its
maximum, so small M0 or signal errors give large upward concentration errors): a
threshold taken from that tail would keep only the voxels with the largest upward
errors.

Score: the weighted mean (weights :attr:`AIFCriteria.weights`, default equal) of five
*saturating desirabilities* in [0, 1], each relative to the median ``~`` over the
candidates and the ``saturation`` s (default 0.7): ``min(1, peak / (s peak~))``,
``min(1, washout / (s washout~))``, ``min(1, width~ / (s width))``,
``min(1, sd~ / (s sd))`` and, for earliness, ``1 / (1 + late / dt)`` with ``late`` how
far ``ttp`` exceeds ``ttp~`` by more than one median phase interval ``dt``. Ties (every
good lumen voxel saturates) go to the voxel whose curve is closest (RMS over the
post-baseline phases, relative to the peak) to the candidates' median curve, then to the
lower flat index. The ``n_voxels`` best voxels (default 16) form the AIF: the mean of
their concentration curves is the *blood* AIF ``cb``, minus its baseline mean; the
plasma AIF is ``cp = cb / (1 - hematocrit)``.

Why saturating scores, not ranks: among voxels that share one true curve, every
amplitude-like feature (peak, washout = 1 - late/peak, even sharpness) is driven by that
voxel's noise, mostly by its M0 error, which inflates the peak far more than the late
phase. Ranking on them picks the voxels with the largest upward errors: in the phantom
tests a rank score over the five features over-estimated the peak by 20-100 %.
Saturation keeps the features' power to reject partial-volume and tissue voxels but does
not reward noise above the typical lumen value, and the consensus tie-break prefers
voxels with small errors of either sign (the candidates' median curve is robust to the
heavy upper tail). In the phantom tests this took the peak error of the top-16 mean
from up to +40 % (ties broken by the lowest baseline SD, which with M0 estimated from
the baseline favours voxels with over-estimated M0) to within 3 %. A caveat for real
data: when partial-volume voxels outnumber lumen voxels among the candidates, the
consensus is theirs; draw an aorta ``mask`` or raise ``min_peak_fraction`` then.

Anatomical prior
----------------
``prior_mask`` (bool) restricts the candidates softly: the search runs inside it first;
if no voxel inside it passes the hard criteria, or the AIF found inside it fails QC while
the search over the whole ``mask`` (or volume) passes, the prior is ignored and
``qc.prior_note`` says why (when both fail, the result inside the prior is returned).
:func:`anterior_region` builds such a prior from a vertebral-body (spine) mask: the
voxels anterior to the spine along the anterior-posterior axis (for :mod:`dce.phantom`
and :mod:`dce.io.dicom` sagittal series that is axis 0, anterior = decreasing index,
``direction=-1``). ``mask`` is a *hard* restriction (a user-drawn aorta ROI): no voxel
outside it is ever used.

QC (:class:`AIFQCThresholds`, :class:`AIFQC`)
---------------------------------------------
The mean blood curve passes QC when (defaults in brackets) at least ``min_voxels`` [5]
voxels passed the hard criteria and were used; its peak is at least ``min_peak_mM``
[1.0 mM blood]; its baseline SD is at most ``max_noise_ratio`` [0.05] of its peak; its
arrival (same definition as above, with the curve's baseline SD as noise) lies after
the baseline phases: the first phase above that threshold, and the first phase above
``arrival_fraction`` of the peak alone, have indices ``>= n_baseline``; its time from
arrival to peak is at most ``max_ttp_s`` [30 s]; and its washout is at least
``min_washout`` [0.3].

Population fallback
-------------------
With ``fallback="parker"`` or ``"georgiou"``, a failed QC returns the population blood
curve (:func:`dce.aif.population_aif`, amplitude unchanged) shifted so that its arrival,
by the definition above (10 % of the peak), coincides with the data's bolus arrival:
the measured aortic curve's arrival if it is usable, else the volume's median tissue
arrival, else the end of the baseline. ``qc.fallback_used``, ``qc.fallback_reason`` and
``qc.fallback_arrival_source`` record what happened; the measured (failed) aortic curve
stays available in :attr:`AIFResult.measured_cb_mM`.

Delay
-----
:func:`delay_by_phases` shifts an AIF later by whole phases (Camelo et al. 2023, quoted
by the seed review: "manually delaying the aortic AIF by multiple phases can increase the
accuracy of Vp"); :meth:`AIFResult.delayed` applies it to a result and records it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from dce._checks import as_float_array, check_times
from dce.aif import POPULATION_AIF_NAMES, _check_hematocrit, population_aif
from dce.signal import signal_to_concentration

__all__ = [
    "AIFQC",
    "AIFCriteria",
    "AIFQCThresholds",
    "AIFResult",
    "AortaAIF",
    "anterior_region",
    "delay_by_phases",
    "extract_aif",
    "extract_aif_from_signal",
]

_FloatArray = NDArray[np.float64]
_BLOCK = 32768  # voxels per feature block (bounds temporary memory)


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AIFCriteria:
    """Voxel selection rule (see the module notes for the feature definitions).

    Attributes
    ----------
    n_voxels : int
        Number of best-scoring voxels averaged into the AIF (default 16).
    min_cnr : float
        Minimum peak enhancement / noise (default 5; noise as in the module notes).
    max_ttp_s : float
        Maximum time from the volume's median arrival to the voxel's peak (s, default 30).
    min_washout : float
        Minimum ``1 - late / peak`` (default 0.3).
    coarse_peak_fraction : float
        First peak criterion: minimum peak relative to the ``n_voxels``-th largest peak
        of the otherwise passing voxels (default 0.25; removes tissue).
    min_peak_fraction : float
        Second peak criterion: minimum peak relative to the median peak of the voxels
        passing the first (default 0.5; removes partial-volume voxels).
    arrival_k_sd : float
        Arrival threshold in noise SDs (default 3; for the mean AIF curve: its baseline
        SD).
    arrival_fraction : float
        Arrival threshold as a fraction of the peak enhancement (default 0.10); the
        larger of the two thresholds applies.
    late_fraction : float
        Fraction of the phases (at the end) whose mean is the late level for the washout
        (default 0.25; at least one phase).
    weights : tuple of 5 floats
        Score weights of the (peak, early, sharp, washout, low_noise) desirabilities
        (default equal).
    saturation : float
        Desirabilities reach 1 at this fraction of the candidates' median (peak,
        washout) or its inverse (width, baseline SD) (default 0.7; 1 = saturate at the
        median).
    """

    n_voxels: int = 16
    min_cnr: float = 5.0
    max_ttp_s: float = 30.0
    min_washout: float = 0.3
    coarse_peak_fraction: float = 0.25
    min_peak_fraction: float = 0.5
    arrival_k_sd: float = 3.0
    arrival_fraction: float = 0.10
    late_fraction: float = 0.25
    weights: tuple[float, float, float, float, float] = (1.0, 1.0, 1.0, 1.0, 1.0)
    saturation: float = 0.7

    def validate(self) -> None:
        """Raise ValueError for out-of-range settings."""
        if isinstance(self.n_voxels, bool) or not isinstance(self.n_voxels, (int, np.integer)) \
                or self.n_voxels < 1:
            raise ValueError(f"n_voxels: need a positive integer, got {self.n_voxels!r}")
        for name in ("min_cnr", "max_ttp_s", "arrival_k_sd"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val >= 0):
                raise ValueError(f"{name}: need a finite value >= 0, got {val!r}")
        if not 0 < self.saturation <= 1:
            raise ValueError(f"saturation: need a fraction in (0, 1], got {self.saturation!r}")
        for name in ("min_washout", "coarse_peak_fraction", "min_peak_fraction",
                     "arrival_fraction"):
            val = getattr(self, name)
            if not 0 <= val < 1:
                raise ValueError(f"{name}: need a fraction in [0, 1), got {val!r}")
        if not 0 < self.late_fraction <= 0.5:
            raise ValueError(f"late_fraction: need a fraction in (0, 0.5], got "
                             f"{self.late_fraction!r}")
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (5,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights: need 5 finite non-negative weights (peak, early, sharp, "
                             f"washout, low_noise) with a positive sum, got {self.weights!r}")


@dataclass(frozen=True)
class AIFQCThresholds:
    """Pass/fail thresholds for the extracted (mean, blood) AIF curve.

    Attributes
    ----------
    min_voxels : int
        Minimum number of voxels used (default 5).
    min_peak_mM : float
        Minimum peak blood concentration above baseline (mM, default 1.0).
    max_noise_ratio : float
        Maximum baseline SD of the AIF divided by its peak (default 0.05).
    max_ttp_s : float
        Maximum time from the AIF's arrival to its peak (s, default 30).
    min_washout : float
        Minimum washout ``1 - late / peak`` of the AIF (default 0.3).
    """

    min_voxels: int = 5
    min_peak_mM: float = 1.0
    max_noise_ratio: float = 0.05
    max_ttp_s: float = 30.0
    min_washout: float = 0.3

    def validate(self) -> None:
        """Raise ValueError for out-of-range settings."""
        if isinstance(self.min_voxels, bool) or not isinstance(self.min_voxels,
                                                                (int, np.integer)) \
                or self.min_voxels < 1:
            raise ValueError(f"min_voxels: need a positive integer, got {self.min_voxels!r}")
        for name in ("min_peak_mM", "max_noise_ratio", "max_ttp_s"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val >= 0):
                raise ValueError(f"{name}: need a finite value >= 0, got {val!r}")
        if not 0 <= self.min_washout < 1:
            raise ValueError(f"min_washout: need a fraction in [0, 1), got {self.min_washout!r}")


# --------------------------------------------------------------------------- results


def _jsonable(x: Any) -> Any:
    """Plain Python types for JSON; NaN/inf become None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    return x


@dataclass(frozen=True)
class AIFQC:
    """Quality-control record of one AIF (serialise with :meth:`to_dict` / :meth:`to_json`).

    Curve metrics describe the *measured* aortic curve (NaN when no voxel was selected),
    also when a population fallback was returned.

    Attributes
    ----------
    passed : bool
        True when the measured aortic AIF passed every QC threshold.
    reason : str
        ``"ok"`` or the failed checks, separated by ``"; "``.
    source : str
        Origin of the returned AIF: ``"aorta"``, ``"parker"`` or ``"georgiou"``.
    fallback_used : bool
    fallback_reason : str or None
        Why the fallback was used (the QC reason).
    fallback_arrival_source : str or None
        Which arrival the population curve was aligned to: ``"measured"`` (the failed
        measured curve, when its arrival is usable),
        ``"tissue_median"`` or ``"end_of_baseline"``.
    fallback_delay_s : float or None
        ``delay_s`` passed to the population AIF.
    peak_blood_mM, peak_plasma_mM : float
        Peak of the measured AIF above its baseline (blood; plasma = blood / (1 - Hct)).
    peak_time_s : float
        Time of the peak (s, acquisition clock).
    arrival_s : float
        Bolus arrival of the measured AIF: first time it exceeds
        ``baseline + max(arrival_k_sd * SD, arrival_fraction * peak)``, linearly
        interpolated between phases (s).
    arrival_index : int
        Index of the first phase above that threshold (-1 if none).
    time_to_peak_s : float
        ``peak_time_s - arrival_s``.
    washout : float
        ``1 - late / peak`` of the measured AIF.
    baseline_sd_mM : float
        Temporal SD of the AIF over the baseline phases (mM, blood).
    noise_ratio : float
        ``baseline_sd_mM / peak_blood_mM``.
    voxel_baseline_sd_median_mM : float
        Median baseline SD of the selected voxels (mM).
    n_voxels : int
        Number of voxels averaged.
    n_candidates : int
        Voxels that passed every hard criterion.
    n_enhancing : int
        Voxels counted for the volume's median arrival.
    volume_median_arrival_s : float
        Median arrival of the enhancing voxels (s).
    voxel_indices : list of list of int
        Spatial indices of the voxels used (one row per voxel, image order).
    prior_used : bool
        True when an anatomical prior restricted the candidates.
    prior_note : str
        Empty, or why the prior was ignored.
    averaging : str
        ``"concentration"`` (mean of voxel concentrations) or ``"signal"`` (concentration
        of the mean voxel signal, :meth:`AortaAIF.fit_signal`).
    notes : str
        Other remarks (e.g. signal averaging replaced by concentration averaging).
    n_baseline : int
    hematocrit : float
    delay_phases : int
        Whole phases by which the returned AIF was delayed (:meth:`AIFResult.delayed`).
    criteria, thresholds : dict
        The settings in force.
    """

    passed: bool
    reason: str
    source: str
    fallback_used: bool
    fallback_reason: str | None
    fallback_arrival_source: str | None
    fallback_delay_s: float | None
    peak_blood_mM: float
    peak_plasma_mM: float
    peak_time_s: float
    arrival_s: float
    arrival_index: int
    time_to_peak_s: float
    washout: float
    baseline_sd_mM: float
    noise_ratio: float
    voxel_baseline_sd_median_mM: float
    n_voxels: int
    n_candidates: int
    n_enhancing: int
    volume_median_arrival_s: float
    voxel_indices: list[list[int]]
    prior_used: bool
    prior_note: str
    averaging: str
    notes: str
    n_baseline: int
    hematocrit: float
    delay_phases: int = 0
    criteria: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (plain Python types; NaN as None)."""
        out: dict[str, Any] = _jsonable(asdict(self))
        return out

    def to_json(self, **kwargs: Any) -> str:
        """JSON text of :meth:`to_dict` (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)


@dataclass(frozen=True)
class AIFResult:
    """An arterial input function with its QC record.

    Attributes
    ----------
    t_s : ndarray, shape (n,)
        Phase times (s).
    cb_mM : ndarray, shape (n,)
        Returned blood AIF (measured aortic curve, or the population fallback) (mM).
    cp_mM : ndarray, shape (n,)
        Returned plasma AIF, ``cb / (1 - hematocrit)`` (mM).
    measured_cb_mM : ndarray, shape (n,)
        The measured aortic blood curve (NaN when no voxel was selected).
    voxel_indices : ndarray of int, shape (n_voxels, n_spatial_dims)
        Spatial indices of the voxels averaged (for drawing; image order).
    voxel_scores : ndarray, shape (n_voxels,)
        Their scores (0..1, higher = more AIF-like).
    qc : AIFQC
    """

    t_s: _FloatArray
    cb_mM: _FloatArray
    cp_mM: _FloatArray
    measured_cb_mM: _FloatArray
    voxel_indices: NDArray[np.intp]
    voxel_scores: _FloatArray
    qc: AIFQC

    @property
    def passed(self) -> bool:
        """Whether the measured aortic AIF passed QC."""
        return self.qc.passed

    def delayed(self, n_phases: int) -> AIFResult:
        """The same AIF delayed by ``n_phases`` whole phases (see :func:`delay_by_phases`).

        The measured curve and the QC curve metrics are unchanged; ``qc.delay_phases``
        accumulates the delay.
        """
        cb = delay_by_phases(self.t_s, self.cb_mM, n_phases)
        cp = delay_by_phases(self.t_s, self.cp_mM, n_phases)
        qc = replace(self.qc, delay_phases=self.qc.delay_phases + int(n_phases))
        return replace(self, cb_mM=cb, cp_mM=cp, qc=qc)

    def to_frame(self) -> pd.DataFrame:
        """Table of the returned AIF: ``t_s``, ``cb_mM``, ``cp_mM``, ``measured_cb_mM``."""
        return pd.DataFrame({"t_s": self.t_s, "cb_mM": self.cb_mM, "cp_mM": self.cp_mM,
                             "measured_cb_mM": self.measured_cb_mM})


# --------------------------------------------------------------------------- helpers


def delay_by_phases(t_s: ArrayLike, cp: ArrayLike, n: int, *,
                    fill: Literal["first"] | float = "first") -> _FloatArray:
    """Delay an AIF by ``n`` whole phases: ``out[i] = cp[i - n]``.

    Camelo et al. (2023), quoted by the seed review, found that delaying the aortic AIF
    by several phases can improve the accuracy of Vp. With uneven sampling the delay in
    seconds differs between phases; the shift is by sample index, as done on the scanner
    phases.

    Parameters
    ----------
    t_s : array_like, shape (n_times,)
        Phase times (s): 1-D, finite, strictly increasing (checked against ``cp``).
    cp : array_like, shape (n_times,)
        AIF (any concentration, e.g. plasma mM); must be finite.
    n : int
        Number of whole phases, ``0 <= n < n_times``.
    fill : "first" or float
        Value of the first ``n`` samples: ``"first"`` (default) repeats ``cp[0]`` (the
        pre-bolus baseline), or a number (e.g. ``0.0``).

    Returns
    -------
    ndarray, shape (n_times,)

    Raises
    ------
    ValueError
        For mismatched lengths, invalid times, non-finite ``cp``, a non-integer or
        out-of-range ``n``, or an invalid ``fill``.

    Examples
    --------
    >>> delay_by_phases([0, 5, 10, 15], [0.0, 4.0, 2.0, 1.0], 1).tolist()
    [0.0, 0.0, 4.0, 2.0]
    """
    t = check_times(t_s, "t_s", min_len=2)
    c = as_float_array(cp, "cp", ndim=1)
    if c.size != t.size:
        raise ValueError(f"cp: has {c.size} samples but t_s has {t.size} (mismatched lengths)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n: need a whole number of phases (int), got {n!r}")
    k = int(n)
    if not 0 <= k < t.size:
        raise ValueError(f"n: delay must be in [0, {t.size - 1}] phases for {t.size} phases, "
                         f"got {k}")
    if isinstance(fill, str):
        if fill != "first":
            raise ValueError(f"fill: use 'first' or a number, got {fill!r}")
        fill_val = float(c[0])
    else:
        fill_val = float(as_float_array(fill, "fill"))
    out = np.empty_like(c)
    out[:k] = fill_val
    out[k:] = c[:t.size - k]
    return out


def anterior_region(spine_mask: ArrayLike, axis: int = 0, direction: int = -1, *,
                    max_distance_vox: int | None = None) -> NDArray[np.bool_]:
    """Voxels anterior to a structure (e.g. the vertebral bodies) along one image axis.

    For every line along ``axis`` the boundary is the most anterior voxel of
    ``spine_mask`` on that line; voxels strictly anterior to it are True (within
    ``max_distance_vox`` of it, if given). Lines that do not cross the structure (e.g.
    through discs when only bodies are given) use the median boundary of the lines that
    do. Vectorised.

    Parameters
    ----------
    spine_mask : array_like of bool
        The structure, e.g. vertebral bodies (with discs).
    axis : int
        Anterior-posterior image axis (0 for :mod:`dce.phantom` / sagittal DICOM).
    direction : {-1, +1}
        -1 when anterior is towards *decreasing* index along ``axis`` (the phantom),
        +1 when towards increasing index.
    max_distance_vox : int, optional
        Only voxels at most this many voxels anterior to the boundary.

    Returns
    -------
    ndarray of bool, same shape as ``spine_mask``
    """
    m = np.asarray(spine_mask)
    if m.dtype != np.bool_:
        raise ValueError(f"spine_mask: need a boolean array, got dtype {m.dtype}")
    if m.ndim < 1 or not m.any():
        raise ValueError("spine_mask: empty (no True voxel)")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) \
            or not -m.ndim <= axis < m.ndim:
        raise ValueError(f"axis: need an integer axis of a {m.ndim}-D mask, got {axis!r}")
    if direction not in (-1, 1):
        raise ValueError(f"direction: need -1 (anterior = decreasing index) or +1, "
                         f"got {direction!r}")
    if max_distance_vox is not None and (not isinstance(max_distance_vox, (int, np.integer))
                                         or max_distance_vox < 1):
        raise ValueError(f"max_distance_vox: need a positive integer or None, got "
                         f"{max_distance_vox!r}")
    mm = np.moveaxis(m, axis, -1)
    if direction == 1:  # work with anterior = decreasing index
        mm = mm[..., ::-1]
    n = mm.shape[-1]
    has = mm.any(axis=-1)
    first = np.argmax(mm, axis=-1).astype(np.float64)
    first[~has] = float(np.median(first[has]))
    idx = np.arange(n)
    region = idx < first[..., None]
    if max_distance_vox is not None:
        region &= idx >= first[..., None] - max_distance_vox
    if direction == 1:
        region = region[..., ::-1]
    return np.moveaxis(region, -1, axis)


def _crossing_time(t: _FloatArray, e: _FloatArray, thr: _FloatArray
                   ) -> tuple[_FloatArray, NDArray[np.intp]]:
    """First time each row of ``e`` exceeds ``thr`` (interpolated), and the phase index.

    Rows that never exceed it give NaN and -1.
    """
    above = e > thr[:, None]
    anyab = above.any(axis=1)
    i1 = np.argmax(above, axis=1)
    i0 = np.maximum(i1 - 1, 0)
    rows = np.arange(e.shape[0])
    e0, e1 = e[rows, i0], e[rows, i1]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((thr - e0) / (e1 - e0), 0.0, 1.0)
    tc = np.where(i1 > 0, t[i0] + np.nan_to_num(frac) * (t[i1] - t[i0]), t[0])
    tc = np.where(anyab, tc, np.nan)
    return tc, np.where(anyab, i1, -1).astype(np.intp)


@dataclass(frozen=True)
class _Features:
    finite: NDArray[np.bool_]
    peak: _FloatArray
    i_peak: NDArray[np.intp]
    sd: _FloatArray
    noise: _FloatArray
    arrival: _FloatArray
    width: _FloatArray
    washout: _FloatArray


def _features(c: _FloatArray, t: _FloatArray, nb: int, crit: AIFCriteria) -> _Features:
    """Per-voxel features of a block ``c`` (n_vox, n_times); vectorised."""
    n_t = t.size
    finite = np.all(np.isfinite(c), axis=1)
    c = np.where(finite[:, None], c, 0.0)
    base = c[:, :nb]
    e = c - base.mean(axis=1, keepdims=True)
    sd = base.std(axis=1, ddof=1)
    # robust whole-curve noise: MAD of the phase-to-phase differences (the few large
    # steps of the bolus do not move the median); guards against a baseline SD that is
    # small by chance when there are only a few baseline phases
    sd_diff = 1.4826 / np.sqrt(2.0) * np.median(np.abs(np.diff(e, axis=1)), axis=1)
    noise = np.maximum(sd, sd_diff)
    post = e[:, nb:]
    i_peak = (np.argmax(post, axis=1) + nb).astype(np.intp)
    peak = post.max(axis=1)
    thr = np.maximum(crit.arrival_k_sd * noise, crit.arrival_fraction * peak)
    arrival, _ = _crossing_time(t, e, thr)
    # trapezoid weights: each sample stands for half of each neighbouring interval
    dt = np.diff(t)
    w = np.zeros(n_t)
    w[:-1] += dt / 2
    w[1:] += dt / 2
    width = ((e >= (peak / 2)[:, None]) * w).sum(axis=1)
    n_late = max(1, round(crit.late_fraction * n_t))
    late = e[:, n_t - n_late:].mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        washout = np.where(peak > 0, 1.0 - late / peak, 0.0)
    washout = np.where(i_peak >= n_t - n_late, 0.0, washout)
    return _Features(finite=finite, peak=peak, i_peak=i_peak, sd=sd, noise=noise,
                     arrival=arrival, width=width, washout=washout)


def _concat(parts: Sequence[_Features]) -> _Features:
    return _Features(**{k: np.concatenate([getattr(p, k) for p in parts])
                        for k in _Features.__dataclass_fields__})


def _check_mask(mask: ArrayLike | None, shape: tuple[int, ...], name: str
                ) -> NDArray[np.bool_] | None:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ValueError(f"{name}: need a boolean array, got dtype {m.dtype}")
    if m.shape != shape:
        raise ValueError(f"{name}: shape {m.shape} does not match the image shape {shape}")
    if not m.any():
        raise ValueError(f"{name}: empty (no True voxel)")
    return m


def _check_n_baseline(n_baseline: int, n_t: int) -> int:
    if isinstance(n_baseline, bool) or not isinstance(n_baseline, (int, np.integer)):
        raise ValueError(f"n_baseline: need an integer number of leading pre-contrast phases, "
                         f"got {n_baseline!r}")
    nb = int(n_baseline)
    if not 2 <= nb <= n_t - 3:
        raise ValueError(f"n_baseline: must be in [2, {n_t - 3}] for {n_t} phases (>= 2 to "
                         f"estimate the baseline noise, >= 3 phases after it), got {nb}")
    return nb


def _as_conc(conc_mM: ArrayLike, n_t: int) -> NDArray[Any]:
    c = np.asarray(conc_mM)
    if not np.issubdtype(c.dtype, np.floating):
        c = as_float_array(c, "conc_mM", allow_nan=True)
    if c.size == 0:
        raise ValueError("conc_mM: empty array")
    if c.ndim < 1 or c.shape[-1] != n_t:
        raise ValueError(f"conc_mM: last axis has length {c.shape[-1] if c.ndim else 0} but "
                         f"t_s has {n_t} points (mismatched lengths)")
    return c


def _population_offset_s(name: str, crit: AIFCriteria) -> float:
    """Time from a population curve's origin to its arrival by this module's definition."""
    t_fine = np.arange(0.0, 120.0, 0.05)
    cb = population_aif(name, t_fine)
    thr = np.array([crit.arrival_fraction * float(cb.max())])
    tc, _ = _crossing_time(t_fine, cb[None, :], thr)
    return float(tc[0])


# --------------------------------------------------------------------------- extraction


@dataclass(frozen=True)
class _Prepared:
    feats: _Features
    ttp: _FloatArray  # time of peak - the volume's median arrival (s)
    ok: NDArray[np.bool_]  # passes the criteria other than the peak criterion
    n_enhancing: int
    median_arrival_s: float


def _with_note(res: AIFResult, note: str) -> AIFResult:
    return replace(res, qc=replace(res.qc, prior_note=note))


@dataclass(frozen=True)
class _Selection:
    idx: NDArray[np.intp]  # flat indices of the chosen voxels, best first
    scores: _FloatArray
    voxel_indices: NDArray[np.intp]
    n_candidates: int
    n_enhancing: int
    median_arrival_s: float
    voxel_sd_median: float
    prior_used: bool


class AortaAIF:
    """Automatic aortic AIF extraction (settings object; call :meth:`fit`).

    Parameters
    ----------
    criteria : AIFCriteria, optional
        Voxel selection rule (defaults documented on the class).
    thresholds : AIFQCThresholds, optional
        QC thresholds of the final curve.
    fallback : {"parker", "georgiou"} or None
        Population AIF returned when QC fails (None: return the failed measured curve).
    subtract_baseline : bool
        Subtract the mean of the baseline phases from the AIF (default True).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(20) * 5.0
    >>> curve = np.interp(t, [0, 20, 30, 40, 95], [0, 0, 6, 2, 1])
    >>> conc = np.stack([curve * 0.05] * 50 + [curve] * 8)   # 8 "aortic" voxels
    >>> res = AortaAIF(AIFCriteria(n_voxels=8)).fit(conc, t, n_baseline=4, hematocrit=0.45)
    >>> res.qc.passed, res.qc.n_voxels, round(res.qc.peak_blood_mM, 2)
    (True, 8, 6.0)
    """

    def __init__(self, criteria: AIFCriteria | None = None,
                 thresholds: AIFQCThresholds | None = None, *,
                 fallback: str | None = None, subtract_baseline: bool = True) -> None:
        self.criteria = criteria or AIFCriteria()
        self.thresholds = thresholds or AIFQCThresholds()
        self.criteria.validate()
        self.thresholds.validate()
        if fallback is not None:
            key = fallback.strip().lower() if isinstance(fallback, str) else None
            if key not in POPULATION_AIF_NAMES:
                raise ValueError(f"fallback: unknown population AIF {fallback!r}; use one of "
                                 f"{', '.join(repr(n) for n in POPULATION_AIF_NAMES)} or None")
            fallback = key
        self.fallback = fallback
        self.subtract_baseline = bool(subtract_baseline)

    def fit(self, conc_mM: ArrayLike, t_s: ArrayLike, *, n_baseline: int, hematocrit: float,
            mask: ArrayLike | None = None, prior_mask: ArrayLike | None = None) -> AIFResult:
        """Extract the AIF from a concentration image.

        Parameters
        ----------
        conc_mM : array_like, shape (..., n_times)
            Concentration (mM), time on the last axis; any spatial shape (e.g.
            ``(n_i, n_j, n_k)`` or ``(n_voxels,)``). Voxels with NaN samples (e.g. status
            != 0 of :func:`dce.signal.signal_to_concentration`) are never selected.
        t_s : array_like, shape (n_times,)
            Phase times (s): finite, strictly increasing.
        n_baseline : int
            Number of leading pre-contrast phases, in ``[2, n_times - 3]``.
        hematocrit : float
            Large-vessel hematocrit in ``[0, 1)`` for ``cp = cb / (1 - hematocrit)``.
        mask : bool array, shape ``conc_mM.shape[:-1]``, optional
            Hard restriction (e.g. a drawn aorta ROI).
        prior_mask : bool array, optional
            Soft anatomical prior (e.g. :func:`anterior_region`): the search is first
            restricted to it; when no voxel inside it passes the hard criteria, or the
            resulting AIF fails QC while the unrestricted search passes, the prior is
            ignored and ``qc.prior_note`` says why.

        Returns
        -------
        AIFResult

        Raises
        ------
        ValueError
            For mismatched lengths, invalid times (NaN, not increasing), ``n_baseline``
            out of range, invalid hematocrit, or a mask of the wrong shape or dtype or
            with no True voxel.
        """
        t = check_times(t_s, "t_s", min_len=5)
        n_t = t.size
        c = _as_conc(conc_mM, n_t)
        nb = _check_n_baseline(n_baseline, n_t)
        hct = _check_hematocrit(hematocrit)
        flat = c.reshape(-1, n_t)

        def curve(idx: NDArray[np.intp]) -> tuple[_FloatArray, str, str]:
            if not idx.size:
                return np.full(n_t, np.nan), "concentration", ""
            return np.asarray(flat[idx], dtype=np.float64).mean(axis=0), "concentration", ""

        return self._run(flat, t, nb, hct, c.shape[:-1], mask, prior_mask, curve)

    def fit_signal(self, signal: ArrayLike, t_s: ArrayLike, *, t10_s: ArrayLike, tr_s: float,
                   flip_angle_deg: float, r1_per_mM_per_s: float, n_baseline: int,
                   hematocrit: float, m0: ArrayLike | None = None,
                   mask: ArrayLike | None = None, prior_mask: ArrayLike | None = None,
                   average: Literal["signal", "concentration"] = "concentration"
                   ) -> AIFResult:
        """Extract the AIF from an SPGR signal image.

        Every voxel is converted with :func:`dce.signal.signal_to_concentration` (M0 from
        the ``n_baseline`` leading phases, or the given ``m0``) and voxels it flags
        (status != 0) are excluded; the voxels are selected on concentration as in
        :meth:`fit`.

        With ``average="concentration"`` (default) the AIF is the mean of the selected
        voxels' concentrations, as in :meth:`fit`. With ``average="signal"`` it is the
        concentration of their *mean signal* (converted with their mean T10, and their
        mean ``m0`` if given, else M0 from the mean baseline); this avoids averaging
        across the strongly nonlinear SPGR inversion near the arterial peak, but assumes
        the voxels share one T10 (blood; not checked). With the consensus tie-break the
        two agree to about 0.1 % in the phantom tests.

        Parameters
        ----------
        signal : array_like, shape (..., n_times)
            Dynamic signal (signal units).
        t_s, n_baseline, hematocrit, mask, prior_mask
            See :meth:`fit`.
        t10_s, tr_s, flip_angle_deg, r1_per_mM_per_s, m0
            See :func:`dce.signal.signal_to_concentration` (``t10_s`` and ``m0``: a
            scalar or a map of the image shape).
        average : {"signal", "concentration"}

        Returns
        -------
        AIFResult
        """
        if average not in ("signal", "concentration"):
            raise ValueError(f"average: use 'signal' or 'concentration', got {average!r}")
        t = check_times(t_s, "t_s", min_len=5)
        n_t = t.size
        s = as_float_array(signal, "signal", allow_nan=True)
        if s.ndim < 1 or s.shape[-1] != n_t:
            raise ValueError(f"signal: last axis has length {s.shape[-1] if s.ndim else 0} "
                             f"but t_s has {n_t} points (mismatched lengths)")
        nb = _check_n_baseline(n_baseline, n_t)
        hct = _check_hematocrit(hematocrit)
        kw = {"tr_s": tr_s, "flip_angle_deg": flip_angle_deg,
              "r1_per_mM_per_s": r1_per_mM_per_s}
        res = signal_to_concentration(s, t10_s=t10_s, baseline=None if m0 is not None else nb,
                                      m0=m0, **kw)
        conc = np.where((res.status == 0)[..., None], res.conc_mM, np.nan)
        flat = conc.reshape(-1, n_t)
        spatial = s.shape[:-1]

        def curve(idx: NDArray[np.intp]) -> tuple[_FloatArray, str, str]:
            if not idx.size:
                return np.full(n_t, np.nan), average, ""
            conc_mean = flat[idx].mean(axis=0)
            if average == "concentration":
                return conc_mean, average, ""
            t10_map = np.broadcast_to(np.asarray(t10_s, dtype=np.float64), spatial).ravel()
            mean_sig = s.reshape(-1, n_t)[idx].mean(axis=0)
            m0_mean = None if m0 is None else float(
                np.broadcast_to(np.asarray(m0, dtype=np.float64), spatial).ravel()[idx].mean())
            r = signal_to_concentration(mean_sig, t10_s=float(t10_map[idx].mean()),
                                        baseline=None if m0_mean is not None else nb,
                                        m0=m0_mean, **kw)
            cb = np.asarray(r.conc_mM, dtype=np.float64)
            if not np.all(np.isfinite(cb)):  # mean signal at/above the SPGR maximum
                return conc_mean, "concentration", ("mean signal outside the SPGR range; "
                                                    "concentrations averaged instead")
            return cb, "signal", ""

        return self._run(flat, t, nb, hct, spatial, mask, prior_mask, curve)

    def _run(self, flat: NDArray[Any], t: _FloatArray, nb: int, hct: float,
             spatial: tuple[int, ...], mask: ArrayLike | None, prior_mask: ArrayLike | None,
             curve: Callable[[NDArray[np.intp]], tuple[_FloatArray, str, str]]) -> AIFResult:
        """Features once; selection (with, then without the prior); curve; QC."""
        m = _check_mask(mask, spatial, "mask")
        prior = _check_mask(prior_mask, spatial, "prior_mask")
        pre = self._prepare(flat, t, nb)
        ok = pre.ok if m is None else pre.ok & m.ravel()
        if prior is None:
            sel = self._choose(pre, ok, flat, t, nb, spatial, prior_used=False)
            return self._assemble(*curve(sel.idx), t, nb, hct, sel)
        sel_p = self._choose(pre, ok & prior.ravel(), flat, t, nb, spatial,
                             prior_used=True)
        if sel_p.idx.size:
            res_p = self._assemble(*curve(sel_p.idx), t, nb, hct, sel_p)
            if res_p.passed:
                return res_p
        sel = self._choose(pre, ok, flat, t, nb, spatial, prior_used=False)
        res = self._assemble(*curve(sel.idx), t, nb, hct, sel)
        if not sel_p.idx.size:
            note = "no voxel inside prior_mask passed the hard criteria; prior ignored"
        elif res.passed:
            note = (f"AIF inside prior_mask failed QC ({res_p.qc.reason}); prior ignored")
        else:
            return _with_note(res_p, "QC failed with and without the prior; the result "
                                     "inside prior_mask is returned")
        return _with_note(res, note)

    def _prepare(self, flat: NDArray[Any], t: _FloatArray, nb: int) -> _Prepared:
        """Per-voxel features, the volume's median arrival, voxels passing the criteria
        that do not depend on the candidate set."""
        crit = self.criteria
        n_vox, n_t = flat.shape
        feats = _concat([_features(np.asarray(flat[s:s + _BLOCK], dtype=np.float64), t, nb,
                                   crit) for s in range(0, n_vox, _BLOCK)])
        with np.errstate(invalid="ignore", divide="ignore"):
            cnr = np.where(feats.noise > 0, feats.peak / feats.noise,
                           np.where(feats.peak > 0, np.inf, 0.0))
        enhancing = feats.finite & (feats.peak > 0) & (cnr >= crit.min_cnr) \
            & np.isfinite(feats.arrival)
        n_enh = int(enhancing.sum())
        med_arrival = float(np.median(feats.arrival[enhancing])) if n_enh else float("nan")
        ttp = t[feats.i_peak] - (med_arrival if n_enh else t[nb])
        ok = (enhancing & (feats.i_peak < n_t - 1) & (ttp <= crit.max_ttp_s)
              & (feats.washout >= crit.min_washout))
        return _Prepared(feats=feats, ttp=ttp, ok=ok, n_enhancing=n_enh,
                         median_arrival_s=med_arrival)

    def _choose(self, pre: _Prepared, ok: NDArray[np.bool_], flat: NDArray[Any],
                t: _FloatArray, nb: int, spatial: tuple[int, ...], *,
                prior_used: bool) -> _Selection:
        """Peak criterion, scores and the ``n_voxels`` best voxels among ``ok``."""
        feats = pre.feats
        idx = np.flatnonzero(self._peak_filter(ok, feats.peak))
        scores = self._scores(idx, feats, pre.ttp, float(np.median(np.diff(t))))
        dev = _consensus_deviation(flat, idx, nb)
        # best score first; ties (common: every good lumen voxel saturates) go to the
        # voxel closest to the candidates' median curve, then the lower flat index
        order = np.lexsort((idx, dev, -np.round(scores, 12)))[:self.criteria.n_voxels]
        chosen = idx[order]
        vox_idx = (np.stack(np.unravel_index(chosen, spatial), axis=1).astype(np.intp)
                   if spatial else np.zeros((chosen.size, 0), dtype=np.intp))
        return _Selection(idx=chosen, scores=scores[order].astype(np.float64),
                          voxel_indices=vox_idx, n_candidates=int(idx.size),
                          n_enhancing=pre.n_enhancing, median_arrival_s=pre.median_arrival_s,
                          voxel_sd_median=float(np.median(feats.sd[chosen])) if chosen.size
                          else float("nan"), prior_used=prior_used)

    def _assemble(self, cb: _FloatArray, averaging: str, note: str, t: _FloatArray, nb: int,
                  hct: float, sel: _Selection) -> AIFResult:
        """Baseline subtraction, QC, fallback and the result record."""
        crit, thr = self.criteria, self.thresholds
        if self.subtract_baseline and np.all(np.isfinite(cb)):
            cb = cb - cb[:nb].mean()
        n_sel = int(sel.idx.size)
        metrics = _curve_metrics(cb, t, nb, crit)
        reasons = self._qc_reasons(metrics, n_sel, nb)
        passed = not reasons
        reason = "ok" if passed else "; ".join(reasons)

        out_cb = cb
        fb_reason = fb_source = None
        fb_delay: float | None = None
        source = "aorta"
        if not passed and self.fallback is not None:
            if math.isfinite(metrics["arrival_s"]) and metrics["arrival_index"] >= nb \
                    and metrics["peak"] > 0:
                arr, fb_source = metrics["arrival_s"], "measured"
            elif sel.n_enhancing:
                arr, fb_source = sel.median_arrival_s, "tissue_median"
            else:
                arr, fb_source = float(t[nb]), "end_of_baseline"
            fb_delay = max(0.0, arr - _population_offset_s(self.fallback, crit))
            out_cb = population_aif(self.fallback, t, delay_s=fb_delay)
            fb_reason = f"QC failed: {reason}"
            source = self.fallback

        qc = AIFQC(
            passed=passed, reason=reason, source=source,
            fallback_used=source != "aorta", fallback_reason=fb_reason,
            fallback_arrival_source=fb_source, fallback_delay_s=fb_delay,
            peak_blood_mM=metrics["peak"], peak_plasma_mM=metrics["peak"] / (1.0 - hct),
            peak_time_s=metrics["peak_time_s"], arrival_s=metrics["arrival_s"],
            arrival_index=int(metrics["arrival_index"]),
            time_to_peak_s=metrics["peak_time_s"] - metrics["arrival_s"],
            washout=metrics["washout"], baseline_sd_mM=metrics["baseline_sd"],
            noise_ratio=metrics["noise_ratio"],
            voxel_baseline_sd_median_mM=sel.voxel_sd_median,
            n_voxels=n_sel, n_candidates=sel.n_candidates, n_enhancing=sel.n_enhancing,
            volume_median_arrival_s=sel.median_arrival_s,
            voxel_indices=sel.voxel_indices.tolist(), prior_used=sel.prior_used,
            prior_note="", averaging=averaging, notes=note, n_baseline=nb, hematocrit=hct,
            criteria=asdict(crit), thresholds=asdict(thr))
        out = np.asarray(out_cb, dtype=np.float64)
        return AIFResult(t_s=t, cb_mM=out, cp_mM=out / (1.0 - hct), measured_cb_mM=cb,
                         voxel_indices=sel.voxel_indices, voxel_scores=sel.scores, qc=qc)

    def _peak_filter(self, ok: NDArray[np.bool_], peak: _FloatArray) -> NDArray[np.bool_]:
        """The two-step peak criterion (module notes) applied to the voxels ``ok``."""
        if not ok.any():
            return ok
        p = peak[ok]
        k = min(self.criteria.n_voxels, p.size)
        top = float(np.partition(p, p.size - k)[p.size - k])
        ok = ok & (peak >= self.criteria.coarse_peak_fraction * top)
        ref = float(np.median(peak[ok]))
        return ok & (peak >= self.criteria.min_peak_fraction * ref)

    def _scores(self, idx: NDArray[np.intp], f: _Features, ttp: _FloatArray,
                dt_typ: float) -> _FloatArray:
        """Weighted mean of saturating desirabilities in [0, 1] over the candidates."""
        if idx.size == 0:
            return np.zeros(0)
        s = self.criteria.saturation
        peak, wash, width, sd, tp = (f.peak[idx], f.washout[idx], f.width[idx], f.sd[idx],
                                     ttp[idx])
        tiny = np.finfo(np.float64).tiny
        with np.errstate(invalid="ignore", divide="ignore"):
            d_peak = np.minimum(1.0, peak / max(s * float(np.median(peak)), tiny))
            d_wash = np.minimum(1.0, wash / max(s * float(np.median(wash)), tiny))
            d_sharp = np.minimum(1.0, float(np.median(width)) / s / np.maximum(width, tiny))
            d_noise = np.minimum(1.0, float(np.median(sd)) / s / np.maximum(sd, tiny))
        late_by = np.maximum(0.0, tp - float(np.median(tp)) - dt_typ)
        d_early = 1.0 / (1.0 + late_by / dt_typ)
        d = np.stack([d_peak, d_early, d_sharp, d_wash, d_noise])
        d = np.where(np.isfinite(d), np.clip(d, 0.0, 1.0), 1.0)
        w = np.asarray(self.criteria.weights, dtype=np.float64)
        return np.asarray(w @ d / w.sum(), dtype=np.float64)

    def _qc_reasons(self, mtr: dict[str, float], n_sel: int, nb: int) -> list[str]:
        q = self.thresholds
        if n_sel == 0:
            return ["no voxel passed the hard criteria (no early, sharp, washing-out "
                    "enhancement found)"]
        out = []
        if n_sel < q.min_voxels:
            out.append(f"only {n_sel} voxel(s) passed the hard criteria (< min_voxels "
                       f"{q.min_voxels})")
        if not mtr["peak"] >= q.min_peak_mM:
            out.append(f"peak {mtr['peak']:.3g} mM < min_peak_mM {q.min_peak_mM:g}")
        if not mtr["noise_ratio"] <= q.max_noise_ratio:
            out.append(f"baseline noise {mtr['noise_ratio']:.3g} of peak > max_noise_ratio "
                       f"{q.max_noise_ratio:g}")
        ai = min(int(mtr["arrival_index"]), int(mtr["first_rise_index"]))
        if int(mtr["arrival_index"]) < 0:
            out.append("no bolus arrival detected")
        elif ai < nb:
            out.append(f"bolus arrival at phase {ai} lies within the {nb} baseline phases "
                       "(reduce n_baseline)")
        elif not mtr["peak_time_s"] - mtr["arrival_s"] <= q.max_ttp_s:
            out.append(f"time to peak {mtr['peak_time_s'] - mtr['arrival_s']:.3g} s > "
                       f"max_ttp_s {q.max_ttp_s:g}")
        if not mtr["washout"] >= q.min_washout:
            out.append(f"washout {mtr['washout']:.3g} < min_washout {q.min_washout:g}")
        return out


def _consensus_deviation(flat: NDArray[Any], idx: NDArray[np.intp], nb: int) -> _FloatArray:
    """RMS distance (post-baseline phases) of each candidate's baseline-subtracted curve
    from the candidates' median curve, relative to that curve's peak."""
    if idx.size == 0:
        return np.zeros(0)
    parts = []
    for s in range(0, idx.size, _BLOCK):
        c = np.asarray(flat[idx[s:s + _BLOCK]], dtype=np.float64)
        parts.append(c[:, nb:] - c[:, :nb].mean(axis=1, keepdims=True))
    e = np.concatenate(parts)
    e_med = np.median(e, axis=0)
    scale = max(float(e_med.max()), np.finfo(np.float64).tiny)
    return np.asarray(np.sqrt(np.mean((e - e_med) ** 2, axis=1)) / scale)


def _curve_metrics(cb: _FloatArray, t: _FloatArray, nb: int, crit: AIFCriteria
                   ) -> dict[str, float]:
    """QC metrics of a mean blood curve (NaN when the curve is NaN)."""
    nan = float("nan")
    if not np.all(np.isfinite(cb)):
        return {"peak": nan, "peak_time_s": nan, "arrival_s": nan, "arrival_index": -1,
                "washout": nan, "baseline_sd": nan, "noise_ratio": nan,
                "first_rise_index": -1}
    f = _features(cb[None, :], t, nb, crit)
    base = cb[:nb]
    e = cb - base.mean()
    sd = float(base.std(ddof=1))
    peak = float(f.peak[0])
    thr = np.array([max(crit.arrival_k_sd * sd, crit.arrival_fraction * peak)])
    arr, ai = _crossing_time(t, e[None, :], thr)
    # a bolus inside the baseline raises the baseline SD and so the threshold above;
    # the fraction-of-peak threshold alone still sees it
    _, ai_frac = _crossing_time(t, e[None, :], np.array([crit.arrival_fraction * peak]))
    return {"peak": peak, "peak_time_s": float(t[f.i_peak[0]]), "arrival_s": float(arr[0]),
            "arrival_index": float(ai[0]), "washout": float(f.washout[0]), "baseline_sd": sd,
            "noise_ratio": sd / peak if peak > 0 else float("inf"),
            "first_rise_index": float(ai_frac[0])}


def _combined_prior(prior_mask: ArrayLike | None, spine_mask: ArrayLike | None,
                    anterior_axis: int | None, anterior_direction: int
                    ) -> NDArray[np.bool_] | ArrayLike | None:
    """``prior_mask`` AND the region anterior to ``spine_mask`` (when given)."""
    if (spine_mask is None) != (anterior_axis is None):
        raise ValueError("anterior_axis and spine_mask: give both (the prior is 'anterior to "
                         "the spine mask along anterior_axis') or neither")
    if spine_mask is None or anterior_axis is None:
        return prior_mask
    ant = anterior_region(spine_mask, anterior_axis, anterior_direction)
    if prior_mask is not None:
        p = np.asarray(prior_mask)
        if p.dtype != np.bool_ or p.shape != ant.shape:
            raise ValueError(f"prior_mask: need a boolean array of shape {ant.shape}, got "
                             f"{p.dtype} {p.shape}")
        ant = ant & p
    if not ant.any():
        raise ValueError("spine_mask/prior_mask: their combination leaves no voxel")
    return ant


def extract_aif(conc_mM: ArrayLike, t_s: ArrayLike, *, n_baseline: int, hematocrit: float,
                mask: ArrayLike | None = None, prior_mask: ArrayLike | None = None,
                spine_mask: ArrayLike | None = None, anterior_axis: int | None = None,
                anterior_direction: int = -1, n_voxels: int | None = None,
                fallback: str | None = None, criteria: AIFCriteria | None = None,
                thresholds: AIFQCThresholds | None = None,
                subtract_baseline: bool = True) -> AIFResult:
    """Extract the aortic AIF from a concentration image (functional form of :class:`AortaAIF`).

    Parameters
    ----------
    conc_mM, t_s, n_baseline, hematocrit, mask, prior_mask
        See :meth:`AortaAIF.fit`.
    spine_mask : bool array, optional
        Vertebral bodies (and discs); with ``anterior_axis`` adds the prior
        :func:`anterior_region` (combined with ``prior_mask`` by AND).
    anterior_axis : int, optional
        Anterior-posterior axis of the image (0 for the phantom / sagittal DICOM order);
        requires ``spine_mask``.
    anterior_direction : {-1, +1}
        -1 when anterior is towards decreasing index along ``anterior_axis`` (default).
    n_voxels : int, optional
        Overrides ``criteria.n_voxels``.
    fallback : {"parker", "georgiou"} or None
        Population AIF returned when QC fails.
    criteria, thresholds : optional
        :class:`AIFCriteria`, :class:`AIFQCThresholds`.
    subtract_baseline : bool
        Subtract the baseline mean from the AIF (default True).

    Returns
    -------
    AIFResult
    """
    model = _configured_model(criteria, n_voxels, thresholds, fallback, subtract_baseline)
    prior = _combined_prior(prior_mask, spine_mask, anterior_axis, anterior_direction)
    return model.fit(conc_mM, t_s, n_baseline=n_baseline, hematocrit=hematocrit, mask=mask,
                     prior_mask=prior)


def _configured_model(criteria: AIFCriteria | None, n_voxels: int | None,
                      thresholds: AIFQCThresholds | None, fallback: str | None,
                      subtract_baseline: bool) -> AortaAIF:
    """The :class:`AortaAIF` of the function-style API's keyword arguments."""
    crit = criteria or AIFCriteria()
    if n_voxels is not None:
        crit = replace(crit, n_voxels=n_voxels)
    return AortaAIF(crit, thresholds, fallback=fallback, subtract_baseline=subtract_baseline)


def extract_aif_from_signal(signal: ArrayLike, t_s: ArrayLike, *, t10_s: ArrayLike,
                            tr_s: float, flip_angle_deg: float, r1_per_mM_per_s: float,
                            n_baseline: int, hematocrit: float, m0: ArrayLike | None = None,
                            average: Literal["signal", "concentration"] = "concentration",
                            mask: ArrayLike | None = None, prior_mask: ArrayLike | None = None,
                            spine_mask: ArrayLike | None = None,
                            anterior_axis: int | None = None, anterior_direction: int = -1,
                            n_voxels: int | None = None, fallback: str | None = None,
                            criteria: AIFCriteria | None = None,
                            thresholds: AIFQCThresholds | None = None,
                            subtract_baseline: bool = True) -> AIFResult:
    """Extract the aortic AIF from an SPGR signal image (see :meth:`AortaAIF.fit_signal`).

    Parameters
    ----------
    signal : array_like, shape (..., n_times)
        Dynamic signal.
    t10_s, tr_s, flip_angle_deg, r1_per_mM_per_s, m0
        See :func:`dce.signal.signal_to_concentration`.
    average : {"signal", "concentration"}
        See :meth:`AortaAIF.fit_signal` (default ``"concentration"``).
    Other parameters
        As :func:`extract_aif`.

    Returns
    -------
    AIFResult
    """
    model = _configured_model(criteria, n_voxels, thresholds, fallback, subtract_baseline)
    prior = _combined_prior(prior_mask, spine_mask, anterior_axis, anterior_direction)
    return model.fit_signal(signal, t_s, t10_s=t10_s, tr_s=tr_s, flip_angle_deg=flip_angle_deg,
                            r1_per_mM_per_s=r1_per_mM_per_s, n_baseline=n_baseline,
                            hematocrit=hematocrit, m0=m0, mask=mask, prior_mask=prior,
                            average=average)
