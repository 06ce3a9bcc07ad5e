"""ROC analysis, confidence intervals and the paired/unpaired tests of the cohort analysis.

Pure numerics (numpy, scipy, statsmodels); no file I/O. Every function takes ``scores``
(a continuous predictor, e.g. the percent change of Vp) and binary ``labels`` (the
endpoint, e.g. local recurrence 0/1) of the same length.

Conventions
-----------
Labels
    1/True = positive (event, e.g. recurrence), 0/False = negative. Any other value
    raises ``ValueError``. Missing labels (NaN/None/pd.NA) are treated like missing
    scores (below).
Missing values
    Pairs whose score or label is NaN are dropped before the analysis. Every result
    carries ``n_dropped`` and a :class:`DroppedValuesWarning` names the count, so a
    dropped lesion is never silent.
Single class
    If, after dropping, the endpoint has no positive or no negative case the ROC curve
    is undefined: ``ValueError("endpoint <name> has a single class (n positive=..,
    n negative=..): ROC undefined")``. ``endpoint`` names the endpoint in messages.
Direction
    ``direction="higher"``: larger scores indicate the positive class (a case is called
    positive when ``score >= threshold``). ``"lower"``: smaller scores indicate it
    (``score <= threshold``; e.g. the percent change of Vp predicting *control*).
    ``"auto"``: ``"higher"`` if the AUC of the higher-is-positive orientation is >= 0.5
    on the data given, else ``"lower"``. "auto" looks at the labels, so an AUC or a
    cut-off obtained with it on the whole cohort is optimistic (it is max(AUC, 1 - AUC));
    for an honest estimate choose the direction inside the training folds of a
    cross-validation (:func:`dce.response.cv_cutoff_predictions` does) or fix it a
    priori from the literature. Results report the direction used; thresholds are always
    in the units of the original scores.
AUC
    The Mann-Whitney form: the probability that a random positive scores higher than a
    random negative, ties counting 1/2. It equals the trapezoidal area under the
    empirical ROC curve.

DeLong
------
DeLong, DeLong & Clarke-Pearson (Biometrics 1988;44:837-45) write the AUC of ``m``
positives ``X`` and ``n`` negatives ``Y`` as a two-sample U statistic with kernel
``psi(x, y) = 1 if x > y, 1/2 if x = y, 0 otherwise`` and estimate its variance from the
structural components ``V10(X_i) = mean_j psi(X_i, Y_j)`` and ``V01(Y_j) = mean_i
psi(X_i, Y_j)``::

    var(AUC) = S10 / m + S01 / n,   S10 = var(V10) (ddof 1),  S01 = var(V01) (ddof 1)

and, for several predictors on the same cases, the covariance matrix with the same
formula applied to the covariance of the components. The components are computed
without the ``m x n`` comparison matrix from midranks (Sun & Xu, IEEE Signal Process
Lett 2014;21:1389-93): with ``Tz`` the midranks in the pooled sample and ``Tx``, ``Ty``
the midranks within the positives and within the negatives, ``V10_i = (Tz_i - Tx_i)/n``
and ``V01_j = 1 - (Tz_j - Ty_j)/m``; O((m + n) log(m + n)). The Wald interval
``AUC +- z * SE`` is clipped to [0, 1]; the ``"logit"`` option builds it on the logit
scale (``SE_logit = SE / (AUC (1 - AUC))``) and transforms back, which keeps it inside
(0, 1) and asymmetric near 1. A perfectly separating predictor has all components equal
and SE 0, hence a zero-width DeLong interval: use the bootstrap (or report the limit) in
that case. DeLong needs at least 2 positives and 2 negatives.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

__all__ = [
    "AucCI",
    "DeLongTest",
    "DiagnosticTable",
    "Direction",
    "DroppedValuesWarning",
    "GroupComparison",
    "PairedComparison",
    "Proportion",
    "RocBand",
    "RocCurve",
    "YoudenCutoff",
    "adjust_pvalues",
    "auc_mann_whitney",
    "between_groups",
    "bootstrap_auc_ci",
    "bootstrap_roc_band",
    "delong_ci",
    "delong_components",
    "delong_test",
    "diagnostic_table",
    "paired_prepost",
    "resolve_direction",
    "roc_curve",
    "wilson_ci",
    "youden_cutoff",
]

Direction = Literal["higher", "lower", "auto"]
_F64 = NDArray[np.float64]

#: Above this many positive x negative pairs the bootstrap ranks each resample instead of
#: using the (m x n) comparison matrix (memory bound).
_BOOT_MATRIX_MAX_PAIRS = 4_000_000
_BOOT_CHUNK = 2000


class DroppedValuesWarning(UserWarning):
    """Cases were dropped from an analysis because a score or a label was missing."""


# --------------------------------------------------------------------------------------
# input preparation
# --------------------------------------------------------------------------------------

def _to_float(x: Any, what: str) -> _F64:
    """Float array with NaN for every missing value (NaN, None, pd.NA, NaT)."""
    if not isinstance(x, (pd.Series, pd.Index)):
        arr = np.asarray(x)
        if arr.dtype.kind in "biuf":
            out = arr.astype(np.float64)
            return out.reshape(-1) if out.ndim == 0 else out
        if arr.ndim > 1:
            raise ValueError(f"{what}: expected a 1-D sequence, got shape {arr.shape}")
        x = pd.Series(arr.reshape(-1), dtype=object)
    ser = pd.Series(x)
    try:
        return np.asarray(ser.astype(object).where(ser.notna(), np.nan).to_numpy(
            dtype=np.float64), dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected numbers ({exc})") from None


def _as_1d(x: ArrayLike, what: str) -> _F64:
    arr = _to_float(x, what)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence, got shape {arr.shape}")
    if np.any(np.isinf(arr)):
        raise ValueError(f"{what}: {int(np.isinf(arr).sum())} infinite value(s)")
    return arr


def _as_labels(y: ArrayLike, what: str) -> _F64:
    """Labels as float 0/1 with NaN for missing; anything else raises."""
    try:
        out = _to_float(y, what)
    except ValueError:
        raise ValueError(f"{what}: labels must be 0/1 or True/False (missing as NaN), got "
                         f"non-numeric values") from None
    if out.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence of labels, got shape {out.shape}")
    ok = np.isnan(out) | (out == 0) | (out == 1)
    if not np.all(ok):
        bad = np.unique(out[~ok])[:5]
        raise ValueError(f"{what}: labels must be 0/1 or True/False (missing as NaN), got "
                         f"{', '.join(f'{v:g}' for v in bad)}")
    return out


def _warn_dropped(n_dropped: int, detail: str, endpoint: str) -> None:
    if n_dropped:
        warnings.warn(f"endpoint {endpoint}: dropped {n_dropped} case(s) with {detail}",
                      DroppedValuesWarning, stacklevel=3)


def _single_class_error(endpoint: str, n_pos: int, n_neg: int) -> ValueError:
    return ValueError(f"endpoint {endpoint} has a single class (n positive={n_pos}, "
                      f"n negative={n_neg}): ROC undefined")


@dataclass(frozen=True)
class _Prepared:
    pos: _F64          # scores of the positives, oriented (higher = positive)
    neg: _F64
    sign: float        # +1 for "higher", -1 for "lower"
    direction: str
    n_dropped: int


def _split(scores: ArrayLike, labels: ArrayLike, endpoint: str) -> tuple[_F64, _F64, int]:
    s = _as_1d(scores, "scores")
    y = _as_labels(labels, f"endpoint {endpoint}")
    if s.shape != y.shape:
        raise ValueError(f"scores and labels of endpoint {endpoint} have different lengths "
                         f"({s.size} vs {y.size})")
    miss_s, miss_y = np.isnan(s), np.isnan(y)
    keep = ~(miss_s | miss_y)
    n_dropped = int(np.count_nonzero(~keep))
    if n_dropped:
        parts = []
        if miss_s.any():
            parts.append(f"{int(miss_s.sum())} missing score(s)")
        if miss_y.any():
            parts.append(f"{int(miss_y.sum())} missing label(s)")
        _warn_dropped(n_dropped, " and ".join(parts), endpoint)
    s, y = s[keep], y[keep]
    pos, neg = s[y == 1], s[y == 0]
    if pos.size == 0 or neg.size == 0:
        raise _single_class_error(endpoint, int(pos.size), int(neg.size))
    return pos, neg, n_dropped


def _auc_raw(pos: _F64, neg: _F64) -> float:
    """Mann-Whitney AUC (higher = positive) from midranks."""
    m, n = pos.size, neg.size
    ranks = sps.rankdata(np.concatenate([pos, neg]))
    return float((ranks[:m].sum() - m * (m + 1) / 2.0) / (m * n))


def _orient(pos: _F64, neg: _F64, direction: str) -> tuple[float, str]:
    if direction == "higher":
        return 1.0, "higher"
    if direction == "lower":
        return -1.0, "lower"
    if direction == "auto":
        return (1.0, "higher") if _auc_raw(pos, neg) >= 0.5 else (-1.0, "lower")
    raise ValueError(f"direction: expected 'higher', 'lower' or 'auto', got {direction!r}")


def _prepare(scores: ArrayLike, labels: ArrayLike, direction: str,
             endpoint: str) -> _Prepared:
    pos, neg, n_dropped = _split(scores, labels, endpoint)
    sign, used = _orient(pos, neg, direction)
    return _Prepared(sign * pos, sign * neg, sign, used, n_dropped)


def resolve_direction(scores: ArrayLike, labels: ArrayLike, direction: Direction = "auto",
                      *, endpoint: str = "labels") -> Literal["higher", "lower"]:
    """The direction ``"higher"``/``"lower"`` that ``direction`` resolves to on these data."""
    d = _prepare(scores, labels, direction, endpoint).direction
    return "higher" if d == "higher" else "lower"


# --------------------------------------------------------------------------------------
# ROC curve, AUC
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RocCurve:
    """Empirical ROC curve. Unpacks as ``fpr, tpr, thresholds = roc_curve(...)``.

    ``thresholds[k]`` is the cut-off giving ``(fpr[k], tpr[k])``: cases with
    ``score >= thresholds[k]`` (direction "higher") or ``score <= thresholds[k]``
    ("lower") are called positive. The first point (0, 0) has threshold +inf ("higher")
    or -inf ("lower"); the last is (1, 1).
    """

    fpr: _F64
    tpr: _F64
    thresholds: _F64
    auc: float
    direction: str
    n_pos: int
    n_neg: int
    n_dropped: int

    def __iter__(self) -> Iterator[_F64]:
        return iter((self.fpr, self.tpr, self.thresholds))


def roc_curve(scores: ArrayLike, labels: ArrayLike, *, direction: Direction = "higher",
              endpoint: str = "labels") -> RocCurve:
    """Empirical ROC curve with one point per distinct score (see module notes).

    Returns
    -------
    RocCurve
        ``fpr``, ``tpr``, ``thresholds`` (decreasing in oriented score), the AUC, the
        direction used and the case counts.
    """
    p = _prepare(scores, labels, direction, endpoint)
    s = np.concatenate([p.pos, p.neg])
    y = np.concatenate([np.ones(p.pos.size), np.zeros(p.neg.size)])
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.diff(s) != 0, True]       # last index of each distinct score
    tp = np.cumsum(y)[last_of_run]
    fp = np.cumsum(1.0 - y)[last_of_run]
    tpr = np.r_[0.0, tp / p.pos.size]
    fpr = np.r_[0.0, fp / p.neg.size]
    thr = np.r_[np.inf, s[last_of_run]] * p.sign
    return RocCurve(fpr=fpr, tpr=tpr, thresholds=thr, auc=_auc_raw(p.pos, p.neg),
                    direction=p.direction, n_pos=int(p.pos.size), n_neg=int(p.neg.size),
                    n_dropped=p.n_dropped)


def auc_mann_whitney(scores: ArrayLike, labels: ArrayLike, *, direction: Direction = "higher",
                     endpoint: str = "labels") -> float:
    """AUC = U / (n_pos n_neg), the fraction of (positive, negative) pairs ordered
    correctly, ties counting 1/2 (see module notes for ``direction``)."""
    p = _prepare(scores, labels, direction, endpoint)
    return _auc_raw(p.pos, p.neg)


# --------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------

def delong_components(pos: ArrayLike, neg: ArrayLike) -> tuple[_F64, _F64, _F64]:
    """Structural components of DeLong et al. for one or several predictors.

    Parameters
    ----------
    pos, neg : array, shape (k, m) and (k, n) or (m,) and (n,)
        Oriented scores (higher = positive) of the ``m`` positives and ``n`` negatives for
        ``k`` predictors measured on the same cases.

    Returns
    -------
    auc : (k,)
    v10 : (k, m)   ``V10_i = mean_j psi(X_i, Y_j)``
    v01 : (k, n)   ``V01_j = mean_i psi(X_i, Y_j)``

    Midrank algorithm of Sun & Xu (2014), O((m + n) log(m + n)) per predictor.
    """
    x = np.atleast_2d(np.asarray(pos, dtype=np.float64))
    y = np.atleast_2d(np.asarray(neg, dtype=np.float64))
    m, n = x.shape[1], y.shape[1]
    tx = sps.rankdata(x, axis=1)
    ty = sps.rankdata(y, axis=1)
    tz = sps.rankdata(np.concatenate([x, y], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def _delong_cov(v10: _F64, v01: _F64) -> _F64:
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return np.asarray(s10 / m + s01 / n, dtype=np.float64)


def _check_delong_sizes(m: int, n: int, endpoint: str) -> None:
    if m < 2 or n < 2:
        raise ValueError(f"endpoint {endpoint}: the DeLong variance needs at least 2 positives "
                         f"and 2 negatives (n positive={m}, n negative={n})")


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}")
    return a


@dataclass(frozen=True)
class AucCI:
    """An AUC with a ``1 - alpha`` confidence interval."""

    auc: float
    lo: float
    hi: float
    se: float            # DeLong SE on the AUC scale; bootstrap SD for the bootstrap
    method: str          # "delong", "delong-logit" or "bootstrap"
    alpha: float
    direction: str
    n_pos: int
    n_neg: int
    n_dropped: int
    n_boot: int = 0


def delong_ci(scores: ArrayLike, labels: ArrayLike, alpha: float = 0.05, *,
              direction: Direction = "higher", scale: Literal["auc", "logit"] = "auc",
              endpoint: str = "labels") -> AucCI:
    """AUC with the DeLong (1988) Wald confidence interval (module notes).

    ``scale="auc"``: ``AUC +- z SE`` clipped to [0, 1]. ``scale="logit"``: the interval
    of logit(AUC) transformed back; if AUC is 0 or 1 the logit is undefined and the
    interval degenerates to the point (SE is then 0 as well).
    """
    a = _check_alpha(alpha)
    p = _prepare(scores, labels, direction, endpoint)
    _check_delong_sizes(p.pos.size, p.neg.size, endpoint)
    auc_arr, v10, v01 = delong_components(p.pos, p.neg)
    auc = float(auc_arr[0])
    se = float(np.sqrt(max(_delong_cov(v10, v01)[0, 0], 0.0)))
    z = float(sps.norm.ppf(1.0 - a / 2.0))
    if scale == "auc":
        lo, hi = max(auc - z * se, 0.0), min(auc + z * se, 1.0)
        method = "delong"
    elif scale == "logit":
        method = "delong-logit"
        if 0.0 < auc < 1.0:
            lg = np.log(auc / (1.0 - auc))
            se_l = se / (auc * (1.0 - auc))
            lo = float(1.0 / (1.0 + np.exp(-(lg - z * se_l))))
            hi = float(1.0 / (1.0 + np.exp(-(lg + z * se_l))))
        else:
            lo = hi = auc
    else:
        raise ValueError(f"scale: expected 'auc' or 'logit', got {scale!r}")
    return AucCI(auc=auc, lo=float(lo), hi=float(hi), se=se, method=method, alpha=a,
                 direction=p.direction, n_pos=int(p.pos.size), n_neg=int(p.neg.size),
                 n_dropped=p.n_dropped)


def _class_resamples(pos: _F64, neg: _F64, n_boot: int,
                     rng: np.random.Generator) -> Iterator[tuple[_F64, _F64]]:
    """The stratified bootstrap: ``n_boot`` resamples of the positives and of the
    negatives, each drawn with replacement within its class (class sizes kept)."""
    m, n = pos.size, neg.size
    for _ in range(n_boot):
        yield pos[rng.integers(0, m, m)], neg[rng.integers(0, n, n)]


def bootstrap_auc_ci(scores: ArrayLike, labels: ArrayLike, n_boot: int = 2000,
                     seed: int | np.random.Generator | None = 0, *, alpha: float = 0.05,
                     direction: Direction = "higher", endpoint: str = "labels") -> AucCI:
    """AUC with a stratified percentile bootstrap confidence interval.

    Each resample draws ``m`` positives from the positives and ``n`` negatives from the
    negatives with replacement (so every resample has both classes and the class sizes
    of the data); the interval is the ``alpha/2`` and ``1 - alpha/2`` quantiles of the
    resampled AUCs (numpy's default linear quantile). ``seed`` (an int or a Generator)
    makes the result reproducible; the default seed 0 gives the same interval on every
    run. With ``direction="auto"`` the direction is chosen once on the full data, not per
    resample. ``se`` is the SD of the resampled AUCs.
    """
    a = _check_alpha(alpha)
    if isinstance(n_boot, (bool, np.bool_)) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot: expected a positive integer, got {n_boot!r}")
    p = _prepare(scores, labels, direction, endpoint)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    x, y = p.pos, p.neg
    m, n = x.size, y.size
    aucs = np.empty(int(n_boot))
    if m * n <= _BOOT_MATRIX_MAX_PAIRS:
        # AUC of a resample = c_x^T Psi c_y / (m n), with c_x, c_y the multiplicities
        # (multinomial counts) of the drawn positives and negatives.
        psi = (x[:, None] > y[None, :]).astype(np.float64)
        psi += 0.5 * (x[:, None] == y[None, :])
        for start in range(0, int(n_boot), _BOOT_CHUNK):
            b = min(_BOOT_CHUNK, int(n_boot) - start)
            cx = rng.multinomial(m, np.full(m, 1.0 / m), size=b).astype(np.float64)
            cy = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
            aucs[start:start + b] = np.einsum("bj,bj->b", cx @ psi, cy) / (m * n)
    else:
        for b, (xb, yb) in enumerate(_class_resamples(x, y, int(n_boot), rng)):
            aucs[b] = _auc_raw(xb, yb)
    lo, hi = np.quantile(aucs, [a / 2.0, 1.0 - a / 2.0])
    return AucCI(auc=_auc_raw(x, y), lo=float(lo), hi=float(hi),
                 se=float(np.std(aucs, ddof=1)) if n_boot > 1 else float("nan"),
                 method="bootstrap", alpha=a, direction=p.direction, n_pos=m, n_neg=n,
                 n_dropped=p.n_dropped, n_boot=int(n_boot))


@dataclass(frozen=True)
class RocBand:
    """Pointwise bootstrap band of a ROC curve: ``tpr_lo``, ``tpr_hi`` at each ``fpr``."""

    fpr: _F64
    tpr_lo: _F64
    tpr_hi: _F64
    direction: str
    alpha: float
    n_boot: int


def bootstrap_roc_band(scores: ArrayLike, labels: ArrayLike, n_boot: int = 2000,
                       seed: int | np.random.Generator | None = 0, *, alpha: float = 0.05,
                       direction: Direction = "higher", endpoint: str = "labels",
                       fpr_grid: ArrayLike | None = None) -> RocBand:
    """Pointwise stratified-bootstrap band of the ROC curve (vertical averaging).

    The resamples are those of :func:`bootstrap_auc_ci` (positives and negatives drawn
    with replacement within their class). For each resample the empirical TPR is taken
    at each false-positive rate of ``fpr_grid`` (the largest TPR whose FPR does not
    exceed it); the band is the ``alpha/2`` and ``1 - alpha/2`` quantiles.

    Parameters
    ----------
    scores, labels : array_like
        See the module notes (missing values dropped, single class raises).
    n_boot : int
        Number of resamples.
    seed : int or numpy.random.Generator or None
    alpha : float
        Two-sided level of the band.
    direction : {"higher", "lower", "auto"}
    endpoint : str
        Names the endpoint in messages.
    fpr_grid : array_like, optional
        False-positive rates of the band (default 51 points from 0 to 1).

    Returns
    -------
    RocBand
    """
    a = _check_alpha(alpha)
    if isinstance(n_boot, (bool, np.bool_)) or int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot: expected a positive integer, got {n_boot!r}")
    p = _prepare(scores, labels, direction, endpoint)
    grid = np.linspace(0.0, 1.0, 51) if fpr_grid is None else np.asarray(fpr_grid, float)
    n = p.neg.size
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    k = np.minimum(np.floor(grid * n + 1e-9).astype(int), n)
    tprs = np.empty((int(n_boot), grid.size))
    for b, (pb, nb) in enumerate(_class_resamples(p.pos, p.neg, int(n_boot), rng)):
        nb = -np.sort(-nb)                                   # descending
        v = np.where(k < n, nb[np.minimum(k, n - 1)], -np.inf)
        tprs[b] = (pb[:, None] > v[None, :]).mean(axis=0)
    lo, hi = np.quantile(tprs, [a / 2.0, 1.0 - a / 2.0], axis=0)
    return RocBand(fpr=grid, tpr_lo=lo, tpr_hi=hi, direction=p.direction, alpha=a,
                   n_boot=int(n_boot))


@dataclass(frozen=True)
class DeLongTest:
    """Paired DeLong comparison of two correlated AUCs (same cases)."""

    auc_a: float
    auc_b: float
    diff: float          # auc_a - auc_b
    se_diff: float
    z: float
    p: float             # two-sided
    ci_diff: tuple[float, float]
    corr: float          # correlation of the two AUC estimates
    direction_a: str
    direction_b: str
    n_pos: int
    n_neg: int
    n_dropped: int


def delong_test(scores_a: ArrayLike, scores_b: ArrayLike, labels: ArrayLike, *,
                direction_a: Direction = "higher", direction_b: Direction = "higher",
                alpha: float = 0.05, endpoint: str = "labels") -> DeLongTest:
    """Two-sided DeLong test of ``AUC_a = AUC_b`` for two predictors on the same cases.

    ``z = (AUC_a - AUC_b) / sqrt(var_a + var_b - 2 cov_ab)`` with the DeLong covariance
    matrix (module notes), ``p = 2 (1 - Phi(|z|))``. Cases missing either score or the
    label are dropped. If the variance of the difference is 0 (e.g. identical
    predictors), ``z = 0, p = 1`` when the AUCs are equal and ``z = +-inf, p = 0``
    otherwise. ``ci_diff`` is the Wald interval of the difference (not clipped).
    ``direction_a``/``direction_b`` as in the module notes; "auto" orients each predictor
    on these data, which favours neither but makes both AUCs >= 0.5 (optimistic).
    """
    a = _check_alpha(alpha)
    sa, sb = _as_1d(scores_a, "scores_a"), _as_1d(scores_b, "scores_b")
    y = _as_labels(labels, f"endpoint {endpoint}")
    if not sa.shape == sb.shape == y.shape:
        raise ValueError(f"scores_a, scores_b and labels of endpoint {endpoint} have different "
                         f"lengths ({sa.size}, {sb.size}, {y.size})")
    keep = ~(np.isnan(sa) | np.isnan(sb) | np.isnan(y))
    n_dropped = int(np.count_nonzero(~keep))
    _warn_dropped(n_dropped, "a missing score (either predictor) or label", endpoint)
    sa, sb, y = sa[keep], sb[keep], y[keep]
    n_pos, n_neg = int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0))
    if n_pos == 0 or n_neg == 0:
        raise _single_class_error(endpoint, n_pos, n_neg)
    _check_delong_sizes(n_pos, n_neg, endpoint)
    sign_a, dir_a = _orient(sa[y == 1], sa[y == 0], direction_a)
    sign_b, dir_b = _orient(sb[y == 1], sb[y == 0], direction_b)
    pos = np.vstack([sign_a * sa[y == 1], sign_b * sb[y == 1]])
    neg = np.vstack([sign_a * sa[y == 0], sign_b * sb[y == 0]])
    auc, v10, v01 = delong_components(pos, neg)
    cov = _delong_cov(v10, v01)
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    if se > 0:
        z = diff / se
    else:
        z = 0.0 if diff == 0 else float(np.copysign(np.inf, diff))
    pval = float(2.0 * sps.norm.sf(abs(z)))
    zc = float(sps.norm.ppf(1.0 - a / 2.0))
    den = np.sqrt(cov[0, 0] * cov[1, 1])
    corr = float(cov[0, 1] / den) if den > 0 else float("nan")
    return DeLongTest(auc_a=float(auc[0]), auc_b=float(auc[1]), diff=diff, se_diff=se, z=z,
                      p=pval, ci_diff=(diff - zc * se, diff + zc * se), corr=corr,
                      direction_a=dir_a, direction_b=dir_b, n_pos=n_pos, n_neg=n_neg,
                      n_dropped=n_dropped)


# --------------------------------------------------------------------------------------
# Youden cut-off
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class YoudenCutoff:
    """The cut-off maximising Youden's J = sensitivity + specificity - 1."""

    threshold: float     # positive if score >= threshold ("higher") / <= ("lower")
    sensitivity: float
    specificity: float
    youden_j: float
    direction: str
    n_pos: int
    n_neg: int
    n_dropped: int

    def predict(self, scores: ArrayLike) -> NDArray[np.bool_]:
        """Apply the cut-off (NaN scores give False; mask them yourself if needed)."""
        s = _as_1d(scores, "scores")
        with np.errstate(invalid="ignore"):
            return np.asarray(s >= self.threshold if self.direction == "higher"
                              else s <= self.threshold)


def youden_cutoff(scores: ArrayLike, labels: ArrayLike, *, direction: Direction = "higher",
                  placement: Literal["midpoint", "observed"] = "midpoint",
                  endpoint: str = "labels") -> YoudenCutoff:
    """Cut-off maximising Youden's J on the empirical ROC curve.

    Ties in J are broken towards the higher specificity (the most conservative cut-off).
    ``placement="observed"``: the threshold is the least extreme score still called
    positive (sklearn convention). ``"midpoint"`` (default): halfway between that score
    and the next distinct score called negative, as pROC reports it; both classify the
    given cases identically, but the midpoint does not put the boundary on a training
    case, which is the better choice when the cut-off is applied to new cases. If every
    case is called positive at the optimum the observed score is used.
    """
    if placement not in ("midpoint", "observed"):
        raise ValueError(f"placement: expected 'midpoint' or 'observed', got {placement!r}")
    roc = roc_curve(scores, labels, direction=direction, endpoint=endpoint)
    j = roc.tpr - roc.fpr
    j[0] = -np.inf                                    # the "nobody positive" point
    # first maximum (to rounding) = highest specificity
    k = int(np.flatnonzero(j >= np.max(j) - 1e-12)[0])
    sign = 1.0 if roc.direction == "higher" else -1.0
    oriented = roc.thresholds * sign                  # decreasing
    thr = float(oriented[k])
    if placement == "midpoint" and k + 1 < oriented.size:
        thr = 0.5 * (thr + float(oriented[k + 1]))
    return YoudenCutoff(threshold=thr * sign, sensitivity=float(roc.tpr[k]),
                        specificity=float(1.0 - roc.fpr[k]), youden_j=float(j[k]),
                        direction=roc.direction, n_pos=roc.n_pos, n_neg=roc.n_neg,
                        n_dropped=roc.n_dropped)


# --------------------------------------------------------------------------------------
# proportions, diagnostic table
# --------------------------------------------------------------------------------------

def wilson_ci(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n`` (Wilson 1927).

    :func:`statsmodels.stats.proportion.proportion_confint` with ``method="wilson"``,
    clipped to [0, 1], with the exact bounds 0 for ``k = 0`` and 1 for ``k = n`` (where
    the formula leaves rounding noise of order 1e-17); ``n = 0`` gives ``(nan, nan)``.
    """
    a = _check_alpha(alpha)
    for v, nm in ((k, "k"), (n, "n")):
        if isinstance(v, (bool, np.bool_)) or int(v) != v:
            raise ValueError(f"wilson_ci: {nm} must be a whole number, got {v!r}")
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"wilson_ci: need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(k, n, alpha=a, method="wilson")
    return (0.0 if k == 0 else float(max(lo, 0.0)),
            1.0 if k == n else float(min(hi, 1.0)))


@dataclass(frozen=True)
class Proportion:
    """``k / n`` with its Wilson interval (NaN when ``n = 0``)."""

    k: int
    n: int
    estimate: float
    lo: float
    hi: float

    @classmethod
    def of(cls, k: int, n: int, alpha: float = 0.05) -> Proportion:
        lo, hi = wilson_ci(k, n, alpha)
        return cls(k, n, k / n if n else float("nan"), lo, hi)


@dataclass(frozen=True)
class DiagnosticTable:
    """2 x 2 table of a binary prediction against a binary endpoint."""

    tp: int
    fp: int
    tn: int
    fn: int
    sensitivity: Proportion   # TP / (TP + FN)
    specificity: Proportion   # TN / (TN + FP)
    ppv: Proportion           # TP / (TP + FP)
    npv: Proportion           # TN / (TN + FN)
    accuracy: Proportion      # (TP + TN) / N
    alpha: float
    n_dropped: int

    def to_frame(self) -> pd.DataFrame:
        """One row per measure: measure, k, n, estimate, ci_lo, ci_hi."""
        rows = [{"measure": name, "k": p.k, "n": p.n, "estimate": p.estimate, "ci_lo": p.lo,
                 "ci_hi": p.hi}
                for name, p in (("sensitivity", self.sensitivity),
                                ("specificity", self.specificity), ("ppv", self.ppv),
                                ("npv", self.npv), ("accuracy", self.accuracy))]
        return pd.DataFrame(rows)


def diagnostic_table(pred_labels: ArrayLike, labels: ArrayLike, *, alpha: float = 0.05,
                     endpoint: str = "labels") -> DiagnosticTable:
    """TP, FP, TN, FN and sensitivity, specificity, PPV, NPV and accuracy with Wilson
    ``1 - alpha`` intervals. Pairs with a missing prediction or label are dropped (and
    counted); a measure with an empty denominator is NaN (no error: a table of a single
    class is still a valid table, its ROC is not)."""
    a = _check_alpha(alpha)
    pr = _as_labels(pred_labels, "pred_labels")
    y = _as_labels(labels, f"endpoint {endpoint}")
    if pr.shape != y.shape:
        raise ValueError(f"pred_labels and labels of endpoint {endpoint} have different "
                         f"lengths ({pr.size} vs {y.size})")
    keep = ~(np.isnan(pr) | np.isnan(y))
    n_dropped = int(np.count_nonzero(~keep))
    _warn_dropped(n_dropped, "a missing prediction or label", endpoint)
    pr, y = pr[keep], y[keep]
    tp = int(np.count_nonzero((pr == 1) & (y == 1)))
    fp = int(np.count_nonzero((pr == 1) & (y == 0)))
    tn = int(np.count_nonzero((pr == 0) & (y == 0)))
    fn = int(np.count_nonzero((pr == 0) & (y == 1)))
    return DiagnosticTable(
        tp=tp, fp=fp, tn=tn, fn=fn,
        sensitivity=Proportion.of(tp, tp + fn, a), specificity=Proportion.of(tn, tn + fp, a),
        ppv=Proportion.of(tp, tp + fp, a), npv=Proportion.of(tn, tn + fn, a),
        accuracy=Proportion.of(tp + tn, tp + fp + tn + fn, a), alpha=a, n_dropped=n_dropped)


# --------------------------------------------------------------------------------------
# paired and unpaired tests
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PairedComparison:
    """Wilcoxon signed-rank test of ``post - pre`` and a summary of the change."""

    n: int
    median_pre: float
    median_post: float
    median_change: float
    q25_change: float
    q75_change: float
    statistic: float
    p: float
    n_dropped: int


def paired_prepost(pre: ArrayLike, post: ArrayLike, *,
                   zero_method: Literal["wilcox", "pratt", "zsplit"] = "wilcox",
                   name: str = "values") -> PairedComparison:
    """Two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon) of paired values.

    Pairs with a missing value are dropped (counted, warned). ``zero_method`` is passed
    to scipy ("wilcox": zero differences are discarded). The change is ``post - pre``;
    its median and quartiles (numpy linear quantiles) are reported. If every difference
    is zero the test is uninformative: statistic 0, p = 1.
    """
    a, b = _as_1d(pre, "pre"), _as_1d(post, "post")
    if a.shape != b.shape:
        raise ValueError(f"{name}: pre and post have different lengths ({a.size} vs {b.size})")
    keep = ~(np.isnan(a) | np.isnan(b))
    n_dropped = int(np.count_nonzero(~keep))
    _warn_dropped(n_dropped, "a missing pre or post value", name)
    a, b = a[keep], b[keep]
    if a.size == 0:
        raise ValueError(f"{name}: no complete pre/post pair")
    d = b - a
    if np.all(d == 0):
        stat, pval = 0.0, 1.0
    else:
        res = sps.wilcoxon(b, a, zero_method=zero_method, alternative="two-sided")
        stat, pval = float(res.statistic), float(res.pvalue)
    q25, med, q75 = np.quantile(d, [0.25, 0.5, 0.75])
    return PairedComparison(n=int(a.size), median_pre=float(np.median(a)),
                            median_post=float(np.median(b)), median_change=float(med),
                            q25_change=float(q25), q75_change=float(q75), statistic=stat,
                            p=pval, n_dropped=n_dropped)


@dataclass(frozen=True)
class GroupComparison:
    """Two-sided Mann-Whitney U test of two independent groups."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    u: float             # U statistic of group a (scipy convention)
    p: float
    auc: float           # U / (n_a n_b): P(a > b) + P(a = b)/2
    n_dropped: int
    #: rank-biserial correlation 2 U / (n_a n_b) - 1 = P(a > b) - P(a < b) (Cliff's delta)
    rank_biserial: float = float("nan")


def between_groups(a: ArrayLike, b: ArrayLike, *, name: str = "values") -> GroupComparison:
    """Mann-Whitney U test (scipy, two-sided, default method) and the group medians.

    Missing values are dropped (counted, warned). ``auc`` is the common-language effect
    size ``U_a / (n_a n_b)``; ``rank_biserial`` is the rank-biserial correlation
    ``2 U_a / (n_a n_b) - 1`` (Kerby, Compr Psychol 2014;3:11.IT.3.1), which equals
    Cliff's delta ``P(a > b) - P(a < b)`` (ties count 0): +1 when every value of ``a``
    exceeds every value of ``b``, 0 for complete overlap.
    """
    x, y = _as_1d(a, "a"), _as_1d(b, "b")
    nx, ny = int(np.isnan(x).sum()), int(np.isnan(y).sum())
    _warn_dropped(nx + ny, "a missing value", name)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        raise ValueError(f"{name}: each group needs at least one value (got {x.size} and "
                         f"{y.size})")
    res = sps.mannwhitneyu(x, y, alternative="two-sided")
    auc = float(res.statistic) / (x.size * y.size)
    return GroupComparison(n_a=int(x.size), n_b=int(y.size), median_a=float(np.median(x)),
                           median_b=float(np.median(y)), u=float(res.statistic),
                           p=float(res.pvalue), auc=auc, n_dropped=nx + ny,
                           rank_biserial=2.0 * auc - 1.0)


# --------------------------------------------------------------------------------------
# multiple comparisons
# --------------------------------------------------------------------------------------

def adjust_pvalues(p: ArrayLike, alpha: float = 0.05) -> tuple[_F64, _F64]:
    """Holm and Benjamini-Hochberg adjusted p-values of one family of tests.

    :func:`statsmodels.stats.multitest.multipletests` with ``method="holm"`` (Holm 1979,
    family-wise error rate) and ``method="fdr_bh"`` (Benjamini & Hochberg 1995, false
    discovery rate). Missing p-values (NaN: a test that could not be computed) are not
    members of the family: they stay NaN and do not count in the number of tests.

    Parameters
    ----------
    p : array_like
        Unadjusted p-values of the family, in [0, 1] (NaN allowed).
    alpha : float
        Passed to statsmodels (the adjusted values do not depend on it).

    Returns
    -------
    holm, bh : ndarray
        Adjusted p-values (capped at 1), NaN where ``p`` is NaN.
    """
    a = _check_alpha(alpha)
    v = _as_1d(p, "p")
    ok = ~np.isnan(v)
    if np.any((v[ok] < 0) | (v[ok] > 1)):
        raise ValueError("adjust_pvalues: p-values must be in [0, 1]")
    holm = np.full(v.shape, np.nan)
    bh = np.full(v.shape, np.nan)
    if ok.any():
        holm[ok] = multipletests(v[ok], alpha=a, method="holm")[1]
        bh[ok] = multipletests(v[ok], alpha=a, method="fdr_bh")[1]
    return holm, bh
