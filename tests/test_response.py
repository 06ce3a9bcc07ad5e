"""Tests of dce.response: change table, fixed and cross-validated predictions, lead time."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.optimize import minimize
from scipy.special import expit

from dce import response as rsp
from dce.response import (
    CutoffRule,
    change_table,
    cv_cutoff_predictions,
    cv_logistic_predictions,
    first_positive_days,
    firth_logit,
    fit_logistic,
    lead_time_days,
    patient_predictions,
    rule_predictions,
)
from dce.stats import auc_mann_whitney, youden_cutoff


def _cohort() -> pd.DataFrame:
    rows = [
        # subject, lesion, session, day, vp_mean, ktrans, tic
        ("P1", 1, "pre", -7, 0.050, 0.12, "D"),
        ("P1", 1, "fu1", 60, 0.020, 0.06, "E"),
        ("P1", 1, "fu2", 120, 0.015, 0.05, "E"),
        ("P1", 2, "pre", -7, 0.040, 0.10, "D"),
        ("P1", 2, "fu1", 60, 0.050, 0.11, "D"),
        ("P2", 1, "fu1", 55, 0.030, 0.09, "C"),    # listed before its baseline
        ("P2", 1, "pre", -5, 0.060, 0.20, None),
    ]
    return pd.DataFrame(rows, columns=["subject", "lesion", "session", "days_from_rt",
                                       "vp_mean", "ktrans_per_min_mean", "tic_type"])


# --------------------------------------------------------------------------------------
# change table
# --------------------------------------------------------------------------------------

def test_change_table_exact():
    ct = change_table(_cohort(), params=["vp_mean", "ktrans_per_min_mean"])
    assert len(ct) == 4
    assert list(ct[["subject", "lesion", "session"]].itertuples(index=False, name=None)) == [
        ("P1", 1, "fu1"), ("P1", 1, "fu2"), ("P1", 2, "fu1"), ("P2", 1, "fu1")]
    r = ct.iloc[0]
    assert r["vp_mean_baseline"] == 0.050 and r["vp_mean"] == 0.020
    assert r["vp_mean_change"] == pytest.approx(-0.030, abs=1e-15)
    # percent change: 100 * (0.020 - 0.050) / 0.050 = -60 %
    assert r["vp_mean_pct_change"] == pytest.approx(-60.0, abs=1e-12)
    np.testing.assert_allclose(ct["vp_mean_pct_change"],
                               [-60.0, -70.0, 25.0, -50.0], atol=1e-12)
    np.testing.assert_allclose(ct["ktrans_per_min_mean_pct_change"],
                               [-50.0, -100 * 0.07 / 0.12, 10.0, -55.0], atol=1e-12)
    assert list(ct["interval_days"]) == [67, 127, 67, 60]
    assert list(ct["baseline_session"]) == ["pre"] * 4
    assert ct["tic_transition"].iloc[0] == "D->E"
    assert ct["tic_transition"].iloc[2] == "D->D"
    assert pd.isna(ct["tic_transition"].iloc[3])              # baseline type missing


def test_change_table_defaults_and_options():
    df = _cohort()
    df["recurrence"] = [0, 0, 0, 1, 1, 0, 0]
    ct = change_table(df, carry=["recurrence"])                # params: numeric columns
    assert {"vp_mean_pct_change", "ktrans_per_min_mean_pct_change"} <= set(ct.columns)
    assert "recurrence_pct_change" not in ct.columns and list(ct["recurrence"]) == [0, 0, 1, 0]
    # baseline = earliest session gives the same table here
    ct2 = change_table(df, baseline_session=None, carry=["recurrence"])
    pd.testing.assert_frame_equal(ct, ct2)
    # non-positive baseline -> NaN percent change, absolute change still given
    df.loc[0, "vp_mean"] = 0.0
    ct3 = change_table(df, params=["vp_mean"], tic_col=None)
    assert np.isnan(ct3["vp_mean_pct_change"].iloc[0])
    assert ct3["vp_mean_change"].iloc[0] == pytest.approx(0.020)
    assert "tic_transition" not in ct3.columns


def test_change_table_lesion_without_baseline():
    df = _cohort()
    df = df[~((df.subject == "P1") & (df.lesion == 2) & (df.session == "pre"))]
    with pytest.raises(ValueError, match=re.escape("no baseline session 'pre' for lesion(s) "
                                                   "subject=P1 lesion=2")):
        change_table(df, params=["vp_mean"])


def test_change_table_errors():
    df = _cohort()
    with pytest.raises(ValueError, match="share a lesion and session"):
        change_table(pd.concat([df, df.iloc[[0]]]), params=["vp_mean"])
    with pytest.raises(ValueError, match=r"missing column.*'vp_p95'"):
        change_table(df, params=["vp_p95"])
    bad = df.assign(vp_mean=["a"] * len(df))
    with pytest.raises(ValueError, match="'vp_mean' is not numeric"):
        change_table(bad, params=["vp_mean"])


# --------------------------------------------------------------------------------------
# fixed rules, patient aggregation
# --------------------------------------------------------------------------------------

def test_cutoff_rule():
    df = pd.DataFrame({"subject": ["A", "A", "B", "C"], "lesion": [1, 2, 1, 1],
                       "session": ["fu1"] * 4, "kep_per_min_mean": [1.17, 0.5, 2.0, np.nan],
                       "recurrence": [1, 0, 1, 0]})
    rule = CutoffRule(parameter="kep_per_min_mean", direction="higher", threshold=1.17)
    assert rule.column == "kep_per_min_mean" and rule.label == "kep_per_min_mean >= 1.17"
    p = rule.predict(df)
    assert list(p.iloc[:3]) == [True, False, True] and p.isna().iloc[3]
    strict = CutoffRule(parameter="kep_per_min_mean", direction="higher", threshold=1.17,
                        strict=True)
    assert list(strict.predict(df).iloc[:3]) == [False, False, True]
    low = CutoffRule(parameter="vp_mean", change="percent", direction="lower",
                     threshold=-50, session="fu1")
    assert low.column == "vp_mean_pct_change"
    res = rule_predictions(df, rule, "recurrence")
    pats = res.patients.set_index("subject")
    assert bool(pats.loc["A", "predicted"]) and bool(pats.loc["B", "predicted"])
    assert pats["predicted"].isna()["C"]
    assert list(pats["recurrence"]) == [1, 1, 0]
    res_all = rule_predictions(df, rule, "recurrence", aggregate="all")
    assert not bool(res_all.patients.set_index("subject").loc["A", "predicted"])
    with pytest.raises(ValueError, match="direction"):
        CutoffRule(parameter="x", direction="up", threshold=1)  # type: ignore[arg-type]


def test_patient_predictions_probabilities():
    les = pd.DataFrame({"subject": ["A", "A", "B", "B", "C"],
                        "probability": [0.2, 0.7, 0.4, 0.55, np.nan],
                        "recurrence": [0, 1, 0, 0, 1]})
    anyp = patient_predictions(les, endpoint="recurrence").set_index("subject")
    assert list(anyp["predicted"].iloc[:2]) == [True, True]
    assert anyp["predicted"].isna()["C"]
    allp = patient_predictions(les, endpoint="recurrence", how="all").set_index("subject")
    assert list(allp["predicted"].iloc[:2]) == [False, False]
    meanp = patient_predictions(les, endpoint="recurrence", how="mean").set_index("subject")
    assert list(meanp["predicted"].iloc[:2]) == [False, False]          # 0.45, 0.475
    assert meanp.loc["B", "probability_mean"] == pytest.approx(0.475)
    assert list(anyp["recurrence"]) == [1, 0, 1]


# --------------------------------------------------------------------------------------
# leave-one-patient-out cut-off: no leakage
# --------------------------------------------------------------------------------------

def _leak_data() -> pd.DataFrame:
    # positives 10, 11, 12 and negatives 1, 2, 9.5: the in-sample Youden cut-off
    # (between 9.5 and 10) classifies all six perfectly. Held out, patient P3 (9.5) and
    # patient P4 (10) each sit on the wrong side of the cut-off chosen from the others.
    return pd.DataFrame({"subject": ["P1", "P2", "P3", "P4", "P5", "P6"],
                         "lesion": [1] * 6,
                         "score": [1.0, 2.0, 9.5, 10.0, 11.0, 12.0],
                         "recurrence": [0, 0, 0, 1, 1, 1]})


def test_lopo_differs_from_in_sample():
    df = _leak_data()
    in_sample = youden_cutoff(df["score"], df["recurrence"])
    assert in_sample.sensitivity == 1.0 and in_sample.specificity == 1.0
    insample_pred = in_sample.predict(df["score"])
    np.testing.assert_array_equal(insample_pred, df["recurrence"].to_numpy() == 1)

    res = cv_cutoff_predictions(df, "score", "recurrence", direction="higher")
    lopo = res.lesions.set_index("subject")["predicted"]
    assert bool(lopo["P3"]) is True          # negative 9.5 called positive (cut-off 6)
    assert bool(lopo["P4"]) is False         # positive 10 called negative (cut-off 10.25)
    folds = res.folds.set_index("fold")
    assert folds.loc["P3", "threshold"] == pytest.approx(6.0)
    assert folds.loc["P4", "threshold"] == pytest.approx(10.25)
    # every fold's cut-off equals the Youden cut-off of the other patients, recomputed
    for g in df["subject"]:
        other = df[df["subject"] != g]
        assert folds.loc[g, "threshold"] == youden_cutoff(other["score"],
                                                          other["recurrence"]).threshold


def test_lopo_held_out_patient_never_enters_its_cutoff(monkeypatch):
    rng = np.random.default_rng(0)
    subjects = np.repeat([f"S{i:02d}" for i in range(12)], 2)
    df = pd.DataFrame({"subject": subjects, "lesion": np.tile([1, 2], 12),
                       "score": rng.normal(size=24), "recurrence": np.tile([0, 1], 12)})
    df.index = pd.Index(rng.permutation(np.arange(100, 124)))      # non-trivial index
    seen: list[set[str]] = []

    def recording_chooser(scores, labels, **kw):
        seen.append(set(df.loc[scores.index, "subject"]))
        return youden_cutoff(scores, labels, **kw)

    res = cv_cutoff_predictions(df, "score", "recurrence", chooser=recording_chooser)
    held_out = list(res.folds["fold"])
    assert len(seen) == 12
    for g, train in zip(held_out, seen, strict=True):
        assert g not in train
        assert train == set(df["subject"]) - {g}

    # the same through the module-level default chooser
    calls: list[set[str]] = []
    real = rsp.youden_cutoff

    def spy(scores, labels, **kw):
        calls.append(set(df.loc[scores.index, "subject"]))
        return real(scores, labels, **kw)

    monkeypatch.setattr(rsp, "youden_cutoff", spy)
    cv_cutoff_predictions(df, "score", "recurrence")
    assert all(g not in c for g, c in zip(held_out, calls, strict=True))


def test_lopo_direction_chosen_in_training_folds():
    rng = np.random.default_rng(1)
    n = 30
    y = np.tile([0, 1], n // 2)
    df = pd.DataFrame({"subject": [f"S{i}" for i in range(n)], "lesion": 1,
                       "vp_pct_change": -40 + 60 * y + rng.normal(0, 25, n),
                       "control": 1 - y})
    res = cv_cutoff_predictions(df, "vp_pct_change", "control", direction="auto")
    assert set(res.folds["direction"]) == {"lower"}
    assert (res.lesions["predicted"].astype(bool) == (res.lesions["control"] == 1)).mean() > 0.7


def test_lopo_single_class_fold():
    df = pd.DataFrame({"subject": ["A", "B", "C"], "score": [1.0, 2.0, 3.0],
                       "recurrence": [1, 0, 0]})
    with pytest.raises(ValueError, match=re.escape("without subject A the training data of "
                                                   "endpoint recurrence has a single class "
                                                   "(n positive=0, n negative=2)")):
        cv_cutoff_predictions(df, "score", "recurrence")


# --------------------------------------------------------------------------------------
# logistic models
# --------------------------------------------------------------------------------------

def _firth_negloglik(beta, xc, y):
    """Independent Firth objective: -(loglik + 0.5 log det(X^T W X))."""
    p = 1.0 / (1.0 + np.exp(-(xc @ beta)))
    ll = np.sum(y * np.log(p) + (1 - y) * np.log1p(-p))
    info = xc.T @ np.diag(p * (1 - p)) @ xc
    return -(ll + 0.5 * np.log(np.linalg.det(info)))


@pytest.mark.parametrize("separated", [False, True])
def test_firth_matches_direct_optimisation(separated):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(25, 2))
    if separated:
        y = (x[:, 0] > 0).astype(float)
    else:
        y = (rng.uniform(size=25) < expit(0.3 + x[:, 0] - 0.5 * x[:, 1])).astype(float)
    xc = np.column_stack([np.ones(25), x])
    ref = minimize(_firth_negloglik, np.zeros(3), args=(xc, y), method="BFGS",
                   options={"gtol": 1e-10})
    res = firth_logit(x, y)
    assert res.converged and res.method == "firth"
    np.testing.assert_allclose(res.params, ref.x, atol=1e-4)
    assert np.all(np.isfinite(res.params)) and np.all(np.abs(res.params) < 20)


def test_fit_logistic_separation_fallback():
    x = np.array([1.0, 2, 3, 4, 5, 6])
    y = np.array([0.0, 0, 0, 1, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # nothing leaks out of the fallback
        res = fit_logistic(x, y)
    assert res.method == "firth"
    assert np.all(np.isfinite(res.params))
    with pytest.raises(ValueError, match="MLE does not exist"):
        fit_logistic(x, y, fit="mle")
    # no separation: plain statsmodels MLE
    rng = np.random.default_rng(2)
    x2 = rng.normal(size=60)
    y2 = (rng.uniform(size=60) < expit(x2)).astype(float)
    r2 = fit_logistic(x2, y2)
    ref = sm.Logit(y2, sm.add_constant(x2)).fit(disp=0)
    assert r2.method == "mle"
    np.testing.assert_allclose(r2.params, ref.params, rtol=1e-6)


def _synthetic(seed: int, n_patients: int = 90):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_patients):
        for les in range(1, int(rng.integers(1, 3)) + 1):
            x1, x2 = rng.normal(), rng.normal()
            p = expit(-0.5 + 1.5 * x1 - 1.0 * x2)
            rows.append({"subject": f"S{i:03d}", "lesion": les, "x1": x1, "x2": x2,
                         "p_true": p, "recurrence": int(rng.uniform() < p)})
    return pd.DataFrame(rows)


def test_cv_logistic_auc_close_to_true_model():
    df = _synthetic(11)
    res = cv_logistic_predictions(df, ["x1", "x2"], "recurrence")
    auc_cv = auc_mann_whitney(res.lesions["probability"], res.lesions["recurrence"])
    auc_true = auc_mann_whitney(df["p_true"], df["recurrence"])
    assert abs(auc_cv - auc_true) < 0.03
    assert set(res.folds["method"]) == {"mle"}
    # fold coefficients on the original scale = statsmodels on the other patients
    g = res.folds["fold"].iloc[0]
    other = df[df["subject"] != g]
    ref = sm.Logit(other["recurrence"], sm.add_constant(other[["x1", "x2"]])).fit(disp=0)
    row = res.folds.iloc[0]
    np.testing.assert_allclose([row["intercept"], row["coef_x1"], row["coef_x2"]],
                               ref.params.to_numpy(), rtol=1e-6)
    held = df["subject"] == g
    np.testing.assert_allclose(
        res.lesions.loc[held.to_numpy(), "probability"],
        ref.predict(sm.add_constant(df.loc[held, ["x1", "x2"]], has_constant="add")),
        rtol=1e-6)
    # patients: positive if any lesion's probability >= 0.5
    pm = res.lesions.groupby("subject")["probability"].max() >= 0.5
    pats = res.patients.set_index("subject")["predicted"].astype(bool)
    assert (pats == pm.loc[pats.index]).all()


def test_cv_logistic_separated_folds_use_firth():
    df = pd.DataFrame({"subject": [f"S{i}" for i in range(8)], "lesion": 1,
                       "vp_pct_change": [-70, -60, -55, -40, 5, 20, 35, 50.0],
                       "recurrence": [0, 0, 0, 0, 1, 1, 1, 1]})
    res = cv_logistic_predictions(df, ["vp_pct_change"], "recurrence")
    assert set(res.folds["method"]) == {"firth"}
    p = res.lesions["probability"].to_numpy()
    assert np.all((p > 0) & (p < 1))
    assert np.all(p[4:] > 0.5) and np.all(p[:4] < 0.5)


# --------------------------------------------------------------------------------------
# lead time
# --------------------------------------------------------------------------------------

def test_lead_time():
    assert lead_time_days(60, 260) == 200.0
    assert np.isnan(lead_time_days(np.nan, 200))
    np.testing.assert_array_equal(lead_time_days([60, np.nan, 120], [260, 150, 100]),
                                  [200, np.nan, -20])
    s = lead_time_days(pd.Series([60.0, 70.0]), pd.Series([200, pd.NA], dtype="Int64"))
    assert s.iloc[0] == 140 and np.isnan(s.iloc[1])
    les = pd.DataFrame({"subject": ["A"] * 3 + ["B"] * 2, "lesion": [1] * 5,
                        "days_from_rt": [60, 120, 180, 60, 120],
                        "predicted": pd.array([False, True, True, False, pd.NA],
                                              dtype="boolean")})
    fp = first_positive_days(les)
    assert fp["first_positive_day"].iloc[0] == 120
    assert fp["first_positive_day"].isna().iloc[1]
