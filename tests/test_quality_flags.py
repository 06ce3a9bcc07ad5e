"""Quality flags (dce.quality) and how they travel: ROI rows, cohort and change tables,
the exclusion setting ``cohort.exclude_flags`` and the table footnotes.

Unit tests only (no workflow run): the per-session ROI tables come from the synthetic
cohort of tests/test_cohort.py (phantom truth, seed 0).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_cohort import DEFAULTS, synthetic_inputs

from dce import quality
from dce.cohort import analysis as an
from dce.cohort import config as cc
from dce.cohort import display
from dce.cohort import frames as fr
from dce.io.tables import read_tsv
from dce.roi import roi_statistics
from dce.viz import tables

AORTA_OK = {"source": "aorta", "passed": True, "fallback_used": False, "reason": "ok"}
VFA = {"Source": "VFA", "Method": "linear", "Units": "s"}
FIXED = {"Source": "fixed", "FixedT10_s": 1.2, "Units": "s"}


def _flags(table: pd.DataFrame) -> list[list[str]]:
    return [quality.split_flags(v) for v in table["qc_flags"]]


# --------------------------------------------------------------------------- codes


def test_clean_session_has_no_flag() -> None:
    q = quality.SessionQuality.from_records(VFA, AORTA_OK)
    assert (q.t10_source, q.aif_source, q.aif_passed) == ("vfa", "aorta", True)
    assert q.flags() == []
    roi = pd.DataFrame({"roi": ["lesion", "marrow"], "label": [1, pd.NA],
                        "fit_failed_fraction": [0.1, 0.0]})
    out = quality.add_quality_columns(roi, q)
    assert list(out.columns[-4:]) == list(quality.QC_COLUMNS)
    assert out["qc_flags"].tolist() == ["", ""]
    assert out["qc_t10_source"].tolist() == ["vfa", "vfa"]
    assert out["qc_aif_passed"].tolist() == [True, True]


def test_t10_fixed_session_is_flagged() -> None:
    q = quality.SessionQuality.from_records(FIXED, AORTA_OK)
    assert q.t10_source == "fixed"
    assert q.flags() == ["t10_fixed"]


@pytest.mark.parametrize("qc, expected", [
    # QC failed, population fallback used (aif.on_qc_failure: fallback)
    ({"source": "parker", "passed": False, "fallback_used": True}, ["aif_fallback",
                                                                      "aif_qc_failed"]),
    # aif.mode: population, the aorta itself was fine
    ({"source": "georgiou", "passed": True, "fallback_used": False}, ["aif_fallback"]),
    # QC failed, no fallback (aif.fallback: none): measured curve used anyway
    ({"source": "aorta", "passed": False, "fallback_used": False}, ["aif_qc_failed"]),
])
def test_aif_fallback_session_is_flagged(qc: dict[str, Any], expected: list[str]) -> None:
    q = quality.SessionQuality.from_records(VFA, qc)
    assert q.flags() == expected
    assert q.aif_source == qc["source"]


def test_missing_records_are_named() -> None:
    with pytest.raises(ValueError, match=r"x\.json: the T1 map sidecar has no 'Source'"):
        quality.SessionQuality.from_records({}, AORTA_OK, name="x.json")
    with pytest.raises(ValueError, match="'passed'"):
        quality.SessionQuality.from_records(VFA, {"source": "aorta"})


def test_lesion_with_40_percent_failed_fits_is_flagged() -> None:
    """Two lesions of 10 voxels, 4 and 2 failed fits: only the first (0.4 > 0.25) is
    flagged; the fraction comes from dce.roi.roi_statistics as in the roi rule."""
    labels = np.zeros((4, 4, 2), dtype=np.int32)
    labels.reshape(-1)[:10] = 1
    labels.reshape(-1)[10:20] = 2
    status = np.zeros_like(labels)
    status.reshape(-1)[:4] = 2               # 4 of lesion 1's voxels failed
    status.reshape(-1)[10:12] = -1           # 2 of lesion 2's (outside the fit mask)
    rng = np.random.default_rng(0)
    maps = {"ktrans_per_min": rng.uniform(0.05, 0.2, labels.shape)}
    stats_ = roi_statistics(maps, labels, status=status)
    assert stats_["fit_failed_fraction"].tolist() == pytest.approx([0.4, 0.2])
    q = quality.SessionQuality.from_records(VFA, AORTA_OK)
    out = quality.add_quality_columns(stats_, q)
    assert _flags(out) == [["fit_failed_fraction"], []]
    # a stricter threshold flags both; the threshold itself is not exceeded
    assert _flags(quality.add_quality_columns(stats_, q, max_fit_failed_fraction=0.2)) == [
        ["fit_failed_fraction"], []]
    assert _flags(quality.add_quality_columns(stats_, q, max_fit_failed_fraction=0.1)) == [
        ["fit_failed_fraction"], ["fit_failed_fraction"]]
    assert quality.roi_flags(0.25) == [] and quality.roi_flags(0.2501) == [
        "fit_failed_fraction"]
    assert quality.roi_flags(float("nan")) == []
    with pytest.raises(ValueError, match="max_fit_failed_fraction"):
        quality.add_quality_columns(stats_, q, max_fit_failed_fraction=1.5)


def test_session_and_roi_flags_combine_in_code_order() -> None:
    q = quality.SessionQuality.from_records(
        FIXED, {"source": "parker", "passed": False, "fallback_used": True})
    out = quality.add_quality_columns(pd.DataFrame({"fit_failed_fraction": [0.4, 0.0]}), q)
    assert out["qc_flags"].tolist() == [
        "t10_fixed;aif_fallback;aif_qc_failed;fit_failed_fraction",
        "t10_fixed;aif_fallback;aif_qc_failed"]


def test_flag_cells_split_join_and_union() -> None:
    assert quality.split_flags("") == [] and quality.split_flags(np.nan) == []
    assert quality.split_flags(None) == [] and quality.split_flags(pd.NA) == []
    assert quality.split_flags(" t10_fixed ; aif_fallback") == ["t10_fixed", "aif_fallback"]
    assert quality.join_flags(["fit_failed_fraction", "t10_fixed", "t10_fixed"]) == \
        "t10_fixed;fit_failed_fraction"
    assert quality.union_flags("aif_fallback", np.nan, "t10_fixed;aif_fallback") == \
        "t10_fixed;aif_fallback"
    assert quality.union_flags("", np.nan) == ""
    assert quality.check_codes(["t10_fixed"]) == ("t10_fixed",)
    with pytest.raises(ValueError, match=r"unknown quality flag.*t1_fixed"):
        quality.check_codes(["t1_fixed"], "cohort.exclude_flags")


def test_empty_flags_survive_the_tsv(tmp_path: Path) -> None:
    """An empty qc_flags cell is read back as NaN by read_tsv: still no flag."""
    q = quality.SessionQuality.from_records(VFA, AORTA_OK)
    out = quality.add_quality_columns(pd.DataFrame({"fit_failed_fraction": [0.0, 0.5]}), q)
    path = tmp_path / "roi.tsv"
    path.write_text(tables.to_tsv(out), encoding="utf-8")
    back = read_tsv(path)
    assert _flags(back) == [[], ["fit_failed_fraction"]]
    assert not quality.excluded(back, ["t10_fixed"]).any()
    assert quality.excluded(back, ["fit_failed_fraction"]).tolist() == [False, True]


# --------------------------------------------------------------------------- cohort


#: sessions given flags in the synthetic cohort: (subject, session) -> T1 sidecar, AIF QC
FLAGGED: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {
    ("P02", "fu1"): (FIXED, AORTA_OK),
    ("P03", "pre"): (VFA, {"source": "parker", "passed": False, "fallback_used": True}),
}
#: lesion with 40 % failed fits: (subject, session, lesion)
FIT_FAILED = ("P04", "fu1", 1)


def flagged_inputs() -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """The synthetic ROI tables with quality columns: one T10-fixed follow-up, one
    AIF-fallback baseline and one lesion with 40 % failed fits."""
    rois, lesions, _ = synthetic_inputs()
    out = []
    for t in rois:
        key = (str(t["subject"].iloc[0]), str(t["session"].iloc[0]))
        t1, aif = FLAGGED.get(key, (VFA, AORTA_OK))
        t = t.copy()
        hit = ((t["subject"] == FIT_FAILED[0]) & (t["session"] == FIT_FAILED[1])
               & (t["label"] == FIT_FAILED[2]))
        t.loc[hit, "fit_failed_fraction"] = 0.4
        out.append(quality.add_quality_columns(t, quality.SessionQuality.from_records(t1, aif)))
    return out, lesions


def _analyse(exclude: list[str]) -> dict[str, Any]:
    rois, lesions = flagged_inputs()
    # the tests count rows and lesions, not the bootstrap CIs: 200 replicates are enough
    cfg = cc.parse_config({**DEFAULTS, "exclude_flags": exclude,
                           "bootstrap": {**DEFAULTS.get("bootstrap", {}), "n": 200}})
    cohort, _ = fr.cohort_tables(rois, lesions)
    changes = fr.changes(cohort, cfg, lesions)
    frame = fr.predictor_frame(cohort, changes, lesions, cfg)
    roc = an.roc_analysis(frame, cfg).roc
    paired = an.prepost(changes, cfg, cfg.prepost_parameters).paired
    return {"cfg": cfg, "cohort": cohort, "changes": changes, "frame": frame, "roc": roc,
            "paired": paired, "lesions": lesions}


@pytest.fixture(scope="module")
def kept() -> dict[str, Any]:
    return _analyse([])


def _row(df: pd.DataFrame, subject: str, lesion: int, session: str) -> pd.Series:
    sel = (df["subject"] == subject) & (df["lesion"] == lesion) & (df["session"] == session)
    assert sel.sum() == 1
    return df[sel].iloc[0]


def test_cohort_table_carries_the_flags(kept: dict[str, Any]) -> None:
    c = kept["cohort"]
    for col in quality.QC_COLUMNS:
        assert col in c.columns, col
    assert _row(c, "P02", 1, "fu1")["qc_flags"] == "t10_fixed"
    assert _row(c, "P02", 1, "fu1")["qc_t10_source"] == "fixed"
    assert _row(c, "P03", 1, "pre")["qc_flags"] == "aif_fallback;aif_qc_failed"
    assert _row(c, "P03", 1, "pre")["qc_aif_source"] == "parker"
    assert not _row(c, "P03", 1, "pre")["qc_aif_passed"]
    assert _row(c, "P04", 1, "fu1")["qc_flags"] == "fit_failed_fraction"
    n_flagged = sum(bool(quality.split_flags(v)) for v in c["qc_flags"])
    n_p02 = int(((c["subject"] == "P02") & (c["session"] == "fu1")).sum())
    n_p03 = int(((c["subject"] == "P03") & (c["session"] == "pre")).sum())
    assert n_flagged == n_p02 + n_p03 + 1
    # quality columns are not parameters: no change is computed for them
    assert not any(col.startswith("qc_") and col != "qc_flags"
                   for col in kept["changes"].columns)
    assert "qc_flags_change" not in kept["changes"].columns
    assert not any(c_.startswith("qc_") for c_ in fr.parameter_columns(c))


def test_change_row_has_the_union_of_both_sessions(kept: dict[str, Any]) -> None:
    ch = kept["changes"]
    # the baseline's AIF flags reach every follow-up of P03
    for ses in ch.loc[ch["subject"] == "P03", "session"]:
        assert _row(ch, "P03", 1, ses)["qc_flags"] == "aif_fallback;aif_qc_failed"
    assert _row(ch, "P02", 1, "fu1")["qc_flags"] == "t10_fixed"
    assert _row(ch, "P04", 1, "fu1")["qc_flags"] == "fit_failed_fraction"
    # a clean baseline and a clean follow-up: no flag
    assert quality.split_flags(_row(ch, "P01", 1, "fu1")["qc_flags"]) == []
    # both sessions flagged: union, in code order, without duplicates
    cohort = kept["cohort"].copy()
    sel = (cohort["subject"] == "P03") & (cohort["session"] == "fu1")
    cohort.loc[sel, "qc_flags"] = "fit_failed_fraction;aif_fallback"
    ch2 = fr.with_change_flags(kept["changes"], cohort)
    assert _row(ch2, "P03", 1, "fu1")["qc_flags"] == \
        "aif_fallback;aif_qc_failed;fit_failed_fraction"
    assert list(ch2.columns) == list(kept["changes"].columns)


def test_predictor_frame_carries_each_measurement_flags(kept: dict[str, Any]) -> None:
    f = kept["frame"].set_index(["subject", "lesion"])
    assert f.loc[("P03", 1), "dVp__qc_flags"] == "aif_fallback;aif_qc_failed"
    assert f.loc[("P02", 1), "dVp__session"] == "fu1"
    assert f.loc[("P02", 1), "dVp__qc_flags"] == "t10_fixed"
    assert f["dVp"].notna().all()          # nothing excluded by default


@pytest.mark.parametrize("exclude", [["t10_fixed"], ["aif_fallback"],
                                     ["fit_failed_fraction"],
                                     ["t10_fixed", "aif_qc_failed", "fit_failed_fraction"]])
def test_exclusion_removes_exactly_the_flagged_rows(kept: dict[str, Any],
                                                    exclude: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ex = _analyse(exclude)
    # the tables keep every row
    assert len(ex["cohort"]) == len(kept["cohort"])
    assert len(ex["changes"]) == len(kept["changes"])
    codes = set(exclude)
    ch = kept["changes"]
    hit_ch = ch["qc_flags"].map(lambda v: bool(codes & set(quality.split_flags(v))))
    hit_co = kept["cohort"]["qc_flags"].map(
        lambda v: bool(codes & set(quality.split_flags(v))))
    assert hit_ch.any()

    # counted
    n = quality.exclusion_counts(ex["cohort"], ex["changes"], ex["cfg"].exclude_flags)
    assert n["lesion_sessions"] == int(hit_co.sum())
    assert n["followups"] == int(hit_ch.sum())
    assert n["n_lesion_sessions"] == len(kept["cohort"])
    assert n["n_followups"] == len(ch)
    assert n["lesions"] == len(
        set(zip(ch.loc[hit_ch, "subject"], ch.loc[hit_ch, "lesion"], strict=True))
        | set(zip(kept["cohort"].loc[hit_co, "subject"], kept["cohort"].loc[hit_co, "lesion"],
                  strict=True)))

    # predictors: exactly the lesions whose measurement is flagged lose the value, and
    # the session of each predictor does not move
    f0 = kept["frame"].set_index(["subject", "lesion"])
    f1 = ex["frame"].set_index(["subject", "lesion"])
    for p in ex["cfg"].predictors:
        flagged = f0[f"{p.name}__qc_flags"].map(
            lambda v: bool(codes & set(quality.split_flags(v))))
        pd.testing.assert_series_equal(f0[f"{p.name}__session"], f1[f"{p.name}__session"])
        assert f1.loc[flagged, p.name].isna().all(), p.name
        pd.testing.assert_series_equal(f1.loc[~flagged, p.name], f0.loc[~flagged, p.name])
        # ROC: the excluded lesions are dropped (and counted as dropped)
        r0 = kept["roc"].set_index(["endpoint", "predictor"]).loc[("recurrence", p.name)]
        r1 = ex["roc"].set_index(["endpoint", "predictor"]).loc[("recurrence", p.name)]
        # (lesions without the endpoint, e.g. untreated ones, are never in the ROC)
        n_out = int((flagged & f0[p.name].notna() & f0["recurrence"].notna()).sum())
        assert r1["n"] == r0["n"] - n_out
        assert r1["n_dropped"] == r0["n_dropped"] + n_out

    # pre/post: per follow-up session, the flagged change rows are left out
    p0 = kept["paired"].set_index(["endpoint", "session", "group", "parameter"])
    p1 = ex["paired"].set_index(["endpoint", "session", "group", "parameter"])
    for ses in ch["session"].unique():
        n_out = int((hit_ch & (ch["session"] == ses)).sum())
        key = ("recurrence", ses, "all", "vp_mean")
        assert p1.loc[key, "n"] == p0.loc[key, "n"] - n_out


def test_no_exclusion_changes_nothing(kept: dict[str, Any]) -> None:
    rois, lesions, _ = synthetic_inputs()
    cfg = cc.parse_config(DEFAULTS)
    assert cfg.exclude_flags == () and cfg.max_fit_failed_fraction == 0.25
    cohort, _ = fr.cohort_tables(rois, lesions)       # tables without quality columns
    changes = fr.changes(cohort, cfg, lesions)
    frame = fr.predictor_frame(cohort, changes, lesions, cfg)
    for p in cfg.predictors:
        pd.testing.assert_series_equal(frame[p.name], kept["frame"][p.name])
    assert quality.exclusion_counts(kept["cohort"], kept["changes"], ())["followups"] == 0


def test_unknown_exclude_flag_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"cohort\.exclude_flags: unknown quality flag"):
        cc.parse_config({**DEFAULTS, "exclude_flags": ["aif_bad"]})


def test_paired_values_leave_out_the_excluded_rows(kept: dict[str, Any]) -> None:
    all_ = fr.paired_values(kept["cohort"], kept["changes"], kept["frame"], "vp_mean",
                            "first", "recurrence")
    ex = fr.paired_values(kept["cohort"], kept["changes"], kept["frame"], "vp_mean",
                          "first", "recurrence", exclude_flags=["aif_fallback"])
    n_p03 = int((kept["frame"]["subject"] == "P03").sum())
    assert len(ex) == len(all_) - n_p03
    assert "P03" not in set(ex["subject"])


# --------------------------------------------------------------------------- tables


def test_quality_table_and_footnotes(kept: dict[str, Any]) -> None:
    ex = _analyse(["t10_fixed"])
    q = display.display_quality(ex["cohort"], ex["cfg"])
    assert len(q) == ex["cohort"][["subject", "session"]].drop_duplicates().shape[0]
    r = q[(q["subject"] == "P02") & (q["session"] == "fu1")].iloc[0]
    assert (r["T10"], r["AIF"], r["AIF QC"], r["QC flags"]) == ("fixed", "aorta", "passed",
                                                                  "t10_fixed")
    n_p02 = int((ex["lesions"]["subject"] == "P02").sum())
    assert r["lesions excluded"] == f"{n_p02} of {n_p02}"
    r = q[(q["subject"] == "P03") & (q["session"] == "pre")].iloc[0]
    assert (r["AIF"], r["AIF QC"]) == ("parker", "failed")
    r = q[(q["subject"] == "P04") & (q["session"] == "fu1")].iloc[0]
    assert r["lesions with failed fits"].startswith("1 of")
    assert r["QC flags"] == "fit_failed_fraction"

    note = display.quality_note(ex["cohort"], ex["changes"], ex["cfg"])
    for code in quality.FLAG_CODES:
        assert f"{code} = " in note
    n = quality.exclusion_counts(ex["cohort"], ex["changes"], ["t10_fixed"])
    assert (f"{n['lesion_sessions']} of {n['n_lesion_sessions']} lesion sessions and "
            f"{n['followups']} of {n['n_followups']} follow-up changes") in note
    short = display.quality_note(ex["cohort"], ex["changes"], ex["cfg"], legend=False)
    assert "t10_fixed = " not in short and "Excluded by cohort.exclude_flags" in short
    assert "no row was excluded" in display.quality_note(kept["cohort"], kept["changes"],
                                                    kept["cfg"])

    md = tables.to_markdown(q, caption="c", note=note)
    assert md.rstrip().endswith(tables._md_escape(note))
    assert md.count("\n") == len(q) + 6
    tex = tables.to_latex(q, caption="c", note=note)
    assert r"\footnotesize QC flags: t10\_fixed = " in tex
    assert tex.index(r"\end{tabular}") < tex.index(r"\footnotesize") < tex.index(
        r"\end{table}")
    html = tables.to_html(q, note=note)
    assert "QC flags" in html and "fit_failed_fraction = " in html

    summary = display.cohort_summary(ex["cohort"], ex["frame"], ex["changes"], ex["cfg"],
                                ex["cfg"].prepost_parameters)
    s = summary.set_index(["endpoint", "characteristic"])["all"]
    assert s[("recurrence", "lesion sessions with QC flags")].startswith(
        str(sum(bool(quality.split_flags(v)) for v in ex["cohort"]["qc_flags"])))
    assert s[("recurrence", "excluded (cohort.exclude_flags): lesion sessions / "
                            "follow-ups")] == f"{n['lesion_sessions']} / {n['followups']}"
