"""Tests of dce.stats against independent truths (scipy, statsmodels, hand-worked values,
brute-force O(m n) computations, the bootstrap)."""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from dce import stats as st
from dce.stats import (
    DroppedValuesWarning,
    auc_mann_whitney,
    between_groups,
    bootstrap_auc_ci,
    delong_ci,
    delong_components,
    delong_test,
    diagnostic_table,
    paired_prepost,
    roc_curve,
    wilson_ci,
    youden_cutoff,
)

Z975 = 1.959963984540054


def _data(seed: int, m: int = 30, n: int = 40, shift: float = 1.0, ties: bool = True):
    rng = np.random.default_rng(seed)
    pos = rng.normal(shift, 1.0, m)
    neg = rng.normal(0.0, 1.0, n)
    if ties:
        pos, neg = np.round(pos, 1), np.round(neg, 1)
    scores = np.concatenate([pos, neg])
    labels = np.r_[np.ones(m), np.zeros(n)].astype(int)
    perm = rng.permutation(m + n)
    return scores[perm], labels[perm]


def _psi(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Brute-force m x n kernel matrix, written with explicit loops."""
    out = np.zeros((pos.size, neg.size))
    for i, x in enumerate(pos):
        for j, y in enumerate(neg):
            out[i, j] = 1.0 if x > y else (0.5 if x == y else 0.0)
    return out


# --------------------------------------------------------------------------------------
# AUC and ROC
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_auc_equals_mann_whitney_u(seed):
    s, y = _data(seed, m=17 + seed, n=23, ties=True)
    u = sps.mannwhitneyu(s[y == 1], s[y == 0], alternative="two-sided").statistic
    n1, n0 = int(y.sum()), int((1 - y).sum())
    assert auc_mann_whitney(s, y) == pytest.approx(u / (n1 * n0), abs=1e-14)
    assert auc_mann_whitney(s, y, direction="lower") == pytest.approx(1 - u / (n1 * n0),
                                                                      abs=1e-14)
    auto = auc_mann_whitney(s, y, direction="auto")
    assert auto == pytest.approx(max(u / (n1 * n0), 1 - u / (n1 * n0)), abs=1e-14)


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_roc_curve_brute_force_and_trapezoid(direction):
    s, y = _data(5, m=25, n=31, shift=0.7, ties=True)
    fpr, tpr, thr = roc_curve(s, y, direction=direction)
    pos, neg = s[y == 1], s[y == 0]
    for f, t, c in zip(fpr, tpr, thr, strict=True):
        if direction == "higher":
            assert t == np.mean(pos >= c) and f == np.mean(neg >= c)
        else:
            assert t == np.mean(pos <= c) and f == np.mean(neg <= c)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # the trapezoidal area under the empirical curve is the Mann-Whitney AUC (ties 1/2)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(auc_mann_whitney(s, y, direction=direction), abs=1e-12)
    assert len(np.unique(s)) + 1 == thr.size


def test_single_class_message():
    msg = ("endpoint recurrence has a single class (n positive=0, n negative=3): "
           "ROC undefined")
    for fn in (auc_mann_whitney, roc_curve, delong_ci, bootstrap_auc_ci, youden_cutoff):
        with pytest.raises(ValueError, match=re.escape(msg)):
            fn([1.0, 2.0, 3.0], [0, 0, 0], endpoint="recurrence")
    # single class only after dropping the NaN scores
    with pytest.warns(DroppedValuesWarning, match="1 missing score"), \
            pytest.raises(ValueError, match=re.escape("(n positive=2, n negative=0)")):
        auc_mann_whitney([1.0, 2.0, np.nan], [1, 1, 0], endpoint="x")
    with pytest.raises(ValueError, match="single class"):
        delong_test([1.0, 2.0], [2.0, 1.0], [1, 1], endpoint="x")


def test_nan_dropped_with_count():
    s = np.array([0.2, np.nan, 0.9, 0.4, np.nan, 0.7])
    y = pd.Series([0, 1, 1, 0, 0, pd.NA], dtype="Int64")
    with pytest.warns(DroppedValuesWarning, match=r"dropped 3 case\(s\) with 2 missing "
                      r"score\(s\) and 1 missing label"):
        res = delong_ci(np.r_[s, 0.95, 0.1], pd.concat([y, pd.Series([1, 0], dtype="Int64")],
                                                         ignore_index=True))
    assert res.n_dropped == 3 and res.n_pos == 2 and res.n_neg == 3
    with pytest.warns(DroppedValuesWarning):
        r = roc_curve(np.array([1.0, None, 3.0, 0.0], dtype=object), [1, 0, 1, 0])
    assert r.n_dropped == 1 and r.auc == 1.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="0/1"):
        auc_mann_whitney([1, 2, 3], [0, 1, 2])
    with pytest.raises(ValueError, match="different lengths"):
        auc_mann_whitney([1, 2, 3], [0, 1])
    with pytest.raises(ValueError, match="direction"):
        auc_mann_whitney([1, 2], [0, 1], direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="infinite"):
        auc_mann_whitney([1, np.inf], [0, 1])
    with pytest.raises(ValueError, match="at least 2 positives"):
        delong_ci([1, 2, 3], [1, 0, 0])


# --------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------

def test_delong_hand_worked_3_pos_4_neg():
    """3 positives X = (0.9, 0.6, 0.4), 4 negatives Y = (0.7, 0.4, 0.3, 0.1) (one tie).

    psi(X_i, Y_j) rows:  0.9: 1 1 1 1       -> V10 = 1
                         0.6: 0 1 1 1       -> V10 = 3/4
                         0.4: 0 1/2 1 1     -> V10 = 5/8
    columns: V01(0.7) = 1/3, V01(0.4) = 5/6, V01(0.3) = 1, V01(0.1) = 1
    AUC = 19/24.  S10 = var(1, 3/4, 5/8) = 7/192, S01 = var(1/3, 5/6, 1, 1) = 43/432,
    var(AUC) = S10/3 + S01/4 = 7/576 + 43/1728 = 64/1728 = 1/27.
    """
    F = Fraction
    v10 = [F(1), F(3, 4), F(5, 8)]
    v01 = [F(1, 3), F(5, 6), F(1), F(1)]

    def var(v):
        mu = sum(v) / len(v)
        return sum((a - mu) ** 2 for a in v) / (len(v) - 1)

    assert var(v10) == F(7, 192) and var(v01) == F(43, 432)
    assert var(v10) / 3 + var(v01) / 4 == F(1, 27)

    pos, neg = [0.9, 0.6, 0.4], [0.7, 0.4, 0.3, 0.1]
    auc, c10, c01 = delong_components(pos, neg)
    assert auc[0] == pytest.approx(19 / 24, abs=1e-15)
    np.testing.assert_allclose(c10[0], [float(v) for v in v10], atol=1e-15)
    np.testing.assert_allclose(c01[0], [float(v) for v in v01], atol=1e-15)

    scores = [0.4, 0.7, 0.9, 0.1, 0.6, 0.3, 0.4]       # shuffled
    labels = [1, 0, 1, 0, 1, 0, 0]
    ci = delong_ci(scores, labels)
    assert ci.auc == pytest.approx(19 / 24, abs=1e-15)
    assert ci.se == pytest.approx(np.sqrt(1 / 27), abs=1e-15)
    assert ci.lo == pytest.approx(19 / 24 - Z975 * np.sqrt(1 / 27), abs=1e-12)
    assert ci.hi == 1.0                                          # clipped
    lg = delong_ci(scores, labels, scale="logit")
    se_l = np.sqrt(1 / 27) / (19 / 24 * 5 / 24)
    lo = 1 / (1 + np.exp(-(np.log(19 / 5) - Z975 * se_l)))
    hi = 1 / (1 + np.exp(-(np.log(19 / 5) + Z975 * se_l)))
    assert (lg.lo, lg.hi) == pytest.approx((lo, hi), abs=1e-12)
    assert 0 < lg.lo < lg.auc < lg.hi < 1


@pytest.mark.parametrize("seed", [10, 11])
def test_delong_components_brute_force(seed):
    s, y = _data(seed, m=19, n=26, ties=True)
    pos, neg = s[y == 1], s[y == 0]
    psi = _psi(pos, neg)
    auc, v10, v01 = delong_components(pos, neg)
    np.testing.assert_allclose(v10[0], psi.mean(axis=1), atol=1e-14)
    np.testing.assert_allclose(v01[0], psi.mean(axis=0), atol=1e-14)
    assert auc[0] == pytest.approx(psi.mean(), abs=1e-14)
    var = np.var(psi.mean(axis=1), ddof=1) / pos.size + np.var(psi.mean(axis=0),
                                                                  ddof=1) / neg.size
    assert delong_ci(s, y).se == pytest.approx(np.sqrt(var), rel=1e-12)


def test_delong_ci_close_to_bootstrap():
    s, y = _data(3, m=60, n=80, shift=1.0, ties=False)
    d = delong_ci(s, y)
    b = bootstrap_auc_ci(s, y, n_boot=20000, seed=1)
    assert b.auc == d.auc
    assert abs(d.lo - b.lo) < 0.02 and abs(d.hi - b.hi) < 0.02
    assert b.se == pytest.approx(d.se, rel=0.1)
    assert b.method == "bootstrap" and b.n_boot == 20000


def test_bootstrap_seeded_and_both_code_paths(monkeypatch):
    s, y = _data(4, m=30, n=35, shift=0.8, ties=True)
    a1 = bootstrap_auc_ci(s, y, n_boot=3000, seed=7)
    a2 = bootstrap_auc_ci(s, y, n_boot=3000, seed=7)
    assert (a1.lo, a1.hi) == (a2.lo, a2.hi)
    assert bootstrap_auc_ci(s, y, n_boot=3000, seed=8).lo != a1.lo
    monkeypatch.setattr(st, "_BOOT_MATRIX_MAX_PAIRS", 0)     # per-resample ranking path
    a3 = bootstrap_auc_ci(s, y, n_boot=3000, seed=7)
    assert abs(a3.lo - a1.lo) < 0.02 and abs(a3.hi - a1.hi) < 0.02


def test_delong_test_brute_force_covariance():
    rng = np.random.default_rng(21)
    m, n = 23, 29
    y = np.r_[np.ones(m), np.zeros(n)].astype(int)
    latent = rng.normal(size=m + n) + 0.9 * y
    a = np.round(latent + 0.5 * rng.normal(size=m + n), 1)
    b = np.round(latent + 1.0 * rng.normal(size=m + n), 1)
    res = delong_test(a, b, y)

    pa, pb = _psi(a[y == 1], a[y == 0]), _psi(b[y == 1], b[y == 0])
    v10 = np.vstack([pa.mean(axis=1), pb.mean(axis=1)])
    v01 = np.vstack([pa.mean(axis=0), pb.mean(axis=0)])
    cov = np.cov(v10) / m + np.cov(v01) / n
    diff = pa.mean() - pb.mean()
    z = diff / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert res.auc_a == pytest.approx(pa.mean(), abs=1e-14)
    assert res.auc_b == pytest.approx(pb.mean(), abs=1e-14)
    assert res.z == pytest.approx(z, rel=1e-12)
    assert res.p == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-10)
    assert res.corr == pytest.approx(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]), rel=1e-12)
    # each single-predictor variance equals delong_ci's
    assert np.sqrt(cov[0, 0]) == pytest.approx(delong_ci(a, y).se, rel=1e-12)

    same = delong_test(a, a, y)
    assert same.z == 0 and same.p == 1.0
    flipped = delong_test(a, -b, y, direction_b="lower")
    assert flipped.auc_b == pytest.approx(res.auc_b) and flipped.z == pytest.approx(res.z)


def test_delong_test_null_calibration():
    """Under H0 (two exchangeable noisy copies of one marker) the level is about 5 %."""
    rng = np.random.default_rng(5)
    m = n = 30
    y = np.r_[np.ones(m), np.zeros(n)].astype(int)
    rej = 0
    reps = 400
    for _ in range(reps):
        latent = rng.normal(size=m + n) + 0.8 * y
        a = latent + rng.normal(size=m + n)
        b = latent + rng.normal(size=m + n)
        rej += delong_test(a, b, y).p < 0.05
    assert 0.02 <= rej / reps <= 0.09


# --------------------------------------------------------------------------------------
# Youden
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", ["higher", "lower", "auto"])
def test_youden_brute_force(direction):
    s, y = _data(8, m=21, n=27, shift=-0.9 if direction != "higher" else 0.9, ties=True)
    res = youden_cutoff(s, y, direction=direction, placement="observed")
    used = res.direction
    assert used == ("higher" if direction == "higher" else "lower")
    pos, neg = s[y == 1], s[y == 0]
    best = -np.inf
    for c in np.unique(s):
        if used == "higher":
            sens, spec = np.mean(pos >= c), np.mean(neg < c)
        else:
            sens, spec = np.mean(pos <= c), np.mean(neg > c)
        best = max(best, sens + spec - 1)
    assert res.youden_j == pytest.approx(best, abs=1e-14)
    call = res.predict(s)
    assert np.mean(call[y == 1]) == pytest.approx(res.sensitivity)
    assert np.mean(~call[y == 0]) == pytest.approx(res.specificity)
    mid = youden_cutoff(s, y, direction=direction)           # midpoint placement
    np.testing.assert_array_equal(mid.predict(s), call)
    assert mid.threshold not in set(s)


def test_youden_tie_breaks_to_specificity_and_midpoint():
    s = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    y = [0, 1, 0, 1, 0, 1]
    # J = 1/3 at ">= 6" (sens 1/3, spec 1), ">= 4" (2/3, 2/3) and ">= 2" (1, 1/3); the
    # float values differ in the last bit, which must not decide the tie
    r = youden_cutoff(s, y, placement="observed")
    assert (r.threshold, r.sensitivity, r.specificity) == (6.0, pytest.approx(1 / 3), 1.0)
    assert youden_cutoff(s, y).threshold == 5.5


# --------------------------------------------------------------------------------------
# Wilson, diagnostic table
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 7, 20, 113])
def test_wilson_equals_statsmodels(n):
    for k in range(n + 1):
        for alpha in (0.05, 0.1):
            lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
            assert wilson_ci(k, n, alpha) == pytest.approx((lo, hi), abs=1e-12)
    assert wilson_ci(0, n)[0] == 0.0 and wilson_ci(n, n)[1] == 1.0   # exact, no 1e-17
    assert np.isnan(wilson_ci(0, 0)).all()
    with pytest.raises(ValueError):
        wilson_ci(3, 2)
    with pytest.raises(ValueError):
        wilson_ci(1.5, 2)  # type: ignore[arg-type]


def test_diagnostic_table_counts_and_cis():
    # counts that reproduce the seed's quote of Kumar 2017 (sens 100 %, spec 98 %,
    # PPV 91 %, NPV 100 %): TP 10, FP 1, TN 49, FN 0 (constructed, not the study's data)
    y = np.r_[np.ones(10), np.zeros(1), np.zeros(49)]
    pred = np.r_[np.ones(10), np.ones(1), np.zeros(49)]
    t = diagnostic_table(pred, y)
    assert (t.tp, t.fp, t.tn, t.fn) == (10, 1, 49, 0)
    assert round(100 * t.sensitivity.estimate) == 100
    assert round(100 * t.specificity.estimate) == 98
    assert round(100 * t.ppv.estimate) == 91
    assert round(100 * t.npv.estimate) == 100
    assert t.accuracy.estimate == pytest.approx(59 / 60)
    for p, (k, n) in ((t.sensitivity, (10, 10)), (t.specificity, (49, 50)),
                      (t.ppv, (10, 11)), (t.npv, (49, 49)), (t.accuracy, (59, 60))):
        assert (p.k, p.n) == (k, n)
        assert (p.lo, p.hi) == pytest.approx(proportion_confint(k, n, method="wilson"),
                                             abs=1e-12)
    f = t.to_frame()
    assert list(f["measure"]) == ["sensitivity", "specificity", "ppv", "npv", "accuracy"]


def test_diagnostic_table_random_and_missing():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200).astype(float)
    pred = rng.integers(0, 2, 200).astype(float)
    y[:3] = np.nan
    pred[5] = np.nan
    with pytest.warns(DroppedValuesWarning, match="dropped 4"):
        t = diagnostic_table(pred, y)
    k = ~(np.isnan(y) | np.isnan(pred))
    assert t.tp == np.sum((pred == 1) & (y == 1) & k)
    assert t.tn == np.sum((pred == 0) & (y == 0) & k)
    assert t.tp + t.fp + t.tn + t.fn == 196
    # a single-class endpoint still gives a table (sensitivity undefined, not an error)
    t1 = diagnostic_table([0, 1, 0], [0, 0, 0])
    assert np.isnan(t1.sensitivity.estimate) and t1.specificity.estimate == pytest.approx(2 / 3)


# --------------------------------------------------------------------------------------
# paired and unpaired tests
# --------------------------------------------------------------------------------------

def test_paired_prepost_against_scipy():
    rng = np.random.default_rng(3)
    pre = rng.uniform(3, 8, 15)
    post = pre * rng.uniform(0.2, 1.1, 15)
    res = paired_prepost(pre, post)
    ref = sps.wilcoxon(post - pre)
    assert res.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert res.statistic == ref.statistic
    d = post - pre
    assert res.median_change == pytest.approx(np.median(d))
    assert (res.q25_change, res.q75_change) == pytest.approx(tuple(np.percentile(d, [25, 75])))
    assert res.n == 15 and res.median_pre == pytest.approx(np.median(pre))
    with pytest.warns(DroppedValuesWarning):
        r2 = paired_prepost(np.r_[pre, np.nan], np.r_[post, 1.0])
    assert r2.n == 15 and r2.n_dropped == 1 and r2.p == res.p
    assert paired_prepost([1, 2], [1, 2]).p == 1.0


def test_between_groups_against_scipy():
    a = [4.2, 5.1, 3.8, 6.0, 4.9, 5.5]
    b = [1.6, 2.0, 1.1, 2.8, 4.0]
    res = between_groups(a, b)
    ref = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert res.u == ref.statistic and res.p == pytest.approx(ref.pvalue, rel=1e-12)
    assert (res.median_a, res.median_b) == (np.median(a), np.median(b))
    assert res.auc == pytest.approx(auc_mann_whitney(a + b, [1] * 6 + [0] * 5))
