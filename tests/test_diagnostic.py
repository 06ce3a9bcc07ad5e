"""Multiple-comparison adjustment, group-contrast endpoints and the diagnostic group
comparison (dce.stats.adjust_pvalues, dce.cohort.analysis.adjust_table,
dce.cohort.frames.with_group_endpoints, dce.cohort.diagnostic): checked against
statsmodels and scipy called directly, and against small examples computed by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from dce import stats
from dce.cohort import analysis as an
from dce.cohort import config as cc
from dce.cohort import diagnostic as dg
from dce.cohort import frames as fr
from dce.viz import tables

# --------------------------------------------------------------------------- adjustment


def test_adjust_pvalues_hand_example() -> None:
    """m = 4: Holm multiplies the sorted p by 4, 3, 2, 1 (then a running maximum), BH by
    m / rank (then a running minimum from the largest)."""
    holm, bh = stats.adjust_pvalues([0.01, 0.04, 0.03, 0.005])
    # sorted 0.005, 0.01, 0.03, 0.04 -> Holm 0.02, 0.03, 0.06, max(0.04, 0.06) = 0.06
    np.testing.assert_allclose(holm, [0.03, 0.06, 0.06, 0.02])
    # BH: 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04
    np.testing.assert_allclose(bh, [0.02, 0.04, 0.04, 0.02])


def test_adjust_pvalues_nan_is_not_a_member_and_caps_at_one() -> None:
    holm, bh = stats.adjust_pvalues([0.01, np.nan, 0.04, 0.03, 0.005, np.nan])
    np.testing.assert_allclose(holm, [0.03, np.nan, 0.06, 0.06, 0.02, np.nan])
    np.testing.assert_allclose(bh, [0.02, np.nan, 0.04, 0.04, 0.02, np.nan])
    holm, bh = stats.adjust_pvalues([0.5, 0.9])
    np.testing.assert_allclose(holm, [1.0, 1.0])
    np.testing.assert_allclose(bh, [0.9, 0.9])
    h0, b0 = stats.adjust_pvalues([np.nan])
    assert np.isnan(h0).all() and np.isnan(b0).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.adjust_pvalues([0.2, 1.5])


@pytest.mark.parametrize("seed", range(5))
def test_adjust_pvalues_agrees_with_statsmodels(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 1, 20), rng.uniform(0, 0.01, 5)])
    rng.shuffle(p)
    holm, bh = stats.adjust_pvalues(p)
    np.testing.assert_array_equal(holm, multipletests(p, method="holm")[1])
    np.testing.assert_array_equal(bh, multipletests(p, method="fdr_bh")[1])


def test_adjust_table_adjusts_within_each_family() -> None:
    df = pd.DataFrame({"endpoint": ["a", "a", "a", "b", "b", "a"],
                       "p": [0.01, 0.04, np.nan, 0.02, 0.03, 0.03]})
    out = an.adjust_table(df, ["endpoint"], "tests of {endpoint}")
    assert list(out.columns) == ["endpoint", "p", "p_holm", "p_bh", "p_family"]
    a = out[out["endpoint"] == "a"]
    ok = a["p"].notna()
    np.testing.assert_allclose(a.loc[ok, "p_holm"],
                               multipletests(a.loc[ok, "p"], method="holm")[1])
    np.testing.assert_allclose(a.loc[ok, "p_bh"],
                               multipletests(a.loc[ok, "p"], method="fdr_bh")[1])
    b = out[out["endpoint"] == "b"]
    np.testing.assert_allclose(b["p_holm"], [0.04, 0.04])
    assert set(a.loc[ok, "p_family"]) == {"tests of a (3 tests)"}
    assert a.loc[~ok, "p_family"].tolist() == [""] and np.isnan(a.loc[~ok, "p_holm"]).all()


# --------------------------------------------------------------------------- effect size


def test_rank_biserial_hand_example_and_cliffs_delta() -> None:
    # pairs: a > b in 8 of 9, one tie: U = 8.5, r = 2 * 8.5 / 9 - 1 = 8/9
    g = stats.between_groups([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])
    assert g.u == pytest.approx(8.5) and g.rank_biserial == pytest.approx(8 / 9)
    rng = np.random.default_rng(1)
    a, b = rng.normal(1, 1, 13), rng.normal(0, 1, 9)
    cliff = (np.sign(a[:, None] - b[None, :])).mean()
    g = stats.between_groups(a, b)
    assert g.rank_biserial == pytest.approx(cliff)
    assert g.p == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


# --------------------------------------------------------------------------- diagnostic


def _cfg(**extra: Any) -> cc.CohortConfig:
    raw: dict[str, Any] = {
        "endpoints": [{"name": "malignant", "column": "lesion_class",
                       "positive": ["metastasis", "myeloma"], "negative": ["tuberculosis"]}],
        "predictors": [{"name": "kep", "parameter": "kep_per_min_mean", "kind": "value",
                        "session": "baseline", "direction": "higher"},
                       {"name": "ve", "parameter": "ve_mean", "kind": "value",
                        "session": "baseline", "direction": "lower"}],
        "rules": [{"name": "kep >= 1.17", "predictor": "kep", "direction": "higher",
                   "threshold": 1.17, "source": "Verma 2022", "published": "sens 93.8 %"}],
        "delong": [], "logistic": [], "cv_cutoff": [],
        "figures": {"waterfall": "kep"},
    }
    raw.update(extra)
    return cc.parse_config(raw)


def test_group_endpoint_codes_positive_negative_and_other() -> None:
    sheet = pd.DataFrame({"subject": ["A", "A", "B", "C", "D"], "lesion": [1, 2, 1, 1, 1],
                          "lesion_class": ["metastasis", "tuberculosis", "myeloma",
                                           "chordoma", ""]})
    out = fr.with_group_endpoints(sheet, _cfg())
    np.testing.assert_array_equal(out["malignant"], [1, 0, 1, np.nan, np.nan])
    assert "malignant" not in sheet       # the sheet itself is not changed
    other = _cfg(endpoints=[{"name": "met", "column": "lesion_class",
                             "positive": ["metastasis"]}])
    np.testing.assert_array_equal(fr.with_group_endpoints(sheet, other)["met"],
                                  [1, 0, 0, 0, np.nan])
    with pytest.raises(ValueError, match="no column 'histology'"):
        fr.with_group_endpoints(sheet, _cfg(endpoints=[
            {"name": "m", "column": "histology", "positive": ["x"]}]))
    with pytest.raises(ValueError, match="both positive and negative"):
        _cfg(endpoints=[{"name": "m", "column": "c", "positive": ["x"], "negative": ["x"]}])


def _frame() -> pd.DataFrame:
    kep_pos = [2.1, 1.5, 0.9, 1.3, 3.0, 1.17, 0.7]
    kep_neg = [0.8, 0.6, 1.2, 0.95, 0.5]
    ve_pos = [0.2, 0.3, 0.25, np.nan, 0.15, 0.22, 0.4]
    ve_neg = [0.5, 0.45, 0.3, 0.6, 0.35]
    n = len(kep_pos) + len(kep_neg)
    return pd.DataFrame({"subject": [f"S{i}" for i in range(n)], "lesion": 1,
                         "malignant": [1.0] * len(kep_pos) + [0.0] * len(kep_neg),
                         "kep": kep_pos + kep_neg, "ve": ve_pos + ve_neg})


def test_diagnostic_groups_against_scipy_and_numpy() -> None:
    frame = _frame()
    res = dg.diagnostic(frame, _cfg())
    assert list(res.groups.columns) == an.columns(dg.GroupRow)
    assert list(res.rules.columns) == an.columns(dg.RuleRow)
    g = res.groups.set_index("predictor")
    for name in ("kep", "ve"):
        a = frame.loc[frame["malignant"] == 1, name].dropna().to_numpy()
        b = frame.loc[frame["malignant"] == 0, name].dropna().to_numpy()
        r = g.loc[name]
        assert (r["n_pos"], r["n_neg"]) == (a.size, b.size)
        assert r["median_pos"] == pytest.approx(np.median(a))
        assert r["q25_neg"] == pytest.approx(np.quantile(b, 0.25))
        mw = sps.mannwhitneyu(a, b, alternative="two-sided")
        assert r["mann_whitney_u"] == pytest.approx(mw.statistic)
        assert r["p"] == pytest.approx(mw.pvalue)
        assert r["rank_biserial"] == pytest.approx(np.sign(a[:, None] - b[None, :]).mean())
    assert g.loc["ve", "n_dropped"] == 1
    holm = multipletests(g["p"].to_numpy(), method="holm")[1]
    np.testing.assert_allclose(g["p_holm"].to_numpy(), holm)
    assert g.loc["kep", "group_pos"] == "metastasis/myeloma"
    assert g.loc["kep", "group_neg"] == "tuberculosis"


def test_diagnostic_rule_counts_and_wilson_intervals_by_hand() -> None:
    res = dg.diagnostic(_frame(), _cfg())
    (r,) = res.rules.itertuples()
    # kep >= 1.17 (1.17 itself is positive): positives 2.1, 1.5, 1.3, 3.0, 1.17 of 7;
    # negatives: 1.2 called positive, 4 of 5 negative
    assert (r.tp, r.fn, r.fp, r.tn) == (5, 2, 1, 4)
    assert r.sensitivity == pytest.approx(5 / 7) and r.specificity == pytest.approx(4 / 5)
    lo, hi = proportion_confint(5, 7, alpha=0.05, method="wilson")
    assert (r.sensitivity_lo, r.sensitivity_hi) == pytest.approx((lo, hi))
    lo, hi = proportion_confint(4, 5, alpha=0.05, method="wilson")
    assert (r.specificity_lo, r.specificity_hi) == pytest.approx((lo, hi))
    assert r.ppv == pytest.approx(5 / 6) and r.npv == pytest.approx(4 / 6)
    assert (r.source, r.published) == ("Verma 2022", "sens 93.8 %")


def test_diagnostic_display_tables_render() -> None:
    res = dg.diagnostic(_frame(), _cfg())
    groups, rules = dg.display_groups(res.groups), dg.display_rules(res.rules)
    assert "p (Holm)" in groups.columns and "rank-biserial r" in groups.columns
    assert rules.loc[0, "rule"] == "kep ≥ 1.17"
    assert str(rules.loc[0, "sensitivity"]).startswith("5/7, 71%")
    for df in (groups, rules):
        assert tables.to_markdown(df, caption="c").count("\n") == len(df) + 4
        assert r"\begin{tabular}" in tables.to_latex(df, caption="c", label="tab:x")


def test_empty_group_is_noted_not_fatal() -> None:
    frame = _frame()
    frame["malignant"] = 1.0
    res = dg.diagnostic(frame, _cfg())
    assert res.groups["p"].isna().all() and res.groups["note"].str.len().gt(0).all()
    assert "single class" in str(res.rules.loc[0, "note"])
