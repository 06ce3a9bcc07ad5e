"""Automatic arterial input function (AIF) from the aorta, in the signal domain, with
physiological QC and a population fallback.

The seed review (Saha et al., AJNR 2025) describes the individual AIF as the mean curve
of aortic voxels with a rapid, large, early rise, a sharp peak and little temporal
noise; in a sagittal spine slab the aorta lies anterior to the vertebral bodies. This
module turns that description into an explicit, vectorised rule that is robust to the
low blood SNR, receive-coil bias, partial volume and SPGR saturation of real scans.

Why the signal domain
---------------------
Arterial blood at peak enhancement sits on the steep part of the SPGR curve: at 3 T,
20 deg, TR 4.5 ms a 5 mM blood peak gives 15x the pre-contrast signal against a
saturation limit of 23x, so a 2 % error in a voxel's baseline signal M0 changes its
peak concentration by about 7 %, and at a baseline blood SNR of 5-15 single voxels
reach or pass the limit. Converting every voxel to concentration and then *choosing*
voxels by their concentration peak picks exactly the voxels whose noisy baseline
inflated the peak (an independent cohort measured 3-6x the true peak that way). Here
voxels are characterised and chosen on signal-domain features whose noise is small and
symmetric (the enhancement ``S(t) - S0`` of blood is 5-20x ``S0``, its noise ~``S0 /
SNR``); the chosen voxels' *signals* are averaged (SPGR signal is linear in M0, so
voxels with different coil gains average correctly), and only the mean curve, with a
baseline averaged over all chosen voxels and baseline phases, is converted with the
blood T10 (Garpebring et al. and the QIBA/OSIPI recommendations average in the signal
domain for the same reason).

Algorithm (:class:`AortaAIF`)
-----------------------------
Per voxel (all voxels at once, in blocks), from the signal ``S(t)``: baseline
``S0 = mean(S[:nb])`` over the ``nb`` leading phases; noise ``max(SD(S[:nb]),
1.4826 median|diff S| / sqrt 2)`` (the robust whole-curve term guards against a small
baseline SD by chance); enhancement ``e = S - S0``; its post-baseline ``peak`` and peak
time; ``cnr = peak / noise``; arrival (first crossing of ``max(arrival_k_sd * noise,
arrival_fraction * peak)``, interpolated); ``washout = 1 - late / peak`` (``late`` the
mean of the last ``late_fraction`` of the phases); relative enhancement
``re = peak / S0``.

1. *Candidates* (hard criteria, :class:`AIFCriteria`): finite, ``S0 > 0``,
   ``cnr >= min_cnr``, peak after the baseline and not on the last phase, peak at most
   ``max_ttp_s`` after the volume's median arrival (median over enhancing voxels),
   ``washout >= min_washout``; inside ``mask`` and (softly) ``prior_mask``.
2. *Blood amplitude*: ``peak >= peak_fraction * P`` with ``P`` the mean of the
   ``n_reference`` largest candidate peaks (the brightest lumen voxels; in the signal
   domain a high quantile is not a noise tail). Removes tissue, whose enhancement is a
   fraction of blood's.
3. *Partial volume*: the mask of those voxels is eroded by ``erode`` voxels
   (6-connected): the vessel's outer layer, where blood shares voxels with the wall and
   tissue, goes on geometry alone, with no noisy feature involved. Then
   ``re >= re_fraction * R`` with ``R`` the median ``re`` of the survivors whose peak is
   at least 0.75 ``P``: a voxel shared with tissue or fat has a brighter baseline and a
   smaller relative enhancement (``re`` is free of coil gain; the threshold lies far
   below the lumen values, so lumen voxels are not chosen by their baseline noise).
4. *Shape consensus* (cluster analysis in the spirit of Mouridsen et al. 2006 and
   Peruzzo et al. 2011): curves normalised to their peak, the survivors' median
   normalised curve, and the RMS distance (post-baseline phases) of every survivor from
   it; voxels farther than ``shape_tolerance`` are removed (late-arriving or
   slowly-enhancing tissue). At most ``max_voxels`` are kept, evenly spaced by index.

*Every* remaining voxel is used (no ranking by amplitude, so no selection bias beyond
the thresholds' margins). Their mean signal is corrected for the Rician noise floor
(``sqrt(mean(M^2) - 2 sigma^2)`` per phase, ``sigma`` the pooled baseline SD: +2 % of
baseline signal at SNR 5 would cost 10-15 % of the peak at low flip angles). The blood
AIF is the concentration of that mean signal:
``M0`` from the mean baseline with the blood T10, ``R1(t)`` by inverting the SPGR
equation (:func:`dce.signal.signal_to_concentration`), ``cb = (R1 - 1/T10) / r1``; the
plasma AIF is ``cp = cb / (1 - hematocrit)``.

Blood T10
---------
VFA T1 in flowing blood is unreliable (inflow, B1), so by default the conversion uses a
literature value (:data:`BLOOD_T10_S`, :func:`blood_t10_literature`): in vivo blood T1
1.48 s at 1.5 T and 1.65 s at 3 T (Zhang X et al., Magn Reson Med 2013;70:1082-1086;
3 T agrees with Lu H et al., Magn Reson Med 2004;52:679-682, 1.66 s at Hct 0.42).
A number, or a T10 map (its mean over the chosen voxels, e.g. the VFA map), may be
given instead; :attr:`AIFQC.blood_t10_s` and ``blood_t10_source`` record what was used.

QC (:class:`AIFQCThresholds`)
-----------------------------
The measured curve passes when (defaults in brackets): at least ``min_voxels`` [5]
voxels were used; the mean signal stays below the SPGR limit (finite concentration);
peak blood concentration within ``peak_blood_range_mM`` [1.0, 15.0] mM -- for a
standard 0.1 mmol/kg gadolinium dose the Parker population curve peaks at about 6 mM
in blood (Parker et al., MRM 2006;56:993-1000) and measured aortic peaks at 2-6 s
sampling lie at about 3-10 mM; scale the range with the dose; baseline SD at most
``max_noise_ratio`` [0.05] of the peak; the mean signal's baseline drift (difference
between the means of the two halves of the baseline) at most ``max_baseline_drift``
[0.10] of the baseline signal (or within 4 times its noise); arrival after the
baseline phases; time from arrival to peak at most
``max_ttp_s`` [30 s]; first-pass full width at half maximum at most ``max_fwhm_s``
[30 s]; area under the blood curve over the 60 s after arrival within
``area_60s_range_mM_s`` [15, 600] mM s; washout at least ``min_washout`` [0.3].

A failed QC returns the population fallback (``fallback``) aligned to the detected bolus
arrival, with ``qc.fallback_used`` and the reasons; the measured curve stays in
:attr:`AIFResult.measured_cb_mM`.

Anatomical prior
----------------
``prior_mask`` (bool) restricts the candidates softly: the search runs inside it first;
if nothing inside passes, or the AIF inside fails QC while the unrestricted search
passes, the prior is ignored and ``qc.prior_note`` says why. :func:`anterior_region`
builds such a prior from a vertebral-body mask. ``mask`` (an aorta ROI) is a hard
restriction.

Delay
-----
Tissue arrives later than the aortic input (0-5 s in the spine). The fit estimates that
delay (:class:`dce.fit.TracerKineticModel` with ``fit_delay``); :func:`delay_by_phases`
(and :meth:`AIFResult.delayed`) shifts the AIF by whole phases (Camelo et al. 2023,
quoted by the seed review) when a fixed shift is wanted instead.

Policy (:class:`AIFPolicy`)
---------------------------
The workflow's choice of the session AIF, built from the ``aif`` configuration section
(:meth:`AIFPolicy.from_config`) and applied by :meth:`AIFPolicy.select`: the blood T10
(``literature`` by the field strength, ``vfa`` the session's VFA T10 map, or a number);
``mode: auto`` extracts the aortic AIF and, when its QC fails, returns the population
curve ``fallback`` aligned to the detected bolus arrival (with a logged warning naming the
failed checks), returns the measured curve anyway (``fallback: none``) or raises
(``on_qc_failure: error``); ``mode: population`` returns the population curve
``population`` aligned to the detected arrival; ``delay: phases`` then shifts the AIF by
``delay_phases`` whole phases. The QC record (:attr:`AIFChoice.qc`) says which branch
was taken.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from dce._checks import as_float_array, check_times
from dce._select import median
from dce._threads import run_chunks
from dce.aif import POPULATION_AIF_NAMES, _check_hematocrit, population_aif
from dce.signal import signal_to_concentration

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AIFQC",
    "AIF_MODES",
    "BLOOD_T10_S",
    "AIFChoice",
    "AIFCriteria",
    "AIFPolicy",
    "AIFQCThresholds",
    "AIFResult",
    "AortaAIF",
    "anterior_axis_of",
    "anterior_region",
    "blood_t10_literature",
    "delay_by_phases",
    "extract_aif",
    "population_aligned",
]

log = logging.getLogger(__name__)

_FloatArray = NDArray[np.float64]
_BLOCK = 32768  # voxels per feature block (bounds temporary memory)


def _c_rows(s: NDArray[Any], bx: int = 32) -> NDArray[Any]:
    """``s.reshape(-1, n_times)`` (voxels in C order), copied in cache-sized blocks when
    ``s`` is Fortran-ordered (as nibabel reads images): ``bx`` indices of the first axis
    times the second axis per block, instead of one strided pass over the whole image
    (about 3x faster at 256x256x12x60)."""
    if s.ndim < 3 or s.flags.c_contiguous or not s.flags.f_contiguous:
        return s.reshape(-1, s.shape[-1])
    out = np.empty(s.shape, dtype=s.dtype)
    for x0 in range(0, s.shape[0], bx):
        for mid in itertools.product(*(range(n) for n in s.shape[2:-1])):
            key: tuple[Any, ...] = (slice(x0, x0 + bx), slice(None), *mid)
            out[key] = s[key]
    return out.reshape(-1, s.shape[-1])
_MIN_CORE = 5  # fewest voxels an erosion may leave

#: In vivo blood T1 (s) by field strength (T): Zhang X, Petersen ET, Ghariq E, et al.
#: In vivo blood T1 measurements at 1.5 T, 3 T, and 7 T. Magn Reson Med
#: 2013;70:1082-1086 (1480 ms and 1649 ms).
BLOOD_T10_S: dict[float, float] = {1.5: 1.48, 3.0: 1.65}


def blood_t10_literature(field_strength_t: float) -> float:
    """Literature pre-contrast blood T1 (s) at 1.5 T or 3 T (:data:`BLOOD_T10_S`).

    Parameters
    ----------
    field_strength_t : float
        Main field (T). 1.0-2.0 T gives the 1.5 T value, 2.5-3.5 T the 3 T value.

    Returns
    -------
    float
        T1 of blood (s).

    Raises
    ------
    ValueError
        For a non-finite field or one outside those ranges (give the blood T10 yourself).
    """
    b0 = float(field_strength_t)
    if math.isfinite(b0):
        if 1.0 <= b0 <= 2.0:
            return BLOOD_T10_S[1.5]
        if 2.5 <= b0 <= 3.5:
            return BLOOD_T10_S[3.0]
    raise ValueError(f"field strength {field_strength_t!r} T: no literature blood T1 (known "
                     "for 1.5 T and 3 T); set the blood T10 (aif.blood_t10_s) explicitly")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class AIFCriteria:
    """Voxel selection rule (module notes, steps 1-4).

    Attributes
    ----------
    min_cnr : float
        Minimum peak signal enhancement / noise (default 10).
    max_ttp_s : float
        Maximum time from the volume's median arrival to the voxel's peak (s, default 30).
    min_washout : float
        Minimum signal-domain washout ``1 - late / peak`` (default 0.2; SPGR saturation
        makes it smaller than the concentration washout).
    n_reference : int
        Number of largest candidate peaks averaged into the blood reference ``P``
        (default 10).
    peak_fraction : float
        Minimum peak enhancement relative to ``P`` (default 0.4; receive-coil gain varies
        across the aorta).
    erode : int
        Binary erosions (6-connected, image grids only) of the blood-amplitude mask: the
        outer layer of the vessel, where blood shares voxels with the wall and tissue,
        is removed on geometry alone (default 1; 0 = off). Skipped, with a note, when
        fewer than 5 voxels would remain.
    re_fraction : float
        Minimum relative enhancement relative to the lumen core's median (default 0.6).
    shape_tolerance : float
        Maximum RMS distance of a voxel's peak-normalised curve from the survivors'
        median normalised curve (default 0.15).
    max_voxels : int
        At most this many voxels are averaged (default 2000; beyond it an evenly spaced
        subset by voxel index, never a choice by a noisy feature).
    arrival_k_sd : float
        Arrival threshold in noise SDs (default 3).
    arrival_fraction : float
        Arrival threshold as a fraction of the peak enhancement (default 0.10); the
        larger of the two thresholds applies.
    late_fraction : float
        Fraction of the phases (at the end) whose mean is the late level (default 0.25).
    """

    min_cnr: float = 10.0
    max_ttp_s: float = 30.0
    min_washout: float = 0.2
    n_reference: int = 10
    peak_fraction: float = 0.4
    erode: int = 1
    re_fraction: float = 0.6
    shape_tolerance: float = 0.15
    max_voxels: int = 2000
    arrival_k_sd: float = 3.0
    arrival_fraction: float = 0.10
    late_fraction: float = 0.25

    def validate(self) -> None:
        """Raise ValueError for out-of-range settings."""
        if isinstance(self.erode, bool) or not isinstance(self.erode, (int, np.integer)) \
                or self.erode < 0:
            raise ValueError(f"erode: need an integer >= 0, got {self.erode!r}")
        for name in ("n_reference", "max_voxels"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
                raise ValueError(f"{name}: need a positive integer, got {val!r}")
        for name in ("min_cnr", "max_ttp_s", "arrival_k_sd", "shape_tolerance"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val >= 0):
                raise ValueError(f"{name}: need a finite value >= 0, got {val!r}")
        for name in ("min_washout", "peak_fraction", "re_fraction", "arrival_fraction"):
            val = getattr(self, name)
            if not 0 <= val < 1:
                raise ValueError(f"{name}: need a fraction in [0, 1), got {val!r}")
        if not 0 < self.late_fraction <= 0.5:
            raise ValueError(f"late_fraction: need a fraction in (0, 0.5], got "
                             f"{self.late_fraction!r}")


@dataclass(frozen=True)
class AIFQCThresholds:
    """Physiological pass/fail ranges of the measured (mean, blood) AIF (module notes).

    Attributes
    ----------
    min_voxels : int
        Minimum number of voxels averaged (default 5).
    peak_blood_range_mM : tuple of float
        Plausible peak blood concentration above baseline (mM, default (1.0, 15.0) for a
        standard 0.1 mmol/kg dose).
    max_noise_ratio : float
        Maximum baseline SD / peak (default 0.05).
    max_baseline_drift : float
        Maximum |mean of the second half of the baseline - mean of the first half| of the
        mean aortic *signal*, relative to its baseline (default 0.10; only a drift also
        larger than 4 times its noise fails: an M0 off by 10 % changes a 5 mM blood peak
        by about 30 %).
    max_ttp_s : float
        Maximum time from arrival to peak (s, default 30).
    max_fwhm_s : float
        Maximum first-pass full width at half maximum (s, default 30).
    area_60s_range_mM_s : tuple of float
        Plausible area under the blood curve over the 60 s after arrival (mM s, default
        (15, 600)).
    min_washout : float
        Minimum washout ``1 - late / peak`` of the concentration curve (default 0.3).
    """

    min_voxels: int = 5
    peak_blood_range_mM: tuple[float, float] = (1.0, 15.0)
    max_noise_ratio: float = 0.05
    max_baseline_drift: float = 0.10
    max_ttp_s: float = 30.0
    max_fwhm_s: float = 30.0
    area_60s_range_mM_s: tuple[float, float] = (15.0, 600.0)
    min_washout: float = 0.3

    def validate(self) -> None:
        """Raise ValueError for out-of-range settings."""
        if isinstance(self.min_voxels, bool) or not isinstance(self.min_voxels,
                                                                (int, np.integer)) \
                or self.min_voxels < 1:
            raise ValueError(f"min_voxels: need a positive integer, got {self.min_voxels!r}")
        for name in ("max_noise_ratio", "max_baseline_drift", "max_ttp_s", "max_fwhm_s"):
            val = getattr(self, name)
            if not (math.isfinite(val) and val >= 0):
                raise ValueError(f"{name}: need a finite value >= 0, got {val!r}")
        for name in ("peak_blood_range_mM", "area_60s_range_mM_s"):
            val = getattr(self, name)
            if len(val) != 2 or not (0 <= val[0] < val[1]) or not math.isfinite(val[1]):
                raise ValueError(f"{name}: need (low, high) with 0 <= low < high, got {val!r}")
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
        True when the measured aortic AIF passed every QC check.
    reason : str
        ``"ok"`` or the failed checks, separated by ``"; "``.
    source : str
        Origin of the returned AIF: ``"aorta"``, ``"parker"`` or ``"georgiou"``.
    fallback_used : bool
    fallback_reason : str or None
    fallback_arrival_source : str or None
        Arrival the population curve was aligned to: ``"measured"``,
        ``"tissue_median"`` or ``"end_of_baseline"``.
    fallback_delay_s : float or None
        ``delay_s`` passed to the population AIF.
    peak_blood_mM, peak_plasma_mM : float
        Peak of the measured AIF above its baseline (blood; plasma = blood / (1 - Hct)).
    peak_time_s : float
        Time of the peak (s, acquisition clock).
    arrival_s : float
        Bolus arrival of the measured AIF (s; threshold as in the module notes with the
        curve's baseline SD as noise).
    arrival_index : int
        Index of the first phase above that threshold (-1 if none).
    time_to_peak_s : float
    fwhm_s : float
        First-pass full width at half maximum (s; sampled curve, linear interpolation).
    area_60s_mM_s : float
        Area under the blood curve from arrival to arrival + 60 s (mM s).
    washout : float
        ``1 - late / peak`` of the measured concentration curve.
    baseline_sd_mM : float
        Temporal SD of the AIF over the baseline phases (mM, blood).
    noise_ratio : float
        ``baseline_sd_mM / peak_blood_mM``.
    baseline_drift : float
        |mean of the second half of the baseline - mean of the first half| of the mean
        aortic signal, relative to its baseline.
    blood_t10_s : float
        Pre-contrast blood T1 used for the conversion (s).
    blood_t10_source : str
        Where it came from (e.g. ``"literature 3 T (Zhang 2013)"``, ``"given"``,
        ``"map mean over the AIF voxels"``).
    voxel_baseline_snr_median : float
        Median baseline signal of the voxels used / their pooled baseline SD (the blood
        SNR of the scan).
    peak_enhancement_ratio : float
        Peak of the mean signal / its baseline (``S_peak / S0``).
    saturation_ratio : float
        The SPGR limit of that ratio for the blood T10 (``sin a / f(T10)``); a peak
        ratio near it means the conversion is ill-conditioned.
    n_voxels : int
        Number of voxels averaged.
    n_candidates, n_after_peak, n_after_erode, n_after_re, n_after_shape : int
        Voxels left after each selection step (module notes 1-4).
    n_enhancing : int
        Voxels counted for the volume's median arrival.
    volume_median_arrival_s : float
    voxel_indices : list of list of int
        Spatial indices of the voxels used (image order).
    prior_used : bool
    prior_note : str
    averaging : str
        ``"signal"`` (concentration of the mean voxel signal, corrected for the Rician
        noise floor).
    notes : str
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
    fwhm_s: float
    area_60s_mM_s: float
    washout: float
    baseline_sd_mM: float
    noise_ratio: float
    baseline_drift: float
    blood_t10_s: float
    blood_t10_source: str
    voxel_baseline_snr_median: float
    peak_enhancement_ratio: float
    saturation_ratio: float
    n_voxels: int
    n_candidates: int
    n_after_peak: int
    n_after_erode: int
    n_after_re: int
    n_after_shape: int
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
        Spatial indices of the voxels averaged (image order).
    qc : AIFQC
    """

    t_s: _FloatArray
    cb_mM: _FloatArray
    cp_mM: _FloatArray
    measured_cb_mM: _FloatArray
    voxel_indices: NDArray[np.intp]
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

    def detected_arrival(self) -> tuple[float, str]:
        """The bolus arrival a population curve is aligned to (s), and its source:
        ``"measured"`` (the aortic curve's arrival, when it lies after the baseline),
        ``"tissue_median"`` (the volume's median arrival) or ``"end_of_baseline"``."""
        q = self.qc
        return _detected_arrival(q.arrival_s, q.arrival_index, q.peak_blood_mM,
                                 q.volume_median_arrival_s, self.t_s, q.n_baseline)

    def columns(self) -> dict[str, NDArray[np.float64]]:
        """Columns of the returned AIF (the table of :meth:`to_frame`, without pandas):
        ``t_s`` (s), ``cb_mM``, ``cp_mM``, ``measured_cb_mM`` (mM)."""
        return {"t_s": self.t_s, "cb_mM": self.cb_mM, "cp_mM": self.cp_mM,
                "measured_cb_mM": self.measured_cb_mM}

    def to_frame(self) -> pd.DataFrame:
        """Table of the returned AIF: ``t_s``, ``cb_mM``, ``cp_mM``, ``measured_cb_mM``."""
        import pandas as pd  # here: the workflow's AIF step writes the table without it

        return pd.DataFrame(self.columns())

    def voxel_mask(self, shape: tuple[int, ...]) -> NDArray[np.uint8]:
        """Mask of the voxels averaged into the measured curve (1; else 0).

        Parameters
        ----------
        shape : tuple of int
            Spatial shape of the image the AIF was extracted from.

        Returns
        -------
        ndarray of uint8, shape ``shape``
        """
        vox = np.zeros(shape, dtype=np.uint8)
        if self.voxel_indices.size:
            vox[tuple(self.voxel_indices.T)] = 1
        return vox

    def peak_phase(self) -> int:
        """Index of the measured curve's peak phase (``n_baseline + 3``, at most the last
        phase, when no curve was measured): the phase a QC figure shows (the same rule from
        the written AIF table: :func:`dce.viz.session.aif_qc_phase`)."""
        if np.any(np.isfinite(self.measured_cb_mM)):
            return int(np.nanargmax(self.measured_cb_mM))
        return min(self.qc.n_baseline + 3, self.t_s.size - 1)


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


@dataclass(frozen=True)
class _Features:
    finite: NDArray[np.bool_]
    s0: _FloatArray
    noise: _FloatArray
    peak: _FloatArray
    i_peak: NDArray[np.intp]
    arrival: _FloatArray
    washout: _FloatArray
    re: _FloatArray


@numba.njit(cache=True, nogil=True)
def _robust_noise(e: NDArray[Any], sd: NDArray[Any], need: NDArray[Any], c: float,
                  noise: NDArray[Any], lo: int, hi: int) -> None:
    """``noise[r] = max(sd[r], c * median(|diff(e[r])|))`` for the rows ``r`` in ``lo:hi``
    with ``need[r]`` (others are left alone): the values of numpy's
    ``np.maximum(sd, c * np.median(np.abs(np.diff(e, axis=1)), axis=1))`` (finite ``e``).
    Where at least half the differences are clearly below ``sd / c`` the median is too and
    the result is ``sd`` (no selection); otherwise the median by quickselect
    (:func:`dce._select.median`)."""
    n = e.shape[1] - 1
    k = n // 2
    a = np.empty(n)
    for r in range(lo, hi):
        if not need[r]:
            continue
        x_sd = sd[r] / c * (1.0 - 1e-9)     # margin >> rounding: median <= x_sd => sd
        n_below = 0
        for i in range(n):
            a[i] = abs(e[r, i + 1] - e[r, i])
            if a[i] <= x_sd:
                n_below += 1
        if n_below >= k + 1:                # the (k+1)-th smallest (and the k-th) <= x_sd
            noise[r] = sd[r]
            continue
        noise[r] = max(sd[r], c * median(a, n))


def _features(s: _FloatArray, t: _FloatArray, nb: int, crit: AIFCriteria) -> _Features:
    """Signal-domain features of a block ``s`` (n_vox, n_times); vectorised."""
    n_t = t.size
    finite = np.all(np.isfinite(s), axis=1)
    s = np.where(finite[:, None], s, 0.0)
    base = s[:, :nb]
    s0 = base.mean(axis=1)
    e = s - s0[:, None]
    sd = base.std(axis=1, ddof=1)
    post = e[:, nb:]
    i_peak = (np.argmax(post, axis=1) + nb).astype(np.intp)
    peak = post.max(axis=1)
    # noise max(SD, robust term) >= SD: a curve with peak <= 0 or below min_cnr baseline
    # SDs is not enhancing whatever its robust term, which is computed for the others only
    # (its noise, and so its arrival, are used only for enhancing curves)
    with np.errstate(invalid="ignore", divide="ignore"):
        cnr_sd = np.where(sd > 0, peak / sd, np.where(peak > 0, np.inf, 0.0))
    noise = sd.copy()
    run_chunks(_robust_noise, e.shape[0], e, sd, (peak > 0) & (cnr_sd >= crit.min_cnr),
               float(1.4826 / np.sqrt(2.0)), noise, block=1024)
    thr = np.maximum(crit.arrival_k_sd * noise, crit.arrival_fraction * peak)
    arrival, _ = _crossing_time(t, e, thr)
    n_late = max(1, round(crit.late_fraction * n_t))
    late = e[:, n_t - n_late:].mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        washout = np.where(peak > 0, 1.0 - late / peak, 0.0)
        re = np.where(s0 > 0, peak / s0, 0.0)
    washout = np.where(i_peak >= n_t - n_late, 0.0, washout)
    return _Features(finite=finite, s0=s0, noise=noise, peak=peak, i_peak=i_peak,
                     arrival=arrival, washout=washout, re=re)


def _concat(parts: list[_Features]) -> _Features:
    return _Features(**{k: np.concatenate([getattr(p, k) for p in parts])
                        for k in _Features.__dataclass_fields__})


def _detected_arrival(arrival_s: float, arrival_index: int, peak: float,
                      median_arrival_s: float, t: _FloatArray, nb: int) -> tuple[float, str]:
    """Arrival (s) and its source; see :meth:`AIFResult.detected_arrival`."""
    if math.isfinite(arrival_s) and arrival_index >= nb and peak > 0:
        return float(arrival_s), "measured"
    if math.isfinite(median_arrival_s):
        return float(median_arrival_s), "tissue_median"
    return float(t[nb]), "end_of_baseline"


def _population_offset_s(name: str, fraction: float) -> float:
    """Time from a population curve's origin to its ``fraction``-of-peak crossing (s)."""
    t_fine = np.arange(0.0, 120.0, 0.05)
    cb = population_aif(name, t_fine)
    tc, _ = _crossing_time(t_fine, cb[None, :], np.array([fraction * float(cb.max())]))
    return float(tc[0])


def population_aligned(name: str, t_s: ArrayLike, arrival_s: float, *,
                       arrival_fraction: float = 0.10) -> tuple[_FloatArray, float]:
    """A population blood AIF shifted so that its arrival falls at ``arrival_s``.

    Parameters
    ----------
    name : {"parker", "georgiou"}
    t_s : array_like, shape (n,)
        Phase times (s).
    arrival_s : float
        Detected bolus arrival (s).
    arrival_fraction : float
        The arrival of the population curve is its first crossing of this fraction of
        its peak (default 0.10, as for the measured curve).

    Returns
    -------
    cb_mM : ndarray, shape (n,)
        Blood concentration (mM).
    delay_s : float
        The delay applied to the population curve (s, >= 0).
    """
    t = check_times(t_s, "t_s", min_len=2)
    delay = max(0.0, float(arrival_s) - _population_offset_s(name, arrival_fraction))
    return population_aif(name, t, delay_s=delay), delay


@dataclass(frozen=True)
class _Prepared:
    feats: _Features
    ok: NDArray[np.bool_]  # passes the hard criteria (step 1)
    n_enhancing: int
    median_arrival_s: float


@dataclass(frozen=True)
class _Selection:
    idx: NDArray[np.intp]  # flat indices of the chosen voxels
    voxel_indices: NDArray[np.intp]
    counts: tuple[int, int, int, int, int]  # candidates, after peak, erode, re, shape
    note: str
    n_enhancing: int
    median_arrival_s: float
    prior_used: bool


def _with_note(res: AIFResult, note: str) -> AIFResult:
    return replace(res, qc=replace(res.qc, prior_note=note))


def _spgr_ratio_limit(t10_s: float, tr_s: float, fa_deg: float) -> float:
    """Largest possible ``S / S0`` of an SPGR signal with pre-contrast T1 ``t10_s``."""
    a = math.radians(fa_deg)
    e1 = math.exp(-tr_s / t10_s)
    return (1.0 - math.cos(a) * e1) / (1.0 - e1)


class AortaAIF:
    """Automatic aortic AIF extraction in the signal domain (settings; call :meth:`fit`).

    Parameters
    ----------
    criteria : AIFCriteria, optional
        Voxel selection rule (defaults documented on the class).
    thresholds : AIFQCThresholds, optional
        Physiological QC ranges of the measured curve.
    fallback : {"parker", "georgiou"} or None
        Population AIF returned when QC fails (None: return the failed measured curve).

    Examples
    --------
    >>> import numpy as np
    >>> from dce.signal import concentration_to_signal
    >>> t = np.arange(30) * 5.0
    >>> cb = np.interp(t, [0, 20, 30, 40, 145], [0, 0, 6, 2, 1])      # blood, mM
    >>> tissue = np.interp(t, [0, 20, 60, 145], [0, 0, 0.3, 0.4])
    >>> conc = np.stack([tissue] * 60 + [cb] * 12)
    >>> t10 = np.r_[np.full(60, 1.2), np.full(12, 1.65)]
    >>> sig = concentration_to_signal(conc, t10_s=t10, m0=1000.0, tr_s=0.0045,
    ...                               flip_angle_deg=20, r1_per_mM_per_s=4.5)
    >>> res = AortaAIF().fit(sig, t, tr_s=0.0045, flip_angle_deg=20, r1_per_mM_per_s=4.5,
    ...                      n_baseline=4, hematocrit=0.45, blood_t10_s=1.65)
    >>> res.qc.passed, res.qc.n_voxels, round(res.qc.peak_blood_mM, 2)
    (True, 12, 6.0)
    """

    def __init__(self, criteria: AIFCriteria | None = None,
                 thresholds: AIFQCThresholds | None = None, *,
                 fallback: str | None = None) -> None:
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

    def fit(self, signal: ArrayLike, t_s: ArrayLike, *, tr_s: float, flip_angle_deg: float,
            r1_per_mM_per_s: float, n_baseline: int, hematocrit: float,
            blood_t10_s: ArrayLike, blood_t10_source: str | None = None,
            mask: ArrayLike | None = None, prior_mask: ArrayLike | None = None) -> AIFResult:
        """Extract the AIF from a dynamic SPGR signal image.

        Parameters
        ----------
        signal : array_like, shape (..., n_times)
            Dynamic magnitude signal (signal units), time on the last axis; any spatial
            shape. Voxels with non-finite samples are never selected.
        t_s : array_like, shape (n_times,)
            Phase times (s): finite, strictly increasing.
        tr_s : float
            Repetition time (s).
        flip_angle_deg : float
            Flip angle (deg).
        r1_per_mM_per_s : float
            Longitudinal relaxivity (/mM/s).
        n_baseline : int
            Number of leading pre-contrast phases, in ``[2, n_times - 3]``.
        hematocrit : float
            Large-vessel hematocrit in ``[0, 1)`` for ``cp = cb / (1 - hematocrit)``.
        blood_t10_s : float or array_like
            Pre-contrast blood T1 (s): a number (e.g. :func:`blood_t10_literature`) or a
            T10 map of the image shape (its mean over the chosen voxels is used).
        blood_t10_source : str, optional
            Description recorded in the QC (default ``"given"`` or ``"map mean over the
            AIF voxels"``).
        mask : bool array, shape ``signal.shape[:-1]``, optional
            Hard restriction (e.g. a drawn aorta ROI).
        prior_mask : bool array, optional
            Soft anatomical prior (module notes).

        Returns
        -------
        AIFResult

        Raises
        ------
        ValueError
            For mismatched lengths, invalid times, ``n_baseline`` out of range, invalid
            hematocrit, TR, flip angle, relaxivity or blood T10, or a bad mask.
        """
        t = check_times(t_s, "t_s", min_len=5)
        n_t = t.size
        s = np.asarray(signal)
        if not np.issubdtype(s.dtype, np.floating):
            s = as_float_array(s, "signal", allow_nan=True)
        if s.size == 0 or s.ndim < 1 or s.shape[-1] != n_t:
            raise ValueError(f"signal: last axis has length {s.shape[-1] if s.ndim else 0} "
                             f"but t_s has {n_t} points (mismatched lengths)")
        nb = _check_n_baseline(n_baseline, n_t)
        hct = _check_hematocrit(hematocrit)
        tr = float(as_float_array(tr_s, "tr_s"))
        fa = float(as_float_array(flip_angle_deg, "flip_angle_deg"))
        r1 = float(as_float_array(r1_per_mM_per_s, "r1_per_mM_per_s"))
        if not 0 < tr < 1:
            raise ValueError(f"tr_s: repetition time in seconds (0 < TR < 1), got {tr!r}")
        if not 0 < fa < 180:
            raise ValueError(f"flip_angle_deg: need 0 < flip angle < 180 deg, got {fa!r}")
        if not r1 > 0:
            raise ValueError(f"r1_per_mM_per_s: need a relaxivity > 0, got {r1!r}")
        spatial = s.shape[:-1]
        t10_arr = as_float_array(blood_t10_s, "blood_t10_s", allow_nan=True)
        if t10_arr.ndim == 0:
            t10_scalar = float(t10_arr)
            if not (math.isfinite(t10_scalar) and 0.2 <= t10_scalar <= 5.0):
                hint = " (looks like ms; T10 is in s)" if t10_scalar > 100 else ""
                raise ValueError(f"blood_t10_s: need a blood T1 in [0.2, 5] s, got "
                                 f"{t10_scalar!r}{hint}")
            t10_map = None
            t10_src = blood_t10_source or "given"
        else:
            if t10_arr.shape != spatial:
                raise ValueError(f"blood_t10_s: map shape {t10_arr.shape} does not match the "
                                 f"image shape {spatial}")
            t10_map = t10_arr.ravel()
            t10_scalar = float("nan")
            t10_src = blood_t10_source or "map mean over the AIF voxels"
        flat = _c_rows(s)

        def curve(idx: NDArray[np.intp]) -> _Curve:
            """Blood concentration of the mean signal, with its signal-domain metrics."""
            if not idx.size:
                return _Curve(np.full(n_t, np.nan), float("nan"), t10_src, "", {})
            rows = np.asarray(flat[idx], dtype=np.float64)
            mean_sig = _noise_floor_corrected_mean(rows, nb)
            sig = _signal_metrics(mean_sig, rows[:, :nb], nb)
            t10 = t10_scalar
            if t10_map is not None:
                vals = t10_map[idx]
                vals = vals[np.isfinite(vals) & (vals > 0)]
                if not vals.size:
                    return _Curve(np.full(n_t, np.nan), float("nan"), t10_src,
                                  "no finite T10 in the blood T10 map at the AIF voxels", sig)
                t10 = float(vals.mean())
            sig["saturation_ratio"] = _spgr_ratio_limit(t10, tr, fa)
            conv = signal_to_concentration(mean_sig, t10_s=t10, tr_s=tr, flip_angle_deg=fa,
                                           r1_per_mM_per_s=r1, baseline=nb)
            cb = np.asarray(conv.conc_mM, dtype=np.float64)
            note = ""
            if not np.all(np.isfinite(cb)):
                bad = np.flatnonzero(~np.isfinite(cb))
                note = (f"mean aortic signal at or above the SPGR limit at phase(s) "
                        f"{', '.join(str(int(i)) for i in bad[:5])} (peak S/S0 "
                        f"{sig['peak_ratio']:.3g}, limit {sig['saturation_ratio']:.3g}): blood "
                        f"T10 {t10:.3g} s, flip angle {fa:g} deg or TR {tr:g} s do not fit "
                        "the data")
            return _Curve(cb, t10, t10_src, note, sig)

        return self._run(flat, t, nb, hct, spatial, mask, prior_mask, curve)

    # ----------------------------------------------------------------------- internals

    def _run(self, flat: NDArray[Any], t: _FloatArray, nb: int, hct: float,
             spatial: tuple[int, ...], mask: ArrayLike | None, prior_mask: ArrayLike | None,
             curve: Callable[[NDArray[np.intp]], _Curve]
             ) -> AIFResult:
        """Features once; selection (with, then without the prior); curve; QC."""
        m = _check_mask(mask, spatial, "mask")
        prior = _check_mask(prior_mask, spatial, "prior_mask")
        pre = self._prepare(flat, t, nb)
        ok = pre.ok if m is None else pre.ok & m.ravel()
        if prior is None:
            sel = self._select(pre, ok, flat, nb, spatial, prior_used=False)
            return self._assemble(curve(sel.idx), t, nb, hct, sel)
        sel_p = self._select(pre, ok & prior.ravel(), flat, nb, spatial, prior_used=True)
        if sel_p.idx.size:
            res_p = self._assemble(curve(sel_p.idx), t, nb, hct, sel_p)
            if res_p.passed:
                return res_p
        sel = self._select(pre, ok, flat, nb, spatial, prior_used=False)
        res = self._assemble(curve(sel.idx), t, nb, hct, sel)
        if not sel_p.idx.size:
            note = "no voxel inside prior_mask passed the selection; prior ignored"
        elif res.passed:
            note = f"AIF inside prior_mask failed QC ({res_p.qc.reason}); prior ignored"
        else:
            return _with_note(res_p, "QC failed with and without the prior; the result "
                                     "inside prior_mask is returned")
        return _with_note(res, note)

    def _prepare(self, flat: NDArray[Any], t: _FloatArray, nb: int) -> _Prepared:
        """Per-voxel features, the volume's median arrival and the hard criteria."""
        crit = self.criteria
        n_vox, n_t = flat.shape
        feats = _concat([_features(np.asarray(flat[s:s + _BLOCK], dtype=np.float64), t, nb,
                                   crit) for s in range(0, n_vox, _BLOCK)])
        with np.errstate(invalid="ignore", divide="ignore"):
            cnr = np.where(feats.noise > 0, feats.peak / feats.noise,
                           np.where(feats.peak > 0, np.inf, 0.0))
        enhancing = feats.finite & (feats.s0 > 0) & (feats.peak > 0) \
            & (cnr >= crit.min_cnr) & np.isfinite(feats.arrival)
        n_enh = int(enhancing.sum())
        med_arrival = float(np.median(feats.arrival[enhancing])) if n_enh else float("nan")
        ttp = t[feats.i_peak] - (med_arrival if n_enh else t[nb])
        ok = (enhancing & (feats.i_peak < n_t - 1) & (ttp <= crit.max_ttp_s)
              & (feats.washout >= crit.min_washout))
        return _Prepared(feats=feats, ok=ok, n_enhancing=n_enh, median_arrival_s=med_arrival)

    def _select(self, pre: _Prepared, ok: NDArray[np.bool_], flat: NDArray[Any], nb: int,
                spatial: tuple[int, ...], *, prior_used: bool) -> _Selection:
        """Steps 2-4 of the module notes on the candidates ``ok``."""
        crit, f = self.criteria, pre.feats
        idx = np.flatnonzero(ok)
        n_cand = int(idx.size)
        n_peak = n_erode = n_re = n_shape = 0
        note = ""
        if idx.size:
            p = f.peak[idx]
            k = min(crit.n_reference, p.size)
            ref = float(np.mean(np.partition(p, p.size - k)[p.size - k:]))
            idx = idx[p >= crit.peak_fraction * ref]
            n_peak = int(idx.size)
            if crit.erode and len(spatial) >= 2:
                blood = np.zeros(int(np.prod(spatial)), dtype=bool)
                blood[idx] = True
                inner = ndimage.binary_erosion(blood.reshape(spatial),
                                               iterations=crit.erode).ravel()
                if int(inner[idx].sum()) >= _MIN_CORE:
                    idx = idx[inner[idx]]
                else:
                    note = (f"erosion left {int(inner[idx].sum())} voxel(s): the vessel is "
                            "too small for its partial-volume rim to be removed; not eroded")
            n_erode = int(idx.size)
            core = f.peak[idx] >= 0.75 * ref
            r_ref = float(np.median(f.re[idx][core] if core.any() else f.re[idx]))
            idx = idx[f.re[idx] >= crit.re_fraction * r_ref]
            n_re = int(idx.size)
        if idx.size:
            c = np.asarray(flat[idx], dtype=np.float64)
            e = (c[:, nb:] - f.s0[idx][:, None]) / f.peak[idx][:, None]
            keep = np.ones(idx.size, dtype=bool)
            for _ in range(2):  # consensus, then the consensus of the inliers
                med = np.median(e[keep], axis=0)
                dev = np.sqrt(np.mean((e - med) ** 2, axis=1))
                inl = dev <= crit.shape_tolerance
                if not inl.any():
                    break
                keep = inl
            keep = keep & (dev <= crit.shape_tolerance)
            idx, dev = idx[keep], dev[keep]
            n_shape = int(idx.size)
        idx = np.sort(idx).astype(np.intp)
        if idx.size > crit.max_voxels:  # evenly spaced, not chosen by any noisy feature
            idx = idx[np.linspace(0, idx.size - 1, crit.max_voxels).round().astype(np.intp)]
        vox = (np.stack(np.unravel_index(idx, spatial), axis=1).astype(np.intp)
               if spatial else np.zeros((idx.size, 0), dtype=np.intp))
        return _Selection(idx=idx, voxel_indices=vox,
                          counts=(n_cand, n_peak, n_erode, n_re, n_shape), note=note,
                          n_enhancing=pre.n_enhancing,
                          median_arrival_s=pre.median_arrival_s, prior_used=prior_used)

    def _assemble(self, cv: _Curve, t: _FloatArray, nb: int, hct: float, sel: _Selection
                  ) -> AIFResult:
        """Baseline subtraction, QC, fallback and the result record."""
        crit = self.criteria
        cb, note, sig = cv.cb, cv.note, cv.signal_metrics
        if np.all(np.isfinite(cb)):
            cb = cb - cb[:nb].mean()
        n_sel = int(sel.idx.size)
        metrics = _curve_metrics(cb, t, nb, crit)
        reasons = self._qc_reasons(metrics, sig, n_sel, nb, note)
        passed = not reasons
        reason = "ok" if passed else "; ".join(reasons)

        out_cb = cb
        fb_reason = fb_source = None
        fb_delay: float | None = None
        source = "aorta"
        if not passed and self.fallback is not None:
            arr, fb_source = _detected_arrival(metrics["arrival_s"],
                                               int(metrics["arrival_index"]), metrics["peak"],
                                               sel.median_arrival_s, t, nb)
            out_cb, fb_delay = population_aligned(self.fallback, t, arr,
                                                  arrival_fraction=crit.arrival_fraction)
            fb_reason = f"QC failed: {reason}"
            source = self.fallback
        n_cand, n_peak, n_erode, n_re, n_shape = sel.counts
        note = "; ".join(x for x in (sel.note, note) if x)
        qc = AIFQC(
            passed=passed, reason=reason, source=source,
            fallback_used=source != "aorta", fallback_reason=fb_reason,
            fallback_arrival_source=fb_source, fallback_delay_s=fb_delay,
            peak_blood_mM=metrics["peak"], peak_plasma_mM=metrics["peak"] / (1.0 - hct),
            peak_time_s=metrics["peak_time_s"], arrival_s=metrics["arrival_s"],
            arrival_index=int(metrics["arrival_index"]),
            time_to_peak_s=metrics["peak_time_s"] - metrics["arrival_s"],
            fwhm_s=metrics["fwhm_s"], area_60s_mM_s=metrics["area_60s"],
            washout=metrics["washout"], baseline_sd_mM=metrics["baseline_sd"],
            noise_ratio=metrics["noise_ratio"],
            baseline_drift=sig.get("drift", float("nan")),
            blood_t10_s=cv.t10_s, blood_t10_source=cv.t10_source,
            voxel_baseline_snr_median=sig.get("snr", float("nan")),
            peak_enhancement_ratio=sig.get("peak_ratio", float("nan")),
            saturation_ratio=sig.get("saturation_ratio", float("nan")),
            n_voxels=n_sel, n_candidates=n_cand, n_after_peak=n_peak,
            n_after_erode=n_erode, n_after_re=n_re,
            n_after_shape=n_shape, n_enhancing=sel.n_enhancing,
            volume_median_arrival_s=sel.median_arrival_s,
            voxel_indices=sel.voxel_indices.tolist(), prior_used=sel.prior_used,
            prior_note="", averaging="signal", notes=note, n_baseline=nb, hematocrit=hct,
            criteria=asdict(crit), thresholds=asdict(self.thresholds))
        out = np.asarray(out_cb, dtype=np.float64)
        return AIFResult(t_s=t, cb_mM=out, cp_mM=out / (1.0 - hct), measured_cb_mM=cb,
                         voxel_indices=sel.voxel_indices, qc=qc)

    def _qc_reasons(self, mtr: dict[str, float], sig: dict[str, float], n_sel: int, nb: int,
                    note: str) -> list[str]:
        q = self.thresholds
        if n_sel == 0:
            return ["no voxel passed the selection (no early, sharp, washing-out "
                    "enhancement found)"]
        out = []
        if n_sel < q.min_voxels:
            out.append(f"only {n_sel} voxel(s) selected (< min_voxels {q.min_voxels})")
        if not math.isfinite(mtr["peak"]):
            out.append(note or "the mean aortic signal could not be converted")
            return out
        lo, hi = q.peak_blood_range_mM
        if not lo <= mtr["peak"] <= hi:
            out.append(f"peak {mtr['peak']:.3g} mM outside the plausible blood range "
                       f"[{lo:g}, {hi:g}] mM (peak_blood_range_mM)")
        if not mtr["noise_ratio"] <= q.max_noise_ratio:
            out.append(f"baseline noise {mtr['noise_ratio']:.3g} of peak > max_noise_ratio "
                       f"{q.max_noise_ratio:g}")
        drift, drift_se = sig.get("drift", 0.0), sig.get("drift_se", 0.0)
        if drift > q.max_baseline_drift and drift > 4.0 * drift_se:
            out.append(f"baseline signal drift {drift:.3g} of the baseline > "
                       f"max_baseline_drift {q.max_baseline_drift:g} (4 x its noise "
                       f"{4.0 * drift_se:.3g})")
        ai = min(int(mtr["arrival_index"]), int(mtr["first_rise_index"]))
        if int(mtr["arrival_index"]) < 0:
            out.append("no bolus arrival detected")
        elif ai < nb:
            out.append(f"bolus arrival at phase {ai} lies within the {nb} baseline phases "
                       "(reduce n_baseline)")
        else:
            ttp = mtr["peak_time_s"] - mtr["arrival_s"]
            if not ttp <= q.max_ttp_s:
                out.append(f"time to peak {ttp:.3g} s > max_ttp_s {q.max_ttp_s:g}")
            lo_a, hi_a = q.area_60s_range_mM_s
            if math.isfinite(mtr["area_60s"]) and not lo_a <= mtr["area_60s"] <= hi_a:
                out.append(f"area over 60 s after arrival {mtr['area_60s']:.3g} mM s outside "
                           f"[{lo_a:g}, {hi_a:g}] (area_60s_range_mM_s)")
        if not mtr["fwhm_s"] <= q.max_fwhm_s:
            out.append(f"first-pass FWHM {mtr['fwhm_s']:.3g} s > max_fwhm_s {q.max_fwhm_s:g}")
        if not mtr["washout"] >= q.min_washout:
            out.append(f"washout {mtr['washout']:.3g} < min_washout {q.min_washout:g}")
        return out


@dataclass(frozen=True)
class _Curve:
    cb: _FloatArray  # blood concentration of the mean signal (mM)
    t10_s: float
    t10_source: str
    note: str
    signal_metrics: dict[str, float]


def _noise_floor_corrected_mean(rows: _FloatArray, nb: int) -> _FloatArray:
    """Mean magnitude signal of ``rows`` (n_voxels, n_times) without the Rician floor.

    Magnitude noise raises the mean of a low-SNR signal (``E[M^2] = A^2 + 2 sigma^2``); at
    a baseline blood SNR of 5 that is +2 %, which near the SPGR limit costs 10-15 % of the
    peak concentration. Per phase, ``sqrt(mean(M^2) - 2 sigma^2)`` with ``sigma`` the pooled
    baseline SD of the voxels: the voxels share one curve up to a gain, ``A_i(t) = g_i
    s(t)``, so the result is ``sqrt(mean g^2) s(t)`` and its ratio to the baseline is exact.
    With a single voxel the plain signal is returned.
    """
    if rows.shape[0] < 2:
        return rows.mean(axis=0)
    sigma2 = float(np.mean(rows[:, :nb].var(axis=1, ddof=1)))
    ms = np.mean(rows * rows, axis=0) - 2.0 * sigma2
    return np.sqrt(np.clip(ms, 0.0, None))


def _signal_metrics(mean_sig: _FloatArray, base_rows: _FloatArray, nb: int
                    ) -> dict[str, float]:
    """Baseline drift (and its noise), peak ratio and blood SNR of the mean signal.

    ``base_rows`` holds the chosen voxels' baseline samples (n_voxels, nb).
    """
    s0 = float(mean_sig[:nb].mean())
    h = nb // 2
    out = {"peak_ratio": float(mean_sig[nb:].max()) / s0 if s0 > 0 else float("nan")}
    if s0 > 0:
        out["drift"] = abs(float(mean_sig[h:nb].mean() - mean_sig[:h].mean())) / s0
    n = base_rows.shape[0]
    if n >= 1 and nb >= 2:
        pooled = float(np.sqrt(np.mean(base_rows.var(axis=1, ddof=1))))
        # SE of the difference of two half-baseline means of the n-voxel mean signal
        out["drift_se"] = pooled / math.sqrt(n) * math.sqrt(1.0 / h + 1.0 / (nb - h)) / s0 \
            if s0 > 0 else float("nan")
        if pooled > 0:
            out["snr"] = float(np.median(base_rows.mean(axis=1))) / pooled
    return out


def _fwhm(t: _FloatArray, e: _FloatArray, i_peak: int, peak: float) -> float:
    """Full width at half maximum around the peak (s), linear interpolation; inf when the
    curve does not fall below half maximum after the peak."""
    half = peak / 2.0
    left = np.flatnonzero(e[:i_peak] < half)
    right = np.flatnonzero(e[i_peak:] < half)
    if not right.size:
        return float("inf")
    if left.size:
        i0 = int(left[-1])
        t_l = t[i0] + (half - e[i0]) / (e[i0 + 1] - e[i0]) * (t[i0 + 1] - t[i0])
    else:
        t_l = t[0]
    j1 = i_peak + int(right[0])
    t_r = t[j1 - 1] + (e[j1 - 1] - half) / (e[j1 - 1] - e[j1]) * (t[j1] - t[j1 - 1])
    return float(t_r - t_l)


def _curve_metrics(cb: _FloatArray, t: _FloatArray, nb: int, crit: AIFCriteria
                   ) -> dict[str, float]:
    """QC metrics of a mean blood curve (NaN when the curve is not finite)."""
    nan = float("nan")
    if not np.all(np.isfinite(cb)):
        return {"peak": nan, "peak_time_s": nan, "arrival_s": nan, "arrival_index": -1,
                "washout": nan, "baseline_sd": nan, "noise_ratio": nan,
                "first_rise_index": -1, "fwhm_s": nan, "area_60s": nan}
    base = cb[:nb]
    e = cb - base.mean()
    sd = float(base.std(ddof=1))
    i_peak = int(np.argmax(e[nb:]) + nb)
    peak = float(e[i_peak])
    thr = np.array([max(crit.arrival_k_sd * sd, crit.arrival_fraction * peak)])
    arr, ai = _crossing_time(t, e[None, :], thr)
    # a bolus inside the baseline raises the baseline SD and so the threshold above;
    # the fraction-of-peak threshold alone still sees it
    _, ai_frac = _crossing_time(t, e[None, :], np.array([crit.arrival_fraction * peak]))
    n_t = t.size
    n_late = max(1, round(crit.late_fraction * n_t))
    late = float(e[n_t - n_late:].mean())
    washout = 0.0 if i_peak >= n_t - n_late or peak <= 0 else 1.0 - late / peak
    a0 = float(arr[0])
    if math.isfinite(a0):
        tt = np.linspace(a0, a0 + 60.0, 601)
        area = float(np.trapezoid(np.interp(tt, t, e), tt)) if a0 + 60.0 <= t[-1] else nan
    else:
        area = nan
    return {"peak": peak, "peak_time_s": float(t[i_peak]), "arrival_s": a0,
            "arrival_index": float(ai[0]), "washout": washout, "baseline_sd": sd,
            "noise_ratio": sd / peak if peak > 0 else float("inf"),
            "first_rise_index": float(ai_frac[0]),
            "fwhm_s": _fwhm(t, e, i_peak, peak) if peak > 0 else nan, "area_60s": area}


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


def extract_aif(signal: ArrayLike, t_s: ArrayLike, *, tr_s: float, flip_angle_deg: float,
                r1_per_mM_per_s: float, n_baseline: int, hematocrit: float,
                blood_t10_s: ArrayLike, blood_t10_source: str | None = None,
                mask: ArrayLike | None = None, prior_mask: ArrayLike | None = None,
                spine_mask: ArrayLike | None = None, anterior_axis: int | None = None,
                anterior_direction: int = -1, fallback: str | None = None,
                criteria: AIFCriteria | None = None,
                thresholds: AIFQCThresholds | None = None) -> AIFResult:
    """Extract the aortic AIF from an SPGR signal image (functional form of :class:`AortaAIF`).

    Parameters
    ----------
    signal, t_s, tr_s, flip_angle_deg, r1_per_mM_per_s, n_baseline, hematocrit
        See :meth:`AortaAIF.fit`.
    blood_t10_s, blood_t10_source, mask, prior_mask
        See :meth:`AortaAIF.fit`.
    spine_mask : bool array, optional
        Vertebral bodies (and discs); with ``anterior_axis`` adds the prior
        :func:`anterior_region` (combined with ``prior_mask`` by AND).
    anterior_axis : int, optional
        Anterior-posterior axis of the image; requires ``spine_mask``.
    anterior_direction : {-1, +1}
        -1 when anterior is towards decreasing index along ``anterior_axis`` (default).
    fallback : {"parker", "georgiou"} or None
        Population AIF returned when QC fails.
    criteria, thresholds : optional
        :class:`AIFCriteria`, :class:`AIFQCThresholds`.

    Returns
    -------
    AIFResult
    """
    model = AortaAIF(criteria, thresholds, fallback=fallback)
    prior = _combined_prior(prior_mask, spine_mask, anterior_axis, anterior_direction)
    return model.fit(signal, t_s, tr_s=tr_s, flip_angle_deg=flip_angle_deg,
                     r1_per_mM_per_s=r1_per_mM_per_s, n_baseline=n_baseline,
                     hematocrit=hematocrit, blood_t10_s=blood_t10_s,
                     blood_t10_source=blood_t10_source, mask=mask, prior_mask=prior)


# --------------------------------------------------------------------------- policy

#: ``aif.mode`` values: the aortic AIF (population fallback on QC failure) or a
#: population curve aligned to the detected bolus arrival.
AIF_MODES = ("auto", "population")
_ON_QC_FAILURE = ("fallback", "error")
_DELAY_MODES = ("none", "phases", "fit")
_T10_SETTINGS = ("literature", "vfa")

#: Fewest voxels (fraction of the image) with a positive baseline signal for an AIF search.
MIN_POSITIVE_BASELINE_FRACTION = 0.01


def anterior_axis_of(affine: ArrayLike) -> tuple[int, int]:
    """Image axis closest to the anterior direction of an affine, and its sense.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Voxel-to-RAS+ affine (mm).

    Returns
    -------
    axis : int
        Image axis whose direction has the largest anterior (+y) component.
    direction : {+1, -1}
        +1 when anterior is towards increasing index along ``axis``.
    """
    a = np.asarray(affine, dtype=float)
    ax = int(np.argmax(np.abs(a[1, :3])))
    return ax, (1 if a[1, ax] > 0 else -1)


@dataclass(frozen=True)
class AIFChoice:
    """The AIF chosen by :meth:`AIFPolicy.select`.

    Attributes
    ----------
    result : AIFResult
        The returned AIF (``cb_mM``, ``cp_mM``: aortic, population fallback or population
        curve, delayed as configured), the measured curve and the voxels used.
    qc : dict
        The QC record to store: :meth:`AIFQC.to_dict` plus the policy's entries
        (``mode``, ``delay_mode``, ``used_peak_blood_mM`` (mM, peak of the returned blood
        curve above its baseline), ``n_baseline``, ``hematocrit``; in population mode
        ``source`` is the population curve and ``population_arrival_s``,
        ``population_arrival_source``, ``population_delay_s`` (s) are added).
    blood_t10_source : str
        Where the blood T10 came from.
    """

    result: AIFResult
    qc: dict[str, Any]
    blood_t10_source: str


@dataclass(frozen=True)
class AIFPolicy:
    """How a session's AIF is chosen (module notes, *Policy*); the ``aif`` configuration.

    Attributes
    ----------
    mode : {"auto", "population"}
        Aortic AIF with QC, or a population curve aligned to the detected arrival.
    population : {"parker", "georgiou"}
        Population curve of ``mode: population``.
    fallback : {"parker", "georgiou", "none"}
        Population curve returned when the aortic AIF fails QC (``none``: the measured
        curve is returned anyway).
    on_qc_failure : {"fallback", "error"}
        ``error``: a failed QC raises instead of falling back.
    blood_t10_s : {"literature", "vfa"} or float
        Blood T10: literature value at the field strength (:func:`blood_t10_literature`),
        the mean of the session's VFA T10 map over the AIF voxels, or a number (s).
    delay : {"none", "phases", "fit"}
        Tissue delay behind the AIF; only ``phases`` changes the AIF (``fit`` is the
        tracer-kinetic fit's business).
    delay_phases : int
        Whole phases of the ``phases`` delay (>= 0).
    anterior_prior : bool
        Prefer voxels anterior to the lesion/marrow ROIs (the ``spine_mask`` of
        :meth:`select`).
    criteria : AIFCriteria
    thresholds : AIFQCThresholds
    """

    mode: str
    population: str
    fallback: str
    on_qc_failure: str
    blood_t10_s: str | float
    delay: str
    delay_phases: int
    anterior_prior: bool
    criteria: AIFCriteria = field(default_factory=AIFCriteria)
    thresholds: AIFQCThresholds = field(default_factory=AIFQCThresholds)

    def __post_init__(self) -> None:
        choices = {"mode": AIF_MODES, "population": POPULATION_AIF_NAMES,
                   "fallback": (*POPULATION_AIF_NAMES, "none"),
                   "on_qc_failure": _ON_QC_FAILURE, "delay": _DELAY_MODES}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"aif.{name}: {getattr(self, name)!r} is not one of "
                                 f"{', '.join(allowed)}")
        if isinstance(self.blood_t10_s, str) and self.blood_t10_s not in _T10_SETTINGS:
            raise ValueError(f"aif.blood_t10_s: {self.blood_t10_s!r} is not literature, vfa "
                             "or a number (s)")
        if isinstance(self.delay_phases, bool) or not isinstance(
                self.delay_phases, (int, np.integer)) or self.delay_phases < 0:
            raise ValueError(f"aif.delay_phases: need an integer >= 0, got "
                             f"{self.delay_phases!r}")
        self.criteria.validate()
        self.thresholds.validate()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> AIFPolicy:
        """The policy of the workflow's ``aif`` configuration section (all keys present,
        as after schema validation; ``mask_column`` is the workflow's and ignored)."""
        q, sel = cfg["qc"], cfg["selection"]
        thresholds = AIFQCThresholds(
            min_voxels=int(q["min_voxels"]),
            peak_blood_range_mM=_pair(q["peak_blood_range_mM"]),
            max_noise_ratio=float(q["max_noise_ratio"]),
            max_baseline_drift=float(q["max_baseline_drift"]),
            max_ttp_s=float(q["max_ttp_s"]), max_fwhm_s=float(q["max_fwhm_s"]),
            area_60s_range_mM_s=_pair(q["area_60s_range_mM_s"]),
            min_washout=float(q["min_washout"]))
        criteria = AIFCriteria(
            min_cnr=float(sel["min_cnr"]), max_ttp_s=float(sel["max_ttp_s"]),
            min_washout=float(sel["min_washout"]), n_reference=int(sel["n_reference"]),
            peak_fraction=float(sel["peak_fraction"]), erode=int(sel["erode"]),
            re_fraction=float(sel["re_fraction"]),
            shape_tolerance=float(sel["shape_tolerance"]), max_voxels=int(sel["max_voxels"]))
        t10 = cfg["blood_t10_s"]
        return cls(mode=cfg["mode"], population=cfg["population"], fallback=cfg["fallback"],
                   on_qc_failure=cfg["on_qc_failure"],
                   blood_t10_s=t10 if isinstance(t10, str) else float(t10),
                   delay=cfg["delay"], delay_phases=int(cfg["delay_phases"]),
                   anterior_prior=bool(cfg["anterior_prior"]), criteria=criteria,
                   thresholds=thresholds)

    @property
    def fallback_curve(self) -> str | None:
        """Population curve :func:`extract_aif` falls back to (None in population mode
        or with ``fallback: none``)."""
        return None if self.mode == "population" or self.fallback == "none" \
            else self.fallback

    def blood_t10(self, *, field_strength_t: float | None = None,
                  vfa_t10_s: ArrayLike | None = None) -> tuple[float | _FloatArray, str]:
        """The blood T10 setting resolved for one session.

        Parameters
        ----------
        field_strength_t : float, optional
            Main field (T) from the image header (needed for ``literature``).
        vfa_t10_s : array_like, optional
            The session's VFA T10 map (s), image shape (needed for ``vfa``; None when the
            session has no VFA fit).

        Returns
        -------
        blood_t10_s : float or ndarray
            A value (s) or the map (its mean over the AIF voxels is used).
        source : str
            Description for the QC record.

        Raises
        ------
        ValueError
            ``literature`` without a field strength, or ``vfa`` without a VFA map.
        """
        setting = self.blood_t10_s
        if setting == "literature":
            if field_strength_t is None:
                raise ValueError("the DICOM header gives no field strength, so "
                                 "aif.blood_t10_s: literature cannot choose the 1.5 T or 3 T "
                                 "value; set aif.blood_t10_s to a number (s)")
            b0 = float(field_strength_t)
            return (blood_t10_literature(b0),
                    f"literature at {b0:g} T, Zhang et al. MRM 2013")
        if setting == "vfa":
            if vfa_t10_s is None:
                raise ValueError("aif.blood_t10_s is vfa but the session has no VFA T10 map "
                                 "(Source: fixed); use literature or a number")
            return np.asarray(vfa_t10_s), "VFA T10 map, mean over the AIF voxels"
        return float(setting), "configured (aif.blood_t10_s)"

    def select(self, signal: ArrayLike, t_s: ArrayLike, *, tr_s: float,
               flip_angle_deg: float, r1_per_mM_per_s: float, n_baseline: int,
               hematocrit: float, field_strength_t: float | None = None,
               vfa_t10_s: ArrayLike | None = None, mask: ArrayLike | None = None,
               spine_mask: ArrayLike | None = None,
               affine: ArrayLike | None = None) -> AIFChoice:
        """Choose the AIF of one session.

        Parameters
        ----------
        signal, t_s, tr_s, flip_angle_deg, r1_per_mM_per_s, n_baseline, hematocrit
            See :meth:`AortaAIF.fit` (signal (signal units), times (s), TR (s), flip
            angle (deg), relaxivity (/mM/s), leading baseline phases, hematocrit).
        field_strength_t, vfa_t10_s
            See :meth:`blood_t10`.
        mask : bool array, optional
            Hard aorta mask (image shape).
        spine_mask : bool array, optional
            Lesion/marrow voxels; with ``anterior_prior`` and ``affine`` (voxel-to-RAS+,
            mm) the search prefers the voxels anterior to them (:func:`anterior_region`).

        Returns
        -------
        AIFChoice

        Raises
        ------
        ValueError
            Fewer than :data:`MIN_POSITIVE_BASELINE_FRACTION` of the voxels with a
            positive baseline signal; a blood T10 setting the session cannot resolve; a
            failed QC with ``on_qc_failure: error``; no usable AIF (non-finite or never
            positive).
        """
        nb, hct = int(n_baseline), float(hematocrit)
        sig = np.asarray(signal)
        s0 = sig[..., :nb].mean(axis=-1)
        n_ok = int(np.count_nonzero(np.isfinite(s0) & (s0 > 0)))
        if n_ok < MIN_POSITIVE_BASELINE_FRACTION * s0.size:
            raise ValueError(f"only {n_ok} of {s0.size} voxels have a positive baseline "
                             f"signal in the first {nb} phases (acquisition.n_baseline): "
                             "check the export (blank or missing first phases?)")
        blood_t10, t10_source = self.blood_t10(field_strength_t=field_strength_t,
                                               vfa_t10_s=vfa_t10_s)
        prior: dict[str, Any] = {}
        if self.anterior_prior and spine_mask is not None and affine is not None:
            axis, direction = anterior_axis_of(affine)
            prior = {"spine_mask": spine_mask, "anterior_axis": axis,
                     "anterior_direction": direction}
            log.info("anterior prior: image axis %d, anterior towards %s index", axis,
                     "increasing" if direction > 0 else "decreasing")
        fallback = self.fallback_curve
        res = extract_aif(sig, t_s, tr_s=tr_s, flip_angle_deg=flip_angle_deg,
                          r1_per_mM_per_s=r1_per_mM_per_s, n_baseline=nb, hematocrit=hct,
                          blood_t10_s=blood_t10, blood_t10_source=t10_source,
                          fallback=fallback, criteria=self.criteria,
                          thresholds=self.thresholds, mask=mask, **prior)
        qc = res.qc.to_dict()
        if self.mode == "population":
            arrival, src = res.detected_arrival()
            cb, delay_s = population_aligned(self.population, res.t_s, arrival,
                                             arrival_fraction=self.criteria.arrival_fraction)
            res = replace(res, cb_mM=cb, cp_mM=cb / (1.0 - hct))
            qc.update(source=self.population, population_arrival_s=arrival,
                      population_arrival_source=src, population_delay_s=delay_s)
        elif not res.qc.passed and self.on_qc_failure == "error":
            raise ValueError(f"the automatic AIF failed QC ({res.qc.reason}) and "
                             "aif.on_qc_failure is error: check the aorta in the field of "
                             "view (or the aorta mask), the blood T10 (aif.blood_t10_s) and "
                             "the QC ranges (aif.qc), or allow aif.on_qc_failure: fallback")
        elif not res.qc.passed and fallback is None:
            log.warning("AIF QC failed (%s) and aif.fallback is none: using the measured "
                        "curve", res.qc.reason)
        elif not res.qc.passed:
            log.warning("AIF QC failed (%s): using the population AIF %s (aif.fallback); "
                        "this session's Ktrans/vp rest on a population curve",
                        res.qc.reason, fallback)
        if self.delay == "phases" and self.delay_phases > 0:
            res = res.delayed(self.delay_phases)
            qc["delay_phases"] = res.qc.delay_phases
        if not np.all(np.isfinite(res.cp_mM)) or not np.any(res.cp_mM > 0):
            raise ValueError(f"no usable AIF (QC: {res.qc.reason}; aif.fallback is none)")
        qc.update(mode=self.mode, delay_mode=self.delay, used_peak_blood_mM=float(
            np.max(res.cb_mM) - np.mean(res.cb_mM[:nb])), n_baseline=nb, hematocrit=hct)
        log.info("AIF: source %s, QC %s (%s); peak %.3g mM blood, arrival %.1f s, %d voxels "
                 "(blood SNR %.3g, T10 %.3g s: %s)", qc["source"],
                 "pass" if res.qc.passed else "FAIL", res.qc.reason, res.qc.peak_blood_mM,
                 res.qc.arrival_s, res.qc.n_voxels, res.qc.voxel_baseline_snr_median,
                 res.qc.blood_t10_s, t10_source)
        return AIFChoice(result=res, qc=qc, blood_t10_source=t10_source)


def _pair(x: Any) -> tuple[float, float]:
    lo, hi = (float(v) for v in x)
    return lo, hi
