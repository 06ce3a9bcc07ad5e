"""Parametric response maps (dce.prm) against analytic arrays and the phantom's truth.

The phantom's truth (dce.phantom.prm_truth: the follow-up's design rendered on the
baseline grid, its volume averages; prm_truth_classes: its own class rule) shares no code
with dce.prm.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
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
)
from dce.prm import (
    PRM_DECREASED,
    PRM_EXCLUDED,
    PRM_INCREASED,
    PRM_OUTSIDE,
    PRM_UNCHANGED,
    classify,
    marrow_threshold,
    parametric_response,
)

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


def _lesion_rows(res, m: str):  # noqa: ANN001, ANN202
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
    CDF), both with the truth's fixed thresholds and with the marrow-derived ones."""
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
                    p_pos = float(np.mean(norm.sf((thr.value - d) / sd)))
                    p_neg = float(np.mean(norm.cdf((-thr.value - d) / sd)))
                    for key, p in (("prm_pos_fraction", p_pos),
                                   ("prm_neg_fraction", p_neg),
                                   ("prm_zero_fraction", 1.0 - p_pos - p_neg)):
                        err = abs(r[key] - p)
                        worst = max(worst, err)
                        assert err <= 0.05, (subj, ses, r["lesion"], m, key, r[key], p)
    assert worst > 0


def test_rim_core_lesion_prm_positive_while_roi_mean_falls() -> None:
    """The recurrent rim + responding core lesion: ROI-mean dVp < 0 (the truth's and the
    measured), yet PRM+ (vp) holds the rim: >= 25 % of its voxels; no uniformly
    responding treated lesion has PRM+ above 5 %."""
    c = _demo()
    rim = c.lesions[c.lesions["response_pattern"] == "rim_core"]
    assert len(rim) >= 1 and (rim["recurrence"] == 1).all()
    rim_keys = set(zip(rim["subject"], rim["lesion"].astype(int), strict=True))
    rng = np.random.default_rng(7)
    seen = 0
    for subj, ses in _followups(c):
        t = prm_truth(c, subj, ses)
        base, fu = _noisy(t, rng, {"vp": 0.0015, "ktrans_per_min": 0.003})
        valid = np.isfinite(t["vp_baseline"])
        res = parametric_response(base, fu, t["lesion"], valid, valid, marrow=t["marrow"])
        for r in (r for r in res.rows if r["map"] == "vp"):
            sel = t["lesion"] == r["lesion"]
            true_mean = float(np.mean(t["vp_followup"][sel] - t["vp_baseline"][sel]))
            if (subj, r["lesion"]) in rim_keys:
                seen += 1
                assert true_mean < 0 and r["mean_change"] < 0
                assert r["prm_pos_fraction"] >= 0.25
                assert r["prm_neg_fraction"] >= 0.25
    assert seen >= 1


def test_rim_core_design_leaves_other_lesions_unchanged() -> None:
    """The rim + core lesions come from their own random stream: with none, every other
    lesion's design (geometry, kinetics, outcome) and every session are identical."""
    kw = {"acquisition": _demo().specs[("P01", "pre")].acquisition}
    with_rim = make_cohort(10, 0, **kw)
    without = make_cohort(10, 0, rim_core_fraction=0.0, **kw)
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
            else:
                assert a == b
        assert replace(spec, lesions=()) == replace(other, lesions=())
    assert changed >= 1
