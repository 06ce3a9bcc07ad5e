"""The cohort frames: the tables every cohort analysis starts from.

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
    A configured ``{name, parameter, kind, session, direction}``
    (:class:`dce.cohort.config.Predictor`): the ROI statistic ``parameter`` (e.g.
    ``vp_mean``) as measured (``kind: value``), or its absolute (``change``) or percent
    (``pct_change``) change from baseline, at ``session`` (a session name, ``baseline``,
    or ``first`` / ``last`` = each lesion's first / last follow-up). The *predictor
    frame* has one row per lesion with one column per predictor (named by the
    predictor's name) and the endpoints.
endpoint
    A binary 0/1 column of the lesion sheet (``recurrence`` or any other), optionally
    with a ``day_column`` giving the day of the event on conventional MRI (lead time).
PRM fractions
    With the per-follow-up PRM tables (``prm.tsv``, :mod:`dce.prm`), the cohort table's
    follow-up rows carry ``prm_pos_<map>_fraction``, ``prm_zero_<map>_fraction`` and
    ``prm_neg_<map>_fraction`` (fractions 0-1 of the lesion's valid voxels; NaN where the
    registration failed its QC, and on baseline rows); they are predictors like any ROI
    statistic (``kind: value`` at a follow-up session) and get no change columns.
quality flags
    ``qc_flags`` of the ROI tables (:mod:`dce.quality`: ``t10_fixed``, ``aif_fallback``,
    ``aif_qc_failed``, ``fit_failed_fraction``) are kept in the cohort table; a change
    row carries the union of its baseline's and follow-up's flags. Rows carrying a code
    of ``cohort.exclude_flags`` stay in both tables but their values are not used:
    a predictor measured on such a row is missing (NaN) for that lesion, and such
    change rows are left out of the pre/post statistics and figures.

:func:`cohort_frames` builds all of them (:class:`CohortFrames`, written by the
``cohort_table`` rule and read back with :func:`dce.io.results.read_results`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dce import quality, response
from dce.cohort.config import CohortConfig, Endpoint, Predictor

__all__ = [
    "ID_COLS",
    "CohortFrames",
    "baseline_rows",
    "changes",
    "cohort_frames",
    "cohort_tables",
    "endpoint_groups",
    "followups",
    "paired_values",
    "parameter_columns",
    "predictor_frame",
    "predictor_long",
    "predictor_rows",
    "prm_columns",
    "tic_type_curves",
    "with_change_flags",
    "with_group_endpoints",
]

#: Columns of the per-session ROI tables that are identifiers or bookkeeping, not
#: parameters (no change is computed for them).
ID_COLS = ("subject", "lesion", "session", "days_from_rt", "level", "roi")
_SKIP_SUFFIXES = ("_n_finite",)
#: Prefix of the PRM fraction columns (no change is computed for them).
PRM_PREFIX = "prm_"
_PRM_FRACTIONS = ("pos", "zero", "neg")
_SKIP_COLS = {"n_fit_failed", "label", *quality.QC_COLUMNS}


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
    prm = [c for c in cohort.columns if c.startswith(PRM_PREFIX)]
    params = parameter_columns(cohort, exclude=[*extra, *prm, "tic_type", "tic_flags"])
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


def followups(changes_df: pd.DataFrame, which: str) -> pd.DataFrame:
    """One change-table row per lesion: the first/last follow-up or a named session."""
    if which in ("first", "last"):
        ordered = changes_df.sort_values(["subject", "lesion", "days_from_rt"],
                                         kind="mergesort")
        grp = ordered.groupby(["subject", "lesion"], sort=False)
        return grp.head(1) if which == "first" else grp.tail(1)
    return changes_df[changes_df["session"].astype(str) == which]


def baseline_rows(cohort: pd.DataFrame, cfg: CohortConfig) -> pd.DataFrame:
    """The baseline row of each lesion: the configured baseline session, or each
    lesion's earliest session when ``cfg.baseline_session`` is None."""
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
            rows = baseline_rows(cohort, cfg)
        elif p.session in ("first", "last"):
            fu = followups(changes_df, p.session)[["subject", "lesion", "session"]]
            rows = cohort.merge(fu, on=["subject", "lesion", "session"])
        else:
            rows = cohort[cohort["session"].astype(str) == p.session]
        src = rows
    else:
        if p.session == "baseline":
            raise ValueError(f"predictor {p.name}: a change has no baseline session value")
        src = followups(changes_df, p.session)
    if p.column not in src.columns and p.column.startswith(PRM_PREFIX):
        src = src.assign(**{p.column: np.nan})  # no PRM table (no registered follow-up)
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
    lesions = with_group_endpoints(lesions, cfg)
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


def with_group_endpoints(lesions: pd.DataFrame, cfg: CohortConfig) -> pd.DataFrame:
    """The lesion sheet with a 0/1 column per endpoint defined as a contrast of groups
    of a categorical column (:class:`dce.cohort.config.Endpoint` ``column``): 1 where
    the column is one of ``positive``, 0 where it is one of ``negative`` (or any other
    non-empty value when ``negative`` is empty), empty otherwise. Such an endpoint
    replaces a sheet column of its name."""
    out = lesions
    for e in cfg.endpoints:
        if not e.column:
            continue
        if e.column not in lesions.columns:
            raise ValueError(f"cohort.endpoints: {e.name}: no column {e.column!r} in the "
                             f"lesion sheet (columns: {', '.join(lesions.columns)})")
        v = lesions[e.column].astype("string").str.strip()
        pos = v.isin(e.positive).fillna(False).to_numpy(dtype=bool)
        if e.negative:
            neg = v.isin(e.negative).fillna(False).to_numpy(dtype=bool)
        else:
            neg = (~pos) & v.notna().to_numpy(dtype=bool) & (v != "").fillna(False).to_numpy(
                dtype=bool)
        y = np.full(len(v), np.nan)
        y[pos], y[neg] = 1.0, 0.0
        if out is lesions:
            out = lesions.copy()
        out[e.name] = y
    return out


def endpoint_groups(frame: pd.DataFrame, e: Endpoint) -> list[tuple[str, pd.Series]]:
    """The groups of rows compared by endpoint: ``all``, ``<e>=1`` and ``<e>=0``, each
    as (name, boolean row selector)."""
    y = frame[e.name]
    return [("all", y.notna() | y.isna()), (f"{e.name}=1", y == 1), (f"{e.name}=0", y == 0)]


def paired_values(cohort: pd.DataFrame, changes_df: pd.DataFrame, frame: pd.DataFrame,
                  parameter: str, session: str, endpoint: str,
                  exclude_flags: Iterable[str] = ()) -> pd.DataFrame:
    """Baseline and follow-up value of ``parameter`` per lesion (``session``: a session
    name or first/last follow-up) with the endpoint: ``pre, post, outcome``. The
    follow-up is chosen on all rows; a chosen row carrying a code of ``exclude_flags``
    is left out."""
    fu = followups(changes_df, session)
    fu = fu[~quality.excluded(fu, tuple(exclude_flags))]
    if f"{parameter}_baseline" not in fu:
        raise ValueError(f"no ROI statistic {parameter!r} in the change table")
    out = fu[["subject", "lesion", f"{parameter}_baseline", parameter]].rename(
        columns={f"{parameter}_baseline": "pre", parameter: "post"})
    out = frame[["subject", "lesion", endpoint]].merge(out, on=["subject", "lesion"],
                                                       how="inner")
    return out.rename(columns={endpoint: "outcome"})


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



@dataclass(frozen=True)
class CohortFrames:
    """The cohort table, the normal-marrow table, the change table and the predictor
    frame (module notes), one field per file of the ``cohort_table`` rule."""

    cohort: pd.DataFrame
    marrow: pd.DataFrame
    changes: pd.DataFrame
    predictors: pd.DataFrame


def prm_columns(prm_tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The PRM tables (``prm.tsv`` of each follow-up: ``subject, session, label, map,
    prm_pos_fraction, ...``) as one wide frame: ``subject, lesion, session`` and
    ``prm_<pos|zero|neg>_<map>_fraction`` per map (module notes)."""
    cols = ["subject", "lesion", "session"]
    if not prm_tables:
        return pd.DataFrame(columns=cols)
    long = pd.concat(list(prm_tables), ignore_index=True)
    long = long.rename(columns={"label": "lesion"})
    long["subject"] = long["subject"].astype(str)
    long["session"] = long["session"].astype(str)
    long["lesion"] = pd.to_numeric(long["lesion"]).astype("int64")
    values = [f"prm_{k}_fraction" for k in _PRM_FRACTIONS]
    wide = pd.DataFrame(long.set_index([*cols, "map"])[values].unstack("map"))  # NaN rows kept
    maps = list(dict.fromkeys(long["map"].astype(str)))
    names = {(f"prm_{k}_fraction", m): f"prm_{k}_{m}_fraction"
             for m in maps for k in _PRM_FRACTIONS}
    wide.columns = pd.Index([names[(str(c[0]), str(c[1]))] for c in wide.columns])
    order = [names[(f"prm_{k}_fraction", m)] for m in maps for k in _PRM_FRACTIONS]
    return wide[order].reset_index()


def cohort_frames(roi_tables: Sequence[pd.DataFrame], lesions: pd.DataFrame,
                  cfg: CohortConfig, *, sessions_sheet: str = "the sessions sheet",
                  prm_tables: Sequence[pd.DataFrame] = ()) -> CohortFrames:
    """All cohort frames from the per-session ROI tables and the lesion sheet.

    Parameters
    ----------
    roi_tables : sequence of DataFrame
        The ``roi.tsv`` of every session.
    lesions : DataFrame
        The lesion sheet (:func:`dce.io.tables.read_lesion_sheet`).
    cfg : CohortConfig
    sessions_sheet : str
        Named in the error raised when a lesion has no baseline session.
    prm_tables : sequence of DataFrame
        The ``prm.tsv`` of every follow-up (module notes, PRM fractions); none: no PRM
        columns.

    Returns
    -------
    CohortFrames
    """
    lesions = with_group_endpoints(lesions, cfg)
    cohort, marrow = cohort_tables(roi_tables, lesions)
    if prm_tables:
        cohort = cohort.merge(prm_columns(prm_tables), on=["subject", "lesion", "session"],
                              how="left", validate="one_to_one")
    try:
        ch = changes(cohort, cfg, lesions)
    except ValueError as exc:
        if "no baseline session" not in str(exc):
            raise
        raise ValueError(f"{exc}: add the baseline session of each lesion to "
                         f"{sessions_sheet} (or set cohort.baseline_session: null "
                         "to use each lesion's earliest session)") from None
    return CohortFrames(cohort=cohort, marrow=marrow, changes=ch,
                        predictors=predictor_frame(cohort, ch, lesions, cfg))
