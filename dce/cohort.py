"""Cohort analysis of the workflow (used by the ``cohort_*`` rule scripts).

Everything here works on pandas tables and is driven by the ``cohort`` section of the
configuration (config/README.md): the statistics themselves are those of
:mod:`dce.stats` and :mod:`dce.response`; this module builds the cohort tables, turns
the configured endpoints, predictors and rules into calls of those functions and
collects the results in tidy tables. No file I/O here: the readers and writers
(:func:`read_tsv`, :func:`read_lesion_sheet`, :func:`write_text`,
:func:`save_figure_formats`) live in :mod:`dce.io.tables` and are re-exported.

Terms
-----
cohort table
    One row per lesion and session: the per-session ROI statistics (``roi.tsv``, lesion
    rows, ``label`` renamed ``lesion``) with days from radiotherapy, joined with the
    lesion sheet (level, endpoints and any further column).
change table
    :func:`dce.response.change_table` of the cohort table against each lesion's baseline
    session, for every numeric ROI statistic: ``<col>_baseline``, ``<col>``,
    ``<col>_change``, ``<col>_pct_change`` and the TIC type transition.
predictor
    A configured ``{name, parameter, kind, session, direction}``: the ROI statistic
    ``parameter`` (e.g. ``vp_mean``) as measured (``kind: value``), or its absolute
    (``change``) or percent (``pct_change``) change from baseline, at ``session`` (a
    session name, ``baseline``, or ``first`` / ``last`` = each lesion's first / last
    follow-up). The *predictor frame* has one row per lesion with one column per
    predictor (named by the predictor's name) and the endpoints.
endpoint
    A binary 0/1 column of the lesion sheet (``recurrence`` or any other), optionally
    with a ``day_column`` giving the day of the event on conventional MRI (lead time).
quality flags
    ``qc_flags`` of the ROI tables (:mod:`dce.quality`: ``t10_fixed``, ``aif_fallback``,
    ``aif_qc_failed``, ``fit_failed_fraction``) are kept in the cohort table; a change
    row carries the union of its baseline's and follow-up's flags. Rows carrying a code
    of ``cohort.exclude_flags`` stay in both tables but their values are not used:
    a predictor measured on such a row is missing (NaN) for that lesion, and such
    change rows are left out of the pre/post statistics and figures.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dce import quality, response, stats
from dce.io.tables import read_lesion_sheet as read_lesion_sheet
from dce.io.tables import read_tsv as read_tsv
from dce.io.tables import save_figure_formats as save_figure_formats
from dce.io.tables import write_text as write_text
from dce.tables import fmt_ci, fmt_median_iqr, fmt_num, fmt_p, fmt_pct

#: Columns of the per-session ROI tables that are identifiers or bookkeeping, not
#: parameters (no change is computed for them).
ID_COLS = ("subject", "lesion", "session", "days_from_rt", "level", "roi")
_SKIP_SUFFIXES = ("_n_finite",)
_SKIP_COLS = {"n_fit_failed", "label", *quality.QC_COLUMNS}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Endpoint:
    name: str
    day_column: str | None = None
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Predictor:
    name: str
    parameter: str
    kind: str = "pct_change"          # value | change | pct_change
    session: str = "first"            # session name | baseline | first | last
    direction: str = "auto"           # higher | lower | auto
    label: str = ""

    @property
    def column(self) -> str:
        suffix = {"value": "", "change": "_change", "pct_change": "_pct_change"}[self.kind]
        return f"{self.parameter}{suffix}"

    @property
    def title(self) -> str:
        if self.label:
            return self.label
        what = {"value": "", "change": "Δ", "pct_change": "%Δ"}[self.kind]
        return f"{what}{self.parameter} ({self.session})"


@dataclass(frozen=True)
class Rule:
    name: str
    predictor: str
    direction: str
    threshold: float
    strict: bool = False


@dataclass(frozen=True)
class Logistic:
    name: str
    predictors: tuple[str, ...]
    fit: str = "auto"
    threshold: float = 0.5


@dataclass(frozen=True)
class CohortConfig:
    endpoints: tuple[Endpoint, ...]
    predictors: tuple[Predictor, ...]
    rules: tuple[Rule, ...] = ()
    cv_cutoff: tuple[str, ...] = ()
    logistic: tuple[Logistic, ...] = ()
    delong: tuple[tuple[str, str], ...] = ()
    baseline_session: str | None = "pre"
    aggregate: str = "any"
    alpha: float = 0.05
    n_boot: int = 2000
    seed: int = 0
    prepost_parameters: tuple[str, ...] = ()
    figures: Mapping[str, Any] = field(default_factory=dict)
    #: quality flag codes (dce.quality.FLAG_CODES) whose rows are not analysed
    exclude_flags: tuple[str, ...] = ()
    #: threshold of the fit_failed_fraction code (applied by the roi rule)
    max_fit_failed_fraction: float = quality.MAX_FIT_FAILED_FRACTION

    def predictor(self, name: str) -> Predictor:
        for p in self.predictors:
            if p.name == name:
                return p
        raise KeyError(f"cohort: no predictor named {name!r} (configured: "
                       f"{', '.join(p.name for p in self.predictors)})")


def parse_config(cfg: Mapping[str, Any]) -> CohortConfig:
    """The ``cohort`` section (already validated and filled with defaults by the
    schema) as a :class:`CohortConfig`; cross-references are checked here."""
    endpoints = tuple(Endpoint(name=str(e["name"]), day_column=e.get("day_column") or None,
                               label=str(e.get("label") or "")) for e in cfg["endpoints"])
    predictors = tuple(Predictor(name=str(p["name"]), parameter=str(p["parameter"]),
                                 kind=str(p.get("kind", "pct_change")),
                                 session=str(p.get("session", "first")),
                                 direction=str(p.get("direction", "auto")),
                                 label=str(p.get("label") or ""))
                       for p in cfg["predictors"])
    names = [p.name for p in predictors]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"cohort.predictors: duplicate name(s) {', '.join(dup)}")
    ep_names = [e.name for e in endpoints]
    clash = sorted(set(names) & set(ep_names))
    if clash:
        raise ValueError(f"cohort: name(s) {', '.join(clash)} used for an endpoint and a "
                         f"predictor")
    rules = tuple(Rule(name=str(r["name"]), predictor=str(r["predictor"]),
                       direction=str(r["direction"]), threshold=float(r["threshold"]),
                       strict=bool(r.get("strict", False))) for r in cfg.get("rules", []))
    cv = cfg.get("cv_cutoff")
    cv_names = tuple(names if cv is None else (str(c) for c in cv))
    logistic = tuple(Logistic(name=str(m["name"]),
                              predictors=tuple(str(x) for x in m["predictors"]),
                              fit=str(m.get("fit", "auto")),
                              threshold=float(m.get("threshold", 0.5)))
                     for m in cfg.get("logistic", []))
    delong = tuple((str(a), str(b)) for a, b in cfg.get("delong", []))
    boot = cfg.get("bootstrap", {}) or {}
    out = CohortConfig(
        endpoints=endpoints, predictors=predictors, rules=rules, cv_cutoff=cv_names,
        logistic=logistic, delong=delong,
        baseline_session=cfg.get("baseline_session", "pre"),
        aggregate=str(cfg.get("aggregate", "any")), alpha=float(cfg.get("alpha", 0.05)),
        n_boot=int(boot.get("n", 2000)), seed=int(boot.get("seed", 0)),
        prepost_parameters=tuple(cfg.get("prepost_parameters", ())),
        figures=dict(cfg.get("figures", {}) or {}),
        exclude_flags=quality.check_codes(cfg.get("exclude_flags") or (),
                                          "cohort.exclude_flags"),
        max_fit_failed_fraction=float(cfg.get("max_fit_failed_fraction",
                                              quality.MAX_FIT_FAILED_FRACTION)))
    for where, refs in (("rules", [r.predictor for r in rules]), ("cv_cutoff", cv_names),
                        ("logistic", [x for m in logistic for x in m.predictors]),
                        ("delong", [x for pair in delong for x in pair])):
        for ref in refs:
            if ref not in names:
                raise ValueError(f"cohort.{where}: unknown predictor {ref!r} (configured: "
                                 f"{', '.join(names)})")
    wf = out.figures.get("waterfall")
    if wf and wf not in names:
        raise ValueError(f"cohort.figures.waterfall: unknown predictor {wf!r}")
    return out


# --------------------------------------------------------------------------- tables


def parameter_columns(df: pd.DataFrame, exclude: Iterable[str] = ()) -> list[str]:
    """Numeric ROI statistic columns (not identifiers, counts of finite voxels or
    bookkeeping, nor the columns in ``exclude``)."""
    skip = {*ID_COLS, *_SKIP_COLS, *exclude}
    return [c for c in df.columns if c not in skip and not c.endswith(_SKIP_SUFFIXES)
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def cohort_tables(roi_tables: Sequence[pd.DataFrame],
                  lesions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lesion x session table, normal-marrow x session table) from the per-session ROI
    tables and the lesion sheet.

    The lesion table has ``subject, lesion, level, session, days_from_rt``, then every
    column of the lesion sheet other than those (endpoints, event days, ...), then the
    ROI statistics; sorted by subject, lesion and day. A lesion listed in the sheet but
    absent from a session's ROI table raises (the roi rule guarantees it is present).
    """
    if not roi_tables:
        raise ValueError("cohort: no ROI table")
    roi = pd.concat(list(roi_tables), ignore_index=True)
    for c in ("subject", "session", "roi", "label", "days_from_rt"):
        if c not in roi.columns:
            raise ValueError(f"cohort: ROI tables lack the column {c!r}")
    roi["subject"] = roi["subject"].astype(str)
    roi["session"] = roi["session"].astype(str)
    roi = roi.copy()
    les = roi[roi["roi"] == "lesion"].drop(columns=["roi"]).rename(columns={"label": "lesion"})
    les["lesion"] = pd.to_numeric(les["lesion"]).astype("int64")
    marrow = roi[roi["roi"] == "marrow"].drop(columns=["roi", "label"], errors="ignore")
    sheet = lesions.copy()
    sheet["subject"] = sheet["subject"].astype(str)
    extra = [c for c in sheet.columns if c not in ("subject", "lesion", "level")]
    if "level" in les.columns:
        les = les.drop(columns=["level"])
    keep_sheet = sheet[["subject", "lesion"] + (["level"] if "level" in sheet else []) + extra]
    merged = les.merge(keep_sheet, on=["subject", "lesion"], how="left", indicator=True,
                       validate="many_to_one")
    missing = merged[merged["_merge"] == "left_only"]
    if len(missing):
        r = missing.iloc[0]
        raise ValueError(f"cohort: lesion {r['lesion']} of subject {r['subject']} is in the "
                         f"ROI tables but not in the lesion sheet")
    merged = merged.drop(columns=["_merge"])
    if "level" not in merged:
        merged["level"] = ""
    front = ["subject", "lesion", "level", "session", "days_from_rt", *extra]
    rest = [c for c in merged.columns if c not in front]
    table = merged[front + rest].sort_values(["subject", "lesion", "days_from_rt"],
                                             kind="mergesort").reset_index(drop=True)
    marrow = marrow.sort_values(["subject", "days_from_rt"], kind="mergesort")
    return table, marrow.reset_index(drop=True)


def changes(cohort: pd.DataFrame, cfg: CohortConfig, lesions: pd.DataFrame) -> pd.DataFrame:
    """The change table (module notes) of every numeric ROI statistic; the lesion sheet's
    columns (endpoints) are carried along, and ``qc_flags`` (when the cohort table has
    it) is the union of the baseline's and the follow-up's flags."""
    extra = [c for c in lesions.columns if c not in ("subject", "lesion", "level")]
    params = parameter_columns(cohort, exclude=[*extra, "tic_type", "tic_flags"])
    carry = ["level", *extra]
    with warnings.catch_warnings():   # change_table adds hundreds of columns one by one
        warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
        out = response.change_table(cohort, baseline_session=cfg.baseline_session,
                                    params=params, carry=carry,
                                    tic_col="tic_type" if "tic_type" in cohort else None)
    if "qc_flags" in cohort.columns:
        out = with_change_flags(out, cohort)
    return out.copy()


def with_change_flags(changes_df: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    """The change table with ``qc_flags`` = union of the flags of the follow-up and of
    the baseline row of the cohort table (placed after ``interval_days``)."""
    key = ["subject", "lesion", "session"]
    flags = cohort[[*key, "qc_flags"]].copy()
    flags["session"] = flags["session"].astype(str)
    flags["qc_flags"] = [quality.union_flags(v) for v in flags["qc_flags"]]
    out = changes_df.drop(columns=["qc_flags"], errors="ignore").copy()
    k = out[["subject", "lesion"]].copy()
    k["session"] = out["session"].astype(str)
    fu = k.merge(flags, on=key, how="left")["qc_flags"]
    k["session"] = out["baseline_session"].astype(str)
    base = k.merge(flags, on=key, how="left")["qc_flags"]
    union = [quality.union_flags(a, b) for a, b in zip(fu, base, strict=True)]
    pos = (list(out.columns).index("interval_days") + 1 if "interval_days" in out.columns
           else len(out.columns))
    out.insert(pos, "qc_flags", union)
    return out


def _mask_excluded(out: pd.DataFrame, src: pd.DataFrame, cfg: CohortConfig) -> pd.DataFrame:
    """``out`` (rows of ``src``) with ``qc_flags`` and ``value`` set to NaN where
    ``src`` carries a code of ``cfg.exclude_flags``."""
    flags = src["qc_flags"] if "qc_flags" in src.columns else pd.Series("", index=src.index)
    out["qc_flags"] = [quality.union_flags(v) for v in flags]
    drop = quality.excluded(src, cfg.exclude_flags).to_numpy()
    out.loc[drop, "value"] = np.nan
    return out


def _followups(changes_df: pd.DataFrame, which: str) -> pd.DataFrame:
    """One change-table row per lesion: the first/last follow-up or a named session."""
    if which in ("first", "last"):
        ordered = changes_df.sort_values(["subject", "lesion", "days_from_rt"],
                                         kind="mergesort")
        grp = ordered.groupby(["subject", "lesion"], sort=False)
        return grp.head(1) if which == "first" else grp.tail(1)
    return changes_df[changes_df["session"].astype(str) == which]


def _baseline_rows(cohort: pd.DataFrame, cfg: CohortConfig) -> pd.DataFrame:
    if cfg.baseline_session is not None:
        return cohort[cohort["session"].astype(str) == str(cfg.baseline_session)]
    ordered = cohort.sort_values(["subject", "lesion", "days_from_rt"], kind="mergesort")
    return ordered.groupby(["subject", "lesion"], sort=False).head(1)


def predictor_rows(p: Predictor, cohort: pd.DataFrame, changes_df: pd.DataFrame,
                   cfg: CohortConfig) -> pd.DataFrame:
    """``subject, lesion, session, days_from_rt, value, qc_flags`` of a predictor, one
    row per lesion that has the session. The session is chosen on all rows; the value
    of a row carrying a code of ``cfg.exclude_flags`` is NaN (excluded, not replaced by
    another session)."""
    if p.kind == "value":
        if p.session == "baseline":
            rows = _baseline_rows(cohort, cfg)
        elif p.session in ("first", "last"):
            fu = _followups(changes_df, p.session)[["subject", "lesion", "session"]]
            rows = cohort.merge(fu, on=["subject", "lesion", "session"])
        else:
            rows = cohort[cohort["session"].astype(str) == p.session]
        src = rows
    else:
        if p.session == "baseline":
            raise ValueError(f"predictor {p.name}: a change has no baseline session value")
        src = _followups(changes_df, p.session)
    if p.column not in src.columns:
        raise ValueError(f"predictor {p.name}: no column {p.column!r} in the cohort tables "
                         f"(parameter {p.parameter!r}; ROI statistics are named like "
                         f"vp_mean, ktrans_per_min_p95, iauc_60s_median, rslope_max)")
    out = src[["subject", "lesion", "session", "days_from_rt"]].copy()
    out["value"] = pd.to_numeric(src[p.column], errors="coerce").astype("float64")
    return _mask_excluded(out, src, cfg).reset_index(drop=True)


def predictor_long(p: Predictor, cohort: pd.DataFrame, changes_df: pd.DataFrame,
                   cfg: CohortConfig) -> pd.DataFrame:
    """The predictor at *every* follow-up session (for lead times): ``subject, lesion,
    session, days_from_rt, value, qc_flags``. Empty for a value measured at baseline.
    Rows carrying a code of ``cfg.exclude_flags`` have a NaN value."""
    if p.kind == "value":
        if p.session == "baseline" or (cfg.baseline_session is not None
                                        and p.session == cfg.baseline_session):
            return pd.DataFrame(columns=["subject", "lesion", "session", "days_from_rt",
                                         "value", "qc_flags"])
        fu = changes_df[["subject", "lesion", "session"]]
        src = cohort.merge(fu, on=["subject", "lesion", "session"])
    else:
        src = changes_df
    out = src[["subject", "lesion", "session", "days_from_rt"]].copy()
    out["value"] = pd.to_numeric(src[p.column], errors="coerce").astype("float64")
    return _mask_excluded(out, src, cfg).reset_index(drop=True)


def predictor_frame(cohort: pd.DataFrame, changes_df: pd.DataFrame, lesions: pd.DataFrame,
                    cfg: CohortConfig) -> pd.DataFrame:
    """One row per lesion of the sheet: ``subject, lesion, level``, the endpoints (and
    event days), and per predictor its value plus ``<name>__session``, ``<name>__day``
    (the session it was measured at) and ``<name>__qc_flags`` (the quality flags of that
    measurement). Lesions without the session, and measurements excluded by
    ``cohort.exclude_flags``, get NaN."""
    base = lesions[["subject", "lesion"]].copy()
    base["subject"] = base["subject"].astype(str)
    base["level"] = lesions["level"].astype(str) if "level" in lesions else ""
    for e in cfg.endpoints:
        if e.name not in lesions.columns:
            raise ValueError(f"cohort.endpoints: no column {e.name!r} in the lesion sheet "
                             f"(columns: {', '.join(lesions.columns)})")
        y = pd.to_numeric(lesions[e.name], errors="coerce")
        bad = y.notna() & ~y.isin([0, 1])
        if bad.any() or (lesions[e.name].notna() & y.isna()).any():
            raise ValueError(f"cohort.endpoints: column {e.name!r} of the lesion sheet must be "
                             f"0/1 (empty = unknown)")
        base[e.name] = y.astype("float64").to_numpy()
        if e.day_column:
            if e.day_column not in lesions.columns:
                raise ValueError(f"cohort.endpoints: no day column {e.day_column!r} in the "
                                 f"lesion sheet")
            base[e.day_column] = pd.to_numeric(lesions[e.day_column],
                                               errors="coerce").to_numpy()
    for p in cfg.predictors:
        rows = predictor_rows(p, cohort, changes_df, cfg).rename(columns={
            "value": p.name, "session": f"{p.name}__session", "days_from_rt": f"{p.name}__day",
            "qc_flags": f"{p.name}__qc_flags"})
        base = base.merge(rows, on=["subject", "lesion"], how="left", validate="one_to_one")
    return base.sort_values(["subject", "lesion"], kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------- ROC


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with dce.stats' DroppedValuesWarning silenced (the counts are kept in
    the results)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DroppedValuesWarning)
        return fn(*args, **kwargs)


def _xy(frame: pd.DataFrame, col: str, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    return (frame[col].to_numpy(dtype=np.float64),
            frame[endpoint].to_numpy(dtype=np.float64))


def roc_band(scores: np.ndarray, labels: np.ndarray, direction: str, *, n_boot: int,
             seed: int, alpha: float = 0.05,
             fpr_grid: np.ndarray | None = None) -> pd.DataFrame:
    """Pointwise stratified-bootstrap band of the ROC curve (vertical averaging).

    For each resample (positives and negatives drawn with replacement within their
    class) the empirical TPR is taken at each false-positive rate of ``fpr_grid`` (the
    largest TPR whose FPR does not exceed it); the band is the ``alpha/2`` and
    ``1 - alpha/2`` quantiles. ``direction`` is "higher" or "lower".
    """
    s, y = np.asarray(scores, float), np.asarray(labels, float)
    keep = ~(np.isnan(s) | np.isnan(y))
    s, y = s[keep], y[keep]
    sign = 1.0 if direction == "higher" else -1.0
    pos, neg = sign * s[y == 1], sign * s[y == 0]
    grid = np.linspace(0.0, 1.0, 51) if fpr_grid is None else np.asarray(fpr_grid, float)
    m, n = pos.size, neg.size
    rng = np.random.default_rng(seed)
    k = np.minimum(np.floor(grid * n + 1e-9).astype(int), n)
    tprs = np.empty((n_boot, grid.size))
    for b in range(n_boot):
        pb = pos[rng.integers(0, m, m)]
        nb = -np.sort(-neg[rng.integers(0, n, n)])          # descending
        v = np.where(k < n, nb[np.minimum(k, n - 1)], -np.inf)
        tprs[b] = (pb[:, None] > v[None, :]).mean(axis=0)
    lo, hi = np.quantile(tprs, [alpha / 2.0, 1.0 - alpha / 2.0], axis=0)
    return pd.DataFrame({"fpr": grid, "tpr_lo": lo, "tpr_hi": hi})


def roc_analysis(frame: pd.DataFrame, cfg: CohortConfig, *,
                 extra: Mapping[tuple[str, str], pd.DataFrame] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """ROC of every endpoint x predictor on the predictor frame.

    Returns ``(roc, curves, delong)``:

    * ``roc``: one row per endpoint and predictor: counts, direction, AUC with DeLong
      and bootstrap CIs, the Youden cut-off (on the whole cohort: apparent, optimistic)
      and the sensitivity, specificity, PPV and NPV at it with Wilson CIs; ``note``
      says why a row has no AUC (single class, too few cases);
    * ``curves``: the empirical ROC points and the bootstrap band (``kind`` =
      ``curve`` / ``band``) for the figures;
    * ``delong``: the configured DeLong comparisons per endpoint.

    ``extra`` maps ``(endpoint, name)`` to a frame with columns ``score`` and ``label``
    (e.g. out-of-fold logistic probabilities) analysed like a predictor with
    direction "higher".
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
        row: dict[str, Any] = {"endpoint": ep, "predictor": name, "label": title,
                               "kind": kind}
        ok = ~(np.isnan(x) | np.isnan(y))
        row.update(n=int(ok.sum()), n_pos=int((y[ok] == 1).sum()),
                   n_neg=int((y[ok] == 0).sum()), n_dropped=int((~ok).sum()))
        try:
            roc = quiet(stats.roc_curve, x, y, direction=direction, endpoint=ep)
        except ValueError as exc:
            row["note"] = str(exc)
            rows.append(row)
            continue
        d = roc.direction
        row.update(direction=d, auc=roc.auc)
        try:
            dl = quiet(stats.delong_ci, x, y, a, direction=d, endpoint=ep)
            row.update(auc_se=dl.se, delong_lo=dl.lo, delong_hi=dl.hi)
        except ValueError as exc:
            row["note"] = str(exc)
        bt = quiet(stats.bootstrap_auc_ci, x, y, cfg.n_boot, cfg.seed, alpha=a,
                    direction=d, endpoint=ep)
        row.update(boot_lo=bt.lo, boot_hi=bt.hi, n_boot=bt.n_boot)
        cut = quiet(stats.youden_cutoff, x, y, direction=d, endpoint=ep)
        row.update(youden_threshold=cut.threshold, youden_j=cut.youden_j)
        called = cut.predict(np.where(ok, x, 0.0)).astype(float)
        called[~ok] = np.nan
        tab = quiet(stats.diagnostic_table, called, y, alpha=a, endpoint=ep)
        row.update(tp=tab.tp, fp=tab.fp, tn=tab.tn, fn=tab.fn)
        for mname in ("sensitivity", "specificity", "ppv", "npv"):
            prop = getattr(tab, mname)
            row.update({mname: prop.estimate, f"{mname}_lo": prop.lo,
                        f"{mname}_hi": prop.hi})
        rows.append(row)
        curves.append(pd.DataFrame({"endpoint": ep, "predictor": name, "kind": "curve",
                                    "fpr": roc.fpr, "tpr": roc.tpr,
                                    "threshold": roc.thresholds}))
        band = roc_band(x, y, d, n_boot=min(cfg.n_boot, 2000), seed=cfg.seed, alpha=a)
        band.insert(0, "kind", "band")
        band.insert(0, "predictor", name)
        band.insert(0, "endpoint", ep)
        curves.append(band)
    for e in cfg.endpoints:
        for pa, pb in cfg.delong:
            A, B = cfg.predictor(pa), cfg.predictor(pb)
            xa, y = _xy(frame, A.name, e.name)
            xb, _ = _xy(frame, B.name, e.name)
            trow: dict[str, Any] = {"endpoint": e.name, "predictor_a": pa, "predictor_b": pb}
            try:
                t = quiet(stats.delong_test, xa, xb, y, direction_a=A.direction,
                           direction_b=B.direction, alpha=a, endpoint=e.name)
            except ValueError as exc:
                trow["note"] = str(exc)
            else:
                trow.update(n_pos=t.n_pos, n_neg=t.n_neg, n_dropped=t.n_dropped,
                            direction_a=t.direction_a, direction_b=t.direction_b,
                            auc_a=t.auc_a, auc_b=t.auc_b, diff=t.diff, diff_lo=t.ci_diff[0],
                            diff_hi=t.ci_diff[1], se_diff=t.se_diff, z=t.z, p=t.p,
                            corr=t.corr)
            tests.append(trow)
    roc_cols = ["endpoint", "predictor", "label", "kind", "n", "n_pos", "n_neg", "n_dropped",
                "direction", "auc", "auc_se", "delong_lo", "delong_hi", "boot_lo", "boot_hi",
                "n_boot", "youden_threshold", "youden_j", "tp", "fp", "tn", "fn",
                "sensitivity", "sensitivity_lo", "sensitivity_hi", "specificity",
                "specificity_lo", "specificity_hi", "ppv", "ppv_lo", "ppv_hi", "npv",
                "npv_lo", "npv_hi", "note"]
    roc_df = pd.DataFrame(rows).reindex(columns=roc_cols)
    curve_df = (pd.concat(curves, ignore_index=True) if curves else
                pd.DataFrame(columns=["endpoint", "predictor", "kind", "fpr", "tpr",
                                      "threshold", "tpr_lo", "tpr_hi"]))
    delong_cols = ["endpoint", "predictor_a", "predictor_b", "n_pos", "n_neg", "n_dropped",
                   "direction_a", "direction_b", "auc_a", "auc_b", "diff", "diff_lo",
                   "diff_hi", "se_diff", "z", "p", "corr", "note"]
    return roc_df, curve_df, pd.DataFrame(tests).reindex(columns=delong_cols)


# --------------------------------------------------------------------------- predictions


@dataclass
class PredictionResults:
    lesions: list[pd.DataFrame] = field(default_factory=list)
    patients: list[pd.DataFrame] = field(default_factory=list)
    folds: list[pd.DataFrame] = field(default_factory=list)
    summary: list[dict[str, Any]] = field(default_factory=list)
    lead: list[pd.DataFrame] = field(default_factory=list)
    #: (endpoint, model name) -> out-of-fold lesion probabilities (score, label)
    scores: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)


def _summary_rows(pred: response.Predictions, endpoint: str, method: str, model: str,
                  alpha: float, note: str = "") -> list[dict[str, Any]]:
    out = []
    for level, df in (("lesion", pred.lesions), ("patient", pred.patients)):
        called = df["predicted"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        y = df[endpoint].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
        tab = quiet(stats.diagnostic_table, called, y, alpha=alpha, endpoint=endpoint)
        row: dict[str, Any] = {"endpoint": endpoint, "method": method, "model": model,
                               "level": level, "n": tab.tp + tab.fp + tab.tn + tab.fn,
                               "n_missing": tab.n_dropped, "tp": tab.tp, "fp": tab.fp,
                               "tn": tab.tn, "fn": tab.fn}
        for mname in ("sensitivity", "specificity", "ppv", "npv", "accuracy"):
            prop = getattr(tab, mname)
            row.update({mname: prop.estimate, f"{mname}_lo": prop.lo, f"{mname}_hi": prop.hi})
        prob_col = "probability" if level == "lesion" else "probability_max"
        if prob_col in df.columns:
            s = df[prob_col].to_numpy(dtype=np.float64)
            try:
                row["auc"] = quiet(stats.auc_mann_whitney, s, y, endpoint=endpoint)
            except ValueError:
                row["auc"] = np.nan
        row["note"] = note
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


def predictions(frame: pd.DataFrame, cohort: pd.DataFrame, changes_df: pd.DataFrame,
                cfg: CohortConfig, log: Any = None) -> PredictionResults:
    """Fixed rules, LOPO Youden cut-offs and LOPO logistic models for every endpoint;
    lead times (rules and cut-offs, over every follow-up session) where the endpoint
    has a day column. A model that cannot be built (e.g. a training fold with a single
    class) is reported in the summary's ``note`` and skipped."""
    res = PredictionResults()
    agg = cfg.aggregate

    def skipped(e: Endpoint, method: str, model: str, exc: Exception) -> None:
        if log is not None:
            log.warning("%s %s for %s skipped: %s", method, model, e.name, exc)
        res.summary.append({"endpoint": e.name, "method": method, "model": model,
                            "level": "lesion", "note": f"not computed: {exc}"})

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
            les, pats, _ = _tidy(pred, e.name, "rule", r.name, p.name)
            les["threshold"] = r.threshold
            les["direction"] = r.direction
            res.lesions.append(les)
            res.patients.append(pats)
            res.summary += _summary_rows(pred, e.name, "rule", r.name, cfg.alpha)
            if e.day_column:
                long = predictor_long(p, cohort, changes_df, cfg)
                if len(long):
                    calls = _calls(long, r.direction, r.threshold, r.strict)
                    res.lead.append(_lead_rows(calls, frame, e, "rule", r.name))
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
            les, pats, folds = _tidy(pred, e.name, "cv_cutoff", model, p.name)
            res.lesions.append(les)
            res.patients.append(pats)
            res.folds.append(folds)
            res.summary += _summary_rows(pred, e.name, "cv_cutoff", model, cfg.alpha)
            if e.day_column:
                long = predictor_long(p, cohort, changes_df, cfg)
                if len(long):
                    parts = []
                    for f in pred.folds.itertuples():
                        sub = long[long["subject"] == f.fold]
                        parts.append(_calls(sub, str(f.direction), float(f.threshold)))
                    calls = pd.concat(parts, ignore_index=True)
                    res.lead.append(_lead_rows(calls, frame, e, "cv_cutoff", model))
        for m in cfg.logistic:
            model = f"{m.name} (LOPO logistic)"
            try:
                pred = quiet(response.cv_logistic_predictions, frame, list(m.predictors),
                              e.name, fit=m.fit, aggregate=agg,
                              threshold=m.threshold, id_cols=("subject", "lesion"))
            except (ValueError, np.linalg.LinAlgError) as exc:
                skipped(e, "logistic", model, exc)
                continue
            les, pats, folds = _tidy(pred, e.name, "logistic", model, None)
            les["threshold"] = m.threshold
            res.lesions.append(les)
            res.patients.append(pats)
            res.folds.append(folds)
            res.summary += _summary_rows(pred, e.name, "logistic", model, cfg.alpha)
            res.scores[(e.name, model)] = pd.DataFrame({
                "score": pred.lesions["probability"].to_numpy(dtype=float),
                "label": pred.lesions[e.name].astype("Float64").to_numpy(
                    dtype=np.float64, na_value=np.nan)})
    return res


def lead_summary(lead: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint and model: events with a day, how many the call flagged before the
    event, and the median / mean / range of the lead time (days)."""
    cols = ["endpoint", "method", "model", "n_events", "n_called", "n_called_before",
            "median_lead_days", "mean_lead_days", "min_lead_days", "max_lead_days"]
    if lead.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for (ep, meth, model), g in lead.groupby(["endpoint", "method", "model"], sort=False):
        lt = g["lead_time_days"].dropna()
        rows.append({"endpoint": ep, "method": meth, "model": model, "n_events": len(g),
                     "n_called": int(g["first_positive_day"].notna().sum()),
                     "n_called_before": int((lt > 0).sum()),
                     "median_lead_days": float(lt.median()) if len(lt) else np.nan,
                     "mean_lead_days": float(lt.mean()) if len(lt) else np.nan,
                     "min_lead_days": float(lt.min()) if len(lt) else np.nan,
                     "max_lead_days": float(lt.max()) if len(lt) else np.nan})
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- pre/post


def _groups(frame: pd.DataFrame, e: Endpoint) -> list[tuple[str, pd.Series]]:
    y = frame[e.name]
    return [("all", y.notna() | y.isna()), (f"{e.name}=1", y == 1), (f"{e.name}=0", y == 0)]


def prepost(changes_df: pd.DataFrame, cfg: CohortConfig,
            params: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paired pre/post statistics per endpoint group and follow-up session, and the
    between-group comparison of the change.

    ``paired``: per endpoint, follow-up session (each session name, in order of median
    day), group (all, endpoint=1, endpoint=0) and parameter: Wilcoxon signed-rank test
    of follow-up vs baseline (:func:`dce.stats.paired_prepost`), medians, the median
    and IQR of the absolute and of the percent change.
    ``between``: Mann-Whitney U of the percent change (and of the absolute change)
    between endpoint=1 and endpoint=0 (:func:`dce.stats.between_groups`).
    Change rows carrying a code of ``cfg.exclude_flags`` are left out.
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
                for gname, sel in _groups(sub, e):
                    g = sub[sel]
                    row: dict[str, Any] = {"endpoint": e.name, "session": ses,
                                           "group": gname, "parameter": par, "n": len(g)}
                    pre = g[f"{par}_baseline"].to_numpy(dtype=float)
                    post = g[par].to_numpy(dtype=float)
                    pct = g[f"{par}_pct_change"].to_numpy(dtype=float)
                    try:
                        pp = quiet(stats.paired_prepost, pre, post, name=par)
                    except ValueError as exc:
                        row["note"] = str(exc)
                    else:
                        row.update(n=pp.n, median_pre=pp.median_pre,
                                   median_post=pp.median_post,
                                   median_change=pp.median_change, q25_change=pp.q25_change,
                                   q75_change=pp.q75_change, wilcoxon_w=pp.statistic,
                                   p=pp.p)
                    pct = pct[~np.isnan(pct)]
                    if pct.size:
                        q25, med, q75 = np.quantile(pct, [0.25, 0.5, 0.75])
                        row.update(median_pct_change=med, q25_pct_change=q25,
                                   q75_pct_change=q75)
                    paired.append(row)
                ypos, yneg = sub[e.name] == 1, sub[e.name] == 0
                for what, col in (("pct_change", f"{par}_pct_change"),
                                  ("change", f"{par}_change")):
                    brow: dict[str, Any] = {"endpoint": e.name, "session": ses,
                                            "parameter": par, "measure": what}
                    try:
                        bg = quiet(stats.between_groups, sub.loc[ypos, col].to_numpy(float),
                                    sub.loc[yneg, col].to_numpy(float), name=col)
                    except ValueError as exc:
                        brow["note"] = str(exc)
                    else:
                        brow.update(n_pos=bg.n_a, n_neg=bg.n_b, median_pos=bg.median_a,
                                    median_neg=bg.median_b, mann_whitney_u=bg.u, p=bg.p,
                                    auc=bg.auc)
                    between.append(brow)
    pcols = ["endpoint", "session", "group", "parameter", "n", "median_pre", "median_post",
             "median_change", "q25_change", "q75_change", "median_pct_change",
             "q25_pct_change", "q75_pct_change", "wilcoxon_w", "p", "note"]
    bcols = ["endpoint", "session", "parameter", "measure", "n_pos", "n_neg", "median_pos",
             "median_neg", "mann_whitney_u", "p", "auc", "note"]
    return pd.DataFrame(paired).reindex(columns=pcols), pd.DataFrame(between).reindex(
        columns=bcols)


def cohort_summary(cohort: pd.DataFrame, frame: pd.DataFrame, changes_df: pd.DataFrame,
                   cfg: CohortConfig, params: Sequence[str]) -> pd.DataFrame:
    """Characteristics per endpoint group (columns ``all``, ``<e>=1``, ``<e>=0``):
    patients, lesions, sessions, follow-ups, days from RT, baseline parameters
    (median [IQR]). Cells are display strings."""
    base = _baseline_rows(cohort, cfg)
    out = []
    for e in cfg.endpoints:
        cols: dict[str, dict[str, str]] = {}
        for gname, sel in _groups(frame, e):
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


# --------------------------------------------------------------------------- display tables


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
            "T10": "–" if _nan(first("qc_t10_source")) else str(first("qc_t10_source")),
            "AIF": "–" if _nan(first("qc_aif_source")) else str(first("qc_aif_source")),
            "AIF QC": "–" if _nan(passed) else
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
            "bootstrap 95% CI": "–" if _nan(r.boot_lo) else
            f"{fmt_num(r.boot_lo, fixed=2)}–{fmt_num(r.boot_hi, fixed=2)}",
            "Youden cut-off": fmt_num(r.youden_threshold),
            **_accuracy_cells(r),
        })
    return pd.DataFrame(rows)


def _records(df: pd.DataFrame) -> list[Any]:
    """Rows as attribute-access records (typed Any for the display code)."""
    from types import SimpleNamespace

    return [SimpleNamespace(**{str(k): v for k, v in rec.items()})
            for rec in df.to_dict("records")]


def _nan(v: Any) -> bool:
    try:
        return v is None or v is pd.NA or math.isnan(float(v))
    except (TypeError, ValueError):
        return False


def _prop(k: Any, n: Any, est: Any, lo: Any, hi: Any) -> str:
    if _nan(k) or _nan(n):
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
    rows = []
    for r in _records(delong):
        rows.append({"endpoint": r.endpoint, "comparison": f"{r.predictor_a} vs {r.predictor_b}",
                     "AUC a": fmt_num(r.auc_a, fixed=2), "AUC b": fmt_num(r.auc_b, fixed=2),
                     "difference (95% CI)": fmt_ci(r.diff, r.diff_lo, r.diff_hi),
                     "z": fmt_num(r.z, fixed=2), "p": fmt_p(r.p)})
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
        rows.append(row)
    return pd.DataFrame(rows)


def display_predictions(summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in _records(summary):
        if _nan(getattr(r, "n", np.nan)):
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


# --------------------------------------------------------------------------- curves


def tic_type_curves(tic: pd.DataFrame, cohort: pd.DataFrame,
                    dt_s: float | None = None) -> pd.DataFrame:
    """Mean (and SD) lesion enhancement curve per TIC type, over all lesion sessions.

    ``tic``: the concatenated per-session TIC tables (``subject, session, roi, label,
    t_s, enhancement_pct``); ``cohort``: the cohort table (for ``tic_type``). Curves are
    interpolated linearly on a common time grid (step ``dt_s``, default the median
    sampling interval) over the range every curve covers. Normal marrow is returned as
    type ``marrow``. Columns: ``tic_type, t_s, mean, sd, n``.
    """
    t = tic.copy()
    t["subject"] = t["subject"].astype(str)
    t["session"] = t["session"].astype(str)
    types = cohort[["subject", "session", "lesion", "tic_type"]].rename(
        columns={"lesion": "label"})
    les = t[t["roi"] == "lesion"].copy()
    les["label"] = pd.to_numeric(les["label"]).astype("int64")
    les = les.merge(types, on=["subject", "session", "label"], how="inner")
    mar = t[t["roi"] == "marrow"].copy()
    mar["tic_type"] = "marrow"
    allc = pd.concat([les, mar], ignore_index=True)
    allc = allc[allc["tic_type"].notna() & (allc["tic_type"].astype(str) != "")]
    if allc.empty:
        return pd.DataFrame(columns=["tic_type", "t_s", "mean", "sd", "n"])
    keys = ["subject", "session", "roi", "label"]
    groups = list(allc.groupby(keys, dropna=False, sort=False))
    t_end = min(float(g["t_s"].max()) for _, g in groups)
    if dt_s is None:
        dt_s = float(np.median(np.concatenate([np.diff(np.sort(g["t_s"].to_numpy()))
                                               for _, g in groups])))
    grid = np.arange(0.0, t_end + 1e-9, dt_s)
    rows = []
    by_type: dict[str, list[np.ndarray]] = {}
    for _, g in groups:
        g = g.sort_values("t_s")
        y = np.interp(grid, g["t_s"].to_numpy(float), g["enhancement_pct"].to_numpy(float))
        by_type.setdefault(str(g["tic_type"].iloc[0]), []).append(y)
    for typ in sorted(by_type, key=lambda s: (s == "marrow", s)):
        arr = np.vstack(by_type[typ])
        sd = arr.std(axis=0, ddof=1) if arr.shape[0] > 1 else np.full(grid.size, np.nan)
        rows.append(pd.DataFrame({"tic_type": typ, "t_s": grid, "mean": arr.mean(axis=0),
                                  "sd": sd, "n": arr.shape[0]}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- figures: data


def model_scores(pred_lesions: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Out-of-fold lesion probabilities of the logistic models in a predictions table
    (``predictions_lesions.tsv``), keyed by (endpoint, model), as ``score, label``."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    if pred_lesions.empty or "probability" not in pred_lesions:
        return out
    sub = pred_lesions[pred_lesions["method"] == "logistic"]
    for (ep, model), g in sub.groupby(["endpoint", "model"], sort=False):
        out[(str(ep), str(model))] = pd.DataFrame({
            "score": pd.to_numeric(g["probability"], errors="coerce").to_numpy(float),
            "label": pd.to_numeric(g["observed"], errors="coerce").to_numpy(float)})
    return out


def paired_values(cohort: pd.DataFrame, changes_df: pd.DataFrame, frame: pd.DataFrame,
                  parameter: str, session: str, endpoint: str,
                  exclude_flags: Iterable[str] = ()) -> pd.DataFrame:
    """Baseline and follow-up value of ``parameter`` per lesion (``session``: a session
    name or first/last follow-up) with the endpoint: ``pre, post, outcome``. The
    follow-up is chosen on all rows; a chosen row carrying a code of ``exclude_flags``
    is left out."""
    fu = _followups(changes_df, session)
    fu = fu[~quality.excluded(fu, tuple(exclude_flags))]
    if f"{parameter}_baseline" not in fu:
        raise ValueError(f"no ROI statistic {parameter!r} in the change table")
    out = fu[["subject", "lesion", f"{parameter}_baseline", parameter]].rename(
        columns={f"{parameter}_baseline": "pre", parameter: "post"})
    out = frame[["subject", "lesion", endpoint]].merge(out, on=["subject", "lesion"],
                                                       how="inner")
    return out.rename(columns={endpoint: "outcome"})


def lesion_section(anatomy: np.ndarray, maps: Mapping[str, np.ndarray], labels: np.ndarray,
                   label: int, affine: np.ndarray) -> dict[str, Any]:
    """The sagittal section through a lesion (the one with most of its voxels): 2-D
    display arrays of the anatomy, each map and the lesion mask, the lesion's centre
    and half extent (rows, columns, in voxels) and the display aspect ratio."""
    from dce.plots import sagittal_section, to_ras

    lab_ras, zooms = to_ras(np.asarray(labels) == label, affine)
    if not lab_ras.any():
        raise ValueError(f"lesion {label}: no voxel in the lesion ROI")
    x = int(np.argmax(lab_ras.reshape(lab_ras.shape[0], -1).sum(axis=1)))
    mask = sagittal_section(lab_ras, x).astype(bool)
    rr, cc = np.nonzero(mask)
    anat = sagittal_section(to_ras(np.asarray(anatomy, float), affine)[0], x)
    secs = {k: sagittal_section(to_ras(np.asarray(v, float), affine)[0], x)
            for k, v in maps.items()}
    return {"anatomy": anat, "maps": secs, "mask": mask,
            "centre": (float(rr.mean()), float(cc.mean())),
            "half": (float(rr.max() - rr.min()) / 2 + 1, float(cc.max() - cc.min()) / 2 + 1),
            "aspect": float(zooms[2] / zooms[1]), "zooms": zooms}


def crop_sections(sections: Sequence[dict[str, Any]], margin_mm: float = 10.0
                  ) -> list[dict[str, Any]]:
    """Crop sections to windows of one size (the largest lesion extent plus
    ``margin_mm`` on each side) centred on each session's lesion."""
    if not sections:
        return []
    z = sections[0]["zooms"]
    half_r = max(s["half"][0] for s in sections) + margin_mm / float(z[2])
    half_c = max(s["half"][1] for s in sections) + margin_mm / float(z[1])
    hr, hc = int(np.ceil(half_r)), int(np.ceil(half_c))
    out = []
    for s in sections:
        r0 = round(s["centre"][0]) - hr
        c0 = round(s["centre"][1]) - hc

        def cut(a: np.ndarray, fill: float = np.nan, r0: int = r0, c0: int = c0
                ) -> np.ndarray:
            res = np.full((2 * hr + 1, 2 * hc + 1), fill, dtype=float)
            rs, cs = max(r0, 0), max(c0, 0)
            re_, ce = min(r0 + 2 * hr + 1, a.shape[0]), min(c0 + 2 * hc + 1, a.shape[1])
            if re_ > rs and ce > cs:
                res[rs - r0:re_ - r0, cs - c0:ce - c0] = a[rs:re_, cs:ce]
            return res

        out.append({**s, "anatomy": cut(s["anatomy"]), "mask": cut(s["mask"], 0.0) > 0,
                    "maps": {k: cut(v) for k, v in s["maps"].items()}})
    return out


def message_figure(text: str) -> Any:
    """A small figure carrying only a message (an analysis that could not be done)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 2.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return fig


# --------------------------------------------------------------------------- more display

#: Columns of predictions_summary.tsv.
SUMMARY_COLS = ["endpoint", "method", "model", "level", "n", "n_missing", "tp", "fp", "tn",
                "fn", "sensitivity", "sensitivity_lo", "sensitivity_hi", "specificity",
                "specificity_lo", "specificity_hi", "ppv", "ppv_lo", "ppv_hi", "npv",
                "npv_lo", "npv_hi", "accuracy", "accuracy_lo", "accuracy_hi", "auc", "note"]

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


def display_lead(lead_summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in _records(lead_summary):
        rows.append({"endpoint": r.endpoint, "method": r.method, "model": r.model,
                     "events with a day": fmt_num(r.n_events),
                     "called at a follow-up": fmt_num(r.n_called),
                     "called before the event": fmt_num(r.n_called_before),
                     "lead time, median (range)":
                         "–" if _nan(r.median_lead_days) else
                         f"{fmt_num(r.median_lead_days)} ({fmt_num(r.min_lead_days)}–"
                         f"{fmt_num(r.max_lead_days)})"})
    return pd.DataFrame(rows, columns=["endpoint", "method", "model", "events with a day",
                                       "called at a follow-up", "called before the event",
                                       "lead time, median (range)"])
