"""Parametric response maps (dce.prm) against analytic arrays and the phantom's truth.

The phantom's truth (dce.phantom.prm_truth: the follow-up's design rendered on the
baseline grid, its volume averages; prm_truth_classes: its own class rule) shares no code
with dce.prm.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from dce.phantom import (
    PRM_TRUTH_CODES,
    PRM_TRUTH_THRESHOLDS,
    Cohort,
    demo_cohort,
    make_cohort,
    prm_truth,
    prm_truth_classes,
    prm_truth_table,
)
from dce.prm import (
    DEFAULT_FALLBACK_THRESHOLDS,
    PRM_DECREASED,
    PRM_EXCLUDED,
    PRM_INCREASED,
    PRM_OUTSIDE,
    PRM_UNCHANGED,
    PRMResult,
    classify,
    marrow_threshold,
    match_interpolation_smoothing,
    parametric_response,
)
from dce.register import resample_to_baseline

# the phantom's parameter names -> the pipeline's map names
_MAPS = {"vp": "vp", "ktrans_per_min": "ktrans"}
_KEYS = (("prm_pos_fraction", "increased"), ("prm_zero_fraction", "unchanged"),
         ("prm_neg_fraction", "decreased"))


def test_classes_of_analytic_arrays() -> None:
    base = np.zeros(8)
    fu = np.array([0.05, -0.05, 0.005, -0.005, 0.0101, np.nan, 0.05, 0.3])
    mask = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    valid = np.array([1, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    got = classify(base, fu, mask, valid, 0.01)
    expected = [PRM_INCREASED, PRM_DECREASED, PRM_UNCHANGED, PRM_UNCHANGED, PRM_INCREASED,
                PRM_EXCLUDED, PRM_EXCLUDED, PRM_OUTSIDE]
    assert got.tolist() == expected


def test_fractions_per_lesion_with_excluded_voxels() -> None:
    # lesion 1: 4 increased, 2 unchanged, 2 decreased, 2 not fitted at follow-up
    # lesion 2: 3 decreased, 1 not fitted at baseline; lesion 3 listed, no voxel
    labels = np.array([1] * 10 + [2] * 4 + [0] * 2)
    base = np.full(16, 0.05)
    fu = base + np.array([0.02] * 4 + [0.0] * 2 + [-0.02] * 2 + [0.5] * 2
                         + [-0.03] * 3 + [0.4] + [1.0] * 2)
    valid_b = np.ones(16, dtype=bool)
    valid_b[13] = False
    valid_f = np.ones(16, dtype=bool)
    valid_f[8:10] = False
    res = parametric_response({"vp": base}, {"vp": fu}, labels, valid_b, valid_f,
                              lesions=[1, 2, 3], thresholds={"vp": 0.01})
    rows = {r["lesion"]: r for r in res.rows}
    r1, r2, r3 = rows[1], rows[2], rows[3]
    assert (r1["n_voxels"], r1["n_valid"], r1["n_excluded"]) == (10, 8, 2)
    assert r1["prm_pos_fraction"] == pytest.approx(0.5)
    assert r1["prm_zero_fraction"] == pytest.approx(0.25)
    assert r1["prm_neg_fraction"] == pytest.approx(0.25)
    assert r1["mean_change"] == pytest.approx((4 * 0.02 - 2 * 0.02) / 8)
    assert (r2["n_voxels"], r2["n_valid"], r2["n_excluded"]) == (4, 3, 1)
    assert r2["prm_neg_fraction"] == pytest.approx(1.0)
    assert r3["n_voxels"] == 0 and np.isnan(r3["prm_pos_fraction"])
    assert r1["threshold_source"] == "fixed" and r1["threshold"] == 0.01
    assert res.class_maps["vp"][14:].tolist() == [PRM_OUTSIDE] * 2
    assert res.class_maps["vp"][13] == PRM_EXCLUDED


def test_threshold_from_marrow_and_fallback() -> None:
    rng = np.random.default_rng(1)
    sigma = 0.004
    n = 20000
    base = 0.01 + rng.normal(0, sigma, n)
    fu = 0.01 + rng.normal(0, sigma, n)
    marrow = np.ones(n, dtype=bool)
    valid = np.ones(n, dtype=bool)
    thr = marrow_threshold(base, fu, marrow, valid, fallback=0.5)
    # |difference of two N(0, sigma)|: 95 % below 1.96 * sqrt(2) * sigma
    assert thr.source == "marrow" and thr.n_marrow == n
    assert thr.value == pytest.approx(1.95996 * np.sqrt(2) * sigma, rel=0.03)
    # too few valid marrow voxels -> the fallback, with the count
    valid[40:] = False
    small = marrow_threshold(base, fu, marrow, valid, fallback=0.5, min_marrow_voxels=50)
    assert (small.value, small.source, small.n_marrow) == (0.5, "fallback", 40)
    # in parametric_response: marrow threshold unless a fixed one is given
    labels = np.zeros(n, dtype=np.int64)
    labels[:100] = 1
    res = parametric_response({"vp": base}, {"vp": fu}, labels, np.ones(n, bool),
                              np.ones(n, bool), marrow=labels == 0)
    assert res.thresholds["vp"].source == "marrow"
    assert res.thresholds["vp"].value == pytest.approx(1.95996 * np.sqrt(2) * sigma, rel=0.05)
    res = parametric_response({"vp": base}, {"vp": fu}, labels, np.ones(n, bool),
                              np.ones(n, bool), marrow=None)
    assert res.thresholds["vp"].source == "fallback"


def test_failed_registration_gives_nan_with_reason() -> None:
    labels = np.array([0, 1, 1, 2])
    maps = {"vp": np.full(4, 0.05), "ktrans": np.full(4, 0.1)}
    res = parametric_response(maps, {k: v + 1 for k, v in maps.items()}, labels,
                              np.ones(4, bool), np.ones(4, bool),
                              registration_passed=False,
                              registration_reason="lesion overlap 0.12 < 0.5")
    assert len(res.rows) == 4
    for r in res.rows:
        assert not r["registration_passed"]
        assert "lesion overlap 0.12" in r["reason"]
        assert np.isnan(r["prm_pos_fraction"]) and np.isnan(r["prm_neg_fraction"])
    assert {(r["lesion"], r["n_voxels"]) for r in res.rows} == {(1, 2), (2, 1)}
    assert res.class_maps["vp"].tolist() == [PRM_OUTSIDE] + [PRM_EXCLUDED] * 3


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="follow-up map vp"):
        parametric_response({"vp": np.zeros(3)}, {"vp": np.zeros(4)}, np.zeros(3, int),
                            np.ones(3, bool), np.ones(3, bool))


# ---------------------------------------------------------------------- phantom


@cache
def _demo() -> Cohort:
    return demo_cohort(10, 0, matrix=[96, 96, 10], n_phases=60)


def _followups(c: Cohort) -> list[tuple[str, str]]:
    first = c.sessions.groupby("subject")["session"].transform("first")
    fu = c.sessions[c.sessions["session"] != first]
    return list(zip(fu["subject"], fu["session"], strict=True))


def _noisy(truth: dict, rng: np.random.Generator, sigma: dict[str, float]) -> tuple:
    base, fu = {}, {}
    for name, m in _MAPS.items():
        b, f = truth[f"{name}_baseline"], truth[f"{name}_followup"]
        base[m] = b + rng.normal(0.0, sigma[name], b.shape)
        fu[m] = f + rng.normal(0.0, sigma[name], f.shape)
    return base, fu


def _lesion_rows(res: PRMResult, m: str) -> list[dict[str, Any]]:
    return [r for r in res.rows if r["map"] == m]


def test_prm_equals_phantom_truth_classes_without_noise() -> None:
    """Identity registration (the follow-up's design on the baseline grid), the truth's
    own maps and thresholds: PRM fractions equal the truth's classes for every lesion and
    follow-up (the phantom's own rule, prm_truth_classes)."""
    c = _demo()
    n_rows = 0
    for subj, ses in _followups(c):
        t = prm_truth(c, subj, ses)
        base = {m: t[f"{n}_baseline"] for n, m in _MAPS.items()}
        fu = {m: t[f"{n}_followup"] for n, m in _MAPS.items()}
        valid = np.isfinite(t["vp_baseline"])
        res = parametric_response(base, fu, t["lesion"], valid, valid, marrow=t["marrow"],
                                  thresholds={_MAPS[k]: v
                                              for k, v in PRM_TRUTH_THRESHOLDS.items()})
        for name, m in _MAPS.items():
            truth_cls = prm_truth_classes(t, name)
            for r in _lesion_rows(res, m):
                n_rows += 1
                sel = t["lesion"] == r["lesion"]
                for key, code in _KEYS:
                    true = float(np.mean(truth_cls[sel] == PRM_TRUTH_CODES[code]))
                    assert r[key] == pytest.approx(true, abs=1e-12), (subj, ses, r, key)
    assert n_rows == 2 * 35  # 35 lesion-follow-ups x 2 maps


def test_prm_matches_phantom_truth_with_noise() -> None:
    """Fit-like Gaussian noise on both visits' truth maps: per lesion, the PRM fractions
    are within 5 percentage points of their expectation from the truth (each voxel's
    class probability from its true change, the threshold and the known noise: normal
    CDF), both with the truth's fixed thresholds and with the marrow-derived ones. A
    lesion whose true change lies near the threshold has binomially distributed fractions
    (SD sqrt(sum p(1 - p)) / n, up to 3 pp here): the bound is 5 pp or 3 of those SDs."""
    c = _demo()
    rng = np.random.default_rng(2026)
    sigma = {"vp": 0.0015, "ktrans_per_min": 0.003}
    worst = 0.0
    for subj, ses in _followups(c):
        t = prm_truth(c, subj, ses)
        base, fu = _noisy(t, rng, sigma)
        valid = np.isfinite(t["vp_baseline"])
        for fixed in (True, False):
            thresholds = ({_MAPS[k]: v for k, v in PRM_TRUTH_THRESHOLDS.items()} if fixed
                          else None)
            res = parametric_response(base, fu, t["lesion"], valid, valid,
                                      marrow=t["marrow"], thresholds=thresholds)
            for name, m in _MAPS.items():
                thr = res.thresholds[m]
                assert thr.source == ("fixed" if fixed else "marrow")
                change = t[f"{name}_followup"] - t[f"{name}_baseline"]
                sd = np.sqrt(2.0) * sigma[name]
                for r in _lesion_rows(res, m):
                    d = change[t["lesion"] == r["lesion"]]
                    q_pos = norm.sf((thr.value - d) / sd)
                    q_neg = norm.cdf((-thr.value - d) / sd)
                    q_zero = 1.0 - q_pos - q_neg
                    for key, q in (("prm_pos_fraction", q_pos),
                                   ("prm_neg_fraction", q_neg),
                                   ("prm_zero_fraction", q_zero)):
                        p = float(np.mean(q))
                        var = float(np.sum(np.clip(q * (1 - q), 0.0, None)))
                        bound = max(0.05, 3.0 * np.sqrt(var) / d.size)
                        err = abs(r[key] - p)
                        worst = max(worst, err)
                        assert err <= bound, (subj, ses, r["lesion"], m, key, r[key], p)
    assert worst > 0


#: Per-visit voxel noise of the pipeline's maps in lesions: the SD of the pipeline's error
#: of the voxel-wise change (fit at both visits + registration; measured - true) inside
#: the demo phantom's unchanged lesions, 0.006 (vp) and 0.019 /min (Ktrans), median over
#: P08 at the demo and 10 patients at the test resolution (benchmarks/prm_noise.py), / sqrt 2.
_LESION_SIGMA = {"vp": 0.0042, "ktrans_per_min": 0.013}


def _noisy_default_prm(c: Cohort, rng: np.random.Generator
                       ) -> Iterator[tuple[str, str, dict, PRMResult]]:
    """Per follow-up of ``c``: its PRM truth and the PRM of its truth maps with
    lesion-level noise (:data:`_LESION_SIGMA`) at the default thresholds."""
    for subj, ses in _followups(c):
        t = prm_truth(c, subj, ses)
        base, fu = _noisy(t, rng, _LESION_SIGMA)
        valid = np.isfinite(t["vp_baseline"])
        yield subj, ses, t, parametric_response(base, fu, t["lesion"], valid, valid,
                                                thresholds=DEFAULT_FALLBACK_THRESHOLDS)


def _truth_row(tt: pd.DataFrame, subj: str, ses: str, lesion: int, name: str) -> pd.Series:
    sel = ((tt["subject"] == subj) & (tt["session"] == ses) & (tt["lesion"] == lesion)
           & (tt["parameter"] == name))
    return tt[sel].iloc[0]


def test_prm_default_thresholds_match_truth_classes_with_lesion_noise() -> None:
    """Lesion-level noise (:data:`_LESION_SIGMA`) on both visits' truth maps, the default
    thresholds (those of the truth, PRM_TRUTH_THRESHOLDS): every lesion x follow-up x map
    whose true voxel changes lie clear of the thresholds (fewer than 5 % of its voxels
    within 2 noise SDs of +-threshold, where a voxel's class is a coin toss) has PRM
    fractions within 5 percentage points of the truth's classes (prm_truth_table: the
    phantom's own rule, no dce.prm code)."""
    c = _demo()
    tt = prm_truth_table(c)
    truth_thr = {_MAPS[k]: v for k, v in PRM_TRUTH_THRESHOLDS.items()}
    assert truth_thr == DEFAULT_FALLBACK_THRESHOLDS
    rng = np.random.default_rng(1)
    n_clear = 0
    for subj, ses, t, res in _noisy_default_prm(c, rng):
        for name, m in _MAPS.items():
            change = t[f"{name}_followup"] - t[f"{name}_baseline"]
            thr = PRM_TRUTH_THRESHOLDS[name]
            for r in _lesion_rows(res, m):
                d = change[t["lesion"] == r["lesion"]]
                near = np.abs(np.abs(d) - thr) < 2.0 * np.sqrt(2.0) * _LESION_SIGMA[name]
                if np.mean(near) >= 0.05:
                    continue
                n_clear += 1
                true = _truth_row(tt, subj, ses, r["lesion"], name)
                for key, _ in _KEYS:
                    assert abs(r[key] - true[key]) <= 0.05, (subj, ses, r["lesion"], m, key)
    assert n_clear >= 20  # 23 of the 70 rows of the seed-0 cohort


def test_rim_core_lesion_prm_positive_while_roi_mean_falls() -> None:
    """The recurrent rim + responding core lesion at its first follow-up, lesion-level
    noise, the default thresholds: the truth's and the measured ROI-mean dVp are < 0, yet
    PRM+ (vp) holds the recurrent rim (>= 25 % of the voxels; the truth's design: 30 %)
    and matches the truth's classes within 5 percentage points, as do PRM0 and PRM-; no
    uniformly responding treated lesion has PRM+ (vp) above 5 %."""
    c = _demo()
    tt = prm_truth_table(c)
    rim = c.lesions[c.lesions["response_pattern"] == "rim_core"]
    assert len(rim) >= 1 and (rim["recurrence"] == 1).all()
    rim_keys = set(zip(rim["subject"], rim["lesion"].astype(int), strict=True))
    treated = set(zip(c.lesions.loc[c.lesions["treated"] == 1, "subject"],
                      c.lesions.loc[c.lesions["treated"] == 1, "lesion"].astype(int),
                      strict=True))
    rng = np.random.default_rng(7)
    seen = 0
    for subj, ses, _t, res in _noisy_default_prm(c, rng):
        for r in _lesion_rows(res, "vp"):
            key = (subj, r["lesion"])
            if key in rim_keys and ses == "fu1":
                seen += 1
                true = _truth_row(tt, subj, ses, r["lesion"], "vp")
                assert true["mean_change"] < 0 and r["mean_change"] < 0
                assert r["prm_pos_fraction"] >= 0.25
                for k, _ in _KEYS:
                    assert abs(r[k] - true[k]) <= 0.05, (subj, ses, k, r[k], true[k])
            elif key in treated and key not in rim_keys:
                assert r["prm_pos_fraction"] <= 0.05, (subj, ses, r["lesion"])
    assert seen >= 1


def test_rim_core_design_leaves_other_lesions_unchanged() -> None:
    """The rim + core lesions come from their own random stream: with none, every other
    lesion's design (geometry, kinetics, outcome) and every session are identical (the
    rim + core lesion's own baseline vp and Ktrans may differ: the design moves them
    clear of the PRM dead band with the rim + core changes)."""
    acq = _demo().specs[("P01", "pre")].acquisition
    with_rim = make_cohort(10, 0, acquisition=acq)
    without = make_cohort(10, 0, rim_core_fraction=0.0, acquisition=acq)
    assert (without.lesions["response_pattern"] == "uniform").all()
    rim = set(zip(*(with_rim.lesions.loc[with_rim.lesions["response_pattern"] == "rim_core",
                                         c] for c in ("subject", "lesion")), strict=True))
    assert len(rim) == 1
    cols = [c for c in with_rim.lesions.columns if c != "response_pattern"]
    assert with_rim.lesions[cols].equals(without.lesions[cols])
    assert with_rim.sessions.equals(without.sessions)
    changed = 0
    for key, spec in with_rim.specs.items():
        other = without.specs[key]
        for a, b in zip(spec.lesions, other.lesions, strict=True):
            if (key[0], a.label) in rim and key[1] != "pre":
                assert a.rim_factor > 1 and a.vp < b.vp
                changed += 1
            elif (key[0], a.label) in rim:
                assert replace(a, vp=b.vp, ktrans_per_min=b.ktrans_per_min) == b
            else:
                assert a == b
        assert replace(spec, lesions=()) == replace(other, lesions=())
    assert changed >= 1


def _blob_pair(shift_mm: tuple[float, float, float], angle_deg: float
               ) -> tuple[Any, Any, Any, Any, Any]:
    """A static Gaussian blob (sd 4 mm, peak 1) seen at two visits on 1.8 x 1.8 x 5 mm
    grids; the patient moved by a rotation about the slice axis and ``shift_mm``.
    Returns the baseline map, its affine, the follow-up map, its affine and
    matrix_ras (baseline world -> follow-up world)."""
    shape = (24, 24, 10)
    aff = np.diag([1.8, 1.8, 5.0, 1.0])
    aff[:3, 3] = [-20.0, -20.0, -22.5]
    c, s_ = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    motion = np.eye(4)
    motion[:3, :3] = [[c, -s_, 0.0], [s_, c, 0.0], [0.0, 0.0, 1.0]]
    motion[:3, 3] = shift_mm
    centre = np.array([0.7, -0.4, 1.3])

    def blob(world: Any) -> Any:
        return np.exp(-np.sum((world - centre) ** 2, axis=-1) / (2 * 4.0 ** 2))

    ijk = np.moveaxis(np.indices(shape, dtype=np.float64), 0, -1)
    world = ijk @ aff[:3, :3].T + aff[:3, 3]
    base = blob(world)
    # the follow-up grid point y holds the anatomy of baseline world motion^-1 y
    inv = np.linalg.inv(motion)
    follow = blob(world @ inv[:3, :3].T + inv[:3, 3])
    return base, aff, follow, aff.copy(), motion


def test_matched_smoothing_removes_the_interpolation_bias() -> None:
    """Nothing changed between the visits (analytic blob): the follow-up resampled by
    trilinear interpolation minus the baseline is negative over the blob (interpolation
    smooths only the follow-up); with the baseline given the same smoothing the mean
    change over the blob is at least 5x smaller, and the voxel-wise error smaller."""
    for shift, angle in (((0.9, 0.9, 2.5), 0.0), ((0.5, -0.7, 1.9), 4.0)):
        base, a_b, follow, a_f, motion = _blob_pair(shift, angle)
        mapped = resample_to_baseline(follow, a_f, base.shape, a_b, motion)
        inside = (base > 0.3) & np.isfinite(mapped)
        plain = mapped - base
        matched = mapped - match_interpolation_smoothing(base, a_b, a_f, motion)
        assert inside.sum() > 30
        assert plain[inside].mean() < -0.02, (shift, angle)
        assert abs(matched[inside].mean()) < abs(plain[inside].mean()) / 5, (shift, angle)
        assert (np.sqrt(np.mean(matched[inside] ** 2))
                < 0.5 * np.sqrt(np.mean(plain[inside] ** 2))), (shift, angle)


def test_matched_smoothing_of_whole_voxel_moves_and_undefined_voxels() -> None:
    """A motion by whole voxels resamples without interpolation: the baseline is left as
    it is. A constant map stays constant next to undefined (NaN) voxels, which stay NaN."""
    base, a_b, _, a_f, _ = _blob_pair((0.0, 0.0, 0.0), 0.0)
    whole = np.eye(4)
    whole[:3, 3] = [3.6, -1.8, 5.0]
    np.testing.assert_array_equal(match_interpolation_smoothing(base, a_b, a_f, whole), base)
    half = np.eye(4)
    half[:3, 3] = [0.9, 0.9, 2.5]
    const = np.full(base.shape, 0.07)
    const[5:8, 5:8, 3] = np.nan
    out = match_interpolation_smoothing(const, a_b, a_f, half)
    assert np.isnan(out[5:8, 5:8, 3]).all()
    ok = np.isfinite(const)
    np.testing.assert_allclose(out[ok], 0.07, rtol=1e-12)
    with pytest.raises(ValueError, match="3-D"):
        match_interpolation_smoothing(base[0], a_b, a_f, half)
    with pytest.raises(ValueError, match="matrix_ras"):
        match_interpolation_smoothing(base, a_b, a_f, np.eye(3))


# ---------------------------------------------------------------------- workflow


def _followup_dirs(run: Path) -> list[tuple[str, str, Path]]:
    from wfutil import RESULTS, sessions_sheet

    s = sessions_sheet(run)
    first = s.sort_values("days_from_rt").groupby("subject")["session"].transform("first")
    fu = s[s["session"] != first.reindex(s.index)]
    return [(str(a), str(b), run / RESULTS / f"sub-{a}" / f"ses-{b}")
            for a, b in zip(fu["subject"], fu["session"], strict=True)]


@pytest.mark.workflow
def test_workflow_prm_outputs_cohort_rows_and_report(run: Path) -> None:
    """Every follow-up has its PRM table (every lesion x map, fractions summing to 1),
    class maps with coded sidecars and the figure; the cohort table carries the
    fractions, roc.tsv has the PRM+ rows; the report shows the PRM figures."""
    from wfutil import DEMO, RESULTS

    lesions = pd.read_csv(run / DEMO / "lesions.tsv", sep="\t")
    fus = _followup_dirs(run)
    assert fus
    for subj, ses, d in fus:
        stem = f"sub-{subj}_ses-{ses}"
        t = pd.read_csv(d / f"{stem}_prm.tsv", sep="\t")
        labels = set(lesions.loc[lesions["subject"] == subj, "lesion"])
        assert set(zip(t["label"], t["map"], strict=True)) == {
            (lab, m) for lab in labels for m in ("vp", "ktrans")}
        qc = json.loads((d / f"{stem}_desc-registration_qc.json").read_text())
        assert (t["registration_passed"] == qc["passed"]).all()
        if qc["passed"]:
            total = t[["prm_pos_fraction", "prm_zero_fraction", "prm_neg_fraction"]].sum(
                axis=1)
            np.testing.assert_allclose(total, 1.0, atol=1e-6)  # TSV: 7 digits
            assert (t["n_valid"] + t["n_excluded"] == t["n_voxels"]).all()
            assert (t["threshold"] > 0).all()
        for m in ("vp", "ktrans"):
            img = nib.load(d / f"{stem}_desc-prm{m}_dseg.nii.gz")
            codes = set(np.unique(np.asarray(img.get_fdata())).tolist())  # type: ignore[attr-defined]
            assert codes <= {0, 1, 2, 3, 4}
            side = json.loads((d / f"{stem}_desc-prm{m}_dseg.json").read_text())
            assert side["Labels"]["1"].startswith("increased")
        for ext in ("png", "pdf"):
            assert (d / f"{stem}_prm.{ext}").stat().st_size > 5000
    cohort = pd.read_csv(run / RESULTS / "cohort" / "cohort.tsv", sep="\t")
    fu_rows = cohort[cohort["session"] != "pre"]
    assert fu_rows["prm_pos_vp_fraction"].notna().all()
    assert cohort.loc[cohort["session"] == "pre", "prm_pos_vp_fraction"].isna().all()
    roc = pd.read_csv(run / RESULTS / "cohort" / "roc.tsv", sep="\t")
    rows = roc[roc["predictor"].isin(["PRMpos_Vp", "PRMpos_Ktrans"])]
    assert set(rows["predictor"]) == {"PRMpos_Vp", "PRMpos_Ktrans"}
    assert rows["label"].str.startswith("PRM+ of ").all()
    report = (run / "report.html").read_text(encoding="utf-8", errors="replace")
    assert "Parametric response" in report
    assert all(f"sub-{s}_ses-{t}_prm.png" in report for s, t, _ in fus)


@pytest.mark.workflow
def test_workflow_failed_registration_gives_nan_rows(run: Path, tmp_path: Path) -> None:
    """A copy of the run whose registration QC of one follow-up is set to failed: the
    rule prm reruns and writes NaN fractions with the reason, and warns in its log
    naming subject and session."""
    from wfutil import DEMO, RESULTS, snakemake

    work = tmp_path / "w"
    for sub in (DEMO, RESULTS):
        shutil.copytree(run / sub, work / sub, symlinks=True)
    subj, ses, _ = _followup_dirs(run)[0]
    d = work / RESULTS / f"sub-{subj}" / f"ses-{ses}"
    stem = f"sub-{subj}_ses-{ses}"
    qc_path = d / f"{stem}_desc-registration_qc.json"
    qc = json.loads(qc_path.read_text())
    qc.update(passed=False, reasons=["lesion Dice 0.12 < 0.5 (test)"])
    qc_path.write_text(json.dumps(qc))
    snakemake(work, targets=[str(RESULTS / f"sub-{subj}" / f"ses-{ses}" / f"{stem}_prm.tsv")])
    t = pd.read_csv(d / f"{stem}_prm.tsv", sep="\t")
    assert (~t["registration_passed"]).all()
    assert t["prm_pos_fraction"].isna().all() and t["prm_neg_fraction"].isna().all()
    assert t["reason"].str.contains("lesion Dice 0.12").all()
    log = (work / RESULTS / "logs" / f"sub-{subj}" / f"ses-{ses}" / "prm.log").read_text()
    assert f"subject {subj}, session {ses}" in log and "FAILED" in log


@pytest.mark.workflow
def test_workflow_prm_against_phantom_truth(run: Path) -> None:
    """The whole pipeline (fit at both visits, registration, PRM) against the test
    cohort's truth (truth/prm_truth.tsv and the true change maps, over the voxels the
    pipeline classed): the rim + core lesion is PRM+ (vp) in at least 10 % of its voxels
    at every follow-up while its ROI-mean change of vp, measured and true, is negative;
    every uniformly responding lesion has PRM+ (vp) within 5 percentage points of the
    truth (0 %); at least 10 of the lesion x map rows (vp and Ktrans, rim + core
    included) have all three fractions within 5 percentage points of the truth's classes
    (the phantom's design keeps the true changes clear of the thresholds: dce.phantom,
    PRM_DESIGN_MARGIN); and the ROI-mean change of vp of the uniform lesions is unbiased (the
    baseline given the follow-up's interpolation smoothing: within 0.005 per lesion,
    0.002 on average; trilinear resampling of the follow-up alone gave -0.0028 on
    average, down to -0.0052)."""
    from wfutil import DEMO

    truth = pd.read_csv(run / DEMO / "truth" / "prm_truth.tsv", sep="\t",
                        dtype={"subject": str, "session": str})
    truth = truth[truth["parameter"] == "vp"]

    def image(path: Path) -> Any:
        img: Any = nib.load(path)
        return np.asarray(img.dataobj)

    errors, rim_rows, fraction_errors = [], 0, {}
    for subj, ses, d in _followup_dirs(run):
        stem = f"sub-{subj}_ses-{ses}"
        t_all = pd.read_csv(d / f"{stem}_prm.tsv", sep="\t")
        lesions = image(run / DEMO / subj / "pre" / "roi" / f"{subj}_pre_lesions.nii.gz")
        for m, name in (("vp", "vp"), ("ktrans", "ktrans_per_min")):
            cls_m = image(d / f"{stem}_desc-prm{m}_dseg.nii.gz")
            chg = image(run / DEMO / subj / ses / "truth"
                        / f"{subj}_{ses}_prm_{name}_change.nii.gz")
            thr = PRM_TRUTH_THRESHOLDS[name]
            for r in t_all[t_all["map"] == m].to_dict("records"):
                lab = int(r["label"])
                sel = (lesions == lab) & np.isin(cls_m, [PRM_INCREASED, PRM_UNCHANGED,
                                                         PRM_DECREASED])
                c = chg[sel]
                want = (np.mean(c > thr), np.mean(np.abs(c) <= thr), np.mean(c < -thr))
                got = (r["prm_pos_fraction"], r["prm_zero_fraction"], r["prm_neg_fraction"])
                fraction_errors[(subj, ses, lab, m)] = max(
                    abs(float(a) - float(b)) for a, b in zip(got, want, strict=True))
        t = t_all[t_all["map"] == "vp"]
        classes = image(d / f"{stem}_desc-prmvp_dseg.nii.gz")
        change = image(run / DEMO / subj / ses / "truth" / f"{subj}_{ses}_prm_vp_change.nii.gz")
        for r in t.to_dict("records"):
            lab = int(r["label"])
            row = truth[(truth["subject"] == subj) & (truth["session"] == ses)
                        & (truth["lesion"] == lab)].iloc[0]
            sel = (lesions == lab) & np.isin(classes, [PRM_INCREASED, PRM_UNCHANGED,
                                                       PRM_DECREASED])
            assert sel.sum() == r["n_valid"] > 0, (subj, ses, lab)
            true_pos = float(np.mean(change[sel] > PRM_TRUTH_THRESHOLDS["vp"]))
            true_mean = float(np.mean(change[sel]))
            if row["response_pattern"] == "rim_core":
                rim_rows += 1
                assert r["prm_pos_fraction"] >= 0.10, (subj, ses, lab, r["prm_pos_fraction"])
                assert r["mean_change"] < 0 and row["mean_change"] < 0, (subj, ses, lab)
            else:
                assert abs(r["prm_pos_fraction"] - true_pos) <= 0.05, (subj, ses, lab)
                errors.append(float(r["mean_change"]) - true_mean)
    assert rim_rows >= 2 and len(errors) >= 5
    assert len(fraction_errors) == 2 * (rim_rows + len(errors))
    # every lesion row within 5 pp is the aim (issue 16) but not reached at the test
    # cohort's resolution: the rows missed are the rim + core lesion (its rim's rise
    # measured about half of the truth's: partial volume across the rim / core plane and
    # the lesion border, and rim fit noise) and border voxels of strongly responding
    # lesions (true change diluted towards the threshold; Ktrans change biased towards
    # zero); see docs/validation.md. A guard: no fewer rows than measured with the
    # design's dead band (PRM_DESIGN_MARGIN): 10 of 18 (11 of 18 over all lesion voxels,
    # benchmarks/prm_noise.py; 8 before the dead band).
    within = sum(v <= 0.05 for v in fraction_errors.values())
    report = {k: round(v, 3) for k, v in sorted(fraction_errors.items())}
    assert within >= 10, report
    assert np.max(np.abs(errors)) < 0.005, errors
    assert abs(float(np.mean(errors))) < 0.002, errors


def test_prm_tables_join_the_cohort_table_as_wide_columns() -> None:
    """prm.tsv rows (a failed registration included) -> prm_<class>_<map>_fraction on the
    follow-up rows; the predictor and the display label use them."""
    from dce.cohort import display
    from dce.cohort.frames import prm_columns

    t1 = pd.DataFrame({"subject": "P01", "session": "fu1", "label": [1, 2, 1, 2],
                       "map": ["vp", "vp", "ktrans", "ktrans"],
                       "prm_pos_fraction": [0.4, 0.0, 0.1, 0.2],
                       "prm_zero_fraction": [0.2, 0.5, 0.3, 0.3],
                       "prm_neg_fraction": [0.4, 0.5, 0.6, 0.5]})
    t2 = pd.DataFrame({"subject": "P02", "session": "fu1", "label": [1, 1],
                       "map": ["vp", "ktrans"], "prm_pos_fraction": np.nan,
                       "prm_zero_fraction": np.nan, "prm_neg_fraction": np.nan})
    wide = prm_columns([t1, t2])
    assert list(wide.columns) == ["subject", "lesion", "session",
                                  "prm_pos_vp_fraction", "prm_zero_vp_fraction",
                                  "prm_neg_vp_fraction", "prm_pos_ktrans_fraction",
                                  "prm_zero_ktrans_fraction", "prm_neg_ktrans_fraction"]
    assert len(wide) == 3
    row = wide[(wide["subject"] == "P01") & (wide["lesion"] == 2)].iloc[0]
    assert row["prm_neg_vp_fraction"] == 0.5 and row["prm_pos_ktrans_fraction"] == 0.2
    assert wide.loc[wide["subject"] == "P02", "prm_pos_vp_fraction"].isna().all()
    label = display.predictor_label("prm_pos_vp_fraction", "value", "first")
    assert label == "PRM+ of Vp at first follow-up (% of lesion voxels)"
    assert not [p for p in display.FORBIDDEN_RAW if p in label]
    assert display.fmt_value("prm_pos_vp_fraction", 0.345) == "34"
    assert display.display_scale("prm_neg_ktrans_fraction") == 100.0
