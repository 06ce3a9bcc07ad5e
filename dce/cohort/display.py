"""Display tables of the cohort analysis: formatted cells for the report.

Every ``display_*`` function turns a result table (:mod:`dce.cohort.analysis`) into a
table of display strings such as ``"0.91 (0.78–1.00)"`` (:mod:`dce.viz.tables` renders
them as Markdown, LaTeX or HTML); :func:`report_tables` gives every table of the
``cohort_report_tables`` rule with its caption and footnotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dce import quality
from dce.registry import MAPS
from dce.viz.quantities import QUANTITIES, Quantity, quantity
from dce.viz.tables import (
    fmt_ci,
    fmt_median_iqr,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_range,
    is_missing,
    to_html,
    to_latex,
    to_markdown,
)

if TYPE_CHECKING:       # the analysis modules import this one (labels): no cycle at run time
    from dce.cohort.analysis import PredictionResults, PrePostResults, RocResults
    from dce.cohort.config import CohortConfig
    from dce.cohort.frames import CohortFrames

__all__ = [
    "FORBIDDEN_RAW",
    "MULTIPLICITY_LABELS",
    "QUANTITIES",
    "STATISTICS",
    "TABLE_NOTES",
    "ColumnName",
    "Quantity",
    "cohort_summary",
    "column_label",
    "display_delong",
    "display_lead",
    "display_predictions",
    "display_prepost",
    "display_quality",
    "display_roc",
    "display_scale",
    "fmt_value",
    "group_label",
    "parse_column",
    "predictor_label",
    "quality_note",
    "quantity",
    "render_report_tables",
    "report_tables",
    "session_phrase",
]

# --------------------------------------------------------------------------- naming
#
# The one display-naming layer: table columns are machine names built from a scheme
#   <map column>_<statistic>[_change | _pct_change]      (ROI statistics, their changes)
# e.g. ``vp_mean``, ``ktrans_per_min_p95_pct_change``, ``iauc_60s_mean``, plus a few
# fixed names (``days_from_rt``, ``tic_type``, ``p_holm``, ...). Every figure, display
# table and the report shows them through :func:`column_label` (and predictors through
# :func:`predictor_label`), numbers through :func:`fmt_value`. Machine TSVs keep the
# machine names. The display quantities of the map columns (:data:`QUANTITIES`,
# :func:`quantity`) live in :mod:`dce.viz.quantities` (no pandas).

#: Statistic suffixes of the ROI tables (:func:`dce.roi.roi_statistics`) -> words
#: (``mean`` is the default summary and is not spelt out).
STATISTICS: dict[str, str] = {
    "mean": "", "median": "median", "sd": "SD", "p5": "5th percentile",
    "p25": "25th percentile", "p75": "75th percentile", "p95": "95th percentile",
    "max": "maximum", "min": "minimum", "n_finite": "voxels with a value",
}

#: Fixed column names (not built from a map) -> label.
_FIXED: dict[str, str] = {
    "days_from_rt": "days from RT",
    "tic_type": "TIC type",
    "tic": "TIC type",
    "volume_mm3": "volume (mm³)",
    "n_voxels": "voxels",
    "n_fit_failed": "voxels with failed fits",
    "fit_failed_fraction": "failed-fit fraction",
    "rslope_max": "RSlope max",
    "qc_flags": "QC flags",
    "p": "p", "p_holm": "p (Holm)", "p_bh": "p (Benjamini–Hochberg)",
    "p_adj": "p (adjusted)", "q": "q (Benjamini–Hochberg)",
    "auc": "AUC", "auc_lo": "AUC, lower 95% limit", "auc_hi": "AUC, upper 95% limit",
    "n": "n", "n_pos": "n positive", "n_neg": "n negative",
    "sensitivity": "sensitivity", "specificity": "specificity", "ppv": "PPV", "npv": "NPV",
    "effect_size": "effect size", "rank_biserial": "rank-biserial r",
    "cliffs_delta": "Cliff's δ", "hodges_lehmann": "Hodges–Lehmann shift",
    "youden_threshold": "Youden cut-off", "threshold": "cut-off",
    "level": "vertebral level", "label": "lesion", "roi": "ROI",
    "median_pct_change": "median change (%)", "q25_pct_change": "25th percentile change (%)",
    "q75_pct_change": "75th percentile change (%)",
}

#: Substrings that betray a raw column name in a figure or display table (tests).
FORBIDDEN_RAW: tuple[str, ...] = (
    "_mean", "_median", "_per_min", "pct_change", "_pct", "_p95", "_p5", "_max", "_sd",
    "_s_", "iauc_", "days_from_rt", "tic_type", "p_holm", "p_bh", "_change", "e+0", "e-0",
    "per_s", "_mM", "=<", "%Δ",
)


#: PRM fraction columns of the cohort table (:mod:`dce.cohort.frames`, ``prm_pos_vp_fraction``).
_PRM_COLUMN = re.compile(r"prm_(pos|zero|neg)_([a-z0-9]+)_fraction")
_PRM_CLASS = {"pos": "PRM+", "zero": "PRM0", "neg": "PRM\u2212"}


def _prm_label(column: str, session: str | None) -> str | None:
    """``prm_pos_vp_fraction`` -> ``"PRM+ of Vp (% of lesion voxels)"``; None for other
    columns."""
    m = _PRM_COLUMN.fullmatch(column)
    if not m:
        return None
    q = next((quantity(x.column) for x in MAPS if x.name == m.group(2)), None)
    symbol = q.symbol if q is not None else m.group(2)
    when = f" at {session_phrase(session)}" if session else ""
    return f"{_PRM_CLASS[m.group(1)]} of {symbol}{when} (% of lesion voxels)"


@dataclass(frozen=True)
class ColumnName:
    """A column name taken apart: map column, statistic, change kind (``""``,
    ``change`` or ``pct_change``)."""

    map_column: str
    statistic: str
    change: str = ""

    @property
    def quantity(self) -> Quantity:
        q = quantity(self.map_column)
        assert q is not None
        return q


_MAP_COLUMNS = sorted({m.column for m in MAPS} | set(QUANTITIES), key=len, reverse=True)


def parse_column(column: str) -> ColumnName | None:
    """Take a statistic column apart (``vp_p95_pct_change`` -> ``vp``, ``p95``,
    ``pct_change``); a bare map column (``vp``) has the statistic ``""``. None when
    the name does not follow the scheme."""
    change = ""
    base = column
    for suffix in ("_pct_change", "_change"):
        if base.endswith(suffix):
            base, change = base[: -len(suffix)], suffix[1:]
            break
    m = re.match(r"(iauc_\d+(?:\.\d+)?s)(?:_(.+))?$", base)
    if m:
        mc, stat = m.group(1), m.group(2) or ""
    else:
        mc = next((c for c in _MAP_COLUMNS if base == c or base.startswith(c + "_")), "")
        if not mc:
            return None
        stat = base[len(mc) + 1:]
    if stat and stat not in STATISTICS:
        return None
    return ColumnName(mc, stat, change)


def session_phrase(session: str) -> str:
    """``first`` -> ``"first follow-up"``, ``baseline``, ``last`` -> ``"last
    follow-up"``, a session name -> ``"session <name>"``."""
    return {"first": "first follow-up", "last": "last follow-up",
            "baseline": "baseline"}.get(session, f"session {session}")


def column_label(column: str, *, session: str | None = None) -> str:
    """The display label with units of a column name.

    ``vp_mean`` -> ``"Vp (%)"``, ``ktrans_per_min_p95`` -> ``"Ktrans 95th percentile
    (min⁻¹)"``, ``vp_mean_pct_change`` -> ``"ΔVp from baseline (%)"``,
    ``vp_mean_change`` -> ``"ΔVp from baseline (percentage points)"``, ``iauc_60s_mean``
    -> ``"iAUC60 (a.u.·s)"``, ``p_holm`` -> ``"p (Holm)"``. ``session``
    (:func:`session_phrase`) places the value in time: ``"ΔVp from baseline to first
    follow-up (%)"``, ``"kep at last follow-up (min⁻¹)"``. Unknown names are returned
    with underscores as spaces.
    """
    prm = _prm_label(column, session)
    if prm is not None:
        return prm
    col = parse_column(column)
    if col is None:
        return _FIXED.get(column, column.replace("_", " "))
    q = col.quantity
    if col.statistic == "n_finite":
        return f"voxels with a {q.symbol} value"
    name = q.symbol + (f" {STATISTICS[col.statistic]}" if STATISTICS.get(col.statistic)
                       else "")
    if col.change:
        unit = "%" if col.change == "pct_change" else (q.change_unit or q.unit)
        when = " from baseline" + (f" to {session_phrase(session)}" if session and
                                   session != "baseline" else "")
        return f"Δ{name}{when}" + (f" ({unit})" if unit else "")
    when = f" at {session_phrase(session)}" if session else ""
    return f"{name}{when}" + (f" ({q.unit})" if q.unit else "")


def group_label(group: str) -> str:
    """An endpoint group for print: ``recurrence=1`` -> ``"recurrence: yes"``,
    ``recurrence=0`` -> ``"recurrence: no"``; other names unchanged."""
    m = re.fullmatch(r"(.+)=([01])", group)
    return f"{m.group(1)}: {'yes' if m.group(2) == '1' else 'no'}" if m else group


def predictor_label(parameter: str, kind: str, session: str) -> str:
    """Label of a cohort predictor: the ROI statistic ``parameter`` as measured
    (``kind`` ``value``) or its change (``change``, ``pct_change``) at ``session``."""
    suffix = {"value": "", "change": "_change", "pct_change": "_pct_change"}[kind]
    return column_label(parameter + suffix, session=session)


def fmt_value(column: str, v: Any) -> str:
    """A value of ``column`` for print: scaled to display units, the quantity's fixed
    decimals (percent changes: 1), proper minus sign; an en dash when missing."""
    if _PRM_COLUMN.fullmatch(column) and not is_missing(v):
        return fmt_num(100.0 * float(v), fixed=0)
    col = parse_column(column)
    if col is None or is_missing(v):
        return fmt_num(v)
    q = col.quantity
    if col.change == "pct_change":
        return fmt_num(v, fixed=1)
    dec = q.decimals if col.statistic != "n_finite" else 0
    return fmt_num(float(v) * (1.0 if col.statistic == "n_finite" else q.scale), fixed=dec)


def display_scale(column: str) -> float:
    """Factor from machine to display units of ``column`` (1 for percent changes; 100
    for the PRM fractions)."""
    if _PRM_COLUMN.fullmatch(column):
        return 100.0
    col = parse_column(column)
    if col is None or col.change == "pct_change" or col.statistic == "n_finite":
        return 1.0
    return col.quantity.scale


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
    (median [IQR], display units). Cells are display strings."""
    from dce.cohort.frames import baseline_rows, endpoint_groups

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
            col["days from RT at follow-up, median (range)"] = _median_range(d)
            db = b["days_from_rt"].dropna()
            col["days from RT at baseline, median (range)"] = _median_range(db)
            if e.day_column and e.day_column in frame:
                ev = frame.loc[sel, e.day_column].dropna()
                col[f"{column_label(e.day_column)}, median (range)"] = _median_range(ev)
            for par in params:
                v = pd.to_numeric(b[par], errors="coerce").dropna() if par in b else \
                    pd.Series(dtype=float)
                q = np.quantile(v, [0.5, 0.25, 0.75]) if len(v) else [np.nan] * 3
                col[f"{column_label(par, session='baseline')}, median [IQR]"] = \
                    _median_iqr(par, *q)
            if "tic_type" in b:
                counts = b["tic_type"].fillna("?").replace("", "?").value_counts().sort_index()
                col["baseline TIC types"] = ", ".join(f"{k} {v}" for k, v in counts.items())
            if "qc_flags" in c:
                col["lesion sessions with QC flags"] = _flag_cell(c)
                col["follow-ups with QC flags (either session)"] = _flag_cell(ch)
                col["excluded (cohort.exclude_flags): lesion sessions / follow-ups"] = (
                    f"{int(quality.excluded(c, cfg.exclude_flags).sum())} / "
                    f"{int(quality.excluded(ch, cfg.exclude_flags).sum())}")
            cols[group_label(gname)] = col
        names = list(next(iter(cols.values())).keys())
        for nm in names:
            row = {"endpoint": e.name, "characteristic": nm}
            row.update({g: cols[g].get(nm, "–") for g in cols})
            out.append(row)
    df = pd.DataFrame(out)
    return df


def _median_range(v: pd.Series) -> str:
    """``"median (min–max)"`` of days; an en dash when empty."""
    if not len(v):
        return "–"
    return f"{fmt_num(v.median())} ({fmt_range(v.min(), v.max())})"


def _median_iqr(column: str, med: Any, q25: Any, q75: Any) -> str:
    """``"median [q25, q75]"`` of ``column`` in display units and decimals."""
    if is_missing(med):
        return "–"
    return f"{fmt_value(column, med)} [{fmt_value(column, q25)}, {fmt_value(column, q75)}]"


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


def display_roc(roc: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """The ROC table with formatted cells (for Markdown, LaTeX, HTML); ``columns``:
    predictor name -> its column (the Youden cut-off is then shown in display units)."""
    rows = []
    for r in _records(roc):
        col = (columns or {}).get(str(r.predictor), "")
        rows.append({
            "endpoint": r.endpoint, "predictor": r.label,
            "n (pos/neg)": f"{r.n} ({r.n_pos}/{r.n_neg})",
            "direction": r.direction if isinstance(r.direction, str) else "–",
            "AUC (DeLong 95% CI)": fmt_ci(r.auc, r.delong_lo, r.delong_hi),
            "bootstrap 95% CI": "–" if is_missing(r.boot_lo) else
            fmt_range(r.boot_lo, r.boot_hi, fixed=2),
            "Youden cut-off": fmt_value(col, r.youden_threshold) if col else
            fmt_num(r.youden_threshold),
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


def display_delong(delong: pd.DataFrame, labels: dict[str, str] | None = None
                   ) -> pd.DataFrame:
    """The DeLong comparisons (:class:`dce.cohort.analysis.DeLongRow` columns) with
    formatted cells; ``labels``: predictor name -> display label."""
    rows = []
    lab = labels or {}
    for r in _records(delong):
        a, b = (lab.get(str(x), str(x)) for x in (r.predictor_a, r.predictor_b))
        rows.append({"endpoint": r.endpoint, "comparison": f"{a} vs {b}",
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
        row: dict[str, Any] = {"endpoint": ep, "session": session_phrase(str(ses)),
                               "parameter": column_label(str(par))}
        for r in g.itertuples():
            grp = group_label(str(r.group))
            row[f"{grp}, n"] = fmt_num(r.n)
            row[f"{grp}, change (%), median [IQR]"] = fmt_median_iqr(
                r.median_pct_change, r.q25_pct_change, r.q75_pct_change, fixed=1)
            row[f"{grp}, Wilcoxon p"] = fmt_p(r.p)
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
                         f"{fmt_num(r.median_lead_days)} "
                         f"({fmt_range(r.min_lead_days, r.max_lead_days)})"})
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
        "roc": (display_roc(roc.roc, {p.name: p.column for p in cfg.predictors}),
                "ROC analysis per endpoint and predictor: AUC with DeLong and bootstrap "
                "95% CIs; sensitivity, specificity, PPV, NPV (Wilson 95% CIs) at the "
                "Youden cut-off chosen on the whole cohort (apparent, optimistic)"),
        "delong": (display_delong(roc.delong, {p.name: p.title for p in cfg.predictors}),
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
