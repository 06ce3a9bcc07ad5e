"""Display tables of the cohort analysis: formatted cells for the report.

Every ``display_*`` function turns a result table (:mod:`dce.cohort.analysis`) into a
table of display strings such as ``"0.91 (0.78–1.00)"`` (:mod:`dce.viz.tables` renders
them as Markdown, LaTeX or HTML); :func:`report_tables` gives every table of the
``cohort_report_tables`` rule with its caption and footnotes.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from dce import quality
from dce.cohort.analysis import PredictionResults, PrePostResults, RocResults
from dce.cohort.config import CohortConfig
from dce.cohort.frames import CohortFrames, baseline_rows, endpoint_groups
from dce.viz.tables import (
    fmt_ci,
    fmt_median_iqr,
    fmt_num,
    fmt_p,
    fmt_pct,
    is_missing,
    to_html,
    to_latex,
    to_markdown,
)

__all__ = [
    "MULTIPLICITY_LABELS",
    "TABLE_NOTES",
    "cohort_summary",
    "display_delong",
    "display_lead",
    "display_predictions",
    "display_prepost",
    "display_quality",
    "display_roc",
    "quality_note",
    "render_report_tables",
    "report_tables",
]

#: Notes under the HTML tables of the report.
TABLE_NOTES = {
    "roc": "Direction 'higher': larger values indicate the endpoint. Models marked "
           "'LOPO logistic' use out-of-fold probabilities (leave-one-patient-out). The "
           "Youden cut-off and its accuracy are estimated on the same data (optimistic); "
           "the cross-validated accuracy is in the predictions table.",
    "predictions": "rule: fixed cut-off from the configuration; cv_cutoff: Youden cut-off "
                   "chosen without the patient (leave-one-patient-out); logistic: "
                   "multivariable logistic regression, leave-one-patient-out (Firth fit "
                   "where the maximum-likelihood fit does not exist). Patient level: a "
                   "patient is positive according to cohort.aggregate.",
    "lead_time": "Lead time = event day on conventional MRI minus the day of the first "
                 "follow-up session with a positive DCE call; positive = the DCE call "
                 "came first.",
    "quality": "One row per session: T10 from the VFA series (vfa) or the fixed constant "
               "(fixed); AIF from the aorta or a population curve, and whether the "
               "aortic AIF passed its QC; QC flags of the session's lesions.",
}


def quality_note(cohort: pd.DataFrame, changes_df: pd.DataFrame, cfg: CohortConfig, *,
                 legend: bool = True) -> str:
    """The quality footnote of the cohort tables: the flag codes (``legend``) and the
    rows excluded by ``cohort.exclude_flags`` (:func:`dce.quality.flags_footnote`)."""
    counts = quality.exclusion_counts(cohort, changes_df, cfg.exclude_flags)
    return quality.flags_footnote(cfg.exclude_flags, counts, legend=legend,
                                  max_fit_failed_fraction=cfg.max_fit_failed_fraction)


def cohort_summary(cohort: pd.DataFrame, frame: pd.DataFrame, changes_df: pd.DataFrame,
                   cfg: CohortConfig, params: Sequence[str]) -> pd.DataFrame:
    """Characteristics per endpoint group (columns ``all``, ``<e>=1``, ``<e>=0``):
    patients, lesions, sessions, follow-ups, days from RT, baseline parameters
    (median [IQR]). Cells are display strings."""
    base = baseline_rows(cohort, cfg)
    out = []
    for e in cfg.endpoints:
        cols: dict[str, dict[str, str]] = {}
        for gname, sel in endpoint_groups(frame, e):
            keys = frame.loc[sel, ["subject", "lesion"]]
            c = cohort.merge(keys, on=["subject", "lesion"])
            ch = changes_df.merge(keys, on=["subject", "lesion"])
            b = base.merge(keys, on=["subject", "lesion"])
            col: dict[str, str] = {
                "patients": str(keys["subject"].nunique()),
                "lesions": str(len(keys)),
                "lesion sessions": str(len(c)),
                "follow-up sessions": str(len(ch)),
            }
            d = ch["days_from_rt"].dropna()
            col["days from RT at follow-up, median (range)"] = (
                f"{fmt_num(d.median())} ({fmt_num(d.min())}–{fmt_num(d.max())})"
                if len(d) else "–")
            db = b["days_from_rt"].dropna()
            col["days from RT at baseline, median (range)"] = (
                f"{fmt_num(db.median())} ({fmt_num(db.min())}–{fmt_num(db.max())})"
                if len(db) else "–")
            if e.day_column and e.day_column in frame:
                ev = frame.loc[sel, e.day_column].dropna()
                col[f"{e.day_column}, median (range)"] = (
                    f"{fmt_num(ev.median())} ({fmt_num(ev.min())}–{fmt_num(ev.max())})"
                    if len(ev) else "–")
            for par in params:
                v = pd.to_numeric(b[par], errors="coerce").dropna() if par in b else \
                    pd.Series(dtype=float)
                q = np.quantile(v, [0.5, 0.25, 0.75]) if len(v) else [np.nan] * 3
                col[f"baseline {par}, median [IQR]"] = fmt_median_iqr(*q)
            if "tic_type" in b:
                counts = b["tic_type"].fillna("?").replace("", "?").value_counts().sort_index()
                col["baseline TIC types"] = ", ".join(f"{k} {v}" for k, v in counts.items())
            if "qc_flags" in c:
                col["lesion sessions with QC flags"] = _flag_cell(c)
                col["follow-ups with QC flags (either session)"] = _flag_cell(ch)
                col["excluded (cohort.exclude_flags): lesion sessions / follow-ups"] = (
                    f"{int(quality.excluded(c, cfg.exclude_flags).sum())} / "
                    f"{int(quality.excluded(ch, cfg.exclude_flags).sum())}")
            cols[gname] = col
        names = list(next(iter(cols.values())).keys())
        for nm in names:
            row = {"endpoint": e.name, "characteristic": nm}
            row.update({g: cols[g].get(nm, "–") for g in cols})
            out.append(row)
    df = pd.DataFrame(out)
    return df


def _flag_cell(df: pd.DataFrame) -> str:
    """``"3 (t10_fixed 2, aif_fallback 1)"``: rows with any flag, and per code."""
    n = int(sum(bool(quality.split_flags(v)) for v in df["qc_flags"]))
    per = {k: v for k, v in quality.flag_counts(df).items() if v}
    return f"{n}" + (f" ({', '.join(f'{k} {v}' for k, v in per.items())})" if per else "")


def display_quality(cohort: pd.DataFrame, cfg: CohortConfig) -> pd.DataFrame:
    """One row per session of the cohort table: T10 source, AIF source and QC, the
    lesions flagged for failed fits, the session's QC flags (union over its lesions)
    and the lesion rows excluded by ``cfg.exclude_flags``."""
    cols = ["subject", "session", "days from RT", "T10", "AIF", "AIF QC",
            "lesions with failed fits", "QC flags", "lesions excluded"]
    if "qc_flags" not in cohort.columns or cohort.empty:
        return pd.DataFrame(columns=cols)
    df = cohort.copy()
    df["_excl"] = quality.excluded(df, cfg.exclude_flags)
    rows = []
    for (subj, ses), g in df.groupby(["subject", "session"], sort=False):
        per_lesion = [quality.split_flags(v) for v in g["qc_flags"]]
        n_fit = sum("fit_failed_fraction" in f for f in per_lesion)

        def first(col: str, g: pd.DataFrame = g) -> Any:
            return g[col].iloc[0] if col in g.columns else None

        passed = first("qc_aif_passed")
        rows.append({
            "subject": str(subj), "session": str(ses),
            "days from RT": fmt_num(first("days_from_rt")),
            "T10": "–" if is_missing(first("qc_t10_source")) else str(first("qc_t10_source")),
            "AIF": "–" if is_missing(first("qc_aif_source")) else str(first("qc_aif_source")),
            "AIF QC": "–" if is_missing(passed) else
            ("passed" if str(passed).strip().lower() in ("true", "1", "1.0") else "failed"),
            "lesions with failed fits": f"{n_fit} of {len(g)}",
            "QC flags": quality.union_flags(*g["qc_flags"]) or "–",
            "lesions excluded": f"{int(g['_excl'].sum())} of {len(g)}",
        })
    return pd.DataFrame(rows, columns=cols)


def display_roc(roc: pd.DataFrame) -> pd.DataFrame:
    """The ROC table with formatted cells (for Markdown, LaTeX, HTML)."""
    rows = []
    for r in _records(roc):
        rows.append({
            "endpoint": r.endpoint, "predictor": r.label,
            "n (pos/neg)": f"{r.n} ({r.n_pos}/{r.n_neg})",
            "direction": r.direction if isinstance(r.direction, str) else "–",
            "AUC (DeLong 95% CI)": fmt_ci(r.auc, r.delong_lo, r.delong_hi),
            "bootstrap 95% CI": "–" if is_missing(r.boot_lo) else
            f"{fmt_num(r.boot_lo, fixed=2)}–{fmt_num(r.boot_hi, fixed=2)}",
            "Youden cut-off": fmt_num(r.youden_threshold),
            **_accuracy_cells(r),
        })
    return pd.DataFrame(rows)


def _records(df: pd.DataFrame) -> list[Any]:
    """Rows as attribute-access records (typed Any for the display code)."""
    return [SimpleNamespace(**{str(k): v for k, v in rec.items()})
            for rec in df.to_dict("records")]


def _prop(k: Any, n: Any, est: Any, lo: Any, hi: Any) -> str:
    if is_missing(k) or is_missing(n):
        return "–"
    return fmt_pct(int(k), int(n), est, lo, hi)


def _accuracy_cells(r: Any) -> dict[str, str]:
    """Sensitivity, specificity, PPV and NPV cells (k/n, % and CI) of a record with
    ``tp, fp, tn, fn`` and the estimates with ``_lo``/``_hi`` bounds."""
    return {
        "sensitivity": _prop(r.tp, r.tp + r.fn, r.sensitivity, r.sensitivity_lo,
                             r.sensitivity_hi),
        "specificity": _prop(r.tn, r.tn + r.fp, r.specificity, r.specificity_lo,
                             r.specificity_hi),
        "PPV": _prop(r.tp, r.tp + r.fp, r.ppv, r.ppv_lo, r.ppv_hi),
        "NPV": _prop(r.tn, r.tn + r.fn, r.npv, r.npv_lo, r.npv_hi),
    }


def display_delong(delong: pd.DataFrame) -> pd.DataFrame:
    """The DeLong comparisons (:class:`dce.cohort.analysis.DeLongRow` columns) with
    formatted cells."""
    rows = []
    for r in _records(delong):
        rows.append({"endpoint": r.endpoint, "comparison": f"{r.predictor_a} vs {r.predictor_b}",
                     "AUC a": fmt_num(r.auc_a, fixed=2), "AUC b": fmt_num(r.auc_b, fixed=2),
                     "difference (95% CI)": fmt_ci(r.diff, r.diff_lo, r.diff_hi),
                     "z": fmt_num(r.z, fixed=2), "p": fmt_p(r.p),
                     MULTIPLICITY_LABELS["p_holm"]: fmt_p(getattr(r, "p_holm", np.nan)),
                     MULTIPLICITY_LABELS["p_bh"]: fmt_p(getattr(r, "p_bh", np.nan))})
    return pd.DataFrame(rows)


def display_prepost(paired: pd.DataFrame, between: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint, session and parameter: the median [IQR] percent change in each
    group with its Wilcoxon p, and the Mann-Whitney p between the groups."""
    rows = []
    bt = between[between["measure"] == "pct_change"].set_index(
        ["endpoint", "session", "parameter"])
    for (ep, ses, par), g in paired.groupby(["endpoint", "session", "parameter"], sort=False):
        row: dict[str, Any] = {"endpoint": ep, "session": ses, "parameter": par}
        for r in g.itertuples():
            row[f"{r.group}: n"] = fmt_num(r.n)
            row[f"{r.group}: % change, median [IQR]"] = fmt_median_iqr(
                r.median_pct_change, r.q25_pct_change, r.q75_pct_change)
            row[f"{r.group}: Wilcoxon p"] = fmt_p(r.p)
        p_mw = bt["p"].get((ep, ses, par), np.nan) if len(bt) else np.nan
        row["Mann-Whitney p"] = fmt_p(p_mw)
        for col in ("p_holm", "p_bh"):
            v = bt[col].get((ep, ses, par), np.nan) if col in bt and len(bt) else np.nan
            row[f"Mann-Whitney {MULTIPLICITY_LABELS[col]}"] = fmt_p(v)
        rows.append(row)
    return pd.DataFrame(rows)


def display_predictions(summary: pd.DataFrame) -> pd.DataFrame:
    """The prediction summary (:class:`dce.cohort.analysis.PredictionSummaryRow`
    columns) with formatted cells; a skipped model shows its note."""
    rows = []
    for r in _records(summary):
        if is_missing(getattr(r, "n", np.nan)):
            rows.append({"endpoint": r.endpoint, "method": r.method, "model": r.model,
                         "level": r.level, "n": "–", "sensitivity": "–", "specificity": "–",
                         "PPV": "–", "NPV": "–", "AUC": "–", "note": r.note})
            continue
        rows.append({
            "endpoint": r.endpoint, "method": r.method, "model": r.model, "level": r.level,
            "n": fmt_num(r.n),
            **_accuracy_cells(r),
            "AUC": fmt_num(getattr(r, "auc", np.nan), fixed=2),
            "note": r.note if isinstance(r.note, str) else ""})
    return pd.DataFrame(rows)


def display_lead(lead_summary: pd.DataFrame) -> pd.DataFrame:
    """The lead-time summary (:class:`dce.cohort.analysis.LeadSummaryRow` columns) with
    formatted cells (days)."""
    rows = []
    for r in _records(lead_summary):
        rows.append({"endpoint": r.endpoint, "method": r.method, "model": r.model,
                     "events with a day": fmt_num(r.n_events),
                     "called at a follow-up": fmt_num(r.n_called),
                     "called before the event": fmt_num(r.n_called_before),
                     "lead time, median (range)":
                         "–" if is_missing(r.median_lead_days) else
                         f"{fmt_num(r.median_lead_days)} ({fmt_num(r.min_lead_days)}–"
                         f"{fmt_num(r.max_lead_days)})"})
    return pd.DataFrame(rows, columns=["endpoint", "method", "model", "events with a day",
                                       "called at a follow-up", "called before the event",
                                       "lead time, median (range)"])


def report_tables(frames: CohortFrames, prepost: PrePostResults, roc: RocResults,
                  predictions: PredictionResults, cfg: CohortConfig
                  ) -> dict[str, tuple[pd.DataFrame, str]]:
    """Every display table of the report with its caption.

    Parameters
    ----------
    frames, prepost, roc, predictions
        The results of the cohort analysis.
    cfg : CohortConfig

    Returns
    -------
    dict
        Table name (``summary``, ``prepost``, ``roc``, ``delong``, ``predictions``,
        ``lead_time``, ``quality``) -> (display table, caption).
    """
    summary = cohort_summary(frames.cohort, frames.predictors, frames.changes, cfg,
                             cfg.prepost_parameters)
    return {
        "summary": (summary, "Cohort summary by endpoint group"),
        "prepost": (display_prepost(prepost.paired, prepost.between),
                    "Change from baseline by endpoint group: median [IQR] percent change, "
                    "Wilcoxon signed-rank p within groups, Mann-Whitney p between groups "
                    "with Holm and Benjamini-Hochberg (BH) adjusted p (family: every "
                    "session x parameter of the endpoint in this table)"),
        "roc": (display_roc(roc.roc),
                "ROC analysis per endpoint and predictor: AUC with DeLong and bootstrap "
                "95% CIs; sensitivity, specificity, PPV, NPV (Wilson 95% CIs) at the "
                "Youden cut-off chosen on the whole cohort (apparent, optimistic)"),
        "delong": (display_delong(roc.delong),
                   "DeLong test of paired AUCs, with Holm and Benjamini-Hochberg (BH) "
                   "adjusted p (family: every comparison of the endpoint in this table)"),
        "predictions": (display_predictions(predictions.summary),
                        "Predictions: fixed rules, leave-one-patient-out Youden cut-offs "
                        "and logistic models (lesion and patient level, Wilson 95% CIs)"),
        "lead_time": (display_lead(predictions.lead_summary),
                      "Lead time of the DCE-based call before the event on conventional "
                      "MRI (days)"),
        "quality": (display_quality(frames.cohort, cfg),
                    "Quality per session: T10 source, AIF source and QC, failed fits and "
                    "QC flags of the lesions"),
    }


def render_report_tables(tables: dict[str, tuple[pd.DataFrame, str]], frames: CohortFrames,
                         cfg: CohortConfig, *, sessions_note: str = "") -> dict[str, str]:
    """Markdown, LaTeX and HTML text of each table of :func:`report_tables`.

    Every table has a footnote with the rows excluded by ``cohort.exclude_flags``; the
    summary and quality tables also explain each quality flag code; the HTML tables
    carry the :data:`TABLE_NOTES` too. ``sessions_note`` (sessions analysed and excluded
    after errors, :func:`dce.cohort.sessions.analysed_note`; empty when none is) opens
    every footnote.

    Returns
    -------
    dict
        ``<name>_md``, ``<name>_tex``, ``<name>_html`` -> text.
    """
    qc_legend = quality_note(frames.cohort, frames.changes, cfg, legend=True)
    qc_count = quality_note(frames.cohort, frames.changes, cfg, legend=False)
    out = {}
    for name, (df, caption) in tables.items():
        qc = qc_legend if name in ("summary", "quality") else qc_count
        qc = " ".join(n for n in (sessions_note, qc) if n)
        note = " ".join(n for n in (TABLE_NOTES.get(name), qc) if n)
        out[f"{name}_md"] = to_markdown(df, caption=caption, note=qc)
        out[f"{name}_tex"] = to_latex(df, caption=caption, label=f"tab:{name}", note=qc)
        out[f"{name}_html"] = to_html(df, caption=caption, note=note)
    return out


# ------------------------------------------------- multiplicity and effect-size labels
# (issue 15, build item 4: Holm / Benjamini-Hochberg columns; dce.cohort.diagnostic)

#: Display names of the adjusted p-value and effect-size columns of the test tables.
MULTIPLICITY_LABELS = {
    "p_holm": "p (Holm)",
    "p_bh": "p (BH)",
    "p_family": "family of the adjustment",
    "rank_biserial": "rank-biserial r",
}
