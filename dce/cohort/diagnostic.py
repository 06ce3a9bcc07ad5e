"""Cross-sectional (diagnostic) comparison of the endpoint groups: group summaries,
Mann-Whitney U with the rank-biserial effect size, and the performance of fixed
(published) cut-offs.

An endpoint is either a 0/1 column of the lesion sheet (e.g. ``recurrence``) or a
contrast of groups of a categorical column (e.g. ``lesion_class`` metastasis vs atypical
hemangioma; :class:`dce.cohort.config.Endpoint`); the predictors are ROI statistics as
measured at one session (``kind: value``) or changes from baseline. The AUC with its
DeLong and bootstrap CIs is in the ROC table (:func:`dce.cohort.analysis.roc_analysis`);
this module adds what a diagnostic study reports next to it:

``groups`` (:class:`GroupRow` columns)
    Per endpoint and predictor: n, median and quartiles in each group; the two-sided
    Mann-Whitney U test (scipy) of positive vs negative group; the rank-biserial
    correlation ``r = 2 U / (n_pos n_neg) - 1``, which equals Cliff's delta
    ``P(pos > neg) - P(pos < neg)`` (+1: every positive lesion above every negative
    one; 0: complete overlap); and the Holm and Benjamini-Hochberg adjusted p-values in
    the family of the endpoint's predictors (:func:`dce.cohort.analysis.adjust_table`).
``rules`` (:class:`RuleRow` columns)
    Per endpoint and fixed cut-off rule (a published cut-off with its ``source``): the
    2 x 2 table of the lesions and the sensitivity, specificity, PPV, NPV and accuracy
    with Wilson CIs (``statsmodels.stats.proportion.proportion_confint(method="wilson")``,
    :func:`dce.stats.diagnostic_table`), next to the published performance as quoted.

Nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dce import stats
from dce.cohort.analysis import _set_accuracy, adjust_table, quiet, rows_frame
from dce.cohort.config import CohortConfig, Endpoint
from dce.cohort.display import MULTIPLICITY_LABELS as L
from dce.cohort.display import _accuracy_cells, _prop, _records
from dce.viz.tables import fmt_median_iqr, fmt_num, fmt_p, is_missing

__all__ = [
    "CAPTIONS",
    "NOTES",
    "DiagnosticResults",
    "GroupRow",
    "RuleRow",
    "diagnostic",
    "display_groups",
    "display_rules",
    "group_names",
]

_NAN = float("nan")


@dataclass
class GroupRow:
    """One endpoint x predictor of ``diagnostic_groups.tsv``."""

    endpoint: str
    predictor: str
    label: str
    group_pos: str
    group_neg: str
    n_pos: float = _NAN
    median_pos: float = _NAN
    q25_pos: float = _NAN
    q75_pos: float = _NAN
    n_neg: float = _NAN
    median_neg: float = _NAN
    q25_neg: float = _NAN
    q75_neg: float = _NAN
    mann_whitney_u: float = _NAN
    p: float = _NAN
    p_holm: float = _NAN
    p_bh: float = _NAN
    p_family: str | None = None
    rank_biserial: float = _NAN
    n_dropped: float = _NAN
    note: str | None = None


@dataclass
class RuleRow:
    """One endpoint x fixed cut-off of ``diagnostic_rules.tsv`` (lesion level)."""

    endpoint: str
    rule: str
    predictor: str
    direction: str
    threshold: float
    strict: bool
    source: str
    published: str
    n: float = _NAN
    n_dropped: float = _NAN
    tp: float = _NAN
    fp: float = _NAN
    tn: float = _NAN
    fn: float = _NAN
    sensitivity: float = _NAN
    sensitivity_lo: float = _NAN
    sensitivity_hi: float = _NAN
    specificity: float = _NAN
    specificity_lo: float = _NAN
    specificity_hi: float = _NAN
    ppv: float = _NAN
    ppv_lo: float = _NAN
    ppv_hi: float = _NAN
    npv: float = _NAN
    npv_lo: float = _NAN
    npv_hi: float = _NAN
    accuracy: float = _NAN
    accuracy_lo: float = _NAN
    accuracy_hi: float = _NAN
    note: str | None = None


@dataclass(frozen=True)
class DiagnosticResults:
    """``groups`` (:class:`GroupRow` columns) and ``rules`` (:class:`RuleRow` columns)."""

    groups: pd.DataFrame
    rules: pd.DataFrame


def group_names(e: Endpoint) -> tuple[str, str]:
    """Display names of the positive and negative group of an endpoint."""
    if e.column:
        return ("/".join(e.positive).replace("_", " "),
                "/".join(e.negative).replace("_", " ") if e.negative else "other")
    return f"{e.title}: yes", f"{e.title}: no"


def _quartiles(v: np.ndarray) -> tuple[float, float, float]:
    if v.size == 0:
        return _NAN, _NAN, _NAN
    q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return float(med), float(q25), float(q75)


def _called(x: np.ndarray, direction: str, threshold: float, strict: bool) -> np.ndarray:
    """1.0 / 0.0 calls of a fixed rule, NaN where the value is missing."""
    with np.errstate(invalid="ignore"):
        if direction == "higher":
            c = x > threshold if strict else x >= threshold
        else:
            c = x < threshold if strict else x <= threshold
    out = c.astype(float)
    out[np.isnan(x)] = np.nan
    return out


def diagnostic(frame: pd.DataFrame, cfg: CohortConfig) -> DiagnosticResults:
    """Group summaries, Mann-Whitney tests and fixed-rule performance per endpoint.

    Parameters
    ----------
    frame : DataFrame
        The predictor frame (:func:`dce.cohort.frames.predictor_frame`): one row per
        lesion with the endpoints and the predictors.
    cfg : CohortConfig
        Predictors compared: ``cfg.group_predictors`` (all when empty); rules:
        ``cfg.rules``.

    Returns
    -------
    DiagnosticResults
        See the module notes; a comparison that cannot be made (an empty group) has a
        ``note`` instead of numbers.
    """
    names = cfg.group_predictors or tuple(p.name for p in cfg.predictors)
    groups: list[GroupRow] = []
    rules: list[RuleRow] = []
    for e in cfg.endpoints:
        y = frame[e.name].to_numpy(dtype=np.float64)
        gpos, gneg = group_names(e)
        for name in names:
            p = cfg.predictor(name)
            x = frame[p.name].to_numpy(dtype=np.float64)
            row = GroupRow(endpoint=e.name, predictor=p.name, label=p.title,
                           group_pos=gpos, group_neg=gneg)
            groups.append(row)
            a, b = x[y == 1], x[y == 0]
            row.n_dropped = float(np.count_nonzero(np.isnan(a)) + np.count_nonzero(np.isnan(b)))
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            row.n_pos, row.n_neg = float(a.size), float(b.size)
            row.median_pos, row.q25_pos, row.q75_pos = _quartiles(a)
            row.median_neg, row.q25_neg, row.q75_neg = _quartiles(b)
            try:
                bg = quiet(stats.between_groups, a, b, name=f"{e.name} ~ {p.name}")
            except ValueError as exc:
                row.note = str(exc)
                continue
            row.mann_whitney_u, row.p, row.rank_biserial = bg.u, bg.p, bg.rank_biserial
        for r in cfg.rules:
            p = cfg.predictor(r.predictor)
            x = frame[p.name].to_numpy(dtype=np.float64)
            rrow = RuleRow(endpoint=e.name, rule=r.name, predictor=p.name,
                           direction=r.direction, threshold=r.threshold, strict=r.strict,
                           source=r.source, published=r.published)
            rules.append(rrow)
            tab = quiet(stats.diagnostic_table, _called(x, r.direction, r.threshold,
                                                        r.strict), y, alpha=cfg.alpha,
                        endpoint=e.name)
            rrow.n = float(tab.tp + tab.fp + tab.tn + tab.fn)
            rrow.n_dropped = float(tab.n_dropped)
            _set_accuracy(rrow, tab, ("sensitivity", "specificity", "ppv", "npv", "accuracy"))
            if tab.tp + tab.fn == 0 or tab.tn + tab.fp == 0:
                rrow.note = "a single class: sensitivity or specificity undefined"
    gdf = adjust_table(rows_frame(groups, GroupRow), ["endpoint"],
                       "Mann-Whitney tests of endpoint {endpoint}: every predictor of this "
                       "table", alpha=cfg.alpha)
    return DiagnosticResults(groups=gdf, rules=rows_frame(rules, RuleRow))


# --------------------------------------------------------------------------- display

#: Captions of the diagnostic tables (``groups``, ``rules``).
CAPTIONS = {
    "groups": "Group comparison per endpoint and predictor: median [IQR] in each group, "
              "two-sided Mann-Whitney U test with Holm and Benjamini-Hochberg adjusted "
              "p-values, rank-biserial correlation (= Cliff's delta)",
    "rules": "Published (fixed) cut-offs applied to this cohort, lesion level: "
             "sensitivity, specificity, PPV, NPV and accuracy with Wilson 95% CIs, next to "
             "the published performance",
}

#: Notes under the diagnostic tables.
NOTES = {
    "groups": "Rank-biserial r = 2U/(n1 n2) − 1 = P(X1 > X2) − P(X1 < X2) (Cliff's delta), "
              "group 1 = the first group named; +1 = no overlap, 0 = complete overlap. "
              "Adjusted p-values: Holm (family-wise error) and Benjamini-Hochberg (false "
              "discovery rate), statsmodels multipletests; family = every predictor of "
              "the endpoint in this table.",
    "rules": "A cut-off published on another cohort, scanner and software applied "
             "unchanged: expect lower accuracy than published where the parameter "
             "scale differs (e.g. Vp in % vs fraction, model or AIF choices).",
}


def _median_iqr(n: Any, med: Any, q25: Any, q75: Any) -> str:
    if is_missing(n) or int(n) == 0:
        return "–"
    return f"{fmt_median_iqr(med, q25, q75)} (n = {int(n)})"


def display_groups(groups: pd.DataFrame) -> pd.DataFrame:
    """The group comparison table (:class:`GroupRow` columns) with formatted cells."""
    rows = []
    for r in _records(groups):
        rows.append({
            "endpoint": r.endpoint, "predictor": r.label,
            "group 1": r.group_pos,
            "group 1: median [IQR]": _median_iqr(r.n_pos, r.median_pos, r.q25_pos,
                                                 r.q75_pos),
            "group 2": r.group_neg,
            "group 2: median [IQR]": _median_iqr(r.n_neg, r.median_neg, r.q25_neg,
                                                 r.q75_neg),
            "Mann-Whitney U": fmt_num(r.mann_whitney_u),
            "p": fmt_p(r.p), L["p_holm"]: fmt_p(r.p_holm), L["p_bh"]: fmt_p(r.p_bh),
            L["rank_biserial"]: fmt_num(r.rank_biserial, fixed=2),
        })
    return pd.DataFrame(rows)


def display_rules(rules: pd.DataFrame) -> pd.DataFrame:
    """The fixed cut-off table (:class:`RuleRow` columns) with formatted cells."""
    rows = []
    for r in _records(rules):
        op = {("higher", False): "≥", ("higher", True): ">", ("lower", False): "≤",
              ("lower", True): "<"}[(r.direction, bool(r.strict))]
        rows.append({
            "endpoint": r.endpoint, "cut-off": r.rule,
            "rule": f"{r.predictor} {op} {fmt_num(r.threshold)}",
            "n": fmt_num(r.n),
            **_accuracy_cells(r),
            "accuracy": _prop(r.tp + r.tn, r.n, r.accuracy, r.accuracy_lo, r.accuracy_hi),
            "published": r.published if isinstance(r.published, str) and r.published
            else "–",
            "source": r.source if isinstance(r.source, str) and r.source else "–",
        })
    cols = ["endpoint", "cut-off", "rule", "n", "sensitivity", "specificity", "PPV", "NPV",
            "accuracy", "published", "source"]
    return pd.DataFrame(rows, columns=cols)
