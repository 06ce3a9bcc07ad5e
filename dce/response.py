"""Longitudinal response: change from baseline, cut-off and logistic predictions, lead time.

Pure numerics on pandas tables (no file I/O). The input is the cohort's lesion x session
parameter table: one row per lesion and session with identifier columns (by default
``subject``, ``lesion``), the session name, the day relative to radiotherapy
(``days_from_rt``) and one column per lesion statistic (e.g. ``vp_mean``, ``vp_p95``,
``ktrans_per_min_mean``, ``kep_per_min_mean``, ``ve_mean``, ``iauc_60s``,
``peak_enhancement_pct``, ``tic_type``).

Change table (:func:`change_table`)
-----------------------------------
Each follow-up session of a lesion is compared with that lesion's baseline session
(seed review: Chu 2013, Lis 2017, Kumar 2017, Santos 2017). For a parameter ``p``:

* ``p_baseline``: the baseline value; ``p``: the follow-up value;
* ``p_change = p - p_baseline`` (absolute, in the parameter's units);
* ``p_pct_change = 100 (p - p_baseline) / p_baseline``; NaN when the baseline is <= 0 or
  missing (a percent change of a non-positive baseline is not meaningful);
* ``tic_transition``: ``"<baseline type>-><follow-up type>"``, e.g. ``"D->E"`` (the
  successful-treatment transition of Chu 2013); NA if either type is missing.

Predictions
-----------
Three kinds, all returning a :class:`Predictions` (a per-lesion table, a per-patient
table and a per-fold table):

* :class:`CutoffRule` with :func:`rule_predictions`: a fixed, a-priori cut-off from the
  literature (e.g. Kep >= 1.17 /min, a percent change of Vp above some limit). Nothing is
  learned from the data, so no cross-validation is needed.
* :func:`cv_cutoff_predictions`: a data-driven cut-off, chosen by Youden's J with
  leave-one-patient-out (LOPO) cross-validation: for every patient the cut-off (and with
  ``direction="auto"`` its direction) is chosen on the *other* patients only and then
  applied to the held-out patient's lesions, so the reported accuracy is not optimistic.
  Folds are patients, not lesions, because the lesions of one patient are correlated.
* :func:`cv_logistic_predictions`: a multivariable logistic model (statsmodels ``Logit``)
  fitted, in the same LOPO loop, without the held-out patient; its out-of-fold
  probabilities are honest inputs for an ROC analysis (:mod:`dce.stats`).

Per-patient calls (``aggregate``): ``"any"`` -- the patient is positive if any lesion is
(for probabilities: the largest lesion probability >= ``threshold``); ``"all"`` -- every
lesion with a prediction is; ``"mean"`` -- the mean lesion probability (for binary
calls: the fraction of positive lesions) is >= ``threshold``. The patient's endpoint is
positive if any lesion's endpoint is.

Perfect separation
------------------
Small cohorts often contain a predictor that separates the classes perfectly in a
training fold; the maximum-likelihood logistic fit then does not exist (coefficients run
to infinity, statsmodels warns and does not converge). With ``fit="auto"`` (default)
such a fold is refitted with Firth's penalised likelihood (Firth, Biometrika
1993;80:27-38; Heinze & Schemper, Stat Med 2002;21:2409-19): the log-likelihood plus
``0.5 log det I(beta)`` (Jeffreys prior), which has finite estimates under separation,
removes the first-order small-sample bias of the MLE and, unlike an L2 penalty, does not
depend on the scale of the predictors. It is implemented here by Newton-Raphson on the
modified score ``X^T (y - p + h (1/2 - p))`` (``h`` the hat-matrix diagonal) with step
halving on the penalised log-likelihood. ``fit="firth"`` uses it in every fold,
``fit="mle"`` raises on separation instead. The per-fold table records the method used.

Lead time
---------
:func:`lead_time_days` is ``recurrence_day - first_positive_day`` (days, same origin,
e.g. days from radiotherapy): positive when the DCE-based call precedes the recurrence
seen on conventional MRI (Kumar 2017: 6.6 months on average; Santos 2017: 120 vs 346
days). :func:`first_positive_days` finds each lesion's first positive session.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit

from dce.stats import Direction, DroppedValuesWarning, YoudenCutoff, youden_cutoff

__all__ = [
    "CutoffRule",
    "LogisticFit",
    "Predictions",
    "change_table",
    "cv_cutoff_predictions",
    "cv_logistic_predictions",
    "first_positive_days",
    "firth_logit",
    "fit_logistic",
    "lead_time_days",
    "patient_predictions",
    "rule_predictions",
]

_F64 = NDArray[np.float64]
Aggregate = Literal["any", "all", "mean"]

#: Identifier-like columns copied into the per-lesion prediction tables when present.
DEFAULT_ID_COLS = ("subject", "lesion", "session", "days_from_rt")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _require_columns(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(map(repr, missing))}; "
                         f"available: {', '.join(map(str, df.columns))}")


def _numeric(df: pd.DataFrame, col: str, what: str) -> pd.Series:
    """Column as float64 with NaN for every missing value (NA, None, NaN)."""
    s = df[col]
    if not pd.api.types.is_bool_dtype(s.dtype):
        try:
            s = pd.to_numeric(s, errors="raise")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}: column {col!r} is not numeric ({exc})") from None
    vals = s.astype("object").where(s.notna(), np.nan).to_numpy(dtype=np.float64)
    return pd.Series(vals, index=s.index, name=col)


def _binary(df: pd.DataFrame, col: str, what: str) -> pd.Series:
    y = _numeric(df, col, what)
    bad = y.notna() & ~y.isin([0.0, 1.0])
    if bad.any():
        vals = ", ".join(f"{v:g}" for v in y[bad].unique()[:5])
        raise ValueError(f"{what}: endpoint column {col!r} must be 0/1 (missing allowed), got "
                         f"{vals}")
    return y


def _describe(keys: Sequence[str], values: Any) -> str:
    vals = values if isinstance(values, tuple) else (values,)
    return " ".join(f"{k}={v}" for k, v in zip(keys, vals, strict=True))


# --------------------------------------------------------------------------------------
# change table
# --------------------------------------------------------------------------------------

def change_table(cohort_df: pd.DataFrame, *, id_cols: Sequence[str] = ("subject", "lesion"),
                 session_col: str = "session", baseline_session: str | None = "pre",
                 days_col: str | None = "days_from_rt", params: Sequence[str] | None = None,
                 tic_col: str | None = "tic_type", carry: Sequence[str] = ()) -> pd.DataFrame:
    """Change of every parameter from each lesion's baseline session (module notes).

    Parameters
    ----------
    cohort_df : DataFrame
        One row per lesion and session.
    id_cols : columns identifying a lesion.
    session_col : the session name column.
    baseline_session : the name of the baseline session (e.g. ``"pre"``); ``None``: each
        lesion's earliest session by ``days_col``.
    days_col : day of the session relative to radiotherapy, or ``None`` if not available.
    params : numeric parameter columns; ``None``: every numeric column other than
        ``id_cols``, ``session_col``, ``days_col`` and ``carry``.
    tic_col : the TIC type column (``"A"``..``"E"``), or ``None``; ignored if ``tic_col``
        is the default and absent.
    carry : further columns copied from the follow-up row (e.g. outcomes).

    Returns
    -------
    DataFrame
        One row per lesion and follow-up session, sorted by lesion and day (or session):
        ``id_cols``, ``session``, ``baseline_session``, ``days_col``,
        ``<days_col>_baseline``, ``interval_days``, ``carry``, then per parameter
        ``p_baseline``, ``p``, ``p_change``, ``p_pct_change``, then ``<tic_col>_baseline``,
        ``<tic_col>``, ``tic_transition``. Lesions with only a baseline session give no row.

    Raises
    ------
    ValueError
        Missing columns, a non-numeric parameter, a duplicated lesion/session row, or a
        lesion without a baseline session (naming the lesion).
    """
    id_cols = list(id_cols)
    if not id_cols:
        raise ValueError("change_table: id_cols must name at least one column")
    base_cols = [*id_cols, session_col] + ([days_col] if days_col else [])
    _require_columns(cohort_df, [*base_cols, *carry], "change_table")
    if baseline_session is None and not days_col:
        raise ValueError("change_table: baseline_session=None (earliest session) needs "
                         "days_col")
    use_tic = tic_col is not None and (tic_col in cohort_df.columns or tic_col != "tic_type")
    if use_tic:
        _require_columns(cohort_df, [str(tic_col)], "change_table")
    if params is None:
        skip = {*base_cols, *carry, *([tic_col] if tic_col else [])}
        params = [c for c in cohort_df.columns if c not in skip
                  and pd.api.types.is_numeric_dtype(cohort_df[c])
                  and not pd.api.types.is_bool_dtype(cohort_df[c])]
        if not params:
            raise ValueError("change_table: no numeric parameter column found; pass params")
    params = list(params)
    _require_columns(cohort_df, params, "change_table")
    overlap = set(params) & {*base_cols, *carry}
    if overlap:
        raise ValueError(f"change_table: params overlap identifier columns: {sorted(overlap)}")

    df = cohort_df.reset_index(drop=True)
    key = [*id_cols, session_col]
    dup = df.duplicated(key, keep=False)
    if dup.any():
        first = df.loc[dup, key].iloc[0]
        raise ValueError(f"change_table: {int(dup.sum())} rows share a lesion and session, "
                         f"e.g. {_describe(key, tuple(first))}")
    values = {p: _numeric(df, p, "change_table") for p in params}
    days = _numeric(df, days_col, "change_table") if days_col else None

    # which row is each lesion's baseline
    if baseline_session is not None:
        is_base = df[session_col].astype(str) == str(baseline_session)
    else:
        assert days is not None
        if days.isna().any():
            raise ValueError(f"change_table: {int(days.isna().sum())} session(s) without "
                             f"{days_col}; cannot find the earliest session")
        earliest = days.groupby([df[c] for c in id_cols], sort=False).transform("min")
        is_base = days == earliest
        n_base = is_base.groupby([df[c] for c in id_cols], sort=False).transform("sum")
        if (n_base > 1).any():
            row = df.loc[n_base > 1].iloc[0]
            raise ValueError(f"change_table: lesion {_describe(id_cols, tuple(row[id_cols]))} "
                             f"has two sessions on its earliest day")
    lesion_keys = df[id_cols].drop_duplicates()
    base_keys = df.loc[is_base, id_cols].drop_duplicates()
    merged = lesion_keys.merge(base_keys, how="left", on=id_cols, indicator=True)
    missing = merged[merged["_merge"] == "left_only"]
    if len(missing):
        names = "; ".join(_describe(id_cols, tuple(r)) for r in
                          missing[id_cols].itertuples(index=False))
        which = (f"baseline session {baseline_session!r}" if baseline_session is not None
                 else "baseline session")
        raise ValueError(f"change_table: no {which} for lesion(s) {names}")

    base = pd.DataFrame({c: df.loc[is_base, c] for c in id_cols})
    base["baseline_session"] = df.loc[is_base, session_col].to_numpy()
    if days is not None:
        base[f"{days_col}_baseline"] = days[is_base].to_numpy()
    for p in params:
        base[f"{p}_baseline"] = values[p][is_base].to_numpy()
    if use_tic:
        base[f"{tic_col}_baseline"] = df.loc[is_base, tic_col].to_numpy()

    fu = pd.DataFrame({c: df.loc[~is_base, c] for c in [*id_cols, session_col]})
    if days is not None:
        fu[str(days_col)] = days[~is_base].to_numpy()
    for c in carry:
        fu[c] = df.loc[~is_base, c].to_numpy()
    for p in params:
        fu[p] = values[p][~is_base].to_numpy()
    if use_tic:
        fu[str(tic_col)] = df.loc[~is_base, tic_col].to_numpy()
    out = fu.merge(base, how="left", on=id_cols, validate="many_to_one")

    cols: dict[str, Any] = {c: out[c] for c in id_cols}
    cols[session_col] = out[session_col]
    cols["baseline_session"] = out["baseline_session"]
    if days_col:
        cols[days_col] = out[days_col]
        cols[f"{days_col}_baseline"] = out[f"{days_col}_baseline"]
        cols["interval_days"] = out[days_col] - out[f"{days_col}_baseline"]
    for c in carry:
        cols[c] = out[c]
    for p in params:
        b, f = out[f"{p}_baseline"].astype("float64"), out[p].astype("float64")
        cols[f"{p}_baseline"] = b
        cols[p] = f
        cols[f"{p}_change"] = f - b
        pos_b = b.where(b > 0)
        cols[f"{p}_pct_change"] = 100.0 * (f - b) / pos_b
    if use_tic:
        tb, tf = out[f"{tic_col}_baseline"], out[str(tic_col)]
        cols[f"{tic_col}_baseline"] = tb
        cols[str(tic_col)] = tf
        trans = (tb.astype(str) + "->" + tf.astype(str)).astype("string")
        cols["tic_transition"] = trans.mask(tb.isna() | tf.isna())
    result = pd.DataFrame(cols)
    order = [*id_cols, days_col] if days_col else [*id_cols, session_col]
    return result.sort_values(order, kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------
# prediction containers and patient aggregation
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Predictions:
    """Predictions of one predictor (or model) for one endpoint.

    ``lesions``: one row per input row (identifier columns, the predictor value(s), the
    endpoint, ``probability`` for logistic models, ``predicted`` (nullable boolean; NA
    when the predictor is missing) and, for cross-validation, ``fold`` = the held-out
    patient). ``patients``: :func:`patient_predictions` of ``lesions``. ``folds``: one
    row per cross-validation fold (empty for fixed rules).
    """

    lesions: pd.DataFrame
    patients: pd.DataFrame
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = ""


def patient_predictions(lesions: pd.DataFrame, *, endpoint: str, group: str = "subject",
                        how: Aggregate = "any", threshold: float = 0.5,
                        pred_col: str = "predicted",
                        prob_col: str | None = "probability") -> pd.DataFrame:
    """Aggregate lesion calls to one call per patient (module notes, ``aggregate``).

    If ``prob_col`` is present the call is made from the probabilities (``any``: max >=
    threshold; ``all``: min >= threshold; ``mean``: mean >= threshold), otherwise from
    the binary ``pred_col``. Lesions without a prediction are ignored; a patient without
    any is NA. The patient endpoint is positive if any lesion's is (NA if none known).

    Returns columns ``group``, ``n_lesions``, ``n_predicted``, (``probability_max``,
    ``probability_mean``), ``predicted``, ``endpoint``.
    """
    if how not in ("any", "all", "mean"):
        raise ValueError(f"aggregate: expected 'any', 'all' or 'mean', got {how!r}")
    use_prob = prob_col is not None and prob_col in lesions.columns
    _require_columns(lesions, [group, endpoint] + ([] if use_prob else [pred_col]),
                     "patient_predictions")
    if use_prob:
        assert prob_col is not None
        v = _numeric(lesions, prob_col, "patient_predictions")
    else:
        v = _numeric(lesions, pred_col, "patient_predictions")
    y = _binary(lesions, endpoint, "patient_predictions")
    g = lesions[group]
    rows = []
    for key, idx in g.groupby(g, sort=True).groups.items():
        vals = v.loc[idx].dropna().to_numpy()
        ys = y.loc[idx].dropna().to_numpy()
        row: dict[str, Any] = {group: key, "n_lesions": len(idx), "n_predicted": vals.size}
        if use_prob:
            row["probability_max"] = float(vals.max()) if vals.size else np.nan
            row["probability_mean"] = float(vals.mean()) if vals.size else np.nan
        if vals.size == 0:
            pred: Any = pd.NA
        elif how == "any":
            pred = bool(vals.max() >= threshold) if use_prob else bool(vals.max() == 1)
        elif how == "all":
            pred = bool(vals.min() >= threshold) if use_prob else bool(vals.min() == 1)
        else:
            pred = bool(vals.mean() >= threshold)
        row["predicted"] = pred
        row[endpoint] = float(ys.max()) if ys.size else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    out["predicted"] = out["predicted"].astype("boolean")
    out[endpoint] = out[endpoint].astype("Int64")
    return out


def _lesion_frame(df: pd.DataFrame, id_cols: Sequence[str], group: str,
                  extra: Sequence[str]) -> pd.DataFrame:
    ids = [group] + [c for c in id_cols if c in df.columns and c != group]
    cols = list(dict.fromkeys([*ids, *extra]))
    return df[cols].copy()


def _check_group(df: pd.DataFrame, group: str, what: str) -> list[Any]:
    if df[group].isna().any():
        raise ValueError(f"{what}: {int(df[group].isna().sum())} row(s) without a {group!r}")
    groups = sorted(df[group].unique(), key=str)
    if len(groups) < 2:
        raise ValueError(f"{what}: leave-one-{group}-out needs at least 2 groups, got "
                         f"{len(groups)}")
    return groups


# --------------------------------------------------------------------------------------
# fixed literature cut-offs
# --------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CutoffRule:
    """A fixed (a-priori) cut-off on one parameter, e.g. from the literature.

    Parameters
    ----------
    parameter : the parameter, e.g. ``"kep_per_min_mean"`` or ``"vp_mean"``.
    direction : ``"higher"`` -- positive if the value is >= ``threshold`` (> if
        ``strict``); ``"lower"`` -- positive if <= (<).
    threshold : the cut-off in the units of the column used (percent for
        ``change="percent"``).
    change : ``None`` -- the value itself (column ``parameter``); ``"absolute"`` -- the
        change from baseline (``parameter_change``); ``"percent"`` -- the percent change
        (``parameter_pct_change``), as written by :func:`change_table`.
    session : apply only to rows of this session (``None``: every row).
    name : a label for tables; default built from the fields.

    Examples
    --------
    ``CutoffRule(parameter="kep_per_min_mean", direction="higher", threshold=1.17)``;
    a rise of Vp flags recurrence:
    ``CutoffRule(parameter="vp_mean", change="percent", direction="higher",
    threshold=-20.0, strict=True)`` (positive if the change is > -20 %; the limit is an
    example, not a published value).
    """

    parameter: str
    direction: Literal["higher", "lower"]
    threshold: float
    change: Literal["absolute", "percent"] | None = None
    session: str | None = None
    strict: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("higher", "lower"):
            raise ValueError(f"CutoffRule: direction must be 'higher' or 'lower', got "
                             f"{self.direction!r}")
        if self.change not in (None, "absolute", "percent"):
            raise ValueError(f"CutoffRule: change must be None, 'absolute' or 'percent', got "
                             f"{self.change!r}")
        if not np.isfinite(float(self.threshold)):
            raise ValueError(f"CutoffRule: threshold must be finite, got {self.threshold!r}")

    @property
    def column(self) -> str:
        """The column the rule reads."""
        suffix = {None: "", "absolute": "_change", "percent": "_pct_change"}[self.change]
        return f"{self.parameter}{suffix}"

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        op = (">" if self.strict else ">=") if self.direction == "higher" else \
            ("<" if self.strict else "<=")
        unit = " %" if self.change == "percent" else ""
        where = f" at {self.session}" if self.session else ""
        return f"{self.column} {op} {self.threshold:g}{unit}{where}"

    def select(self, df: pd.DataFrame, session_col: str = "session") -> pd.DataFrame:
        """The rows the rule applies to."""
        _require_columns(df, [self.column], f"rule {self.label}")
        if self.session is None:
            return df
        _require_columns(df, [session_col], f"rule {self.label}")
        return df[df[session_col].astype(str) == str(self.session)]

    def predict(self, df: pd.DataFrame, session_col: str = "session") -> pd.Series:
        """Nullable boolean calls for the selected rows (NA where the value is missing)."""
        rows = self.select(df, session_col)
        v = _numeric(rows, self.column, f"rule {self.label}")
        t = float(self.threshold)
        if self.direction == "higher":
            call = v > t if self.strict else v >= t
        else:
            call = v < t if self.strict else v <= t
        return call.astype("boolean").mask(v.isna())


def rule_predictions(df: pd.DataFrame, rule: CutoffRule, endpoint: str, *,
                     group: str = "subject", aggregate: Aggregate = "any",
                     session_col: str = "session",
                     id_cols: Sequence[str] = DEFAULT_ID_COLS) -> Predictions:
    """Apply a fixed :class:`CutoffRule` to every (selected) lesion row."""
    rows = rule.select(df, session_col)
    _require_columns(rows, [group, endpoint], f"rule {rule.label}")
    les = _lesion_frame(rows, id_cols, group, [rule.column])
    les[endpoint] = _binary(rows, endpoint, f"rule {rule.label}").astype("Int64")
    les["predicted"] = rule.predict(df, session_col)
    les = les.reset_index(drop=True)
    pats = patient_predictions(les, endpoint=endpoint, group=group, how=aggregate,
                               prob_col=None)
    return Predictions(lesions=les, patients=pats, name=rule.label)


# --------------------------------------------------------------------------------------
# cross-validated Youden cut-off
# --------------------------------------------------------------------------------------

def _apply_cutoff(values: pd.Series, cut: YoudenCutoff) -> pd.Series:
    call = values >= cut.threshold if cut.direction == "higher" else values <= cut.threshold
    return call.astype("boolean").mask(values.isna())


def cv_cutoff_predictions(df: pd.DataFrame, predictor: str, endpoint: str,
                          group: str = "subject", *, direction: Direction = "auto",
                          placement: Literal["midpoint", "observed"] = "midpoint",
                          aggregate: Aggregate = "any",
                          id_cols: Sequence[str] = DEFAULT_ID_COLS,
                          chooser: Callable[..., YoudenCutoff] | None = None) -> Predictions:
    """Leave-one-patient-out predictions with a Youden cut-off chosen without the patient.

    For each value ``g`` of ``group``: the cut-off (and, with ``direction="auto"``, the
    direction) is chosen by :func:`dce.stats.youden_cutoff` on the rows with
    ``group != g`` only (rows missing the predictor or endpoint excluded), and applied to
    the rows of ``g``. ``df`` normally holds one row per lesion (e.g. the change table
    restricted to one follow-up session); several rows per lesion are allowed and stay
    in the same fold.

    ``chooser`` (default :func:`dce.stats.youden_cutoff`) is called as
    ``chooser(train_scores, train_labels, direction=..., placement=..., endpoint=...)``
    with pandas Series that keep ``df``'s index; it must return a
    :class:`~dce.stats.YoudenCutoff`.

    Raises ``ValueError`` if a training fold has a single class (naming the held-out
    patient), since no cut-off can be chosen there.
    """
    _require_columns(df, [group, predictor, endpoint], "cv_cutoff_predictions")
    choose = youden_cutoff if chooser is None else chooser
    x = _numeric(df, predictor, "cv_cutoff_predictions")
    y = _binary(df, endpoint, "cv_cutoff_predictions")
    groups = _check_group(df, group, "cv_cutoff_predictions")
    n_missing = int((x.isna() | y.isna()).sum())
    if n_missing:
        warnings.warn(f"cv_cutoff_predictions: {n_missing} row(s) miss {predictor!r} or "
                      f"{endpoint!r}; they are left out of every training fold (a missing "
                      f"predictor gives no prediction)", DroppedValuesWarning, stacklevel=2)
    pred = pd.Series(pd.NA, index=df.index, dtype="boolean")
    thr = pd.Series(np.nan, index=df.index)
    dirs = pd.Series("", index=df.index, dtype=object)
    fold_rows = []
    for g in groups:
        test = (df[group] == g).to_numpy()
        train = ~test & x.notna().to_numpy() & y.notna().to_numpy()
        n_pos, n_neg = int((y[train] == 1).sum()), int((y[train] == 0).sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"cv_cutoff_predictions: without {group} {g} the training data "
                             f"of endpoint {endpoint} has a single class (n positive={n_pos}, "
                             f"n negative={n_neg}): no cut-off can be chosen")
        cut = choose(x[train], y[train], direction=direction, placement=placement,
                     endpoint=endpoint)
        pred[test] = _apply_cutoff(x[test], cut)
        thr[test] = cut.threshold
        dirs[test] = cut.direction
        fold_rows.append({"fold": g, "n_train": int(train.sum()), "n_train_pos": n_pos,
                          "n_train_neg": n_neg, "n_test": int(test.sum()),
                          "threshold": cut.threshold, "direction": cut.direction,
                          "train_sensitivity": cut.sensitivity,
                          "train_specificity": cut.specificity})
    les = _lesion_frame(df, id_cols, group, [predictor])
    les[endpoint] = y.astype("Int64")
    les["fold"] = df[group]
    les["threshold"] = thr
    les["direction"] = dirs
    les["predicted"] = pred
    les = les.reset_index(drop=True)
    pats = patient_predictions(les, endpoint=endpoint, group=group, how=aggregate,
                               prob_col=None)
    return Predictions(lesions=les, patients=pats, folds=pd.DataFrame(fold_rows),
                       name=f"{predictor} (LOPO Youden cut-off)")


# --------------------------------------------------------------------------------------
# logistic regression (MLE with Firth fallback), cross-validated
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogisticFit:
    """Logistic-regression coefficients ``[intercept, b_1, ..., b_k]``."""

    params: _F64
    method: str          # "mle" or "firth"
    converged: bool
    n_iter: int

    def predict_proba(self, x: ArrayLike) -> _F64:
        """P(y = 1) for rows of ``x`` (shape (n, k), without the constant column)."""
        xa = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if xa.shape[1] != self.params.size - 1:
            xa = xa.reshape(-1, self.params.size - 1)
        return np.asarray(expit(self.params[0] + xa @ self.params[1:]), dtype=np.float64)


def _firth_penalised_loglik(beta: _F64, xc: _F64, y: _F64) -> float:
    eta = xc @ beta
    ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    p = expit(eta)
    info = xc.T @ ((p * (1.0 - p))[:, None] * xc)
    sign, logdet = np.linalg.slogdet(info)
    return ll + 0.5 * logdet if sign > 0 else -np.inf


def firth_logit(x: ArrayLike, y: ArrayLike, *, maxiter: int = 100, tol: float = 1e-8,
                max_step: float = 5.0) -> LogisticFit:
    """Firth's bias-reduced logistic regression (module notes). ``x`` without constant.

    Newton-Raphson on the modified score ``U*(b) = X^T (y - p + h (1/2 - p))`` with the
    Fisher information ``X^T W X`` as the Hessian approximation, each step capped at
    ``max_step`` per coefficient and halved until the penalised log-likelihood
    ``l(b) + 0.5 log det(X^T W X)`` does not decrease. Converged when the largest step
    is below ``tol``.
    """
    xa = np.asarray(x, dtype=np.float64)
    xa = xa[:, None] if xa.ndim == 1 else xa
    ya = np.asarray(y, dtype=np.float64)
    xc = np.column_stack([np.ones(xa.shape[0]), xa])
    beta = np.zeros(xc.shape[1])
    pen = _firth_penalised_loglik(beta, xc, ya)
    converged, it = False, 0
    for it in range(1, maxiter + 1):  # noqa: B007 - it is reported
        p = expit(xc @ beta)
        w = p * (1.0 - p)
        info = xc.T @ (w[:, None] * xc)
        try:
            info_inv = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            break
        h = w * np.einsum("ij,jk,ik->i", xc, info_inv, xc)
        score = xc.T @ (ya - p + h * (0.5 - p))
        step = info_inv @ score
        big = np.max(np.abs(step))
        if big > max_step:
            step *= max_step / big
        t = 1.0
        while True:
            cand = beta + t * step
            pen_c = _firth_penalised_loglik(cand, xc, ya)
            if pen_c >= pen - 1e-12 or t < 1e-10:
                break
            t *= 0.5
        beta, pen = cand, pen_c
        if np.max(np.abs(t * step)) < tol:
            converged = True
            break
    return LogisticFit(params=beta, method="firth", converged=converged, n_iter=it)


class _Separation(Exception):
    pass


def _mle_logit(x: _F64, y: _F64) -> LogisticFit:
    xc = np.column_stack([np.ones(x.shape[0]), x])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = sm.Logit(y, xc).fit(disp=0, method="newton", maxiter=100)
        except (np.linalg.LinAlgError, ValueError) as exc:   # singular Hessian etc.
            raise _Separation(str(exc)) from None
    names = {type(w.message).__name__ for w in caught}
    params = np.asarray(res.params, dtype=np.float64)
    converged = bool(res.mle_retvals.get("converged", False))
    prob = expit(xc @ params) if np.all(np.isfinite(params)) else np.array([np.nan])
    if ("PerfectSeparationWarning" in names or "PerfectSeparationError" in names
            or not converged or not np.all(np.isfinite(params))
            or np.any((prob < 1e-10) | (prob > 1.0 - 1e-10))):
        raise _Separation("perfect or quasi-complete separation / no convergence")
    return LogisticFit(params=params, method="mle", converged=True,
                       n_iter=int(res.mle_retvals.get("iterations", 0)))


def fit_logistic(x: ArrayLike, y: ArrayLike, *,
                 fit: Literal["auto", "mle", "firth"] = "auto") -> LogisticFit:
    """Logistic regression of binary ``y`` on ``x`` (n, k) plus an intercept.

    ``"mle"``: statsmodels ``Logit`` (Newton); raises ``ValueError`` on separation or
    non-convergence. ``"firth"``: :func:`firth_logit`. ``"auto"``: MLE, falling back to
    Firth when the MLE does not exist (module notes). A Firth fit that does not converge
    warns (``RuntimeWarning``) and reports ``converged=False``.
    """
    if fit not in ("auto", "mle", "firth"):
        raise ValueError(f"fit: expected 'auto', 'mle' or 'firth', got {fit!r}")
    xa = np.asarray(x, dtype=np.float64)
    xa = xa[:, None] if xa.ndim == 1 else xa
    ya = np.asarray(y, dtype=np.float64)
    if fit != "firth":
        try:
            return _mle_logit(xa, ya)
        except _Separation as exc:
            if fit == "mle":
                raise ValueError(f"logistic MLE does not exist ({exc}); use fit='firth' or "
                                 f"'auto'") from None
    res = firth_logit(xa, ya)
    if not res.converged:
        warnings.warn(f"Firth logistic fit did not converge in {res.n_iter} iterations "
                      f"(collinear or constant predictors?)", RuntimeWarning, stacklevel=2)
    return res


def cv_logistic_predictions(df: pd.DataFrame, predictors: Sequence[str], endpoint: str,
                            group: str = "subject", *,
                            fit: Literal["auto", "mle", "firth"] = "auto",
                            aggregate: Aggregate = "any", threshold: float = 0.5,
                            id_cols: Sequence[str] = DEFAULT_ID_COLS) -> Predictions:
    """Leave-one-patient-out probabilities of a multivariable logistic model.

    For each value ``g`` of ``group`` the model ``logit P(endpoint) = b0 + sum b_j x_j``
    is fitted (:func:`fit_logistic`) on the complete rows of the other groups, with the
    predictors standardised by the training mean and SD (numerical conditioning only:
    MLE and Firth predictions do not depend on it), and gives the probability of each
    row of ``g``. ``predicted = probability >= threshold``. Rows missing a predictor get
    no probability. The per-fold table gives the coefficients on the original scale and
    the method used ("mle" or "firth").
    """
    predictors = list(predictors)
    if not predictors:
        raise ValueError("cv_logistic_predictions: give at least one predictor")
    _require_columns(df, [group, *predictors, endpoint], "cv_logistic_predictions")
    xs = pd.DataFrame({p: _numeric(df, p, "cv_logistic_predictions") for p in predictors})
    y = _binary(df, endpoint, "cv_logistic_predictions")
    groups = _check_group(df, group, "cv_logistic_predictions")
    complete_x = xs.notna().all(axis=1).to_numpy()
    n_missing = int((~complete_x | y.isna().to_numpy()).sum())
    if n_missing:
        warnings.warn(f"cv_logistic_predictions: {n_missing} row(s) miss a predictor or "
                      f"{endpoint!r}; they are left out of every training fold (a missing "
                      f"predictor gives no probability)", DroppedValuesWarning, stacklevel=2)
    xv = xs.to_numpy(dtype=np.float64)
    yv = y.to_numpy(dtype=np.float64)
    prob = np.full(len(df), np.nan)
    fold_rows = []
    for g in groups:
        test = (df[group] == g).to_numpy()
        train = ~test & complete_x & ~np.isnan(yv)
        n_pos, n_neg = int((yv[train] == 1).sum()), int((yv[train] == 0).sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError(f"cv_logistic_predictions: without {group} {g} the training data "
                             f"of endpoint {endpoint} has a single class (n positive={n_pos}, "
                             f"n negative={n_neg}): no model can be fitted")
        mu = xv[train].mean(axis=0)
        sd = xv[train].std(axis=0, ddof=1) if train.sum() > 1 else np.zeros(len(predictors))
        if np.any(~(sd > 0)):
            bad = [p for p, s in zip(predictors, sd, strict=True) if not s > 0]
            raise ValueError(f"cv_logistic_predictions: without {group} {g} predictor(s) "
                             f"{', '.join(bad)} are constant in the training data")
        res = fit_logistic((xv[train] - mu) / sd, yv[train], fit=fit)
        pred_rows = test & complete_x
        prob[pred_rows] = res.predict_proba((xv[pred_rows] - mu) / sd)
        slopes = res.params[1:] / sd
        row: dict[str, Any] = {"fold": g, "n_train": int(train.sum()), "n_train_pos": n_pos,
                               "n_train_neg": n_neg, "n_test": int(test.sum()),
                               "method": res.method, "converged": res.converged,
                               "intercept": float(res.params[0] - np.sum(slopes * mu))}
        row.update({f"coef_{p}": float(b) for p, b in zip(predictors, slopes, strict=True)})
        fold_rows.append(row)
    les = _lesion_frame(df, id_cols, group, predictors)
    les[endpoint] = y.astype("Int64")
    les["fold"] = df[group]
    les["probability"] = prob
    pr = pd.Series(prob, index=df.index)
    les["predicted"] = (pr >= threshold).astype("boolean").mask(pr.isna())
    les = les.reset_index(drop=True)
    pats = patient_predictions(les, endpoint=endpoint, group=group, how=aggregate,
                               threshold=threshold, prob_col="probability")
    return Predictions(lesions=les, patients=pats, folds=pd.DataFrame(fold_rows),
                       name=" + ".join(predictors) + " (LOPO logistic)")


# --------------------------------------------------------------------------------------
# lead time
# --------------------------------------------------------------------------------------

def lead_time_days(first_positive_day: ArrayLike, recurrence_day: ArrayLike) -> Any:
    """``recurrence_day - first_positive_day`` (days): how much earlier the DCE-based call
    came than the recurrence on conventional MRI. Both on the same time origin (e.g. days
    from radiotherapy). NaN where either is missing; a negative value means the DCE call
    came later. Scalars give a float, arrays/Series an array/Series. Divide by 30.44 for
    months."""
    if np.ndim(first_positive_day) == 0 and np.ndim(recurrence_day) == 0:
        a = pd.to_numeric(pd.Series([first_positive_day]), errors="raise").astype("float64")
        b = pd.to_numeric(pd.Series([recurrence_day]), errors="raise").astype("float64")
        return float(b.iloc[0] - a.iloc[0])
    if isinstance(first_positive_day, pd.Series) or isinstance(recurrence_day, pd.Series):
        a_s = pd.to_numeric(pd.Series(first_positive_day), errors="raise").astype("float64")
        b_s = pd.to_numeric(pd.Series(recurrence_day), errors="raise").astype("float64")
        return b_s - a_s
    a_arr = pd.to_numeric(pd.Series(np.asarray(first_positive_day, dtype=object).ravel()),
                          errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    b_arr = pd.to_numeric(pd.Series(np.asarray(recurrence_day, dtype=object).ravel()),
                          errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"lead_time_days: different lengths ({a_arr.size} vs {b_arr.size})")
    return b_arr - a_arr


def first_positive_days(lesions: pd.DataFrame, *, id_cols: Sequence[str] = ("subject",
                                                                            "lesion"),
                        days_col: str = "days_from_rt",
                        pred_col: str = "predicted") -> pd.DataFrame:
    """Each lesion's earliest day with a positive call (NaN if never positive).

    ``lesions`` has one row per lesion and session (e.g. the ``lesions`` table of a
    :class:`Predictions` built on the change table of all follow-ups). Returns
    ``id_cols`` and ``first_positive_day``.
    """
    id_cols = list(id_cols)
    _require_columns(lesions, [*id_cols, days_col, pred_col], "first_positive_days")
    d = _numeric(lesions, days_col, "first_positive_days")
    pos = lesions[pred_col].astype("boolean").fillna(False).to_numpy(dtype=bool)
    day = d.where(pos)
    out = day.groupby([lesions[c] for c in id_cols], sort=True).min()
    return out.rename("first_positive_day").reset_index()
