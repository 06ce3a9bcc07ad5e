"""Parametric response maps (PRM): voxel-wise change of a parameter between two visits.

Pure numerics (numpy); no file input or output, no Snakemake.

Each lesion voxel of the baseline lesion ROI is classed, for one parameter map (e.g.
``vp``, ``ktrans``) registered to the baseline grid, as

* **increased** (PRM+, class :data:`PRM_INCREASED`): ``follow-up - baseline > +t``,
* **unchanged** (PRM0, :data:`PRM_UNCHANGED`): ``|follow-up - baseline| <= t``,
* **decreased** (PRM-, :data:`PRM_DECREASED`): ``follow-up - baseline < -t``,

as in the parametric response map of diffusion MRI (Galbán et al., Nat Med 2009;15:572,
and Moffat et al.'s functional diffusion map, PNAS 2005;102:5524), where ``t`` bounds
the change seen in tissue that is not expected to change. Voxels not validly fitted at
either visit (fit status not usable, or a non-finite value) are *excluded*
(:data:`PRM_EXCLUDED`): they count in no fraction and are reported (``n_excluded``).

The change is **absolute** (``dVp`` as a volume fraction, ``dKtrans`` in /min), not
relative: the relative change divides by the baseline value, which in necrotic or
poorly perfused voxels (vp near 0) is dominated by noise and undefined at 0, and the
voxel-wise noise of a fitted map is roughly additive (it does not scale with the value),
so one absolute threshold describes the repeatability of every voxel, as in PRM of the
apparent diffusion coefficient.

Threshold
---------
Per map and pair of visits, in this order:

1. a fixed threshold given by the caller (configuration ``prm.thresholds``; the
   workflow's defaults are :data:`DEFAULT_FALLBACK_THRESHOLDS`, see below);
2. from the normal-marrow ROI of the same pair of visits (``source = "marrow"``): the
   ``coverage`` (default 95 %) quantile of ``|follow-up - baseline|`` over the marrow
   voxels validly fitted at both visits, i.e. the half-width of the band that holds 95 %
   of the change of tissue that radiation of the lesion does not target (Galbán's
   reference-tissue 95 % limits; a systematic offset between the visits, e.g. of the AIF
   scaling, widens the band rather than being classed as response);
3. when the marrow ROI has fewer than ``min_marrow_voxels`` valid voxels: the fallback
   (``source = "fallback"``), :data:`DEFAULT_FALLBACK_THRESHOLDS`.

:data:`DEFAULT_FALLBACK_THRESHOLDS` (0.02 for vp, 0.05 /min for Ktrans) are **project
defaults**, not published repeatability limits. They were set from the 95th percentile of
the pipeline's voxel-wise error of the change (fit at both visits, rigid registration,
resampling; measured minus true change, ``benchmarks/prm_noise.py``) inside the demo
phantom's unchanged lesions (true mean change below 0.003 vp, 0.006 /min Ktrans; seed 0,
P08 at the demo resolution and 10 patients at the test resolution): vp 0.004-0.025
(median 0.013; 0.02 holds 14 of 16 lesion x follow-up pairs), Ktrans 0.011-0.059 /min
(median 0.038; 0.05 holds 11 of 13), so that an unchanged lesion stays unchanged in about
95 % of its voxels. The marrow limits of the same pairs are 2-6 times tighter (vp about
0.005, Ktrans about 0.007 /min) because marrow vp and Ktrans are small and the fit's noise
grows with them; used in lesions they class 12-17 % of an unchanged lesion as changed.
These percentiles were measured before the baseline was matched to the follow-up's
interpolation smoothing (below); with it, P08's uniformly responding lesions give vp
0.008-0.012 (before 0.009-0.014) and Ktrans 0.018-0.038 /min (before 0.024-0.048), so the
thresholds, kept, are conservative. The marrow limits remain available
(``prm.thresholds`` of a map set to null) for data whose marrow and lesion noise are
alike.

Both visits alike
----------------
The follow-up map reaches the baseline grid by trilinear interpolation (rule ``register``),
which smooths it: a sample at fractional offset ``f`` between two follow-up voxels is
``(1 - f) a + f b``, a kernel of variance ``f (1 - f)`` voxels^2 (up to 0.25, most in mm
along the 5 mm slice axis), different in every voxel, while the baseline map is not
resampled. Smoothing one visit only is itself an apparent change: it lowers a lesion's
peak and raises its border, so tissue that did not change shows a change wherever the
map is curved (the asymmetric-processing bias of longitudinal imaging: Reuter M, Fischl
B, NeuroImage 2011;57:19; Yushkevich PA et al., NeuroImage 2010;50:434). Measured with the
phantom's true maps and the pipeline's transforms (no noise, ``benchmarks/prm_noise.py``):
a bias of the lesion-mean change of -0.0005 to -0.004 in vp and -0.001 to -0.012 /min in
Ktrans at the demo size (-0.012 vp and -0.036 /min inside the recurrent rim of the
rim + core lesion, where the pipeline's ROI-mean Ktrans change read -0.010 against a true
+0.011 /min), up to -0.007 vp and -0.021 /min on the coarser test grid.

:func:`match_interpolation_smoothing` gives the baseline map the same smoothing (per voxel
and image axis, a three-point kernel of the same variance) before the change is taken, so
that both visits are treated alike and tissue that did not change shows no change (to
second order). Measured: the lesion-mean bias of vp falls to within 0.0006 at the demo
size (Ktrans 0.004 /min) and the voxel-wise error of the change, whose noise now also
averages the baseline's, falls in 28 of 30 lesion x map x follow-up cases (median RMSE vp
0.0076 -> 0.0057, Ktrans 0.016 -> 0.013 /min; demo P08 and the test cohort). What it
measures is the change at the follow-up's effective resolution: the change itself is
smoothed, so the border of a strongly responding region is pulled towards zero (on the
test grid, 2.7 x 2.7 x 6.25 mm with up to 10 deg through-plane tilt, the Ktrans
lesion-mean of strongly responding lesions by up to +0.010 /min) and the boundary between
a recurrent rim and a responding core is blurred (noise-free vp PRM fractions of the
demo's rim + core lesion 6.0 and 7.1 percentage points off at its two follow-ups, against
5.5 and 3.3 with the baseline unsmoothed; Ktrans 3.8 and 1.6 against 2.7 and 15.4).
A cubic B-spline interpolation of the follow-up instead removes most of the bias (to
-0.002 vp, -0.006 /min) but keeps the follow-up's full voxel noise: at the default
thresholds it classed 5-13 % of the demo's uniformly responding lesion 2 (true change
within the threshold) as changed (trilinear alone 2-10 %, matched 0-3 %); not used.

Result names follow OSIPI-like conventions with the unit in the name:
``prm_pos_fraction``, ``prm_zero_fraction``, ``prm_neg_fraction`` (fraction of the
lesion's valid voxels, 0-1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "DEFAULT_FALLBACK_THRESHOLDS",
    "PRM_CLASSES",
    "PRM_DECREASED",
    "PRM_EXCLUDED",
    "PRM_INCREASED",
    "PRM_OUTSIDE",
    "PRM_UNCHANGED",
    "PRMResult",
    "Threshold",
    "classify",
    "failed_rows",
    "marrow_threshold",
    "match_interpolation_smoothing",
    "parametric_response",
]

#: Class codes of the PRM class map (a BIDS ``dseg`` image; 0 is background).
PRM_OUTSIDE = 0
PRM_INCREASED = 1
PRM_UNCHANGED = 2
PRM_DECREASED = 3
PRM_EXCLUDED = 4
#: Code -> meaning, for the JSON sidecar of the class map.
PRM_CLASSES: dict[int, str] = {
    PRM_OUTSIDE: "outside the lesion ROI",
    PRM_INCREASED: "increased (PRM+)",
    PRM_UNCHANGED: "unchanged (PRM0)",
    PRM_DECREASED: "decreased (PRM-)",
    PRM_EXCLUDED: "excluded (not validly fitted at either visit)",
}

#: Project-default thresholds (map -> absolute change; vp volume fraction, ktrans /min):
#: the workflow's default fixed thresholds and the fallback when the marrow ROI is too
#: small (module notes: measured lesion noise, not a published value).
DEFAULT_FALLBACK_THRESHOLDS: dict[str, float] = {"vp": 0.02, "ktrans": 0.05}

#: Columns of a PRM table row (:attr:`PRMResult.rows`, :func:`failed_rows`).
ROW_KEYS: tuple[str, ...] = (
    "lesion", "map", "threshold", "threshold_source", "n_marrow", "n_voxels", "n_valid",
    "n_excluded", "prm_pos_fraction", "prm_zero_fraction", "prm_neg_fraction",
    "mean_change", "registration_passed", "reason")

_FloatArray = NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Threshold:
    """Threshold of one map: ``value`` (absolute change, the map's unit), ``source``
    (``"fixed"``, ``"marrow"`` or ``"fallback"``) and ``n_marrow`` (valid marrow voxels,
    0 when not used)."""

    value: float
    source: str
    n_marrow: int = 0


@dataclass(frozen=True)
class PRMResult:
    """PRM of one pair of visits.

    Attributes
    ----------
    class_maps : dict of str to ndarray of uint8
        Map name -> class map on the baseline grid (codes :data:`PRM_CLASSES`).
    thresholds : dict of str to Threshold
    rows : list of dict
        One row per lesion and map (keys :data:`ROW_KEYS`); fractions of the lesion's
        valid voxels (0-1), ``mean_change`` the mean voxel-wise change over them (the
        map's unit).
    """

    class_maps: dict[str, NDArray[np.uint8]]
    thresholds: dict[str, Threshold]
    rows: list[dict[str, Any]] = field(default_factory=list)


def marrow_threshold(baseline: _FloatArray, followup: _FloatArray, marrow: NDArray[np.bool_],
                     valid: NDArray[np.bool_], *, fallback: float, coverage: float = 0.95,
                     min_marrow_voxels: int = 50) -> Threshold:
    """Threshold from the normal-marrow ROI (module notes), or the fallback.

    Parameters
    ----------
    baseline, followup : ndarray
        The map at both visits on the same grid (the map's unit).
    marrow : ndarray of bool
        Normal-marrow ROI.
    valid : ndarray of bool
        Voxels validly fitted at both visits.
    fallback : float
        Threshold when the marrow ROI has fewer than ``min_marrow_voxels`` valid voxels.
    coverage : float
        Quantile of ``|change|`` in marrow (0-1).
    min_marrow_voxels : int

    Returns
    -------
    Threshold
    """
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage: must be in (0, 1), got {coverage}")
    sel = marrow & valid
    n = int(np.count_nonzero(sel))
    if n < min_marrow_voxels:
        return Threshold(float(fallback), "fallback", n)
    diff = np.abs(followup[sel].astype(np.float64) - baseline[sel].astype(np.float64))
    return Threshold(float(np.quantile(diff, coverage)), "marrow", n)


def match_interpolation_smoothing(baseline: _FloatArray, baseline_affine: NDArray[Any],
                                  followup_affine: NDArray[Any], matrix_ras: NDArray[Any]
                                  ) -> NDArray[np.float64]:
    """The baseline map smoothed as trilinear resampling smoothed the follow-up map
    (module notes, "Both visits alike").

    Each baseline voxel ``x`` was given the follow-up's value at ``matrix_ras @ x``, at
    follow-up voxel coordinates ``c``; linear interpolation along follow-up axis ``k`` at
    fractional offset ``f_k = c_k - floor(c_k)`` is a kernel of variance
    ``f_k (1 - f_k)`` (follow-up voxels^2). Mapped to baseline voxel units through the
    Jacobian ``J`` of baseline voxel per follow-up voxel, the variance along baseline axis
    ``j`` is ``sum_k J_jk^2 f_k (1 - f_k)`` (cross terms, non-zero only for rotated grids,
    are ignored). The baseline map is smoothed, axis after axis, by the three-point kernel
    ``[a, 1 - 2a, a]`` of that variance (``a`` = variance / 2, at most 0.25: a follow-up
    voxel more than about 1.4 times the baseline's along an axis is matched only up to
    0.5 voxel^2). Non-finite neighbours and neighbours outside the grid are left out (the
    weights of the others renormalised); a non-finite voxel stays non-finite.

    Parameters
    ----------
    baseline : ndarray, 3-D
        The baseline map (any unit; NaN where undefined).
    baseline_affine, followup_affine : ndarray, shape (4, 4)
        Voxel-to-world (RAS, mm) affines of the baseline grid and of the follow-up map's
        own grid (before resampling).
    matrix_ras : ndarray, shape (4, 4)
        Baseline world -> follow-up world (mm), the registration's ``matrix_ras``.

    Returns
    -------
    ndarray of float64
        Same shape and unit as ``baseline``.
    """
    b = np.asarray(baseline, dtype=np.float64)
    if b.ndim != 3:
        raise ValueError(f"match_interpolation_smoothing: need a 3-D map, got shape {b.shape}")
    mats = []
    for what, m in (("baseline_affine", baseline_affine), ("followup_affine", followup_affine),
                    ("matrix_ras", matrix_ras)):
        arr = np.asarray(m, dtype=np.float64)
        if arr.shape != (4, 4) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{what}: need a finite 4x4 matrix, got shape {arr.shape}")
        mats.append(arr)
    a_b, a_f, m_ras = mats
    vox = np.linalg.inv(a_f) @ m_ras @ a_b          # baseline voxel -> follow-up voxel
    jac = np.linalg.inv(vox[:3, :3])                # baseline voxels per follow-up voxel
    idx = np.indices(b.shape, dtype=np.float64).reshape(3, -1)
    coords = vox[:3, :3] @ idx + vox[:3, 3:4]       # follow-up voxel coordinates
    frac = coords - np.floor(coords)
    var = (jac ** 2) @ (frac * (1.0 - frac))        # baseline axes, baseline voxels^2
    weight = np.minimum(var / 2.0, 0.25).reshape(3, *b.shape)
    out = b.copy()
    finite = np.isfinite(out)
    for j in range(3):
        a = weight[j]
        val = np.where(finite, out, 0.0)
        ok = finite.astype(np.float64)
        num = (1.0 - 2.0 * a) * val
        den = (1.0 - 2.0 * a) * ok
        for step in (1, -1):
            nb_val = np.zeros_like(val)
            nb_ok = np.zeros_like(ok)
            src = [slice(None)] * 3
            dst = [slice(None)] * 3
            src[j] = slice(step, None) if step > 0 else slice(None, step)
            dst[j] = slice(None, -step) if step > 0 else slice(-step, None)
            nb_val[tuple(dst)] = val[tuple(src)]
            nb_ok[tuple(dst)] = ok[tuple(src)]
            num += a * nb_val
            den += a * nb_ok
        out = np.where(finite, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def classify(baseline: _FloatArray, followup: _FloatArray, mask: NDArray[np.bool_],
             valid: NDArray[np.bool_], threshold: float) -> NDArray[np.uint8]:
    """Class map (codes :data:`PRM_CLASSES`) of the voxels in ``mask``.

    Parameters
    ----------
    baseline, followup : ndarray
        The map at both visits on the same grid.
    mask : ndarray of bool
        Voxels to class (e.g. the lesion ROI); 0 (outside) elsewhere.
    valid : ndarray of bool
        Voxels validly fitted at both visits (others in ``mask``: excluded).
    threshold : float
        Absolute change (``>= 0``) beyond which a voxel has changed.

    Returns
    -------
    ndarray of uint8
    """
    if not threshold >= 0:
        raise ValueError(f"threshold: must be >= 0, got {threshold}")
    with np.errstate(invalid="ignore"):
        diff = followup.astype(np.float64) - baseline.astype(np.float64)
    ok = valid & np.isfinite(diff)
    out = np.full(mask.shape, PRM_OUTSIDE, dtype=np.uint8)
    out[mask] = PRM_EXCLUDED
    inside = mask & ok
    d = diff[inside]
    out[inside] = np.where(d > threshold, PRM_INCREASED,
                           np.where(d < -threshold, PRM_DECREASED, PRM_UNCHANGED))
    return out


def _fractions(classes: NDArray[np.uint8], labels: NDArray[np.integer[Any]],
               lesions: Sequence[int]) -> NDArray[np.int64]:
    """Counts (lesion x class code 0..4) by one bincount over the lesion voxels."""
    lab = np.asarray(lesions, dtype=np.int64)
    size = max(int(labels.max(initial=0)), int(lab.max(initial=0))) + 1
    index = np.full(size, -1, dtype=np.int64)
    index[lab[lab > 0]] = np.nonzero(lab > 0)[0]
    sel = labels > 0
    row = index[labels[sel].astype(np.int64)]
    keep = row >= 0
    n_codes = len(PRM_CLASSES)
    flat = row[keep] * n_codes + classes[sel][keep].astype(np.int64)
    return np.bincount(flat, minlength=lab.size * n_codes).reshape(lab.size, n_codes)


def parametric_response(baseline: Mapping[str, _FloatArray],
                        followup: Mapping[str, _FloatArray],
                        lesion_labels: NDArray[np.integer[Any]],
                        valid_baseline: NDArray[np.bool_], valid_followup: NDArray[np.bool_],
                        *, lesions: Sequence[int] | None = None,
                        marrow: NDArray[np.bool_] | None = None,
                        thresholds: Mapping[str, float | None] | None = None,
                        fallback: Mapping[str, float | None] | None = None,
                        coverage: float = 0.95,
                        min_marrow_voxels: int = 50,
                        registration_passed: bool = True,
                        registration_reason: str = "") -> PRMResult:
    """PRM of every map and lesion of one pair of visits on the baseline grid.

    Parameters
    ----------
    baseline, followup : mapping of str to ndarray
        Map name (e.g. ``"vp"``, ``"ktrans"``) -> map at the baseline visit and the
        follow-up map registered to the baseline grid (vp: volume fraction, ktrans: /min).
    lesion_labels : ndarray of int
        Baseline lesion label map (0 background).
    valid_baseline, valid_followup : ndarray of bool
        Voxels validly fitted at each visit (e.g. fit status in
        :data:`dce.fit.STATUS_USABLE`).
    lesions : sequence of int, optional
        Lesion labels to report (default: the labels present); a listed label without
        voxels gives a row with ``n_voxels`` 0 and NaN fractions.
    marrow : ndarray of bool, optional
        Normal-marrow ROI of the baseline grid (threshold, module notes).
    thresholds : mapping of str to float or None, optional
        Fixed threshold per map (None or absent: from the marrow).
    fallback : mapping of str to float or None, optional
        Threshold per map when the marrow ROI is too small, over
        :data:`DEFAULT_FALLBACK_THRESHOLDS` (None entries ignored); a map with neither
        needs a fixed threshold.
    coverage : float
        Marrow quantile of ``|change|`` (0-1).
    min_marrow_voxels : int
        Valid marrow voxels needed for the marrow threshold.
    registration_passed : bool
        Whether the registration of the follow-up passed its QC. False: nothing is
        computed; the rows have NaN fractions, ``registration_passed`` False and
        ``reason`` (``registration_reason``), every lesion voxel is excluded in the class
        maps and the thresholds are NaN (source ``"not computed"``).
    registration_reason : str
        Why the registration failed (the QC record's reasons).

    Returns
    -------
    PRMResult
    """
    names = list(baseline)
    if set(followup) != set(names):
        raise ValueError(f"maps: baseline has {sorted(names)}, follow-up {sorted(followup)}")
    shape = lesion_labels.shape
    for n in names:
        for what, arr in (("baseline", baseline[n]), ("follow-up", followup[n])):
            if arr.shape != shape:
                raise ValueError(f"{what} map {n}: shape {arr.shape}, lesion ROI {shape}")
    for what, mask_ in (("valid_baseline", valid_baseline),
                        ("valid_followup", valid_followup), ("marrow", marrow)):
        if mask_ is not None and mask_.shape != shape:
            raise ValueError(f"{what}: shape {mask_.shape}, lesion ROI {shape}")
    fixed = dict(thresholds or {})
    fb = {**DEFAULT_FALLBACK_THRESHOLDS,
          **{k: v for k, v in (fallback or {}).items() if v is not None}}
    labels = np.asarray(lesion_labels)
    lesion_list = ([int(v) for v in np.unique(labels[labels > 0])] if lesions is None
                   else [int(v) for v in lesions])
    mask = labels > 0
    if not registration_passed:
        reason = ("registration failed its QC: " + registration_reason if registration_reason
                  else "registration failed its QC")
        n_vox = np.bincount(labels[mask].astype(np.int64),
                            minlength=max([0, *lesion_list]) + 1)
        excluded = np.where(mask, PRM_EXCLUDED, PRM_OUTSIDE).astype(np.uint8)
        return PRMResult(
            class_maps={n: excluded.copy() for n in names},
            thresholds={n: Threshold(float("nan"), "not computed") for n in names},
            rows=failed_rows(lesion_list, names, reason,
                             {lab: int(n_vox[lab]) for lab in lesion_list if lab > 0}))
    empty = np.zeros(shape, dtype=bool)
    class_maps: dict[str, NDArray[np.uint8]] = {}
    used: dict[str, Threshold] = {}
    rows: list[dict[str, Any]] = []
    for n in names:
        b = np.asarray(baseline[n], dtype=np.float64)
        f = np.asarray(followup[n], dtype=np.float64)
        valid = valid_baseline & valid_followup & np.isfinite(b) & np.isfinite(f)
        if fixed.get(n) is not None:
            thr = Threshold(float(fixed[n]), "fixed")  # type: ignore[arg-type]
        else:
            if n not in fb:
                raise ValueError(f"map {n}: no fixed threshold and no fallback threshold")
            thr = marrow_threshold(b, f, empty if marrow is None else marrow, valid,
                                   fallback=fb[n], coverage=coverage,
                                   min_marrow_voxels=min_marrow_voxels)
        cls = classify(b, f, mask, valid, thr.value)
        class_maps[n], used[n] = cls, thr
        counts = _fractions(cls, labels, lesion_list)
        diff = np.where(valid & mask, f - b, 0.0)
        sum_change = np.bincount(labels[mask].astype(np.int64), weights=diff[mask],
                                 minlength=max([0, *lesion_list]) + 1)
        for i, lab in enumerate(lesion_list):
            c = counts[i]
            n_valid = int(c[PRM_INCREASED] + c[PRM_UNCHANGED] + c[PRM_DECREASED])
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = c / np.float64(n_valid) if n_valid else np.full(c.size, np.nan)
            rows.append({
                "lesion": lab, "map": n, "threshold": thr.value,
                "threshold_source": thr.source, "n_marrow": thr.n_marrow,
                "n_voxels": int(c.sum() - c[PRM_OUTSIDE]), "n_valid": n_valid,
                "n_excluded": int(c[PRM_EXCLUDED]),
                "prm_pos_fraction": float(frac[PRM_INCREASED]),
                "prm_zero_fraction": float(frac[PRM_UNCHANGED]),
                "prm_neg_fraction": float(frac[PRM_DECREASED]),
                "mean_change": (float(sum_change[lab] / n_valid) if n_valid and lab > 0
                                else float("nan")),
                "registration_passed": True, "reason": ""})
    return PRMResult(class_maps=class_maps, thresholds=used, rows=rows)


def failed_rows(lesions: Sequence[int], maps: Sequence[str], reason: str,
                n_voxels: Mapping[int, int] | None = None) -> list[dict[str, Any]]:
    """PRM rows of a pair of visits whose registration failed its QC: NaN fractions,
    ``registration_passed`` False and the reason (never computed on misregistered maps).

    Parameters
    ----------
    lesions : sequence of int
    maps : sequence of str
    reason : str
        Why (e.g. the registration QC's reasons).
    n_voxels : mapping of int to int, optional
        Lesion -> voxels of the baseline ROI (default 0).

    Returns
    -------
    list of dict
        Rows with the keys :data:`ROW_KEYS`.
    """
    nan = float("nan")
    return [{"lesion": int(lab), "map": m, "threshold": nan, "threshold_source": "",
             "n_marrow": 0, "n_voxels": int((n_voxels or {}).get(int(lab), 0)),
             "n_valid": 0, "n_excluded": 0, "prm_pos_fraction": nan,
             "prm_zero_fraction": nan, "prm_neg_fraction": nan, "mean_change": nan,
             "registration_passed": False, "reason": reason}
            for m in maps for lab in lesions]
