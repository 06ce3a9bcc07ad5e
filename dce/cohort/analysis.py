"""Analyses of the cohort: ROC per endpoint and predictor, predictions (fixed rules,
leave-one-patient-out cut-offs and logistic models, lead times) and pre/post statistics.

The statistics themselves are those of :mod:`dce.stats` and :mod:`dce.response`; this
module turns the configured endpoints, predictors and rules (:mod:`dce.cohort.config`)
into calls of those functions on the cohort frames (:mod:`dce.cohort.frames`) and
collects the results in result objects (:class:`RocResults`,
:class:`PredictionResults`, :class:`PrePostResults`): dataclasses of tables, one field
per file of the workflow (:func:`dce.io.results.write_results` writes them,
:func:`dce.io.results.read_results` reads them back). The columns of the tables of
fixed shape are the fields of their row dataclasses (:func:`columns`), in order.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dce import quality, response, stats
from dce.cohort.config import CohortConfig, Endpoint
from dce.cohort.frames import CohortFrames, endpoint_groups, predictor_long

__all__ = [
    "BetweenRow",
    "CurvePoint",
    "DeLongRow",
    "LeadSummaryRow",
    "PairedRow",
    "PrePostResults",
    "PredictionResults",
    "PredictionSummaryRow",
    "RocResults",
    "RocRow",
    "adjust_table",
    "columns",
    "lead_summary",
    "model_scores",
    "predictions",
    "prepost",
    "quiet",
    "roc_analysis",
    "rows_frame",
]

_NAN = math.nan


def columns(row_type: type) -> list[str]:
    """Column names of a table of ``row_type`` rows: the dataclass's field names."""
    return [f.name for f in dataclasses.fields(row_type)]


def rows_frame(rows: Sequence[Any], row_type: type) -> pd.DataFrame:
    """A table with one row per dataclass instance and the columns of ``row_type``."""
    cols = columns(row_type)
    return pd.DataFrame([[getattr(r, c) for c in cols] for r in rows], columns=cols)


def adjust_table(df: pd.DataFrame, by: Sequence[str], family: str, *,
                 p: str = "p", alpha: float = 0.05) -> pd.DataFrame:
    """``df`` with Holm (``p_holm``) and Benjamini-Hochberg (``p_bh``) adjusted p-values
    (:func:`dce.stats.adjust_pvalues`) and the family they are adjusted in
    (``p_family``).

    A family is the set of rows with the same values of the ``by`` columns (e.g. one
    endpoint); rows without a p-value are not members. ``family`` describes it, formatted
    with the row's ``by`` values (e.g. ``"endpoint {endpoint}: every predictor"``).
    """
    out = df.copy()
    holm = np.full(len(out), np.nan)
    bh = np.full(len(out), np.nan)
    fam = [""] * len(out)
    if len(out):
        pv = pd.to_numeric(out[p], errors="coerce").to_numpy(dtype=np.float64)
        keys = out[list(by)].astype(str).agg("\x1f".join, axis=1) if by else \
            pd.Series("", index=out.index)
        for key in dict.fromkeys(keys):
            sel = (keys == key).to_numpy()
            h, b = stats.adjust_pvalues(pv[sel], alpha)
            holm[sel], bh[sel] = h, b
            n = int(np.count_nonzero(~np.isnan(pv[sel])))
            vals = dict(zip(by, key.split("\x1f"), strict=True)) if by else {}
            text = f"{family.format(**vals)} ({n} test{'s' if n != 1 else ''})"
            for i in np.flatnonzero(sel):
                fam[i] = text if not np.isnan(pv[i]) else ""
    pos = list(out.columns).index(p) + 1
    for name, vals_ in (("p_family", fam), ("p_bh", bh), ("p_holm", holm)):
        if name in out.columns:
            out[name] = vals_
        else:
            out.insert(pos, name, vals_)
    return out


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with dce.stats' DroppedValuesWarning silenced (the counts are kept in
    the results)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DroppedValuesWarning)
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- ROC


@dataclass
class RocRow:
    """One endpoint x predictor of ``roc.tsv``: counts, direction, AUC with DeLong and
    bootstrap CIs, the Youden cut-off (apparent) and the accuracy at it (Wilson CIs);
    ``note`` says why a row has no AUC."""

    endpoint: str
    predictor: str
    label: str
    kind: str
    n: int
    n_pos: int
    n_neg: int
    n_dropped: int
    direction: str | None = None
    auc: float = _NAN
    auc_se: float = _NAN
    delong_lo: float = _NAN
    delong_hi: float = _NAN
    boot_lo: float = _NAN
    boot_hi: float = _NAN
    n_boot: float = _NAN
    youden_threshold: float = _NAN
    youden_j: float = _NAN
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
    note: str | None = None


@dataclass
class CurvePoint:
    """One point of ``roc_curves.tsv``: of the empirical curve (``kind`` ``curve``:
    ``fpr, tpr, threshold``) or of the bootstrap band (``band``: ``fpr, tpr_lo,
    tpr_hi``)."""

    endpoint: str
    predictor: str
    kind: str
    fpr: float
    tpr: float = _NAN
    threshold: float = _NAN
    tpr_lo: float = _NAN
    tpr_hi: float = _NAN


@dataclass
class DeLongRow:
    """One configured DeLong comparison of two predictors' AUCs (``delong.tsv``; the
    adjusted ``p_holm, p_bh`` in the family ``p_family``: :func:`adjust_table`)."""

    endpoint: str
    predictor_a: str
    predictor_b: str
    n_pos: float = _NAN
    n_neg: float = _NAN
    n_dropped: float = _NAN
    direction_a: str | None = None
    direction_b: str | None = None
    auc_a: float = _NAN
    auc_b: float = _NAN
    diff: float = _NAN
    diff_lo: float = _NAN
    diff_hi: float = _NAN
    se_diff: float = _NAN
    z: float = _NAN
    p: float = _NAN
    p_holm: float = _NAN
    p_bh: float = _NAN
    p_family: str | None = None
    corr: float = _NAN
    note: str | None = None


@dataclass(frozen=True)
class RocResults:
    """ROC of every endpoint x predictor: ``roc`` (:class:`RocRow` columns), ``curves``
    (:class:`CurvePoint` columns) and ``delong`` (:class:`DeLongRow` columns)."""

    roc: pd.DataFrame
    curves: pd.DataFrame
    delong: pd.DataFrame


def _xy(frame: pd.DataFrame, col: str, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    return (frame[col].to_numpy(dtype=np.float64),
            frame[endpoint].to_numpy(dtype=np.float64))


def _set_accuracy(row: Any, tab: stats.DiagnosticTable, names: Sequence[str]) -> None:
    """Copy the 2 x 2 counts and each proportion of ``names`` (with ``_lo``/``_hi``)."""
    row.tp, row.fp, row.tn, row.fn = tab.tp, tab.fp, tab.tn, tab.fn
    for mname in names:
        prop = getattr(tab, mname)
        setattr(row, mname, prop.estimate)
        setattr(row, f"{mname}_lo", prop.lo)
        setattr(row, f"{mname}_hi", prop.hi)


def _curve_points(ep: str, name: str, roc: stats.RocCurve,
                  band: stats.RocBand) -> list[pd.DataFrame]:
    return [pd.DataFrame({"endpoint": ep, "predictor": name, "kind": "curve",
                          "fpr": roc.fpr, "tpr": roc.tpr, "threshold": roc.thresholds}),
            pd.DataFrame({"endpoint": ep, "predictor": name, "kind": "band",
                          "fpr": band.fpr, "tpr_lo": band.tpr_lo, "tpr_hi": band.tpr_hi})]


def roc_analysis(frame: pd.DataFrame, cfg: CohortConfig, *,
                 extra: Mapping[tuple[str, str], pd.DataFrame] | None = None
                 ) -> RocResults:
    """ROC of every endpoint x predictor on the predictor frame.

    Parameters
    ----------
    frame : DataFrame
        The predictor frame (:func:`dce.cohort.frames.predictor_frame`).
    cfg : CohortConfig
    extra : mapping, optional
        ``(endpoint, name)`` -> a frame with columns ``score`` and ``label`` (e.g.
        out-of-fold logistic probabilities, :func:`model_scores`) analysed like a
        predictor with direction "higher".

    Returns
    -------
    RocResults
        ``roc``: per endpoint and predictor, counts, direction, AUC with DeLong and
        bootstrap CIs, the Youden cut-off (on the whole cohort: apparent, optimistic)
        and the sensitivity, specificity, PPV and NPV at it with Wilson CIs; ``note``
        says why a row has no AUC (single class, too few cases). ``curves``: the
        empirical ROC points and the bootstrap band (:func:`dce.stats.bootstrap_roc_band`,
        at most 2000 resamples) for the figures. ``delong``: the configured DeLong
        comparisons per endpoint.
    """
    rows, curves, tests = [], [], []
    a = cfg.alpha
    items: list[tuple[str, str, str, str, str, np.ndarray, np.ndarray]] = []
    for e in cfg.endpoints:
        for p in cfg.predictors:
            x, y = _xy(frame, p.name, e.name)
            items.append((e.name, p.name, p.title, p.kind, p.direction, x, y))
        for (ep, name), df in (extra or {}).items():
            if ep == e.name:
                items.append((ep, name, name, "model", "higher",
                              df["score"].to_numpy(dtype=float),
                              df["label"].to_numpy(dtype=float)))
    for ep, name, title, kind, direction, x, y in items:
        ok = ~(np.isnan(x) | np.isnan(y))
        row = RocRow(endpoint=ep, predictor=name, label=title, kind=kind, n=int(ok.sum()),
                     n_pos=int((y[ok] == 1).sum()), n_neg=int((y[ok] == 0).sum()),
                     n_dropped=int((~ok).sum()))
        rows.append(row)
        try:
            roc = quiet(stats.roc_curve, x, y, direction=direction, endpoint=ep)
        except ValueError as exc:
            row.note = str(exc)
            continue
        d = roc.direction
        row.direction, row.auc = d, roc.auc
        try:
            dl = quiet(stats.delong_ci, x, y, a, direction=d, endpoint=ep)
            row.auc_se, row.delong_lo, row.delong_hi = dl.se, dl.lo, dl.hi
        except ValueError as exc:
            row.note = str(exc)
        bt = quiet(stats.bootstrap_auc_ci, x, y, cfg.n_boot, cfg.seed, alpha=a,
                   direction=d, endpoint=ep)
        row.boot_lo, row.boot_hi, row.n_boot = bt.lo, bt.hi, bt.n_boot
        cut = quiet(stats.youden_cutoff, x, y, direction=d, endpoint=ep)
        row.youden_threshold, row.youden_j = cut.threshold, cut.youden_j
        called = cut.predict(np.where(ok, x, 0.0)).astype(float)
        called[~ok] = np.nan
        tab = quiet(stats.diagnostic_table, called, y, alpha=a, endpoint=ep)
        _set_accuracy(row, tab, ("sensitivity", "specificity", "ppv", "npv"))
        band = quiet(stats.bootstrap_roc_band, x, y, min(cfg.n_boot, 2000), cfg.seed,
                     alpha=a, direction=d, endpoint=ep)
        curves += _curve_points(ep, name, roc, band)
    for e in cfg.endpoints:
        for pa, pb in cfg.delong:
            A, B = cfg.predictor(pa), cfg.predictor(pb)
            xa, y = _xy(frame, A.name, e.name)
            xb, _ = _xy(frame, B.name, e.name)
            trow = DeLongRow(endpoint=e.name, predictor_a=pa, predictor_b=pb)
            tests.append(trow)
            try:
                t = quiet(stats.delong_test, xa, xb, y, direction_a=A.direction,
                          direction_b=B.direction, alpha=a, endpoint=e.name)
            except ValueError as exc:
                trow.note = str(exc)
                continue
            for f in ("n_pos", "n_neg", "n_dropped", "direction_a", "direction_b", "auc_a",
                      "auc_b", "diff", "se_diff", "z", "p", "corr"):
                setattr(trow, f, getattr(t, f))
            trow.diff_lo, trow.diff_hi = t.ci_diff
    curve_df = (pd.concat(curves, ignore_index=True).reindex(columns=columns(CurvePoint))
                if curves else pd.DataFrame(columns=columns(CurvePoint)))
    delong = adjust_table(rows_frame(tests, DeLongRow), ["endpoint"],
                          "DeLong comparisons of endpoint {endpoint} in this table",
                          alpha=a)
    return RocResults(roc=rows_frame(rows, RocRow), curves=curve_df, delong=delong)


# --------------------------------------------------------------------------- predictions


@dataclass
class PredictionSummaryRow:
    """Accuracy of one prediction model at lesion or patient level
    (``predictions_summary.tsv``; Wilson CIs); ``note`` says why a model was skipped."""

    endpoint: str
    method: str
    model: str
    level: str
    n: float = _NAN
    n_missing: float = _NAN
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
    auc: float = _NAN
    note: str | None = None


@dataclass
class LeadSummaryRow:
    """Lead times of one model (``lead_time_summary.tsv``, days)."""

    endpoint: str
    method: str
    model: str
    n_events: int
    n_called: int
    n_called_before: int
    median_lead_days: float
    mean_lead_days: float
    min_lead_days: float
    max_lead_days: float


@dataclass(frozen=True)
class PredictionResults:
    """Predictions of every model and endpoint.

    ``lesions`` / ``patients``: one row per lesion / patient and model with the call
    (``predicted``), the ``observed`` endpoint and the value or probability; ``folds``:
    the cut-off or model of each leave-one-patient-out fold; ``summary``
    (:class:`PredictionSummaryRow` columns); ``lead``: lead time per lesion with an
    event day; ``lead_summary`` (:class:`LeadSummaryRow` columns).
    """

    lesions: pd.DataFrame
    patients: pd.DataFrame
    folds: pd.DataFrame
    summary: pd.DataFrame
    lead: pd.DataFrame
    lead_summary: pd.DataFrame


def _summary_rows(pred: response.Predictions, endpoint: str, method: str, model: str,
                  alpha: float) -> list[PredictionSummaryRow]:
    out = []
    for level, df in (("lesion", pred.lesions), ("patient", pred.patients)):
        called = df["predicted"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        y = df[endpoint].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        tab = quiet(stats.diagnostic_table, called, y, alpha=alpha, endpoint=endpoint)
        row = PredictionSummaryRow(endpoint=endpoint, method=method, model=model, level=level,
                                   n=tab.tp + tab.fp + tab.tn + tab.fn,
                                   n_missing=tab.n_dropped, note="")
        _set_accuracy(row, tab, ("sensitivity", "specificity", "ppv", "npv", "accuracy"))
        prob_col = "probability" if level == "lesion" else "probability_max"
        if prob_col in df.columns:
            s = df[prob_col].to_numpy(dtype=np.float64)
            try:
                row.auc = quiet(stats.auc_mann_whitney, s, y, endpoint=endpoint)
            except ValueError:
                row.auc = np.nan
        out.append(row)
    return out


def _tidy(pred: response.Predictions, endpoint: str, method: str, model: str,
          value_col: str | None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    les = pred.lesions.copy()
    les = les.rename(columns={endpoint: "observed"})
    if value_col is not None and value_col in les.columns:
        les = les.rename(columns={value_col: "value"})
    les.insert(0, "model", model)
    les.insert(0, "method", method)
    les.insert(0, "endpoint", endpoint)
    pats = pred.patients.rename(columns={endpoint: "observed"})
    pats.insert(0, "model", model)
    pats.insert(0, "method", method)
    pats.insert(0, "endpoint", endpoint)
    folds = pred.folds.rename(columns={"method": "fit"})
    if len(folds):
        folds.insert(0, "model", model)
        folds.insert(0, "method", method)
        folds.insert(0, "endpoint", endpoint)
    return les, pats, folds


def _lead_rows(calls: pd.DataFrame, frame: pd.DataFrame, e: Endpoint, method: str,
               model: str) -> pd.DataFrame:
    """Lead time per lesion with a positive endpoint and a known event day."""
    assert e.day_column is not None
    first = response.first_positive_days(calls, pred_col="predicted")
    ev = frame[["subject", "lesion", e.name, e.day_column]]
    ev = ev[(ev[e.name] == 1) & ev[e.day_column].notna()]
    out = ev.merge(first, on=["subject", "lesion"], how="left")
    out = out.rename(columns={e.day_column: "event_day"}).drop(columns=[e.name])
    out["lead_time_days"] = response.lead_time_days(out["first_positive_day"],
                                                    out["event_day"])
    out.insert(0, "model", model)
    out.insert(0, "method", method)
    out.insert(0, "endpoint", e.name)
    return out


def _calls(values: pd.DataFrame, direction: str, threshold: float,
           strict: bool = False) -> pd.DataFrame:
    v = values["value"]
    if direction == "higher":
        c = v > threshold if strict else v >= threshold
    else:
        c = v < threshold if strict else v <= threshold
    out = values.copy()
    out["predicted"] = c.astype("boolean").mask(v.isna())
    return out


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    return (pd.concat(parts, ignore_index=True) if parts
            else pd.DataFrame(columns=["endpoint", "method", "model"]))


def predictions(frames: CohortFrames, cfg: CohortConfig, log: Any = None
                ) -> PredictionResults:
    """Fixed rules, LOPO Youden cut-offs and LOPO logistic models for every endpoint.

    Lead times (rules and cut-offs, over every follow-up session) are computed where the
    endpoint has a day column. A model that cannot be built (e.g. a training fold with
    a single class) is reported in the summary's ``note`` (and as a warning on ``log``,
    a :class:`logging.Logger`) and skipped.

    Parameters
    ----------
    frames : CohortFrames
    cfg : CohortConfig
    log : logging.Logger, optional

    Returns
    -------
    PredictionResults
    """
    frame, cohort, changes_df = frames.predictors, frames.cohort, frames.changes
    lesions: list[pd.DataFrame] = []
    patients: list[pd.DataFrame] = []
    folds_: list[pd.DataFrame] = []
    lead: list[pd.DataFrame] = []
    summary: list[PredictionSummaryRow] = []
    agg = cfg.aggregate

    def skipped(e: Endpoint, method: str, model: str, exc: Exception) -> None:
        if log is not None:
            log.warning("%s %s for %s skipped: %s", method, model, e.name, exc)
        summary.append(PredictionSummaryRow(endpoint=e.name, method=method, model=model,
                                            level="lesion", note=f"not computed: {exc}"))

    def collect(pred: response.Predictions, e: Endpoint, method: str, model: str,
                value_col: str | None) -> pd.DataFrame:
        les, pats, folds = _tidy(pred, e.name, method, model, value_col)
        lesions.append(les)
        patients.append(pats)
        if method != "rule":
            folds_.append(folds)
        summary.extend(_summary_rows(pred, e.name, method, model, cfg.alpha))
        return les

    for e in cfg.endpoints:
        for r in cfg.rules:
            p = cfg.predictor(r.predictor)
            rule = response.CutoffRule(parameter=p.name, direction=r.direction,  # type: ignore[arg-type]
                                       threshold=r.threshold, strict=r.strict, name=r.name)
            try:
                pred = quiet(response.rule_predictions, frame, rule, e.name, aggregate=agg,
                             id_cols=("subject", "lesion", f"{p.name}__session"))
            except ValueError as exc:
                skipped(e, "rule", r.name, exc)
                continue
            les = collect(pred, e, "rule", r.name, p.name)
            les["threshold"] = r.threshold
            les["direction"] = r.direction
            if e.day_column:
                long = predictor_long(p, cohort, changes_df, cfg)
                if len(long):
                    calls = _calls(long, r.direction, r.threshold, r.strict)
                    lead.append(_lead_rows(calls, frame, e, "rule", r.name))
        for name in cfg.cv_cutoff:
            p = cfg.predictor(name)
            model = f"{p.name} (LOPO Youden)"
            try:
                pred = quiet(response.cv_cutoff_predictions, frame, p.name, e.name,
                             direction=p.direction, aggregate=agg,
                             id_cols=("subject", "lesion", f"{p.name}__session"))
            except ValueError as exc:
                skipped(e, "cv_cutoff", model, exc)
                continue
            collect(pred, e, "cv_cutoff", model, p.name)
            if e.day_column:
                long = predictor_long(p, cohort, changes_df, cfg)
                if len(long):
                    parts = []
                    for f in pred.folds.itertuples():
                        sub = long[long["subject"] == f.fold]
                        parts.append(_calls(sub, str(f.direction), float(f.threshold)))
                    calls = pd.concat(parts, ignore_index=True)
                    lead.append(_lead_rows(calls, frame, e, "cv_cutoff", model))
        for m in cfg.logistic:
            model = f"{m.name} (LOPO logistic)"
            try:
                pred = quiet(response.cv_logistic_predictions, frame, list(m.predictors),
                             e.name, fit=m.fit, aggregate=agg,
                             threshold=m.threshold, id_cols=("subject", "lesion"))
            except (ValueError, np.linalg.LinAlgError) as exc:
                skipped(e, "logistic", model, exc)
                continue
            les = collect(pred, e, "logistic", model, None)
            les["threshold"] = m.threshold
    lead_df = _concat(lead)
    return PredictionResults(lesions=_concat(lesions), patients=_concat(patients),
                             folds=_concat(folds_),
                             summary=rows_frame(summary, PredictionSummaryRow),
                             lead=lead_df, lead_summary=lead_summary(lead_df))


def lead_summary(lead: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint and model: events with a day, how many the call flagged before the
    event, and the median / mean / range of the lead time (days); columns of
    :class:`LeadSummaryRow`."""
    rows = []
    if not lead.empty:
        for (ep, meth, model), g in lead.groupby(["endpoint", "method", "model"],
                                                 sort=False):
            lt = g["lead_time_days"].dropna()
            some = len(lt) > 0
            rows.append(LeadSummaryRow(
                endpoint=str(ep), method=str(meth), model=str(model), n_events=len(g),
                n_called=int(g["first_positive_day"].notna().sum()),
                n_called_before=int((lt > 0).sum()),
                median_lead_days=float(lt.median()) if some else np.nan,
                mean_lead_days=float(lt.mean()) if some else np.nan,
                min_lead_days=float(lt.min()) if some else np.nan,
                max_lead_days=float(lt.max()) if some else np.nan))
    return rows_frame(rows, LeadSummaryRow)


def model_scores(pred_lesions: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Out-of-fold lesion probabilities of the logistic models in a predictions table
    (:attr:`PredictionResults.lesions`), keyed by (endpoint, model), as ``score,
    label`` (the ``extra`` of :func:`roc_analysis`)."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    if pred_lesions.empty or "probability" not in pred_lesions:
        return out
    sub = pred_lesions[pred_lesions["method"] == "logistic"]
    for (ep, model), g in sub.groupby(["endpoint", "model"], sort=False):
        out[(str(ep), str(model))] = pd.DataFrame({
            "score": pd.to_numeric(g["probability"], errors="coerce").to_numpy(float),
            "label": pd.to_numeric(g["observed"], errors="coerce").to_numpy(float)})
    return out


# --------------------------------------------------------------------------- pre/post


@dataclass
class PairedRow:
    """Follow-up vs baseline of one parameter in one endpoint group and session
    (``prepost_paired.tsv``: Wilcoxon signed-rank test, medians, change quartiles; the
    adjusted ``p_holm, p_bh`` in the family ``p_family``: :func:`adjust_table`)."""

    endpoint: str
    session: str
    group: str
    parameter: str
    n: int
    median_pre: float = _NAN
    median_post: float = _NAN
    median_change: float = _NAN
    q25_change: float = _NAN
    q75_change: float = _NAN
    median_pct_change: float = _NAN
    q25_pct_change: float = _NAN
    q75_pct_change: float = _NAN
    wilcoxon_w: float = _NAN
    p: float = _NAN
    p_holm: float = _NAN
    p_bh: float = _NAN
    p_family: str | None = None
    note: str | None = None


@dataclass
class BetweenRow:
    """The change of one parameter between endpoint=1 and endpoint=0
    (``prepost_groups.tsv``: Mann-Whitney U and the AUC it implies; the table adds
    adjusted ``p_holm, p_bh`` in the family ``p_family``: :func:`adjust_table`)."""

    endpoint: str
    session: str
    parameter: str
    measure: str
    n_pos: float = _NAN
    n_neg: float = _NAN
    median_pos: float = _NAN
    median_neg: float = _NAN
    mann_whitney_u: float = _NAN
    p: float = _NAN
    p_holm: float = _NAN
    p_bh: float = _NAN
    p_family: str | None = None
    auc: float = _NAN
    rank_biserial: float = _NAN
    note: str | None = None


@dataclass(frozen=True)
class PrePostResults:
    """Pre/post statistics: ``paired`` (:class:`PairedRow` columns) and ``between``
    (:class:`BetweenRow` columns)."""

    paired: pd.DataFrame
    between: pd.DataFrame


def _paired_row(g: pd.DataFrame, e: Endpoint, ses: str, gname: str, par: str) -> PairedRow:
    row = PairedRow(endpoint=e.name, session=ses, group=gname, parameter=par, n=len(g))
    pre = g[f"{par}_baseline"].to_numpy(dtype=float)
    post = g[par].to_numpy(dtype=float)
    pct = g[f"{par}_pct_change"].to_numpy(dtype=float)
    try:
        pp = quiet(stats.paired_prepost, pre, post, name=par)
    except ValueError as exc:
        row.note = str(exc)
    else:
        row.n, row.median_pre, row.median_post = pp.n, pp.median_pre, pp.median_post
        row.median_change, row.q25_change = pp.median_change, pp.q25_change
        row.q75_change, row.wilcoxon_w, row.p = pp.q75_change, pp.statistic, pp.p
    pct = pct[~np.isnan(pct)]
    if pct.size:
        q25, med, q75 = np.quantile(pct, [0.25, 0.5, 0.75])
        row.median_pct_change, row.q25_pct_change, row.q75_pct_change = med, q25, q75
    return row


def prepost(changes_df: pd.DataFrame, cfg: CohortConfig,
            params: Sequence[str]) -> PrePostResults:
    """Paired pre/post statistics per endpoint group and follow-up session, and the
    between-group comparison of the change.

    ``paired``: per endpoint, follow-up session (each session name, in order of median
    day), group (all, endpoint=1, endpoint=0) and parameter: Wilcoxon signed-rank test
    of follow-up vs baseline (:func:`dce.stats.paired_prepost`), medians, the median
    and IQR of the absolute and of the percent change.
    ``between``: Mann-Whitney U of the percent change (and of the absolute change)
    between endpoint=1 and endpoint=0 (:func:`dce.stats.between_groups`).
    Change rows carrying a code of ``cfg.exclude_flags`` are left out.

    Parameters
    ----------
    changes_df : DataFrame
        The change table (:func:`dce.cohort.frames.changes`).
    cfg : CohortConfig
    params : sequence of str
        ROI statistics (e.g. ``vp_mean``).

    Returns
    -------
    PrePostResults
    """
    paired, between = [], []
    changes_df = changes_df[~quality.excluded(changes_df, cfg.exclude_flags)]
    order = (changes_df.groupby("session")["days_from_rt"].median().sort_values().index
             .tolist())
    for e in cfg.endpoints:
        for ses in order:
            sub = changes_df[changes_df["session"] == ses]
            for par in params:
                if f"{par}_baseline" not in sub:
                    raise ValueError(f"cohort.prepost_parameters: no ROI statistic {par!r}")
                for gname, sel in endpoint_groups(sub, e):
                    paired.append(_paired_row(sub[sel], e, ses, gname, par))
                ypos, yneg = sub[e.name] == 1, sub[e.name] == 0
                for what, col in (("pct_change", f"{par}_pct_change"),
                                  ("change", f"{par}_change")):
                    brow = BetweenRow(endpoint=e.name, session=ses, parameter=par,
                                      measure=what)
                    between.append(brow)
                    try:
                        bg = quiet(stats.between_groups, sub.loc[ypos, col].to_numpy(float),
                                   sub.loc[yneg, col].to_numpy(float), name=col)
                    except ValueError as exc:
                        brow.note = str(exc)
                        continue
                    brow.n_pos, brow.n_neg = bg.n_a, bg.n_b
                    brow.median_pos, brow.median_neg = bg.median_a, bg.median_b
                    brow.mann_whitney_u, brow.p, brow.auc = bg.u, bg.p, bg.auc
                    brow.rank_biserial = bg.rank_biserial
    paired_df = adjust_table(
        rows_frame(paired, PairedRow), ["endpoint"],
        "Wilcoxon tests of endpoint {endpoint}: every session x group x parameter of this "
        "table", alpha=cfg.alpha)
    between_df = adjust_table(
        rows_frame(between, BetweenRow), ["endpoint", "measure"],
        "Mann-Whitney tests of endpoint {endpoint}, {measure}: every session x parameter "
        "of this table", alpha=cfg.alpha)
    return PrePostResults(paired=paired_df, between=between_df)
